"""Direct TCP connections between two CLIs (PROTOCOL.md §8.5), without I/O.

Three small pieces: the connection hints the peers exchange in a sealed SIGNAL (`tcp_offer`,
`read_signal`); the handshake that authenticates one TCP connection with a key of the session's
key schedule (`DirectHandshake`); and the sender's choice of route (`RouteChoice`): whether to
hold the data stream back while a direct connection may still open, and whether to move to it.
A driver opens the sockets, feeds bytes and the clock in, and does what these say.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import struct
from dataclasses import dataclass

from ..crypto.backend import CryptoBackend
from .constants import (
    DIRECT_GO,
    DIRECT_MAGIC,
    DIRECT_NONCE_SIZE,
    DIRECT_TAG_SIZE,
    MAX_DIRECT_MESSAGE,
    MAX_HINTS,
    MAX_SIGNAL_BYTES,
    PROTOCOL_VERSION,
    SIDE_RECEIVER,
    SIDE_SENDER,
    SIGNAL_TCP,
    SIGNAL_UNSUPPORTED,
)
from .errors import ProtocolError

# How long the sender holds the data stream back for a direct connection (seconds): for the
# receiver's hints once it accepted, and for a connection to authenticate once they arrived.
ANSWER_TIMEOUT = 5.0
CONNECT_TIMEOUT = 5.0
# A transfer already moving through the relay moves to a direct connection only with this much
# left: the credit window in flight on the relay is sent again on the new connection.
SWITCH_MIN_REMAINING = 32 * 1024 * 1024

HELLO_SIZE = len(DIRECT_MAGIC) + 2 + DIRECT_NONCE_SIZE
_LENGTH = struct.Struct(">I")
LENGTH_SIZE = _LENGTH.size


@dataclass(frozen=True)
class Hint:
    """One address where a peer listens: an IP literal (never a name) and a TCP port."""

    host: str
    port: int


@dataclass(frozen=True)
class TcpHints:
    """The peer makes direct TCP connections and listens at `hints` (possibly none)."""

    hints: tuple[Hint, ...]


@dataclass(frozen=True)
class NoDirect:
    """The peer makes no direct TCP connection (`--no-direct`, or a page)."""


@dataclass(frozen=True)
class OtherSignal:
    """Signaling of another kind of direct connection: a page's WebRTC offer or answer."""


def tcp_offer(hints: list[Hint] | tuple[Hint, ...]) -> bytes:
    """The SIGNAL body offering (or answering with) TCP hints; at most MAX_HINTS go."""
    chosen = [{"host": hint.host, "port": hint.port} for hint in list(hints)[:MAX_HINTS]]
    return json.dumps({"type": SIGNAL_TCP, "hints": chosen}).encode()


def read_signal(payload: bytes) -> TcpHints | NoDirect | OtherSignal:
    """What a peer's SIGNAL says about direct TCP connections.

    Hints that are not an IP address with a port are dropped, as are those beyond MAX_HINTS:
    a peer can make this side connect only to addresses, never look a name up.
    """
    if len(payload) > MAX_SIGNAL_BYTES:
        raise ProtocolError("The other side sent a signaling message that is too large.")
    try:
        message = json.loads(payload)
    except (ValueError, RecursionError):  # RecursionError: nested too deep to be a signal
        return OtherSignal()
    if not isinstance(message, dict):
        return OtherSignal()
    if message.get("type") == "unsupported":
        return NoDirect()
    if message.get("type") != SIGNAL_TCP:
        return OtherSignal()
    raw = message.get("hints")
    hints: list[Hint] = []
    for item in raw if isinstance(raw, list) else []:
        hint = _hint(item)
        if hint is not None and hint not in hints:
            hints.append(hint)
        if len(hints) == MAX_HINTS:
            break
    return TcpHints(tuple(hints))


def _hint(item: object) -> Hint | None:
    if not isinstance(item, dict):
        return None
    host, port = item.get("host"), item.get("port")
    if not isinstance(host, str) or type(port) is not int or not 0 < port < 65536:
        return None
    if "%" in host:
        return None  # a scoped address names one of this machine's interfaces: not the peer's
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    # Never offered (a peer's loopback or link-local address is none this side can reach, §8.5),
    # and the ones that would make this side connect to its own machine or its cloud metadata
    # service (169.254.169.254).
    if address.is_multicast or address.is_unspecified or address.is_loopback:
        return None
    if address.is_link_local:
        return None
    return Hint(str(address), port)


def no_direct() -> bytes:
    """The SIGNAL body of a peer that makes no direct connections."""
    return SIGNAL_UNSUPPORTED


