"""The relay's server connection: bounds on what one TCP connection may cost the relay.

This module owns slow-client protection before a connection becomes a WebSocket (or while
it receives a plain HTTP response): the request headers must arrive within the open timeout
(a slowloris client trickling bytes is cut off), and the response must keep draining, i.e.
a client that leaves it unread for the stall timeout is dropped. The response itself is not
bounded as a whole, so a slow but steady link can still download the multi-megabyte web
client. Once the connection is a WebSocket, it also owns the bound on the relay's output
that the client leaves unread while it keeps sending (see `RelayConnection.parse`). A client
proxied to another node of a cluster gets a `Tap`, so that its pair can switch to passing
bytes through (splice.py).

It also lets a request with a body reach http.py: websockets takes none, and would drop the
connection without a word. That is the form a phone posts to the installed app's share target
when the page's service worker is gone (it normally takes the form in the browser). The body is
read and dropped (never kept; the open timeout bounds how long it may take), then the request
goes on without it, so http.py answers it like any other (see `RequestBodyDropper`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from hushdrop_relay.metrics import Metrics
from hushdrop_relay.splice import Tap, TappedConnection
from websockets.asyncio.server import Server, ServerConnection
from websockets.protocol import Event, State
from websockets.server import ServerProtocol

# How often a response's progress is sampled, at most.
_CHECK_INTERVAL = 1.0
# The most of a request's head looked at for a body; a longer head goes to websockets as it is
# (its own limits refuse it).
MAX_INSPECTED_HEAD = 64 * 1024


class RequestBodyDropper:
    """Takes a connection's first bytes; gives back the request's head without its body.

    `feed(data)` returns the bytes to hand to websockets: nothing while the head is incomplete
    or its body is still arriving, then the head alone (`Content-Length`/`Transfer-Encoding`
    taken out), then everything as it comes. A chunked body has no length the relay reads: it
    is dropped until the connection closes, which it does after answering.
    """

    __slots__ = ("_body_left", "_head", "_held", "done")

    def __init__(self) -> None:
        self._head = bytearray()
        self._held = b""
        self._body_left = 0
        self.done = False

    def feed(self, data: bytes) -> bytes:
        if self.done:
            return data
        if self._body_left:
            dropped = min(len(data), self._body_left)
            self._body_left -= dropped
            return self._release() if self._body_left == 0 else b""
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head) > MAX_INSPECTED_HEAD:
                self.done = True
                return bytes(self._head)
            return b""
        head, rest = bytes(self._head[: end + 4]), bytes(self._head[end + 4 :])
        self._head = bytearray()
        lines = head.split(b"\r\n")
        fields = [line.partition(b":") for line in lines[1:-2]]
        lengths = [
            value.strip() for name, _, value in fields if name.strip().lower() == b"content-length"
        ]
        chunked = any(name.strip().lower() == b"transfer-encoding" for name, _, _ in fields)
        if not chunked and all(value in (b"", b"0") for value in lengths):
            self.done = True
            return head + rest
        kept = [
            line
            for line, (name, _, _) in zip(lines[1:-2], fields, strict=True)
            if name.strip().lower() not in (b"content-length", b"transfer-encoding")
        ]
        self._held = b"\r\n".join([lines[0], *kept, b"", b""])
        try:
            length = int(lengths[0]) if lengths and not chunked else -1
        except ValueError:
            length = -1
        if length < 0:
            # No length to count (chunked, or nonsense): answer now; the rest is dropped.
            self._body_left = 1 << 62
            return self._held
        self._body_left = length
        return self.feed(rest) if rest else b""

    def _release(self) -> bytes:
        self.done = True
        held, self._held = self._held, b""
        return held


class RelayConnection(TappedConnection, ServerConnection):
    """A `ServerConnection` bounded as described above.

    Pass ``open_timeout=None`` to websockets' ``serve`` so that only these bounds apply.
    ``max_unread`` is the most of the relay's output, in bytes, that a WebSocket client may
    leave unread in the relay's write buffer while it keeps sending.
    """

    # Slots, not instance attributes: a connection already has 27 of them, and going past
    # CPython's 30 shared-key limit makes every instance dict ~1 KiB larger.
    __slots__ = (
        "_body_dropper",
        "_open_deadline",
        "max_unread",
        "metrics",
        "open_timeout",
        "stall_timeout",
        "tap",
    )

    def __init__(
        self,
        protocol: ServerProtocol,
        server: Server,
        *,
        open_timeout: float,
        stall_timeout: float,
        max_unread: int,
        metrics: Metrics,
        **kwargs: Any,
    ) -> None:
        super().__init__(protocol, server, **kwargs)
        self.tap: Tap | None = None  # set by splice.Splice when this client is proxied
        self.open_timeout = open_timeout
        self.stall_timeout = stall_timeout
        self.max_unread = max_unread
        self.metrics = metrics
        self._open_deadline: asyncio.TimerHandle | None = None
        self._body_dropper: RequestBodyDropper | None = RequestBodyDropper()

    # The header deadline is a timer on the event loop rather than a timeout around an await:
    # it must also fire while websockets itself waits for the request inside handshake().

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._open_deadline = self.loop.call_later(self.open_timeout, self._open_expired)

    def process_event(self, event: Event) -> None:
        self._cancel_open_deadline()  # the first event is the complete request
        super().process_event(event)

    def parse(self, data: bytes) -> None:
        if self._body_dropper is not None:
            data = self._body_dropper.feed(data)
            if self._body_dropper.done:
                self._body_dropper = None
            if not data:
                return
        super().parse(data)
        # websockets answers some frames by itself (a PONG for every PING, a close frame) and
        # writes those answers without flow control: a client that sends PINGs and never
        # reads would make the write buffer grow for as long as it keeps sending. Our own
        # sends wait for the buffer to drain, so past the bound the client is not reading.
        # Checked here, on every chunk the client sends, because only its input makes the
        # buffer grow without bound. The opening handshake is left out: a plain HTTP
        # response (the web client) is written whole and bounded by _while_draining.
        if (
            self.protocol.state is not State.CONNECTING
            and self.transport.get_write_buffer_size() > self.max_unread
        ):
            self.metrics.error("backlog")
            # Nothing more can reach it (its buffer is full), so no close frame: cut it off.
            # The handler then sees the connection lost, as for a dropped TCP connection.
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_open_deadline()
        super().connection_lost(exc)

    def _cancel_open_deadline(self) -> None:
        if self._open_deadline is not None:
            self._open_deadline.cancel()
            self._open_deadline = None

    def _open_expired(self) -> None:
        self._open_deadline = None
        if self.request is None:
            self.metrics.error("open-timeout")
            # The handshake then sees the connection lost and websockets cleans up.
            self.transport.abort()

    async def handshake(self, *args: Any, **kwargs: Any) -> None:
        await self._while_draining(super().handshake(*args, **kwargs))

    async def _while_draining(self, respond: Awaitable[None]) -> None:
        """Run ``respond``; raise TimeoutError if its output sits unread for too long."""
        task = asyncio.ensure_future(respond)
        interval = min(_CHECK_INTERVAL, self.stall_timeout / 4)
        loop = asyncio.get_running_loop()
        last_size, last_progress = -1, loop.time()
        try:
            while not task.done():
                await asyncio.wait([task], timeout=interval)
                size = self.transport.get_write_buffer_size()
                now = loop.time()
                # An empty buffer is not a stall (the response is still being prepared, or
                # all of it was taken); a shrinking one is progress.
                if size == 0 or size != last_size:
                    last_size, last_progress = size, now
                elif now - last_progress >= self.stall_timeout:
                    self.metrics.error("stall")
                    raise TimeoutError("HTTP response left unread")
            task.result()
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


def connection_factory(
    open_timeout: float, stall_timeout: float, max_unread: int, metrics: Metrics
) -> Callable[..., ServerConnection]:
    """A ``create_connection`` for websockets' ``serve`` building `RelayConnection` objects."""

    def create(protocol: ServerProtocol, server: Server, **kwargs: Any) -> ServerConnection:
        return RelayConnection(
            protocol,
            server,
            open_timeout=open_timeout,
            stall_timeout=stall_timeout,
            max_unread=max_unread,
            metrics=metrics,
            **kwargs,
        )

    return create
