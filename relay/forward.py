"""A paired room's life: forwarding both ways with backpressure, its limits, and its ending.

This module owns the forwarding loop with its end-to-end backpressure: each direction is a
single task that awaits the destination's send before receiving the next frame, so with the
small receive queue and write buffer configured in server.py a slow receiver stops the relay
from reading the sender's socket and TCP pushes back to the sender. It also owns what ends a
pair (a peer leaving, idleness, the byte limit, a stalled receiver, a protocol error), the
goodbye messages, the decision whether both peers closed the room normally, and giving
the forwarding buffers' memory back to the system once pairs have ended (HeapRelease).
"""

from __future__ import annotations

import asyncio
import ctypes
import enum
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from hushdrop_relay import protocol
from hushdrop_relay.config import RelayConfig
from hushdrop_relay.logs import event
from hushdrop_relay.metrics import Metrics
from hushdrop_relay.rooms import Room, RoomRegistry
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.typing import Data

log = logging.getLogger("hushdrop_relay.forward")

# Bound on delivering a final message and closing; a peer that stopped reading must not
# keep a room (and its buffers) alive.
NOTIFY_TIMEOUT = 5.0

# Close codes that mean "the peer closed on purpose": 1000 from a client calling close(), and
# 1005 (a close frame without a code), which is what a browser's WebSocket.close() sends.
# 1001 is left out on purpose: browsers send it when a page goes away mid-transfer.
NORMAL_CLOSE_CODES = frozenset({CloseCode.NORMAL_CLOSURE, CloseCode.NO_STATUS_RCVD})
# A page's own goodbye when it goes away mid-transfer (PROTOCOL.md §3): scripts may not send
# 1001, only 1000 and 3000-4999, and 1000 would count as a normal close.
PAGE_CLOSED = 4001
# A peer that sent one of these closed its connection on purpose (a browser tab closing sends
# 1001, or the page 4001); anything else, or no close frame at all, is a lost connection that
# may come back.
GOODBYE_CLOSE_CODES = NORMAL_CLOSE_CODES | {CloseCode.GOING_AWAY, PAGE_CLOSED}


# How long after the pair that made it due a heap release runs: rooms end in bursts (a load
# finishing, a batch of peers dropping), and one release after the burst frees them all.
RELEASE_DELAY = 1.0


class End(enum.Enum):
    """Why a paired room ended."""

    PEER_GONE = "peer-gone"
    TEXT_AFTER_PAIRING = protocol.BAD_REQUEST
    IDLE = protocol.IDLE
    BYTE_LIMIT = protocol.BYTE_LIMIT
    STALL = protocol.STALL


@dataclass(frozen=True)
class Outcome:
    end: End
    # For PEER_GONE: the connection that went away; for STALL: the one that stopped reading.
    peer: ServerConnection | None = None


