"""Several relay nodes sharing one Redis behind a round-robin load balancer (README, "Several
nodes"): real redis-server, haproxy, relay and CLI processes on loopback, ports chosen at run
time. A code made through one node is received through another; resume slots and per-address
limits are shared; a node killed mid-transfer and a restarted Redis are survived; file data
goes node to node, never through Redis."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hushdrop_relay.config import RelayConfig
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.conftest import REPO_ROOT, RelayFactory, RelayProcess
from tests.integration.cli import CliProcess, receive, send, sha256_file
from tests.integration.cluster import HAProxy, RedisServer, metric, start_nodes
from tests.integration.proxy import CuttableProxy
from tests.integration.test_cli import random_file
from tests.integration.test_cli_resume import assert_resumed_intact, wait_progress
from tests.integration.test_relay import client, create, recv_json, run
from tests.integration.test_relay_limits import exchange, join, refused_for_limit

pytestmark = pytest.mark.skipif(
    not (shutil.which("redis-server") and shutil.which("haproxy")),
    reason="needs Debian's redis-server and haproxy (make cluster-tools)",
)

SIZE = 48 << 20
# The receiver's network speed in the fault tests: the transfer lasts about four seconds, so the
# test acts in its middle however fast or busy the machine is.
RATE = 12 << 20
BYTES = "hushdrop_relay_bytes_relayed_total"
PAIRED = 'hushdrop_relay_rooms_open{state="paired"}'


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def nodes(relay_factory: RelayFactory, redis: RedisServer) -> list[RelayProcess]:
    return start_nodes(relay_factory, redis, 3)


@pytest.fixture
def balancer(tmp_path: Path, nodes: list[RelayProcess]) -> Iterator[HAProxy]:
    proxy = HAProxy(tmp_path, [node.port for node in nodes])
    yield proxy
    proxy.stop()


@pytest.fixture
def out(tmp_path: Path) -> Path:
    directory = tmp_path / "out"
    directory.mkdir()
    return directory


def transfer(sender_url: str, receiver_url: str, src: Path, out: Path) -> None:
    sender = send(sender_url, src)
    try:
        code = sender.wait_event("code")["code"]
        receiver = receive(receiver_url, code, out)
        try:
            assert receiver.wait() == 0, receiver.stderr + str(receiver.events[-3:])
            assert sender.wait() == 0, sender.stderr + str(sender.events[-3:])
        finally:
            receiver.stop()
    finally:
        sender.stop()
    assert sha256_file(out / src.name) == sha256_file(src)


def test_a_code_made_on_one_node_is_received_through_another(nodes, redis, tmp_path, out):
    src = random_file(tmp_path / "cross.bin", 8 << 20)
    transfer(nodes[0].url, nodes[1].url, src, out)
    # The room lived on node 0; node 1 carried the receiver's side to it, node to node.
    assert metric(nodes[0], "hushdrop_relay_rooms_created_total") == 1
    assert metric(nodes[1], "hushdrop_relay_rooms_created_total") == 0
    assert metric(nodes[0], BYTES) > src.stat().st_size
    assert metric(nodes[1], BYTES) > src.stat().st_size
    assert metric(nodes[2], BYTES) == 0  # each node's metrics are its own
    # Redis holds no room number, and nothing that large: file data never went through it.
    info = redis.command("info", "stats")
    written = int(next(x for x in info.splitlines() if x.startswith("total_net_input_bytes:"))[22:])
    assert written < 1 << 20
    assert all(not key.isdigit() for key in redis.command("--scan").split())


def test_transfers_through_a_round_robin_balancer(nodes, balancer, tmp_path, out):
    for i in range(3):  # the peers land on every pair of nodes in turn
        src = random_file(tmp_path / f"file{i}.bin", 2 << 20)
        transfer(balancer.url, balancer.url, src, out)
    assert sum(metric(node, "hushdrop_relay_rooms_created_total") for node in nodes) == 3


def test_a_room_is_paired_once_cluster_wide(nodes):
    async def scenario() -> None:
        creator, room = await create(nodes[0])
        first = await join(nodes[1], room)
        await recv_json(creator)  # paired
        await exchange(creator, first, b"linked")
        late = await client(nodes[2])
        await late.send(json.dumps({"op": "join", "room": room}))
        assert (await recv_json(late))["code"] == "room-full"
        missing = await client(nodes[2])
        taken = {room}
        guess = next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in taken)
        await missing.send(json.dumps({"op": "join", "room": guess}))
        assert (await recv_json(missing))["code"] == "no-such-room"
        for ws in (creator, first, late, missing):
            await ws.close()

    run(scenario)


def test_resume_slots_pair_across_nodes(nodes):
    slot = "A" * 22

    async def scenario() -> None:
        sender = await client(nodes[0])
        await sender.send(json.dumps({"op": "resume", "id": slot, "side": "sender"}))
        receiver = await client(nodes[2])
        await receiver.send(json.dumps({"op": "resume", "id": slot, "side": "receiver"}))
        assert await recv_json(receiver) == {"op": "paired"}
        assert await recv_json(sender) == {"op": "paired"}
        await exchange(sender, receiver, b"resumed")
        await sender.close()
        assert (await recv_json(receiver))["op"] == "peer-gone"

    run(scenario)
    # Paired once, on whichever node got the slot first (both requests race to Redis).
    assert sum(metric(node, "hushdrop_relay_resumes_total") for node in nodes) == 1


def test_per_address_limits_are_shared(relay_factory, redis):
    nodes = start_nodes(
        relay_factory,
        redis,
        3,
        "--max-waiting-rooms-per-ip",
        "2",
        "--failed-joins-per-ip-per-minute",
        "3",
    )

    async def scenario() -> None:
        waiting = [(await create(node))[0] for node in nodes[:2]]
        third = await client(nodes[2])
        await third.send(json.dumps({"op": "create"}))
        assert "waiting for their receiver" in (await refused_for_limit(third))["message"]
        for i in range(3):  # one failed join on each node spends the address's three
            ws = await client(nodes[i])
            await ws.send(json.dumps({"op": "join", "room": "000000"}))
            assert (await recv_json(ws))["code"] == "no-such-room"
        blocked = await client(nodes[0])
        await blocked.send(json.dumps({"op": "join", "room": "000000"}))
        assert "join transfers" in (await refused_for_limit(blocked))["message"]
        for ws in waiting:
            await ws.close()

    run(scenario)


@pytest.mark.parametrize("victim", ["home", "joining"])
def test_a_node_killed_mid_transfer_is_resumed_through_the_balancer(
    nodes, balancer, tmp_path, out, victim
):
    src = random_file(tmp_path / "big.bin", SIZE)
    slow = CuttableProxy(balancer.port, RATE)  # the receiver's network
    small = random_file(tmp_path / "small.bin", 1 << 20)
    waiting: dict[RelayProcess, CliProcess] = {node: send(node.url, small) for node in nodes}
    try:
        codes = {node: process.wait_event("code")["code"] for node, process in waiting.items()}
        # Round robin puts the sender and the receiver on two nodes, the room on the sender's.
        sender = send(balancer.url, src)
        receiver = receive(slow.url, sender.wait_event("code")["code"], out)
        try:
            wait_progress(receiver, SIZE // 4)
            home = next(node for node in nodes if metric(node, PAIRED) == 1)
            others = [node for node in nodes if node is not home]
            joining = next((n for n in others if metric(n, BYTES) > 0), home)
            assert joining is not home, "round robin put both peers on one node"
            killed = home if victim == "home" else joining
            killed._proc.kill()
            assert_resumed_intact(sender, receiver, src, out / src.name)
            # The rooms waiting on the other nodes are still there, through any node.
            for i, (node, code) in enumerate(codes.items()):
                if node is killed:
                    continue
                target = tmp_path / f"waited{i}"
                target.mkdir()
                got = receive(balancer.url, code, target)
                assert got.wait() == 0, got.stderr
                assert waiting[node].wait() == 0, waiting[node].stderr
                assert sha256_file(target / small.name) == sha256_file(small)
        finally:
            receiver.stop()
            sender.stop()
    finally:
        for process in waiting.values():
            process.stop()
        slow.close()


def test_redis_restarted_transfers_continue_and_rooms_come_back(nodes, redis, tmp_path, out):
    src = random_file(tmp_path / "big.bin", SIZE)
    slow = CuttableProxy(nodes[1].port, RATE)
    before = random_file(tmp_path / "before.bin", 1 << 20)
    waiting = send(nodes[0].url, before)  # a room that waits through the outage
    sender = send(nodes[0].url, src)
    receiver = receive(slow.url, sender.wait_event("code")["code"], out)
    try:
        waiting_code = waiting.wait_event("code")["code"]
        wait_progress(receiver, SIZE // 8)
        redis.stop()
        # While Redis is down: new rooms are refused with a clear "limit" error.
        refused = send(nodes[2].url, before)
        assert refused.wait() != 0
        assert "cannot reach the state its nodes share" in refused.error()["message"]
        assert receiver.wait_event("progress", timeout=30)
        redis.start()
        # In flight all along, through the outage.
        assert receiver.wait() == 0, receiver.stderr
        assert sender.wait() == 0, sender.stderr
        assert sha256_file(out / src.name) == sha256_file(src)
        names = [e["event"] for e in receiver.events]
        assert "reconnecting" not in names
        # Back: the nodes publish their rooms again, and new ones work.
        wait_republished(redis)
        late = tmp_path / "late"
        late.mkdir()
        got = receive(nodes[2].url, waiting_code, late)
        assert got.wait() == 0, got.stderr
        assert waiting.wait() == 0, waiting.stderr
        assert sha256_file(late / before.name) == sha256_file(before)
        again = tmp_path / "again"
        again.mkdir()
        transfer(nodes[1].url, nodes[2].url, before, again)
    finally:
        for process in (waiting, sender, receiver):
            process.stop()
        slow.close()


def wait_republished(redis: RedisServer, timeout: float = 30) -> None:
    """Until every node has beaten (and so republished its rooms) since Redis came back."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        keys = redis.command("--scan", "--pattern", "hushdrop:node:*").split()
        if len(keys) == 3 and redis.command("--scan", "--pattern", "hushdrop:room:*").split():
            return
        time.sleep(0.2)
    raise AssertionError("the nodes did not come back to Redis")


