"""Hushdrop load benchmark: many concurrent transfers, and many idle rooms, on one relay.

One real relay process (`python -m hushdrop_relay`) serves the whole run, with its per-address
limits lifted because every client here is 127.0.0.1. The run has three phases:

1. idle rooms: `--idle-rooms` WebSocket connections each create a room and wait. The relay's
   resident memory is read before, while they are held, and after they are closed.
2. single transfer: one transfer of `--size` at a time (`--single-runs` of them, median), for
   the reference MiB/s.
3. load: `--transfers` concurrent transfers of as many distinct random files, spread over
   `--workers` client processes that each run their share at once under asyncio.

Transfers run the CLI's own coroutines, `hushdrop.cli.send.send` and
`hushdrop.cli.receive.receive`, inside the worker processes, so the clients pay no interpreter
start-up and a few processes can drive hundreds of transfers. Phases 2 and 3 use the same worker
code, so their MiB/s compare like for like. Every received file is checked by this process
against its own sender's file (name and SHA-256), so data that reached the wrong receiver counts
as a failure; the run exits 1 unless every transfer verified. Timings are printed, never
asserted on (the machines are shared; see bench/README.md).

    .venv/bin/python bench/load.py [--transfers 200] [--size 16MiB] [--workers 2] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# Run as a script (`python bench/load.py`), so bench/ is on sys.path and these import.
from _procs import BenchError, MemorySampler, Proc, ProcessGroup
from transfer import (
    MB,
    RELAY_BANNER,
    STARTUP_TIMEOUT,
    MiB,
    check_environment,
    human,
    hushdrop_env,
    log,
    machine,
    make_source,
    parse_size,
    settle_disk,
    sha256_file,
)

RATIO_GOAL = 0.70  # aggregate MiB/s under load at least this share of a single transfer's
DISK_FACTOR = 2.2  # every source + every received copy + headroom

WORKERS = 4  # default client processes for the load; the single transfers use one
GO = signal.SIGUSR1  # tells a ready worker to start its transfers, or to let its rooms go
WORKER_FDS = 64  # descriptors a process needs besides its connections (stdio, files, imports)
SAMPLE_INTERVAL = 0.05  # seconds between samples of the relay's VmRSS
IDLE_SETTLE = 2.0  # seconds between the last room opening and reading the relay's RSS
OPEN_CONCURRENCY = 100  # idle rooms opened at once, so the relay's open timeout is never at risk
# What the CLI's --json reporter prints in every transfer; anything else is counted and shown.
ROUTINE_EVENTS = frozenset(("code", "status", "verification", "offer", "progress", "file", "done"))


# --------------------------------------------------------------------------- worker side
#
# A worker is this file run as `load.py --worker JOB.json`. It prints one JSON object per line:
# "ready" (after importing and installing its GO handler), then a "transfer" per transfer or
# one "holding" for idle rooms, then "finished". The bench reads them through _procs.Proc.


def emit(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def signalled(sig: signal.Signals) -> asyncio.Event:
    """An event set when `sig` arrives; installed before the worker says it is ready."""
    event = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(sig, event.set)
    return event


def no_password() -> str:
    raise RuntimeError("the benchmark's transfers have no password")


async def one_transfer(job: dict[str, Any], relay: str, timeout: float) -> dict[str, Any]:
    """Send job["source"] and receive it into job["out"] in this process; times are monotonic."""
    from hushdrop.cli.output import Reporter
    from hushdrop.cli.receive import receive
    from hushdrop.cli.send import send
    from hushdrop.protocol.codes import parse_code

    class CodeReporter(Reporter):
        """The CLI's --json reporter writing into memory; hands the sender's code over."""

        def __init__(self) -> None:
            self.lines = io.StringIO()
            super().__init__(json_mode=True, out=self.lines, err=io.StringIO())
            self.typed: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def unusual(self) -> Counter[str]:
            """Events a plain transfer does not print (reconnects, errors), by name."""
            names = (json.loads(line)["event"] for line in self.lines.getvalue().splitlines())
            return Counter(name for name in names if name not in ROUTINE_EVENTS)

        def code(self, code: str, *args: Any, **kwargs: Any) -> None:
            super().code(code, *args, **kwargs)
            if not self.typed.done():
                self.typed.set_result(code)

    result: dict[str, Any] = {"index": job["index"], "started": time.monotonic()}
    to_sender, to_receiver = CodeReporter(), CodeReporter()
    sending = asyncio.create_task(
        send(paths=[job["source"]], relay=relay, password="", ttl=None, reporter=to_sender)
    )
    try:
        async with asyncio.timeout(timeout):
            await asyncio.wait({sending, to_sender.typed}, return_when=asyncio.FIRST_COMPLETED)
            if not to_sender.typed.done():
                await sending  # raises why the sender stopped
                raise RuntimeError("the sender finished without showing a code")
            result["code_at"] = time.monotonic()
            # Through the parser, as if typed: the receiver holds only what a user would.
            code = parse_code(to_sender.typed.result())
            await receive(
                code=code,
                relay=relay,
                output=Path(job["out"]),
                password=None,
                ask_password=no_password,
                ask_accept=None,
                overwrite=False,
                reporter=to_receiver,
            )
            await sending
    except Exception as exc:
        result["error"] = describe(exc)
    finally:
        sending.cancel()
        (outcome,) = await asyncio.gather(sending, return_exceptions=True)
    # The receiver's error often just says the sender went away; the sender's says why.
    if isinstance(outcome, Exception) and describe(outcome) != result.get("error"):
        result["sender_error"] = describe(outcome)
    result["ended"] = time.monotonic()
    events = {f"sender {k}": v for k, v in to_sender.unusual().items()}
    events.update({f"receiver {k}": v for k, v in to_receiver.unusual().items()})
    if events:
        result["events"] = events
    return result


async def transfers_worker(job: dict[str, Any]) -> None:
    go = await signalled(GO)
    emit("ready")
    await go.wait()
    cpu = time.process_time()

    async def run(item: dict[str, Any]) -> None:
        emit("transfer", **await one_transfer(item, job["relay"], job["timeout"]))

    await asyncio.gather(*(run(item) for item in job["transfers"]))
    # Only the transfers' CPU time: start-up and imports are over before GO.
    emit("finished", cpu_seconds=round(time.process_time() - cpu, 2))


async def idle_worker(job: dict[str, Any]) -> None:
    """Open job["rooms"] rooms, each on its own connection, and hold them until GO."""
    from hushdrop.transport.relay_client import RelayConnection

    release = await signalled(GO)
    emit("ready")
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)
    connections: list[RelayConnection] = []
    errors: Counter[str] = Counter()

    async def open_room() -> None:
        async with gate:
            try:
                connection = await RelayConnection.open(job["relay"])
            except Exception as exc:
                errors[describe(exc)] += 1
                return
            connections.append(connection)
            try:
                await connection.create_room()
            except Exception as exc:
                errors[describe(exc)] += 1

    started = time.monotonic()
    await asyncio.gather(*(open_room() for _ in range(job["rooms"])))
    emit(
        "holding",
        rooms=job["rooms"] - sum(errors.values()),
        seconds=round(time.monotonic() - started, 3),
        errors=dict(errors),
    )
    await release.wait()
    await asyncio.gather(*(c.close() for c in connections), return_exceptions=True)
    emit("finished")


def worker_main(job_file: Path) -> int:
    from hushdrop.cli.allocator import tune_allocator

    tune_allocator()  # as `hushdrop send/receive` do
    raise_open_files(0)
    job = json.loads(job_file.read_text())
    asyncio.run(transfers_worker(job) if job["mode"] == "transfers" else idle_worker(job))
    return 0


# --------------------------------------------------------------------------- bench side


def raise_open_files(needed: int) -> None:
    """Soft RLIMIT_NOFILE up to the hard limit (children inherit it); fail if still too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, needed, 65536)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    if soft < needed:
        raise BenchError(
            f"The open-file limit is {soft}; this run needs about {needed}. "
            "Raise it (`ulimit -n`) or use fewer --idle-rooms/--transfers."
        )


