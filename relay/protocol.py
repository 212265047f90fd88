"""The relay's rendezvous wire format: parsing client requests and building relay messages.

This module owns the JSON text frames exchanged before pairing and the control messages the
relay sends when a room ends. It knows nothing about sockets or rooms. Binary frames are
never inspected anywhere in the relay; they are the peers' end-to-end encrypted business.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

# Error codes the relay may send in {"op": "error", "code": ...}.
NO_SUCH_ROOM = "no-such-room"
ROOM_FULL = "room-full"
EXPIRED = "expired"
IDLE = "idle"
BYTE_LIMIT = "byte-limit"
BAD_REQUEST = "bad-request"
# A peer left forwarded data unread for longer than the relay's stall timeout.
STALL = "stall"
# A newer connection resumed the same side of a session (PROTOCOL.md §8).
REPLACED = "replaced"
# A limit was reached; the message says which one.
LIMIT = "limit"

# Which limit a "limit" error is about: also the label values of the limit metrics.
CONNECTIONS_PER_IP = "connections-per-ip"
WAITING_ROOMS_PER_IP = "waiting-rooms-per-ip"
ROOMS_PER_IP = "rooms-per-ip"
FAILED_JOINS_PER_IP = "failed-joins-per-ip"
MAX_ROOMS = "max-rooms"
ROOM_CODES = "room-codes"
# Several relay nodes: their shared state (Redis) cannot be reached right now.
CLUSTER = "cluster"

MESSAGES = {
    NO_SUCH_ROOM: (
        "No transfer is waiting under that code. "
        "It may have expired, been used already, or been mistyped."
    ),
    ROOM_FULL: "This transfer already has a receiver.",
    EXPIRED: "Nobody joined this transfer before its code expired.",
    IDLE: "The transfer was idle for too long and has been closed.",
    BYTE_LIMIT: "The transfer exceeded the amount of data this relay forwards per transfer.",
    BAD_REQUEST: "The relay did not understand the request.",
    STALL: "The transfer stopped because one side stopped receiving data for too long.",
    REPLACED: "Another connection took over this side of the transfer.",
    LIMIT: "The relay is at capacity right now. Try again later.",
}

# Templates for "limit" errors, formatted with the limit's value as ``n``.
LIMIT_MESSAGES = {
    CONNECTIONS_PER_IP: (
        "Too many connections to this relay from your network address (at most {n} at once). "
        "Finish or cancel other transfers, then try again."
    ),
    WAITING_ROOMS_PER_IP: (
        "Too many transfers from your network address are waiting for their receiver "
        "(at most {n} at once). Wait until some are received, or cancel them, then try again."
    ),
    ROOMS_PER_IP: (
        "Too many transfers started from your network address (at most {n} per minute). "
        "Try again in a minute."
    ),
    FAILED_JOINS_PER_IP: (
        "Too many attempts to join transfers that do not exist from your network address "
        "(at most {n} per minute). Check the code and try again in a minute."
    ),
    MAX_ROOMS: "The relay has too many open transfers right now (at most {n}). Try again later.",
    ROOM_CODES: MESSAGES[LIMIT],
    CLUSTER: (
        "The relay cannot reach the state its nodes share right now, so it cannot start or "
        "find transfers. Try again in a minute."
    ),
}

PEER_GONE_MESSAGE = "The other side disconnected."
# room-full for a link that admits several receivers (PROTOCOL.md §3.1).
USED_UP_MESSAGE = "This link has been used by all its receivers."
# The peer protocol version this relay's rendezvous belongs to (PROTOCOL.md §11).
PROTOCOL_VERSION = 4
# The most receivers one link may admit (PROTOCOL.md §3.1); a request for more is clamped.
MAX_RECEIVERS = 10
# The token that lets the sender attach its connections to a room's receivers (§3.1).
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{22}$")

ROOM_CODE_RE = re.compile(r"^[0-9]{6}$")
# A resume ID: 16 bytes in unpadded base64url (PROTOCOL.md §8.1).
RESUME_ID_RE = re.compile(r"^[A-Za-z0-9_-]{22}$")
SIDES = ("sender", "receiver")


class BadRequest(ValueError):
    """The client's request is malformed; the message is safe to send back to it."""


@dataclass(frozen=True)
class Create:
    """A request to open a room; ``ttl`` is the requested lifetime in seconds, if any, and
    ``receivers`` how many receivers the link admits (1 unless the client asked for more)."""

    ttl: int | None
    receivers: int = 1


@dataclass(frozen=True)
class Attach:
    """The sender's connection for receiver number ``receiver`` of a several-receiver room."""

    room: str
    receiver: int
    token: str