def test_a_single_relay_does_not_import_redis():
    code = (
        "import sys, asyncio\n"
        "from hushdrop_relay.config import RelayConfig\n"
        "from hushdrop_relay.server import serve_forever\n"
        "stop = asyncio.Event()\n"
        "async def main():\n"
        "    stop.set()\n"
        "    await serve_forever(RelayConfig(port=0), None, stop)\n"
        "asyncio.run(main())\n"
        "assert not any(m == 'redis' or m.startswith('redis.') for m in sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT, timeout=60)


def test_only_nodes_open_links(nodes):
    async def scenario() -> None:
        for headers in ({}, {"X-Hushdrop-Node": f"{int(time.time())}.{'0' * 64}"}):
            url = nodes[0].ws_url.replace("/v1/ws", "/v1/node")
            with pytest.raises(InvalidStatus) as refused:
                await connect(url, additional_headers=headers, open_timeout=10)
            assert refused.value.response.status_code == 403

    run(scenario)


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--redis", "redis://127.0.0.1:6379/0"], {}, "--redis needs --advertise"),
        (
            ["--redis", "redis://127.0.0.1:6379/0", "--advertise", "http://10.0.0.1:8780"],
            {"HUSHDROP_CLUSTER_SECRET": "short"},
            "HUSHDROP_CLUSTER_SECRET",
        ),
        (["--advertise", "http://10.0.0.1:8780"], {}, "give --redis too"),
    ],
)
def test_cluster_flags_are_checked(capsys, argv, env, message):
    with pytest.raises(SystemExit):
        RelayConfig.from_args(argv, env=env)
    assert message in capsys.readouterr().err


def test_cluster_flags_from_the_environment():
    config = RelayConfig.from_args(
        [],
        env={
            "HUSHDROP_REDIS": "redis://127.0.0.1:6379/0",
            "HUSHDROP_ADVERTISE": "http://10.0.0.1:8780",
            "HUSHDROP_CLUSTER_SECRET": "s" * 32,
        },
    )
    assert (config.redis, config.advertise) == ("redis://127.0.0.1:6379/0", "http://10.0.0.1:8780")
    assert "s" * 32 not in repr(config)
