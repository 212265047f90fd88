"""A text sent instead of, or with, files (PROTOCOL.md §6.1): it travels in the sealed, padded
manifest, arrives whole after the receiver accepts, and is shown only made printable."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from hushdrop.cli.resume_record import ResumeRecord
from hushdrop.protocol import events as ev
from hushdrop.protocol.constants import MAX_TEXT_BYTES, MSG_DATA, MSG_SEALED, MSG_SEALED_PART
from hushdrop.protocol.errors import ProtocolError
from hushdrop.protocol.keys import SessionKeys
from hushdrop.protocol.manifest import FileEntry, Manifest, TextError, text_bytes
from hushdrop.protocol.text import printable_text

from .pair import Pair


def run_text(text: str, files: dict[str, bytes] | None = None, tamper=None):
    files = files or {}
    manifest = Manifest(tuple(FileEntry(p, len(d)) for p, d in files.items()), (), text)
    pair = Pair(files, manifest=manifest, tamper=tamper)
    return asyncio.run(pair.run())


def received_texts(outcome) -> list[str]:
    return [e.text for e in outcome.receiver_events if isinstance(e, ev.TextReceived)]


def test_a_text_alone_arrives_whole_and_both_sides_complete():
    text = "Hello, Grüße 👋\nline two\r\n\ttabbed"
    outcome = run_text(text)
    assert outcome.sender_error is None and outcome.receiver_error is None
    assert received_texts(outcome) == [text]
    assert any(isinstance(e, ev.Completed) for e in outcome.sender_events)
    assert outcome.received == {}  # no file data at all


def test_a_text_is_reported_after_the_offer_is_accepted_and_before_completion():
    outcome = run_text("secret")
    kinds = [type(e) for e in outcome.receiver_events]
    assert kinds.index(ev.Offered) < kinds.index(ev.TextReceived) < kinds.index(ev.Completed)


def test_a_text_travels_with_files_and_the_files_arrive_too():
    files = {"a.bin": b"x" * 70_000, "b/c.txt": b"see"}
    outcome = run_text("about these files", files)
    assert outcome.receiver_error is None and outcome.sender_error is None
    assert received_texts(outcome) == ["about these files"]
    assert outcome.received == {0: files["a.bin"], 1: files["b/c.txt"]}


def test_an_empty_text_is_still_a_text():
    outcome = run_text("")
    assert received_texts(outcome) == [""]


def test_the_largest_text_arrives_in_sealed_parts_and_no_data_message():
    text = "é" * (MAX_TEXT_BYTES // 2)  # exactly MAX_TEXT_BYTES of UTF-8
    seen: list[int] = []

    def record(direction: str, message: bytes) -> list[bytes]:
        if direction == "s2r":
            seen.append(message[0])
        return [message]

    outcome = run_text(text, tamper=record)
    assert received_texts(outcome) == [text]
    assert MSG_SEALED_PART in seen and MSG_DATA not in seen


def test_a_small_texts_manifest_is_as_long_on_the_wire_as_a_small_files():
    def sealed_sizes(manifest: Manifest) -> list[int]:
        sizes: list[int] = []

        def record(direction: str, message: bytes) -> list[bytes]:
            if direction == "s2r" and message[0] == MSG_SEALED:
                sizes.append(len(message))
            return [message]

        files = {f.path: bytes(f.size) for f in manifest.files}
        asyncio.run(Pair(files, manifest=manifest, tamper=record).run())
        return sizes

    text = sealed_sizes(Manifest((), (), "meet at 6, door code 4711"))
    file = sealed_sizes(Manifest((FileEntry("notes.txt", 25, 0o644, 1763769600),)))
    assert text[0] == file[0]  # the MANIFEST: one 256-byte padding bucket for both


def test_text_bytes_refuses_a_text_over_the_limit_with_a_clear_message():
    text_bytes("x" * MAX_TEXT_BYTES)
    # Exact bytes: rounded, one byte over the limit read "1.0 MiB; at most 1.0 MiB".
    with pytest.raises(
        TextError, match=r"The text is 1,048,577 bytes; at most 1,048,576 bytes of text go"
    ):
        text_bytes("x" * (MAX_TEXT_BYTES + 1))


def test_a_manifest_with_too_large_a_text_is_not_encoded():
    with pytest.raises(TextError):
        Manifest((), (), "é" * (MAX_TEXT_BYTES // 2 + 1)).encode()


def test_a_text_that_is_not_unicode_is_refused_before_sending():
    with pytest.raises(TextError, match="not valid Unicode"):
        text_bytes("bad \udcff byte")


def test_manifest_round_trips_its_text():
    manifest = Manifest((FileEntry("a", 1),), (), "zwei\nZeilen")
    assert Manifest.decode(manifest.encode()) == manifest
    assert Manifest.decode(Manifest((FileEntry("a", 1),)).encode()).text is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (5, "text is malformed"),
        (["a"], "text is malformed"),
        ("x" * (MAX_TEXT_BYTES + 1), r"larger than 1\.0 MiB"),
    ],
)
def test_a_received_manifest_with_a_bad_text_is_refused(text, message):
    doc = json.dumps({"version": 1, "files": [], "dirs": [], "text": text}).encode()
    with pytest.raises(ProtocolError, match=message):
        Manifest.decode(doc)


def test_a_received_text_with_a_lone_surrogate_is_refused():
    doc = b'{"version": 1, "files": [], "text": "a\\ud800b"}'
    with pytest.raises(ProtocolError, match="not valid Unicode"):
        Manifest.decode(doc)


def test_printable_text_keeps_lines_and_tabs_but_not_escape_sequences():
    hostile = "title\x1b]0;pwned\x07\r\nred \x1b[31mtext\ttab\u202eevil\rend"
    shown = printable_text(hostile)
    assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown
    assert "\r" not in shown
    assert shown.split("\n") == [
        "title\ufffd]0;pwned\ufffd",
        "red \ufffd[31mtext\ttab\ufffdevil",
        "end",
    ]


def test_a_resume_record_keeps_the_files_but_not_the_text(tmp_path):
    keys = SessionKeys(b"c" * 32, b"d" * 32, b"e" * 32, "ABCD-EF01", b"r" * 32)
    manifest = Manifest((FileEntry("a.bin", 5),), (), "the door code is 4711")
    path = tmp_path / ".hushdrop-0.resume"
    record = ResumeRecord(path, keys, manifest, [Path("a.bin")], "0" * 16, "t")
    record.save()
    assert "4711" not in record.path.read_text()
    assert ResumeRecord.load(record.path).manifest == Manifest((FileEntry("a.bin", 5),))
