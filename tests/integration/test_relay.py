"""Integration tests of the relay as a real process: rendezvous protocol, forwarding,
limits, backpressure and memory, static site safety, and log privacy."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hushdrop_relay.config import DEFAULT_CSP
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

if TYPE_CHECKING:
    from tests.conftest import RelayFactory, RelayProcess

MiB = 1024 * 1024


def test_default_csp_allows_only_our_origin_and_no_inline_code():
    directives = dict(d.strip().split(" ", 1) for d in DEFAULT_CSP.split(";"))
    assert directives["default-src"] == "'self'"
    assert "'unsafe-inline'" not in DEFAULT_CSP
    assert "http" not in DEFAULT_CSP and "*" not in DEFAULT_CSP
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    # Workers: the service worker, and the engine's, which PyScript starts from a blob: URL.
    assert directives["worker-src"] == "'self' blob:"


WAIT = 5.0  # generous bound for anything that should happen "promptly"


# Helpers ---------------------------------------------------------------------------------


def run(coro_fn: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(coro_fn())


def client(relay: RelayProcess, **kwargs: Any) -> Any:
    options: dict[str, Any] = {
        "compression": None,
        "ping_interval": None,
        "max_size": 4 * MiB,
        "open_timeout": WAIT,
        "close_timeout": 2,
    }
    options.update(kwargs)
    return connect(relay.ws_url, **options)


async def recv_json(ws: ClientConnection, timeout: float = WAIT) -> dict[str, Any]:
    message = await asyncio.wait_for(ws.recv(), timeout)
    assert isinstance(message, str), f"expected a text frame, got {len(message)} bytes"
    return json.loads(message)


async def closed_with(ws: ClientConnection, timeout: float = WAIT) -> int | None:
    """Wait for the relay to close ``ws``; return the close code it sent."""
    await asyncio.wait_for(ws.wait_closed(), timeout)
    return ws.close_code


async def create(relay: RelayProcess, ttl: int | None = None, **kwargs: Any) -> tuple[Any, str]:
    ws = await client(relay, **kwargs)
    request: dict[str, Any] = {"op": "create"}
    if ttl is not None:
        request["ttl"] = ttl
    await ws.send(json.dumps(request))
    reply = await recv_json(ws)
    assert reply["op"] == "created", reply
    return ws, reply["room"]


async def pair(relay: RelayProcess, **joiner_kwargs: Any) -> tuple[Any, Any, str]:
    creator, room = await create(relay)
    joiner = await client(relay, **joiner_kwargs)
    await joiner.send(json.dumps({"op": "join", "room": room}))
    assert await recv_json(joiner) == {"op": "paired"}
    assert await recv_json(creator) == {"op": "paired"}
    return creator, joiner, room


async def join_reply(relay: RelayProcess, room: str) -> tuple[dict[str, Any], int | None]:
    async with client(relay) as ws:
        await ws.send(json.dumps({"op": "join", "room": room}))
        reply = await recv_json(ws)
        return reply, await closed_with(ws)


def http_get(
    relay: RelayProcess, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", relay.port, timeout=WAIT)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


def spread(index: int, per_address: int = 25) -> dict[str, Any]:
    """Client options connecting from loopback address 127.0.0.(2 + index // per_address).

    Many rooms opened this way stay within the relay's default per-address limits (32
    connections, 60 rooms a minute), as rooms from many real users would.
    """
    return {"local_addr": (f"127.0.0.{2 + index // per_address}", 0)}


def frame(index: int, base: bytes) -> bytes:
    """A 1 MiB frame whose first 8 bytes carry its index, so order and content are checkable."""
    return index.to_bytes(8, "big") + base[8:]


class RssSampler:
    """Samples a relay's RSS in a thread and keeps the peak."""

    def __init__(self, relay: RelayProcess, interval: float = 0.02) -> None:
        self.relay = relay
        self.interval = interval
        self.peak = relay.rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.relay.rss())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# Configuration ---------------------------------------------------------------------------


