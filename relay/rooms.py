"""Room bookkeeping: code allocation, the waiting → paired → closed lifecycle, usage counters.

This module owns the rule that a room admits exactly two peers ever (its creator and one
joiner) and that a code stops resolving once its room is gone. Resume slots (PROTOCOL.md §8)
are rooms too, found by a resume ID instead of a code and pairing a sender with a receiver as
often as they reconnect. It does no I/O; the session module drives the state transitions.
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


class RoomState(enum.Enum):
    WAITING = "waiting"
    PAIRED = "paired"
    CLOSED = "closed"


class RoomError(Exception):
    """A create/join request that cannot be satisfied; ``code`` is a protocol error code.

    For ``code == protocol.LIMIT``, ``limit`` names the limit (a `protocol.LIMIT_MESSAGES` key).
    """

    def __init__(self, code: str, limit: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.limit = limit


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

    @property
    def log_code(self) -> str | None:
        """The code to name in logs: room numbers (if logging them is on), never resume IDs."""
        return self.code if self.side is None else None

    def touch(self) -> None:
        """Record that a frame moved, for the idle timeout."""
        self.last_activity = time.monotonic()


class RoomRegistry(Generic[Peer]):
    """The live rooms, by code, at most ``max_rooms``. Only waiting and paired rooms are listed."""

    def __init__(self, max_rooms: int = 10_000) -> None:
        self.max_rooms = max_rooms
        self._rooms: dict[str, Room[Peer]] = {}
        self._slots: dict[str, Room[Peer]] = {}  # resume slots by resume ID

    def __len__(self) -> int:
        return len(self._rooms) + len(self._slots)

    def full(self) -> bool:
        return len(self) >= self.max_rooms

    def count_by_state(self) -> tuple[int, int]:
        """(waiting, paired) room counts; linear, which is fine at scrape frequency."""
        rooms = [*self._rooms.values(), *self._slots.values()]
        paired = sum(1 for room in rooms if room.state is RoomState.PAIRED)
        return len(rooms) - paired, paired

    def create(self, creator: Peer, ttl: int) -> Room[Peer]:
        """Open a waiting room under a fresh random code unique among live rooms."""
        if self.full():
            raise RoomError(protocol.LIMIT, protocol.MAX_ROOMS)
        for _ in range(_MAX_CODE_DRAWS):
            code = f"{secrets.randbelow(1_000_000):06d}"
            if code not in self._rooms:
                room = Room(code=code, creator=creator, ttl=ttl)
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
        if room.state is RoomState.PAIRED:
            raise RoomError(protocol.ROOM_FULL)
        room.joiner = joiner
        room.state = RoomState.PAIRED
        room.touch()
        room.paired.set()
        return room

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
        table = self._rooms if room.side is None else self._slots
        if table.get(room.code) is room:
            del table[room.code]