def read_rss(pid: int) -> int:
    """VmRSS of `pid` in bytes, 0 if it is gone."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status", "rb") as status:
        for line in status:
            if line.startswith(b"VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def read_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` so far, from /proc/PID/stat."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # Fields after the parenthesised command name; utime and stime are fields 14 and 15.
            fields = stat.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


@dataclass
class Phase:
    """The relay during one phase of the run: largest VmRSS sampled and CPU time used."""

    name: str
    seconds: float = 0.0
    rss_start: int = 0
    rss_max: int = 0
    rss_end: int = 0
    cpu_seconds: float = 0.0


class RelayWatch:
    """Samples the relay's VmRSS every SAMPLE_INTERVAL and charges it to the current phase.

    _procs.MemorySampler gives the peak over the relay's whole life; the phases need their own
    maxima (the idle rooms and the load must not hide each other).
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.phases: dict[str, Phase] = {}
        self._current: Phase | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="relay-watch", daemon=True)
        self._thread.start()

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[Phase]:
        phase = Phase(name, rss_start=read_rss(self.pid))
        phase.rss_max = phase.rss_start
        cpu, started = read_cpu_seconds(self.pid), time.monotonic()
        self.phases[name] = self._current = phase
        try:
            yield phase
        finally:
            self._current = None
            phase.rss_end = read_rss(self.pid)
            phase.rss_max = max(phase.rss_max, phase.rss_end)
            phase.cpu_seconds = round(read_cpu_seconds(self.pid) - cpu, 2)
            phase.seconds = round(time.monotonic() - started, 3)

    def close(self) -> None:
        """Stop sampling; called before the relay is stopped, so its PID is never reused here."""
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL):
            phase = self._current
            if phase is not None:
                phase.rss_max = max(phase.rss_max, read_rss(self.pid))


