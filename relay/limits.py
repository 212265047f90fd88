"""Per-client abuse limits: who a client is, how many connections it holds, how fast it creates.

This module owns turning a connection into an opaque client key, the per-client budgets of
concurrent connections (`Budgets`: which budget a connection counts toward at each stage of
its life) and the per-client rate limits (room creations, failed joins per minute). Keys are
keyed hashes of the address made with a secret drawn at start-up, so the relay's memory holds
no addresses, and every table here is bounded: entries go away when a client has no
connection left or its rate bucket has refilled.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from websockets.asyncio.server import ServerConnection

# An IPv6 client typically gets a whole /64; keying on the full address would let it walk
# through 2^64 addresses to dodge every per-client limit.
IPV6_PREFIX = 64

# Hard cap on remembered rate buckets. Past it the least recently seen clients are forgotten
# early (they get a fresh bucket): bounded memory matters more than exactness under a flood
# from this many addresses, and --max-rooms still caps the total.
MAX_TRACKED_CLIENTS = 20_000

ClientKey = bytes


@dataclass(frozen=True, slots=True)
class Client:
    """Who is on the other end of a connection: its address (for opt-in logs only) and key."""

    address: str
    key: ClientKey


class ClusterUnavailable(Exception):
    """The state shared by several relay nodes (Redis) cannot be reached right now."""


class ClientIdentifier:
    """Derives `Client` values from connections, honouring a trusted proxy header if set.

    ``secret`` keys the client keys; by default one drawn at start-up. Nodes of a cluster pass
    the same one, so that they agree on who a client is.
    """

    def __init__(self, proxy_header: str = "", secret: bytes | None = None) -> None:
        self.proxy_header = proxy_header
        self._secret = secret or secrets.token_bytes(16)

    def identify(self, ws: ServerConnection) -> Client:
        address = self.address(ws)
        return Client(address=address, key=self.key(address))

    def address(self, ws: ServerConnection) -> str:
        """The client's IP address as text, or ``"unknown"``."""
        if self.proxy_header and ws.request is not None:
            values = ws.request.headers.get_all(self.proxy_header)
            if values:
                # The last entry is the one our own proxy appended; earlier ones are whatever
                # the client claimed and must not be trusted.
                parsed = _parse_ip(values[-1].rsplit(",", 1)[-1])
                if parsed is not None:
                    return str(parsed)
        peer = ws.remote_address
        host = peer[0] if isinstance(peer, tuple) and peer else None
        parsed = _parse_ip(host) if isinstance(host, str) else None
        return str(parsed) if parsed is not None else "unknown"

    def key(self, address: str) -> ClientKey:
        """An opaque, per-process key for ``address`` (IPv6: for its /64)."""
        material = address.encode()
        parsed = _parse_ip(address)
        if isinstance(parsed, ipaddress.IPv6Address):
            network = ipaddress.IPv6Network((parsed, IPV6_PREFIX), strict=False)
            material = network.network_address.packed
        elif parsed is not None:
            material = parsed.packed
        return hashlib.blake2b(material, key=self._secret, digest_size=12).digest()


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Parse an address as proxies write it: maybe bracketed, maybe with a port or zone."""
    text = text.strip().strip('"')
    if text.lower().startswith("for="):  # an RFC 7239 Forwarded element
        text = text[4:].strip('"')
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]  # IPv4 with a port
    text = text.split("%", 1)[0]
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


class ConnectionCounter:
    """Concurrent connections per client; a client with none left is not remembered."""

    def __init__(self, limit: int) -> None:
        self.limit = limit  # 0: unlimited
        self._counts: dict[ClientKey, int] = {}

    def __len__(self) -> int:
        return len(self._counts)

    def acquire(self, key: ClientKey) -> bool:
        """Count one more connection for ``key``; False (and nothing counted) if over."""
        count = self._counts.get(key, 0)
        if self.limit and count >= self.limit:
            return False
        self._counts[key] = count + 1
        return True

    def release(self, key: ClientKey) -> None:
        count = self._counts.get(key, 0) - 1
        if count > 0:
            self._counts[key] = count
        else:
            self._counts.pop(key, None)


class Seat:
    """Where one connection counts: its address's connection budget, its waiting-room budget,
    or (once its peer joined it) neither. Moves only in that order."""

    __slots__ = ("_counter", "_waiting", "key")

    def __init__(
        self, key: ClientKey, counter: ConnectionCounter, waiting: ConnectionCounter
    ) -> None:
        self.key = key
        self._counter: ConnectionCounter | None = counter
        self._waiting = waiting

    def wait_in_room(self) -> bool:
        """Count this connection as a room waiting for its receiver instead of as a connection.

        False (and nothing changed) when its address already has the most waiting rooms.
        """
        if self._counter is self._waiting:
            return True
        if not self._waiting.acquire(self.key):
            return False
        self.release()
        self._counter = self._waiting
        return True

    def release(self) -> None:
        """Count this connection toward no budget any more. Idempotent."""
        if self._counter is not None:
            self._counter.release(self.key)
            self._counter = None


class Budgets:
    """The per-client budgets of concurrent connections, so that one kind cannot starve another.

    Senders waiting for their receiver can wait for an hour or a day, receivers join at once:
    if both drew on one budget, the waiting senders of one address (an office behind NAT)
    would lock out every receiver of that address. So a room's creator moves from the
    connection budget to the waiting-room budget once its room is created, and a peer that
    waited (in a room or a resume slot) counts toward neither once it is joined: a paired
    transfer counts once, through the connection that joined it. Everything else (connections
    that have not made their request yet, joiners, resumes) counts toward the connection
    budget.
    """

    def __init__(self, max_connections: int, max_waiting_rooms: int) -> None:
        self.connections = ConnectionCounter(max_connections)
        self.waiting_rooms = ConnectionCounter(max_waiting_rooms)

    def admit(self, key: ClientKey) -> Seat | None:
        """A seat for a new connection of ``key``, or None if its connection budget is spent."""
        if not self.connections.acquire(key):
            return None
        return Seat(key, self.connections, self.waiting_rooms)


class RateLimiter:
    """A token bucket per client: ``per_minute`` tokens at most, refilled at that rate.

    A bucket untouched for a full minute is full again, which is what an unknown client
    gets, so it is dropped; buckets are kept in least-recently-used order so that dropping
    expired ones only ever looks at the front.
    """

    def __init__(
        self,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        max_tracked: int = MAX_TRACKED_CLIENTS,
    ) -> None:
        self.capacity = float(per_minute)  # 0: unlimited
        self.rate = per_minute / 60.0
        self.refill_time = 60.0
        self.clock = clock
        self.max_tracked = max_tracked
        # key -> (tokens left, when they were counted)
        self._buckets: OrderedDict[ClientKey, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def blocked(self, key: ClientKey) -> bool:
        """Whether ``key``'s bucket is empty right now (nothing is taken)."""
        if not self.capacity or key not in self._buckets:
            return False
        tokens, stamp = self._buckets[key]
        return min(self.capacity, tokens + (self.clock() - stamp) * self.rate) < 1.0

    def allow(self, key: ClientKey) -> bool:
        """Take one token from ``key``'s bucket; False if it is empty."""
        if not self.capacity:
            return True
        now = self.clock()
        self._expire(now)
        tokens, stamp = self._buckets.pop(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - stamp) * self.rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[key] = (tokens, now)  # re-inserted last: most recently used
        while len(self._buckets) > self.max_tracked:
            self._buckets.popitem(last=False)
        return allowed

    def _expire(self, now: float) -> None:
        while self._buckets:
            _, (_, stamp) = next(iter(self._buckets.items()))
            if now - stamp < self.refill_time:
                return
            self._buckets.popitem(last=False)
