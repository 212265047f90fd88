"""The asyncio WebSocket connection to a relay (PROTOCOL.md §3), for CPython clients.

It turns the relay's JSON control messages into return values or RelayError/PeerGoneError, and
otherwise moves binary peer messages untouched.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from ..protocol.constants import DATA_FRAME_SIZE
from ..protocol.errors import RelayError
from . import rendezvous

CONNECT_TIMEOUT = 15


class RelayConnection(rendezvous.RelayChannel):
    """One client's connection to the relay: rendezvous first, then opaque binary messages."""

    def __init__(self, websocket: ClientConnection, relay: str) -> None:
        self._ws = websocket
        self._relay = relay
        self.room: str | None = None
        # Peer messages that arrived before the connection closed, still owed to `receive()`.
        self._leftover: deque[bytes] = deque()
        self._error: Exception | None = None

    @classmethod
    async def open(cls, relay: str) -> RelayConnection:
        url = rendezvous.websocket_url(relay)
        try:
            websocket = await asyncio.wait_for(
                connect(
                    url,
                    compression=None,
                    max_size=rendezvous.MAX_MESSAGE,
                    # Frames read ahead of the session: few, so that a paused receiver soon
                    # stops reading from the socket and the relay notices it (`stall`), rather
                    # than this queue swallowing the whole credit window unnoticed.
                    max_queue=4,
                    write_limit=4 * DATA_FRAME_SIZE,
                    open_timeout=CONNECT_TIMEOUT,
                    ping_interval=20,
                    ping_timeout=60,
                ),
                CONNECT_TIMEOUT + 1,
            )
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            raise RelayError(
                f"Could not reach the relay at {relay}: {_reason(exc)}", "unreachable"
            ) from exc
        return cls(websocket, relay)

    async def send(self, message: bytes | str) -> None:
        try:
            await self._ws.send(message)
        except ConnectionClosed as exc:
            raise await self._closed_error(exc) from exc

    async def receive(self) -> bytes:
        """The next binary message from the peer. Relay notices become exceptions.

        After the connection closed, messages the peer sent before it are still returned (its
        CANCEL may say why), then the closing error is raised.
        """
        while True:
            if self._leftover:
                return self._leftover.popleft()
            message = await self._recv()
            if isinstance(message, bytes):
                return message
            raise rendezvous.notice_error(rendezvous.parse(message))

    async def close(self) -> None:
        await self._ws.close()

    async def _recv(self) -> str | bytes:
        if self._error is not None:
            raise self._error
        try:
            return await self._ws.recv()
        except ConnectionClosed as exc:
            raise await self._closed_error(exc) from exc

    async def _closed_error(self, exc: ConnectionClosed) -> Exception:
        """Why the connection closed: the relay's last notice if one is still unread."""
        if self._error is not None:
            return self._error
        # A send can fail before the relay's notice (peer-gone, idle, …) was read: look for it,
        # keeping the peer's own last messages for `receive()`.
        error = None
        try:
            while error is None:
                message = await asyncio.wait_for(self._ws.recv(), 1)
                if isinstance(message, str):
                    error = rendezvous.notice_error(rendezvous.parse(message))
                else:
                    self._leftover.append(message)
        except (ConnectionClosed, TimeoutError, RelayError):
            pass
        code = exc.rcvd.code if exc.rcvd else None
        self._error = error or rendezvous.closed_error(code, self._relay)
        return self._error


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "it did not answer in time."
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is `hushdrop serve` running there?)."
    if isinstance(exc, socket.gaierror):  # "[Errno -2] Name or service not known"
        return "its name could not be found (check the address and the network)."
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror[:1].lower()}{exc.strerror[1:]}."
    return str(exc) or type(exc).__name__