@dataclass
class Transfer:
    """One transfer as planned by the bench and as reported by its worker."""

    index: int
    source: Path
    sha256: str
    out: Path
    started: float = 0.0
    ended: float = 0.0
    code_seconds: float | None = None  # from start to the sender's code: the rendezvous
    events: dict[str, int] = field(default_factory=dict)  # reporter events beyond the routine
    error: str | None = None
    verified: bool = False

    @property
    def seconds(self) -> float:
        return self.ended - self.started


@dataclass
class Run:
    """What every phase shares."""

    work: Path
    relay_url: str
    size: int
    timeout: float
    group: ProcessGroup
    env: dict[str, str]
    workers: list[dict[str, Any]] = field(default_factory=list)  # per worker process: CPU, RSS


def start_relay(group: ProcessGroup, max_rooms: int, env: dict[str, str]) -> tuple[Proc, str]:
    relay = group.start(
        "hushdrop relay",
        [
            sys.executable,
            "-m",
            "hushdrop_relay",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            # Every client of this run is 127.0.0.1: the per-address limits would stop it.
            "--max-connections-per-ip",
            "0",
            "--max-waiting-rooms-per-ip",
            "0",
            "--rooms-per-ip-per-minute",
            "0",
            "--max-rooms",
            str(max_rooms),
            "--log-format",
            "json",
        ],
        env=env,
    )
    banner = relay.wait_line(lambda line: line.text.startswith(RELAY_BANNER), STARTUP_TIMEOUT)
    return relay, banner.text.removeprefix(RELAY_BANNER).strip()


def start_worker(run: Run, name: str, job: dict[str, Any]) -> Proc:
    job_file = run.work / f"job-{len(run.group.procs)}.json"
    job_file.write_text(json.dumps(job))
    proc = run.group.start(
        name,
        [sys.executable, str(Path(__file__).resolve()), "--worker", str(job_file)],
        env=run.env,
    )
    proc.wait_line(lambda line: worker_event(line.text) == "ready", STARTUP_TIMEOUT)
    return proc


def worker_event(text: str) -> str | None:
    if not text.startswith("{"):
        return None
    try:
        return json.loads(text).get("event")
    except ValueError:
        return None


def worker_events(proc: Proc, name: str) -> list[dict[str, Any]]:
    return [
        json.loads(line.text)
        for line in proc.lines
        if line.stream == "stdout" and worker_event(line.text) == name
    ]


def finish_worker(run: Run, proc: Proc, timeout: float) -> None:
    """Wait for a worker's exit and keep its CPU and peak RSS for the report."""
    result = proc.wait_exit(timeout)
    if result.returncode != 0:
        raise BenchError(f"{proc.name} failed with exit status {result.returncode}.\n{proc.tail()}")
    finished = worker_events(proc, "finished") or [{}]
    run.workers.append(
        {
            "name": proc.name,
            "peak_rss_mb": round(proc.peak_rss / MB, 1),
            # Of the transfers alone when the worker measured it; else of the whole process.
            "cpu_seconds": finished[0].get("cpu_seconds", round(result.cpu_seconds, 2)),
            "process_cpu_seconds": round(result.cpu_seconds, 2),
            "process_system_seconds": round(result.system_seconds, 2),
            "minor_faults": result.minor_faults,
        }
    )


