"""Hushdrop throughput benchmark: one large file CLI → relay → CLI over loopback.

Measures, per transfer: wall-clock MiB/s from the receiver's start to its exit, the in-transfer
MiB/s the receiver itself reports, and the peak RSS of every process involved (plus the relay's
largest sampled RSS over the whole transfer). magic-wormhole, with its own mailbox server and
transit relay on loopback, is measured the same way in the same run as the baseline; it lives in
its own virtualenv (bench/.venv-wormhole, created on first use from requirements-wormhole.txt)
so it never touches the project's environment.

It prints numbers and ratios and never asserts on them: the machines are shared and small, so a
timing threshold here would only make a flaky check. See bench/README.md.

    .venv/bin/python bench/transfer.py [--size 256MiB] [--runs 3] [--skip-wormhole] [--json]
        [--direct] [--wormhole-direct]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import pstats
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# Run as a script (`python bench/transfer.py`), so bench/ is on sys.path and _procs imports.
from _procs import BenchError, Line, MemorySampler, Proc, ProcessGroup

BENCH_DIR = Path(__file__).resolve().parent
WORMHOLE_VENV = BENCH_DIR / ".venv-wormhole"
WORMHOLE_REQUIREMENTS = BENCH_DIR / "requirements-wormhole.txt"

MiB = 1024 * 1024
MB = 1000 * 1000  # RSS is reported in decimal MB, the unit of the relay goal
BLOCK = MiB  # source file is written in 1 MiB blocks of os.urandom
DISK_FACTOR = 3  # source + one received copy + headroom

SPEED_GOAL = 2.0  # Hushdrop wall MiB/s at least this many times magic-wormhole's
RELAY_RSS_GOAL_MB = 64

STARTUP_TIMEOUT = 60.0  # a server or sender must be ready (banner, code) within this
RELAY_BANNER = "Hushdrop relay listening on "

HUSHDROP_ROLES = ("sender", "relay", "receiver")
WORMHOLE_ROLES = ("sender", "mailbox", "transit", "receiver")


@dataclass
class ProcStats:
    """One process of one transfer. Memory in bytes, times in seconds."""

    peak_rss: int  # VmHWM / ru_maxrss: the kernel's own peak, spikes between samples included
    max_rss: int  # largest VmRSS the sampler saw while the process ran
    user_seconds: float
    system_seconds: float
    minor_faults: int

    @classmethod
    def of(cls, proc: Proc) -> ProcStats:
        end = proc.exit
        if end is None:
            return cls(proc.peak_rss, proc.memory.max_rss, 0.0, 0.0, 0)
        return cls(
            proc.peak_rss,
            proc.memory.max_rss,
            round(end.user_seconds, 3),
            round(end.system_seconds, 3),
            end.minor_faults,
        )

    @property
    def cpu_seconds(self) -> float:
        return self.user_seconds + self.system_seconds


@dataclass
class Measurement:
    """One transfer of one tool. Sizes in bytes, times in seconds."""

    tool: str
    run: int
    size: int
    wall_seconds: float
    transfer_seconds: float
    procs: dict[str, ProcStats]  # by role: sender, relay, receiver, …
    path: str = ""  # for wormhole: "relay" or "direct", as its receiver reported
    profiles: dict[str, str] = field(default_factory=dict)

    @property
    def wall_mib_s(self) -> float:
        return self.size / MiB / self.wall_seconds

    @property
    def transfer_mib_s(self) -> float:
        return self.size / MiB / self.transfer_seconds


@dataclass
class Context:
    """What every run shares."""

    work: Path
    source: Path
    source_sha256: str
    size: int
    timeout: float
    sampler: MemorySampler
    extra_env: dict[str, str] = field(default_factory=dict)  # --env, Hushdrop processes only


# --------------------------------------------------------------------------- setup


def parse_size(text: str) -> int:
    """'1GiB', '256MiB', '512M', '1.5G', '1000000' → bytes (K/M/G are binary units)."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 1GiB or 256MiB)")
    number, unit = match.groups()
    factor = 1024 ** ("KMGT".index(unit.upper()) + 1) if unit else 1
    size = int(float(number) * factor)
    if size <= 0:
        raise argparse.ArgumentTypeError("the size must be positive")
    return size


