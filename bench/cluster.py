"""Several relay nodes on one Redis: what a cross-node pair costs, and what Redis holds per room.

Starts Debian's redis-server and three relay nodes (`--redis`) on loopback, then measures:

1. **Throughput.** One pair pushes `--size` MiB of 1 MiB binary messages (what the CLI sends)
   creator → joiner, with both peers on the same node and with them on two nodes (the joiner's
   node links it to the room's home node). The two alternate `--runs` times in this one run; the
   medians and their ratio are printed (goal: cross-node ≥ 0.8 × same-node), with the CPU time
   the relays (the home, node 1, and node 2, the joiner's node in cross-node runs) and the
   bench's own peers spent per GiB. Raw WebSocket peers, no encryption, so the
   relays are the bottleneck and the extra hop shows.
2. **Waiting rooms.** `--rooms` rooms created round robin over the three nodes and left waiting:
   Redis memory (INFO memory, used_memory) and Redis commands (INFO commandstats) per room, for
   creating them and then for closing them; heartbeats during the run are included.

Run: `make bench-cluster` (or `.venv/bin/python bench/cluster.py --size 256 --rooms 3000`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import RelayProcess
from tests.integration.cluster import RedisServer, start_nodes

MiB = 1 << 20
# Per-address limits off: every bench client comes from 127.0.0.1.
UNLIMITED = (
    "--max-connections-per-ip",
    "0",
    "--max-waiting-rooms-per-ip",
    "0",
    "--rooms-per-ip-per-minute",
    "0",
    "--max-rooms",
    "20000",
)


async def peer(node: RelayProcess) -> ClientConnection:
    return await connect(
        node.ws_url, compression=None, max_size=2 * MiB, ping_interval=None, open_timeout=30
    )


async def pair(home: RelayProcess, other: RelayProcess) -> tuple[ClientConnection, ...]:
    creator = await peer(home)
    await creator.send(json.dumps({"op": "create"}))
    room = json.loads(await creator.recv())["room"]
    joiner = await peer(other)
    await joiner.send(json.dumps({"op": "join", "room": room}))
    for ws in (joiner, creator):
        reply = json.loads(await ws.recv())
        if reply.get("op") != "paired":
            raise RuntimeError(f"not paired: {reply}")
    return creator, joiner


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    """One throughput run: MiB/s, and CPU seconds per GiB of each relay and of the peers."""

    rate: float
    node_cpu: list[float]
    peers_cpu: float

    @property
    def relays_cpu(self) -> float:
        return sum(self.node_cpu)


def own_cpu_seconds() -> float:
    """User + system CPU time of this process (the bench's peers) so far."""
    times = os.times()
    return times.user + times.system


async def throughput(
    home: RelayProcess, other: RelayProcess, size: int, nodes: list[RelayProcess]
) -> Run:
    """``size`` MiB from a creator on ``home`` to a joiner on ``other``: the rate, and the CPU
    seconds each relay and the peers spent per GiB of it."""
    creator, joiner = await pair(home, other)
    cpu0 = [cpu_seconds(node.pid) for node in nodes]
    peers0 = own_cpu_seconds()
    block = bytes(MiB)

    async def push() -> None:
        for _ in range(size):
            await creator.send(block)

    async def pull() -> None:
        got = 0
        while got < size * MiB:
            got += len(await joiner.recv())

    start = time.perf_counter()
    await asyncio.gather(push(), pull())
    elapsed = time.perf_counter() - start
    per_gib = 1024 / size
    node_cpu = [(cpu_seconds(node.pid) - c) * per_gib for node, c in zip(nodes, cpu0, strict=True)]
    peers_cpu = (own_cpu_seconds() - peers0) * per_gib
    await creator.close()
    await joiner.close()
    return Run(size / elapsed, node_cpu, peers_cpu)


def info(redis: RedisServer, section: str) -> dict[str, str]:
    fields = {}
    for line in redis.command("info", section).splitlines():
        if ":" in line and not line.startswith("#"):
            name, value = line.split(":", 1)
            fields[name] = value.strip()
    return fields


def calls(redis: RedisServer) -> dict[str, int]:
    """Calls per command so far, from INFO commandstats (cmdstat_get:calls=3,...)."""
    result = {}
    for name, value in info(redis, "commandstats").items():
        if name.startswith("cmdstat_"):
            result[name[8:]] = int(value.split(",", 1)[0].split("=", 1)[1])
    return result


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


async def waiting_rooms(nodes: list[RelayProcess], redis: RedisServer, count: int) -> None:
    memory0 = info(redis, "memory")
    calls0 = calls(redis)
    rooms: list[ClientConnection] = []
    for batch in range(0, count, 100):
        created = await asyncio.gather(
            *(peer(nodes[i % len(nodes)]) for i in range(batch, min(count, batch + 100)))
        )
        for ws in created:
            await ws.send(json.dumps({"op": "create"}))
        for ws in created:
            reply = json.loads(await ws.recv())
            if reply.get("op") != "created":
                raise RuntimeError(f"room not created: {reply}")
        rooms.extend(created)
    memory1 = info(redis, "memory")
    calls1 = calls(redis)
    keys = int(redis.command("dbsize").strip())
    opened = delta(calls1, calls0)
    print(f"\n{count} waiting rooms over {len(nodes)} nodes; Redis holds {keys} keys")
    for field in ("used_memory", "used_memory_dataset"):
        more = int(memory1[field]) - int(memory0[field])
        print(f"  Redis {field}: {more / MiB:.2f} MiB more, {more / count:.0f} bytes per room")
    print(
        f"  commands to open them: {sum(opened.values()) / count:.2f} per room "
        f"({', '.join(f'{k} {v}' for k, v in sorted(opened.items()))})"
    )
    await asyncio.gather(*(ws.close() for ws in rooms))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and int(redis.command("dbsize").strip()) > keys - count:
        await asyncio.sleep(0.2)
    closed = delta(calls(redis), calls1)
    print(
        f"  commands to close them: {sum(closed.values()) / count:.2f} per room "
        f"({', '.join(f'{k} {v}' for k, v in sorted(closed.items()))}); "
        f"{int(redis.command('dbsize').strip())} keys left"
    )


async def measure(nodes: list[RelayProcess], redis: RedisServer, args: Any) -> None:
    runs: dict[str, list[Run]] = {"same node": [], "cross-node": []}
    await throughput(nodes[0], nodes[1], 16, nodes)  # warm-up
    for _ in range(args.runs):
        runs["same node"].append(await throughput(nodes[0], nodes[0], args.size, nodes))
        runs["cross-node"].append(await throughput(nodes[0], nodes[1], args.size, nodes))
    print(
        f"Throughput, {args.size} MiB in 1 MiB messages, median of {args.runs}, "
        f"on {os.cpu_count()} CPUs:"
    )
    medians = {}
    for name, results in runs.items():
        rate = statistics.median(r.rate for r in results)
        cpu = statistics.median(r.relays_cpu for r in results)
        home = statistics.median(r.node_cpu[0] for r in results)
        carrier = statistics.median(r.node_cpu[1] for r in results)
        peers = statistics.median(r.peers_cpu for r in results)
        medians[name] = rate
        shown = ", ".join(f"{r.rate:.0f}" for r in results)
        print(
            f"  {name + ':':12} {rate:7.1f} MiB/s  (runs: {shown}); CPU s/GiB: relays {cpu:.2f} "
            f"(home {home:.2f}, node 2 {carrier:.2f}), peers {peers:.2f}"
        )
    ratios = [c.rate / s.rate for s, c in zip(runs["same node"], runs["cross-node"], strict=True)]
    ratio = medians["cross-node"] / medians["same node"]
    print(
        f"  cross / same: {ratio:.2f} (goal ≥ 0.8); "
        f"run by run: {', '.join(f'{r:.2f}' for r in ratios)}"
    )
    if args.rooms:
        await waiting_rooms(nodes, redis, args.rooms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size", type=int, default=256, help="MiB per throughput run")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rooms", type=int, default=3000)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 16384)), hard))
    started: list[RelayProcess] = []

    def factory(*flags: str, env: dict[str, str] | None = None) -> RelayProcess:
        process = RelayProcess(list(flags), env)
        started.append(process)
        process.wait_ready()
        return process

    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisServer(Path(tmp))
        try:
            nodes = start_nodes(factory, redis, 3, *UNLIMITED)
            asyncio.run(measure(nodes, redis, args))
        finally:
            for process in started:
                process.stop()
            redis.stop()


if __name__ == "__main__":
    main()