def test_config_flags_win_over_environment(capsys: pytest.CaptureFixture[str]) -> None:
    from hushdrop_relay.config import RelayConfig

    env = {
        "HUSHDROP_PORT": "9999",
        "HUSHDROP_ROOM_TTL": "60",
        "HUSHDROP_IDLE_TIMEOUT": "7",
        "HUSHDROP_ROOM_BYTE_LIMIT": "123",
        "HUSHDROP_SITE_DIR": "/srv/site",
    }
    config = RelayConfig.from_args(["--port", "0", "--idle-timeout", "2.5"], env=env)
    assert config.port == 0
    assert config.idle_timeout == 2.5
    assert config.room_ttl == 60
    assert config.room_byte_limit == 123
    assert str(config.site_dir) == "/srv/site"
    defaults = RelayConfig.from_args([], env={})
    assert (defaults.host, defaults.port, defaults.room_ttl, defaults.max_room_ttl) == (
        "127.0.0.1",
        8780,
        3600,
        86400,
    )
    assert defaults.max_frame == 1_052_672
    assert defaults.site_dir.parts[-2:] == ("build", "site")
    assert (defaults.clamp_ttl(None), defaults.clamp_ttl(1), defaults.clamp_ttl(10**9)) == (
        3600,
        30,
        86400,
    )
    with pytest.raises(SystemExit):
        RelayConfig.from_args(["--room-ttl", "0"], env={})
    with pytest.raises(SystemExit):
        RelayConfig.from_args([], env={"HUSHDROP_PORT": "eighty"})
    assert "HUSHDROP_PORT" in capsys.readouterr().err


# Plain HTTP ------------------------------------------------------------------------------


def test_healthz(relay: RelayProcess) -> None:
    status, headers, body = http_get(relay, "/healthz")
    assert status == 200
    assert body == b"ok"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-security-policy"] == DEFAULT_CSP


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    (root / "vendor").mkdir(parents=True)
    (root / "assets").mkdir()
    (root / "pkg").mkdir()
    (root / "index.html").write_text("<!doctype html><title>hushdrop</title>")
    (root / "app.js").write_text("console.log('hi')")
    (root / "mod.mjs").write_text("export {}")
    (root / "core.py").write_text("print('hi')")
    (root / "data.json").write_text("{}")
    (root / "vendor" / "lib.wasm").write_bytes(b"\0asm\1\0\0\0")
    (root / "assets" / "app.3f9c2b1d.js").write_text("1")
    (root / "pkg" / "hushdrop-0.1.0-py3-none-any.whl").write_bytes(b"PK\x05\x06" + bytes(18))
    (root / ".env").write_text("SECRET=dotfile")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "core.cpython-311.pyc").write_bytes(b"SECRET bytecode")
    (tmp_path / "secret.txt").write_text("TOP-SECRET")
    return root


