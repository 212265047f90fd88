"""The sender and receiver sessions against each other, in memory, with real crypto."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os

import pytest
from hushdrop.protocol import events as ev
from hushdrop.protocol.codes import Code, parse_code
from hushdrop.protocol.constants import (
    CREDIT_BATCH,
    DATA_FRAME_SIZE,
    FORM_LINK,
    INITIAL_CREDIT,
    MAX_MANIFEST_ENTRIES,
    MSG_CONFIRM,
    MSG_DATA,
    MSG_HELLO,
    MSG_SEALED,
    PROTOCOL_VERSION,
)
from hushdrop.protocol.errors import (
    PeerCancelledError,
    ProtocolError,
    TamperedError,
    UnsafePathError,
    VersionError,
    WrongCodeError,
)
from hushdrop.protocol.framing import encode_abort
from hushdrop.protocol.manifest import FileEntry, Manifest

from .pair import Pair


def run(pair: Pair):
    return asyncio.run(pair.run())


def test_files_of_awkward_sizes_arrive_intact_and_hashes_match():
    sizes = [0, 1, 16_383, 16_384, 16_385, DATA_FRAME_SIZE - 1, DATA_FRAME_SIZE + 7, 3 << 20]
    files = {f"dir/file{i}": os.urandom(size) for i, size in enumerate(sizes)}
    outcome = run(Pair(files))
    assert outcome.sender_error is None and outcome.receiver_error is None
    assert outcome.completed == list(range(len(sizes)))
    for index, data in enumerate(files.values()):
        assert outcome.received.get(index, b"") == data
    digests = [e.sha256 for e in outcome.receiver_events if isinstance(e, ev.FileCompleted)]
    assert digests == [hashlib.sha256(d).hexdigest() for d in files.values()]
    assert any(isinstance(e, ev.Completed) for e in outcome.sender_events)


def test_both_sides_show_the_same_verification_code():
    pair = Pair({"a": b"x"})
    outcome = run(pair)
    sender_sas = [e.sas for e in outcome.sender_events if isinstance(e, ev.Verified)]
    receiver_sas = [e.sas for e in outcome.receiver_events if isinstance(e, ev.Verified)]
    assert sender_sas == receiver_sas
    assert len(sender_sas[0]) == 9 and sender_sas[0][4] == "-"


def test_link_form_of_the_code_works_too():
    pair = Pair({"a": b"hello"}, code=lambda s: parse_code(s.link("https://h.example")))
    outcome = run(pair)
    assert outcome.received[0] == b"hello"


def test_empty_transfer_of_only_directories_completes():
    manifest = Manifest((), ())
    outcome = run(Pair({}, manifest=manifest))
    assert outcome.sender_error is None and outcome.receiver_error is None
    assert any(isinstance(e, ev.Completed) for e in outcome.sender_events)


def test_wrong_words_fail_confirmation_on_both_sides():
    def wrong(secrets):
        words = list(secrets.words)
        words[0] = "zoo" if words[0] != "zoo" else "abandon"
        return parse_code(f"{secrets.room}-" + "-".join(words))

    outcome = run(Pair({"a": b"secret"}, code=wrong))
    assert isinstance(outcome.receiver_error, WrongCodeError)
    assert isinstance(outcome.sender_error, WrongCodeError)
    assert outcome.received == {}


def test_wrong_password_fails_and_nothing_is_offered():
    pair = Pair({"a": b"secret"}, sender_password="correct horse", receiver_password="wrong")
    outcome = run(pair)
    assert isinstance(outcome.receiver_error, WrongCodeError)
    assert not any(isinstance(e, ev.Offered) for e in outcome.receiver_events)


def test_password_is_asked_for_when_the_sender_set_one():
    pair = Pair({"a": b"secret"}, sender_password="pässword")
    outcome = run(pair)
    assert any(isinstance(e, ev.PasswordRequired) for e in outcome.receiver_events)
    assert outcome.received[0] == b"secret"


def test_password_is_normalized_to_nfc():
    pair = Pair({"a": b"x"}, sender_password="caf\u00e9", receiver_password="cafe\u0301")
    assert run(pair).received[0] == b"x"


def test_link_secret_with_typed_room_of_another_transfer_fails():
    def other_room(secrets):
        return Code("654321", FORM_LINK, secrets.link_secret)

    outcome = run(Pair({"a": b"x"}, code=other_room))
    assert isinstance(outcome.receiver_error, WrongCodeError)


def flip_in(kind: int, nth: int = 0, offset: int = -1):
    seen = {"count": 0}

    def tamper(direction, message):
        if message[0] == kind and direction == "s2r":
            if seen["count"] == nth:
                seen["count"] += 1
                data = bytearray(message)
                data[offset] ^= 0x01
                return [bytes(data)]
            seen["count"] += 1
        return [message]

    return tamper


def test_flipped_data_byte_is_detected_and_file_not_completed():
    files = {"big": os.urandom(3 << 20)}
    outcome = run(Pair(files, tamper=flip_in(MSG_DATA, nth=1, offset=5000)))
    assert isinstance(outcome.receiver_error, TamperedError)
    assert outcome.completed == []
    assert isinstance(outcome.sender_error, PeerCancelledError)


def test_flipped_byte_in_the_file_header_commitment_is_detected():
    outcome = run(Pair({"a": os.urandom(100)}, tamper=flip_in(MSG_DATA, nth=0, offset=30)))
    assert isinstance(outcome.receiver_error, TamperedError)


def test_flipped_manifest_is_detected():
    outcome = run(Pair({"a": b"x"}, tamper=flip_in(MSG_SEALED, nth=0, offset=20)))
    assert isinstance(outcome.receiver_error, TamperedError)


def test_dropped_data_frame_is_detected():
    state = {"dropped": False}

    def drop_second_frame(direction, message):
        if direction == "s2r" and message[0] == MSG_DATA and not state["dropped"]:
            state["dropped"] = True
            return []
        return [message]

    outcome = run(Pair({"a": os.urandom(3 << 20)}, tamper=drop_second_frame))
    assert isinstance(outcome.receiver_error, TamperedError)
    assert outcome.completed == []


def test_replayed_data_frame_is_detected():
    def replay(direction, message):
        if direction == "s2r" and message[0] == MSG_DATA:
            return [message, message]
        return [message]

    outcome = run(Pair({"a": os.urandom(3 << 20)}, tamper=replay))
    assert isinstance(outcome.receiver_error, (TamperedError, ProtocolError))
    assert outcome.completed == []


def test_replayed_control_message_is_detected():
    def replay_sealed(direction, message):
        if direction == "r2s" and message[0] == MSG_SEALED:
            return [message, message]
        return [message]

    outcome = run(Pair({"a": os.urandom(10)}, tamper=replay_sealed))
    assert isinstance(outcome.sender_error, TamperedError)


def test_truncated_stream_never_completes_the_file():
    def cut_last(direction, message):
        if direction == "s2r" and message[0] == MSG_DATA and len(message) < DATA_FRAME_SIZE + 1:
            return [message[:-10]]
        return [message]

    outcome = run(Pair({"a": os.urandom(2 << 20)}, tamper=cut_last))
    assert outcome.completed == []
    assert not any(isinstance(e, ev.Completed) for e in outcome.sender_events)


async def accepted(pair: Pair) -> None:
    """Run the handshake and the offer until the receiver accepted, delivering nothing else."""
    sender, receiver = pair.sender, pair.receiver
    await sender.start()
    while not any(isinstance(e, ev.Accepted) for e in pair.outcome.sender_events):
        for message in sender.data_to_send():
            for event in await receiver.receive(message):
                if isinstance(event, ev.Offered):
                    await receiver.accept()
        for message in receiver.data_to_send():
            pair.outcome.sender_events += await sender.receive(message)


async def frames_until_blocked(pair: Pair, limit: int = 64 << 20) -> list[bytes]:
    """Everything the sender sends while nothing reaches the receiver."""
    frames: list[bytes] = []
    while (request := pair.sender.next_read()) is not None and sum(map(len, frames)) < limit:
        index, offset, length = request
        await pair.sender.send_plaintext(pair.files[index][offset : offset + length])
        frames += [m for m in pair.sender.data_to_send() if m[0] == MSG_DATA]
    return frames


def test_sender_never_exceeds_the_granted_credit():
    pair = Pair({"big": os.urandom(40 << 20)})

    async def scenario():
        await accepted(pair)
        return sum(len(frame) - 1 for frame in await frames_until_blocked(pair))

    queued = asyncio.run(scenario())
    assert INITIAL_CREDIT - DATA_FRAME_SIZE < queued <= INITIAL_CREDIT


def hostile_manifest(paths: list[str]) -> bytes:
    return json.dumps(
        {"version": 1, "files": [{"path": p, "size": 1} for p in paths], "dirs": []}
    ).encode()


def test_hostile_paths_are_neutralised_not_refused():
    manifest = Manifest.decode(hostile_manifest(["../../etc/passwd", "/abs/x", "a/./b", "c\x1bd"]))
    files, _ = manifest.safe_paths()
    assert files == [("_", "_", "etc", "passwd"), ("abs", "x"), ("a", "b"), ("c_d",)]


def test_colliding_paths_are_refused():
    manifest = Manifest.decode(hostile_manifest(["a/B", "a/b"]))
    with pytest.raises(UnsafePathError):
        manifest.safe_paths()


def test_file_used_as_a_directory_is_refused():
    manifest = Manifest.decode(hostile_manifest(["a", "a/b"]))
    with pytest.raises(UnsafePathError):
        manifest.safe_paths()


@pytest.mark.parametrize(
    "doc",
    [
        b"not json",
        b"[]",
        b'{"version": 2, "files": []}',
        b'{"version": 1, "files": [{"path": 3, "size": 1}]}',
        b'{"version": 1, "files": [{"path": "a", "size": -1}]}',
        b'{"version": 1, "files": [{"path": "a", "size": true}]}',
        b'{"version": 1, "files": {}}',
    ],
)
def test_malformed_manifests_are_protocol_errors(doc):
    with pytest.raises(ProtocolError):
        Manifest.decode(doc)


def test_manifest_round_trips():
    manifest = Manifest((FileEntry("ü/é.txt", 5, 0o600, 1_700_000_000),))
    assert Manifest.decode(manifest.encode()) == manifest


def test_a_manifest_larger_than_one_frame_travels_in_pieces():
    # 60,000 files with 40-byte names: a 4 MiB manifest, four times the relay's frame limit.
    names = {f"folder/{i:06d}-{'x' * 26}.txt": b"" for i in range(60_000)}
    frames: list[int] = []

    def count(direction: str, message: bytes) -> list[bytes]:
        frames.append(len(message))
        return [message]

    pair = Pair(names, tamper=count)
    outcome = run(pair)
    assert outcome.sender_error is None and outcome.receiver_error is None
    assert sorted(outcome.completed) == list(range(60_000))
    assert max(frames) <= 1 + DATA_FRAME_SIZE


def test_the_protocols_manifest_limits_are_checked_before_sending():
    too_many = Manifest(tuple(FileEntry(f"{i}", 0) for i in range(MAX_MANIFEST_ENTRIES + 1)))
    with pytest.raises(ProtocolError, match="at most 100,000"):
        too_many.encode()
    long_names = Manifest(tuple(FileEntry(f"{i:05d}" + "y" * 4000, 0) for i in range(4500)))
    with pytest.raises(ProtocolError, match="MiB"):
        long_names.encode()


def test_the_sender_shows_what_the_receiver_verified_never_more():
    # Both sides show progress, speed and time left from the same number: the content bytes the
    # receiver verified and stored, which it reports in CREDIT (§7). The sender's own reads run
    # up to a credit window (16 MiB) ahead and must not be shown as progress.
    data = os.urandom(40 * 1024 * 1024)
    pair = Pair({"big.bin": data})
    shown: list[int] = []
    receive = pair.sender.receive

    async def checked(message: bytes):
        events = await receive(message)
        for event in events:
            if isinstance(event, ev.Progress):
                assert event.done <= pair.receiver.bytes_done
                assert event.total == len(data)
                shown.append(event.done)
        return events

    pair.sender.receive = checked
    outcome = run(pair)
    assert outcome.received[0] == data
    assert shown == sorted(shown) and len(shown) >= 5
    assert len(data) - shown[-1] <= 2 * CREDIT_BATCH


def test_a_sender_of_another_version_is_told_so_not_that_its_message_was_malformed():
    def older_hello(direction: str, message: bytes) -> list[bytes]:
        if direction == "s2r" and message[0] == MSG_HELLO:
            return [message[:1] + bytes([PROTOCOL_VERSION - 1]) + message[2:]]
        return [message]

    outcome = run(Pair({"a": b"x"}, tamper=older_hello))

    assert isinstance(outcome.receiver_error, VersionError)
    assert isinstance(outcome.sender_error, VersionError)  # ABORT 0x02, not 0x03 (§4)
    assert "different Hushdrop version" in str(outcome.sender_error)


@pytest.mark.parametrize("reason", [0x01, 0x04])  # "confirmation failed", "cancelled"
def test_an_abort_forged_after_the_receivers_confirm_is_ignored(reason):
    """A relay that injects ABORT while the receiver decides (after CONFIRM, before ACCEPT)
    neither ends the transfer nor raises a false "intercepted" alarm (PROTOCOL.md §5.4)."""

    def forge(direction: str, message: bytes) -> list[bytes]:
        if direction == "r2s" and message[0] == MSG_CONFIRM:
            return [message, encode_abort(reason)]
        return [message]

    files = {"a.txt": b"hello"}
    outcome = asyncio.run(Pair(files, tamper=forge).run())
    assert outcome.sender_error is None and outcome.receiver_error is None
    assert outcome.received[0] == b"hello"
