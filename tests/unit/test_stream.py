"""A file of unknown size (PROTOCOL.md §7.2): segments, flushes, end record, padding, resume."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os

import pytest
from hushdrop.crypto.chunked import ENCRYPTED_CHUNK_SIZE, HEADER_SIZE, ciphertext_size
from hushdrop.protocol import events as ev
from hushdrop.protocol import sender as sender_module
from hushdrop.protocol import stream
from hushdrop.protocol.constants import (
    CREDIT_BATCH,
    DATA_FRAME_SIZE,
    INITIAL_CREDIT,
    MSG_DATA,
    MSG_SEALED,
)
from hushdrop.protocol.errors import (
    PeerCancelledError,
    ProtocolError,
    StreamLostError,
    TamperedError,
)
from hushdrop.protocol.keys import SessionKeys
from hushdrop.protocol.manifest import FileEntry, Manifest
from hushdrop.protocol.padding import padme
from hushdrop.protocol.receiver import ReceiverSession

from .pair import Pair
from .test_resume import Link, reconnect
from .test_session import accepted

PIPE_READS = (65536, 1, 4096, 200_000)  # a pipe returns whatever is there


def stream_pair(files: dict[str, bytes], **kwargs) -> Pair:
    """The last file is sent as a stream of unknown size, read in pipe-like pieces."""
    entries = [FileEntry(path, len(data)) for path, data in files.items()]
    entries[-1] = FileEntry(entries[-1].path, None)
    stream = len(entries) - 1
    reads = {"count": 0}

    def read(index: int, offset: int, length: int) -> bytes:
        data = list(files.values())[index]
        if index != stream:
            return data[offset : offset + length]
        reads["count"] += 1
        piece = min(length, PIPE_READS[reads["count"] % len(PIPE_READS)])
        return data[offset : offset + piece]

    return Pair(files, manifest=Manifest(tuple(entries)), read=read, **kwargs)


def data_bytes(pair: Pair) -> list[int]:
    sizes: list[int] = []
    inner = pair.tamper

    def count(direction: str, message: bytes) -> list[bytes]:
        if direction == "s2r" and message[0] == MSG_DATA:
            sizes.append(len(message) - 1)
        return inner(direction, message)

    pair.tamper = count
    return sizes


@pytest.mark.parametrize("size", [0, 1, 16_383, 16_384, 65_537, DATA_FRAME_SIZE, 3 << 20])
def test_a_stream_of_unknown_size_arrives_intact(size):
    data = os.urandom(size)
    pair = stream_pair({"stdin": data})
    outcome = asyncio.run(pair.run())
    assert outcome.sender_error is None and outcome.receiver_error is None
    assert outcome.received.get(0, b"") == data
    completed = [e for e in outcome.receiver_events if isinstance(e, ev.FileCompleted)]
    assert completed == [ev.FileCompleted(0, hashlib.sha256(data).hexdigest())]
    assert pair.sender.finished
    assert pair.receiver.bytes_total == pair.sender.bytes_total == size


def test_a_stream_may_follow_files_of_known_size():
    files = {"folder/a": os.urandom(70_000), "folder/b": b"", "stdin": os.urandom(2 << 20)}
    outcome = asyncio.run(stream_pair(files).run())
    assert outcome.receiver_error is None
    assert [outcome.received.get(i, b"") for i in range(3)] == list(files.values())
    assert outcome.completed == [0, 1, 2]


def test_progress_has_no_total_until_the_stream_ended():
    pair = stream_pair({"stdin": os.urandom(40 << 20)})
    outcome = asyncio.run(pair.run())
    totals = [e.total for e in outcome.sender_events if isinstance(e, ev.Progress)]
    assert totals and set(totals) == {None}
    assert pair.sender.bytes_total == 40 << 20


def test_the_data_stream_is_padded_to_the_padme_length_of_the_framed_stream():
    size = 5 << 20
    pair = stream_pair({"stdin": os.urandom(size)})
    sizes = data_bytes(pair)
    asyncio.run(pair.run())
    # Whatever the segmentation, the plaintext the relay can measure is a PADMÉ length, and the
    # data ends with the empty DATA message that marks where the final chunk ends.
    assert sizes[-1] == 0
    plaintext_lengths = [
        p for p in range(size, size + (size >> 3)) if ciphertext_size(p) == sum(sizes)
    ]
    assert plaintext_lengths and all(padme(p) == p for p in plaintext_lengths)


def test_streams_in_one_padme_bucket_look_the_same_to_the_relay():
    # padme(T) is equal for both framed lengths (framing adds < 1000 bytes), so the DATA bytes
    # are too.
    first, second = 3_000_000, 3_010_000
    assert padme(first) == padme(second + 1000)
    seen = []
    for size in (first, second):
        pair = stream_pair({"stdin": os.urandom(size)})
        sizes = data_bytes(pair)
        asyncio.run(pair.run())
        seen.append(sum(sizes))
    assert seen[0] == seen[1]


def test_a_truncated_stream_fails_authentication():
    def cut(direction: str, message: bytes) -> list[bytes]:
        if direction == "s2r" and message[0] == MSG_DATA and 1 < len(message) < DATA_FRAME_SIZE:
            return [message[:-100]]
        return [message]

    outcome = asyncio.run(stream_pair({"stdin": os.urandom(2 << 20)}, tamper=cut).run())
    assert isinstance(outcome.receiver_error, TamperedError)
    assert outcome.completed == []


def test_a_stream_cut_at_a_chunk_boundary_and_ended_early_is_detected():
    def end_early(direction: str, message: bytes) -> list[bytes]:
        if direction == "s2r" and message[0] == MSG_DATA and len(message) > 1:
            return [message, bytes([MSG_DATA])]  # the end marker after the first message
        return [message]

    outcome = asyncio.run(stream_pair({"stdin": os.urandom(3 << 20)}, tamper=end_early).run())
    assert isinstance(outcome.receiver_error, TamperedError)
    assert outcome.completed == []


def test_a_flipped_byte_in_a_stream_is_detected():
    def flip(direction: str, message: bytes) -> list[bytes]:
        if direction == "s2r" and message[0] == MSG_DATA and len(message) > 1000:
            data = bytearray(message)
            data[999] ^= 1
            return [bytes(data)]
        return [message]

    outcome = asyncio.run(stream_pair({"stdin": os.urandom(100_000)}, tamper=flip).run())
    assert isinstance(outcome.receiver_error, TamperedError)


def test_a_stream_is_the_last_file_or_the_manifest_is_refused():
    doc = {"version": 1, "files": [{"path": "a", "size": None}, {"path": "b", "size": 1}]}
    with pytest.raises(ProtocolError):
        Manifest.decode(json.dumps(doc).encode())
    with pytest.raises(ProtocolError):
        Manifest((FileEntry("a", None), FileEntry("b", 1))).encode()


def test_a_streams_unknown_size_travels_as_null():
    manifest = Manifest((FileEntry("a", 3), FileEntry("stdin", None)))
    encoded = manifest.encode()
    assert json.loads(encoded)["files"][1]["size"] is None
    decoded = Manifest.decode(encoded)
    assert decoded == manifest and decoded.has_stream and decoded.total_size is None


@pytest.mark.parametrize("before", [{}, {"a.bin": os.urandom(3 << 20)}], ids=["alone", "after"])
def test_a_lost_connection_while_streaming_resumes_from_the_receivers_position(before):
    async def scenario():
        link = Link(cut_after_data=5)
        files = {**before, "stdin": os.urandom(12 << 20)}
        pair = stream_pair(files, tamper=link)
        await pair.run()
        assert link.cut and pair.sender._stream_read > 0
        reconnect(pair, link)
        outcome = await pair.proceed()
        assert outcome.sender_error is None and outcome.receiver_error is None
        assert [outcome.received.get(i, b"") for i in range(len(files))] == list(files.values())
        assert pair.sender.finished

    asyncio.run(scenario())


def test_a_sender_keeps_about_one_credit_window_of_a_stream():
    pair = stream_pair({"stdin": os.urandom(64 << 20)})
    peak = [0]
    inner = pair.tamper

    def sample(direction: str, message: bytes) -> list[bytes]:
        peak[0] = max(peak[0], sum(len(data) for _, data in pair.sender._kept))
        return inner(direction, message)

    pair.tamper = sample
    outcome = asyncio.run(pair.run())
    assert outcome.receiver_error is None and pair.sender.finished
    assert 0 < peak[0] <= INITIAL_CREDIT + CREDIT_BATCH + 2 * DATA_FRAME_SIZE


def test_a_receiver_behind_what_the_sender_kept_of_a_stream_is_told_it_was_lost():
    async def scenario():
        link = Link(cut_after_data=30)
        pair = stream_pair({"stdin": os.urandom(48 << 20)}, tamper=link)
        await pair.run()
        assert pair.sender._kept[0][0] > 0  # the receiver verified, the sender let go
        keys: SessionKeys = pair.receiver.keys
        pair.receiver = ReceiverSession.restore(  # restarted with none of it (§8.3)
            pair.backend,
            pair.receiver._handshake._code,
            SessionKeys(b"", b"", keys.data, keys.sas, keys.resume),
            pair.receiver.manifest,
            0,
            (0, hashlib.sha256()),
        )
        assert pair.sender.connection_lost()
        link.cut, link.cut_after_data = False, None
        pair.sender.resume()
        pair.receiver.resume()
        outcome = await pair.proceed()
        assert isinstance(outcome.sender_error, StreamLostError)
        assert isinstance(outcome.receiver_error, PeerCancelledError)
        assert "cannot be read again" in str(outcome.receiver_error)
        assert not any(isinstance(e, ev.FileCompleted) for e in outcome.receiver_events)

    asyncio.run(scenario())


def test_a_connection_lost_before_the_stream_was_read_resumes():
    async def scenario():
        link = Link()
        data = os.urandom(1 << 20)
        pair = stream_pair({"stdin": data}, tamper=link)
        await accepted(pair)  # the connection is lost before the sender read anything
        assert pair.sender.state == "sending" and pair.sender.next_read() is not None
        reconnect(pair, link)
        outcome = await pair.proceed()
        assert outcome.sender_error is None and outcome.receiver_error is None
        assert outcome.received[0] == data and pair.sender.finished

    asyncio.run(scenario())


def test_a_sender_reading_a_stream_may_move_to_another_connection():
    async def scenario():
        pair = stream_pair({"stdin": os.urandom(3 << 20)})
        await pair.run(max_rounds=6)
        assert pair.sender.state == "sending" and pair.sender._stream_read > 0
        assert pair.sender.can_switch

    asyncio.run(scenario())


class QuietProducer:
    """Standard input whose writer pauses: reads return what was written, None while it
    waits, b"" once it closed."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def read(self, index: int, offset: int, length: int) -> bytes | None:
        if self.written:
            return self.written.pop(0)
        return b"" if self.closed else None


