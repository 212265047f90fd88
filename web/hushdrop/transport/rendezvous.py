"""The relay's control messages (PROTOCOL.md §3), shared by the CPython and browser transports.

Building requests, turning the relay's notices into exceptions, and `RelayChannel`, the
rendezvous steps every transport shares. No I/O here: transports supply `send` and `_recv`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from ..protocol.constants import DATA_FRAME_SIZE, MAX_RECEIVERS, WS_PATH
from ..protocol.errors import PeerGoneError, RelayError

MAX_MESSAGE = DATA_FRAME_SIZE + 4096
PEER_GONE = "The other side disconnected before the transfer finished."


def websocket_url(relay: str) -> str:
    """`http(s)://host:port[/prefix]` → `ws(s)://host:port[/prefix]/v1/ws`."""
    parts = urlsplit(relay)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise RelayError(f"The relay address {relay!r} must look like https://host:port.")
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + WS_PATH, "", ""))


def create_request(ttl: int | None = None, receivers: int = 1) -> str:
    request: dict[str, object] = {"op": "create"}
    if ttl is not None:
        request["ttl"] = ttl
    if receivers > 1:
        request["receivers"] = receivers
    return json.dumps(request)


def attach_request(room: str, receiver: int, token: str) -> str:
    return json.dumps({"op": "attach", "room": room, "receiver": receiver, "token": token})


def join_request(room: str) -> str:
    return json.dumps({"op": "join", "room": room})


def resume_request(slot: str, side: str) -> str:
    return json.dumps({"op": "resume", "id": slot, "side": side})


@dataclass(frozen=True)
class RelayInfo:
    """What `GET /v1/info` says a sender may ask for (PROTOCOL.md §3.2)."""

    presets: tuple[int, ...]  # link lifetimes to offer, in seconds, ascending
    default: int  # the lifetime of a room created without a ttl
    receivers: int  # the most receivers one link may admit


def parse_info(info: object) -> RelayInfo | None:
    """The relay's answer to `GET /v1/info`, or None when it is not one (an older relay)."""

    def seconds(value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value > 0

    if not isinstance(info, dict) or not isinstance(info.get("ttl"), dict):
        return None
    ttl = info["ttl"]
    presets, default, receivers = ttl.get("presets"), ttl.get("default"), info.get("receivers")
    if not isinstance(presets, list) or not presets or not all(map(seconds, presets)):
        return None
    if not seconds(default) or not seconds(receivers):
        return None
    return RelayInfo(tuple(sorted(set(presets))), default, min(receivers, MAX_RECEIVERS))


def parse(message: str) -> dict[str, object]:
    try:
        reply = json.loads(message)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        raise RelayError("The relay sent a malformed message.") from exc
    if not isinstance(reply, dict):
        raise RelayError("The relay sent a malformed message.")
    return reply


def expect(message: str | bytes, op: str) -> dict[str, object]:
    """The relay's reply if it is `op`; otherwise raise what the relay said."""
    if isinstance(message, bytes):
        raise RelayError("The relay sent an unexpected binary message.")
    reply = parse(message)
    if reply.get("op") != op:
        raise notice_error(reply)
    return reply


def notice_error(reply: dict[str, object]) -> Exception:
    """The exception for a relay notice: peer-gone, or an error with its code and message."""
    if reply.get("op") == "peer-gone":
        return PeerGoneError(PEER_GONE, left=reply.get("left") is True)
    if reply.get("op") == "error":
        text = str(reply.get("message") or "The relay closed the connection.")
        return RelayError(text, str(reply.get("code", "relay")))
    return RelayError(f"The relay sent an unexpected message ({reply.get('op')!r}).")


# Relay error codes that end the connection but not the session (PROTOCOL.md §8.1). `stall`: the
# relay dropped the other side because it stopped reading (a paused program, a laptop whose lid
# closed); the relay only aborted that side's connection, so it notices a bare loss once it runs
# again and reconnects. Treating the notice as final here would end the session on this side
# alone.
STALL = "stall"
LOST_CONNECTION = frozenset({"connection-lost", STALL})


def connection_lost(exc: BaseException) -> bool:
    """Whether `exc` ended only the connection, so the other side may come back (§8.1).

    The one place that says so. A `peer-gone` counts unless the peer left on purpose; any other
    relay error (`idle`, `byte-limit`, `expired` …) closed the room for good. Whether the
    session can resume at this point is the session's own question (`connection_lost()`).
    """
    if isinstance(exc, PeerGoneError):
        return not exc.left
    return isinstance(exc, RelayError) and exc.code in LOST_CONNECTION


def closed_error(close_code: int | None, relay: str) -> Exception:
    """Why a connection closed when the relay left no notice."""
    if close_code == 1000:
        return PeerGoneError(PEER_GONE)
    return RelayError(f"Lost the connection to the relay at {relay}.", "connection-lost")


class RelayChannel:
    """The rendezvous steps (PROTOCOL.md §3) over a transport's own `send` and `_recv`."""

    room: str | None = None
    # A link for several receivers (PROTOCOL.md §3.1): how many the relay granted, and the
    # token this sender attaches its connection for each of them with.
    receivers: int = 1
    token: str | None = None

    async def send(self, message: bytes | str) -> None:
        raise NotImplementedError

    async def _recv(self) -> str | bytes:
        raise NotImplementedError

    async def create_room(self, ttl: int | None = None, receivers: int = 1) -> tuple[str, int]:
        """Ask for a room; return its number and the granted lifetime in seconds.

        With ``receivers`` > 1 this connection becomes the link's control connection (§3.1):
        `receivers` and `token` say what the relay granted.
        """
        await self.send(create_request(ttl, receivers))
        reply = expect(await self._recv(), "created")
        self.room = str(reply["room"])
        granted = reply.get("receivers", 1)
        self.receivers = granted if isinstance(granted, int) and granted >= 1 else 1
        token = reply.get("token")
        self.token = token if isinstance(token, str) else None
        if receivers > 1 and (self.token is None or self.receivers < 2):
            raise RelayError("This relay does not support links for several receivers.")
        return self.room, int(reply.get("ttl", 0))

    async def next_receiver(self) -> int:
        """On a link's control connection: wait until the relay announces a receiver (§3.1).

        Raises what the relay said instead: `expired` once the link's lifetime is over.
        """
        reply = expect(await self._recv(), "joined")
        number = reply.get("receiver")
        if not isinstance(number, int) or isinstance(number, bool):
            raise RelayError("The relay sent a malformed message.")
        return number

    async def attach_room(self, room: str, receiver: int, token: str) -> None:
        """Open this connection as the sender's side for receiver ``receiver`` of a link."""
        self.room = room
        await self.send(attach_request(room, receiver, token))
        await self.wait_paired()

    async def join_room(self, room: str) -> None:
        """Join `room` and wait until the relay paired us with its creator."""
        self.room = room
        await self.send(join_request(room))
        await self.wait_paired()

    async def resume_room(self, slot: str, side: str) -> None:
        """Reconnect as `side` of a session and wait for the other side (PROTOCOL.md §8.1)."""
        await self.send(resume_request(slot, side))
        await self.wait_paired()

    async def wait_paired(self) -> None:
        expect(await self._recv(), "paired")

    async def receive(self) -> bytes:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def send_all(self, messages: list[bytes]) -> None:
        for message in messages:
            await self.send(message)

    async def send_best_effort(self, messages: list[bytes], timeout: float = 2) -> None:
        """Try to deliver final messages (CANCEL, ABORT) while giving up; never raises."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.send_all(messages), timeout)