def human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.2f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def log(message: str) -> None:
    """Progress goes to stderr so that --json leaves stdout with exactly one object."""
    print(message, file=sys.stderr, flush=True)


def make_source(path: Path, size: int) -> str:
    """Write `size` random bytes to `path`; return their SHA-256 (computed while writing)."""
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        left = size
        while left:
            block = os.urandom(min(BLOCK, left))
            digest.update(block)
            out.write(block)
            left -= len(block)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(4 * MiB):
            digest.update(block)
    return digest.hexdigest()


def settle_disk() -> None:
    """Flush dirty pages between (untimed) steps.

    Without it, writeback of the source file or of the previous run's received copy lands in the
    middle of the next timed transfer, and Hushdrop's final fsync would pay for it.
    """
    os.sync()


def verify_and_remove(received: Path, ctx: Context, tool: str) -> None:
    """The received copy must equal the source byte for byte; then free its disk space."""
    if not received.is_file():
        raise BenchError(f"{tool}: the received file {received} does not exist.")
    if received.stat().st_size != ctx.size or sha256_file(received) != ctx.source_sha256:
        raise BenchError(f"{tool}: {received} differs from the source (SHA-256 mismatch).")
    received.unlink()
    settle_disk()


def free_port() -> int:
    """A currently free loopback port, for servers that cannot report the port they bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: Proc, timeout: float = STARTUP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        if proc.exit is not None:
            raise BenchError(f"{proc.name} exited ({proc.exit.returncode}).\n{proc.tail()}")
        if time.monotonic() > deadline:
            raise BenchError(f"{proc.name} is not listening on port {port}.\n{proc.tail()}")
        time.sleep(0.05)


def check_exit(proc: Proc, timeout: float) -> None:
    result = proc.wait_exit(timeout)
    if result.returncode != 0:
        raise BenchError(f"{proc.name} failed with exit status {result.returncode}.\n{proc.tail()}")


# --------------------------------------------------------------------------- Hushdrop


def hushdrop_env(extra: dict[str, str]) -> dict[str, str]:
    # Drop the user's HUSHDROP_* settings (relay, password, code): the run passes its own.
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUSHDROP_")}
    return {**env, **extra}


def python_module(module: str, profile: Path | None) -> list[str]:
    if profile is None:
        return [sys.executable, "-m", module]
    return [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", module]


def hushdrop_cli(profile: Path | None) -> list[str]:
    """The `hushdrop` console script next to this interpreter (what users run), if present."""
    script = Path(sys.executable).with_name("hushdrop")
    if profile is None and script.exists():
        return [str(script)]
    return python_module("hushdrop.cli.main", profile)


def json_event(name: str) -> Callable[[Line], bool]:
    def match(line: Line) -> bool:
        if line.stream != "stdout" or not line.text.startswith("{"):
            return False
        try:
            return json.loads(line.text).get("event") == name
        except ValueError:
            return False

    return match


def run_hushdrop(
    ctx: Context, run: int, profile_dir: Path | None = None, *, direct: bool = False
) -> Measurement:
    """One transfer through the relay (`--no-direct` on both CLIs), or with `direct` as users
    run it: the CLIs connect to each other over this host's own addresses (PROTOCOL.md §8.5)."""
    tool = "hushdrop-direct" if direct else "hushdrop"
    route = [] if direct else ["--no-direct"]
    out_dir = ctx.work / f"{tool}-out-{run}"
    out_dir.mkdir()
    env = hushdrop_env(ctx.extra_env)
    prof = {r: profile_dir / f"{r}.prof" for r in HUSHDROP_ROLES} if profile_dir else {}
    with ProcessGroup(ctx.sampler) as group:
        relay = group.start(
            "hushdrop relay",
            [
                *python_module("hushdrop_relay", prof.get("relay")),
                "--host",
                "127.0.0.1",
                "--port",
                "0",
            ],
            env=env,
        )
        banner = relay.wait_line(lambda line: line.text.startswith(RELAY_BANNER), STARTUP_TIMEOUT)
        url = banner.text.removeprefix(RELAY_BANNER).strip()

        sender = group.start(
            "hushdrop sender",
            [
                *hushdrop_cli(prof.get("sender")),
                "send",
                *route,
                str(ctx.source),
                "--relay",
                url,
                "--json",
            ],
            env=env,
        )
        code = json.loads(sender.wait_line(json_event("code"), STARTUP_TIMEOUT).text)["code"]

        # The code goes in the environment, as documented, so it never shows up in `ps`.
        receiver = group.start(
            "hushdrop receiver",
            [
                *hushdrop_cli(prof.get("receiver")),
                "receive",
                *route,
                "-o",
                str(out_dir),
                "--relay",
                url,
                "--json",
                "--yes",
            ],
            env={**env, "HUSHDROP_CODE": code},
        )
        check_exit(receiver, ctx.timeout)
        check_exit(sender, STARTUP_TIMEOUT)
        relay.stop()  # SIGTERM: a graceful exit, so a profiled relay writes its stats
        done = json.loads(receiver.wait_line(json_event("done"), 1).text)

    if done["bytes"] != ctx.size:
        raise BenchError(f"hushdrop receiver reported {done['bytes']} bytes, not {ctx.size}.")
    if direct and done.get("route") != "direct":
        raise BenchError("the Hushdrop CLIs did not connect directly (no usable local address?).")
    assert receiver.exit is not None
    procs = {
        "sender": ProcStats.of(sender),
        "relay": ProcStats.of(relay),
        "receiver": ProcStats.of(receiver),
    }
    verify_and_remove(out_dir / ctx.source.name, ctx, tool)
    out_dir.rmdir()
    return Measurement(
        tool=tool,
        run=run,
        size=ctx.size,
        wall_seconds=receiver.exit.at - receiver.started,
        transfer_seconds=float(done["seconds"]),
        procs=procs,
        profiles={role: str(path) for role, path in prof.items()},
        path=done.get("route", "relay"),
    )