def quiet_pair(producer: QuietProducer) -> Pair:
    manifest = Manifest((FileEntry("stdin", None),))
    return Pair({"stdin": b""}, manifest=manifest, read=producer.read)


def test_what_a_quiet_producer_wrote_arrives_when_its_input_goes_idle():
    async def scenario():
        producer = QuietProducer()
        pair = quiet_pair(producer)
        producer.written.append(b"a\n")
        await pair.run()
        assert pair.outcome.received.get(0, b"") == b""  # held in a partial chunk
        await pair.sender.input_idle()
        await pair.proceed()
        assert pair.outcome.received[0] == b"a\n"
        producer.written.append(b"b\n")
        producer.closed = True
        outcome = await pair.proceed()
        assert outcome.receiver_error is None and pair.sender.finished
        assert outcome.received[0] == b"a\nb\n"

    asyncio.run(scenario())


def test_an_idle_flush_sends_a_short_data_message_ending_at_a_chunk_boundary():
    async def scenario():
        producer = QuietProducer()
        pair = quiet_pair(producer)
        sizes = data_bytes(pair)
        producer.written.append(b"x" * 20_000)
        await pair.run()
        await pair.sender.input_idle()
        await pair.proceed()
        # the 56-byte header, then two whole 16,400-byte chunks: what the relay sees (§10)
        assert sizes == [HEADER_SIZE + 2 * ENCRYPTED_CHUNK_SIZE]

    asyncio.run(scenario())