class Forwarder:
    """Runs paired rooms for one relay; shares its config, room registry and metrics."""

    def __init__(
        self, config: RelayConfig, rooms: RoomRegistry[ServerConnection], metrics: Metrics
    ) -> None:
        self.config = config
        self.rooms = rooms
        self.metrics = metrics
        self.heap = HeapRelease()

    async def run_pair(
        self, room: Room[ServerConnection], creator_receive: asyncio.Task[Data]
    ) -> None:
        """Forward between the room's peers until something ends it, then say goodbye."""
        creator, joiner = room.creator, room.joiner
        assert joiner is not None
        tasks: set[asyncio.Task[Outcome]] = set()
        self.heap.pair_started()
        try:
            outcome = await _send_paired(creator, joiner)
            if outcome is None:
                pumps = {
                    creator: asyncio.create_task(
                        self._pump(room, creator, joiner, creator_receive)
                    ),
                    joiner: asyncio.create_task(self._pump(room, joiner, creator, None)),
                }
                tasks = {*pumps.values(), asyncio.create_task(self._idle_watch(room))}
                done, _ = await asyncio.wait(tasks, return_when="FIRST_COMPLETED")
                outcome = next(iter(done)).result()
                if outcome.end is End.PEER_GONE and outcome.peer is not None:
                    await _deliver_last_words(pumps[outcome.peer])
        finally:
            self.heap.pair_ended()
            creator_receive.cancel()
            for task in tasks:
                task.cancel()
            # Cancelling a send that waits for the write buffer to drain is safe: the frame
            # is already buffered whole, so the connection stays consistent for the goodbye.
            await asyncio.gather(creator_receive, *tasks, return_exceptions=True)
        self.rooms.close(room)
        if outcome.end is not End.PEER_GONE:
            self.metrics.error(outcome.end.value)
        await _say_goodbye(creator, joiner, outcome)
        closed_normally = _closed_normally_by_both(room, outcome)
        if closed_normally:
            self.metrics.pairs_closed_normally += 1
        event(
            log,
            "room closed",
            room=room.log_code,
            reason=outcome.end.value,
            closed_normally=closed_normally,
            live_rooms=len(self.rooms),
        )

    async def _pump(
        self,
        room: Room[ServerConnection],
        src: ServerConnection,
        dst: ServerConnection,
        first: asyncio.Task[Data] | None,
    ) -> Outcome:
        """Forward src → dst until something ends the room; return what did."""
        limit = self.config.room_byte_limit
        from_creator = src is room.creator
        while True:
            try:
                if first is not None:
                    message = await first
                    first = None
                else:
                    message = await src.recv()
            except ConnectionClosed as exc:
                if closed_for_size(exc):
                    self.metrics.error("frame-too-big")
                return Outcome(End.PEER_GONE, src)
            if not isinstance(message, bytes):
                return Outcome(End.TEXT_AFTER_PAIRING)
            if limit and room.bytes_forwarded + len(message) > limit:
                return Outcome(End.BYTE_LIMIT)
            room.bytes_forwarded += len(message)
            if from_creator:
                room.creator_sent = True
            else:
                room.joiner_sent = True
            room.touch()
            try:
                # Awaiting the send before the next recv is the backpressure. A receiver that
                # takes nothing for the whole stall timeout has stopped reading: backpressure
                # that legitimately lasts that long is not expected from a live client.
                async with asyncio.timeout(self.config.stall_timeout):
                    await dst.send(message)
            except ConnectionClosed:
                return Outcome(End.PEER_GONE, dst)
            except TimeoutError:
                return Outcome(End.STALL, dst)
            self.metrics.bytes_relayed += len(message)
            room.touch()
            # The frame is in the destination's buffers now; holding it while the sender is
            # slow to send the next one would cost a MiB per quiet direction.
            del message

    async def _idle_watch(self, room: Room[ServerConnection]) -> Outcome:
        timeout = self.config.idle_timeout
        while True:
            remaining = room.last_activity + timeout - time.monotonic()
            if remaining <= 0:
                return Outcome(End.IDLE)
            await asyncio.sleep(remaining)


