"""Room bookkeeping: code allocation, the waiting → paired → closed lifecycle, usage counters.

This module owns the rule that a room admits exactly two peers ever (its creator and one
joiner) and that a code stops resolving once its room is gone. A link for several receivers
(PROTOCOL.md §3.1) is a room whose creator keeps a control connection: each join opens a
receiver room in which the joiner waits for the sender's own connection for it (an attach).
Resume slots (PROTOCOL.md §8) are rooms too, found by a resume ID instead of a code and pairing
a sender with a receiver as often as they reconnect. It does no I/O; the session module drives
the state transitions.
"""

from __future__ import annotations

import asyncio
import enum
import secrets
import time
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from hushdrop_relay import protocol

Peer = TypeVar("Peer")

# Retrying a random draw keeps codes unpredictable; the cap only matters when nearly all
# one million codes are live, at which point refusing new rooms is the right answer.
_MAX_CODE_DRAWS = 100

# How long a receiver of a several-receiver link waits for the sender's connection. The sender
# attaches as soon as the relay tells it of the receiver; a minute covers a slow, busy page.
ATTACH_TIMEOUT = 60


class RoomState(enum.Enum):
    WAITING = "waiting"
    PAIRED = "paired"
    CLOSED = "closed"


class RoomError(Exception):
    """A create/join request that cannot be satisfied; ``code`` is a protocol error code.

    For ``code == protocol.LIMIT``, ``limit`` names the limit (a `protocol.LIMIT_MESSAGES` key).
    """

    def __init__(self, code: str, limit: str | None = None, reply: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.limit = limit
        # The whole error message for the client, when it is not the code's standard one.
        self.reply = reply


@dataclass(eq=False)
class Room(Generic[Peer]):
    """One rendezvous: a creator waiting for, then forwarding to, exactly one joiner."""

    code: str
    creator: Peer
    ttl: int
    state: RoomState = RoomState.WAITING
    joiner: Peer | None = None
    # Set when a joiner arrives; the creator's task is the one that runs the pair.
    paired: asyncio.Event = field(default_factory=asyncio.Event)
    # Set once both peers got their last message; the joiner's task waits on it.
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    bytes_forwarded: int = 0
    # Whether each side sent at least one binary frame (for pairs_closed_normally_total).
    creator_sent: bool = False
    joiner_sent: bool = False
    last_activity: float = field(default_factory=time.monotonic)
    # Resume slots only: which side the waiting peer is, and whether a newer connection of the
    # same side took its place.
    side: str | None = None
    replaced: bool = False
    # Several receivers (PROTOCOL.md §3.1): how many the link admits and how many joined, the
    # token the sender attaches with, and the receiver rooms (a receiver room: its number).
    receivers: int = 1
    joined: int = 0
    token: str | None = None
    receiver_rooms: list[Room[Peer]] = field(default_factory=list)
    receiver: int = 0
    # A receiver room whose sender went away before attaching: the receiver is told so.
    abandoned: bool = False

    @property
    def log_code(self) -> str | None:
        """The code to name in logs: room numbers (if logging them is on), never resume IDs."""
        return self.code.split("/", 1)[0] if self.side is None else None

    def touch(self) -> None:
        """Record that a frame moved, for the idle timeout."""
        self.last_activity = time.monotonic()


class RoomRegistry(Generic[Peer]):
    """The live rooms, by code, at most ``max_rooms``. Only waiting and paired rooms are listed."""

    def __init__(self, max_rooms: int = 10_000) -> None:
        self.max_rooms = max_rooms
        self._rooms: dict[str, Room[Peer]] = {}
        self._slots: dict[str, Room[Peer]] = {}  # resume slots by resume ID
        # Receivers waiting for (or paired with) the sender's connection, by "<code>/<n>".
        # Not counted toward max_rooms: each belongs to a room (at most MAX_RECEIVERS of them).
        self._receiver_rooms: dict[str, Room[Peer]] = {}

    def __len__(self) -> int:
        return len(self._rooms) + len(self._slots)

    def full(self) -> bool:
        return len(self) >= self.max_rooms

    def count_by_state(self) -> tuple[int, int]:
        """(waiting, paired) room counts; linear, which is fine at scrape frequency."""
        rooms = [*self._rooms.values(), *self._slots.values()]
        paired = sum(1 for room in rooms if room.state is RoomState.PAIRED)
        return len(rooms) - paired, paired

    def create(self, creator: Peer, ttl: int, receivers: int = 1) -> Room[Peer]:
        """Open a waiting room under a fresh random code unique among live rooms."""
        if self.full():
            raise RoomError(protocol.LIMIT, protocol.MAX_ROOMS)
        for _ in range(_MAX_CODE_DRAWS):
            code = f"{secrets.randbelow(1_000_000):06d}"
            if code not in self._rooms:
                room = Room(code=code, creator=creator, ttl=ttl, receivers=receivers)
                if receivers > 1:
                    room.token = secrets.token_urlsafe(16)
                self._rooms[code] = room
                return room
        raise RoomError(protocol.LIMIT, protocol.ROOM_CODES)

    def join(self, code: str, joiner: Peer) -> Room[Peer]:
        """Admit ``joiner`` as the second and last peer of the room under ``code``.

        Runs without awaiting, so two joiners racing for one room cannot both win.
        """
        room = self._rooms.get(code)
        if room is None or room.state is RoomState.CLOSED:
            raise RoomError(protocol.NO_SUCH_ROOM)
        if room.receivers > 1:
            return self._join_receiver(room, joiner)
        if room.state is RoomState.PAIRED:
            raise RoomError(protocol.ROOM_FULL)
        room.joiner = joiner
        room.state = RoomState.PAIRED
        room.touch()
        room.paired.set()
        return room

    def _join_receiver(self, room: Room[Peer], joiner: Peer) -> Room[Peer]:
        """A new receiver room for ``joiner``; the link's creator learns of it (``paired``)."""
        if room.joined >= room.receivers:
            raise RoomError(
                protocol.ROOM_FULL,
                reply=protocol.error(protocol.ROOM_FULL, protocol.USED_UP_MESSAGE),
            )
        room.joined += 1
        code = f"{room.code}/{room.joined}"
        receiver_room = Room(code=code, creator=joiner, ttl=ATTACH_TIMEOUT, token=room.token)
        receiver_room.receiver = room.joined
        room.receiver_rooms.append(receiver_room)
        self._receiver_rooms[code] = receiver_room
        room.touch()
        room.paired.set()  # wakes the creator's task, which announces the receiver
        return receiver_room

    def attach(self, code: str, receiver: int, token: str, peer: Peer) -> Room[Peer]:
        """Pair the sender's connection ``peer`` with receiver number ``receiver`` of a link.

        Works after the link's room closed to joins (expired), for receivers that joined
        before. Runs without awaiting, like `join`.
        """
        room = self._receiver_rooms.get(f"{code}/{receiver}")
        if (
            room is None
            or room.state is not RoomState.WAITING
            or room.token is None
            or not secrets.compare_digest(room.token, token)
        ):
            raise RoomError(protocol.NO_SUCH_ROOM)
        room.joiner = peer
        room.state = RoomState.PAIRED
        room.touch()
        room.paired.set()
        return room

    def abandon_receivers(self, room: Room[Peer]) -> None:
        """The sender of a link left: end the receiver rooms still waiting for it."""
        for receiver_room in room.receiver_rooms:
            if receiver_room.state is RoomState.WAITING:
                receiver_room.abandoned = True
                self.close(receiver_room)
                receiver_room.paired.set()  # wakes the receiver's task, which tells it

    @property
    def waiting_slots(self) -> dict[str, Room[Peer]]:
        """Resume slots by ID (waiting or paired); read-only use."""
        return self._slots

    def resume(self, slot_id: str, side: str, peer: Peer, ttl: int) -> tuple[Room[Peer], bool]:
        """Put ``peer`` (``side`` of a session) in the resume slot ``slot_id``.

        Returns the slot and whether ``peer`` completed a pair (True) or now waits in it
        (False). A waiting peer of the same side is replaced: it is most likely a connection
        that died without the relay noticing yet. Runs without awaiting, like `join`.
        """
        slot = self._slots.get(slot_id)
        if slot is not None and slot.state is RoomState.PAIRED:
            raise RoomError(protocol.ROOM_FULL)
        if slot is not None and slot.side != side:
            slot.joiner = peer
            slot.state = RoomState.PAIRED
            slot.touch()
            slot.paired.set()
            return slot, True
        if slot is not None:
            slot.replaced = True
            self.close(slot)
            slot.paired.set()  # wakes the replaced peer's task, which sees the room closed
        elif self.full():
            raise RoomError(protocol.LIMIT, protocol.MAX_ROOMS)
        slot = Room(code=slot_id, creator=peer, ttl=ttl, side=side)
        self._slots[slot_id] = slot
        return slot, False

    def close(self, room: Room[Peer]) -> None:
        """Retire ``room`` for good: its code no longer resolves and nobody can join it.

        Idempotent. Does not set ``finished``: the caller does once its goodbyes are sent.
        """
        room.state = RoomState.CLOSED
        if room.side is not None:
            table = self._slots
        elif room.receiver:
            table = self._receiver_rooms
        else:
            table = self._rooms
        if table.get(room.code) is room:
            del table[room.code]