def run_transfers(run: Run, transfers: list[Transfer], workers: int) -> None:
    """All `transfers` at once over `workers` processes; fills in each one's times and error."""
    shares = [transfers[w::workers] for w in range(workers)]
    procs = []
    for number, share in enumerate(s for s in shares if s):
        job = {
            "mode": "transfers",
            "relay": run.relay_url,
            "timeout": run.timeout,
            "transfers": [
                {"index": t.index, "source": str(t.source), "out": str(t.out)} for t in share
            ],
        }
        procs.append(start_worker(run, f"worker {number + 1} ({len(share)} transfers)", job))
    # Every worker has imported everything and waits: the transfers start together.
    for proc in procs:
        os.kill(proc.pid, GO)
    by_index = {t.index: t for t in transfers}
    for proc in procs:
        finish_worker(run, proc, run.timeout + STARTUP_TIMEOUT)
        for event in worker_events(proc, "transfer"):
            t = by_index[event["index"]]
            t.started, t.ended, t.error = event["started"], event["ended"], event.get("error")
            if "sender_error" in event:
                t.error = f"{t.error or 'received'}; the sender failed: {event['sender_error']}"
            t.events = event.get("events", {})
            if "code_at" in event:
                t.code_seconds = round(event["code_at"] - event["started"], 3)
    for t in transfers:
        if not t.ended and t.error is None:
            t.error = "its worker never reported it"


def verify(transfers: list[Transfer]) -> None:
    """Each output directory must hold exactly its own sender's file, byte for byte."""
    for t in transfers:
        if t.error is not None:
            continue
        found = sorted(p.name for p in t.out.iterdir()) if t.out.is_dir() else []
        if found != [t.source.name]:
            t.error = f"expected only {t.source.name} in {t.out}, found {found or 'nothing'}"
        elif sha256_file(t.out / t.source.name) != t.sha256:
            t.error = "the received file differs from its sender's (SHA-256 mismatch)"
        else:
            t.verified = True
        for path in t.out.iterdir() if t.out.is_dir() else []:
            path.unlink()


def run_idle_rooms(run: Run, watch: RelayWatch, rooms: int, hold: float) -> dict[str, Any]:
    with watch.phase("idle rooms") as phase:
        job = {"mode": "idle", "relay": run.relay_url, "rooms": rooms}
        proc = start_worker(run, f"idle rooms ({rooms})", job)
        holding = json.loads(
            proc.wait_line(lambda line: worker_event(line.text) == "holding", run.timeout).text
        )
        time.sleep(max(hold, IDLE_SETTLE))
        held_rss = read_rss(watch.pid)
        metrics = scrape_metrics(run.relay_url)
        os.kill(proc.pid, GO)
        finish_worker(run, proc, STARTUP_TIMEOUT)
    time.sleep(IDLE_SETTLE)  # let the relay finish closing them before reading RSS again
    after_close = read_rss(watch.pid)
    held = holding["rooms"]
    return {
        "rooms": rooms,
        "held": held,
        "open_seconds": holding["seconds"],
        "open_errors": holding["errors"],
        "relay_rooms_waiting": metrics.get('rooms_open{state="waiting"}'),
        "rss_before_mb": round(phase.rss_start / MB, 1),
        "rss_held_mb": round(held_rss / MB, 1),
        "rss_max_mb": round(phase.rss_max / MB, 1),
        "rss_after_close_mb": round(after_close / MB, 1),
        "kb_per_room": round((held_rss - phase.rss_start) / 1000 / held, 1) if held else None,
    }


def scrape_metrics(relay_url: str) -> dict[str, float]:
    """The relay's /metrics as {'name{labels}': value}, without the common prefix."""
    with urllib.request.urlopen(f"{relay_url}/metrics", timeout=10) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name.removeprefix("hushdrop_relay_")] = float(value)
    return samples