class DirectHandshake:
    """Authenticates one TCP connection to the peer, whoever opened it (PROTOCOL.md §8.5).

    Both ends send HELLO (`hello()`) at once, read the other's (`on_hello`, which returns this
    side's tag to send), then check the other's tag (`check_tag`). A connection that fails
    anything is closed without a word; the relay carries on.
    """

    def __init__(self, backend: CryptoBackend, side: int, key: bytes) -> None:
        if side not in (SIDE_SENDER, SIDE_RECEIVER) or len(key) != 32:
            raise ProtocolError("A direct connection needs the session's direct key.")
        self._backend = backend
        self._side = side
        self._key = key
        self._nonce = backend.random_bytes(DIRECT_NONCE_SIZE)
        self._peer_nonce: bytes | None = None
        self.authenticated = False

    def hello(self) -> bytes:
        return DIRECT_MAGIC + bytes([PROTOCOL_VERSION, self._side]) + self._nonce

    async def on_hello(self, message: bytes) -> bytes:
        """The peer's HELLO; returns this side's tag. Raises ProtocolError if it is not one."""
        if len(message) != HELLO_SIZE or not message.startswith(DIRECT_MAGIC):
            raise ProtocolError("Not a Hushdrop direct connection.")
        version, side = message[len(DIRECT_MAGIC)], message[len(DIRECT_MAGIC) + 1]
        if version != PROTOCOL_VERSION or side != _other(self._side):
            raise ProtocolError("A direct connection of another version or the same side.")
        self._peer_nonce = bytes(message[len(DIRECT_MAGIC) + 2 :])
        return await self._tag(self._side)

    async def check_tag(self, tag: bytes) -> bool:
        """Whether the peer's tag proves it holds the session's direct key, for these nonces."""
        if self._peer_nonce is None or len(tag) != DIRECT_TAG_SIZE:
            return False
        expected = await self._tag(_other(self._side))
        self.authenticated = hmac.compare_digest(expected, bytes(tag))
        return self.authenticated

    async def _tag(self, side: int) -> bytes:
        """HMAC-SHA-256(K_direct, u8 side || nonce_S || nonce_R)."""
        mine, theirs = self._nonce, self._peer_nonce
        nonces = mine + theirs if self._side == SIDE_SENDER else theirs + mine
        return await self._backend.hmac_sha256(self._key, bytes([side]) + nonces)


def _other(side: int) -> int:
    return SIDE_RECEIVER if side == SIDE_SENDER else SIDE_SENDER


def go() -> bytes:
    """What the sender sends on the one authenticated connection it chose."""
    return bytes([DIRECT_GO])


def is_go(data: bytes) -> bool:
    return data == bytes([DIRECT_GO])


def frame_header(length: int) -> bytes:
    """Each peer message on a direct connection travels as `u32 length || message`."""
    if not 0 < length <= MAX_DIRECT_MESSAGE:
        raise ProtocolError("A peer message of an impossible size.")
    return _LENGTH.pack(length)


def frame_length(header: bytes) -> int:
    """The length in a frame header; raises ProtocolError for an impossible one."""
    (length,) = _LENGTH.unpack(header)
    if not 0 < length <= MAX_DIRECT_MESSAGE:
        raise ProtocolError("The direct connection carried a message of an impossible size.")
    return length


class RouteChoice:
    """The sender's decision between the relay and a direct connection (PROTOCOL.md §8.5).

    States: "offered" (hints sent, no answer yet), "connecting" (the receiver's answer came),
    "ready" (a connection authenticated), "moved" (the transfer switched to it), "relay" (the
    relay carries the data: refused, failed, timed out, or moved back after a lost connection).
    Time is passed in (seconds, any monotonic clock).
    """

    def __init__(self) -> None:
        self.state = "offered"
        self._accepted_at: float | None = None
        self._answered_at: float | None = None

    def accepted(self, now: float) -> None:
        """The receiver accepted: the data stream waits at most the timeouts from here."""
        self._accepted_at = now

    def answered(self, signal: TcpHints | NoDirect | OtherSignal, now: float) -> bool:
        """The receiver's SIGNAL. True when connections to its hints should be tried."""
        if self.state != "offered":
            return False
        if isinstance(signal, TcpHints):
            self.state = "connecting"
            self._answered_at = now
            return True
        self.state = "relay"
        return False

    def authenticated(self) -> bool:
        """A connection authenticated. True when it is the first: choose it (send GO)."""
        if self.state in ("offered", "connecting"):
            self.state = "ready"
            return True
        return False

    def failed(self) -> None:
        """Every connection attempt failed, or a direct connection was lost."""
        if self.state != "relay":
            self.state = "relay"

    def hold_data(self, now: float) -> bool:
        """Whether the data stream should wait for a direct connection right now: it may still
        open, and the receiver accepted less than the timeouts ago."""
        if self.state not in ("offered", "connecting") or self._accepted_at is None:
            return self.state in ("offered", "connecting")
        if self.state == "offered":
            return now < self._accepted_at + ANSWER_TIMEOUT
        start = max(self._accepted_at, self._answered_at or self._accepted_at)
        return now < start + CONNECT_TIMEOUT

    def deadline(self) -> float | None:
        """When `hold_data` turns false by itself, if it is holding after acceptance."""
        if self._accepted_at is None or self.state not in ("offered", "connecting"):
            return None
        if self.state == "offered":
            return self._accepted_at + ANSWER_TIMEOUT
        return max(self._accepted_at, self._answered_at or self._accepted_at) + CONNECT_TIMEOUT

    def give_up_if_late(self, now: float) -> bool:
        """After the timeouts, stop waiting: True when this call gave the attempt up."""
        deadline = self.deadline()
        if deadline is not None and now >= deadline:
            self.state = "relay"
            return True
        return False

    def should_move(self, bytes_sent: int, bytes_left: int | None) -> bool:
        """Whether to move a transfer that can switch to the ready connection now: before any
        data, or later with enough left to be worth resending what is in flight. `bytes_left`
        None: a stream of unknown length (§7.2), assumed worth it."""
        if bytes_left is None:
            return self.state == "ready"
        if self.state != "ready" or bytes_left <= 0:
            return False
        return bytes_sent == 0 or bytes_left >= SWITCH_MIN_REMAINING

    def moved(self) -> None:
        self.state = "moved"
