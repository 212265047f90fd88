"""Integration tests of the relay's abuse limits against real relay processes: connections and
room creations per client address, live rooms, stalled receivers, slow HTTP clients, clients
that leave the relay's output unread. A client over a limit gets a clear "limit" error (or is
cut off when nothing can reach it any more) and everyone else carries on."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hushdrop_relay.config import RelayConfig
from websockets.asyncio.client import ClientConnection
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from tests.integration.test_metrics import scrape, value, wait_for_metrics
from tests.integration.test_relay import (
    WAIT,
    MiB,
    RssSampler,
    client,
    closed_with,
    create,
    pair,
    recv_json,
    run,
    spread,
)

if TYPE_CHECKING:
    from tests.conftest import RelayFactory, RelayProcess

TRY_AGAIN_LATER = 1013


async def refused_for_limit(ws: ClientConnection) -> dict[str, Any]:
    """Read the relay's "limit" error and check that it then closes with 1013."""
    reply = await recv_json(ws)
    assert reply["op"] == "error" and reply["code"] == "limit", reply
    await asyncio.wait_for(ws.wait_closed(), WAIT)
    assert ws.close_code == TRY_AGAIN_LATER
    return reply


async def join(relay: RelayProcess, room: str, **kwargs: Any) -> ClientConnection:
    ws = await client(relay, **kwargs)
    await ws.send(json.dumps({"op": "join", "room": room}))
    assert await recv_json(ws) == {"op": "paired"}
    return ws


async def exchange(creator: ClientConnection, joiner: ClientConnection, tag: bytes) -> None:
    """Both directions forward intact."""
    await creator.send(tag + b" to joiner")
    assert await asyncio.wait_for(joiner.recv(), WAIT) == tag + b" to joiner"
    await joiner.send(tag + b" to creator")
    assert await asyncio.wait_for(creator.recv(), WAIT) == tag + b" to creator"