def relay_log_summary(relay: Proc) -> dict[str, int]:
    """Counts of the relay's log records that are not routine: level WARNING and up, refusals,
    and rooms that did not end with both peers closing normally or their creator leaving."""
    counts: Counter[str] = Counter()
    for line in relay.lines:
        if line.stream != "stderr":
            continue
        try:
            record = json.loads(line.text)
        except ValueError:
            counts[f"unparsed: {line.text[:80]}"] += 1
            continue
        name, level = record.get("event", ""), record.get("level", "")
        reason = record.get("reason") or record.get("limit")
        if level not in ("DEBUG", "INFO"):
            counts[f"{level} {name}" + (f" ({reason})" if reason else "")] += 1
        elif name in ("connection refused", "join refused", "limit reached"):
            counts[f"{name} ({reason})"] += 1
        elif name == "room closed" and (
            reason not in ("peer-gone", "creator-left") or record.get("closed_normally") is False
        ):
            unfinished = ", not closed normally" if record.get("closed_normally") is False else ""
            counts[f"room closed ({reason}{unfinished})"] += 1
    return dict(counts)


def rates(transfers: list[Transfer], size: int) -> dict[str, Any]:
    done = [t for t in transfers if t.verified]
    if not done:
        return {"verified": 0}
    first, last = min(t.started for t in done), max(t.ended for t in done)
    each = [size / MiB / t.seconds for t in done]
    codes = [t.code_seconds for t in done if t.code_seconds is not None]
    return {
        "verified": len(done),
        "seconds": round(last - first, 3),
        "aggregate_mib_s": round(len(done) * size / MiB / (last - first), 1),
        "each_mib_s_median": round(statistics.median(each), 2),
        "each_mib_s_min": round(min(each), 2),
        "each_mib_s_max": round(max(each), 2),
        "code_seconds_median": round(statistics.median(codes), 3) if codes else None,
        "code_seconds_max": round(max(codes), 3) if codes else None,
    }


def bench(args: argparse.Namespace) -> dict[str, Any]:
    check_environment()
    # Relay: every idle room or peer is a socket. Idle-room worker: the same from its side.
    raise_open_files(max(args.idle_rooms, 2 * args.transfers) + WORKER_FDS)
    env = hushdrop_env({})
    load_before = round(os.getloadavg()[0], 2)
    timeout = args.timeout or max(300.0, args.transfers * args.size / MiB / 10)
    sampler = MemorySampler()
    try:
        with workspace(args.tmpdir, args.size, args.transfers) as work:
            log(f"Writing {args.transfers} files of {human(args.size)} of random data to {work}…")
            transfers = []
            for index in range(args.transfers):
                source = work / "sources" / f"payload-{index:04d}.bin"
                out = work / "received" / f"{index:04d}"
                out.mkdir(parents=True)
                source.parent.mkdir(exist_ok=True)
                transfers.append(Transfer(index, source, make_source(source, args.size), out))
            settle_disk()
            with ProcessGroup(sampler) as group:
                max_rooms = args.idle_rooms + args.transfers + 16
                relay, url = start_relay(group, max_rooms, env)
                run = Run(work, url, args.size, timeout, group, env)
                watch = RelayWatch(relay.pid)
                try:
                    report = measure(args, run, watch, transfers)
                    report["relay_phases"] = {k: asdict(v) for k, v in watch.phases.items()}
                    report["relay_metrics"] = {
                        k: v for k, v in scrape_metrics(url).items() if v and "_total" in k
                    }
                finally:
                    watch.close()
                relay.stop()
                report["relay_peak_rss_mb"] = round(relay.peak_rss / MB, 1)
                report["relay_log"] = relay_log_summary(relay)
    finally:
        sampler.close()
    report["machine"] = {**machine(), "load_before": load_before}
    return report