def test_static_files_types_and_headers(relay_factory: RelayFactory, site: Path) -> None:
    relay = relay_factory("--site-dir", str(site), "--csp", "default-src 'none'")
    expected = {
        "/": ("text/html", "no-cache", b"<!doctype html><title>hushdrop</title>"),
        "/index.html": ("text/html", "no-cache", None),
        "/app.js": ("text/javascript", "no-cache", b"console.log('hi')"),
        "/mod.mjs": ("text/javascript", "no-cache", None),
        "/core.py": ("text/x-python", "no-cache", None),
        "/data.json": ("application/json", "no-cache", None),
        "/vendor/lib.wasm": ("application/wasm", "public, max-age=31536000, immutable", None),
        "/assets/app.3f9c2b1d.js": ("text/javascript", "public, max-age=31536000, immutable", None),
        "/pkg/hushdrop-0.1.0-py3-none-any.whl": ("application/zip", "no-cache", None),
    }
    for path, (ctype, cache, body) in expected.items():
        status, headers, got = http_get(relay, path)
        assert status == 200, path
        assert headers["content-type"].split(";")[0] == ctype, path
        assert headers["cache-control"] == cache, path
        assert headers["content-security-policy"] == "default-src 'none'"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-content-type-options"] == "nosniff"
        assert int(headers["content-length"]) == len(got)
        if body is not None:
            assert got == body, path

    # HEAD: same headers, no body.
    status, headers, got = http_get(relay, "/app.js", method="HEAD")
    assert status == 200 and got == b""
    assert headers["content-length"] == str(len("console.log('hi')"))

    # ETag revalidation.
    etag = http_get(relay, "/app.js")[1]["etag"]
    status, headers, got = http_get(relay, "/app.js", headers={"If-None-Match": etag})
    assert status == 304 and got == b""
    assert headers["etag"] == etag
    assert headers["x-content-type-options"] == "nosniff"
    assert http_get(relay, "/app.js", headers={"If-None-Match": '"other"'})[0] == 200

    # Only GET and HEAD.
    status, headers, _ = http_get(relay, "/app.js", method="DELETE")
    assert status == 405
    assert "GET" in headers["allow"]

    # A plain GET of the WebSocket endpoint is refused by websockets, with our headers.
    status, headers, _ = http_get(relay, "/v1/ws")
    assert status == 426
    assert headers["referrer-policy"] == "no-referrer"


def post_form(relay: RelayProcess, path: str, size: int) -> tuple[int, dict[str, str], bytes]:
    """POST a multipart form with one file of `size` bytes, as a browser's share sheet does."""
    boundary = "----hushdrop-test-boundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
        f'filename="photo.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'.encode()
        + os.urandom(size)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    conn = http.client.HTTPConnection("127.0.0.1", relay.port, timeout=WAIT)
    try:
        conn.request(
            "POST", path, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        )
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_a_form_posted_to_the_share_target_without_a_service_worker_goes_to_the_page(
    relay_factory: RelayFactory, site: Path
) -> None:
    relay = relay_factory("--site-dir", str(site))
    for size in (0, 10, 3 * 1024 * 1024):  # one packet, and a body longer than any buffer
        status, headers, _ = post_form(relay, "/share", size)
        assert status == 303, size
        assert headers["location"] == "/"
        assert headers["content-security-policy"] == DEFAULT_CSP
    # Elsewhere a request with a body is refused (not dropped without an answer).
    status, headers, _ = post_form(relay, "/app.js", 1000)
    assert status == 405 and "GET" in headers["allow"]
    assert http_get(relay, "/app.js")[0] == 200


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/..%2fsecret.txt",
        "/%2e%2e%2fsecret.txt",
        "/vendor/../../secret.txt",
        "/vendor/%2e%2e/%2e%2e/secret.txt",
        "//secret.txt",
        "/.env",
        "/%2eenv",
        "/__pycache__/core.cpython-311.pyc",
        "/vendor",
        "/missing.js",
        "/%00",
        "/..\\secret.txt",
        "/%ff",
    ],
)
def test_static_no_traversal(relay_factory: RelayFactory, site: Path, path: str) -> None:
    relay = relay_factory("--site-dir", str(site))
    status, headers, body = http_get(relay, path)
    assert status == 404
    assert b"SECRET" not in body
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-security-policy"] == DEFAULT_CSP


def test_default_site_no_traversal(relay: RelayProcess) -> None:
    for path in ("/../pyproject.toml", "/%2e%2e/pyproject.toml", "/%2e%2e%2fpyproject.toml"):
        status, _, body = http_get(relay, path)
        assert status == 404, path
        assert b"[project]" not in body


# Rendezvous ------------------------------------------------------------------------------


def test_create_room_code_and_ttl_clamp(relay: RelayProcess) -> None:
    async def main() -> None:
        codes = set()
        for requested, granted in ((None, 3600), (5, 30), (10**9, 86400), (600, 600)):
            ws = await client(relay)
            request = {"op": "create"} if requested is None else {"op": "create", "ttl": requested}
            await ws.send(json.dumps(request))
            reply = await recv_json(ws)
            assert reply["op"] == "created" and reply["ttl"] == granted
            room = reply["room"]
            assert re.fullmatch(r"[0-9]{6}", room)
            codes.add(room)
            await ws.close()
        assert len(codes) == 4

    run(main)


def test_join_pairs_both_and_forwards_both_directions(relay: RelayProcess) -> None:
    async def main() -> None:
        creator, joiner, _ = await pair(relay)
        rng = os.urandom
        to_joiner = [b"a", b"", rng(MiB), *(rng(n) for n in (1, 100, 65536, 300_000, 7))]
        to_creator = [rng(MiB), b"\x00" * 10, *(rng(n) for n in range(0, 4000, 97))]

        async def send_all(ws: ClientConnection, frames: list[bytes]) -> None:
            for item in frames:
                await ws.send(item)

        async def recv_all(ws: ClientConnection, count: int) -> list[bytes]:
            got = []
            for _ in range(count):
                message = await asyncio.wait_for(ws.recv(), WAIT)
                assert isinstance(message, bytes)
                got.append(message)
            return got

        _, _, got_joiner, got_creator = await asyncio.gather(
            send_all(creator, to_joiner),
            send_all(joiner, to_creator),
            recv_all(joiner, len(to_joiner)),
            recv_all(creator, len(to_creator)),
        )
        assert got_joiner == to_joiner
        assert got_creator == to_creator
        await creator.close()
        await joiner.close()

    run(main)


def test_third_peer_gets_room_full(relay: RelayProcess) -> None:
    async def main() -> None:
        creator, joiner, room = await pair(relay)
        reply, code = await join_reply(relay, room)
        assert reply["op"] == "error" and reply["code"] == "room-full"
        assert reply["message"] == "This transfer already has a receiver."
        assert code == 1000
        # The pair is unaffected.
        await creator.send(b"still here")
        assert await asyncio.wait_for(joiner.recv(), WAIT) == b"still here"
        await creator.close()
        await joiner.close()

    run(main)


def test_racing_joiners_only_one_wins(relay: RelayProcess) -> None:
    async def main() -> None:
        creator, room = await create(relay)
        joiners = [await client(relay) for _ in range(5)]
        await asyncio.gather(*(ws.send(json.dumps({"op": "join", "room": room})) for ws in joiners))
        replies = await asyncio.gather(*(recv_json(ws) for ws in joiners))
        ops = sorted(r.get("code", r["op"]) for r in replies)
        assert ops == ["paired", "room-full", "room-full", "room-full", "room-full"]
        assert await recv_json(creator) == {"op": "paired"}
        for ws in (creator, *joiners):
            await ws.close()

    run(main)


def test_unknown_and_used_rooms_are_no_such_room(relay: RelayProcess) -> None:
    no_such = (
        "No transfer is waiting under that code. "
        "It may have expired, been used already, or been mistyped."
    )

    async def main() -> None:
        for code in ("123456", "abc", "1234567", ""):
            reply, _ = await join_reply(relay, code)
            assert reply == {"op": "error", "code": "no-such-room", "message": no_such}

        creator, joiner, room = await pair(relay)
        await joiner.close()
        assert (await recv_json(creator))["op"] == "peer-gone"
        await closed_with(creator)
        reply, _ = await join_reply(relay, room)
        assert reply["code"] == "no-such-room"

    run(main)


def test_creator_leaving_before_join_retires_room(relay: RelayProcess) -> None:
    async def main() -> None:
        ws, room = await create(relay)
        await ws.close()
        deadline = time.monotonic() + WAIT
        while True:
            reply, _ = await join_reply(relay, room)
            if reply.get("code") == "no-such-room":
                break
            # The relay may not have noticed the close yet; the room is then used up anyway.
            assert time.monotonic() < deadline, reply
            await asyncio.sleep(0.05)

    run(main)


