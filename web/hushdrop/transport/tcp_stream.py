"""The bytes of one direct TCP connection (PROTOCOL.md §8.5), read straight into their messages.

asyncio's streams copy every received byte three times (into a new bytes object per read, into
the StreamReader's buffer, out again into the message) and move what stays behind; for the CLI
receiving over a direct connection that was a tenth of a CPU-second per GiB on its busiest thread.
`TcpStream` is an `asyncio.BufferedProtocol`: the kernel writes each peer message's body into the
bytearray the session gets, and the fixed-size handshake fields into a buffer of exactly their
size. It first reads only what is asked for (the handshake, GO), so nothing is read past them;
after `start_messages()` it reads `u32 length || message` frames ahead, up to `READ_AHEAD` bytes
of whole messages, then stops reading until they are taken (TCP pushes back on the sender).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from ..protocol.direct import LENGTH_SIZE, frame_length
from ..protocol.errors import ProtocolError

READ_AHEAD = 4 * 1024 * 1024  # whole messages read ahead of the session, at most (and one more)
SMALL_MESSAGE = 64 * 1024  # messages below this are handed on as bytes, larger as the bytearray


class TcpStream(asyncio.BufferedProtocol):
    """One connection's reading (exact reads, then framed messages) and write flow control."""

    def __init__(self, on_connection: Callable[[TcpStream], None] | None = None) -> None:
        """`on_connection`: called with this stream once connected (an accepted connection)."""
        self._on_connection = on_connection
        self.transport: asyncio.Transport | None = None
        self._target: bytearray | None = None  # what the kernel fills now
        self._filled = 0
        self._framed = False
        self._header = bytearray(LENGTH_SIZE)
        self._messages: deque[bytes | bytearray] = deque()
        self._queued = 0  # bytes of whole messages waiting in `_messages`
        self._waiter: asyncio.Future[None] | None = None  # a reader waiting for data
        self._error: Exception | None = None
        self._closed = False
        self._write_ready: asyncio.Future[None] | None = None  # set while writing is paused

    # asyncio's side -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.pause_reading()  # nothing is read until someone asks
        if self._on_connection is not None:
            self._on_connection(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._target is None:  # framed, between messages: the next header
            self._target, self._filled = self._header, 0
        return memoryview(self._target)[self._filled :]

    def buffer_updated(self, nbytes: int) -> None:
        self._filled += nbytes
        if self._target is None or self._filled < len(self._target):
            return
        if not self._framed:
            self.transport.pause_reading()  # the exact read is complete: read no further
            self._wake()
            return
        if self._target is self._header:
            try:
                self._target, self._filled = bytearray(frame_length(bytes(self._header))), 0
            except ProtocolError as exc:
                self._fail(exc)
            return
        message = self._target
        self._target = None
        self._messages.append(bytes(message) if len(message) < SMALL_MESSAGE else message)
        self._queued += len(message)
        if self._queued >= READ_AHEAD:
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._fail(ConnectionResetError("the peer closed the connection"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionResetError("the connection closed"))
        if self._write_ready is not None and not self._write_ready.done():
            self._write_ready.set_result(None)

    def pause_writing(self) -> None:
        if self._write_ready is None or self._write_ready.done():
            self._write_ready = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._write_ready is not None and not self._write_ready.done():
            self._write_ready.set_result(None)

    # The connection's user ----------------------------------------------------------------

    async def read_exactly(self, n: int) -> bytes:
        """The next `n` bytes (before `start_messages()` only); raises OSError if it ends."""
        if self._framed:
            raise RuntimeError("exact reads end where messages begin")
        self._target, self._filled = bytearray(n), 0
        self.transport.resume_reading()
        while self._filled < n:
            await self._wait()
        data, self._target = bytes(self._target), None
        return data

    def start_messages(self) -> None:
        """From here on the connection carries `u32 length || message` frames (§8.5)."""
        self._framed = True
        self._target = None
        if not self._closed:
            self.transport.resume_reading()

    async def receive(self) -> bytes | bytearray:
        """The next whole message; raises OSError when the connection ends, ProtocolError for a
        frame of impossible length."""
        while not self._messages:
            await self._wait()
        message = self._messages.popleft()
        self._queued -= len(message)
        if self._queued < READ_AHEAD and not self._closed:
            self.transport.resume_reading()
        return message

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.transport.write(data)

    async def drain(self) -> None:
        if self._closed and self._error is not None:
            raise ConnectionResetError("the connection closed") from self._error
        if self._write_ready is not None and not self._write_ready.done():
            await self._write_ready
            if self._closed:
                raise ConnectionResetError("the connection closed")

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _wait(self) -> None:
        if self._error is not None:
            raise self._error
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None
        if self._error is not None and not self._messages and not self._exact_done():
            raise self._error

    def _exact_done(self) -> bool:
        return not self._framed and self._target is not None and self._filled >= len(self._target)

    def _fail(self, exc: Exception) -> None:
        if self._error is None:
            self._error = exc
        self._closed = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self._wake()
