"""Fuzzing the core's parsers: peer message framing, the manifest and its hostile paths, typed
codes and links, and the receiver session fed hostile messages in every state.

The contract under test is the one drivers rely on: whatever a peer (or a user) sends, a parser
returns a value or raises the documented `HushdropError` subclass, promptly. Inputs are either
arbitrary or valid ones mutated, so that the fuzzer reaches past the first length check. Each
violation the fuzzer once found keeps a test holding the smallest input that showed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import pytest
from hushdrop.crypto.chunked import ChunkEncryptor
from hushdrop.crypto.pyca import PycaBackend
from hushdrop.protocol import events as ev
from hushdrop.protocol.codes import Code, SenderSecrets, new_sender_secrets, parse_code
from hushdrop.protocol.constants import (
    ABORT_CANCELLED,
    COMMITMENT_SIZE,
    FILE_DIGEST_SIZE,
    FLAG_PASSWORD,
    FLAG_WORDS,
    FORM_LINK,
    FORM_WORDS,
    KIND_ACCEPT,
    KIND_CANCEL,
    KIND_COMPLETE,
    KIND_CREDIT,
    KIND_DECLINE,
    KIND_MANIFEST,
    KIND_RESUME_AT,
    KIND_RESUMED,
    KNOWN_FLAGS,
    MSG_ABORT,
    MSG_CONFIRM,
    MSG_DATA,
    MSG_HELLO,
    MSG_PAKE_A,
    MSG_PAKE_B,
    MSG_RESUME,
    MSG_SEALED,
    POINT_SIZE,
    PROTOCOL_VERSION,
    RESUME_NONCE_SIZE,
    SEALED_PAD,
    SID_PART_SIZE,
    SIDE_RECEIVER,
    SIDE_SENDER,
)
from hushdrop.protocol.errors import (
    CodeFormatError,
    HushdropError,
    ProtocolError,
    TamperedError,
    UnsafePathError,
    VersionError,
)
from hushdrop.protocol.framing import (
    CONFIRM_TAG_SIZE,
    Hello,
    PakeA,
    PakeB,
    Resume,
    ResumeAt,
    decode_abort,
    decode_confirm,
    decode_hello,
    decode_inner,
    decode_pake_a,
    decode_pake_b,
    decode_resume,
    decode_resume_at,
    decode_u64,
    encode_abort,
    encode_confirm,
    encode_hello,
    encode_inner,
    encode_pake_a,
    encode_pake_b,
    encode_resume,
    encode_resume_at,
    encode_u64,
    message_type,
)
from hushdrop.protocol.handshake import SenderHandshake, accepted_forms
from hushdrop.protocol.keys import SealedChannel
from hushdrop.protocol.manifest import MAX_FILE_SIZE, DirEntry, FileEntry, Manifest
from hushdrop.protocol.padding import stream_padding
from hushdrop.protocol.paths import fold, sanitize_all, sanitize_path
from hushdrop.protocol.receiver import ReceiverSession
from hushdrop.protocol.resume import ResumeHandshake
from hushdrop.protocol.session import file_context
from hushdrop.protocol.wordlist import WORDS
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

FAST = settings(max_examples=200, deadline=None)
MEDIUM = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# Shared strategies -------------------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> bytes:
    """`base` with one to three byte-level edits: flip, truncate, extend, insert, delete."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 3))):
        edit = draw(st.sampled_from(["flip", "truncate", "extend", "insert", "delete", "type"]))
        position = draw(st.integers(0, len(data))) if data else 0
        if edit == "flip" and position < len(data):
            data[position] ^= draw(st.integers(1, 255))
        elif edit == "truncate":
            del data[position:]
        elif edit == "extend":
            data += draw(st.binary(min_size=1, max_size=40))
        elif edit == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=4))
        elif edit == "delete" and position < len(data):
            del data[position]
        elif edit == "type" and data:
            data[0] = draw(st.sampled_from(list(MESSAGE_LAYOUTS)) | st.integers(0, 255))
    return bytes(data)


@st.composite
def mutated_text(draw: st.DrawFn, base: str) -> str:
    """`base` with one to three character-level edits."""
    chars = list(base)
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, len(chars)))
        edit = draw(st.sampled_from(["replace", "insert", "delete", "case", "truncate"]))
        if edit == "replace" and position < len(chars):
            chars[position] = draw(st.characters())
        elif edit == "insert":
            chars.insert(position, draw(st.characters() | st.sampled_from(list("-_ .#/\t"))))
        elif edit == "delete" and position < len(chars):
            del chars[position]
        elif edit == "case":
            chars = list("".join(chars).swapcase())
        elif edit == "truncate":
            del chars[position:]
    return "".join(chars)


