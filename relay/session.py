"""One WebSocket connection's life on the relay: admission, request, waiting room, pairing.

This module owns the rendezvous state machine as seen from a connection and the admission
limits applied along the way (connections and waiting rooms per client, room creations per
client, failed joins per client, live rooms), resume slots included (PROTOCOL.md §8). A
client over a limit gets a "limit" error naming it and is closed with 1013 (try again later);
nobody else is affected. Paired rooms are handed to `forward.Forwarder`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING

from hushdrop_relay import protocol
from hushdrop_relay.config import RelayConfig
from hushdrop_relay.forward import Forwarder, closed_for_size, finish
from hushdrop_relay.http import LINK_PATH
from hushdrop_relay.limits import (
    Budgets,
    Client,
    ClientIdentifier,
    ClusterUnavailable,
    RateLimiter,
    Seat,
)
from hushdrop_relay.logs import event
from hushdrop_relay.metrics import Metrics
from hushdrop_relay.rooms import Room, RoomError, RoomRegistry, RoomState
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.typing import Data

if TYPE_CHECKING:
    from hushdrop_relay.cluster import Cluster, SharedSeat
    from websockets.asyncio.client import ClientConnection

# A new room's number is drawn again when another node of a cluster has it (rarely more than once).
CLAIM_ATTEMPTS = 20

# Aggregate events only, unless the operator asked for identifiers (see logs.event).
log = logging.getLogger("hushdrop_relay.session")


class Relay:
    """Connection handler shared by all connections of one server."""

    def __init__(
        self, config: RelayConfig, metrics: Metrics | None = None, cluster: Cluster | None = None
    ) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        # With several nodes (--redis): the directory of rooms and the shared limits.
        self.cluster = cluster
        self.rooms: RoomRegistry[ServerConnection] = RoomRegistry(config.max_rooms)
        self.clients = ClientIdentifier(
            config.trust_proxy_header, cluster.client_secret if cluster is not None else None
        )
        self.budgets = Budgets(config.max_connections_per_ip, config.max_waiting_rooms_per_ip)
        self.creations = RateLimiter(config.rooms_per_ip_per_minute)
        self.failed_joins = RateLimiter(config.failed_joins_per_ip_per_minute)
        self.forwarder = Forwarder(config, self.rooms, self.metrics)

    def render_info(self) -> str:
        """What ``GET /v1/info`` says: the link lifetimes and receivers this relay allows."""
        c = self.config
        return protocol.info(
            protocol.PROTOCOL_VERSION, c.room_ttl, c.min_room_ttl, c.max_room_ttl, c.ttl_presets()
        )

    def render_metrics(self) -> str:
        return self.metrics.render(*self.rooms.count_by_state())

    async def handle(self, ws: ServerConnection) -> None:
        """Serve one WebSocket connection until its room (if any) is over."""
        client = self.clients.identify(ws)
        self.metrics.peers_connected += 1
        try:
            if self.cluster is not None and _path(ws) == LINK_PATH:
                await self._serve_link(ws, self.cluster)
                return
            try:
                seat = await self._admit(client)
            except ClusterUnavailable:
                await self._refuse_limit(ws, client, protocol.CLUSTER, 0)
                return
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

        try:
            if isinstance(request, protocol.Create):
                ttl = self.config.clamp_ttl(request.ttl)
                await self._create(ws, client, seat, ttl, request.receivers)
            elif isinstance(request, protocol.Resume):
                await self._resume(ws, client, seat, request)
            elif isinstance(request, protocol.Attach):
                await self._attach(ws, client, request)
            else:
                await self._join(ws, client, seat, request.room)
        except ClusterUnavailable:
            # Raised only before a peer waits or forwards: nothing else is under way yet.
            await self._refuse_limit(ws, client, protocol.CLUSTER, 0)

    # Limits, on this node or shared by the cluster ------------------------------------------

    async def _admit(self, client: Client) -> Seat | SharedSeat | None:
        if self.cluster is None:
            return self.budgets.admit(client.key)
        return await self.cluster.admit(
            client.key, self.config.max_connections_per_ip, self.config.max_waiting_rooms_per_ip
        )

    async def _wait_in_room(self, seat: Seat | SharedSeat) -> bool:
        waiting = seat.wait_in_room()
        return waiting if isinstance(waiting, bool) else await waiting

    async def _allow_creation(self, client: Client) -> bool:
        if self.cluster is None:
            return self.creations.allow(client.key)
        limit = self.config.rooms_per_ip_per_minute
        return await self.cluster.take_token("rooms", client.key, limit)

    async def _joins_blocked(self, client: Client) -> bool:
        if self.cluster is None:
            return self.failed_joins.blocked(client.key)
        limit = self.config.failed_joins_per_ip_per_minute
        return await self.cluster.out_of_tokens("failed-joins", client.key, limit)

    async def _spend_failed_join(self, client: Client) -> None:
        if self.cluster is None:
            self.failed_joins.allow(client.key)
            return
        limit = self.config.failed_joins_per_ip_per_minute
        with contextlib.suppress(ClusterUnavailable):  # the join is refused anyway
            await self.cluster.take_token("failed-joins", client.key, limit)

    async def _refuse_limit(
        self, ws: ServerConnection, client: Client, limit: str, value: int
    ) -> None:
        self.metrics.limit_rejected(limit)
        # The relay-wide cap is the operator's business; per-client ones are routine.
        relay_wide = limit in (protocol.MAX_ROOMS, protocol.ROOM_CODES)
        level = logging.WARNING if relay_wide else logging.INFO
        event(log, "limit reached", level=level, client=client.address, limit=limit)
        await finish(ws, protocol.limit_reached(limit, value), CloseCode.TRY_AGAIN_LATER)

    async def _create(
        self,
        ws: ServerConnection,
        client: Client,
        seat: Seat | SharedSeat,
        ttl: int,
        receivers: int = 1,
    ) -> None:
        # The relay-wide cap first, so that a full relay does not eat into client budgets.
        if self.rooms.full():
            await self._refuse_limit(ws, client, protocol.MAX_ROOMS, self.config.max_rooms)
            return
        # Before the creation rate, so that a refused room does not spend a creation.
        if not await self._wait_in_room(seat):
            limit = self.config.max_waiting_rooms_per_ip
            await self._refuse_limit(ws, client, protocol.WAITING_ROOMS_PER_IP, limit)
            return
        if not await self._allow_creation(client):
            limit = self.config.rooms_per_ip_per_minute
            await self._refuse_limit(ws, client, protocol.ROOMS_PER_IP, limit)
            return
        try:
            room = await self._open_room(ws, ttl, receivers)
        except RoomError as exc:
            await self._refuse_limit(ws, client, exc.limit or protocol.ROOM_CODES, len(self.rooms))
            return
        self.metrics.rooms_created += 1
        live = len(self.rooms)
        event(log, "room created", room=room.code, client=client.address, live_rooms=live)
        greeting = protocol.created(room.code, ttl, receivers, room.token)
        if receivers > 1:
            await self._host_link(room, greeting)
        else:
            await self._host(room, seat, greeting)

    async def _open_room(
        self, ws: ServerConnection, ttl: int, receivers: int = 1
    ) -> Room[ServerConnection]:
        """A new waiting room, under a number no other node of the cluster has either."""
        for _ in range(CLAIM_ATTEMPTS):
            room = self.rooms.create(ws, ttl, receivers)
            if self.cluster is None:
                return room
            claimed = False
            try:
                claimed = await self.cluster.claim_room(room)
            finally:
                if not claimed:
                    self.rooms.close(room)
            if claimed:
                return room
        raise RoomError(protocol.LIMIT, protocol.ROOM_CODES)

    async def _resume(
        self,
        ws: ServerConnection,
        client: Client,
        seat: Seat | SharedSeat,
        request: protocol.Resume,
    ) -> None:
        """Pair a reconnecting peer with the other side of its session, or let it wait."""
        if self.cluster is not None:
            link = await self._resume_elsewhere(request, self.cluster)
            if link is not None:
                event(log, "resume linked to another node", client=client.address)
                await self._proxy(ws, link, None)
                return
        try:
            # A new slot is a room: the same rate limit as creating one.
            new = request.id not in self.rooms.waiting_slots
            if new and not await self._allow_creation(client):
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
        await self._settle_slot(slot, paired, seat)

    async def _settle_slot(
        self, slot: Room[ServerConnection], paired: bool, seat: Seat | SharedSeat | None
    ) -> None:
        if paired:
            self.metrics.resumes += 1
            event(log, "transfer resumed")
            await slot.finished.wait()
            return
        if self.cluster is not None:
            # Unpublished, the slot is reachable here only; the other side may come here too.
            with contextlib.suppress(ClusterUnavailable):
                await self.cluster.publish_slot(slot, round(self.config.resume_timeout))
        # A waiting resume slot stays in the connection budget: it continues a transfer
        # that was under way, which waiting senders must not lock out (see Budgets).
        await self._host(slot, seat, None)

    async def _resume_elsewhere(
        self, request: protocol.Resume, cluster: Cluster
    ) -> ClientConnection | None:
        """A link to the node where this resume slot lives; None when it lives (now) here.

        A slot whose node cannot be reached (a node that died) is taken over by this one.
        """
        ttl = round(self.config.resume_timeout)
        carried = json.dumps({"op": "resume", "id": request.id, "side": request.side})
        for _ in range(3):
            home = await cluster.claim_slot(request.id, ttl)
            if home is None or home.node == cluster.node:
                return None
            link = await cluster.open_link(home, carried)
            if link is not None:
                return link
            if await cluster.take_over_slot(request.id, home, ttl):
                return None
        raise ClusterUnavailable("the resume slot's node cannot be reached")

    async def _host(
        self, room: Room[ServerConnection], seat: Seat | SharedSeat | None, greeting: str | None
    ) -> None:
        """Run a room from its creator's connection: wait for the joiner, then the pair."""
        ws = room.creator
        try:
            if greeting is not None:
                await ws.send(greeting)
            pending = await self._wait_for_joiner(room)
            if pending is not None:
                if seat is not None:
                    seat.release()  # the pair now counts through its joiner
                await self.forwarder.run_pair(room, pending)
        except ConnectionClosed:
            event(log, "room closed", room=room.log_code, reason="creator-left")
        finally:
            self.rooms.close(room)
            if self.cluster is not None:
                self.cluster.release(room)
            # Only now may the joiner's handler return (which closes its connection).
            room.finished.set()

    async def _host_link(self, room: Room[ServerConnection], greeting: str) -> None:
        """Run a several-receiver link from its creator's control connection (PROTOCOL.md §3.1).

        Announces each receiver that joins until all did and the sender closes the control
        connection, or the link's ttl passes (then ``expired``, and no further joins). The
        control connection keeps its seat in the waiting-room budget all along.
        """
        ws = room.creator
        loop = asyncio.get_running_loop()
        deadline = loop.time() + room.ttl
        receive: asyncio.Future[Data] | None = None
        announced = 0
        reason = "expired"
        try:
            await ws.send(greeting)
            receive = asyncio.ensure_future(ws.recv())
            while True:
                while announced < room.joined:
                    announced += 1
                    await ws.send(protocol.joined(announced))
                room.paired.clear()  # no await since the check above: no join is missed
                left = deadline - loop.time()
                if left <= 0:
                    break
                joined = asyncio.ensure_future(room.paired.wait())
                try:
                    await asyncio.wait(
                        {receive, joined}, timeout=left, return_when="FIRST_COMPLETED"
                    )
                finally:
                    joined.cancel()
                if receive.done():
                    reason = "creator-left"
                    break
            # Retire the code before any await so that nobody can join a room being closed.
            self.rooms.close(room)
            if reason == "expired":
                receive.cancel()
                event(log, "room closed", room=room.log_code, reason="expired", joined=announced)
                if room.joined == 0:
                    self.metrics.error("expired")
                await finish(ws, protocol.error(protocol.EXPIRED), CloseCode.NORMAL_CLOSURE)
            elif isinstance(receive.exception(), ConnectionClosed):
                self.rooms.abandon_receivers(room)
                event(log, "room closed", room=room.log_code, reason="creator-left")
            else:
                self.rooms.abandon_receivers(room)
                self.metrics.error("bad-request")
                event(log, "room closed", room=room.log_code, reason="bad-request")
                message = "Only receivers' joins are announced on this connection."
                await finish(ws, protocol.error(protocol.BAD_REQUEST, message))
        except ConnectionClosed:
            self.rooms.abandon_receivers(room)
            event(log, "room closed", room=room.log_code, reason="creator-left")
        finally:
            if receive is not None:
                receive.cancel()
            self.rooms.close(room)
            if self.cluster is not None:
                self.cluster.release(room)
            room.finished.set()

    async def _attach(self, ws: ServerConnection, client: Client, request: protocol.Attach) -> None:
        """The sender's connection for one receiver of a several-receiver link."""
        try:
            if self.cluster is not None:
                carried = json.dumps(
                    {
                        "op": "attach",
                        "room": request.room,
                        "receiver": request.receiver,
                        "token": request.token,
                    }
                )
                linked = await self._link_home(request.room, carried, self.cluster)
                if linked is not None:
                    await self._proxy(ws, *linked)
                    return
            room = self.rooms.attach(request.room, request.receiver, request.token, ws)
        except RoomError as exc:
            await self._spend_failed_join(client)
            self.metrics.error(exc.code)
            event(log, "attach refused", client=client.address, reason=exc.code)
            await finish(ws, exc.reply or protocol.error(exc.code), CloseCode.NORMAL_CLOSURE)
            return
        # The receiver's task runs the pair; returning earlier would close this connection.
        await room.finished.wait()

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
        if room.abandoned or (room.receiver and not receive.done()):
            # A link's sender that left, or never attached for this receiver (§3.1).
            receive.cancel()
            event(log, "room closed", room=room.log_code, reason="sender-left")
            await finish(ws, protocol.peer_gone(True), CloseCode.NORMAL_CLOSURE)
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

    async def _join(
        self, ws: ServerConnection, client: Client, seat: Seat | SharedSeat, code: str
    ) -> None:
        # Only a well-formed code is worth logging (and it is logged only if identifiers are on).
        shown = code if protocol.is_room_code(code) else None
        if await self._joins_blocked(client):
            limit = self.config.failed_joins_per_ip_per_minute
            await self._refuse_limit(ws, client, protocol.FAILED_JOINS_PER_IP, limit)
            return
        try:
            if shown is None:
                raise RoomError(protocol.NO_SUCH_ROOM)
            if self.cluster is not None:
                carried = json.dumps({"op": "join", "room": code})
                linked = await self._link_home(code, carried, self.cluster)
                if linked is not None:
                    event(log, "room paired", room=code, client=client.address, linked=True)
                    await self._proxy(ws, *linked)
                    return
            room = self.rooms.join(code, ws)
        except RoomError as exc:
            await self._spend_failed_join(client)
            self.metrics.error(exc.code)
            event(log, "join refused", room=shown, client=client.address, reason=exc.code)
            await finish(ws, exc.reply or protocol.error(exc.code), CloseCode.NORMAL_CLOSURE)
            return
        if room.receiver:
            # One receiver of a several-receiver link: it waits for the sender's connection.
            event(log, "receiver joined", room=code, client=client.address)
            await self._host(room, seat, None)
            return
        event(log, "room paired", room=code, client=client.address)
        # The creator's task runs the pair; returning earlier would close this connection.
        await room.finished.wait()

    async def _link_home(
        self, code: str, carried: str, cluster: Cluster
    ) -> tuple[ClientConnection, str | bytes] | None:
        """A link to the room's node carrying ``carried`` (a join or an attach) and its first
        answer, or None if the room lives here.

        Raises `RoomError` when the room does not exist (or its node is gone) or is taken.
        """
        from hushdrop_relay.cluster import is_refusal

        home = await cluster.find_room(code)
        if home is None:
            raise RoomError(protocol.NO_SUCH_ROOM)
        if home.node == cluster.node:
            return None
        link = await cluster.open_link(home, carried)
        if link is None:
            cluster.forget_room(code, home)
            raise RoomError(protocol.NO_SUCH_ROOM)
        try:
            async with asyncio.timeout(self.config.handshake_timeout):
                first = await link.recv()
        except (ConnectionClosed, TimeoutError):
            await link.close()
            raise RoomError(protocol.NO_SUCH_ROOM) from None
        refused = is_refusal(first)
        if refused is not None:
            await link.close()
            raise RoomError(refused, reply=first if isinstance(first, str) else None)
        return link, first

    async def _proxy(
        self, ws: ServerConnection, link: ClientConnection, first: str | bytes | None
    ) -> None:
        from hushdrop_relay.cluster import proxy

        await proxy(ws, link, self.metrics, self.config.stall_timeout, first)

    async def _serve_link(self, ws: ServerConnection, cluster: Cluster) -> None:
        """Serve a peer that reached another node of the cluster, carried here over a link.

        The other node applied the client's limits; here the link is a peer like any other.
        """
        from hushdrop_relay.cluster import LINKED, NOT_HOME

        try:
            async with asyncio.timeout(self.config.handshake_timeout):
                first = await ws.recv()
        except (TimeoutError, ConnectionClosed):
            await finish(ws, None)
            return
        carried = cluster.check_link(first)
        if carried is None:
            self.metrics.error("bad-request")
            event(log, "link refused", level=logging.WARNING, reason="not a valid link request")
            await finish(ws, None)
            return
        if not carried:
            # For an earlier node at this address (restarted): the sender forgets that entry.
            await finish(ws, NOT_HOME, CloseCode.NORMAL_CLOSURE)
            return
        try:
            request = protocol.parse_request(carried)
        except protocol.BadRequest:
            await finish(ws, None)
            return
        await ws.send(LINKED)
        if isinstance(request, protocol.Join):
            try:
                room = self.rooms.join(request.room, ws)
            except RoomError as exc:
                await finish(ws, exc.reply or protocol.error(exc.code), CloseCode.NORMAL_CLOSURE)
                return
            if room.receiver:
                await self._host(room, None, None)
            else:
                await room.finished.wait()
        elif isinstance(request, protocol.Attach):
            try:
                room = self.rooms.attach(request.room, request.receiver, request.token, ws)
            except RoomError as exc:
                await finish(ws, exc.reply or protocol.error(exc.code), CloseCode.NORMAL_CLOSURE)
                return
            await room.finished.wait()
        elif isinstance(request, protocol.Resume):
            ttl = round(self.config.resume_timeout)
            try:
                slot, paired = self.rooms.resume(request.id, request.side, ws, ttl)
            except RoomError as exc:
                message = protocol.error(exc.code)
                if exc.code == protocol.LIMIT:
                    limit = exc.limit or protocol.MAX_ROOMS
                    message = protocol.limit_reached(limit, self.config.max_rooms)
                await finish(ws, message, CloseCode.TRY_AGAIN_LATER)
                return
            await self._settle_slot(slot, paired, None)
        else:
            await finish(ws, None)


def _path(ws: ServerConnection) -> str:
    return ws.request.path.split("?", 1)[0] if ws.request is not None else ""
