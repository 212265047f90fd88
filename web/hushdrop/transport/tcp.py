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
    LENGTH_SIZE,
    DirectHandshake,
    Hint,
    frame_header,
    frame_length,
    go,
    is_go,
)
from ..protocol.errors import ProtocolError, RelayError
from .rendezvous import RelayChannel

READ_LIMIT = 4 * 1024 * 1024  # the stream reader's buffer, for whole 1 MiB messages
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

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        writer.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)

    def send_go(self) -> None:
        """The sender's GO (§8.5): this is the connection; peer messages follow."""
        self._writer.write(go())

    async def send(self, message: bytes | str) -> None:
        if isinstance(message, str):
            raise RelayError("A direct connection carries only peer messages.")
        try:
            self._writer.write(frame_header(len(message)))
            self._writer.write(message)
            await self._writer.drain()
        except (OSError, ConnectionError) as exc:
            raise _lost() from exc

    async def receive(self) -> bytes:
        try:
            header = await self._reader.readexactly(LENGTH_SIZE)
            return await self._reader.readexactly(frame_length(header))
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ProtocolError) as exc:
            raise _lost() from exc

    async def _recv(self) -> bytes:
        return await self.receive()

    async def close(self) -> None:
        self.close_now()

    def close_now(self) -> None:
        with contextlib.suppress(Exception):
            self._writer.close()


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
                server = await asyncio.start_server(self._accepted, sock=sock, limit=READ_LIMIT)
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
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(hint.host, hint.port, limit=READ_LIMIT), CONNECT_TIMEOUT
            )
        except (OSError, TimeoutError):
            return
        await self._authenticate(reader, writer)

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.closed or self._pending >= MAX_PENDING:
            writer.close()
            return
        # The server's own task: register it so close() cancels a handshake in progress.
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._authenticate(reader, writer)
        except asyncio.CancelledError:
            # The attempt ended (close()): asyncio's server would report a cancelled handler
            # as an error, so it ends here quietly.
            writer.close()
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _authenticate(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """The handshake; a connection that fails it is closed without a word."""
        sock = writer.get_extra_info("socket")
        if sock is not None:
            _tune(sock)
        self._pending += 1
        handshake = DirectHandshake(self._backend, self._side, self._key)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                writer.write(handshake.hello())
                writer.write(await handshake.on_hello(await reader.readexactly(HELLO_SIZE)))
                ok = await handshake.check_tag(await reader.readexactly(DIRECT_TAG_SIZE))
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ProtocolError):
            ok = False
        finally:
            self._pending -= 1
        if not ok or self.closed:
            writer.close()
            return
        channel = TcpChannel(reader, writer)
        self._channels.append(channel)
        if self._side == SIDE_SENDER:
            if self._on_connection is not None:
                await self._on_connection(channel)
            return
        await self._await_go(reader, channel)

    async def _await_go(self, reader: asyncio.StreamReader, channel: TcpChannel) -> None:
        """The receiver waits (as long as the connection lives) for the sender's GO."""
        try:
            chosen = is_go(await reader.readexactly(1))
        except (OSError, asyncio.IncompleteReadError):
            chosen = False
        if chosen and not self.closed:
            self._settle(channel)
        else:
            channel.close_now()
            if channel in self._channels:
                self._channels.remove(channel)


def _family(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET
