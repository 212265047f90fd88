"""deploy/Caddyfile and deploy/nginx/hushdrop.conf in front of a real relay, over HTTPS.

Each proxy runs the shipped configuration (see proxies.py for what a test changes) with Debian's
caddy or nginx; the relay trusts the X-Forwarded-For header they set, as deploy/hushdrop.service
does. The CLI trusts the proxy's CA through SSL_CERT_FILE, as a user's would trust a public CA.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import RelayFactory, RelayProcess
from tests.deploy.proxies import Caddy, Nginx, Proxy
from tests.deploy.tls import TestCA
from tests.integration.cli import receive, send, sha256_file

PROXIES = ["caddy", "nginx"]


@pytest.fixture(params=PROXIES)
def proxy_kind(request: pytest.FixtureRequest) -> str:
    return request.param


def start_proxy(kind: str, folder: Path, relay: RelayProcess, ca: TestCA) -> Proxy:
    if kind == "caddy":
        return Caddy(folder, relay.port)
    return Nginx(folder, relay.port, ca)


@pytest.fixture
def proxied(
    proxy_kind: str,
    relay_factory: RelayFactory,
    built_site: Path,
    test_ca: TestCA,
    tmp_path: Path,
) -> Iterator[tuple[RelayProcess, Proxy]]:
    relay = relay_factory(
        "--site-dir", str(built_site), "--trust-proxy-header", "X-Forwarded-For",
        "--max-waiting-rooms-per-ip", "1",
    )  # fmt: skip
    with start_proxy(proxy_kind, tmp_path / proxy_kind, relay, test_ca) as proxy:
        yield relay, proxy


def fetch(proxy: Proxy, path: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(
            proxy.url + path, context=proxy.ssl_context(), timeout=20
        ) as reply:
            return reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_the_page_comes_over_https_with_the_relays_headers(
    proxied: tuple[RelayProcess, Proxy],
) -> None:
    _, proxy = proxied
    status, headers, body = fetch(proxy, "/")
    assert status == 200
    assert b"Hushdrop" in body
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert fetch(proxy, "/metrics")[0] == 404  # kept off the public address


def test_cli_to_cli_over_https_through_the_proxy(
    proxied: tuple[RelayProcess, Proxy], tmp_path: Path
) -> None:
    relay, proxy = proxied
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.bin").write_bytes(bytes(range(256)) * 8192)  # 2 MiB: several chunks
    (folder / "b.txt").write_text("through the proxy")
    trust = {"SSL_CERT_FILE": str(proxy.ca)}
    sender = send(proxy.url, folder, env=trust)
    code = sender.wait_event("code")
    assert code["link"].startswith(proxy.url + "/")
    receiver = receive(proxy.url, code["code"], tmp_path / "out", env=trust)
    assert receiver.wait() == 0, receiver.stderr
    assert sender.wait() == 0, sender.stderr
    for name in ("a.bin", "b.txt"):
        assert sha256_file(tmp_path / "out" / "photos" / name) == sha256_file(folder / name)
    # The bytes went through the relay behind the proxy, not around it.
    relayed = re.search(r"^hushdrop_relay_bytes_relayed_total (\d+)$", metrics(relay), re.M)
    assert relayed and int(relayed.group(1)) > 2 * 1024 * 1024


def test_a_request_the_relay_cannot_answer_leaves_no_client_address_in_the_proxys_logs(
    proxied: tuple[RelayProcess, Proxy],
) -> None:
    # While the relay restarts, every reconnecting client's request fails at the proxy; by
    # default both proxies would log its address, request line and User-Agent as an error.
    relay, proxy = proxied
    relay.stop()
    probe = "/v1/ws-probe-" + secrets.token_hex(8)
    request = urllib.request.Request(proxy.url + probe, headers={"User-Agent": "probe-agent/1"})
    with pytest.raises(urllib.error.HTTPError) as failed:
        urllib.request.urlopen(request, context=proxy.ssl_context(), timeout=20)
    assert failed.value.code == 502
    time.sleep(0.5)  # the proxy writes its log lines after it answered
    logs = proxy.logs()
    for trace in (probe, "probe-agent", "client:", "remote_ip"):
        assert trace not in logs, logs


def metrics(relay: RelayProcess) -> str:
    with urllib.request.urlopen(relay.url + "/metrics", timeout=10) as reply:
        return reply.read().decode()


async def open_room(
    proxy: Proxy, opened: list[ClientConnection], source: str, claimed: str | None = None
) -> dict:
    """Connect from loopback address `source` through the proxy and ask for a room; the reply.

    `claimed` is an X-Forwarded-For the client sends itself, which must change nothing.
    """
    headers = {"X-Forwarded-For": claimed} if claimed else None
    ws: ClientConnection = await connect(
        proxy.url.replace("https", "wss", 1) + "/v1/ws",
        ssl=proxy.ssl_context(),
        local_addr=(source, 0),
        additional_headers=headers,
        open_timeout=20,
    )
    await ws.send(json.dumps({"op": "create"}))
    reply = json.loads(await asyncio.wait_for(ws.recv(), 20))
    opened.append(ws)
    return reply


def test_per_address_limits_see_the_client_behind_the_proxy(
    proxied: tuple[RelayProcess, Proxy],
) -> None:
    relay, proxy = proxied

    async def main() -> None:
        opened: list[ClientConnection] = []
        try:
            first = await open_room(proxy, opened, "127.0.0.2")
            assert first["op"] == "created"
            # The same client again, pretending to be another address: over its one waiting room.
            again = await open_room(proxy, opened, "127.0.0.2", claimed="127.0.0.9")
            assert again["op"] == "error" and again["code"] == "limit", again
            # Another client behind the same proxy has a budget of its own.
            other = await open_room(proxy, opened, "127.0.0.3")
            assert other["op"] == "created", other
        finally:
            for ws in opened:
                await ws.close()

    asyncio.run(main())
    text = metrics(relay)
    assert 'hushdrop_relay_limit_rejections_total{limit="waiting-rooms-per-ip"} 1' in text
    assert "hushdrop_relay_rooms_created_total 2" in text
    # Nor are those addresses written to the relay's log.
    assert "127.0.0.2" not in relay.logs() and "127.0.0.3" not in relay.logs()
