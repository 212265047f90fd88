"""Direct TCP connections between two CLIs (PROTOCOL.md §8.5): the asyncio driver.

`DirectAttempt` listens on every interface, connects to the peer's hints, runs the handshake of
`hushdrop.protocol.direct` on every connection (opened or accepted) and hands the authenticated
ones to its owner. `TcpChannel` gives a chosen connection the relay connection's interface, so
the Pump moves a session onto it and, when it breaks, back to the relay (§8). Decisions are the
protocol's (`RouteChoice`); this module only moves bytes and keeps time.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import struct
from collections.abc import Awaitable, Callable

from ..crypto.backend import CryptoBackend
from ..protocol.constants import DIRECT_TAG_SIZE, SIDE_SENDER
from ..protocol.direct import (
    CONNECT_TIMEOUT,
    HELLO_SIZE,
    DirectHandshake,
    Hint,
    frame_header,
    go,
    is_go,
)
from ..protocol.errors import ProtocolError, RelayError
from .rendezvous import RelayChannel
from .tcp_stream import TcpStream

MAX_PENDING = 8  # connections being authenticated at once; more are refused (bounded memory)
WRITE_HIGH_WATER = 4 * 1024 * 1024
# A direct connection whose peer vanished (a cable pulled, a firewall rule) shows no error by
# itself: the kernel gives it up when its data or keepalive probes stay unanswered this long,
# and the transfer resumes through the relay (§8.5).
USER_TIMEOUT_MS = 20_000
KEEPALIVE = (5, 3, 4)  # idle seconds, seconds between probes, probes
_SIOCGIFADDR = 0x8915

OnConnection = Callable[["TcpChannel"], Awaitable[None]]


def local_addresses() -> list[str]:
    """This host's addresses a peer might reach: every interface's, without loopback and
    link-local ones (which need an interface name the peer cannot know)."""
    found: list[str] = []
    with contextlib.suppress(OSError, ImportError):
        found += _interface_ipv4()
    with contextlib.suppress(OSError):
        found += _interface_ipv6()
    if not found:  # not Linux: what the host name resolves to
        with contextlib.suppress(OSError):
            for *_, address in socket.getaddrinfo(socket.gethostname(), None):
                found.append(str(address[0]).split("%")[0])
    usable: list[str] = []
    for text in found:
        address = ipaddress.ip_address(text)
        if address.is_loopback or address.is_link_local or address.is_unspecified:
            continue
        if str(address) not in usable:
            usable.append(str(address))
    return usable


def _interface_ipv4() -> list[str]:
    import fcntl

    addresses = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for _, name in socket.if_nameindex():
            request = struct.pack("256s", name.encode()[:15])
            try:
                reply = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, request)
            except OSError:
                continue  # an interface without an IPv4 address
            addresses.append(socket.inet_ntoa(reply[20:24]))
    return addresses


def _interface_ipv6() -> list[str]:
    addresses = []
    with open("/proc/net/if_inet6", encoding="ascii") as table:
        for line in table:
            raw = line.split()[0]
            addresses.append(str(ipaddress.IPv6Address(bytes.fromhex(raw))))
    return addresses


def _tune(sock: socket.socket) -> None:
    """No Nagle delay; and a dead peer noticed in seconds, not the kernel's default hours."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        idle, interval, count = KEEPALIVE
        for name, value in (
            ("TCP_KEEPIDLE", idle),
            ("TCP_KEEPINTVL", interval),
            ("TCP_KEEPCNT", count),
            ("TCP_USER_TIMEOUT", USER_TIMEOUT_MS),
        ):
            if hasattr(socket, name):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


class TcpChannel(RelayChannel):
    """An authenticated direct connection: peer messages as `u32 length || message`."""

    def __init__(self, stream: TcpStream) -> None:
        self._stream = stream
        stream.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)

    def send_go(self) -> None:
        """The sender's GO (§8.5): this is the connection; peer messages follow."""
        self._stream.write(go())
        self._stream.start_messages()

    def go_received(self) -> None:
        """The receiver read GO: peer messages follow."""
        self._stream.start_messages()

    async def send(self, message: bytes | str) -> None:
        if isinstance(message, str):
            raise RelayError("A direct connection carries only peer messages.")
        try:
            self._stream.write(frame_header(len(message)))
            self._stream.write(message)
            await self._stream.drain()
        except (OSError, ConnectionError) as exc:
            raise _lost() from exc

    async def receive(self) -> bytes:
        """The next peer message (a large one as the bytearray it was read into)."""
        try:
            return await self._stream.receive()  # type: ignore[return-value]
        except (OSError, ConnectionError, ProtocolError) as exc:
            raise _lost() from exc

    async def _recv(self) -> bytes:
        return await self.receive()

    async def close(self) -> None:
        self.close_now()

    def close_now(self) -> None:
        with contextlib.suppress(Exception):
            self._stream.close()


def _lost() -> RelayError:
    return RelayError("The direct connection was lost.", "connection-lost")


