"""Several relay nodes sharing one Redis (``--redis``): the room directory, shared limits, links.

This module owns what a node shares with the others and how it reaches them. It is imported
only when ``--redis`` is given, so a single relay needs neither Redis nor the ``redis`` package.

* **Directory.** A room (by room number) or resume slot (by resume ID) lives on one node, its
  *home*: the node its first peer reached. Redis maps each to its home (node id, advertised URL
  and a token naming this incarnation of the room); nothing else about a room is in Redis.
* **Links.** A peer that reaches another node is carried to the home over one WebSocket, node
  to node, on the endpoint `LINK_PATH` of the home's advertised URL, authenticated by HMACs
  under the cluster secret (on the upgrade request, and on the request it carries). The home
  treats the link like a local peer; the joining node copies messages both ways, one at a time,
  until both connections are at a frame boundary, and then passes their bytes through as they
  are (splice.py), with backpressure end to end. File data never passes through Redis.
* **Shared limits.** Rate limits (rooms and failed joins per address per minute) are token
  buckets in Redis; concurrent budgets (connections, waiting rooms per address) are one counter
  per node and address, summed over the nodes that are alive (each node refreshes a key every
  `BEAT` seconds; a dead node's counts stop counting once it expires).

Redis holds no room numbers, resume IDs or addresses in the clear: every key is a keyed hash
(HMAC-SHA256) under the deployment's cluster secret, which Redis never sees. When Redis is
unreachable, requests that need it are refused (`ClusterUnavailable`) while pairs already
forwarding continue. When it comes back empty (a restart without persistence), every node
publishes its live rooms and counts again at its next heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from hushdrop_relay import protocol
from hushdrop_relay.config import RelayConfig
from hushdrop_relay.http import LINK_HEADER, LINK_PATH
from hushdrop_relay.limits import ClientKey, ClusterUnavailable
from hushdrop_relay.logs import event
from hushdrop_relay.metrics import Metrics
from hushdrop_relay.rooms import Room
from hushdrop_relay.splice import Splice, Tap, TappedConnection
from redis.asyncio.retry import Retry
from redis.backoff import ConstantBackoff
from redis.exceptions import RedisError
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.frames import CloseCode

log = logging.getLogger("hushdrop_relay.cluster")

PREFIX = "hushdrop:"
# Heartbeat period and the lifetime of a node's liveness key: a node killed outright stops
# counting toward the shared budgets within NODE_TTL.
BEAT = 2.0
NODE_TTL = 10
# A Redis command that takes longer than this fails, and so does the request that needed it.
REDIS_TIMEOUT = 2.0
REDIS_CONNECTIONS = 32
# Opening a link to another node; after that the link is bounded like any peer.
LINK_OPEN_TIMEOUT = 5.0
# A link request older or newer than this (by the sender's clock) is refused: replays of a
# captured request are useless after it, and nodes' clocks must agree to within it.
LINK_MAX_SKEW = 60
# Bound on closing a connection at the end of a proxied pair.
NOTIFY_TIMEOUT = 5.0

# Sets a key only if it holds the expected value (the caller's own incarnation), or deletes it.
_CAS_SET = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) end return false"  # noqa: E501
_CAS_DEL = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
)
# A token bucket of ARGV[1] tokens refilled in 60 s, on Redis's clock. ARGV[2] = 1 takes a
# token (and records an empty bucket too, as limits.RateLimiter does); 0 only looks.
_BUCKET = """
local cap = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local b = redis.call('HMGET', KEYS[1], 't', 's')
local tokens = tonumber(b[1]) or cap
local stamp = tonumber(b[2]) or now
tokens = math.min(cap, tokens + (now - stamp) * cap / 60)
local ok = tokens >= 1
if ARGV[2] == '1' then
  if ok then tokens = tokens - 1 end
  redis.call('HSET', KEYS[1], 't', tostring(tokens), 's', tostring(now))
  redis.call('EXPIRE', KEYS[1], 60)
end
if ok then return 1 end
return 0
"""
# One more seat for node ARGV[1] unless the live nodes' seats reach ARGV[2] (0: no limit).
# Fields of nodes whose liveness key (ARGV[3] .. node) expired are dropped.
_SEAT = """
local total = 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  if fields[i] == ARGV[1] or redis.call('EXISTS', ARGV[3] .. fields[i]) == 1 then
    total = total + tonumber(fields[i + 1])
  else
    redis.call('HDEL', KEYS[1], fields[i])
  end
end
local limit = tonumber(ARGV[2])
if limit > 0 and total >= limit then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
return 1
"""
_UNSEAT = """
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1
"""
_SET_SEATS = """
if tonumber(ARGV[2]) > 0 then return redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return redis.call('HDEL', KEYS[1], ARGV[1])
"""

# The two concurrent budgets of limits.Budgets.
CONNECTIONS = "connections"
WAITING_ROOMS = "waiting"


class LinkConnection(TappedConnection, ClientConnection):
    """This node's end of a link: a client connection whose input can be held (splice.py)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tap = Tap.from_start()


@dataclass(frozen=True)
class Home:
    """Where a room or resume slot lives: its node, that node's URL, and the room's token."""

    node: str
    url: str
    token: str

    def encode(self) -> str:
        return f"{self.node} {self.token} {self.url}"

    @classmethod
    def decode(cls, raw: bytes | str) -> Home:
        text = raw.decode() if isinstance(raw, bytes) else raw
        node, token, url = text.split(" ", 2)
        return cls(node, url, token)


@dataclass
class _Published:
    key: str
    home: Home
    ttl: int


def link_url(advertise: str) -> str:
    """The WebSocket URL of a node's link endpoint, from its advertised http(s) URL."""
    scheme, rest = advertise.split("://", 1)
    return ("wss" if scheme == "https" else "ws") + "://" + rest.rstrip("/") + LINK_PATH


