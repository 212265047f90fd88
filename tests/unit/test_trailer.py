"""The 32-byte trailer after each file's content (PROTOCOL.md §7.3): zeros for a file sent in one
ciphertext from its first byte, the whole file's SHA-256 for one stitched together after a resume.
Real sessions and real crypto; the misbehaving senders differ from the real one only in their
trailer."""

from __future__ import annotations

import asyncio
import hashlib
import os

from hushdrop.protocol import events as ev
from hushdrop.protocol.constants import FILE_DIGEST_SIZE, MSG_DATA
from hushdrop.protocol.errors import ProtocolError, TamperedError
from hushdrop.protocol.keys import SessionKeys
from hushdrop.protocol.manifest import FileEntry, Manifest
from hushdrop.protocol.receiver import ReceiverSession
from hushdrop.protocol.sender import SenderSession

from .pair import Pair, manifest_for
from .test_resume import Link, assert_intact, reconnect

MIB = 1 << 20


class HashingSender(SenderSession):
    """A version-3 sender: the whole file's SHA-256 in every trailer, resumed or not."""

    def _new_hash(self, index: int, start: int):
        return hashlib.sha256()

    def _trailer(self) -> bytes:
        return self._hash.digest()


class ZeroTrailerSender(SenderSession):
    """A sender that never sends a hash, not even for a file stitched after a resume."""

    def _trailer(self) -> bytes:
        return bytes(FILE_DIGEST_SIZE)


def pair_with(sender_class: type[SenderSession], files: dict[str, bytes], **kwargs) -> Pair:
    pair = Pair(files, **kwargs)
    manifest = kwargs.get("manifest") or manifest_for(files)
    pair.sender = sender_class(pair.backend, pair.secrets, manifest)
    return pair


def saved(outcome) -> list[int]:
    return [e.index for e in outcome.receiver_events if isinstance(e, ev.FileCompleted)]


def test_a_file_sent_whole_arrives_with_its_sha256_reported_though_none_was_sent():
    files = {"a.bin": os.urandom(3 * MIB + 7), "b.bin": os.urandom(1000)}
    pair = Pair(files)
    outcome = asyncio.run(pair.run())
    assert_intact(pair, outcome, files)
    reported = [e.sha256 for e in outcome.receiver_events if isinstance(e, ev.FileCompleted)]
    assert reported == [hashlib.sha256(data).hexdigest() for data in files.values()]


def test_a_file_sent_whole_with_a_hash_in_its_trailer_is_refused():
    files = {"a.bin": os.urandom(2 * MIB)}
    outcome = asyncio.run(pair_with(HashingSender, files).run())
    assert isinstance(outcome.receiver_error, ProtocolError)
    assert "a SHA-256 where none belongs" in str(outcome.receiver_error)
    assert saved(outcome) == []


def test_a_resumed_file_whose_trailer_is_not_the_whole_files_hash_is_refused():
    async def scenario():
        files = {"a.bin": os.urandom(4 * MIB)}
        link = Link(2)
        pair = pair_with(ZeroTrailerSender, files, tamper=link)
        await pair.run()
        assert 0 < pair.receiver.bytes_done < len(files["a.bin"])  # resumes inside the file
        reconnect(pair, link)
        outcome = await pair.proceed()
        assert isinstance(outcome.receiver_error, TamperedError)
        assert "wrong SHA-256" in str(outcome.receiver_error)
        assert saved(outcome) == []

    asyncio.run(scenario())


def test_a_resume_at_the_start_of_a_file_needs_no_hash():
    async def scenario():
        files = {"first.bin": os.urandom(MIB), "second.bin": os.urandom(3 * MIB)}
        link = Link(0)  # lost with the first DATA message: the resume is at (0, 0)
        pair = pair_with(ZeroTrailerSender, files, tamper=link)
        await pair.run()
        assert link.cut and pair.receiver.bytes_done == 0
        reconnect(pair, link)
        assert_intact(pair, await pair.proceed(), files)

    asyncio.run(scenario())


def stream_pair(sender_class: type[SenderSession], data: bytes, tamper) -> Pair:
    """`data` as a stream of unknown size (§7.2), read in one piece."""
    manifest = Manifest((FileEntry("stdin", None),))
    return pair_with(sender_class, {"stdin": data}, manifest=manifest, tamper=tamper)


class DropStreamEnd(Link):
    """Loses the first empty DATA that ends a stream's data stream, and everything after it."""

    dropped = False

    def __call__(self, direction: str, message: bytes) -> list[bytes]:
        if message == bytes([MSG_DATA]) and not self.dropped:
            self.cut = self.dropped = True
        return super().__call__(direction, message)


def test_a_stream_resumed_at_its_read_position_ends_with_the_whole_streams_hash():
    async def scenario():
        # 1 MiB of content ends in a full chunk (the padding fills the rest, §7.1), so the
        # receiver has verified all of it when the stream's end is lost: it resumes there.
        data = os.urandom(MIB)
        link = DropStreamEnd()
        pair = stream_pair(SenderSession, data, link)
        await pair.run()
        assert pair.receiver.bytes_done == len(data) and not pair.sender.finished
        reconnect(pair, link)
        outcome = await pair.proceed()
        assert ev.Resumed(len(data)) in outcome.receiver_events
        assert outcome.sender_error is None and outcome.receiver_error is None
        assert outcome.received[0] == data and pair.sender.finished

    asyncio.run(scenario())


def test_a_stream_resumed_inside_without_its_hash_is_refused():
    async def scenario():
        link = DropStreamEnd()
        pair = stream_pair(ZeroTrailerSender, os.urandom(MIB), link)
        await pair.run()
        reconnect(pair, link)
        outcome = await pair.proceed()
        assert isinstance(outcome.receiver_error, TamperedError)
        assert saved(outcome) == []

    asyncio.run(scenario())


def test_a_restarted_receiver_whose_kept_prefix_changed_on_disk_refuses_the_file():
    async def scenario():
        files = {"a.bin": os.urandom(4 * MIB)}
        link = Link(2)
        pair = Pair(files, tamper=link)
        outcome = await pair.run()
        kept = outcome.received[0]
        assert 0 < len(kept) < len(files["a.bin"])
        altered = b"\xff" + kept[1:]  # the .part file changed while the receiver was stopped
        keys: SessionKeys = pair.receiver.keys
        pair.receiver = ReceiverSession.restore(
            pair.backend,
            pair.receiver._handshake._code,
            SessionKeys(b"", b"", keys.data, keys.sas, keys.resume),
            pair.receiver.manifest,
            0,
            (len(altered), hashlib.sha256(altered)),
        )
        assert pair.sender.connection_lost()
        link.cut, link.cut_after_data = False, None
        pair.sender.resume()
        pair.receiver.resume()
        outcome = await pair.proceed()
        assert isinstance(outcome.receiver_error, TamperedError)
        assert saved(outcome) == []

    asyncio.run(scenario())