def test_peer_gone_both_ways(relay: RelayProcess) -> None:
    async def main() -> None:
        for leaver in ("creator", "joiner"):
            creator, joiner, _ = await pair(relay)
            gone, survivor = (creator, joiner) if leaver == "creator" else (joiner, creator)
            await gone.close()
            reply = await recv_json(survivor)
            assert reply == {
                "op": "peer-gone",
                "left": True,
                "message": "The other side disconnected.",
            }
            assert await closed_with(survivor) == 1000

    run(main)


def test_peer_gone_says_whether_the_peer_left_or_lost_its_connection(relay: RelayProcess) -> None:
    async def main() -> None:
        creator, joiner, _ = await pair(relay)
        joiner.transport.abort()  # no close frame: a lost connection, which may come back
        reply = await recv_json(creator)
        assert reply["op"] == "peer-gone" and reply["left"] is False

    run(main)


def test_a_page_going_away_with_close_code_4001_has_left(relay: RelayProcess) -> None:
    async def main() -> None:
        creator, joiner, _ = await pair(relay)
        await joiner.close(4001, "page closed")  # a script may not send 1001 (PROTOCOL.md §3)
        reply = await recv_json(creator)
        assert reply["op"] == "peer-gone" and reply["left"] is True

    run(main)


def test_room_expires_when_nobody_joins(relay_factory: RelayFactory) -> None:
    relay = relay_factory("--room-ttl", "1", "--min-room-ttl", "1")

    async def main() -> None:
        for requested in (None, 1):
            ws, room = await create(relay, ttl=requested)
            reply = await recv_json(ws)
            assert reply["op"] == "error" and reply["code"] == "expired"
            assert await closed_with(ws) == 1000
            reply, _ = await join_reply(relay, room)
            assert reply["code"] == "no-such-room"

    run(main)


def test_paired_room_ignores_ttl_but_times_out_when_idle(relay_factory: RelayFactory) -> None:
    relay = relay_factory("--room-ttl", "1", "--min-room-ttl", "1", "--idle-timeout", "2")

    async def main() -> None:
        creator, joiner, room = await pair(relay)
        # Keep traffic flowing past the ttl: the pair must survive it.
        for _ in range(6):
            await creator.send(b"tick")
            assert await asyncio.wait_for(joiner.recv(), WAIT) == b"tick"
            await asyncio.sleep(0.25)
        # Then go quiet: both get "idle" and are closed.
        for ws in (creator, joiner):
            reply = await recv_json(ws, timeout=2 + WAIT)
            assert reply["op"] == "error" and reply["code"] == "idle"
            assert await closed_with(ws) == 1000
        reply, _ = await join_reply(relay, room)
        assert reply["code"] == "no-such-room"

    run(main)


def test_byte_limit_counts_both_directions(relay_factory: RelayFactory) -> None:
    relay = relay_factory("--room-byte-limit", "1000")

    async def main() -> None:
        creator, joiner, _ = await pair(relay)
        await creator.send(bytes(600))
        assert await asyncio.wait_for(joiner.recv(), WAIT) == bytes(600)
        await joiner.send(bytes(300))
        assert await asyncio.wait_for(creator.recv(), WAIT) == bytes(300)
        await creator.send(bytes(200))  # 1100 > 1000: not forwarded, room ends
        for ws in (creator, joiner):
            reply = await recv_json(ws)
            assert reply["op"] == "error" and reply["code"] == "byte-limit"
            assert await closed_with(ws) == 1000

    run(main)