@pytest.mark.parametrize("first", [1, 16_375, 16_376, 16_377, 16_378, 16_379, 16_380, 20_000])
def test_flushes_anywhere_in_a_chunk_keep_the_stream_intact(first):
    # 4 + first bytes into the chunk: the flush record fits, ends it exactly, or spills over
    async def scenario():
        producer = QuietProducer()
        pair = quiet_pair(producer)
        pieces = [os.urandom(first), os.urandom(3), os.urandom(70_000), os.urandom(1)]
        await pair.run()
        for piece in pieces:
            producer.written.append(piece)
            await pair.proceed()
            await pair.sender.input_idle()
            await pair.proceed()
            assert pair.outcome.received[0].endswith(piece)
        producer.closed = True
        outcome = await pair.proceed()
        assert outcome.receiver_error is None and pair.sender.finished
        assert outcome.received[0] == b"".join(pieces)

    asyncio.run(scenario())


def test_a_flush_that_fills_its_data_message_exactly_does_not_end_the_stream(monkeypatch):
    # The flush record completes the second chunk and with it the whole DATA message: that
    # message goes out full, and no empty DATA message (the stream's end, §7.2) follows it.
    monkeypatch.setattr(sender_module, "DATA_FRAME_SIZE", HEADER_SIZE + 2 * ENCRYPTED_CHUNK_SIZE)

    async def scenario():
        producer = QuietProducer()
        pair = quiet_pair(producer)
        sizes = data_bytes(pair)
        pieces = [os.urandom(20_000), os.urandom(5)]
        await pair.run()
        producer.written.append(pieces[0])
        await pair.proceed()
        await pair.sender.input_idle()
        await pair.proceed()
        assert sizes == [HEADER_SIZE + 2 * ENCRYPTED_CHUNK_SIZE]
        assert pair.receiver.state == "receiving" and pair.outcome.received[0] == pieces[0]
        producer.written.append(pieces[1])
        producer.closed = True
        outcome = await pair.proceed()
        assert outcome.receiver_error is None and pair.sender.finished
        assert outcome.received[0] == b"".join(pieces)
        assert 0 not in sizes[:-1]  # only the last DATA message is the empty end

    asyncio.run(scenario())


