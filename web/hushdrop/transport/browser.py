"""The browser WebSocket connection to a relay, for the page (Pyodide). Same API as RelayConnection.

The browser's WebSocket has no awaitable send, so backpressure comes from `bufferedAmount`: a send
waits while more than `HIGH_WATER` bytes are still queued in the browser.
"""

from __future__ import annotations

import asyncio

import js
from pyodide.ffi import create_proxy

from ..protocol.constants import CREDIT_BATCH, DATA_FRAME_SIZE, INITIAL_CREDIT
from ..protocol.errors import ProtocolError, RelayError
from ..protocol.padding import max_sealed_message
from . import rendezvous

# The receiver's credit (PROTOCOL.md §7) already bounds what a sender may have in flight to
# INITIAL_CREDIT plus one credit batch, so the send buffer stays bounded without waiting on it; with
# the threshold above that bound, sending is driven by the receiver's CREDIT messages (events)
# rather than timers, which browsers throttle in background tabs — where a sender's tab usually is.
HIGH_WATER = INITIAL_CREDIT + CREDIT_BATCH + 2 * DATA_FRAME_SIZE
# Pyodide runs sleeps of 2 ms or less as immediate tasks, so a shorter poll would be a busy loop
# that starves the browser's own WebSocket writes (measured: about 1 MiB/s); 10 ms is a timer.
DRAIN_POLL = 0.010
CONNECT_TIMEOUT = 15
# The browser pushes messages whether or not the engine took the last ones, so the queue is
# bounded here: a peer that keeps to the protocol never has more in flight than a credit window
# (PROTOCOL.md §7.4) or the largest sealed message (a manifest, §6). One that sends more (a
# sender ignoring credit, a receiver flooding) is cut off rather than allowed to fill the tab.
MAX_QUEUED = INITIAL_CREDIT + CREDIT_BATCH + max_sealed_message() + 2 * DATA_FRAME_SIZE


# The close code of a page going away (PROTOCOL.md §3): the relay counts it as a goodbye.
PAGE_CLOSED = 4001


def flooded_error() -> ProtocolError:
    """Why a connection whose peer sent more than MAX_QUEUED unread bytes was closed."""
    return ProtocolError(
        "The other side sent more data than the protocol allows before it was read; the "
        "connection was closed."
    )


class BrowserRelayConnection(rendezvous.RelayChannel):
    """One page's connection to the relay: rendezvous first, then opaque binary messages."""

    def __init__(self, relay: str) -> None:
        self._relay = relay
        self._messages: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self._opened: asyncio.Future[None] = asyncio.get_event_loop().create_future()
        self._close_code: int | None = None
        self._queued = 0  # bytes of binary messages received and not yet taken
        self._flooded = False
        self._proxies: list = []
        self._ws = js.WebSocket.new(rendezvous.websocket_url(relay))
        self._ws.binaryType = "arraybuffer"
        for event, handler in (
            ("open", self._on_open),
            ("message", self._on_message),
            ("close", self._on_close),
        ):
            proxy = create_proxy(handler)
            self._proxies.append(proxy)
            self._ws.addEventListener(event, proxy)
        # Closing the tab says goodbye: the relay then tells the peer this side left on
        # purpose, instead of a lost connection it would wait to resume (PROTOCOL.md §3, §8.1).
        # Not 1001, the browser's own "going away": a script may send only 1000 or 3000-4999.
        # In the engine worker, the page passes its `pagehide` on (engine-worker.js).
        self._goodbye = create_proxy(lambda _event: self._ws.close(PAGE_CLOSED, "page closed"))
        js.addEventListener("pagehide", self._goodbye)
        self.room: str | None = None

    @classmethod
    async def open(cls, relay: str) -> BrowserRelayConnection:
        connection = cls(relay)
        try:
            await asyncio.wait_for(asyncio.shield(connection._opened), CONNECT_TIMEOUT)
        except TimeoutError as exc:
            connection._ws.close()
            raise RelayError(
                f"Could not reach the relay at {relay}: no answer.", "unreachable"
            ) from exc
        return connection

    def _on_open(self, _event) -> None:
        if not self._opened.done():
            self._opened.set_result(None)

    def _on_message(self, event) -> None:
        data = event.data
        if self._flooded:
            return
        if not isinstance(data, str):
            self._queued += data.byteLength
            if self._queued > MAX_QUEUED:
                self._flooded = True  # taken as the end of the connection, with its reason
                self._ws.close()
                self._messages.put_nowait(None)
                return
            data = data.to_bytes()
        self._messages.put_nowait(data)

    def _on_close(self, event) -> None:
        self._close_code = int(event.code)
        if not self._opened.done():
            self._opened.set_exception(
                RelayError(f"Could not reach the relay at {self._relay}.", "unreachable")
            )
        self._messages.put_nowait(None)

    async def send(self, message: bytes | str) -> None:
        if self._close_code is not None:
            raise await self._closed_error()
        while self._ws.bufferedAmount > HIGH_WATER:
            await asyncio.sleep(DRAIN_POLL)
            if self._close_code is not None:
                raise await self._closed_error()
        if isinstance(message, str):
            self._ws.send(message)
        else:
            js.hushdrop.sendBytes(self._ws, message)  # read in place: no copy to JS first

    async def receive(self) -> bytes:
        """The next binary message from the peer. Relay notices become exceptions."""
        message = await self._recv()
        if isinstance(message, bytes):
            return message
        raise rendezvous.notice_error(rendezvous.parse(message))

    async def close(self) -> None:
        js.removeEventListener("pagehide", self._goodbye)
        if self._close_code is None:
            self._ws.close()

    async def _recv(self) -> str | bytes:
        message = await self._messages.get()
        if message is None:
            raise await self._closed_error()  # it re-queues the end marker for later calls
        if isinstance(message, bytes):
            self._queued -= len(message)
        return message

    async def _closed_error(self) -> Exception:
        if self._flooded:
            self._messages.put_nowait(None)
            return flooded_error()
        # Messages queued before the close may include the relay's notice (peer-gone, idle, …);
        # the peer's own last messages (its CANCEL may say why) stay queued for `receive()`.
        error = None
        kept: list[bytes] = []
        while not self._messages.empty():
            message = self._messages.get_nowait()
            if isinstance(message, str) and error is None:
                error = rendezvous.notice_error(rendezvous.parse(message))
            elif isinstance(message, bytes):
                kept.append(message)
        for message in kept:
            self._messages.put_nowait(message)
        self._messages.put_nowait(None)
        return error or rendezvous.closed_error(self._close_code, self._relay)
