"""The node link's pass-through (relay/splice.py): a receiver carried to its room's home on
another node gets the home's frames, and the home the receiver's, unchanged, with the same
guarantees as within one node. Real redis-server and relay processes on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode

from tests.conftest import RelayFactory, RelayProcess
from tests.deploy.tls import TestCA
from tests.integration.cluster import RedisServer, free_port, metric, start_nodes
from tests.integration.test_relay import (
    WAIT,
    RssSampler,
    client,
    closed_with,
    create,
    frame,
    recv_json,
    run,
)

pytestmark = pytest.mark.skipif(
    not shutil.which("redis-server"), reason="needs Debian's redis-server (make cluster-tools)"
)

MiB = 1 << 20
BYTES = "hushdrop_relay_bytes_relayed_total"
SPLICED = "hushdrop_relay_links_spliced_total"


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def nodes(relay_factory: RelayFactory, redis: RedisServer) -> list[RelayProcess]:
    return start_nodes(relay_factory, redis, 2)


async def cross_pair(nodes: list[RelayProcess], **joiner_kwargs: object) -> tuple:
    """A creator on node 0 and its joiner on node 1, paired."""
    tls = {"ssl": nodes[0].ssl_context} if nodes[0].url.startswith("https:") else {}
    creator, room = await create(nodes[0], **tls)
    joiner = await client(nodes[1], **tls, **joiner_kwargs)
    await joiner.send(json.dumps({"op": "join", "room": room}))
    assert await recv_json(joiner) == {"op": "paired"}
    assert await recv_json(creator) == {"op": "paired"}
    return creator, joiner


def test_messages_of_every_size_and_shape_cross_a_spliced_link(nodes):
    sizes = [0, 1, 125, 126, 65535, 65536, MiB + 4096]

    async def scenario() -> int:
        creator, joiner = await cross_pair(nodes)
        sent = 0
        for size in sizes:
            payload = os.urandom(size)
            await creator.send(payload)
            assert await asyncio.wait_for(joiner.recv(), WAIT) == payload
            await joiner.send(payload[::-1])
            assert await asyncio.wait_for(creator.recv(), WAIT) == payload[::-1]
            sent += 2 * size
        # A message in fragments, and a ping (answered by the home: this node sends none).
        parts = [os.urandom(1000), os.urandom(70000), b"end"]
        await joiner.send(parts)
        assert await asyncio.wait_for(creator.recv(), WAIT) == b"".join(parts)
        sent += sum(map(len, parts))
        await asyncio.wait_for(await joiner.ping(b"still there?"), WAIT)
        # The home's rules still apply to what the receiver sends: text after pairing ends it.
        await joiner.send('{"op": "chat"}')
        for ws in (creator, joiner):
            reply = await recv_json(ws)
            assert reply["op"] == "error" and reply["code"] == "bad-request"
            assert await closed_with(ws) == 1008
        return sent

    sent = run(scenario)
    assert metric(nodes[1], SPLICED) == 1
    assert metric(nodes[0], SPLICED) == 0
    # Each node counts the binary payload it carried, the passed-through node too.
    assert metric(nodes[1], BYTES) == metric(nodes[0], BYTES) == sent


def test_a_goodbye_crosses_a_spliced_link_as_a_goodbye(nodes):
    async def scenario() -> None:
        creator, joiner = await cross_pair(nodes)
        await creator.send(b"file")
        assert await asyncio.wait_for(joiner.recv(), WAIT) == b"file"
        await joiner.send(b"thanks")
        assert await asyncio.wait_for(creator.recv(), WAIT) == b"thanks"
        await joiner.close()
        assert (await recv_json(creator))["left"] is True
        await creator.close()

    run(scenario)
    assert metric(nodes[1], SPLICED) == 1
    deadline = time.monotonic() + WAIT
    while metric(nodes[0], "hushdrop_relay_pairs_closed_normally_total") < 1:
        assert time.monotonic() < deadline, "the home did not see both peers close normally"
        time.sleep(0.05)


def test_a_lost_connection_crosses_a_spliced_link_as_lost(nodes):
    async def scenario() -> None:
        creator, joiner = await cross_pair(nodes)
        await creator.send(b"file")
        assert await asyncio.wait_for(joiner.recv(), WAIT) == b"file"
        joiner.transport.abort()  # no close frame: the receiver may come back to resume
        reply = await recv_json(creator)
        assert reply["op"] == "peer-gone" and reply["left"] is False
        await creator.close()

    run(scenario)
    assert metric(nodes[1], SPLICED) == 1


def test_backpressure_crosses_a_spliced_link_and_bounds_both_nodes(nodes):
    total = 128  # frames of 1 MiB
    base = os.urandom(MiB)

    async def scenario() -> int:
        creator, joiner = await cross_pair(nodes, max_queue=2)
        sent = 0

        async def sender() -> None:
            nonlocal sent
            for i in range(total):
                await creator.send(frame(i, base))
                sent = i + 1

        task = asyncio.create_task(sender())
        # The receiver reads nothing until the sender has made no progress for a while.
        deadline = time.monotonic() + 30
        last, last_change = -1, time.monotonic()
        while time.monotonic() < deadline and not task.done():
            await asyncio.sleep(0.1)
            if sent != last:
                last, last_change = sent, time.monotonic()
            elif time.monotonic() - last_change > 1.5:
                break
        stalled_at = sent
        assert not task.done(), "the sender was never held back"
        assert stalled_at < 64, f"{stalled_at} MiB accepted while the receiver was not reading"
        for i in range(total):
            assert await asyncio.wait_for(joiner.recv(), 30) == frame(i, base), f"frame {i}"
        await asyncio.wait_for(task, 30)
        await creator.close()
        assert (await recv_json(joiner))["op"] == "peer-gone"
        return stalled_at

    with RssSampler(nodes[0]) as home, RssSampler(nodes[1]) as carrier:
        stalled_at = run(scenario)
    print(
        f"spliced backpressure: sender stalled after {stalled_at} MiB; peak RSS "
        f"home {home.peak / MiB:.1f} MiB, receiver's node {carrier.peak / MiB:.1f} MiB"
    )
    assert home.peak < 64 * MiB and carrier.peak < 64 * MiB
    assert metric(nodes[1], SPLICED) == 1


def test_a_link_over_tls_is_spliced_too(relay_factory, redis, tmp_path):
    ca = TestCA(tmp_path / "ca")
    secret = secrets.token_hex(32)
    nodes = [node(relay_factory, redis, secret, tls=ca) for _ in range(2)]
    payload = os.urandom(MiB)

    async def scenario() -> None:
        creator, joiner = await cross_pair(nodes)
        await creator.send(payload)
        assert await asyncio.wait_for(joiner.recv(), WAIT) == payload
        await joiner.send(payload[::-1])
        assert await asyncio.wait_for(creator.recv(), WAIT) == payload[::-1]
        await joiner.close()
        assert (await recv_json(creator))["left"] is True
        await creator.close()

    run(scenario)
    with urllib.request.urlopen(
        nodes[1].url + "/metrics", context=nodes[1].ssl_context, timeout=WAIT
    ) as response:
        assert f"{SPLICED} 1" in response.read().decode().splitlines()


def test_a_receiver_mid_message_when_carried_is_served_message_by_message(nodes):
    # The receiver's node switches only at a frame boundary; a receiver that already sent part
    # of a frame with its join (no client does) keeps the copying of messages, intact.
    payload = os.urandom(100_000)
    wire = Frame(Opcode.BINARY, payload).serialize(mask=True)

    async def scenario() -> None:
        creator, room = await create(nodes[0])
        joiner = await client(nodes[1])
        await joiner.send(json.dumps({"op": "join", "room": room}))
        joiner.transport.write(wire[:5000])  # behind websockets' back: a frame, cut
        assert await recv_json(joiner) == {"op": "paired"}
        assert await recv_json(creator) == {"op": "paired"}
        joiner.transport.write(wire[5000:])
        assert await asyncio.wait_for(creator.recv(), WAIT) == payload
        await creator.send(b"and back")
        assert await asyncio.wait_for(joiner.recv(), WAIT) == b"and back"
        await joiner.close()
        assert (await recv_json(creator))["left"] is True
        await creator.close()

    run(scenario)
    assert metric(nodes[1], SPLICED) == 0
    assert metric(nodes[1], BYTES) == len(payload) + len(b"and back")


def test_the_receivers_node_stopping_cuts_a_spliced_pair_for_resuming(nodes):
    async def scenario() -> None:
        creator, joiner = await cross_pair(nodes)
        await creator.send(b"file")
        assert await asyncio.wait_for(joiner.recv(), WAIT) == b"file"
        # In a thread: the clients keep running meanwhile.
        assert await asyncio.to_thread(nodes[1].stop) == 0
        # No close frame can be put into a stream of the peers' own frames: the receiver sees
        # its connection lost, and the sender hears that it may come back.
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(joiner.recv(), WAIT)
        assert closed.value.rcvd is None
        reply = await recv_json(creator)
        assert reply["op"] == "peer-gone" and reply["left"] is False
        await creator.close()

    run(scenario)


def test_a_receiver_that_stops_reading_behind_a_spliced_link_is_cut_off(relay_factory, redis):
    # The home would wait a minute; the receiver's node, passing bytes through, cuts first.
    secret = secrets.token_hex(32)
    nodes = [node(relay_factory, redis, secret, "--stall-timeout", t) for t in ("60", "2")]
    base = os.urandom(MiB)

    async def scenario() -> None:
        creator, joiner = await cross_pair(nodes, max_queue=2)
        await creator.send(b"file")
        assert await asyncio.wait_for(joiner.recv(), WAIT) == b"file"

        async def push() -> None:
            for _ in range(256):  # far more than all buffers on the way hold
                await creator.send(base)

        pusher = asyncio.create_task(push())
        # The receiver and the link are cut off, so the home hears the receiver is gone (and
        # may come back: a lost connection).
        reply = await recv_json(creator, timeout=2 + 4 * WAIT)
        assert reply["op"] == "peer-gone" and reply["left"] is False, reply
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(joiner.recv(), WAIT)
        pusher.cancel()
        await asyncio.gather(pusher, return_exceptions=True)
        await creator.close()

    run(scenario)
    assert metric(nodes[1], SPLICED) == 1


def node(relay_factory, redis, secret: str, *flags: str, tls: TestCA | None = None):
    """A relay of the cluster of ``redis`` and ``secret``, over https when given ``tls``."""
    port = free_port()
    scheme = "https" if tls else "http"
    env = {"HUSHDROP_CLUSTER_SECRET": secret}
    if tls:
        flags = (*flags, "--tls-cert", str(tls.cert), "--tls-key", str(tls.key))
        env["SSL_CERT_FILE"] = str(tls.ca)
    return relay_factory(
        "--port", str(port), "--redis", redis.url, "--advertise", f"{scheme}://127.0.0.1:{port}",
        *flags, env=env,
    )  # fmt: skip