class HeapRelease:
    """Gives the heap's free memory back to the system once forwarding has wound down.

    Every forwarding direction holds a few 1 MiB frames (see server.py), so a relay under load
    grows by megabytes per pair. When those pairs end, glibc keeps the freed blocks: it only
    returns memory from the top of the heap, and the top is rarely free after many pairs came
    and went. malloc_trim(0) also releases free pages inside the heap. It runs once the
    relay has no pair left, or when the pairs have fallen to half the number at the last
    release (the memory of the other half is then idle), and at most once per RELEASE_DELAY.
    Elsewhere than glibc this does nothing.
    """

    def __init__(self) -> None:
        self.trim = _malloc_trim()
        self.forwarding = 0
        self.peak = 0  # most pairs forwarding at once since the last release
        self._due: asyncio.TimerHandle | None = None

    def pair_started(self) -> None:
        self.forwarding += 1
        self.peak = max(self.peak, self.forwarding)

    def pair_ended(self) -> None:
        self.forwarding -= 1
        if self.trim is None or self._due is not None or self.forwarding > self.peak // 2:
            return
        self._due = asyncio.get_running_loop().call_later(RELEASE_DELAY, self._release)

    def _release(self) -> None:
        assert self.trim is not None
        self._due = None
        self.peak = self.forwarding
        self.trim(0)


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None where there is none (musl, macOS, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = (ctypes.c_size_t,)
    trim.restype = ctypes.c_int
    return trim


async def _deliver_last_words(pump: asyncio.Task[Outcome]) -> None:
    """Let a departed peer's pump forward what that peer sent before it closed.

    When the departure is noticed by the other direction's send failing, messages the peer
    sent just before closing (typically its end-to-end error or COMPLETE) may still be
    queued; cancelling its pump now would drop them and leave the survivor with a bare
    "peer-gone". The pump ends by itself once the queue is empty (its peer is closed).
    """
    if not pump.done():
        await asyncio.wait({pump}, timeout=NOTIFY_TIMEOUT)


def _closed_normally_by_both(room: Room[ServerConnection], outcome: Outcome) -> bool:
    """Whether the room counts in pairs_closed_normally_total.

    That is a paired room in which each peer sent at least one binary frame and which ended
    because a peer closed its connection normally (close code 1000, or a close frame without
    a code), with the other peer then also closing normally when the relay told it. Ends by
    error, limit, timeout, stall or a dropped TCP connection never count.

    This is not "the transfer finished", and nothing the relay sees can be: how a session
    ended is said in SEALED messages (COMPLETE, DECLINE, CANCEL: one message type, padded
    alike), and peers close the same way whether they finished, declined, cancelled, failed
    key confirmation or moved to a direct connection.
    """
    if outcome.end is not End.PEER_GONE or not (room.creator_sent and room.joiner_sent):
        return False
    return all(_closed_normally(ws) for ws in (room.creator, room.joiner))


def _closed_normally(ws: ServerConnection | None) -> bool:
    if ws is None:
        return False
    received = ws.protocol.close_rcvd
    return received is not None and received.code in NORMAL_CLOSE_CODES


def _left(ws: ServerConnection | None) -> bool:
    received = ws.protocol.close_rcvd if ws is not None else None
    return received is not None and received.code in GOODBYE_CLOSE_CODES


def closed_for_size(exc: ConnectionClosed) -> bool:
    """Whether the relay closed the connection because a message exceeded --max-frame."""
    return exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG


async def _send_paired(creator: ServerConnection, joiner: ServerConnection) -> Outcome | None:
    """Tell both peers they are paired; the outcome if one of them is already gone."""
    for ws in (creator, joiner):
        try:
            await ws.send(protocol.paired())
        except ConnectionClosed:
            return Outcome(End.PEER_GONE, ws)
    return None


async def _say_goodbye(
    creator: ServerConnection, joiner: ServerConnection, outcome: Outcome
) -> None:
    other = joiner if outcome.peer is creator else creator
    if outcome.end is End.PEER_GONE:
        await asyncio.gather(
            finish(other, protocol.peer_gone(_left(outcome.peer)), CloseCode.NORMAL_CLOSURE),
            finish(outcome.peer, None, CloseCode.NORMAL_CLOSURE),
        )
        return
    if outcome.end is End.STALL:
        # It has megabytes unread ahead of any goodbye; waiting for it would only hold them.
        assert outcome.peer is not None
        outcome.peer.transport.abort()
        await finish(other, protocol.error(protocol.STALL), CloseCode.NORMAL_CLOSURE)
        return
    if outcome.end is End.TEXT_AFTER_PAIRING:
        message = protocol.error(protocol.BAD_REQUEST, "Only binary frames may follow pairing.")
        code = CloseCode.POLICY_VIOLATION
    else:
        message = protocol.error(outcome.end.value)
        code = CloseCode.NORMAL_CLOSURE
    await asyncio.gather(finish(creator, message, code), finish(joiner, message, code))


async def finish(
    ws: ServerConnection | None,
    message: str | None,
    code: int = CloseCode.POLICY_VIOLATION,
) -> None:
    """Send a final control message (if any) and close, within a bounded time."""
    if ws is None:
        return
    try:
        async with asyncio.timeout(NOTIFY_TIMEOUT):
            if message is not None:
                await ws.send(message)
            await ws.close(code)
    except ConnectionClosed:
        pass
    except TimeoutError:
        # The peer stopped reading; drop it rather than hold its buffers.
        ws.transport.abort()
