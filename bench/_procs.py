"""Child processes for the benchmark: start, read output, sample memory, reap, stop.

The benchmark needs three things from every process it starts: its output lines with the time
each arrived (to find the relay's port, the sender's code and the end of a transfer), its peak
and current resident memory while it runs, and the exact moment it exits. `Proc` provides all
three; `MemorySampler` is the one thread that polls /proc for every live process.

Exits are detected with waitid(WNOWAIT) in a per-process thread, which blocks until the child is
a zombie without reaping it: the exit time is exact (no polling delay in the timed part), and the
sampler is told to stop reading /proc/PID *before* the PID is released by wait4, so it can never
sample an unrelated process that reused the PID. wait4 then reaps the child and returns its
rusage (ru_maxrss, CPU time). Nothing here calls Popen.poll()/wait(): either could reap the child
first and lose the rusage.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SAMPLE_INTERVAL = 0.05  # seconds between /proc samples
STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL


class BenchError(Exception):
    """A benchmark step failed; the message says which and why."""


@dataclass
class Line:
    """One line of a child's output, stamped with time.monotonic() when it was read."""

    at: float
    stream: str  # "stdout" or "stderr"
    text: str


@dataclass
class Memory:
    """What the sampler saw of one process, in bytes."""

    peak_hwm: int = 0  # largest VmHWM (the kernel's own peak RSS, so spikes between samples count)
    max_rss: int = 0  # largest VmRSS sampled
    samples: int = 0


