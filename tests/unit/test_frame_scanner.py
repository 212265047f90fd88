"""The relay's FrameScanner (relay/splice.py) follows real WebSocket byte streams, as websockets
writes them, however the stream is cut into chunks (RFC 6455 §5.2)."""

from __future__ import annotations

import random

import pytest
from hushdrop_relay.splice import FrameScanner
from websockets.frames import Frame, Opcode

OP_BINARY, OP_CONT, OP_PING, OP_PONG, OP_TEXT = (
    Opcode.BINARY,
    Opcode.CONT,
    Opcode.PING,
    Opcode.PONG,
    Opcode.TEXT,
)


def frames(*specs: tuple[int, bytes, bool], mask: bool) -> tuple[bytes, list[int]]:
    """The serialized frames of ``specs`` (opcode, payload, fin) and the offsets where each
    frame ends (the stream's frame boundaries after its start)."""
    stream, ends = b"", []
    for opcode, payload, fin in specs:
        stream += Frame(opcode, payload, fin).serialize(mask=mask)
        ends.append(len(stream))
    return stream, ends


SIZES = [0, 1, 125, 126, 127, 65535, 65536, 70000]


@pytest.mark.parametrize("mask", [True, False], ids=["client", "server"])
def test_every_payload_length_encoding_is_followed(mask: bool) -> None:
    stream, _ = frames(*((OP_BINARY, bytes(n), True) for n in SIZES), mask=mask)
    scanner = FrameScanner()
    assert scanner.scan(stream) == len(stream)
    assert scanner.at_boundary
    assert scanner.binary_bytes == sum(SIZES)


def test_a_64_bit_length_header_is_read_whole() -> None:
    header = bytes([0x82, 0x7F]) + (1 << 33).to_bytes(8, "big")
    scanner = FrameScanner()
    scanner.scan(header[:5])
    assert not scanner.at_boundary
    scanner.scan(header[5:] + bytes(10))
    assert scanner.binary_bytes == 10 and not scanner.at_boundary


@pytest.mark.parametrize("mask", [True, False], ids=["client", "server"])
def test_the_next_boundary_is_found_from_any_position(mask: bool) -> None:
    stream, ends = frames(*((OP_BINARY, bytes(n), True) for n in SIZES[:5] * 2), mask=mask)
    boundaries = [0, *ends]
    rng = random.Random(13)
    for position in range(len(stream)):
        scanner = FrameScanner()
        # The stream up to ``position`` arrives in chunks of any size, then the rest at once.
        start = 0
        while start < position:
            end = min(position, start + rng.randint(1, 40))
            assert scanner.scan(stream[start:end]) == end - start
            start = end
        expected = next(b for b in boundaries if b >= position)
        assert scanner.scan(stream[position:], stop=True) == expected - position
        assert scanner.at_boundary


def test_no_boundary_in_a_chunk_inside_one_frame() -> None:
    stream, _ = frames((OP_BINARY, bytes(1000), True), mask=True)
    scanner = FrameScanner()
    scanner.scan(stream[:100])
    assert scanner.scan(stream[100:500], stop=True) == -1
    assert scanner.scan(stream[500:], stop=True) == len(stream) - 500


def test_only_binary_messages_count_including_their_continuations() -> None:
    stream, _ = frames(
        (OP_BINARY, b"a" * 10, True),
        (OP_TEXT, b"t" * 20, True),
        (OP_BINARY, b"b" * 30, False),
        (OP_PING, b"p" * 4, True),  # control frames may come between fragments
        (OP_CONT, b"c" * 40, True),
        (OP_TEXT, b"t" * 50, False),
        (OP_PONG, b"q" * 4, True),
        (OP_CONT, b"u" * 60, True),
        mask=True,
    )
    whole = FrameScanner()
    whole.scan(stream)
    byte_by_byte = FrameScanner()
    for i in range(len(stream)):
        byte_by_byte.scan(stream[i : i + 1])
    assert whole.binary_bytes == byte_by_byte.binary_bytes == 10 + 30 + 40
    assert whole.at_boundary and byte_by_byte.at_boundary