def test_the_sender_hears_what_a_flush_delivered_at_once_not_every_4_mib():
    """`tail -f log | hushdrop send -`: the sender's progress follows each flushed piece."""

    async def scenario():
        producer = QuietProducer()
        pair = quiet_pair(producer)
        await pair.run()
        written = 0
        for piece in (b"first line\n", os.urandom(20_000), b"x"):
            producer.written.append(piece)
            written += len(piece)
            await pair.proceed()
            await pair.sender.input_idle()
            await pair.proceed()
            assert pair.sender.bytes_acknowledged == written
            progress = [e for e in pair.outcome.sender_events if isinstance(e, ev.Progress)]
            assert progress[-1].done == written
        producer.closed = True
        outcome = await pair.proceed()
        assert outcome.receiver_error is None and pair.sender.finished

    asyncio.run(scenario())


def test_a_stream_without_pauses_is_reported_in_credit_batches_only():
    async def scenario():
        files = {"stdin": os.urandom(3 * CREDIT_BATCH)}
        credits: list[int] = []
        pair = stream_pair(files)
        inner = pair.tamper

        def record(direction: str, message: bytes) -> list[bytes]:
            if direction == "r2s" and message[0] == MSG_SEALED:
                credits.append(len(message))
            return inner(direction, message)

        pair.tamper = record
        outcome = await pair.run()
        assert outcome.receiver_error is None and outcome.received[0] == files["stdin"]
        # ACCEPT, a CREDIT for each 4 MiB of the 12 MiB (and a little) taken in, COMPLETE
        assert len(credits) == 1 + 3 + 1

    asyncio.run(scenario())