@pytest.mark.parametrize(
    "first",
    [
        "not json",
        "[1, 2]",
        '{"op": "dance"}',
        '{"no": "op"}',
        '{"op": "create", "ttl": "long"}',
        '{"op": "create", "ttl": true}',
        '{"op": "join", "room": 123456}',
        b'{"op": "create"}',
    ],
)
def test_bad_first_message(relay: RelayProcess, first: str | bytes) -> None:
    async def main() -> None:
        async with client(relay) as ws:
            await ws.send(first)
            reply = await recv_json(ws)
            assert reply["op"] == "error" and reply["code"] == "bad-request"
            assert isinstance(reply["message"], str) and reply["message"]
            assert await closed_with(ws) == 1008
        # The relay keeps serving.
        creator, joiner, _ = await pair(relay)
        await joiner.send(b"ok")
        assert await asyncio.wait_for(creator.recv(), WAIT) == b"ok"
        await creator.close()
        await joiner.close()

    run(main)


def test_handshake_timeout(relay_factory: RelayFactory) -> None:
    relay = relay_factory("--handshake-timeout", "1")

    async def main() -> None:
        async with client(relay) as ws:
            reply = await recv_json(ws, timeout=1 + WAIT)
            assert reply["code"] == "bad-request"
            assert await closed_with(ws) == 1008

    run(main)


def test_text_after_pairing_closes_the_pair(relay: RelayProcess) -> None:
    async def main() -> None:
        creator, joiner, _ = await pair(relay)
        await joiner.send('{"op": "chat"}')
        for ws in (creator, joiner):
            reply = await recv_json(ws)
            assert reply["op"] == "error" and reply["code"] == "bad-request"
            assert await closed_with(ws) == 1008

    run(main)


def test_oversize_frames_are_refused(relay: RelayProcess) -> None:
    async def main() -> None:
        # As a first message.
        async with client(relay) as ws:
            await ws.send(json.dumps({"op": "create", "pad": "x" * (2 * MiB)}))
            assert await closed_with(ws) == 1009
        # After pairing: the sender is cut off, the other side learns it is gone.
        creator, joiner, _ = await pair(relay)
        await creator.send(bytes(1024 * 1024 + 4096))  # exactly the limit: fine
        assert len(await asyncio.wait_for(joiner.recv(), WAIT)) == 1024 * 1024 + 4096
        await creator.send(bytes(1024 * 1024 + 4097))
        assert await closed_with(creator) == 1009
        assert (await recv_json(joiner))["op"] == "peer-gone"
        # The relay keeps serving.
        creator, joiner, _ = await pair(relay)
        await creator.send(b"after")
        assert await asyncio.wait_for(joiner.recv(), WAIT) == b"after"
        await creator.close()
        await joiner.close()

    run(main)


def test_many_waiting_rooms_stay_small(relay: RelayProcess) -> None:
    async def main() -> None:
        rooms = await asyncio.gather(*(create(relay, **spread(i)) for i in range(300)))
        codes = {room for _, room in rooms}
        assert len(codes) == 300
        rss = relay.rss()
        print(f"relay RSS with 300 waiting rooms: {rss / MiB:.1f} MiB")
        assert rss < 64 * MiB
        await asyncio.gather(*(ws.close() for ws, _ in rooms))

    run(main)


# Backpressure ----------------------------------------------------------------------------


def test_backpressure_bounds_memory_and_delivers_everything(relay: RelayProcess) -> None:
    total = 256  # frames of 1 MiB
    base = os.urandom(MiB)

    async def main() -> tuple[int, int]:
        # The receiver's own client buffers little, so what the sender gets to push is what
        # the kernel and the relay hold.
        creator, joiner, _ = await pair(relay, max_queue=2)
        sent = 0

        async def sender() -> None:
            nonlocal sent
            for i in range(total):
                await creator.send(frame(i, base))
                sent = i + 1

        send_task = asyncio.create_task(sender())
        # Wait until the sender stalls: no progress for a while, or a generous deadline.
        deadline = time.monotonic() + 20
        last, last_change = -1, time.monotonic()
        while time.monotonic() < deadline and not send_task.done():
            await asyncio.sleep(0.1)
            if sent != last:
                last, last_change = sent, time.monotonic()
            elif time.monotonic() - last_change > 1.5:
                break
        stalled_at = sent
        assert not send_task.done(), "the sender was never held back"
        assert stalled_at < 64, f"{stalled_at} MiB accepted while the receiver was not reading"

        # Now drain: everything arrives, in order, intact.
        for i in range(total):
            message = await asyncio.wait_for(joiner.recv(), 30)
            assert message == frame(i, base), f"frame {i} differs"
        await asyncio.wait_for(send_task, 30)
        await creator.close()
        assert (await recv_json(joiner))["op"] == "peer-gone"
        return stalled_at, total

    with RssSampler(relay) as sampler:
        stalled_at, _ = run(main)
    print(
        f"backpressure: sender stalled after {stalled_at} MiB; "
        f"relay peak RSS {sampler.peak / MiB:.1f} MiB"
    )
    assert sampler.peak < 64 * MiB


