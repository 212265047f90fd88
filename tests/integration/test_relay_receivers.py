"""A link for several receivers (PROTOCOL.md §3.1, §3.2), against a real relay process: each
receiver is paired with its own connection of the sender, the link admits as many receivers as
the sender asked for and no more, and it lasts no longer than its ttl."""

from __future__ import annotations

import asyncio
import json
import shutil
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.integration.cli import receive, send, sha256_file
from tests.integration.cluster import HAProxy, RedisServer, start_nodes
from tests.integration.test_cli import random_file
from tests.integration.test_relay import WAIT, client, closed_with, recv_json, run

if TYPE_CHECKING:
    from tests.conftest import RelayFactory, RelayProcess


async def create_link(relay: RelayProcess, receivers: int, ttl: int | None = None) -> tuple:
    ws = await client(relay)
    request: dict[str, Any] = {"op": "create", "receivers": receivers}
    if ttl is not None:
        request["ttl"] = ttl
    await ws.send(json.dumps(request))
    reply = await recv_json(ws)
    assert reply["op"] == "created", reply
    return ws, reply


async def join(relay: RelayProcess, room: str) -> Any:
    ws = await client(relay)
    await ws.send(json.dumps({"op": "join", "room": room}))
    return ws


async def attach(relay: RelayProcess, room: str, receiver: int, token: str) -> Any:
    ws = await client(relay)
    request = {"op": "attach", "room": room, "receiver": receiver, "token": token}
    await ws.send(json.dumps(request))
    return ws


def info(relay: RelayProcess) -> dict[str, Any]:
    url = f"http://127.0.0.1:{relay.port}/v1/info"
    with urllib.request.urlopen(url, timeout=WAIT) as response:
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        return json.loads(response.read())


def test_info_offers_only_the_lifetimes_within_the_relays_range(relay_factory: RelayFactory):
    relay = relay_factory("--min-room-ttl", "60", "--max-room-ttl", "7200", "--room-ttl", "900")
    described = info(relay)
    assert described["ttl"] == {"default": 900, "min": 60, "max": 7200, "presets": [600, 900, 3600]}
    assert described["receivers"] == 10
    assert described["version"] == 4


def test_each_receiver_is_paired_with_its_own_sender_connection(relay: RelayProcess):
    async def scenario() -> None:
        control, created = await create_link(relay, receivers=3)
        assert created["receivers"] == 3 and len(created["token"]) == 22
        room, token = created["room"], created["token"]
        pairs = []
        for number in (1, 2, 3):
            receiver = await join(relay, room)
            assert await recv_json(control) == {"op": "joined", "receiver": number}
            sender = await attach(relay, room, number, token)
            assert (await recv_json(sender))["op"] == "paired"
            assert (await recv_json(receiver))["op"] == "paired"
            pairs.append((sender, receiver))
        for number, (sender, receiver) in enumerate(pairs, 1):
            await sender.send(b"for receiver %d" % number)
            await receiver.send(b"from receiver %d" % number)
        for number, (sender, receiver) in enumerate(pairs, 1):
            assert await asyncio.wait_for(receiver.recv(), WAIT) == b"for receiver %d" % number
            assert await asyncio.wait_for(sender.recv(), WAIT) == b"from receiver %d" % number
        for sender, receiver in pairs:
            await sender.close()
            await receiver.close()
        await control.close()

    run(scenario)


def test_a_receiver_beyond_the_links_count_is_told_the_link_is_used_up(relay: RelayProcess):
    async def scenario() -> None:
        control, created = await create_link(relay, receivers=2)
        first = await join(relay, created["room"])
        second = await join(relay, created["room"])
        third = await join(relay, created["room"])
        refusal = await recv_json(third)
        assert refusal["op"] == "error" and refusal["code"] == "room-full"
        assert refusal["message"] == "This link has been used by all its receivers."
        assert await closed_with(third) == 1000
        assert await recv_json(control) == {"op": "joined", "receiver": 1}
        assert await recv_json(control) == {"op": "joined", "receiver": 2}
        for ws in (first, second, control):
            await ws.close()

    run(scenario)


