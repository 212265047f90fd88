"""One WebSocket connection's life on the relay: admission, request, waiting room, pairing.

This module owns the rendezvous state machine as seen from a connection and the admission
limits applied along the way (connections and waiting rooms per client, room creations per
client, failed joins per client, live rooms), resume slots included (PROTOCOL.md §8). A
client over a limit gets a "limit" error naming it and is closed with 1013 (try again later);
nobody else is affected. Paired rooms are handed to `forward.Forwarder`.
"""

from __future__ import annotations

import asyncio
import logging

from hushdrop_relay import protocol
from hushdrop_relay.config import RelayConfig
from hushdrop_relay.forward import Forwarder, closed_for_size, finish
from hushdrop_relay.limits import Budgets, Client, ClientIdentifier, RateLimiter, Seat
from hushdrop_relay.logs import event
from hushdrop_relay.metrics import Metrics
from hushdrop_relay.rooms import Room, RoomError, RoomRegistry, RoomState
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.typing import Data

# Aggregate events only, unless the operator asked for identifiers (see logs.event).
log = logging.getLogger("hushdrop_relay.session")


class Relay:
    """Connection handler shared by all connections of one server."""

    def __init__(self, config: RelayConfig, metrics: Metrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.rooms: RoomRegistry[ServerConnection] = RoomRegistry(config.max_rooms)
        self.clients = ClientIdentifier(config.trust_proxy_header)
        self.budgets = Budgets(config.max_connections_per_ip, config.max_waiting_rooms_per_ip)
        self.creations = RateLimiter(config.rooms_per_ip_per_minute)
        self.failed_joins = RateLimiter(config.failed_joins_per_ip_per_minute)
        self.forwarder = Forwarder(config, self.rooms, self.metrics)

    def render_metrics(self) -> str:
        return self.metrics.render(*self.rooms.count_by_state())

    async def handle(self, ws: ServerConnection) -> None:
        """Serve one WebSocket connection until its room (if any) is over."""
        client = self.clients.identify(ws)
        self.metrics.peers_connected += 1
        try:
            seat = self.budgets.admit(client.key)
            if seat is None:
                limit = self.config.max_connections_per_ip
                await self._refuse_limit(ws, client, protocol.CONNECTIONS_PER_IP, limit)
                return
            try:
                await self._serve(ws, client, seat)
            finally:
                seat.release()
        finally:
            self.metrics.peers_connected -= 1

    async def _serve(self, ws: ServerConnection, client: Client, seat: Seat) -> None:
        try:
            async with asyncio.timeout(self.config.handshake_timeout):
                first = await ws.recv()
        except TimeoutError:
            self.metrics.error("request-timeout")
            event(log, "connection refused", client=client.address, reason="request-timeout")
            await finish(ws, protocol.error(protocol.BAD_REQUEST, "No request received in time."))
            return
        except ConnectionClosed as exc:
            if closed_for_size(exc):
                self.metrics.error("frame-too-big")
            return

        try:
            request = protocol.parse_request(first)
        except protocol.BadRequest as exc:
            self.metrics.error("bad-request")
            event(log, "connection refused", client=client.address, reason="bad-request")
            await finish(ws, protocol.error(protocol.BAD_REQUEST, str(exc)))
            return

        if isinstance(request, protocol.Create):
            await self._create(ws, client, seat, self.config.clamp_ttl(request.ttl))
        elif isinstance(request, protocol.Resume):
            await self._resume(ws, client, seat, request)
        else:
            await self._join(ws, client, request.room)

    async def _refuse_limit(
        self, ws: ServerConnection, client: Client, limit: str, value: int
    ) -> None:
        self.metrics.limit_rejected(limit)
        # The relay-wide cap is the operator's business; per-client ones are routine.
        relay_wide = limit in (protocol.MAX_ROOMS, protocol.ROOM_CODES)
        level = logging.WARNING if relay_wide else logging.INFO
        event(log, "limit reached", level=level, client=client.address, limit=limit)
        await finish(ws, protocol.limit_reached(limit, value), CloseCode.TRY_AGAIN_LATER)

    async def _create(self, ws: ServerConnection, client: Client, seat: Seat, ttl: int) -> None:
        # The relay-wide cap first, so that a full relay does not eat into client budgets.
        if self.rooms.full():
            await self._refuse_limit(ws, client, protocol.MAX_ROOMS, self.config.max_rooms)
            return
        # Before the creation rate, so that a refused room does not spend a creation.
        if not seat.wait_in_room():
            limit = self.config.max_waiting_rooms_per_ip
            await self._refuse_limit(ws, client, protocol.WAITING_ROOMS_PER_IP, limit)
            return
        if not self.creations.allow(client.key):
            limit = self.config.rooms_per_ip_per_minute
            await self._refuse_limit(ws, client, protocol.ROOMS_PER_IP, limit)
            return
        try:
            room = self.rooms.create(ws, ttl)
        except RoomError as exc:
            await self._refuse_limit(ws, client, exc.limit or protocol.ROOM_CODES, len(self.rooms))
            return
        self.metrics.rooms_created += 1
        live = len(self.rooms)
        event(log, "room created", room=room.code, client=client.address, live_rooms=live)
        await self._host(room, seat, protocol.created(room.code, ttl))

    async def _resume(
        self, ws: ServerConnection, client: Client, seat: Seat, request: protocol.Resume
    ) -> None:
        """Pair a reconnecting peer with the other side of its session, or let it wait."""
        try:
            # A new slot is a room: the same rate limit as creating one.
            if request.id not in self.rooms.waiting_slots and not self.creations.allow(client.key):
                limit = self.config.rooms_per_ip_per_minute
                await self._refuse_limit(ws, client, protocol.ROOMS_PER_IP, limit)
                return
            slot, paired = self.rooms.resume(
                request.id, request.side, ws, round(self.config.resume_timeout)
            )
        except RoomError as exc:
            if exc.code == protocol.LIMIT:
                await self._refuse_limit(ws, client, exc.limit, self.config.max_rooms)
                return
            self.metrics.error(exc.code)
            event(log, "resume refused", client=client.address, reason=exc.code)
            await finish(ws, protocol.error(exc.code), CloseCode.NORMAL_CLOSURE)
            return
        if paired:
            self.metrics.resumes += 1
            event(log, "transfer resumed", client=client.address)
            await slot.finished.wait()
        else:
            # A waiting resume slot stays in the connection budget: it continues a transfer
            # that was under way, which waiting senders must not lock out (see Budgets).
            await self._host(slot, seat, None)

    async def _host(self, room: Room[ServerConnection], seat: Seat, greeting: str | None) -> None:
        """Run a room from its creator's connection: wait for the joiner, then the pair."""
        ws = room.creator
        try:
            if greeting is not None:
                await ws.send(greeting)
            pending = await self._wait_for_joiner(room)
            if pending is not None:
                seat.release()  # the pair now counts through its joiner
                await self.forwarder.run_pair(room, pending)
        except ConnectionClosed:
            event(log, "room closed", room=room.log_code, reason="creator-left")
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
        if room.replaced:
            receive.cancel()
            self.metrics.error("replaced")
            await finish(ws, protocol.error(protocol.REPLACED), CloseCode.NORMAL_CLOSURE)
            return None
        if not receive.done():
            receive.cancel()
            self.metrics.error("expired")
            event(log, "room closed", room=room.log_code, reason="expired")
            await finish(ws, protocol.error(protocol.EXPIRED), CloseCode.NORMAL_CLOSURE)
            return None
        exc = receive.exception()
        if isinstance(exc, ConnectionClosed):
            if closed_for_size(exc):
                self.metrics.error("frame-too-big")
            event(log, "room closed", room=room.log_code, reason="creator-left")
        else:
            self.metrics.error("bad-request")
            event(log, "room closed", room=room.log_code, reason="bad-request")
            await finish(
                ws, protocol.error(protocol.BAD_REQUEST, "Nothing may be sent before pairing.")
            )
        return None

    async def _join(self, ws: ServerConnection, client: Client, code: str) -> None:
        # Only a well-formed code is worth logging (and it is logged only if identifiers are on).
        shown = code if protocol.is_room_code(code) else None
        if self.failed_joins.blocked(client.key):
            limit = self.config.failed_joins_per_ip_per_minute
            await self._refuse_limit(ws, client, protocol.FAILED_JOINS_PER_IP, limit)
            return
        try:
            if shown is None:
                raise RoomError(protocol.NO_SUCH_ROOM)
            room = self.rooms.join(code, ws)
        except RoomError as exc:
            self.failed_joins.allow(client.key)  # spends one of the client's failed joins
            self.metrics.error(exc.code)
            event(log, "join refused", room=shown, client=client.address, reason=exc.code)
            await finish(ws, protocol.error(exc.code), CloseCode.NORMAL_CLOSURE)
            return
        event(log, "room paired", room=code, client=client.address)
        # The creator's task runs the pair; returning earlier would close this connection.
        await room.finished.wait()