def _read_status(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) in bytes, or None if the process is gone or a zombie (no Vm* lines)."""
    rss = hwm = None
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith(b"VmHWM:"):
                    hwm = int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    if rss is None or hwm is None:
        return None
    return rss, hwm


class MemorySampler:
    """One daemon thread sampling VmRSS/VmHWM of every registered PID every SAMPLE_INTERVAL."""

    def __init__(self, interval: float = SAMPLE_INTERVAL) -> None:
        self._interval = interval
        # Held while /proc is read and while a PID is unregistered; see the module docstring.
        self._lock = threading.Lock()
        self._watched: dict[int, Memory] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def watch(self, pid: int) -> Memory:
        memory = Memory()
        with self._lock:
            self._watched[pid] = memory
        self._sample(pid, memory)
        return memory

    def forget(self, pid: int) -> None:
        """Stop sampling `pid`; after this returns the sampler never touches /proc/pid again."""
        with self._lock:
            self._watched.pop(pid, None)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self, pid: int, memory: Memory) -> None:
        with self._lock:
            if self._watched.get(pid) is not memory:
                return
            values = _read_status(pid)
        if values is None:
            return
        rss, hwm = values
        memory.max_rss = max(memory.max_rss, rss)
        memory.peak_hwm = max(memory.peak_hwm, hwm)
        memory.samples += 1

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            with self._lock:
                watched = list(self._watched.items())
            for pid, memory in watched:
                self._sample(pid, memory)


@dataclass
class Exit:
    """How a child ended: exit status (negative = signal), time, and its rusage."""

    at: float
    returncode: int
    maxrss: int  # bytes (ru_maxrss is KiB on Linux)
    user_seconds: float
    system_seconds: float
    minor_faults: int  # each is a fresh page touched: a hint of how much memory is churned

    @property
    def cpu_seconds(self) -> float:
        return self.user_seconds + self.system_seconds


@dataclass
class Proc:
    """A started child process with its output, memory samples and (eventually) its exit."""

    name: str
    popen: subprocess.Popen[bytes]
    started: float
    memory: Memory
    lines: list[Line] = field(default_factory=list)
    exit: Exit | None = None
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _threads: list[threading.Thread] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def peak_rss(self) -> int:
        """Peak resident memory in bytes: the larger of VmHWM seen and ru_maxrss at exit."""
        return max(self.memory.peak_hwm, self.exit.maxrss if self.exit else 0)

    def wait_line(self, match: Callable[[Line], bool], timeout: float) -> Line:
        """The first output line (already read or still to come) that `match` accepts."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    if match(line):
                        return line
                seen = len(self.lines)
                if self.exit is not None and self._readers_done():
                    raise BenchError(
                        f"{self.name} exited ({self.exit.returncode}) early.\n{self.tail()}"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise BenchError(
                        f"{self.name}: expected output not seen in {timeout:.0f} s.\n{self.tail()}"
                    )
                self._changed.wait(min(remaining, 0.5))

    def wait_exit(self, timeout: float) -> Exit:
        """Wait for the child to end (and its output to be read); BenchError after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.exit is None or not self._readers_done():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise BenchError(
                        f"{self.name} did not finish within {timeout:.0f} s.\n{self.tail()}"
                    )
                self._changed.wait(min(remaining, 0.5))
            return self.exit

    def stop(self, grace: float = STOP_GRACE) -> Exit | None:
        """SIGTERM, then SIGKILL after `grace` seconds; returns the exit (None if unkillable)."""
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
            if self.exit is not None:
                break
            # os.kill, not Popen.send_signal: that calls poll(), which could reap the child and
            # lose its rusage. The PID cannot be reused here: only our waiter thread reaps it.
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)
            with contextlib.suppress(BenchError):
                self.wait_exit(wait)
        if self.exit is not None:
            # Only once reaped: the reader threads have hit EOF, so nothing is mid-read.
            for stream in (self.popen.stdout, self.popen.stderr):
                if stream is not None:
                    stream.close()
        return self.exit

    def tail(self, count: int = 15) -> str:
        """The last output lines, for error messages."""
        shown = [f"  [{line.stream}] {line.text}" for line in self.lines[-count:]]
        return "\n".join(shown) if shown else "  (no output)"

    def _readers_done(self) -> bool:
        return not any(t.is_alive() for t in self._threads if t.name.startswith("read"))

    def _read(self, stream_name: str) -> None:
        stream = getattr(self.popen, stream_name)
        for raw in stream:
            line = Line(time.monotonic(), stream_name, raw.decode("utf-8", "replace").rstrip("\n"))
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def _wait(self, sampler: MemorySampler) -> None:
        # Block until the child is a zombie without reaping it (see the module docstring).
        try:
            os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT)
            at = time.monotonic()
            sampler.forget(self.pid)
            _, status, usage = os.wait4(self.pid, 0)
        except ChildProcessError:
            # Reaped elsewhere (not by this module); record an unknown exit rather than hang.
            sampler.forget(self.pid)
            with self._changed:
                self.exit = Exit(time.monotonic(), -1, 0, 0.0, 0.0, 0)
                self._changed.notify_all()
            return
        returncode = os.waitstatus_to_exitcode(status)
        # Keep Popen consistent so its own bookkeeping never waits on (or signals) this PID.
        self.popen.returncode = returncode
        with self._changed:
            self.exit = Exit(
                at,
                returncode,
                usage.ru_maxrss * 1024,
                usage.ru_utime,
                usage.ru_stime,
                usage.ru_minflt,
            )
            self._changed.notify_all()


def start(
    name: str,
    argv: Sequence[str | os.PathLike[str]],
    sampler: MemorySampler,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Proc:
    """Start `argv` with stdin closed and both output streams read line by line."""
    started = time.monotonic()
    try:
        popen = subprocess.Popen(
            [os.fspath(a) for a in argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env) if env is not None else None,
            cwd=cwd,
        )
    except OSError as exc:
        raise BenchError(f"Cannot start {name} ({argv[0]}): {exc}") from exc
    proc = Proc(name, popen, started, sampler.watch(popen.pid))
    proc._threads = [
        threading.Thread(target=proc._read, args=("stdout",), name=f"read-{name}-out", daemon=True),
        threading.Thread(target=proc._read, args=("stderr",), name=f"read-{name}-err", daemon=True),
        threading.Thread(target=proc._wait, args=(sampler,), name=f"wait-{name}", daemon=True),
    ]
    for thread in proc._threads:
        thread.start()
    return proc


class ProcessGroup:
    """Every process of one measurement; leaving the `with` block stops them all, in reverse."""

    def __init__(self, sampler: MemorySampler) -> None:
        self.sampler = sampler
        self.procs: list[Proc] = []

    def start(
        self,
        name: str,
        argv: Sequence[str | os.PathLike[str]],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Proc:
        proc = start(name, argv, self.sampler, env=env, cwd=cwd)
        self.procs.append(proc)
        return proc

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(self, *exc_info: object) -> None:
        # Runs on success, on errors and on KeyboardInterrupt alike: no child outlives the run.
        for proc in reversed(self.procs):
            proc.stop()