@dataclass(frozen=True)
class Join:
    """A request to join the room with the given code (not validated for existence)."""

    room: str


@dataclass(frozen=True)
class Resume:
    """A peer of an established session reconnecting: pair it with the other ``side``."""

    id: str
    side: str


def _is_int(value: object) -> bool:
    # bool is an int subclass in Python but never a sensible number on the wire.
    return isinstance(value, int) and not isinstance(value, bool)


def parse_request(data: str | bytes) -> Create | Join | Resume | Attach:
    """Parse a client's first message; raise `BadRequest` when it is not a known request."""
    if not isinstance(data, str):
        raise BadRequest("The first message must be a JSON text message.")
    try:
        obj: Any = json.loads(data)
    except (ValueError, RecursionError):
        raise BadRequest("The message is not valid JSON.") from None
    if not isinstance(obj, dict):
        raise BadRequest("The message must be a JSON object.")
    op = obj.get("op")
    if op == "create":
        ttl = obj.get("ttl")
        if ttl is not None and not _is_int(ttl):
            raise BadRequest("The ttl must be an integer number of seconds.")
        receivers = obj.get("receivers", 1)
        if not _is_int(receivers) or receivers < 1:
            raise BadRequest("The number of receivers must be a positive integer.")
        return Create(ttl=ttl, receivers=min(receivers, MAX_RECEIVERS))
    if op == "join":
        room = obj.get("room")
        if not isinstance(room, str):
            raise BadRequest("The room code must be a string.")
        return Join(room=room)
    if op == "resume":
        slot, side = obj.get("id"), obj.get("side")
        if not isinstance(slot, str) or not RESUME_ID_RE.fullmatch(slot):
            raise BadRequest("The resume id must be 22 base64url characters.")
        if side not in SIDES:
            raise BadRequest('The side must be "sender" or "receiver".')
        return Resume(id=slot, side=side)
    if op == "attach":
        room, receiver, token = obj.get("room"), obj.get("receiver"), obj.get("token")
        if not isinstance(room, str) or not is_room_code(room):
            raise BadRequest("The room code must be 6 digits.")
        if not _is_int(receiver) or not 1 <= receiver <= MAX_RECEIVERS:
            raise BadRequest(f"The receiver must be a number from 1 to {MAX_RECEIVERS}.")
        if not isinstance(token, str) or not TOKEN_RE.fullmatch(token):
            raise BadRequest("The token must be 22 base64url characters.")
        return Attach(room=room, receiver=receiver, token=token)
    raise BadRequest("Unknown operation.")


def is_room_code(value: str) -> bool:
    """Tell whether ``value`` has the shape of a room code (6 decimal digits)."""
    return ROOM_CODE_RE.fullmatch(value) is not None


def created(room: str, ttl: int, receivers: int = 1, token: str | None = None) -> str:
    """The relay's answer to a successful create (a token only for several receivers)."""
    reply: dict[str, object] = {"op": "created", "room": room, "ttl": ttl, "receivers": receivers}
    if token is not None:
        reply["token"] = token
    return json.dumps(reply)


def info(version: int, ttl: int, ttl_min: int, ttl_max: int, presets: list[int]) -> str:
    """The body of ``GET /v1/info`` (PROTOCOL.md §3.2)."""
    return json.dumps(
        {
            "version": version,
            "ttl": {"default": ttl, "min": ttl_min, "max": ttl_max, "presets": presets},
            "receivers": MAX_RECEIVERS,
        }
    )


def joined(receiver: int) -> str:
    """Sent to a several-receiver room's creator: receiver number ``receiver`` joined."""
    return json.dumps({"op": "joined", "receiver": receiver})


def paired() -> str:
    """Sent to both peers once the second one joined."""
    return json.dumps({"op": "paired"})


def peer_gone(left: bool) -> str:
    """Sent to the remaining peer when the other one disconnected: ``left`` when it closed its
    connection itself (a goodbye), not when the connection was lost (it may come back)."""
    return json.dumps({"op": "peer-gone", "left": left, "message": PEER_GONE_MESSAGE})


def error(code: str, message: str | None = None) -> str:
    """An error message; ``message`` defaults to the human text for ``code``."""
    return json.dumps({"op": "error", "code": code, "message": message or MESSAGES[code]})


def limit_reached(limit: str, value: int) -> str:
    """The "limit" error for ``limit`` (one of `LIMIT_MESSAGES`), whose value is ``value``."""
    return error(LIMIT, LIMIT_MESSAGES[limit].format(n=value))
