"""Shared pytest fixtures: real relay processes started on a free local port.

`relay_factory(*flags, env=None)` starts ``python -m hushdrop_relay --host 127.0.0.1 --port 0
*flags`` and returns a `RelayProcess`; `relay` is one with the default configuration. Every
process started through these fixtures is stopped (SIGTERM, then SIGKILL after 5 s) at teardown.
"""

from __future__ import annotations

import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
_LISTENING = re.compile(r"listening on (https?://\S+)")
START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0


class RelayProcess:
    """A running relay subprocess; its output is drained by threads so pipes never block."""

    def __init__(self, args: list[str], env: Mapping[str, str] | None = None) -> None:
        self.args = args
        # Start from a clean slate: a HUSHDROP_* variable in the developer's shell must not
        # change what the tests exercise.
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("HUSHDROP_")}
        full_env.update(env or {})
        full_env.setdefault("PYTHONUNBUFFERED", "1")
        # An https relay (--tls-cert) is checked against the CA its clients are given.
        cafile = full_env.get("SSL_CERT_FILE")
        self.ssl_context = ssl.create_default_context(cafile=cafile) if cafile else None
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "hushdrop_relay", "--host", "127.0.0.1", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            cwd=REPO_ROOT,
            env=full_env,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        self._lock = threading.Lock()
        self._stdout: list[str] = []
        self._stderr: list[str] = []
        self._combined: list[str] = []
        self._url_found = threading.Event()
        self.url = ""
        self._threads = [
            threading.Thread(target=self._drain, args=(pipe, sink), daemon=True)
            for pipe, sink in ((self._proc.stdout, self._stdout), (self._proc.stderr, self._stderr))
        ]
        for thread in self._threads:
            thread.start()

    def _drain(self, pipe: IO[str] | None, sink: list[str]) -> None:
        assert pipe is not None
        for line in pipe:
            with self._lock:
                sink.append(line)
                self._combined.append(line)
            if not self.url and (match := _LISTENING.search(line)):
                self.url = match.group(1)
                self._url_found.set()
        pipe.close()

    # Public API -------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def ws_url(self) -> str:
        return self.url.replace("http", "ws", 1) + "/v1/ws"

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def returncode(self) -> int | None:
        return self._proc.poll()

    def logs(self) -> str:
        """Everything the process wrote so far, stdout and stderr interleaved by arrival."""
        with self._lock:
            return "".join(self._combined)

    def stdout(self) -> str:
        with self._lock:
            return "".join(self._stdout)

    def stderr(self) -> str:
        with self._lock:
            return "".join(self._stderr)

    def rss(self) -> int:
        """Resident set size in bytes, from /proc/PID/status (Linux)."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("VmRSS not found")

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Wait for the banner, then for /healthz to answer 200."""
        deadline = time.monotonic() + timeout
        while not self._url_found.wait(0.05):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"relay did not start:\n{self.logs()}")
        while True:
            try:
                with urllib.request.urlopen(
                    self.url + "/healthz", timeout=2, context=self.ssl_context
                ) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"relay never became healthy:\n{self.logs()}")
            time.sleep(0.05)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, then SIGKILL if still running after ``timeout``; return the exit status."""
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        for thread in self._threads:
            thread.join(timeout=2)
        return self._proc.returncode


RelayFactory = Callable[..., RelayProcess]


@pytest.fixture
def relay_factory() -> Iterator[RelayFactory]:
    """Start relays with extra flags: ``relay_factory("--idle-timeout", "1", env={...})``."""
    started: list[RelayProcess] = []

    def start(*args: str, env: Mapping[str, str] | None = None) -> RelayProcess:
        process = RelayProcess(list(args), env)
        started.append(process)
        process.wait_ready()
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def relay(relay_factory: RelayFactory) -> RelayProcess:
    """A relay with the default configuration (site directory: the repo's web/)."""
    return relay_factory()