def closed_by_peer(sock: socket.socket, timeout: float) -> bool:
    """Whether the other end closes or resets ``sock`` within ``timeout`` (reading all)."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


# Configuration -------------------------------------------------------------------------


def test_limit_flags_and_environment(capsys: pytest.CaptureFixture[str]) -> None:
    defaults = RelayConfig.from_args([], env={})
    assert (
        defaults.max_connections_per_ip,
        defaults.max_waiting_rooms_per_ip,
        defaults.rooms_per_ip_per_minute,
        defaults.max_rooms,
        defaults.stall_timeout,
        defaults.open_timeout,
        defaults.trust_proxy_header,
        defaults.metrics,
        defaults.log_format,
        defaults.log_identifiers,
    ) == (32, 32, 60, 10_000, 60.0, 10.0, "", True, "text", False)
    env = {
        "HUSHDROP_MAX_CONNECTIONS_PER_IP": "5",
        "HUSHDROP_MAX_WAITING_ROOMS_PER_IP": "6",
        "HUSHDROP_ROOMS_PER_IP_PER_MINUTE": "7",
        "HUSHDROP_MAX_ROOMS": "9",
        "HUSHDROP_STALL_TIMEOUT": "3",
        "HUSHDROP_OPEN_TIMEOUT": "4",
        "HUSHDROP_TRUST_PROXY_HEADER": "X-Real-IP",
        "HUSHDROP_METRICS": "no",
        "HUSHDROP_LOG_FORMAT": "JSON",
        "HUSHDROP_LOG_IDENTIFIERS": "true",
    }
    config = RelayConfig.from_args(["--max-rooms", "11", "--metrics", "--log-format", "text"], env)
    assert (config.max_connections_per_ip, config.rooms_per_ip_per_minute) == (5, 7)
    assert config.max_waiting_rooms_per_ip == 6
    assert (
        RelayConfig.from_args(["--max-waiting-rooms-per-ip", "0"], env).max_waiting_rooms_per_ip
        == 0
    )
    assert (config.max_rooms, config.stall_timeout, config.open_timeout) == (11, 3.0, 4.0)
    assert config.trust_proxy_header == "X-Real-IP"
    assert config.metrics is True and config.log_format == "text" and config.log_identifiers
    assert RelayConfig.from_args(["--no-log-identifiers"], env).log_identifiers is False
    for argv, bad_env in (
        (["--max-rooms", "0"], {}),
        (["--stall-timeout", "0"], {}),
        (["--max-connections-per-ip", "-1"], {}),
        (["--max-waiting-rooms-per-ip", "-1"], {}),
        (["--trust-proxy-header", "X Forwarded"], {}),
        ([], {"HUSHDROP_LOG_FORMAT": "xml"}),
        ([], {"HUSHDROP_METRICS": "maybe"}),
    ):
        with pytest.raises(SystemExit):
            RelayConfig.from_args(argv, env=bad_env)
    assert "HUSHDROP_METRICS" in capsys.readouterr().err


# Per-address connections ---------------------------------------------------------------


def test_connection_limit_per_address(relay_factory: RelayFactory) -> None:
    relay = relay_factory("--max-connections-per-ip", "4")

    async def main() -> None:
        first = [await client(relay) for _ in range(4)]
        extra = await client(relay)
        reply = await refused_for_limit(extra)
        assert "connections" in reply["message"] and "4" in reply["message"]

        # Another address is not affected.
        creator_b, room_b = await create(relay, **spread(0))
        joiner_b = await join(relay, room_b, **spread(0))
        assert await recv_json(creator_b) == {"op": "paired"}
        await exchange(creator_b, joiner_b, b"b")

        # The first four still pair and forward.
        rooms = []
        for ws in first[:2]:
            await ws.send(json.dumps({"op": "create"}))
            rooms.append((await recv_json(ws))["room"])
        for ws, room in zip(first[2:], rooms, strict=True):
            await ws.send(json.dumps({"op": "join", "room": room}))
            assert await recv_json(ws) == {"op": "paired"}
        for creator, joiner in zip(first[:2], first[2:], strict=True):
            assert await recv_json(creator) == {"op": "paired"}
            await exchange(creator, joiner, b"a")

        # Once they are gone the address may connect again.
        for ws in (*first, creator_b, joiner_b):
            await ws.close()
        deadline = time.monotonic() + WAIT
        while True:
            ws = await client(relay)
            await ws.send(json.dumps({"op": "create"}))
            reply = await recv_json(ws)
            await ws.close()
            if reply["op"] == "created":
                break
            assert time.monotonic() < deadline, reply
            await asyncio.sleep(0.05)

    run(main)
    samples = scrape(relay)
    assert value(samples, "limit_rejections_total", limit="connections-per-ip") >= 1
    assert value(samples, "errors_total", kind="limit") >= 1


def test_proxy_header_last_hop_identifies_the_client(relay_factory: RelayFactory) -> None:
    trusting = relay_factory(
        "--trust-proxy-header", "X-Forwarded-For", "--max-connections-per-ip", "2"
    )
    ignoring = relay_factory("--max-connections-per-ip", "2")

    def via_proxy(chain: str) -> dict[str, Any]:
        return {"additional_headers": {"X-Forwarded-For": chain}}

    async def main() -> None:
        # Behind the proxy: the last hop is the client; what the client claimed before it is not.
        held = [await client(trusting, **via_proxy(f"10.9.9.{i}, 203.0.113.7")) for i in range(2)]
        await refused_for_limit(await client(trusting, **via_proxy("198.51.100.1, 203.0.113.7")))
        other, _ = await create(trusting, **via_proxy("10.9.9.1, 203.0.113.8"))
        # IPv6 clients are grouped by /64.
        v6 = [await client(trusting, **via_proxy(f"2001:db8:1:2::{i}")) for i in (1, 2)]
        await refused_for_limit(await client(trusting, **via_proxy("[2001:db8:1:2::ff]:443")))
        different_net, _ = await create(trusting, **via_proxy("2001:db8:1:3::1"))

        # Without --trust-proxy-header the header is ignored, so it cannot dodge the limit.
        direct = [await client(ignoring, **via_proxy(f"192.0.2.{i}")) for i in range(2)]
        await refused_for_limit(await client(ignoring, **via_proxy("192.0.2.99")))

        for ws in (*held, other, *v6, different_net, *direct):
            await ws.close()

    run(main)


# Waiting rooms -------------------------------------------------------------------------


async def resume(relay: RelayProcess, slot: str, side: str, **kwargs: Any) -> ClientConnection:
    ws = await client(relay, **kwargs)
    await ws.send(json.dumps({"op": "resume", "id": slot, "side": side}))
    return ws


def test_waiting_senders_leave_receivers_their_own_budget(relay: RelayProcess) -> None:
    """An office behind one NAT address: as many senders as --max-connections-per-ip allows
    wait for their receivers, and the receivers, from the same address, still get in."""

    async def main() -> None:
        senders = [await create(relay) for _ in range(32)]
        # A transfer resuming from the same address is not refused either (both sides).
        slot = "R" * 21 + "w"
        waiting_side = await resume(relay, slot, "sender")
        other_side = await resume(relay, slot, "receiver")
        assert await recv_json(other_side) == {"op": "paired"}
        assert await recv_json(waiting_side) == {"op": "paired"}
        await exchange(waiting_side, other_side, b"resumed")
        await waiting_side.close()
        assert (await recv_json(other_side))["op"] == "peer-gone"
        await closed_with(other_side)
        # Every waiting sender gets its receiver: 32 pairs, 64 connections from one address.
        receivers = []
        for creator, room in senders:
            receivers.append(await join(relay, room))
            assert await recv_json(creator) == {"op": "paired"}
        for (creator, _), joiner in zip(senders, receivers, strict=True):
            await exchange(creator, joiner, b"office")
        for ws in (*(ws for ws, _ in senders), *receivers):
            await ws.close()

    run(main)
    samples = scrape(relay)
    assert value(samples, "limit_rejections_total", limit="connections-per-ip") == 0
    assert value(samples, "limit_rejections_total", limit="waiting-rooms-per-ip") == 0


def test_waiting_room_limit_per_address(relay_factory: RelayFactory) -> None:
    relay = relay_factory("--max-waiting-rooms-per-ip", "2", "--max-connections-per-ip", "2")

    async def main() -> None:
        (first, room), (second, _) = await create(relay), await create(relay)
        extra = await client(relay)
        await extra.send(json.dumps({"op": "create"}))
        reply = await refused_for_limit(extra)
        assert "waiting" in reply["message"] and "2" in reply["message"]
        # Another address waits freely.
        other, _ = await create(relay, **spread(0))
        # Receivers from the address are admitted: waiting senders are not in their budget.
        joiner = await join(relay, room)
        assert await recv_json(first) == {"op": "paired"}
        await exchange(first, joiner, b"joined")
        # The joined room no longer waits, so the address may open another one...
        third, _ = await create(relay)
        # ...and the connection budget still bounds everything else: a joined receiver and
        # one connection that has not asked for anything yet make two.
        pending = await client(relay)
        await refused_for_limit(await client(relay))
        for ws in (first, second, third, other, joiner, pending):
            await ws.close()

    run(main)
    samples = scrape(relay)
    assert value(samples, "limit_rejections_total", limit="waiting-rooms-per-ip") == 1
    assert value(samples, "limit_rejections_total", limit="connections-per-ip") == 1


# Room creation -------------------------------------------------------------------------


def test_room_creation_rate_per_address(relay_factory: RelayFactory) -> None:
    relay = relay_factory("--rooms-per-ip-per-minute", "3")

    async def main() -> None:
        rooms = [await create(relay) for _ in range(3)]
        extra = await client(relay)
        await extra.send(json.dumps({"op": "create"}))
        reply = await refused_for_limit(extra)
        assert "per minute" in reply["message"] and "3" in reply["message"]
        # Joining is not creating: the rooms of this address still pair and forward.
        creator, room = rooms[0]
        joiner = await join(relay, room)
        assert await recv_json(creator) == {"op": "paired"}
        await exchange(creator, joiner, b"rate")
        # Another address creates freely.
        other, _ = await create(relay, **spread(0))
        for ws in (*(ws for ws, _ in rooms), joiner, other):
            await ws.close()

    run(main)
    assert value(scrape(relay), "limit_rejections_total", limit="rooms-per-ip") == 1


def test_max_rooms(relay_factory: RelayFactory) -> None:
    relay = relay_factory("--max-rooms", "2")

    async def main() -> None:
        (first, room), (second, _) = await create(relay), await create(relay, **spread(0))
        joiner = await join(relay, room, **spread(30))
        assert await recv_json(first) == {"op": "paired"}
        # A paired room is still open: a third room is refused, whoever asks.
        extra = await client(relay, **spread(60))
        await extra.send(json.dumps({"op": "create"}))
        reply = await refused_for_limit(extra)
        assert "open transfers" in reply["message"] and "2" in reply["message"]
        await exchange(first, joiner, b"max")
        # When a room goes away, a new one may be created.
        await second.close()
        deadline = time.monotonic() + WAIT
        while True:
            ws = await client(relay, **spread(60))
            await ws.send(json.dumps({"op": "create"}))
            reply = await recv_json(ws)
            await ws.close()
            if reply["op"] == "created":
                break
            assert reply["code"] == "limit" and time.monotonic() < deadline, reply
            await asyncio.sleep(0.05)
        await first.close()
        await joiner.close()

    run(main)
    assert value(scrape(relay), "limit_rejections_total", limit="max-rooms") >= 1


def test_a_thousand_waiting_rooms_under_default_limits(relay: RelayProcess) -> None:
    async def main() -> int:
        rooms = await asyncio.gather(*(create(relay, **spread(i)) for i in range(1000)))
        assert len({room for _, room in rooms}) == 1000
        samples = await asyncio.to_thread(scrape, relay)
        assert value(samples, "rooms_open", state="waiting") == 1000
        assert value(samples, "peers_connected") == 1000
        rss = relay.rss()
        await asyncio.gather(*(ws.close() for ws, _ in rooms))
        return rss

    rss = run(main)
    print(f"relay RSS with 1000 waiting rooms: {rss / MiB:.1f} MiB")
    assert rss < 64 * MiB


# Stalled receivers ---------------------------------------------------------------------


def test_receiver_that_stops_reading_is_dropped_after_the_stall_timeout(
    relay_factory: RelayFactory,
) -> None:
    relay = relay_factory("--stall-timeout", "2")
    base = os.urandom(MiB)

    async def main() -> None:
        creator, joiner, _ = await pair(relay, max_queue=2)

        async def push() -> None:
            for _ in range(256):  # far more than all buffers on the way hold
                await creator.send(base)

        pusher = asyncio.create_task(push())
        reply = await recv_json(creator, timeout=2 + 4 * WAIT)
        assert reply["op"] == "error" and reply["code"] == "stall", reply
        assert "stopped receiving" in reply["message"]
        assert not pusher.done() or isinstance(pusher.exception(), ConnectionClosed)
        # Both connections end; the one that stopped reading is cut off.
        await asyncio.wait_for(creator.wait_closed(), 2 * WAIT)
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(joiner.recv(), WAIT)
        pusher.cancel()
        await asyncio.gather(pusher, return_exceptions=True)
        # Everyone else carries on.
        creator, joiner, _ = await pair(relay)
        await exchange(creator, joiner, b"after")
        await creator.close()
        await joiner.close()

    run(main)
    assert value(scrape(relay), "errors_total", kind="stall") == 1


# Slow HTTP clients ---------------------------------------------------------------------


def test_incomplete_http_requests_are_cut_off(relay_factory: RelayFactory) -> None:
    relay = relay_factory("--open-timeout", "1")

    async def main() -> None:
        silent = socket.create_connection(("127.0.0.1", relay.port))
        silent.sendall(b"GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
        trickle = socket.create_connection(("127.0.0.1", relay.port))
        started = time.monotonic()
        # Others are served meanwhile.
        creator, joiner, _ = await pair(relay)
        await exchange(creator, joiner, b"served")
        # A client that keeps sending, a byte at a time, but never ends its headers, is cut
        # off too: the bound is on the whole request, not on silence.
        request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Pad: " + b"a" * 100
        trickle_closed = False
        for byte in request:
            try:
                trickle.send(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                trickle_closed = True
                break
            await asyncio.sleep(0.05)
            assert time.monotonic() - started < 1 + WAIT, "the trickling client was never cut off"
        assert trickle_closed
        assert await asyncio.to_thread(closed_by_peer, silent, 1 + WAIT)
        for sock in (silent, trickle):
            sock.close()
        await exchange(creator, joiner, b"still")
        await creator.close()
        await joiner.close()

    run(main)
    assert value(scrape(relay), "errors_total", kind="open-timeout") == 2


@pytest.fixture
def big_site(tmp_path: Path) -> tuple[Path, bytes]:
    root = tmp_path / "site"
    root.mkdir()
    body = os.urandom(6 * MiB)
    (root / "big.bin").write_bytes(body)
    return root, body


def test_slow_downloads_finish_but_unread_responses_are_dropped(
    relay_factory: RelayFactory, big_site: tuple[Path, bytes]
) -> None:
    root, body = big_site
    relay = relay_factory("--site-dir", str(root), "--open-timeout", "1", "--stall-timeout", "2")

    def request() -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", relay.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(b"GET /big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        return sock

    # Slow but steady: takes well over the open timeout, yet every byte arrives.
    slow = request()
    slow.settimeout(WAIT)
    received = bytearray()
    while chunk := slow.recv(256 * 1024):
        received += chunk
        time.sleep(0.02)
    slow.close()
    assert received.endswith(body)

    # Never reading: dropped after the stall timeout.
    idle = request()
    run(
        lambda: wait_for_metrics(
            relay,
            lambda s: value(s, "errors_total", kind="stall") == 1,
            "the unread response dropped",
            timeout=2 + 2 * WAIT,
        )
    )
    assert closed_by_peer(idle, WAIT)
    idle.close()


# Unread output -------------------------------------------------------------------------


class RawClient:
    """A WebSocket client on a plain blocking socket: websockets' sans-I/O `ClientProtocol`
    builds and parses the frames, and nothing is read unless the test asks."""

    def __init__(self, relay: RelayProcess) -> None:
        self.sock = socket.socket()
        # A small receive window, so that what the relay writes piles up on its side.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(4 * WAIT)
        self.sock.connect(("127.0.0.1", relay.port))
        self.protocol = ClientProtocol(parse_uri(relay.ws_url))
        self.protocol.send_request(self.protocol.connect())
        self.flush()
        self.receive_until(lambda event: isinstance(event, Response))

    def flush(self) -> None:
        self.sock.sendall(b"".join(self.protocol.data_to_send()))

    def receive_until(self, wanted: Callable[[object], bool]) -> object:
        while True:
            for event in self.protocol.events_received():
                if wanted(event):
                    return event
            data = self.sock.recv(65536)
            assert data, "the relay closed the connection"
            self.protocol.receive_data(data)

    def send_json(self, message: dict[str, Any]) -> None:
        self.protocol.send_text(json.dumps(message).encode())
        self.flush()

    def recv_json(self) -> dict[str, Any]:
        frame = self.receive_until(lambda event: isinstance(event, Frame))
        assert isinstance(frame, Frame) and frame.opcode is Opcode.TEXT, frame
        return json.loads(frame.data)

    def ping_frames(self, size: int) -> bytes:
        """About ``size`` bytes of back-to-back PING frames (125-byte payloads)."""
        self.protocol.send_ping(b"p" * 125)
        ping = b"".join(self.protocol.data_to_send())
        return ping * (size // len(ping))

    def close(self) -> None:
        self.sock.close()


def flood_pings(flooder: RawClient, relay: RelayProcess) -> tuple[int, bool]:
    """Send PINGs and read nothing: (bytes sent, whether the relay cut the client off).

    Enough to show unbounded growth, and bounded so that a relay that never cuts the client
    off fails the test instead of running the machine out of memory.
    """
    pings = flooder.ping_frames(MiB)
    start, sent = relay.rss(), 0
    try:
        while sent < 256 * MiB and relay.rss() - start < 64 * MiB:
            flooder.sock.sendall(pings)
            sent += len(pings)
    except (BrokenPipeError, ConnectionResetError):
        return sent, True
    return sent, False


@pytest.mark.parametrize("state", ["waiting", "paired"])
def test_a_client_that_pings_without_reading_is_cut_off(relay: RelayProcess, state: str) -> None:
    """Every PING makes the relay queue a PONG; a client that never reads them must not
    make it pile them up without bound (it did: 38 MB to 2.5 GB in 80 s)."""

    async def main() -> None:
        flooder = await asyncio.to_thread(RawClient, relay)
        creator = None
        if state == "waiting":
            await asyncio.to_thread(flooder.send_json, {"op": "create"})
            assert (await asyncio.to_thread(flooder.recv_json))["op"] == "created"
        else:
            creator, room = await create(relay)
            await asyncio.to_thread(flooder.send_json, {"op": "join", "room": room})
            assert await asyncio.to_thread(flooder.recv_json) == {"op": "paired"}
            assert await recv_json(creator) == {"op": "paired"}
        before = relay.rss()
        with RssSampler(relay) as rss:
            sent, cut_off = await asyncio.to_thread(flood_pings, flooder, relay)
        flooder.close()
        print(
            f"relay RSS {before / MiB:.1f} MiB before, peak {rss.peak / MiB:.1f} MiB "
            f"after {sent / MiB:.0f} MiB of pings from a {state} client"
        )
        assert cut_off, f"still connected after {sent / MiB:.0f} MiB of pings"
        assert rss.peak - before < 50 * MiB
        if creator is not None:
            # Its peer lost its connection: the creator hears so, as for a dropped network.
            assert await recv_json(creator) == {
                "op": "peer-gone",
                "left": False,
                "message": "The other side disconnected.",
            }
            await closed_with(creator)
        # Everyone else carries on.
        first, second, _ = await pair(relay)
        await exchange(first, second, b"after the flood")
        await first.close()
        await second.close()
        await wait_for_metrics(
            relay,
            lambda s: (
                value(s, "peers_connected") == 0 and value(s, "rooms_open", state="waiting") == 0
            ),
            "every connection gone",
        )

    run(main)
    assert value(scrape(relay), "errors_total", kind="backlog") == 1