def raises_only(expected: type[BaseException] | tuple[type[BaseException], ...]) -> Callable:
    """Wrap a parser: return its result, or None if it raised one of the `expected` errors."""

    def call(parse: Callable[..., Any], *args: Any) -> Any:
        try:
            return parse(*args)
        except expected:
            return None

    return call


# Framing (PROTOCOL.md §4, §6) ------------------------------------------------------------

# Body length of each fixed-size message, after the type byte.
MESSAGE_LAYOUTS = {
    MSG_HELLO: 2 + SID_PART_SIZE + COMMITMENT_SIZE,  # flags 0 or FLAG_PASSWORD: one commitment
    MSG_PAKE_A: 2 + POINT_SIZE,
    MSG_PAKE_B: POINT_SIZE + CONFIRM_TAG_SIZE,
    MSG_CONFIRM: CONFIRM_TAG_SIZE,
    MSG_RESUME: 2 + RESUME_NONCE_SIZE,
    MSG_ABORT: 1,
    MSG_SEALED: 0,
    MSG_DATA: 0,
}

DECODERS = [
    message_type,
    decode_hello,
    decode_pake_a,
    decode_pake_b,
    decode_confirm,
    decode_abort,
    decode_resume,
    decode_resume_at,
    decode_inner,
    decode_u64,
]

sids = st.binary(min_size=SID_PART_SIZE, max_size=SID_PART_SIZE)
points = st.binary(min_size=POINT_SIZE, max_size=POINT_SIZE)
tags = st.binary(min_size=CONFIRM_TAG_SIZE, max_size=CONFIRM_TAG_SIZE)
nonces = st.binary(min_size=RESUME_NONCE_SIZE, max_size=RESUME_NONCE_SIZE)
u8 = st.integers(0, 255)
hello_flags = st.sampled_from([0, FLAG_PASSWORD, FLAG_WORDS, FLAG_PASSWORD | FLAG_WORDS])
commitments = st.binary(min_size=COMMITMENT_SIZE, max_size=2 * COMMITMENT_SIZE)
u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)

valid_messages = st.one_of(
    st.builds(
        lambda flags, sid, c: encode_hello(flags, sid, c), hello_flags, sids, commitments
    ).filter(lambda m: len(m) == 3 + SID_PART_SIZE + len(accepted_forms(m[2])) * COMMITMENT_SIZE),
    st.builds(encode_pake_a, u8, points),
    st.builds(encode_pake_b, points, tags),
    st.builds(encode_confirm, tags),
    st.builds(encode_abort, u8),
    st.builds(encode_resume, st.sampled_from([SIDE_SENDER, SIDE_RECEIVER]) | u8, nonces),
    st.builds(encode_resume_at, u32, u64, u64),
    st.builds(encode_inner, u8, st.binary(max_size=600)),
    st.builds(encode_u64, u64),
)

# A known type byte followed by a body of exactly the right length (random content).
right_length = st.sampled_from(sorted(MESSAGE_LAYOUTS.items())).flatmap(
    lambda layout: st.binary(min_size=layout[1], max_size=layout[1]).map(
        lambda body: bytes([layout[0]]) + body
    )
)

frame_inputs = st.one_of(
    st.binary(max_size=1100),
    valid_messages,
    right_length,
    valid_messages.flatmap(mutated),
    right_length.flatmap(mutated),
)


@FAST
@given(frame_inputs)
def test_every_decoder_parses_or_raises_protocol_error(data):
    for decode in DECODERS:
        try:
            result = decode(data)
        except ProtocolError:  # VersionError is a ProtocolError
            continue
        assert result is not None, decode.__name__


@FAST
@given(st.binary(min_size=1, max_size=200))
def test_message_type_is_the_first_byte(data):
    assert message_type(data) == data[0]


def test_empty_message_is_a_protocol_error():
    with pytest.raises(ProtocolError):
        message_type(b"")


@FAST
@given(hello_flags, sids, st.binary(min_size=2 * COMMITMENT_SIZE, max_size=2 * COMMITMENT_SIZE))
def test_hello_round_trips(flags, sid, both):
    # One commitment per accepted code form: the link's, and the typed code's with FLAG_WORDS.
    commitments = both[: len(accepted_forms(flags)) * COMMITMENT_SIZE]
    message = encode_hello(flags, sid, commitments)
    assert message_type(message) == MSG_HELLO
    assert decode_hello(message) == Hello(flags, sid, commitments)
    with pytest.raises(ProtocolError):
        decode_hello(message + b"x")


@FAST
@given(u8.filter(lambda flags: flags & ~KNOWN_FLAGS), sids)
def test_hello_with_unknown_flags_is_refused(flags, sid):
    with pytest.raises(ProtocolError) as info:
        decode_hello(encode_hello(flags, sid, bytes(2 * COMMITMENT_SIZE)))
    assert not isinstance(info.value, VersionError)


@FAST
@given(u8.filter(lambda version: version != PROTOCOL_VERSION), u8, sids, points, nonces)
def test_other_versions_raise_version_error(version, form, sid, share, nonce):
    hello = bytes([MSG_HELLO, version, 0]) + sid + bytes(COMMITMENT_SIZE)
    pake_a = bytes([MSG_PAKE_A, version, form]) + share
    resume = bytes([MSG_RESUME, version, SIDE_SENDER]) + nonce
    messages = ((decode_hello, hello), (decode_pake_a, pake_a), (decode_resume, resume))
    for decode, message in messages:
        with pytest.raises(VersionError):
            decode(message)


@FAST
@given(u8, points, tags)
def test_key_exchange_messages_round_trip(form, share, tag):
    assert decode_pake_a(encode_pake_a(form, share)) == PakeA(form, share)
    assert decode_pake_b(encode_pake_b(share, tag)) == PakeB(share, tag)
    assert decode_confirm(encode_confirm(tag)) == tag


@FAST
@given(u8)
def test_abort_round_trips(reason):
    assert decode_abort(encode_abort(reason)) == reason


@FAST
@given(st.sampled_from([SIDE_SENDER, SIDE_RECEIVER]), nonces, u32, u64, u64)
def test_resume_messages_round_trip(side, nonce, index, offset, credit):
    assert decode_resume(encode_resume(side, nonce)) == Resume(side, nonce)
    assert decode_resume_at(encode_resume_at(index, offset, credit)) == ResumeAt(
        index, offset, credit
    )


@FAST
@given(u8.filter(lambda side: side not in (SIDE_SENDER, SIDE_RECEIVER)), nonces)
def test_resume_for_an_unknown_side_is_refused(side, nonce):
    with pytest.raises(ProtocolError) as info:
        decode_resume(encode_resume(side, nonce))
    assert not isinstance(info.value, VersionError)


@FAST
@given(u8, st.binary(max_size=2000))
def test_inner_round_trips_padded_to_the_sealed_pad(kind, body):
    inner = encode_inner(kind, body)
    assert len(inner) % SEALED_PAD == 0
    assert decode_inner(inner) == (kind, body)


@FAST
@given(u8, st.binary(max_size=600), st.data())
def test_inner_with_nonzero_padding_is_refused(kind, body, data):
    inner = bytearray(encode_inner(kind, body))
    padding_start = 5 + len(body)
    if padding_start == len(inner):
        inner += bytes(SEALED_PAD)  # make room for padding to tamper with
    position = data.draw(st.integers(padding_start, len(inner) - 1))
    inner[position] = data.draw(st.integers(1, 255))
    with pytest.raises(ProtocolError):
        decode_inner(bytes(inner))


@FAST
@given(u64)
def test_u64_round_trips(value):
    assert decode_u64(encode_u64(value)) == value


# Manifest (PROTOCOL.md §6.1) -------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=25,
)

# Components a hostile sender would try, and random ones.
HOSTILE_COMPONENTS = [
    "..",
    ".",
    "",
    "...",
    "~",
    "C:",
    "c:..",
    "CON",
    "nul.txt",
    "Lpt1.tar.gz",
    "COM¹",
    "a:b",
    "a<b>c",
    'q"u|o?t*e',
    "trailing.",
    "trailing ",
    " . ",
    "\x00",
    "nul\x00byte",
    "\x1b[31mred",
    "rtl\u202eexe.txt",
    "line\u2028sep",
    "zero\u200bwidth",
    "\udc80surrogate",
    "private\ue000use",
    "\U000e0001tag",
    "A",
    "a",
    "ß",
    "SS",
    "İ",
]
# Long components exercise the 255-byte cap, including dots and spaces the cap may leave last.
long_components = st.text(
    alphabet=st.characters(exclude_characters="/\\", exclude_categories=("Cs",)),
    min_size=200,
    max_size=400,
)
components = st.sampled_from(HOSTILE_COMPONENTS) | st.text(max_size=12) | long_components
hostile_paths = st.builds(
    lambda prefix, parts, seps: (
        prefix + "".join(s + p for s, p in zip(["", *seps], parts, strict=False))
    ),
    st.sampled_from(["", "/", "\\", "//", "C:", "C:\\", "\\\\?\\C:\\", "//server/share/", "~/"]),
    st.lists(components, min_size=1, max_size=6),
    st.lists(st.sampled_from(["/", "\\", "//", "/./", "/../"]), min_size=5, max_size=5),
)

