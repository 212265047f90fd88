"""`--allowed-origins`: which sites' pages may use a relay. A browser always sends its page's
origin with a WebSocket; the CLI sends none and is always let in."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.conftest import RelayFactory, RelayProcess

SITE = "https://files.example.org"


async def create_room(relay: RelayProcess, origin: str | None) -> dict:
    async with connect(relay.ws_url, origin=origin, open_timeout=10) as ws:
        await ws.send(json.dumps({"op": "create"}))
        return json.loads(await asyncio.wait_for(ws.recv(), 10))


def test_pages_of_an_allowed_origin_and_the_cli_are_served(relay_factory: RelayFactory) -> None:
    relay = relay_factory("--allowed-origins", f"{SITE}, http://127.0.0.1:8000/")
    assert asyncio.run(create_room(relay, SITE))["op"] == "created"
    assert asyncio.run(create_room(relay, "http://127.0.0.1:8000"))["op"] == "created"
    assert asyncio.run(create_room(relay, None))["op"] == "created"


def test_a_page_of_another_origin_is_refused_before_any_request(
    relay_factory: RelayFactory,
) -> None:
    relay = relay_factory(env={"HUSHDROP_ALLOWED_ORIGINS": SITE})
    with pytest.raises(InvalidStatus) as refused:
        asyncio.run(create_room(relay, "https://elsewhere.example"))
    assert refused.value.response.status_code == 403
    assert "hushdrop_relay_rooms_created_total 0" in _metrics(relay)


def test_without_the_option_pages_of_any_origin_are_served(relay: RelayProcess) -> None:
    assert asyncio.run(create_room(relay, "https://elsewhere.example"))["op"] == "created"


def test_an_origin_with_a_path_is_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hushdrop_relay", "--allowed-origins", f"{SITE}/app"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "allowed origins must look like" in result.stderr


def _metrics(relay: RelayProcess) -> str:
    with urllib.request.urlopen(relay.url + "/metrics", timeout=10) as reply:
        return reply.read().decode()