def test_an_idle_sender_with_nothing_to_send_keeps_the_connection_alive():
    async def scenario():
        producer = QuietProducer()
        pair = quiet_pair(producer)
        seen: list[int] = []
        inner = pair.tamper

        def record(direction: str, message: bytes) -> list[bytes]:
            if direction == "s2r":
                seen.append(message[0])
            return inner(direction, message)

        pair.tamper = record
        await pair.run()
        seen.clear()
        await pair.sender.input_idle()
        outcome = await pair.proceed()
        assert seen == [MSG_SEALED]  # a KEEPALIVE, which the receiver takes in its stride
        assert outcome.receiver_error is None and pair.receiver.state == "receiving"

    asyncio.run(scenario())


def test_a_flush_record_followed_by_anything_but_zeros_is_refused(monkeypatch):
    async def scenario():
        producer = QuietProducer()
        pair = quiet_pair(producer)
        producer.written.append(b"a\n")
        await pair.run()
        await pair.sender.input_idle()
        return await pair.proceed()

    def broken(framed: int) -> bytes:
        return stream.flush_record(framed)[:-1] + b"\x01"

    monkeypatch.setattr(sender_module, "flush_record", broken)
    outcome = asyncio.run(scenario())
    assert isinstance(outcome.receiver_error, ProtocolError)
    assert outcome.completed == []


def framed_stream(pieces: list[bytes], flush_after: set[int]) -> bytes:
    """A stream's plaintext as a sender frames it: segments, a flush after the given ones,
    the end record, a zero trailer, no padding."""
    plaintext = bytearray()
    for number, piece in enumerate(pieces):
        plaintext += stream.segment_header(len(piece)) + piece
        if number in flush_after:
            plaintext += stream.flush_record(len(plaintext))
    total = sum(map(len, pieces))
    return bytes(plaintext + stream.end_record(total) + bytes(32))


@pytest.mark.parametrize("step", [1, 7, 16_384, 100_000])
def test_the_reader_drops_flush_records_however_the_plaintext_is_cut(step):
    pieces = [b"a\n", os.urandom(16_376), os.urandom(16_379), b"x" * 40_000, b"end"]
    plaintext = framed_stream(pieces, {0, 1, 2, 3})
    reader = stream.StreamReader(0, lambda framed: 0)
    content = b"".join(
        bytes(piece)
        for at in range(0, len(plaintext), step)
        for piece in reader.feed(memoryview(plaintext[at : at + step]))
    )
    reader.finish()
    assert content == b"".join(pieces) and reader.digest == bytes(32)


def test_a_flush_record_fills_its_chunk_exactly():
    for framed in (0, 5, 16_379, 16_380, 16_381, 16_383):
        assert (framed + len(stream.flush_record(framed))) % 16_384 == 0


def test_a_stream_that_ends_inside_a_flush_records_zeros_is_refused():
    plaintext = framed_stream([b"a\n"], {0})[:100]  # cut among the flush record's zeros
    reader = stream.StreamReader(0, lambda framed: 0)
    reader.feed(memoryview(plaintext))
    with pytest.raises(ProtocolError):
        reader.finish()


def test_a_segment_cannot_claim_the_flush_marker_as_its_length():
    with pytest.raises(ValueError):
        stream.segment_header(stream.STREAM_FLUSH)