# --------------------------------------------------------------------------- magic-wormhole


def ensure_wormhole() -> Path:
    """bench/.venv-wormhole/bin, creating or refreshing the venv when the pins changed."""
    stamp = WORMHOLE_VENV / ".bench-installed"
    wanted = WORMHOLE_REQUIREMENTS.read_text()
    bin_dir = WORMHOLE_VENV / "bin"
    if stamp.exists() and stamp.read_text() == wanted and (bin_dir / "wormhole").exists():
        return bin_dir
    log(f"Installing the magic-wormhole baseline into {WORMHOLE_VENV} (first run only)…")
    try:
        # sys.executable is the project venv's python; `-m venv` builds on its base interpreter,
        # so the baseline shares nothing with the project environment.
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(WORMHOLE_VENV)], check=True)
        subprocess.run(
            [
                str(bin_dir / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
                str(WORMHOLE_REQUIREMENTS),
            ],
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise BenchError(
            f"Could not install magic-wormhole into {WORMHOLE_VENV}: {exc}. "
            "Use --skip-wormhole to benchmark Hushdrop alone."
        ) from exc
    stamp.write_text(wanted)
    return bin_dir


def wormhole_versions(bin_dir: Path) -> dict[str, str]:
    """Resolved versions in the baseline venv (transitive ones float), for the JSON record."""
    result = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "freeze", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=False,
    )
    pairs = (line.split("==", 1) for line in result.stdout.splitlines() if "==" in line)
    return {name: version for name, version in pairs}


def rx_file_seconds(timing: Path) -> float | None:
    """Duration of the receiver's 'rx file' step from `wormhole --dump-timing`, if recorded."""
    try:
        events = json.loads(timing.read_text())
    except (OSError, ValueError):
        return None
    for event in events:
        if event.get("name") == "rx file" and event.get("stop"):
            return float(event["stop"]) - float(event["start"])
    return None


def run_wormhole(ctx: Context, run: int, bin_dir: Path, direct: bool) -> Measurement:
    work = ctx.work / f"wormhole-{run}"
    out_dir = work / "out"
    out_dir.mkdir(parents=True)
    timing = work / "receiver-timing.json"
    # Unbuffered stdio: the receiver's progress lines are read as they are printed.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WORMHOLE_QR": "0"}
    twist = [str(bin_dir / "twist"), "--log-format=text"]
    mailbox_port, transit_port = free_port(), free_port()
    with ProcessGroup(ctx.sampler) as group:
        mailbox = group.start(
            "wormhole mailbox",
            [
                *twist,
                f"--log-file={work / 'mailbox.log'}",
                "wormhole-mailbox",
                f"--port=tcp:{mailbox_port}:interface=127.0.0.1",
                f"--channel-db={work / 'mailbox.sqlite'}",
            ],
            env=env,
            cwd=work,
        )
        transit = group.start(
            "wormhole transit relay",
            [
                *twist,
                f"--log-file={work / 'transit.log'}",
                "transitrelay",
                f"--port=tcp:{transit_port}:interface=127.0.0.1",
            ],
            env=env,
            cwd=work,
        )
        wait_for_port(mailbox_port, mailbox)
        wait_for_port(transit_port, transit)

        common = [str(bin_dir / "wormhole"), "--relay-url", f"ws://127.0.0.1:{mailbox_port}/v1"]
        common += ["--transit-helper", f"tcp:127.0.0.1:{transit_port}"]
        # --no-listen on both sides leaves no direct hints, so the data goes through the transit
        # relay: the same CLI → relay → CLI path Hushdrop always takes.
        listen = [] if direct else ["--no-listen"]
        code = f"{secrets.randbelow(900) + 100}-{secrets.token_hex(4)}-{secrets.token_hex(4)}"
        sender = group.start(
            "wormhole sender",
            [
                *common,
                "send",
                "--hide-progress",
                "--no-qr",
                *listen,
                "--code",
                code,
                str(ctx.source),
            ],
            env=env,
            cwd=work,
        )
        sender.wait_line(lambda line: "Wormhole code is" in line.text, STARTUP_TIMEOUT)
        receiver = group.start(
            "wormhole receiver",
            [
                *common,
                "--dump-timing",
                str(timing),
                "receive",
                "--hide-progress",
                "--accept-file",
                *listen,
                "-o",
                str(out_dir),
                code,
            ],
            env=env,
            cwd=work,
        )
        check_exit(receiver, ctx.timeout)
        check_exit(sender, STARTUP_TIMEOUT)
        transit.stop()
        mailbox.stop()

    assert receiver.exit is not None
    started = receiver.wait_line(lambda line: line.text.startswith("Receiving ("), 1)
    path = "relay" if "relay:" in started.text else "direct"
    transfer = rx_file_seconds(timing)
    if transfer is None:
        # Fallback: from the "Receiving (…)" line to the exit, i.e. a little pessimistic.
        transfer = receiver.exit.at - started.at
    procs = {
        "sender": ProcStats.of(sender),
        "mailbox": ProcStats.of(mailbox),
        "transit": ProcStats.of(transit),
        "receiver": ProcStats.of(receiver),
    }
    verify_and_remove(out_dir / ctx.source.name, ctx, "wormhole")
    shutil.rmtree(work)
    return Measurement(
        tool="wormhole",
        run=run,
        size=ctx.size,
        wall_seconds=receiver.exit.at - receiver.started,
        transfer_seconds=transfer,
        procs=procs,
        path=path,
    )


# --------------------------------------------------------------------------- report


def summarize(results: list[Measurement]) -> dict[str, Any] | None:
    """Median rates and times; the largest peak RSS of each role over the runs (worst case)."""
    if not results:
        return None
    role_names = list(results[0].procs)
    wall = [r.wall_mib_s for r in results]

    def per_role(value: Callable[[ProcStats], float], combine: Callable[..., float]) -> dict:
        return {k: combine(value(r.procs[k]) for r in results) for k in role_names}

    return {
        "runs": len(results),
        "wall_mib_s": round(statistics.median(wall), 1),
        "wall_mib_s_range": [round(min(wall), 1), round(max(wall), 1)],
        "transfer_mib_s": round(statistics.median(r.transfer_mib_s for r in results), 1),
        "wall_seconds": round(statistics.median(r.wall_seconds for r in results), 3),
        "transfer_seconds": round(statistics.median(r.transfer_seconds for r in results), 3),
        "peak_rss_mb": per_role(lambda p: round(p.peak_rss / MB, 1), max),
        "max_sampled_rss_mb": per_role(lambda p: round(p.max_rss / MB, 1), max),
        "cpu_seconds": per_role(lambda p: round(p.cpu_seconds, 2), statistics.median),
        "path": results[0].path or "relay",
        "each_run": [
            {
                **asdict(r),
                "wall_mib_s": round(r.wall_mib_s, 1),
                "transfer_mib_s": round(r.transfer_mib_s, 1),
            }
            for r in results
        ],
    }


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_after": round(os.getloadavg()[0], 2),
    }


def build_report(
    size: int,
    runs: int,
    hushdrop: list[Measurement],
    wormhole: list[Measurement],
    versions: dict[str, str],
    hushdrop_direct: list[Measurement] | None = None,
) -> dict[str, Any]:
    hd = summarize(hushdrop)
    wh = summarize(wormhole)
    hdd = summarize(hushdrop_direct or [])
    report: dict[str, Any] = {
        "size_bytes": size,
        "runs": runs,
        "machine": machine(),
        "hushdrop": hd,
        "wormhole": wh,
        "hushdrop_direct": hdd,
        "wormhole_versions": {
            k: v for k, v in versions.items() if k.lower().startswith(("magic", "twisted"))
        },
    }
    relay_peak = hd["peak_rss_mb"]["relay"] if hd else None
    goals: dict[str, Any] = {
        "relay_rss_mb_below": RELAY_RSS_GOAL_MB,
        "relay_rss_met": relay_peak is not None and relay_peak < RELAY_RSS_GOAL_MB,
        "speed_ratio_at_least": SPEED_GOAL,
    }
    if hd and wh:
        wall = hd["wall_mib_s"] / wh["wall_mib_s"]
        transfer = hd["transfer_mib_s"] / wh["transfer_mib_s"]
        report["ratio"] = {"wall": round(wall, 2), "transfer": round(transfer, 2)}
        goals["speed_met"] = wall >= SPEED_GOAL
    if hdd and hd:
        report["ratio_direct_vs_relay"] = {
            "wall": round(hdd["wall_mib_s"] / hd["wall_mib_s"], 2),
            "transfer": round(hdd["transfer_mib_s"] / hd["transfer_mib_s"], 2),
        }
    if hdd and wh:
        wall = hdd["wall_mib_s"] / wh["wall_mib_s"]
        report["ratio_direct_vs_wormhole"] = {
            "wall": round(wall, 2),
            "transfer": round(hdd["transfer_mib_s"] / wh["transfer_mib_s"], 2),
            "wormhole_path": wh["path"],
        }
        goals["direct_speed_met"] = wall >= SPEED_GOAL
    report["goals"] = goals
    return report


def print_table(report: dict[str, Any]) -> None:
    m = report["machine"]
    tools = [
        (name, report[key], roles)
        for name, key, roles in (
            ("hushdrop", "hushdrop", HUSHDROP_ROLES),
            ("hushdrop (direct)", "hushdrop_direct", HUSHDROP_ROLES),
            (f"wormhole ({(report['wormhole'] or {}).get('path')})", "wormhole", WORMHOLE_ROLES),
        )
        if report[key]
    ]
    runs = report["runs"]
    print(
        f"size {human(report['size_bytes'])}, runs {runs}"
        + (" (median MiB/s [min-max], worst peak RSS)" if runs > 1 else "")
        + f"; {m['cpus']} CPUs ({m['cpu_model'] or 'unknown CPU'}), Python {m['python']}, "
        f"load {m.get('load_before', '?')} → {m['load_after']}"
    )
    print(f"{'':<18}{'wall MiB/s':>12}{'':<12}{'transfer MiB/s':>14}")
    for name, summary, _ in tools:
        low, high = summary["wall_mib_s_range"]
        spread = f" [{low:.0f}-{high:.0f}]" if runs > 1 else ""
        print(
            f"{name:<18}{summary['wall_mib_s']:>12.1f}{spread:<12}"
            f"{summary['transfer_mib_s']:>14.1f}"
        )
    print("peak RSS MB (CPU seconds):")
    for name, summary, roles in tools:
        usage = " / ".join(
            f"{r} {summary['peak_rss_mb'][r]:.0f} ({summary['cpu_seconds'][r]:.1f})" for r in roles
        )
        print(f"  {name:<18}{usage}")
    if "ratio" in report:
        ratio = report["ratio"]
        print(
            f"ratio hushdrop/wormhole: {ratio['wall']:.2f}x wall, "
            f"{ratio['transfer']:.2f}x transfer   (goal: >= {SPEED_GOAL:.0f}x)"
        )
    for key, label in (
        ("ratio_direct_vs_relay", "hushdrop direct/relay"),
        ("ratio_direct_vs_wormhole", "hushdrop direct/wormhole"),
    ):
        if key in report:
            ratio = report[key]
            where = f" ({ratio['wormhole_path']})" if "wormhole_path" in ratio else ""
            print(
                f"ratio {label}{where}: {ratio['wall']:.2f}x wall, "
                f"{ratio['transfer']:.2f}x transfer"
            )
    hd = report["hushdrop"]
    if hd:
        print(
            f"relay RSS: peak {hd['peak_rss_mb']['relay']:.1f} MB, largest sampled during the "
            f"transfer {hd['max_sampled_rss_mb']['relay']:.1f} MB   "
            f"(goal: < {RELAY_RSS_GOAL_MB} MB)"
        )


def print_profiles(measurement: Measurement, top: int) -> None:
    for role, path in measurement.profiles.items():
        print(f"\n=== {role}: top {top} by own time ({path}) ===")
        stats = pstats.Stats(path, stream=sys.stdout)
        stats.sort_stats("tottime").print_stats(top)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="1 GiB Hushdrop CLI → relay → CLI transfer on loopback, vs magic-wormhole."
    )
    parser.add_argument("--size", type=parse_size, default=parse_size("1GiB"), help="e.g. 256MiB")
    parser.add_argument("--runs", type=int, default=1, help="transfers per tool (median reported)")
    parser.add_argument("--skip-wormhole", action="store_true", help="no magic-wormhole baseline")
    parser.add_argument(
        "--wormhole-direct",
        action="store_true",
        help="let magic-wormhole connect its peers directly instead of through its transit relay",
    )
    parser.add_argument(
        "--direct",
        action="store_true",
        help="also run Hushdrop with its CLIs connected directly (PROTOCOL.md §8.5), not "
        "through the relay; compared with the relayed run and with magic-wormhole",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    parser.add_argument("--tmpdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--timeout", type=float, help="seconds per transfer (default from size)")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the Hushdrop processes only (e.g. allocator experiments)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="instead: one Hushdrop transfer with every process under cProfile; stats in DIR",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if any("=" not in item for item in args.env):
        parser.error("--env takes NAME=VALUE")
    args.env = dict(item.split("=", 1) for item in args.env)
    return args


def check_environment() -> None:
    script = "import hushdrop as h, hushdrop_relay as r; print(h.__path__[0]); print(r.__path__[0])"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, check=False, text=True
    )
    if result.returncode != 0:
        raise BenchError(
            f"{sys.executable} cannot import hushdrop: run with the project venv "
            "(`make bench` or `.venv/bin/python bench/transfer.py`)."
        )
    # The editable install has no bytecode, and with PYTHONDONTWRITEBYTECODE set (as on CI)
    # every Hushdrop process compiled ~40 modules from source at start (about 0.06 CPU-seconds
    # each), while pip compiled the baseline's at install. Compile ours the same way.
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", *result.stdout.split()],
        capture_output=True,
        check=False,
    )