class DirectAttempt:
    """One side's direct connections for one session.

    The sender gets every authenticated connection through `on_connection` and `choose()`s
    one (GO, §8.5). The receiver waits for the connection GO arrives on (`chosen()`).
    """

    def __init__(
        self,
        backend: CryptoBackend,
        side: int,
        key: bytes,
        on_connection: OnConnection | None = None,
    ) -> None:
        self._backend = backend
        self._side = side
        self._key = key
        self._on_connection = on_connection
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task] = set()
        self._channels: list[TcpChannel] = []
        self._pending = 0
        self._chosen: asyncio.Future[TcpChannel] = asyncio.get_running_loop().create_future()
        self.closed = False

    async def listen(self) -> list[Hint]:
        """Listen on all interfaces (IPv4 and, where there is one, IPv6); this side's hints."""
        hints: list[Hint] = []
        addresses = local_addresses()
        port = 0
        for family, any_address in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
            if not any(_family(a) == family for a in addresses):
                continue
            try:
                sock = socket.socket(family, socket.SOCK_STREAM)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((any_address, port))
                except OSError:
                    sock.bind((any_address, 0))
                server = await asyncio.get_running_loop().create_server(
                    lambda: TcpStream(self._incoming), sock=sock
                )
            except OSError:
                continue
            self._servers.append(server)
            port = sock.getsockname()[1]
            hints += [Hint(a, port) for a in addresses if _family(a) == family]
        return hints

    def connect(self, hints: tuple[Hint, ...] | list[Hint]) -> None:
        """Try every hint of the peer at once (and the listener keeps accepting)."""
        for hint in hints:
            self._spawn(self._connect(hint))

    def choose(self, channel: TcpChannel) -> None:
        """The sender's choice: GO on `channel`; every other connection and the listener go."""
        channel.send_go()
        self._settle(channel)

    async def chosen(self, timeout: float) -> TcpChannel | None:
        """The receiver: the connection the sender chose, if GO arrives within `timeout`."""
        try:
            return await asyncio.wait_for(asyncio.shield(self._chosen), timeout)
        except TimeoutError:
            return None

    def close(self, *, keep_chosen: bool = True) -> None:
        """Give the attempt up: nothing direct stays open but the chosen connection (that one
        too unless `keep_chosen`: the transfer is over, or never moved to it)."""
        self.closed = True
        self.stop_listening()
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        for channel in self._channels:
            if not (self._chosen.done() and self._chosen.result() is channel):
                channel.close_now()
        self._channels.clear()
        if not keep_chosen and self._chosen.done():
            self._chosen.result().close_now()

    def _settle(self, channel: TcpChannel) -> None:
        if not self._chosen.done():
            self._chosen.set_result(channel)
        if channel in self._channels:
            self._channels.remove(channel)
        self.close()

    def stop_listening(self) -> None:
        """Accept no more connections (those being authenticated go on)."""
        for server in self._servers:
            server.close()
        self._servers.clear()

    def _spawn(self, step: Awaitable[None]) -> None:
        if self.closed:
            return
        task = asyncio.ensure_future(step)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, hint: Hint) -> None:
        try:
            _, stream = await asyncio.wait_for(
                asyncio.get_running_loop().create_connection(TcpStream, hint.host, hint.port),
                CONNECT_TIMEOUT,
            )
        except (OSError, TimeoutError):
            return
        await self._authenticate(stream)

    def _incoming(self, stream: TcpStream) -> None:
        """A connection to the listening port: authenticate it in a task close() cancels."""
        if self.closed or self._pending >= MAX_PENDING:
            stream.close()
            return
        self._pending += 1  # counted from the accept: a burst of connections is bounded too
        self._spawn(self._accepted(stream))

    async def _accepted(self, stream: TcpStream) -> None:
        try:
            await self._authenticate(stream, counted=True)
        except asyncio.CancelledError:
            stream.close()  # the attempt ended (close()) during the handshake

    async def _authenticate(self, stream: TcpStream, *, counted: bool = False) -> None:
        """The handshake; a connection that fails it is closed without a word. `counted`: it
        is already among the `_pending` ones."""
        if not counted:
            self._pending += 1
        sock = stream.transport.get_extra_info("socket")
        if sock is not None:
            _tune(sock)
        handshake = DirectHandshake(self._backend, self._side, self._key)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                stream.write(handshake.hello())
                stream.write(await handshake.on_hello(await stream.read_exactly(HELLO_SIZE)))
                ok = await handshake.check_tag(await stream.read_exactly(DIRECT_TAG_SIZE))
        except (OSError, TimeoutError, ProtocolError):
            ok = False
        finally:
            self._pending -= 1
        if not ok or self.closed:
            stream.close()
            return
        channel = TcpChannel(stream)
        self._channels.append(channel)
        if self._side == SIDE_SENDER:
            if self._on_connection is not None:
                await self._on_connection(channel)
            return
        await self._await_go(stream, channel)

    async def _await_go(self, stream: TcpStream, channel: TcpChannel) -> None:
        """The receiver waits (as long as the connection lives) for the sender's GO."""
        try:
            chosen = is_go(await stream.read_exactly(1))
        except OSError:
            chosen = False
        if chosen and not self.closed:
            channel.go_received()
            self._settle(channel)
        else:
            channel.close_now()
            if channel in self._channels:
                self._channels.remove(channel)


def _family(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET
