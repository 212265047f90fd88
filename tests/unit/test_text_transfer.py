"""A text sent instead of, or with, files (PROTOCOL.md §6.1.1): the sealed manifest announces its
size, the text is the data stream's first entry (encrypted, framed and padded like a file), and
the receiver shows it only once it arrived whole and verified, made printable on a terminal."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path

import pytest
from hushdrop.cli.resume_record import ResumeRecord
from hushdrop.protocol import events as ev
from hushdrop.protocol.constants import MAX_TEXT_BYTES, MSG_DATA, MSG_SEALED, MSG_SEALED_PART
from hushdrop.protocol.errors import ProtocolError
from hushdrop.protocol.keys import SessionKeys
from hushdrop.protocol.manifest import FileEntry, Manifest, TextError, text_bytes
from hushdrop.protocol.receiver import ReceiverSession
from hushdrop.protocol.text import printable_text

from .pair import Pair
from .test_resume import Link, reconnect


def run_text(text: str, files: dict[str, bytes] | None = None, tamper=None):
    files = files or {}
    return asyncio.run(text_pair(text, files, tamper).run())


def text_pair(text: str, files: dict[str, bytes] | None = None, tamper=None) -> Pair:
    files = files or {}
    size = len(text.encode("utf-8"))
    manifest = Manifest(tuple(FileEntry(p, len(d)) for p, d in files.items()), (), size)
    return Pair(files, manifest=manifest, tamper=tamper, text=text)


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


def test_a_text_arrives_before_the_files_and_is_no_file_event():
    outcome = run_text("first", {"a.bin": b"abc"})
    kinds = [type(e) for e in outcome.receiver_events]
    assert kinds.index(ev.TextReceived) < kinds.index(ev.FileStarted)
    assert [e.index for e in outcome.receiver_events if isinstance(e, ev.FileStarted)] == [0]
    assert outcome.completed == [0]


def test_a_text_is_shown_only_once_all_of_it_arrived():
    text = "ß" * 300_000  # 600,000 bytes: a DATA message of 1 MiB cannot hold it twice over
    pair = text_pair(text)
    shown_at: list[int] = []
    delivered = 0

    def count(direction: str, message: bytes) -> list[bytes]:
        nonlocal delivered
        if direction == "s2r" and message[0] == MSG_DATA:
            delivered += len(message) - 1
        return [message]

    pair.tamper = count
    original = pair._on_receiver_event

    async def on_event(event):
        if isinstance(event, ev.TextReceived):
            shown_at.append(delivered)
        await original(event)

    pair._on_receiver_event = on_event
    outcome = asyncio.run(pair.run())
    assert received_texts(outcome) == [text]
    assert shown_at == [delivered]  # after the last DATA byte of the text, not before


def test_a_text_travels_with_files_and_the_files_arrive_too():
    files = {"a.bin": b"x" * 70_000, "b/c.txt": b"see"}
    outcome = run_text("about these files", files)
    assert outcome.receiver_error is None and outcome.sender_error is None
    assert received_texts(outcome) == ["about these files"]
    assert outcome.received == {0: files["a.bin"], 1: files["b/c.txt"]}


def test_an_empty_text_is_still_a_text():
    outcome = run_text("")
    assert received_texts(outcome) == [""]


def test_the_largest_text_travels_in_data_messages_and_a_one_bucket_manifest():
    text = "é" * (MAX_TEXT_BYTES // 2)  # exactly MAX_TEXT_BYTES of UTF-8
    seen: list[tuple[int, int]] = []

    def record(direction: str, message: bytes) -> list[bytes]:
        if direction == "s2r":
            seen.append((message[0], len(message)))
        return [message]

    outcome = run_text(text, tamper=record)
    assert received_texts(outcome) == [text]
    assert MSG_SEALED_PART not in [kind for kind, _ in seen]
    assert next(size for kind, size in seen if kind == MSG_SEALED) == 1 + 256 + 16
    assert sum(size - 1 for kind, size in seen if kind == MSG_DATA) > MAX_TEXT_BYTES


def wire_lengths(pair: Pair) -> list[tuple[int, int]]:
    """(type, length) of every message the sender sent, in order."""
    seen: list[tuple[int, int]] = []

    def record(direction: str, message: bytes) -> list[bytes]:
        if direction == "s2r":
            seen.append((message[0], len(message)))
        return [message]

    pair.tamper = record
    outcome = asyncio.run(pair.run())
    assert outcome.sender_error is None and outcome.receiver_error is None
    return seen


@pytest.mark.parametrize("size", [0, 25, 16_352, 70_000, MAX_TEXT_BYTES])
def test_a_text_and_a_file_of_the_same_size_look_the_same_on_the_wire(size):
    text = "x" * size
    file = Manifest((FileEntry("notes.txt", size, 0o644, 1763769600),))
    assert wire_lengths(text_pair(text)) == wire_lengths(
        Pair({"notes.txt": text.encode()}, manifest=file)
    )


def test_a_text_with_files_looks_like_one_more_file_on_the_wire():
    files = {"a.bin": b"a" * 5000, "b.bin": b"b" * 20_000}
    with_text = text_pair("t" * 3000, files)
    three = {"t.txt": b"t" * 3000, **files}
    as_files = Pair(three, manifest=Manifest(tuple(FileEntry(p, len(d)) for p, d in three.items())))
    assert wire_lengths(with_text) == wire_lengths(as_files)


def test_text_bytes_refuses_a_text_over_the_limit_with_a_clear_message():
    text_bytes("x" * MAX_TEXT_BYTES)
    # Exact bytes: rounded, one byte over the limit read "1.0 MiB; at most 1.0 MiB".
    with pytest.raises(
        TextError, match=r"The text is 1,048,577 bytes; at most 1,048,576 bytes of text go"
    ):
        text_bytes("x" * (MAX_TEXT_BYTES + 1))


def test_a_manifest_with_too_large_a_text_is_not_encoded():
    with pytest.raises(TextError):
        Manifest((), (), MAX_TEXT_BYTES + 1).encode()


def test_a_sender_refuses_a_text_the_manifest_does_not_announce():
    with pytest.raises(ValueError, match="text_size"):
        Pair({}, manifest=Manifest((), (), 4), text="five!")


def test_a_text_that_is_not_unicode_is_refused_before_sending():
    with pytest.raises(TextError, match="not valid Unicode"):
        text_bytes("bad \udcff byte")


def test_a_manifest_announces_only_the_texts_size():
    manifest = Manifest((FileEntry("a", 1),), (), 11)
    assert json.loads(manifest.encode())["text"] == {"size": 11}
    assert Manifest.decode(manifest.encode()) == manifest
    assert Manifest.decode(Manifest((FileEntry("a", 1),)).encode()).text_size is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (5, "text is malformed"),
        ("hello", "text is malformed"),
        ({"size": -1}, "text is malformed"),
        ({"size": True}, "text is malformed"),
        ({"size": 3, "body": "abc"}, "text is malformed"),
        ({"size": MAX_TEXT_BYTES + 1}, r"larger than 1\.0 MiB"),
    ],
)
def test_a_received_manifest_with_a_bad_text_is_refused(text, message):
    doc = json.dumps({"version": 1, "files": [], "dirs": [], "text": text}).encode()
    with pytest.raises(ProtocolError, match=message):
        Manifest.decode(doc)


def test_a_received_text_that_is_not_utf8_fails_the_transfer():
    # A sender whose text is not UTF-8: what arrives authenticated is still refused.
    pair = Pair({}, manifest=Manifest((), (), 5), text="abcde")
    pair.sender._text = b"ab\xffcd"
    outcome = asyncio.run(pair.run())
    assert isinstance(outcome.receiver_error, ProtocolError)
    assert "not valid Unicode" in str(outcome.receiver_error)
    assert received_texts(outcome) == []


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


def test_a_resume_record_keeps_the_texts_size_and_whether_it_was_shown(tmp_path):
    keys = SessionKeys(b"c" * 32, b"d" * 32, b"e" * 32, "ABCD-EF01", b"r" * 32)
    manifest = Manifest((FileEntry("a.bin", 5),), (), 21)
    path = tmp_path / ".hushdrop-0.resume"
    record = ResumeRecord(path, keys, manifest, [Path("a.bin")], "0" * 16, "t")
    record.save()
    assert ResumeRecord.load(record.path).manifest == manifest
    assert not ResumeRecord.load(record.path).text_shown
    record.mark_text_shown()
    assert ResumeRecord.load(record.path).text_shown


# Resuming (PROTOCOL.md §6.1.1, §8): the text is an entry like a file.

LONG_TEXT = "Grüße " * (MAX_TEXT_BYTES // 8)  # the most a text may be: spans two DATA messages
FILES_AFTER = {"a.bin": os.urandom(3 * 1024 * 1024 + 7), "b.bin": os.urandom(40_000)}


def text_data_resent(cut_after: int) -> tuple[Pair, object, int]:
    """Send LONG_TEXT and FILES_AFTER, lose the connection after `cut_after` DATA messages,
    reconnect; (pair, outcome, DATA bytes sent after the reconnection)."""

    async def scenario():
        link = Link(cut_after)
        pair = text_pair(LONG_TEXT, FILES_AFTER, link)
        await pair.run()
        assert link.cut and not pair.sender.finished
        reconnect(pair, link)
        before = link.data_bytes
        outcome = await pair.proceed()
        return pair, outcome, link.data_bytes - before

    return asyncio.run(scenario())


def test_a_connection_lost_inside_the_text_resumes_inside_it_and_shows_it_once():
    _, outcome, resent = text_data_resent(1)  # the first DATA message held part of the text
    assert outcome.sender_error is None and outcome.receiver_error is None
    assert received_texts(outcome) == [LONG_TEXT]
    assert outcome.received == {0: FILES_AFTER["a.bin"], 1: FILES_AFTER["b.bin"]}
    files = sum(len(d) for d in FILES_AFTER.values())
    # Only the part of the text the receiver had not verified travels again.
    assert resent < len(LONG_TEXT.encode()) - 900_000 + files + 64 * 1024


def test_a_connection_lost_after_the_text_does_not_show_it_again():
    _, outcome, resent = text_data_resent(3)
    assert outcome.sender_error is None and outcome.receiver_error is None
    assert received_texts(outcome) == [LONG_TEXT]
    assert outcome.received == {0: FILES_AFTER["a.bin"], 1: FILES_AFTER["b.bin"]}
    assert resent < sum(len(d) for d in FILES_AFTER.values())


def restarted(pair: Pair, saved: int, partial, text_shown: bool) -> ReceiverSession:
    keys: SessionKeys = pair.receiver.keys
    return ReceiverSession.restore(
        pair.backend,
        pair.receiver._handshake._code,
        SessionKeys(b"", b"", keys.data, keys.sas, keys.resume),
        pair.receiver.manifest,
        saved,
        partial,
        text_shown=text_shown,
    )


def resume_restarted(pair: Pair, link: Link, receiver: ReceiverSession):
    pair.receiver = receiver
    assert pair.sender.connection_lost()
    link.cut, link.cut_after_data = False, None
    pair.sender.resume()
    receiver.resume()
    return asyncio.run(pair.proceed())


def test_a_restarted_receiver_that_had_not_shown_the_text_gets_it_again_from_the_start():
    link = Link(1)
    pair = text_pair(LONG_TEXT, FILES_AFTER, link)
    first = asyncio.run(pair.run())
    assert received_texts(first) == []  # cut inside the text: nothing shown yet
    first.receiver_events.clear()
    outcome = resume_restarted(pair, link, restarted(pair, 0, None, text_shown=False))
    assert outcome.sender_error is None and outcome.receiver_error is None
    assert received_texts(outcome) == [LONG_TEXT]
    assert outcome.received == {0: FILES_AFTER["a.bin"], 1: FILES_AFTER["b.bin"]}


def test_a_restarted_receiver_that_showed_the_text_resumes_in_the_files_without_it():
    link = Link(3)
    pair = text_pair(LONG_TEXT, FILES_AFTER, link)
    first = asyncio.run(pair.run())
    assert received_texts(first) == [LONG_TEXT]
    partial = first.received[0][:-1000]
    first.receiver_events.clear()
    receiver = restarted(pair, 0, (len(partial), hashlib.sha256(partial)), text_shown=True)
    first.received[0] = partial
    outcome = resume_restarted(pair, link, receiver)
    assert outcome.sender_error is None and outcome.receiver_error is None
    assert received_texts(outcome) == []
    assert outcome.received == {0: FILES_AFTER["a.bin"], 1: FILES_AFTER["b.bin"]}