def measure(
    args: argparse.Namespace, run: Run, watch: RelayWatch, transfers: list[Transfer]
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "transfers": args.transfers,
        "size_bytes": args.size,
        "workers": args.workers,
        "relay_start_rss_mb": round(read_rss(watch.pid) / MB, 1),
    }
    if args.idle_rooms:
        log(f"Holding {args.idle_rooms} idle rooms…")
        report["idle"] = run_idle_rooms(run, watch, args.idle_rooms, args.idle_seconds)

    single: list[dict[str, Any]] = []
    with watch.phase("single"):
        for number in range(args.single_runs):
            # Transfer 0's file, received into its own directory: the same size and driver.
            t = Transfer(-1 - number, transfers[0].source, transfers[0].sha256, run.work / "single")
            t.out.mkdir(exist_ok=True)
            run_transfers(run, [t], 1)
            verify([t])
            if not t.verified:
                raise BenchError(f"The single transfer failed: {t.error}")
            seconds = round(t.seconds, 3)
            single.append({"seconds": seconds, "mib_s": round(run.size / MiB / seconds, 1)})
            if t.events:
                single[-1]["client_events"] = t.events
            log(f"single transfer {number + 1}/{args.single_runs}: {single[-1]['mib_s']} MiB/s")
            settle_disk()
    single_rates = [s["mib_s"] for s in single]
    report["single"] = {
        "runs": single,
        "mib_s": round(statistics.median(single_rates), 1),
        "mib_s_range": [min(single_rates), max(single_rates)],
    }

    log(f"Running {args.transfers} transfers at once over {args.workers} worker processes…")
    run.workers.clear()
    with watch.phase("load") as load_phase:
        run_transfers(run, transfers, args.workers)
    verify(transfers)
    time.sleep(IDLE_SETTLE)
    load = rates(transfers, run.size)
    failed = [t for t in transfers if not t.verified]
    load["failed"] = [{"index": t.index, "error": t.error} for t in failed]
    load["client_events"] = dict(sum((Counter(t.events) for t in transfers), Counter()))
    load["workers"] = run.workers
    load["relay_rss_max_mb"] = round(load_phase.rss_max / MB, 1)
    load["relay_rss_before_mb"] = round(load_phase.rss_start / MB, 1)
    load["relay_rss_after_mb"] = round(read_rss(watch.pid) / MB, 1)
    load["relay_cpu_seconds"] = load_phase.cpu_seconds
    report["load"] = load
    if load["verified"]:
        ratio = load["aggregate_mib_s"] / report["single"]["mib_s"]
        report["ratio"] = round(ratio, 2)
        report["goal"] = {"ratio_at_least": RATIO_GOAL, "met": ratio >= RATIO_GOAL}
    return report


@contextlib.contextmanager
def workspace(tmpdir: Path, size: int, transfers: int) -> Iterator[Path]:
    tmpdir.mkdir(parents=True, exist_ok=True)
    needed = int(DISK_FACTOR * size * transfers)
    free = shutil.disk_usage(tmpdir).free
    if free < needed:
        raise BenchError(
            f"{tmpdir} has {human(free)} free; this run needs about {human(needed)}. "
            "Use --tmpdir, a smaller --size or fewer --transfers."
        )
    work = Path(tempfile.mkdtemp(prefix="hushdrop-load-", dir=tmpdir))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------- report


