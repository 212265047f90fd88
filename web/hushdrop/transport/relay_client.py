"""The asyncio WebSocket connection to a relay (PROTOCOL.md §3), for CPython clients.

It turns the relay's JSON control messages into return values or RelayError/PeerGoneError, and
otherwise moves binary peer messages untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from ..protocol.constants import DATA_FRAME_SIZE, WS_PATH
from ..protocol.errors import PeerGoneError, RelayError

MAX_MESSAGE = DATA_FRAME_SIZE + 4096
CONNECT_TIMEOUT = 15


def websocket_url(relay: str) -> str:
    """`http(s)://host:port[/prefix]` → `ws(s)://host:port[/prefix]/v1/ws`."""
    parts = urlsplit(relay)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise RelayError(f"The relay address {relay!r} must look like https://host:port.")
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + WS_PATH, "", ""))


class RelayConnection:
    """One client's connection to the relay: rendezvous first, then opaque binary messages."""

    def __init__(self, websocket: ClientConnection, relay: str) -> None:
        self._ws = websocket
        self._relay = relay
        self.room: str | None = None

    @classmethod
    async def open(cls, relay: str) -> RelayConnection:
        url = websocket_url(relay)
        try:
            websocket = await asyncio.wait_for(
                connect(
                    url,
                    compression=None,
                    max_size=MAX_MESSAGE,
                    max_queue=16,
                    write_limit=4 * DATA_FRAME_SIZE,
                    open_timeout=CONNECT_TIMEOUT,
                    ping_interval=20,
                    ping_timeout=60,
                ),
                CONNECT_TIMEOUT + 1,
            )
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            raise RelayError(f"Could not reach the relay at {relay}: {_reason(exc)}") from exc
        return cls(websocket, relay)

    async def create_room(self, ttl: int | None = None) -> tuple[str, int]:
        request: dict[str, object] = {"op": "create"}
        if ttl is not None:
            request["ttl"] = ttl
        reply = await self._control(request, "created")
        self.room = str(reply["room"])
        return self.room, int(reply.get("ttl", 0))

    async def join_room(self, room: str) -> None:
        self.room = room
        await self._control({"op": "join", "room": room}, "paired")

    async def wait_paired(self) -> None:
        await self._expect("paired")

    async def send(self, message: bytes | str) -> None:
        try:
            await self._ws.send(message)
        except ConnectionClosed as exc:
            raise await self._closed_error(exc) from exc

    async def send_all(self, messages: list[bytes]) -> None:
        for message in messages:
            await self.send(message)

    async def send_best_effort(self, messages: list[bytes], timeout: float = 2) -> None:
        """Try to deliver final messages (CANCEL, ABORT) while giving up; never raises."""
        with contextlib.suppress(RelayError, PeerGoneError, TimeoutError, OSError):
            await asyncio.wait_for(self.send_all(messages), timeout)

    async def receive(self) -> bytes:
        """The next binary message from the peer. Relay notices become exceptions."""
        while True:
            try:
                message = await self._ws.recv()
            except ConnectionClosed as exc:
                raise await self._closed_error(exc) from exc
            if isinstance(message, bytes):
                return message
            self._raise_notice(message)

    async def close(self) -> None:
        await self._ws.close()

    async def _control(self, request: dict[str, object], expected: str) -> dict[str, object]:
        await self.send(json.dumps(request))
        return await self._expect(expected)

    async def _expect(self, expected: str) -> dict[str, object]:
        try:
            message = await self._ws.recv()
        except ConnectionClosed as exc:
            raise await self._closed_error(exc) from exc
        if isinstance(message, bytes):
            raise RelayError("The relay sent an unexpected binary message.")
        reply = self._parse(message)
        if reply.get("op") != expected:
            self._raise_notice(message)
        return reply

    def _parse(self, message: str) -> dict[str, object]:
        try:
            reply = json.loads(message)
        except ValueError as exc:
            raise RelayError("The relay sent a malformed message.") from exc
        if not isinstance(reply, dict):
            raise RelayError("The relay sent a malformed message.")
        return reply

    def _raise_notice(self, message: str) -> None:
        reply = self._parse(message)
        text = str(reply.get("message") or "The relay closed the connection.")
        if reply.get("op") == "peer-gone":
            raise PeerGoneError("The other side disconnected before the transfer finished.")
        if reply.get("op") == "error":
            raise RelayError(text, str(reply.get("code", "relay")))
        raise RelayError(f"The relay sent an unexpected message ({reply.get('op')!r}).")

    async def _closed_error(self, exc: ConnectionClosed) -> Exception:
        """Why the connection closed: the relay's last notice if one is still unread."""
        # A send can fail before the relay's notice (peer-gone, idle, …) was read: look for it.
        try:
            while True:
                message = await asyncio.wait_for(self._ws.recv(), 1)
                if isinstance(message, str):
                    self._raise_notice(message)
        except (RelayError, PeerGoneError) as notice:
            return notice
        except (ConnectionClosed, TimeoutError):
            pass
        if exc.rcvd is not None and exc.rcvd.code == 1000:
            return PeerGoneError("The other side disconnected before the transfer finished.")
        return RelayError(f"Lost the connection to the relay at {self._relay}.", "connection-lost")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "it did not answer in time."
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is `hushdrop serve` running there?)."
    return str(exc) or type(exc).__name__
