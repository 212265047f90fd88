"""Helpers to run real `hushdrop` CLI processes and a byte-flipping TCP proxy in tests."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

TIMEOUT = 120


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class CliProcess:
    """A running `hushdrop ... --json`; its JSON events are read on a thread."""

    def __init__(
        self,
        args: list[str],
        env: Mapping[str, str] | None = None,
        cwd=None,
        *,
        json_mode: bool = True,
        umask: int | None = None,
        obey_permissions: bool = False,
        direct: bool = False,
        netns: str | None = None,
        stdin: int | None = subprocess.DEVNULL,
    ) -> None:
        """`json_mode=False` runs the plain text mode (its events list stays empty); `umask` is
        applied in the child; `obey_permissions` runs it, when root, without the capabilities
        that let root ignore file permissions (as an ordinary user would be). Transfers stay on
        the relay (`--no-direct`: nothing listens beyond 127.0.0.1) unless `direct`; `netns`
        runs it in that network namespace (one the test made)."""
        clean = {k: v for k, v in os.environ.items() if not k.startswith("HUSHDROP_")}
        full_env = {**clean, **(env or {})}

        if not direct and args[:1] in (["send"], ["receive"]):
            args = [args[0], "--no-direct", *args[1:]]
        command = [sys.executable, "-m", "hushdrop.cli.main", *args]
        if json_mode:
            command.append("--json")
        if obey_permissions and os.geteuid() == 0:
            command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
        if netns is not None:
            command = ["ip", "netns", "exec", netns, *command]
        self.proc = subprocess.Popen(
            command,
            stdin=stdin,  # subprocess.PIPE: the test writes to `proc.stdin`
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=full_env,
            cwd=cwd,
            preexec_fn=(lambda: os.umask(umask)) if umask is not None else None,
        )
        self.events: list[dict] = []
        self._queue: queue.Queue[dict | None] = queue.Queue()
        self._stderr: list[str] = []
        self._stdout: list[str] = []
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self) -> None:
        for line in io.TextIOWrapper(self.proc.stdout, encoding="utf-8", errors="replace"):
            self._stdout.append(line)
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "non-json", "line": line}
            self.events.append(event)
            self._queue.put(event)
        self._queue.put(None)

    def _read_stderr(self) -> None:
        # newline="": a carriage return drawn into a log stays visible to the tests.
        stderr = io.TextIOWrapper(self.proc.stderr, encoding="utf-8", errors="replace", newline="")
        for line in stderr:
            self._stderr.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    @property
    def stdout(self) -> str:
        return "".join(self._stdout)

    def wait_event(self, name: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.get("event") == name:
                return event
        while time.monotonic() < deadline:
            try:
                event = self._queue.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if event is None:
                break
            if event.get("event") == name:
                return event
        raise AssertionError(f"no {name!r} event; got {self.events!r}; stderr: {self.stderr}")

    def wait_line(self, prefix: str, timeout: float = 30) -> str:
        """The rest of the first stdout line starting with `prefix` (plain mode)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self._stdout):
                if line.startswith(prefix):
                    return line[len(prefix) :].strip()
            time.sleep(0.02)
        raise AssertionError(f"no line {prefix!r} on stdout; stderr: {self.stderr}")

    def wait(self, timeout: float = TIMEOUT) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            time.sleep(0.05)  # let the reader threads collect the last lines

    def error(self) -> dict:
        errors = [e for e in self.events if e.get("event") == "error"]
        assert errors, f"expected an error event, got {self.events}"
        return errors[-1]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def send(
    relay_url: str, *paths: Path, extra: list[str] | None = None, env=None, **options
) -> CliProcess:
    return CliProcess(
        ["send", *map(str, paths), "--relay", relay_url, *(extra or [])], env, **options
    )


def receive(
    relay_url: str,
    code: str,
    out: Path,
    *,
    extra: list[str] | None = None,
    env=None,
    **options,
) -> CliProcess:
    # The code goes through the environment, as documented, to keep it out of the process list.
    merged = {"HUSHDROP_CODE": code, **(env or {})}
    args = ["receive", "-o", str(out), "--relay", relay_url, *(extra or [])]
    return CliProcess(args, merged, **options)


class FlippingProxy:
    """A TCP proxy to `target` that XORs one byte at `offset` of one direction's stream."""

    def __init__(self, target_port: int, offset: int, direction: str = "to_client") -> None:
        self.target_port = target_port
        self.offset = offset
        self.direction = direction
        self.flipped = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            to_client = self.direction == "to_client"
            threading.Thread(
                target=self._pipe, args=(client, upstream, not to_client), daemon=True
            ).start()
            threading.Thread(
                target=self._pipe, args=(upstream, client, to_client), daemon=True
            ).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, tamper: bool) -> None:
        seen = 0
        try:
            while data := src.recv(1 << 16):
                if tamper and seen <= self.offset < seen + len(data):
                    data = bytearray(data)
                    data[self.offset - seen] ^= 0x20
                    self.flipped.set()
                seen += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closed = True
        self._server.close()
