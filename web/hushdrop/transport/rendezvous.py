"""The relay's control messages (PROTOCOL.md §3), shared by the CPython and browser transports.

Pure functions: building requests and turning the relay's notices into exceptions. No I/O.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit, urlunsplit

from ..protocol.constants import DATA_FRAME_SIZE, WS_PATH
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


def create_request(ttl: int | None = None) -> str:
    request: dict[str, object] = {"op": "create"}
    if ttl is not None:
        request["ttl"] = ttl
    return json.dumps(request)


def join_request(room: str) -> str:
    return json.dumps({"op": "join", "room": room})


def parse(message: str) -> dict[str, object]:
    try:
        reply = json.loads(message)
    except ValueError as exc:
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
        return PeerGoneError(PEER_GONE)
    if reply.get("op") == "error":
        text = str(reply.get("message") or "The relay closed the connection.")
        return RelayError(text, str(reply.get("code", "relay")))
    return RelayError(f"The relay sent an unexpected message ({reply.get('op')!r}).")


def closed_error(close_code: int | None, relay: str) -> Exception:
    """Why a connection closed when the relay left no notice."""
    if close_code == 1000:
        return PeerGoneError(PEER_GONE)
    return RelayError(f"Lost the connection to the relay at {relay}.", "connection-lost")
