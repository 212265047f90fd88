"""One WebSocket connection's life on the relay: request, waiting room, paired forwarding.

This module owns the rendezvous state machine as seen from a connection and the forwarding
loop with its end-to-end backpressure: each direction is a single task that awaits the
destination's send before receiving the next frame, so with the small receive queue and
write buffer configured in server.py a slow receiver stops the relay from reading the
sender's socket and TCP pushes back to the sender.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from dataclasses import dataclass

from hushdrop_relay import protocol
from hushdrop_relay.config import RelayConfig
from hushdrop_relay.rooms import Room, RoomError, RoomRegistry, RoomState
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.typing import Data

# Aggregate events only: never a room code, an address or payload.
log = logging.getLogger("hushdrop_relay.session")

# Bound on delivering a final message and closing; a peer that stopped reading must not
# keep a room (and its buffers) alive.
NOTIFY_TIMEOUT = 5.0


class End(enum.Enum):
    """Why a paired room ended."""

    PEER_GONE = "peer-gone"
    TEXT_AFTER_PAIRING = protocol.BAD_REQUEST
    IDLE = protocol.IDLE
    BYTE_LIMIT = protocol.BYTE_LIMIT


@dataclass(frozen=True)
class Outcome:
    end: End
    # For PEER_GONE: the connection that went away.
    gone: ServerConnection | None = None


class Relay:
    """Connection handler shared by all connections of one server."""

    def __init__(self, config: RelayConfig) -> None:
        self.config = config
        self.rooms: RoomRegistry[ServerConnection] = RoomRegistry()

    async def handle(self, ws: ServerConnection) -> None:
        """Serve one WebSocket connection until its room (if any) is over."""
        try:
            async with asyncio.timeout(self.config.handshake_timeout):
                first = await ws.recv()
        except TimeoutError:
            log.info("connection refused: no request in time")
            await _finish(ws, protocol.error(protocol.BAD_REQUEST, "No request received in time."))
            return
        except ConnectionClosed:
            return

        try:
            request = protocol.parse_request(first)
        except protocol.BadRequest as exc:
            log.info("connection refused: bad request")
            await _finish(ws, protocol.error(protocol.BAD_REQUEST, str(exc)))
            return

        if isinstance(request, protocol.Create):
            await self._create(ws, self.config.clamp_ttl(request.ttl))
        else:
            await self._join(ws, request.room)

    async def _create(self, ws: ServerConnection, ttl: int) -> None:
        try:
            room = self.rooms.create(ws, ttl)
        except RoomError as exc:
            log.warning("room refused: %s", exc.code)
            await _finish(ws, protocol.error(exc.code), CloseCode.TRY_AGAIN_LATER)
            return
        log.info("room created (live rooms: %d)", len(self.rooms))
        try:
            await ws.send(protocol.created(room.code, ttl))
            pending = await self._wait_for_joiner(room)
            if pending is not None:
                await self._run_pair(room, pending)
        except ConnectionClosed:
            log.info("room closed: creator left")
        finally:
            self.rooms.close(room)
            # Only now may the joiner's handler return (which closes its connection).
            room.finished.set()

    async def _wait_for_joiner(self, room: Room[ServerConnection]) -> asyncio.Task[Data] | None:
        """Wait until the room is paired (return the creator's pending receive) or ends."""
        ws = room.creator
        # Receiving while waiting is how a departed creator is noticed. If pairing wins, the
        # receive is handed to the forwarding loop, so no frame is lost or reordered.
        receive = asyncio.ensure_future(ws.recv())
        paired = asyncio.ensure_future(room.paired.wait())
        try:
            await asyncio.wait({receive, paired}, timeout=room.ttl, return_when="FIRST_COMPLETED")
        except BaseException:
            receive.cancel()
            raise
        finally:
            paired.cancel()
        if room.state is RoomState.PAIRED:
            return receive
        # Retire the code before any await so that nobody can join a room being closed.
        self.rooms.close(room)
        if not receive.done():
            receive.cancel()
            log.info("room closed: expired")
            await _finish(ws, protocol.error(protocol.EXPIRED), CloseCode.NORMAL_CLOSURE)
        elif isinstance(receive.exception(), ConnectionClosed):
            log.info("room closed: creator left")
        else:
            log.info("room closed: bad request")
            await _finish(
                ws, protocol.error(protocol.BAD_REQUEST, "Nothing may be sent before pairing.")
            )
        return None

    async def _join(self, ws: ServerConnection, code: str) -> None:
        try:
            if not protocol.is_room_code(code):
                raise RoomError(protocol.NO_SUCH_ROOM)
            room = self.rooms.join(code, ws)
        except RoomError as exc:
            log.info("join refused: %s", exc.code)
            await _finish(ws, protocol.error(exc.code), CloseCode.NORMAL_CLOSURE)
            return
        log.info("room paired")
        # The creator's task runs the pair; returning earlier would close this connection.
        await room.finished.wait()

    async def _run_pair(
        self, room: Room[ServerConnection], creator_receive: asyncio.Task[Data]
    ) -> None:
        creator, joiner = room.creator, room.joiner
        assert joiner is not None
        tasks: set[asyncio.Task[Outcome]] = set()
        try:
            outcome = await _send_paired(creator, joiner)
            if outcome is None:
                tasks = {
                    asyncio.create_task(self._pump(room, creator, joiner, creator_receive)),
                    asyncio.create_task(self._pump(room, joiner, creator, None)),
                    asyncio.create_task(self._idle_watch(room)),
                }
                done, _ = await asyncio.wait(tasks, return_when="FIRST_COMPLETED")
                outcome = next(iter(done)).result()
        finally:
            creator_receive.cancel()
            for task in tasks:
                task.cancel()
            # Cancelling a send that waits for the write buffer to drain is safe: the frame
            # is already buffered whole, so the connection stays consistent for the goodbye.
            await asyncio.gather(creator_receive, *tasks, return_exceptions=True)
        self.rooms.close(room)
        log.info("room closed: %s", outcome.end.value)
        await self._say_goodbye(creator, joiner, outcome)

    async def _say_goodbye(
        self, creator: ServerConnection, joiner: ServerConnection, outcome: Outcome
    ) -> None:
        if outcome.end is End.PEER_GONE:
            survivor = joiner if outcome.gone is creator else creator
            await asyncio.gather(
                _finish(survivor, protocol.peer_gone(), CloseCode.NORMAL_CLOSURE),
                _finish(outcome.gone, None, CloseCode.NORMAL_CLOSURE),
            )
            return
        if outcome.end is End.TEXT_AFTER_PAIRING:
            message = protocol.error(protocol.BAD_REQUEST, "Only binary frames may follow pairing.")
            code = CloseCode.POLICY_VIOLATION
        else:
            message = protocol.error(outcome.end.value)
            code = CloseCode.NORMAL_CLOSURE
        await asyncio.gather(_finish(creator, message, code), _finish(joiner, message, code))

    async def _pump(
        self,
        room: Room[ServerConnection],
        src: ServerConnection,
        dst: ServerConnection,
        first: asyncio.Task[Data] | None,
    ) -> Outcome:
        """Forward src → dst until something ends the room; return what did."""
        limit = self.config.room_byte_limit
        while True:
            try:
                if first is not None:
                    message = await first
                    first = None
                else:
                    message = await src.recv()
            except ConnectionClosed:
                return Outcome(End.PEER_GONE, src)
            if not isinstance(message, bytes):
                return Outcome(End.TEXT_AFTER_PAIRING)
            if limit and room.bytes_forwarded + len(message) > limit:
                return Outcome(End.BYTE_LIMIT)
            room.bytes_forwarded += len(message)
            room.touch()
            try:
                # Awaiting the send before the next recv is the backpressure.
                await dst.send(message)
            except ConnectionClosed:
                return Outcome(End.PEER_GONE, dst)
            room.touch()

    async def _idle_watch(self, room: Room[ServerConnection]) -> Outcome:
        timeout = self.config.idle_timeout
        while True:
            remaining = room.last_activity + timeout - time.monotonic()
            if remaining <= 0:
                return Outcome(End.IDLE)
            await asyncio.sleep(remaining)


async def _send_paired(creator: ServerConnection, joiner: ServerConnection) -> Outcome | None:
    """Tell both peers they are paired; the outcome if one of them is already gone."""
    for ws in (creator, joiner):
        try:
            await ws.send(protocol.paired())
        except ConnectionClosed:
            return Outcome(End.PEER_GONE, ws)
    return None


async def _finish(
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