class Cluster:
    """One node's view of the cluster: its Redis client, identity and published rooms."""

    def __init__(self, config: RelayConfig) -> None:
        self.config = config
        self.node = secrets.token_hex(8)
        self.url = config.advertise.rstrip("/")
        secret = config.cluster_secret.encode()
        self._key_secret = hmac.new(secret, b"hushdrop cluster keys", hashlib.sha256).digest()
        self._link_secret = hmac.new(secret, b"hushdrop cluster links", hashlib.sha256).digest()
        # Client keys are the same on every node (limits.ClientIdentifier takes this secret).
        self.client_secret = hmac.new(secret, b"hushdrop client keys", hashlib.sha256).digest()[:16]
        # A bounded pool: a burst of rooms closing at once queues for connections instead of
        # opening hundreds of them.
        pool = aioredis.BlockingConnectionPool.from_url(
            config.redis,
            max_connections=REDIS_CONNECTIONS,
            timeout=REDIS_TIMEOUT,
            socket_timeout=REDIS_TIMEOUT,
            socket_connect_timeout=REDIS_TIMEOUT,
            retry=Retry(ConstantBackoff(0.05), 1),
        )
        self.redis = aioredis.Redis(connection_pool=pool)
        self._published: dict[Room[Any], _Published] = {}
        self._seats: Counter[str] = Counter()  # this node's seats by Redis key
        self._unsynced: set[str] = set()  # seat keys whose last update may not have landed
        # Directory entries of closed rooms whose removal failed (Redis away): retried at the
        # next heartbeat, at most one per room that closed meanwhile.
        self._unreleased: dict[str, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._beat: asyncio.Task[None] | None = None
        self._reachable = True

    # Life ------------------------------------------------------------------------------

    def start(self) -> None:
        self._beat = asyncio.create_task(self._heartbeat())

    async def aclose(self) -> None:
        if self._beat is not None:
            self._beat.cancel()
            await asyncio.gather(self._beat, return_exceptions=True)
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=REDIS_TIMEOUT)
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            async with asyncio.timeout(REDIS_TIMEOUT):
                await self.redis.delete(self._node_key(self.node))
        await self.redis.aclose()

    async def _heartbeat(self) -> None:
        while True:
            try:
                async with asyncio.timeout(REDIS_TIMEOUT * 2):
                    previous = await self.redis.set(
                        self._node_key(self.node), "1", ex=NODE_TTL, get=True
                    )
                    if previous is None:
                        # First beat, or Redis came back empty: say again what lives here.
                        await self._republish()
                    elif self._unsynced:
                        await self._sync_seats(set(self._unsynced))
                    for key, value in list(self._unreleased.items()):
                        await self.redis.eval(_CAS_DEL, 1, key, value)
                        del self._unreleased[key]
                if not self._reachable:
                    event(log, "redis reachable again")
                self._reachable = True
            except (RedisError, OSError, TimeoutError) as exc:
                if self._reachable:
                    event(log, "redis unreachable", level=logging.WARNING, error=type(exc).__name__)
                self._reachable = False
            await asyncio.sleep(BEAT)

    async def _republish(self) -> None:
        for entry in list(self._published.values()):
            await self.redis.set(entry.key, entry.home.encode(), nx=True, ex=entry.ttl)
        await self._sync_seats(set(self._seats) | self._unsynced)

    async def _sync_seats(self, keys: set[str]) -> None:
        for key in keys:
            await self.redis.eval(_SET_SEATS, 1, key, self.node, self._seats.get(key, 0))
            self._unsynced.discard(key)

    # Keys ------------------------------------------------------------------------------

    def _hash(self, kind: str, value: str | bytes) -> str:
        data = value.encode() if isinstance(value, str) else value
        mac = hmac.new(self._key_secret, kind.encode() + b"\0" + data, hashlib.sha256)
        return mac.hexdigest()[:32]

    def _room_key(self, code: str) -> str:
        return f"{PREFIX}room:{self._hash('room', code)}"

    def _slot_key(self, slot_id: str) -> str:
        return f"{PREFIX}slot:{self._hash('slot', slot_id)}"

    def _node_key(self, node: str) -> str:
        return f"{PREFIX}node:{node}"

    def _client_key(self, kind: str, key: bytes) -> str:
        # The client key is already a keyed hash of the address under the cluster secret.
        return f"{PREFIX}{kind}:{key.hex()}"

    async def _call(self, call: Awaitable[Any]) -> Any:
        try:
            async with asyncio.timeout(REDIS_TIMEOUT * 2):
                return await call
        except (RedisError, OSError, TimeoutError) as exc:
            raise ClusterUnavailable(str(exc)) from None

    def _later(self, call: Awaitable[Any], on_failure: Any = None) -> None:
        """Run a Redis update in the background, best effort (it must not hold up a close)."""

        async def run() -> None:
            try:
                await self._call(call)
            except ClusterUnavailable:
                if on_failure is not None:
                    on_failure()

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # Shared limits -----------------------------------------------------------------------

    async def admit(
        self, key: ClientKey, max_connections: int, max_waiting_rooms: int
    ) -> SharedSeat | None:
        """A seat for a new connection of ``key`` (as limits.Budgets.admit, cluster-wide)."""
        if not await self.take_seat(CONNECTIONS, key, max_connections):
            return None
        return SharedSeat(self, key, max_waiting_rooms)

    async def take_seat(self, budget: str, key: bytes, limit: int) -> bool:
        """Count one more connection of ``key`` in ``budget``; False if over ``limit``."""
        rkey = self._client_key(budget, key)
        ok = await self._call(self.redis.eval(_SEAT, 1, rkey, self.node, limit, f"{PREFIX}node:"))
        if ok:
            self._seats[rkey] += 1
        return bool(ok)

    def leave_seat(self, budget: str, key: bytes) -> None:
        rkey = self._client_key(budget, key)
        self._seats[rkey] -= 1
        if self._seats[rkey] <= 0:
            del self._seats[rkey]
        self._later(self.redis.eval(_UNSEAT, 1, rkey, self.node), lambda: self._unsynced.add(rkey))

    async def take_token(self, limit: str, key: bytes, per_minute: int) -> bool:
        """Take a token from ``key``'s bucket for ``limit``; False if it is empty."""
        if not per_minute:
            return True
        rkey = self._client_key(f"rate:{limit}", key)
        return bool(await self._call(self.redis.eval(_BUCKET, 1, rkey, per_minute, 1)))

    async def out_of_tokens(self, limit: str, key: bytes, per_minute: int) -> bool:
        if not per_minute:
            return False
        rkey = self._client_key(f"rate:{limit}", key)
        return not await self._call(self.redis.eval(_BUCKET, 1, rkey, per_minute, 0))

    # Directory ---------------------------------------------------------------------------

    def _home(self) -> Home:
        return Home(self.node, self.url, secrets.token_hex(8))

    async def claim_room(self, room: Room[Any]) -> bool:
        """Publish a new local room under its number; False if another node has that number."""
        key, home = self._room_key(room.code), self._home()
        if not await self._call(self.redis.set(key, home.encode(), nx=True, ex=room.ttl)):
            return False
        self._published[room] = _Published(key, home, room.ttl)
        return True

    async def find_room(self, code: str) -> Home | None:
        raw = await self._call(self.redis.get(self._room_key(code)))
        return Home.decode(raw) if raw is not None else None

    def forget_room(self, code: str, stale: Home) -> None:
        """Drop a directory entry whose home turned out to be gone."""
        self._later(self.redis.eval(_CAS_DEL, 1, self._room_key(code), stale.encode()))

    async def claim_slot(self, slot_id: str, ttl: int) -> Home | None:
        """The home of resume slot ``slot_id``; None if there was none and this node is it now."""
        key, home = self._slot_key(slot_id), self._home()
        raw = await self._call(self.redis.set(key, home.encode(), nx=True, get=True, ex=ttl))
        return Home.decode(raw) if raw is not None else None

    async def take_over_slot(self, slot_id: str, stale: Home, ttl: int) -> bool:
        """Become the home of a slot whose home is unreachable; False if it changed meanwhile."""
        key, home = self._slot_key(slot_id), self._home()
        done = await self._call(
            self.redis.eval(_CAS_SET, 1, key, stale.encode(), home.encode(), ttl)
        )
        return done is not None

    async def publish_slot(self, slot: Room[Any], ttl: int) -> None:
        """Point the slot's ID at this node, for a slot that now waits here."""
        key, home = self._slot_key(slot.code), self._home()
        await self._call(self.redis.set(key, home.encode(), ex=ttl))
        self._published[slot] = _Published(key, home, ttl)

    def release(self, room: Room[Any]) -> None:
        """Unpublish a closed local room or slot (if the directory still names it)."""
        entry = self._published.pop(room, None)
        if entry is not None:
            key, value = entry.key, entry.home.encode()

            def retry() -> None:
                self._unreleased[key] = value

            self._later(self.redis.eval(_CAS_DEL, 1, key, value), retry)

    # Links -------------------------------------------------------------------------------

    def _link_mac(self, node: str, ts: int, request: str) -> str:
        text = f"{node}\n{ts}\n{request}".encode()
        return hmac.new(self._link_secret, text, hashlib.sha256).hexdigest()

    def link_header(self) -> str:
        """The `LINK_HEADER` value that opens a link: the time and its MAC."""
        ts = int(time.time())
        return f"{ts}.{self._link_mac('upgrade', ts, '')}"

    def accepts_link(self, header: str | None) -> bool:
        """Whether an upgrade to `LINK_PATH` comes from a node of this cluster (recently)."""
        ts, _, mac = (header or "").partition(".")
        if not ts.isdigit() or abs(time.time() - int(ts)) > LINK_MAX_SKEW:
            return False
        return hmac.compare_digest(self._link_mac("upgrade", int(ts), ""), mac)

    def link_request(self, home: Home, request: str) -> str:
        ts = int(time.time())
        mac = self._link_mac(home.node, ts, request)
        return json.dumps(
            {"op": "link", "node": home.node, "ts": ts, "request": request, "mac": mac}
        )

    def check_link(self, message: object) -> str | None:
        """The client request a link carries, "" if it is for an earlier node at this URL,
        None if it is not a valid link request of this cluster."""
        try:
            obj = json.loads(message) if isinstance(message, str) else None
            node, ts, request, mac = obj["node"], obj["ts"], obj["request"], obj["mac"]
            valid = hmac.compare_digest(self._link_mac(str(node), int(ts), str(request)), mac)
        except (ValueError, TypeError, KeyError):
            return None
        if not valid or abs(time.time() - int(ts)) > LINK_MAX_SKEW:
            return None
        return request if node == self.node else ""

    async def open_link(self, home: Home, request: str) -> ClientConnection | None:
        """A link to ``home`` carrying ``request``, or None if that node or room is gone."""
        # The same bounds as a client's connection (server.py): a few frames per direction.
        from hushdrop_relay.server import CLOSE_TIMEOUT, MAX_QUEUE, PING_INTERVAL, WRITE_LIMIT

        try:
            link = await connect(
                link_url(home.url),
                open_timeout=LINK_OPEN_TIMEOUT,
                max_size=self.config.max_frame,
                max_queue=MAX_QUEUE,
                write_limit=WRITE_LIMIT,
                compression=None,
                ping_interval=PING_INTERVAL,
                ping_timeout=None,
                close_timeout=CLOSE_TIMEOUT,
                user_agent_header=None,
                additional_headers={LINK_HEADER: self.link_header()},
                create_connection=LinkConnection,
            )
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            event(log, "node unreachable", level=logging.WARNING, error=type(exc).__name__)
            return None
        try:
            async with asyncio.timeout(LINK_OPEN_TIMEOUT):
                await link.send(self.link_request(home, request))
                answer = await link.recv()
        except (ConnectionClosed, TimeoutError):
            answer = None
        if answer != LINKED:
            await link.close()
            return None
        return link