def test_full_speed_gigabyte_with_many_rooms_stays_under_64_mib(relay: RelayProcess) -> None:
    total = 1024  # 1 GiB in 1 MiB frames
    base = os.urandom(MiB)

    async def main() -> float:
        waiting = await asyncio.gather(*(create(relay, **spread(i)) for i in range(200)))
        creator, joiner, _ = await pair(relay)

        async def sender() -> None:
            for i in range(total):
                await creator.send(frame(i, base))

        async def receiver() -> None:
            for i in range(total):
                message = await asyncio.wait_for(joiner.recv(), 30)
                assert message[:8] == i.to_bytes(8, "big")
                assert len(message) == MiB

        start = time.monotonic()
        await asyncio.gather(sender(), receiver())
        elapsed = time.monotonic() - start
        await creator.close()
        await joiner.close()
        await asyncio.gather(*(ws.close() for ws, _ in waiting))
        return elapsed

    with RssSampler(relay) as sampler:
        elapsed = run(main)
    print(
        f"1 GiB forwarded in {elapsed:.1f} s ({1024 / elapsed:.0f} MiB/s) next to 200 waiting "
        f"rooms; relay peak RSS {sampler.peak / MiB:.1f} MiB"
    )
    assert sampler.peak < 64 * MiB


# Privacy and lifecycle -------------------------------------------------------------------


def test_logs_hold_no_room_codes_or_addresses(relay_factory: RelayFactory, site: Path) -> None:
    relay = relay_factory("--log-level", "DEBUG", "--site-dir", str(site))

    async def main() -> list[str]:
        rooms = []
        creator, joiner, room = await pair(relay)
        rooms.append(room)
        await creator.send(b"secret payload 1")
        await joiner.recv()
        await joiner.send(b"secret payload 2")
        await creator.recv()
        await join_reply(relay, room)  # room-full
        await creator.close()
        await recv_json(joiner)
        await join_reply(relay, room)  # no-such-room
        async with client(relay) as ws:
            await ws.send("garbage")
            await closed_with(ws)
        ws, room = await create(relay)
        rooms.append(room)
        await ws.close()
        return rooms

    rooms = run(main)
    http_get(relay, "/")
    http_get(relay, "/../secret.txt")
    http_get(relay, "/v1/ws")
    assert relay.stop() == 0  # graceful shutdown on SIGTERM
    logs = relay.logs()
    assert "room paired" in logs  # the session really was logged at DEBUG level
    for room in rooms:
        assert room not in logs
    assert "secret payload" not in logs
    banner = f"Hushdrop relay listening on {relay.url}"
    assert banner in logs.splitlines()
    # The banner names the relay's own address; nothing else may name one.
    assert [line for line in logs.splitlines() if "127.0.0.1" in line] == [banner]


def test_sigterm_with_live_rooms_exits_cleanly(relay: RelayProcess) -> None:
    async def main() -> None:
        waiting, _ = await create(relay)
        creator, joiner, _ = await pair(relay)
        # In a thread: the clients must keep answering the relay's closing handshakes.
        assert await asyncio.to_thread(relay.stop) == 0
        for ws in (waiting, creator, joiner):
            with pytest.raises(ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), WAIT)

    run(main)