def print_table(report: dict[str, Any]) -> None:
    m, single, load = report["machine"], report["single"], report["load"]
    print(
        f"{report['transfers']} transfers of {human(report['size_bytes'])}, "
        f"{report['workers']} worker processes; {m['cpus']} CPUs ({m['cpu_model'] or 'unknown'}), "
        f"Python {m['python']}, load {m['load_before']} → {m['load_after']}"
    )
    print(f"{'':<30}{'MiB/s':>8}")
    low, high = single["mib_s_range"]
    runs = len(single["runs"])
    print(
        f"{'single transfer':<30}{single['mib_s']:>8.1f}   median of {runs} [{low:.0f}-{high:.0f}]"
    )
    if load["verified"]:
        total = human(load["verified"] * report["size_bytes"])
        print(
            f"{'aggregate, ' + str(report['transfers']) + ' at once':<30}"
            f"{load['aggregate_mib_s']:>8.1f}   {total} in {load['seconds']:.1f} s"
        )
        print(
            f"{'each transfer under load':<30}{load['each_mib_s_median']:>8.2f}   median "
            f"[min {load['each_mib_s_min']:.2f}, max {load['each_mib_s_max']:.2f}]; code after "
            f"{load['code_seconds_median']:.2f} s median, {load['code_seconds_max']:.2f} s max"
        )
        verdict = "met" if report["goal"]["met"] else "NOT met"
        print(
            f"{'ratio aggregate/single':<30}{report['ratio']:>8.2f}   "
            f"goal >= {RATIO_GOAL:.2f}: {verdict}"
        )
    print(
        f"verified {load['verified']}/{report['transfers']} transfers: each receiver holds "
        "exactly its own sender's file (SHA-256 equal)"
    )
    events = load.get("client_events")
    if events:
        print("  clients reported: " + ", ".join(f"{k} ×{v}" for k, v in events.items()))
    for failure in load["failed"][:10]:
        print(f"  FAILED transfer {failure['index']}: {failure['error']}")
    if len(load["failed"]) > 10:
        print(f"  … and {len(load['failed']) - 10} more failures")

    print(f"relay RSS MB: {report['relay_start_rss_mb']:.1f} at start")
    idle = report.get("idle")
    if idle:
        print(
            f"  {idle['held']}/{idle['rooms']} idle rooms: {idle['rss_held_mb']:.1f} "
            f"({idle['kb_per_room']} kB per room), {idle['rss_after_close_mb']:.1f} after "
            f"closing them; opened in {idle['open_seconds']:.1f} s"
        )
        for error, count in idle["open_errors"].items():
            print(f"  {count} rooms failed to open: {error}")
    added = (load["relay_rss_max_mb"] - load["relay_rss_before_mb"]) / report["transfers"]
    print(
        f"  load: {load['relay_rss_before_mb']:.1f} before, {load['relay_rss_max_mb']:.1f} "
        f"largest sampled ({added:.1f} more per transfer), {load['relay_rss_after_mb']:.1f} "
        f"after; whole-run peak (VmHWM) {report['relay_peak_rss_mb']:.1f}"
    )
    if load["verified"]:
        gib = load["verified"] * report["size_bytes"] / MiB / 1024
        workers = load["workers"]
        client_cpu = sum(w["cpu_seconds"] for w in workers)
        print(
            f"CPU seconds during load: relay {load['relay_cpu_seconds']:.1f} "
            f"({load['relay_cpu_seconds'] / gib:.1f} per GiB); workers "
            + " + ".join(f"{w['cpu_seconds']:.1f}" for w in workers)
            + f" ({client_cpu / gib:.1f} per GiB), peak RSS MB "
            + ", ".join(f"{w['peak_rss_mb']:.0f}" for w in workers)
        )
    metrics = report["relay_metrics"]
    errors = {k: v for k, v in metrics.items() if k.startswith(("errors", "limit"))}
    made = report["transfers"] + len(single["runs"])
    print(
        f"relay: {metrics.get('pairs_closed_normally_total', 0):.0f} pairs closed normally (this "
        f"run made {made} transfers); "
        + (", ".join(f"{k} {v:.0f}" for k, v in errors.items()) or "no errors in /metrics")
        + "; log: "
        + (", ".join(f"{k} ×{v}" for k, v in report["relay_log"].items()) or "nothing unusual")
    )


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Many concurrent Hushdrop transfers and many idle rooms through one relay."
    )
    parser.add_argument("--transfers", type=int, default=200, help="concurrent transfers")
    parser.add_argument(
        "--size", type=parse_size, default=parse_size("16MiB"), help="per transfer, e.g. 4MiB"
    )
    parser.add_argument(
        "--workers",
        type=int,
        # Not fewer on a small machine: a worker's event loop stops while a receiver fsyncs, and
        # clients took more CPU per GiB with 2 processes of 100 transfers (bench/README.md).
        default=WORKERS,
        help=f"client processes the transfers are spread over (default: {WORKERS})",
    )
    parser.add_argument(
        "--single-runs", type=int, default=5, help="single transfers for the reference (median)"
    )
    parser.add_argument(
        "--idle-rooms", type=int, default=1000, help="rooms held open at once; 0 skips that phase"
    )
    parser.add_argument(
        "--idle-seconds", type=float, default=5.0, help="how long the idle rooms are held"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    parser.add_argument("--tmpdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument(
        "--timeout", type=float, help="seconds for the load phase (default from size)"
    )
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("transfers", "workers", "single_runs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.idle_rooms < 0:
        parser.error("--idle-rooms must not be negative")
    return args


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker is not None:
        return worker_main(args.worker)
    # SIGTERM takes the same path as Ctrl-C: the finally blocks stop every child.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        report = bench(args)
    except BenchError as exc:
        log(f"bench: error: {exc}")
        return 1
    except KeyboardInterrupt:
        log("bench: interrupted; every process it started was stopped.")
        return 130
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print_table(report)
    if report["load"]["failed"] or report["load"]["verified"] != args.transfers:
        log(f"bench: {len(report['load']['failed'])} of {args.transfers} transfers FAILED.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