sizes = st.integers(0, MAX_FILE_SIZE) | st.sampled_from([-1, MAX_FILE_SIZE + 1, 2**64, 1.5, True])
modes = st.integers(0, 0o7777) | st.sampled_from([-1, 0o10000, 2**40, "644", None, False])
mtimes = st.integers(-(1 << 40), 1 << 40) | st.sampled_from([(1 << 40) + 1, 1e3, "0", None])


def maybe(valid: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly a plausible value, sometimes any JSON value."""
    return st.one_of(valid, valid, valid, json_values)


file_dicts = st.fixed_dictionaries(
    {"path": maybe(hostile_paths)},
    optional={"size": maybe(sizes), "mode": maybe(modes), "mtime": maybe(mtimes)},
)
dir_dicts = st.fixed_dictionaries({"path": maybe(hostile_paths)}, optional={"mode": maybe(modes)})
manifest_docs = st.fixed_dictionaries(
    {
        "version": st.sampled_from([1, 1, 1, 2, 0, "1", 1.0, True, None]) | json_values,
        "files": maybe(st.lists(maybe(file_dicts), max_size=8)),
    },
    optional={"dirs": maybe(st.lists(maybe(dir_dicts), max_size=4)), "extra": json_values},
)


def dump(doc: Any, ascii_only: bool) -> bytes:
    # Without ensure_ascii, lone surrogates are written as themselves: invalid UTF-8 on purpose.
    text = json.dumps(doc, ensure_ascii=ascii_only)
    return text.encode("utf-8", "surrogatepass")


manifest_bytes = st.one_of(
    st.binary(max_size=2000),
    st.builds(dump, manifest_docs, st.booleans()),
    st.builds(dump, json_values, st.booleans()),
    st.builds(dump, manifest_docs, st.just(True)).flatmap(mutated),
)

DEVICE_NAMES = {"con", "prn", "aux", "nul"} | {f"{d}{n}" for d in ("com", "lpt") for n in range(10)}
UNSAFE_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}
OUTPUT_DIR = Path("/nonexistent-hushdrop-output")


def assert_safe_component(part: str) -> None:
    assert isinstance(part, str) and part not in ("", ".", ".."), part
    assert len(part.encode("utf-8")) <= 255, part
    assert not any(ch in '/\\<>:"|?*' for ch in part), part
    assert not any(unicodedata.category(ch) in UNSAFE_CATEGORIES for ch in part), part
    assert not part.endswith((".", " ")), part
    assert part.split(".")[0].lower() not in DEVICE_NAMES, part
    for flavour in (PurePosixPath, PureWindowsPath):
        parsed = flavour(part)
        assert parsed.parts == (part,) and not parsed.is_absolute() and not parsed.drive, part


def assert_inside_output_dir(parts: tuple[str, ...]) -> None:
    for part in parts:
        assert_safe_component(part)
    target = OUTPUT_DIR.joinpath(*parts)
    resolved = Path(os.path.normpath(target))
    assert resolved.is_relative_to(OUTPUT_DIR) and resolved != OUTPUT_DIR, parts
    assert resolved.relative_to(OUTPUT_DIR).parts == parts
    windows = PureWindowsPath("C:\\out").joinpath(*parts)
    assert windows.parts[:2] == ("C:\\", "out") and windows.parts[2:] == parts


def check_safe_paths(manifest: Manifest) -> None:
    """safe_paths either refuses the manifest or gives paths that all stay in the output dir."""
    try:
        file_paths, dir_paths = manifest.safe_paths()
    except UnsafePathError:
        return
    assert len(file_paths) == len(manifest.files) and len(dir_paths) == len(manifest.dirs)
    everything = file_paths + dir_paths
    for parts in everything:
        assert_inside_output_dir(parts)
    folded = [tuple(fold(p) for p in parts) for parts in everything]
    assert len(set(folded)) == len(folded), "two entries land on one name"
    file_keys = set(folded[: len(file_paths)])
    for parts in folded:
        assert not any(parts[:depth] in file_keys for depth in range(1, len(parts)))


def check_manifest(data: bytes) -> None:
    try:
        manifest = Manifest.decode(data)
    except ProtocolError:
        return
    for entry in manifest.files:
        assert isinstance(entry.path, str) and isinstance(entry.size, int)
        assert 0 <= entry.size <= MAX_FILE_SIZE and 0 <= entry.mode <= 0o777
    for entry in manifest.dirs:
        assert isinstance(entry.path, str) and 0 <= entry.mode <= 0o777
    check_safe_paths(manifest)


@MEDIUM
@given(manifest_bytes)
@example(b"")
@example(b'{"version": 1, "files": [{"path": "../../etc/passwd", "size": 1}]}')
@example(b'{"version": 1, "files": [{"path": "a", "size": 0}, {"path": "A", "size": 0}]}')
@example(b'{"version": 1, "files": [{"path": "a", "size": 0}], "dirs": [{"path": "a/b"}]}')
@example(b'{"version": 1, "files": [{"path": "\\ud800", "size": 0}]}')
@example(b'{"version": 1, "files": [{"path": "x", "size": 1e3}]}')
def test_manifest_decode_parses_or_raises_protocol_error(data):
    check_manifest(data)


@MEDIUM
@given(st.lists(hostile_paths, min_size=1, max_size=6), st.lists(hostile_paths, max_size=3))
@example(["../../../etc/passwd"], [])
@example(["/etc/passwd"], [])
@example(["C:\\Windows\\system32\\x.dll"], [])
@example(["\\\\?\\C:\\x"], [])
@example(["a/" * 2000 + "b"], [])
@example(["x/y"], ["x"])
def test_hostile_paths_stay_inside_the_output_dir_or_are_refused(files, dirs):
    manifest = Manifest(tuple(FileEntry(p, 0) for p in files), tuple(DirEntry(p) for p in dirs))
    check_safe_paths(manifest)


@FAST
@given(hostile_paths)
def test_the_same_path_twice_is_refused(path):
    try:
        sanitize_path(path)
    except UnsafePathError:
        return
    with pytest.raises(UnsafePathError):
        sanitize_all([path, path])
    manifest = Manifest((FileEntry(path, 0), FileEntry(path + "/inside", 0)))
    with pytest.raises(UnsafePathError):
        manifest.safe_paths()


plain_paths = st.text(alphabet=st.characters(exclude_categories=("Cs",)), min_size=1, max_size=40)
valid_manifests = st.builds(
    Manifest,
    st.lists(
        st.builds(
            FileEntry,
            plain_paths,
            st.integers(0, MAX_FILE_SIZE),
            st.integers(0, 0o777),
            st.integers(-(1 << 40), 1 << 40),
        ),
        max_size=8,
    ).map(tuple),
    st.lists(st.builds(DirEntry, plain_paths, st.integers(0, 0o777)), max_size=4).map(tuple),
)


@MEDIUM
@given(valid_manifests)
def test_manifest_round_trips(manifest):
    assert Manifest.decode(manifest.encode()) == manifest


def test_deeply_nested_manifest_is_refused_as_malformed():
    # 100,000 bytes, far below the 16 MiB limit: json.loads raises RecursionError, which
    # Manifest.decode does not catch, so the receiver session ends with a non-Hushdrop error.
    with pytest.raises(ProtocolError):
        Manifest.decode(b"[" * 100_000)


def test_component_capped_at_255_bytes_has_no_trailing_dot():
    # The trailing-dot strip runs before the 255-byte cap, and the cap can expose a new one
    # ("x"*254 + "."), which Windows would alias to "x"*254.
    (part,) = sanitize_path("x" * 254 + ".yyy")
    assert not part.endswith((".", " "))


def _deep_paths(count: int) -> list[str]:
    return ["a/" * 2040 + f"{i:06d}" for i in range(count)]  # ~4 KiB, ~2,000 components each


def _best_of(runs: int, action: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
    return best


def test_safe_paths_cost_is_linear_in_path_depth():
    # safe_paths checks every proper prefix of every path by slicing a new tuple per depth:
    # O(depth²) per entry. A 16 MiB manifest holds ~4,000 such paths: about a minute of CPU on
    # the receiver, before the user is even asked to accept. Sanitising the same paths (linear
    # work) is the yardstick.
    paths = _deep_paths(20)
    manifest = Manifest(tuple(FileEntry(p, 0) for p in paths))
    sanitise = _best_of(3, lambda: sanitize_all(paths))
    check = _best_of(3, manifest.safe_paths)
    assert check < 3 * sanitise + 0.05, (
        f"safe_paths {check:.3f} s vs sanitize_all {sanitise:.3f} s for {len(paths)} paths; "
        f"a full 16 MiB manifest would take ~{check / len(paths) * 4000:.0f} s"
    )


def test_manifest_with_an_undecodable_file_name_encodes_or_raises_a_hushdrop_error():
    # On Linux, os.walk gives a file named b"caf\xe9" as "caf\udce9" (surrogateescape); the CLI
    # sender builds its manifest from such names and encodes it after key confirmation.
    with contextlib.suppress(HushdropError):
        Manifest((FileEntry("caf\udce9.txt", 1),)).encode()


# Codes and links (PROTOCOL.md §2) ----------------------------------------------------------


def assert_well_formed(code: Code) -> None:
    assert len(code.room) == 6 and code.room.isdigit()
    if code.form == FORM_WORDS:
        words = code.secret.decode("ascii").split("-")
        assert len(words) == 3 and all(w in WORDS for w in words)
        assert not code.password_required
    else:
        assert code.form == FORM_LINK and len(code.secret) == 16
    assert code.site is None or re.match(r"https?://[^/]+$", code.site)


def sender_secrets(raw: bytes, password: bool, room: str = "123456") -> SenderSecrets:
    """Secrets drawn from `raw` (22 bytes) instead of the CSPRNG."""
    stream = iter([raw[:6], raw[6:]])
    return new_sender_secrets(room, lambda n: next(stream), password)


rooms = st.from_regex(r"[0-9]{6}", fullmatch=True)
randomness = st.binary(min_size=22, max_size=22)
sites = st.builds(
    lambda scheme, host, port, slash: f"{scheme}://{host}{port}{slash}",
    st.sampled_from(["http", "https"]),
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,15}[a-z0-9])?(\.[a-z]{2,8}){0,2}", fullmatch=True)
    | st.sampled_from(["localhost", "127.0.0.1", "[::1]"]),
    st.sampled_from(["", ":8780", ":443"]),
    st.sampled_from(["", "/"]),
)


@st.composite
def code_texts(draw: st.DrawFn) -> str:
    """Valid typed codes and links, and mutations of them."""
    secrets = sender_secrets(draw(randomness), draw(st.booleans()), draw(rooms))
    text = draw(
        st.sampled_from(
            [
                secrets.typed,
                secrets.link(draw(sites)),
                secrets.link("https://x").partition("#")[2],
            ]
        )
    )
    return draw(st.just(text) | mutated_text(text))


@FAST
@given(st.text(max_size=120) | code_texts())
@example("")
@example("#")
@example("https://#123456-AAAAAAAAAAAAAAAAAAAAAA")
@example("ftp://h/#123456-AAAAAAAAAAAAAAAAAAAAAA")
@example("123456")
@example("123456-")
@example("123456-abandon-ability")
@example("123456-AAAAAAAAAAAAAAAAAAAAA*")
@example("123456-abandon-ability-able.pw")
def test_parse_code_parses_or_raises_code_format_error(text):
    code = raises_only(CodeFormatError)(parse_code, text)
    if code is not None:
        assert_well_formed(code)


@FAST
@given(randomness, rooms, st.data())
def test_typed_codes_round_trip_whatever_the_case_separators_and_abbreviations(raw, room, data):
    secrets = sender_secrets(raw, False, room)
    expected = Code(room, FORM_WORDS, secrets.secret_for(FORM_WORDS))
    assert parse_code(secrets.typed) == expected
    words = [
        data.draw(st.sampled_from([w, w.upper(), w.capitalize(), w[: max(4, len(w) - 1)]]))
        for w in secrets.words
    ]
    separators = data.draw(
        st.lists(st.sampled_from(["-", "_", " ", " - ", "--"]), min_size=3, max_size=3)
    )
    typed = room + "".join(s + w for s, w in zip(separators, words, strict=True))
    padded = data.draw(st.sampled_from(["", " ", "\t", "\n"])) + typed + " "
    assert parse_code(padded) == expected


@FAST
@given(randomness, rooms, st.booleans(), sites)
def test_links_and_bare_fragments_round_trip(raw, room, password, site):
    secrets = sender_secrets(raw, password, room)
    link = secrets.link(site)
    expected = Code(room, FORM_LINK, secrets.secret_for(FORM_LINK), password, site.rstrip("/"))
    assert parse_code(link) == expected
    fragment = link.partition("#")[2]
    assert parse_code(fragment) == Code(room, FORM_LINK, expected.secret, password, None)


def test_a_room_is_six_ascii_digits():
    # _ROOM_RE uses \d, which matches every Unicode decimal digit. The parsed room then breaks
    # the receiver: channel_identifier() encodes it as ASCII (UnicodeEncodeError on HELLO).
    code = raises_only(CodeFormatError)(parse_code, "١٢٣٤٥٦-abandon-ability-able")
    assert code is None or code.room.isascii()


def test_link_with_a_malformed_ipv6_host_is_a_code_format_error():
    # urlsplit raises ValueError for an unclosed or empty IPv6 bracket; parse_code lets it
    # through, so the CLI prints a traceback and the page's `except HushdropError` misses it.
    raises_only(CodeFormatError)(parse_code, "https://[::1/#123456-abandon-ability-able")


def test_link_broken_before_its_password_mark_is_a_code_format_error():
    # A link wrapped by a mail client: 21 secret characters, a line break, then ".pw". The
    # secret regex's "$" accepts the trailing "\n" and base64 decoding then fails.
    raises_only(CodeFormatError)(parse_code, "123456-AAAAAAAAAAAAAAAAAAAAA\n.pw")


# The receiver session fed hostile messages ---------------------------------------------------

RECEIVER_STATES = [
    "await-hello",
    "need-password",
    "await-pake-b",
    "await-manifest",
    "offered",
    "receiving",
    "saving",
    "reconnecting",
    "resume-hello",
    "resume-wait",
    "failed",
]
SEALED_KINDS = [
    KIND_MANIFEST,
    KIND_ACCEPT,
    KIND_DECLINE,
    KIND_CREDIT,
    KIND_COMPLETE,
    KIND_CANCEL,
    KIND_RESUME_AT,
    KIND_RESUMED,
]
# States reached by losing the connection while receiving, then resuming (PROTOCOL.md §8.2).
RESUME_STATES = ("reconnecting", "resume-hello", "resume-wait")
OFFER = Manifest((FileEntry("a.txt", 5), FileEntry("dir/b.bin", 40_000)), (DirEntry("empty"),))


class HostileSender:
    """A sender built from the real handshake whose messages the test chooses.

    Once keys are confirmed it seals whatever it is told, so hostile control messages pass
    authentication and reach the receiver's parsers.
    """

    def __init__(self, password: str) -> None:
        self.backend = PycaBackend()
        self.secrets = new_sender_secrets("123456", self.backend.random_bytes, bool(password))
        self.handshake = SenderHandshake(self.backend, self.secrets, password)
        self.channel: SealedChannel | None = None
        self.pending: bytes | None = None  # the genuine next message, when there is one

    async def render(self, spec: tuple) -> bytes:
        match spec:
            case ("raw", data):
                return data
            case ("pending", edit):
                return bytes(edit(self.pending)) if self.pending else b"\x00"
            case ("sealed", kind, body) if self.channel is not None:
                return await self.channel.seal(kind, body)
            case ("sealed", _, body):
                return bytes([MSG_SEALED]) + body
        raise AssertionError(spec)


async def receiver_in(state: str) -> tuple[ReceiverSession, HostileSender]:
    """A receiver driven into `state` by a genuine handshake."""
    sender = HostileSender("pw" if state == "need-password" else "")
    receiver = ReceiverSession(sender.backend, parse_code(sender.secrets.typed))
    if state == "await-hello":
        sender.pending = await sender.handshake.hello()
        return receiver, sender
    events = await receiver.receive(await sender.handshake.hello())
    if state == "need-password":
        assert events == [ev.PasswordRequired()]
        return receiver, sender
    if state == "failed":
        with pytest.raises(HushdropError):
            await receiver.receive(encode_abort(ABORT_CANCELLED))
        return receiver, sender
    (pake_a,) = receiver.data_to_send()
    pake_b = await sender.handshake.on_pake_a(pake_a)
    if state == "await-pake-b":
        sender.pending = pake_b
        return receiver, sender
    await receiver.receive(pake_b)
    (confirm,) = receiver.data_to_send()
    keys = await sender.handshake.on_confirm(confirm)
    sender.channel = SealedChannel(sender.backend, keys.control_s2r, keys.control_r2s)
    offer = Manifest(()) if state == "saving" else OFFER
    manifest = await sender.channel.seal(KIND_MANIFEST, offer.encode())
    if state == "await-manifest":
        sender.pending = manifest
        return receiver, sender
    await receiver.receive(manifest)
    if state != "offered":
        await receiver.accept()
    if state == "receiving":
        sender.pending = bytes([MSG_DATA]) + await data_stream(sender.backend, keys.data)
    if state in RESUME_STATES:
        assert receiver.connection_lost()
        sender.channel = None
    if state in ("resume-hello", "resume-wait"):
        resume = ResumeHandshake(sender.backend, SIDE_SENDER, keys.resume)
        receiver.resume()
        (receiver_resume,) = receiver.data_to_send()
        sender.pending = resume.message()
    if state == "resume-wait":
        await receiver.receive(sender.pending)
        sender.channel, _ = await resume.on_resume(receiver_resume)
        sender.pending = await sender.channel.seal(KIND_RESUMED)
    assert receiver.state == state
    return receiver, sender


async def data_stream(backend: PycaBackend, data_key: bytes) -> bytes:
    """The genuine data stream of OFFER (PROTOCOL.md §7), to be mutated."""
    stream = bytearray()
    for index, entry in enumerate(OFFER.files):
        content = bytes(i % 251 for i in range(entry.size))
        last = index == len(OFFER.files) - 1
        padding = bytes(stream_padding(OFFER) if last else 0)  # §7.1
        encryptor = await ChunkEncryptor.create(backend, data_key, file_context(index))
        stream += encryptor.header
        trailer = bytes(FILE_DIGEST_SIZE)  # sent whole: zeros, no hash (§7.3)
        stream += await encryptor.update(content + trailer + padding)
        stream += await encryptor.finalize()
    return bytes(stream)


def _flip(index: int, xor: int) -> Callable[[bytes], bytes]:
    def edit(message: bytes) -> bytes:
        data = bytearray(message)
        data[index % len(data)] ^= xor
        return bytes(data)

    return edit


def _cut(length: int) -> Callable[[bytes], bytes]:
    return lambda message: message[:length]


message_specs = st.one_of(
    st.tuples(st.just("raw"), frame_inputs),
    st.tuples(st.just("raw"), st.binary(max_size=300).map(lambda b: bytes([MSG_DATA]) + b)),
    st.tuples(st.just("pending"), st.just(lambda m: m)),
    st.tuples(st.just("pending"), st.builds(_flip, st.integers(0, 50_000), st.integers(1, 255))),
    st.tuples(st.just("pending"), st.builds(_cut, st.integers(1, 50_000))),
    st.tuples(st.just("sealed"), st.sampled_from(SEALED_KINDS) | u8, st.binary(max_size=300)),
    st.tuples(st.just("sealed"), st.just(KIND_MANIFEST), manifest_bytes),
)


@SLOW
@given(st.sampled_from(RECEIVER_STATES), st.lists(message_specs, min_size=1, max_size=5))
def test_receiver_in_any_state_raises_only_hushdrop_errors(state, specs):
    async def scenario() -> None:
        receiver, sender = await receiver_in(state)
        for spec in specs:
            message = await sender.render(spec)
            try:
                events = await receiver.receive(message)
            except HushdropError as exc:
                event(f"{state}: {type(exc).__name__}")
                assert receiver.state == "failed"
            else:
                event(f"{state}: accepted")
                assert all(type(e).__module__ == ev.__name__ for e in events)
            assert all(isinstance(m, bytes) for m in receiver.data_to_send())

    asyncio.run(scenario())


@MEDIUM
@given(st.integers(0, 50_000), st.integers(1, 255), st.integers(1, 50_000))
def test_a_data_stream_altered_anywhere_is_refused_and_never_completes(position, xor, split):
    async def scenario() -> None:
        receiver, sender = await receiver_in("receiving")
        stream = _flip(position, xor)(sender.pending[1:])  # after the DATA type byte
        split_at = split % len(stream)
        events: list[object] = []
        with pytest.raises(TamperedError):
            for part in (stream[:split_at], stream[split_at:]):
                events += await receiver.receive(bytes([MSG_DATA]) + part)
        assert not any(isinstance(e, ev.Completed) for e in events)

    asyncio.run(scenario())