def test_a_link_closes_to_receivers_when_its_ttl_passes(relay_factory: RelayFactory):
    relay = relay_factory("--min-room-ttl", "1")

    async def scenario() -> None:
        control, created = await create_link(relay, receivers=3, ttl=1)
        assert created["ttl"] == 1
        receiver = await join(relay, created["room"])
        assert await recv_json(control) == {"op": "joined", "receiver": 1}
        expired = await recv_json(control)
        assert expired["op"] == "error" and expired["code"] == "expired"
        assert await closed_with(control) == 1000
        late = await join(relay, created["room"])
        assert (await recv_json(late))["code"] == "no-such-room"
        # A receiver that joined in time is still paired with the sender's connection.
        sender = await attach(relay, created["room"], 1, created["token"])
        assert (await recv_json(receiver))["op"] == "paired"
        assert (await recv_json(sender))["op"] == "paired"
        await sender.close()
        await receiver.close()

    run(scenario)


def test_the_sender_leaving_ends_the_link_for_every_waiting_receiver(relay: RelayProcess):
    """What a failed guess does (§5.4): the sender closes its control connection."""

    async def scenario() -> None:
        control, created = await create_link(relay, receivers=3)
        waiting = await join(relay, created["room"])
        assert await recv_json(control) == {"op": "joined", "receiver": 1}
        await control.close()
        gone = await recv_json(waiting)
        assert gone["op"] == "peer-gone" and gone["left"] is True
        late = await join(relay, created["room"])
        assert (await recv_json(late))["code"] == "no-such-room"

    run(scenario)


def test_attaching_needs_the_links_token(relay: RelayProcess):
    async def scenario() -> None:
        control, created = await create_link(relay, receivers=2)
        receiver = await join(relay, created["room"])
        assert await recv_json(control) == {"op": "joined", "receiver": 1}
        forged = await attach(relay, created["room"], 1, "A" * 22)
        assert (await recv_json(forged))["code"] == "no-such-room"
        sender = await attach(relay, created["room"], 1, created["token"])
        assert (await recv_json(sender))["op"] == "paired"
        assert (await recv_json(receiver))["op"] == "paired"
        for ws in (sender, receiver, control):
            await ws.close()

    run(scenario)


def test_a_link_admits_at_most_ten_receivers(relay: RelayProcess):
    async def scenario() -> None:
        control, created = await create_link(relay, receivers=50)
        assert created["receivers"] == 10
        await control.close()

    run(scenario)


def test_one_receiver_links_pair_as_before_without_a_token(relay: RelayProcess):
    async def scenario() -> None:
        sender, created = await create_link(relay, receivers=1)
        assert created["receivers"] == 1 and "token" not in created
        receiver = await join(relay, created["room"])
        assert (await recv_json(sender))["op"] == "paired"
        assert (await recv_json(receiver))["op"] == "paired"
        await sender.close()
        await receiver.close()

    run(scenario)


cluster_tools = pytest.mark.skipif(
    not (shutil.which("redis-server") and shutil.which("haproxy")),
    reason="needs Debian's redis-server and haproxy (make cluster-tools)",
)


@cluster_tools
def test_a_links_receivers_and_sender_connections_may_reach_any_node_of_a_cluster(
    relay_factory: RelayFactory, tmp_path: Path
):
    redis = RedisServer(tmp_path)
    balancer = None
    try:
        nodes = start_nodes(relay_factory, redis, 3)
        balancer = HAProxy(tmp_path, [node.port for node in nodes])
        src = random_file(tmp_path / "a.bin", 3 << 20)
        # Through the balancer, the sender's connection for each receiver lands on any node.
        sender = send(balancer.url, src, extra=["--receivers", "3"])
        code = sender.wait_event("code")["code"]
        receivers = []
        for n, url in enumerate((nodes[0].url, nodes[1].url, nodes[2].url), 1):
            out = tmp_path / f"out{n}"
            out.mkdir()
            receivers.append((receive(url, code, out), out))
        for receiver, out in receivers:
            assert receiver.wait() == 0, receiver.stderr
            assert sha256_file(out / "a.bin") == sha256_file(src)
        assert sender.wait() == 0, sender.stderr
    finally:
        if balancer is not None:
            balancer.stop()
        redis.stop()