@contextlib.contextmanager
def workspace(tmpdir: Path, size: int) -> Iterator[Path]:
    tmpdir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(tmpdir).free
    if free < DISK_FACTOR * size:
        raise BenchError(
            f"{tmpdir} has {human(free)} free; a {human(size)} run needs {DISK_FACTOR}x that "
            f"({human(DISK_FACTOR * size)}). Use --tmpdir or a smaller --size."
        )
    work = Path(tempfile.mkdtemp(prefix="hushdrop-bench-", dir=tmpdir))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench(args: argparse.Namespace) -> dict[str, Any] | None:
    check_environment()
    bin_dir = None if args.skip_wormhole or args.profile else ensure_wormhole()
    timeout = args.timeout or max(300.0, args.size / MiB / 2)
    # Shared machines: the load average next to the numbers says how much to trust them.
    load_before = round(os.getloadavg()[0], 2)
    sampler = MemorySampler()
    try:
        with workspace(args.tmpdir, args.size) as work:
            source = work / "payload.bin"
            log(f"Writing {human(args.size)} of random data to {source}…")
            digest = make_source(source, args.size)
            ctx = Context(work, source, digest, args.size, timeout, sampler, args.env)
            settle_disk()

            if args.profile:
                args.profile.mkdir(parents=True, exist_ok=True)
                measurement = run_hushdrop(ctx, 1, args.profile.resolve())
                log(
                    f"profiled hushdrop: wall {measurement.wall_mib_s:.1f} MiB/s, transfer "
                    f"{measurement.transfer_mib_s:.1f} MiB/s (cProfile overhead included)"
                )
                print_profiles(measurement, 25)
                return None

            hushdrop: list[Measurement] = []
            hushdrop_direct: list[Measurement] = []
            wormhole: list[Measurement] = []
            for run in range(1, args.runs + 1):
                # Interleaved, so that a noisy neighbour hurts both tools alike.
                results = [run_hushdrop(ctx, run)]
                if args.direct:
                    results.append(run_hushdrop(ctx, run, direct=True))
                if bin_dir is not None:
                    results.append(run_wormhole(ctx, run, bin_dir, args.wormhole_direct))
                for r in results:
                    log(
                        f"run {run}/{args.runs} {r.tool}: wall {r.wall_mib_s:.1f} MiB/s "
                        f"({r.wall_seconds:.2f} s), transfer {r.transfer_mib_s:.1f} MiB/s"
                    )
                for r in results:
                    {"hushdrop": hushdrop, "hushdrop-direct": hushdrop_direct}.get(
                        r.tool, wormhole
                    ).append(r)
    finally:
        sampler.close()
    versions = wormhole_versions(bin_dir) if bin_dir is not None else {}
    report = build_report(args.size, args.runs, hushdrop, wormhole, versions, hushdrop_direct)
    report["machine"]["load_before"] = load_before
    report["hushdrop_env"] = args.env
    return report


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM (e.g. a CI timeout) takes the same path as Ctrl-C, so the finally blocks stop
    # every child instead of leaving a relay or a half-written GiB behind.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        report = bench(args)
    except BenchError as exc:
        log(f"bench: error: {exc}")
        return 1
    except KeyboardInterrupt:
        log("bench: interrupted; every process it started was stopped.")
        return 130
    if report is not None:
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
