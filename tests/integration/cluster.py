"""Several relay nodes for tests and benches: Debian's redis-server and haproxy, and relays.

`RedisServer` and `HAProxy` run as child processes on ports chosen at run time, with their
configuration and data in a temporary folder; `start_nodes` starts relay processes that share
one Redis. Everything is stopped by its ``stop()`` (the fixtures in test_relay_cluster.py and
bench/cluster.py call it even when a test fails).
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.conftest import RelayFactory, RelayProcess

START_TIMEOUT = 15.0


def free_port() -> int:
    """A TCP port free right now on 127.0.0.1 (for programs that must be told their port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port}")


class RedisServer:
    """``redis-server`` on a loopback port, no persistence; `restart()` keeps the port."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        _wait_port(self.port, self.proc, "redis-server")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def command(self, *args: str) -> str:
        """One command through redis-cli (the bench's INFO)."""
        return subprocess.run(
            ["redis-cli", "-p", str(self.port), *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout


class HAProxy:
    """``haproxy`` in HTTP mode balancing round robin over ``backends`` (ports), with
    X-Forwarded-For, health checks on /healthz and redispatch when a backend is down."""

    def __init__(self, workdir: Path, backends: list[int]) -> None:
        self.port = free_port()
        servers = "\n".join(
            f"    server node{i} 127.0.0.1:{port} check inter 300ms fall 1 rise 2"
            for i, port in enumerate(backends)
        )
        self.config = workdir / "haproxy.cfg"
        self.config.write_text(
            f"""global
    maxconn 2000

defaults
    mode http
    option forwardfor
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
    retries 3
    option redispatch

frontend relays
    bind 127.0.0.1:{self.port}
    http-request deny if {{ path_beg /v1/node }}
    default_backend nodes

backend nodes
    balance roundrobin
    option httpchk GET /healthz
{servers}
"""
        )
        self.proc = subprocess.Popen(
            ["haproxy", "-f", str(self.config), "-db"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        _wait_port(self.port, self.proc, "haproxy")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def start_nodes(
    relay_factory: RelayFactory, redis: RedisServer, count: int = 3, *flags: str
) -> list[RelayProcess]:
    """``count`` relays sharing ``redis``, each advertising its own loopback URL."""
    secret = secrets.token_hex(32)
    nodes = []
    for _ in range(count):
        port = free_port()
        nodes.append(
            relay_factory(
                "--port",
                str(port),
                "--redis",
                redis.url,
                "--advertise",
                f"http://127.0.0.1:{port}",
                "--trust-proxy-header",
                "X-Forwarded-For",
                *flags,
                env={"HUSHDROP_CLUSTER_SECRET": secret},
            )
        )
    return nodes


def metric(node: RelayProcess, name: str) -> float:
    """The value of one sample of ``node``'s /metrics, by its full name with labels."""
    with urllib.request.urlopen(node.url + "/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
    raise AssertionError(f"no metric {name}")
