"""A direct connection's reading (transport/tcp_stream.py, PROTOCOL.md §8.5) over real loopback
sockets: exact reads for the handshake, then `u32 length || message` frames however TCP cuts
them."""

from __future__ import annotations

import asyncio
import os

import pytest
from hushdrop.protocol.direct import frame_header
from hushdrop.protocol.errors import ProtocolError
from hushdrop.transport.tcp_stream import READ_AHEAD, TcpStream


async def connected() -> tuple[TcpStream, asyncio.StreamWriter, asyncio.Server]:
    """A TcpStream accepting on 127.0.0.1, and a plain writer connected to it."""
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[TcpStream] = loop.create_future()
    server = await loop.create_server(lambda: TcpStream(accepted.set_result), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    return await accepted, writer, server


def frame(message: bytes) -> bytes:
    return frame_header(len(message)) + message


async def dribble(writer: asyncio.StreamWriter, data: bytes, pieces: list[int]) -> None:
    """Write `data` in pieces of the given sizes (cycled), letting each one leave."""
    at, i = 0, 0
    while at < len(data):
        size = pieces[i % len(pieces)]
        writer.write(data[at : at + size])
        await writer.drain()
        await asyncio.sleep(0)
        at, i = at + size, i + 1


def test_messages_arrive_whole_and_in_order_however_tcp_cuts_them():
    async def scenario():
        stream, writer, server = await connected()
        messages = [b"\x10small", os.urandom(1 << 20), b"\x05x", os.urandom(70_000)]
        stream.start_messages()
        sending = asyncio.ensure_future(
            dribble(writer, b"".join(frame(m) for m in messages), [1, 3, 65_536, 7, 300_000])
        )
        received = [await stream.receive() for _ in messages]
        await sending
        writer.close()
        server.close()
        return messages, received

    messages, received = asyncio.run(scenario())
    assert [bytes(m) for m in received] == messages
    assert isinstance(received[0], bytes)  # small messages are handed on as bytes


def test_exact_reads_take_nothing_past_what_was_asked():
    async def scenario():
        stream, writer, server = await connected()
        writer.write(b"H" * 34 + b"\x01" + frame(b"\x20after go"))  # all in one piece
        hello = await stream.read_exactly(34)
        go = await stream.read_exactly(1)
        stream.start_messages()
        message = await stream.receive()
        writer.close()
        server.close()
        return hello, go, message

    assert asyncio.run(scenario()) == (b"H" * 34, b"\x01", b"\x20after go")


def test_a_frame_of_impossible_length_ends_the_connection():
    async def scenario():
        stream, writer, server = await connected()
        stream.start_messages()
        writer.write(frame(b"\x10fine") + (0).to_bytes(4, "big") + b"junk")
        first = await stream.receive()
        with pytest.raises(ProtocolError):
            await stream.receive()
        server.close()
        return first

    assert asyncio.run(scenario()) == b"\x10fine"


def test_messages_sent_before_the_peer_closed_are_still_received():
    async def scenario():
        stream, writer, server = await connected()
        stream.start_messages()
        writer.write(frame(b"\x10one") + frame(b"\x10two"))
        writer.close()
        got = [await stream.receive(), await stream.receive()]
        with pytest.raises(OSError):
            await stream.receive()
        server.close()
        return got

    assert asyncio.run(scenario()) == [b"\x10one", b"\x10two"]


def test_reading_stops_while_unread_messages_fill_the_read_ahead():
    async def scenario():
        stream, writer, server = await connected()
        stream.start_messages()
        message = os.urandom(1 << 20)
        sending = asyncio.ensure_future(dribble(writer, frame(message) * 12, [1 << 20]))
        while stream._queued < READ_AHEAD:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # the writer goes on; the stream reads no more meanwhile
        held = stream._queued
        received = [await stream.receive() for _ in range(12)]
        await sending
        writer.close()
        server.close()
        return held, received, message

    held, received, message = asyncio.run(scenario())
    assert held <= READ_AHEAD + (1 << 20) + 4  # at most the message that crossed the bound
    assert all(m == message for m in received)