class SharedSeat:
    """limits.Seat over the cluster's counters: where one connection counts, cluster-wide."""

    __slots__ = ("_budget", "_cluster", "_waiting_limit", "key")

    def __init__(self, cluster: Cluster, key: ClientKey, waiting_limit: int) -> None:
        self._cluster = cluster
        self.key = key
        self._waiting_limit = waiting_limit
        self._budget: str | None = CONNECTIONS

    async def wait_in_room(self) -> bool:
        """Count this connection as a waiting room instead; False if its address has the most."""
        if self._budget == WAITING_ROOMS:
            return True
        if not await self._cluster.take_seat(WAITING_ROOMS, self.key, self._waiting_limit):
            return False
        self.release()
        self._budget = WAITING_ROOMS
        return True

    def release(self) -> None:
        """Count this connection toward no budget any more. Idempotent; never waits."""
        if self._budget is not None:
            self._cluster.leave_seat(self._budget, self.key)
            self._budget = None


LINKED = json.dumps({"op": "linked"})
NOT_HOME = json.dumps({"op": "not-home"})


async def proxy(
    client: ServerConnection,
    link: ClientConnection,
    metrics: Metrics,
    stall_timeout: float,
    first: str | bytes | None = None,
) -> None:
    """Copy messages between a client and its link to the room's home, until either closes.

    Messages go one at a time, each send awaited before the next receive, so a slow reader at
    either end slows the other end down (as in forward.py). A close is passed on with its code,
    so the home sees a goodbye as a goodbye and a lost connection as a lost connection. As soon
    as both connections are at a frame boundary, bytes are passed through instead (splice.py),
    which keeps all of that and costs this node little more than the copies in the kernel.
    """

    def stop_copying() -> None:
        for task in (up, down):
            task.cancel()

    splice = None
    if isinstance(client, TappedConnection) and isinstance(link, TappedConnection):
        splice = Splice(client, link, metrics, stall_timeout, stop_copying)

    async def copy(src: Any, dst: Any, pending: str | bytes | None) -> str:
        while True:
            if pending is not None:
                message, pending = pending, None
            else:
                try:
                    if splice is not None:
                        splice.waiting.add(src)
                        if splice.try_switch():
                            return "spliced"
                    message = await src.recv()
                except ConnectionClosed:
                    return "closed"
                finally:
                    if splice is not None:
                        splice.waiting.discard(src)
            try:
                async with asyncio.timeout(stall_timeout):
                    await dst.send(message)
            except ConnectionClosed:
                return "closed"
            except TimeoutError:
                return "stall"
            if isinstance(message, bytes):
                metrics.bytes_relayed += len(message)
            del message

    up = asyncio.create_task(copy(client, link, None))
    down = asyncio.create_task(copy(link, client, first))
    if splice is not None:
        splice.start()
    try:
        done, _ = await asyncio.wait({up, down}, return_when="FIRST_COMPLETED")
        if splice is not None and splice.switched:
            await splice.finished
        elif up in done:
            # The client left (or stopped reading what the link sends): tell the home how.
            if up.result() == "stall":
                client.transport.abort()
            await _close(link, _passed_code(client))
            await asyncio.wait({down}, timeout=NOTIFY_TIMEOUT)
        else:
            if down.result() == "stall":
                client.transport.abort()
            # The home closed the link after its last words (which went to the client).
            await _close(client, _passed_code(link))
            await asyncio.wait({up}, timeout=NOTIFY_TIMEOUT)
    finally:
        for task in (up, down):
            task.cancel()
        await asyncio.gather(up, down, return_exceptions=True)
        await _close(link, CloseCode.INTERNAL_ERROR)
        await _close(client, CloseCode.INTERNAL_ERROR)


def _passed_code(ws: ServerConnection | ClientConnection) -> int:
    """The close code to pass on for ``ws``'s close: its own, or "lost" if it sent none."""
    received = ws.protocol.close_rcvd
    if received is None:
        return CloseCode.INTERNAL_ERROR  # no close frame: a lost connection
    if received.code == CloseCode.NO_STATUS_RCVD:
        return CloseCode.NORMAL_CLOSURE
    return received.code


async def _close(ws: ServerConnection | ClientConnection, code: int) -> None:
    try:
        async with asyncio.timeout(NOTIFY_TIMEOUT):
            await ws.close(code)
    except (ConnectionClosed, TimeoutError):
        ws.transport.abort()


def is_refusal(message: str | bytes) -> str | None:
    """The error code if a home's first answer to a join refused it (no-such-room, room-full)."""
    if not isinstance(message, str):
        return None
    try:
        obj = json.loads(message)
    except ValueError:
        return None
    code = obj.get("code") if isinstance(obj, dict) and obj.get("op") == "error" else None
    return code if code in (protocol.NO_SUCH_ROOM, protocol.ROOM_FULL) else None
