"""Browser benchmarks of the page client, in headless Debian Chromium against a real relay.

    .venv/bin/python bench/page.py [--size 1GiB] [--memory-size 2GiB] [--skip-memory] [--json]
    .venv/bin/python bench/page.py --load-only --runs 3

Measures, in one run:

* **ceiling**: in-page WebCrypto AES-256-GCM throughput from plain JavaScript with many 16 KiB
  calls in flight — the most a page can encrypt, whatever it is written in;
* **page → relay → page**: one file of `--size` from a sending browser to a receiving browser,
  timed from the receiver's click on "Download" to the finished download, and its ratio to the
  ceiling (goal: at least 60 %); with the CPU time each part used per MiB moved (each page's main
  thread, the rest of each browser, the relay), which says what the machine spent it on;
* **one page alone**: the same file CLI → page and page → CLI, each page with the CLI as its
  peer: what one page can receive and send when it does not share the machine with another;
* **receiver memory**: proportional set size (PSS) of the receiving browser's whole process tree
  during a `--memory-size` transfer, above its idle level with the page loaded (goal: < 256 MB);
* **page load**: from navigation start to "ready" (the Receive button enabled; Create link also
  needs files), read from the page's own clock: cold (new profile, empty cache), warm (reload;
  median of 3) and revisit (the tab closed, the site opened again in a new one) — goals ≤ 3.5 s
  cold and ≤ 1 s warm. `--runs N` repeats this with N fresh profiles and reports medians.

Each browser is its own Chromium instance with its own profile, so their processes (and memory)
are told apart. The transfers drive Chromium over the DevTools protocol without Playwright
(bench/bare.py): Playwright copies every WebSocket frame into a DevTools event, which caps a
page's WebSocket at about 50 MiB/s here. Page load times still use Playwright. Numbers are
printed, never asserted: these machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "playwright"), str(ROOT / "web")]

import build_site  # noqa: E402  (web/build_site.py)
from bare import BareChromium, BarePage  # noqa: E402
from pagetools import (  # noqa: E402
    BLOCK_ICE,
    CHROMIUM_FLAGS,
    random_file,
    sha256_file,
    wait_until_ready,
)
from playwright.sync_api import BrowserContext, Page, Playwright, sync_playwright  # noqa: E402

from tests.conftest import RelayProcess  # noqa: E402
from tests.integration.cli import receive, send  # noqa: E402

MiB = 1024 * 1024
LONG = 30 * 60 * 1000  # ms: a whole multi-GiB transfer on a slow machine

CEILING_JS = """
async ({total, chunk, inflight}) => {
  const key = await crypto.subtle.generateKey({name: "AES-GCM", length: 256}, false, ["encrypt"]);
  const data = new Uint8Array(chunk);
  crypto.getRandomValues(data);
  const calls = total / chunk;
  let next = 0;
  const start = performance.now();
  async function lane() {
    while (next < calls) {
      const iv = new Uint8Array(12);
      new DataView(iv.buffer).setUint32(8, next++);
      await crypto.subtle.encrypt({name: "AES-GCM", iv}, key, data);
    }
  }
  await Promise.all(Array.from({length: inflight}, lane));
  return total / ((performance.now() - start) / 1000);
}
"""


def parse_size(text: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMG]i?B)?", text.strip(), re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 1GiB or 256MiB)")
    unit = (match.group(2) or "B").upper().replace("IB", "").replace("B", "")
    return int(float(match.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[unit])


def process_tree(root_pid: int) -> list[int]:
    """`root_pid` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    tree, stack = [], [root_pid]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        tree.append(pid)
    return tree


def tree_pss(root_pid: int) -> int:
    """Sum of PSS (bytes) over `root_pid` and all its descendants."""
    total = 0
    for pid in process_tree(root_pid):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as rollup:
                for line in rollup:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


def browser_pid(profile: Path) -> int:
    """The Chromium browser process using `profile` (its children are the renderers)."""
    marker = f"--user-data-dir={profile}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                args = cmdline.read().split(b"\0")
        except OSError:
            continue
        if marker in args and not any(a.startswith(b"--type=") for a in args):
            return int(entry)
    raise RuntimeError(f"no Chromium process found for {profile}")


class PssSampler:
    """Samples a browser's tree PSS on a thread; `peak` is the largest value seen."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.peak = max(self.peak, tree_pss(self.pid))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


@contextmanager
def chromium(playwright: Playwright, work: Path, name: str) -> Iterator[tuple[BrowserContext, int]]:
    profile = work / f"profile-{name}"
    downloads = work / f"downloads-{name}"
    downloads.mkdir()
    context = playwright.chromium.launch_persistent_context(
        profile,
        executable_path=shutil.which("chromium") or "/usr/bin/chromium",
        args=CHROMIUM_FLAGS,
        headless=True,
        accept_downloads=True,
        downloads_path=downloads,
    )
    try:
        yield context, browser_pid(profile)
    finally:
        context.close()


# Records when "Receive" becomes enabled (as "Create link" does once files are chosen), on the
# page's clock (0 = start of the navigation),
# so the load time has neither Playwright's polling interval nor its round trips in it.
READY_PROBE = """
(() => {
  new MutationObserver((_, observer) => {
    const button = document.getElementById("receive-button");
    if (button && !button.disabled) {
      globalThis.__hushdropReadyAt = performance.now();
      observer.disconnect();
    }
  }).observe(document, {subtree: true, attributes: true, attributeFilter: ["disabled"]});
})();
"""


def timed_load(page: Page, url: str | None = None) -> tuple[float, float]:
    """Open `url` (or reload); (seconds on the page's clock, wall seconds) until ready."""
    start = time.perf_counter()
    if url is None:
        page.reload()
    else:
        page.goto(url)
    wait_until_ready(page)
    wall = time.perf_counter() - start
    return page.evaluate("globalThis.__hushdropReadyAt") / 1000, wall


def measure_load(playwright: Playwright, work: Path, url: str, runs: int) -> dict[str, object]:
    """`runs` fresh profiles, each: one cold load, three reloads, one revisit in a new tab."""
    cold, warm, revisit, cold_wall, warm_wall = [], [], [], [], []
    for run in range(runs):
        with chromium(playwright, work, f"load-{run}") as (context, _):
            context.add_init_script(READY_PROBE)
            page = context.new_page()
            seconds, wall = timed_load(page, url)
            cold.append(seconds)
            cold_wall.append(wall)
            reloads = [timed_load(page) for _ in range(3)]
            warm.append(statistics.median(r[0] for r in reloads))
            warm_wall.append(statistics.median(r[1] for r in reloads))
            page.close()
            page = context.new_page()
            revisit.append(timed_load(page, url)[0])
    median = statistics.median
    return {
        "cold_s": median(cold),
        "warm_s": median(warm),
        "revisit_s": median(revisit),
        "cold_wall_s": median(cold_wall),
        "warm_wall_s": median(warm_wall),
        "runs": {"cold_s": cold, "warm_s": warm, "revisit_s": revisit},
    }


def relayed_bytes(url: str) -> int:
    with urllib.request.urlopen(url + "metrics", timeout=10) as response:
        text = response.read().decode()
    return int(re.search(r"^hushdrop_relay_bytes_relayed_total (\d+)$", text, re.M).group(1))


TICKS = os.sysconf("SC_CLK_TCK")


def thread_cpu(root_pid: int) -> dict[str, float]:
    """CPU seconds of `root_pid`'s process tree: renderer main threads apart from the rest."""
    totals = {"main": 0.0, "other": 0.0}
    for pid in process_tree(root_pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                # Chromium rewrites its argv in place, so look for the flag anywhere in it.
                renderer = b"--type=renderer" in cmdline.read()
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            seconds = (int(fields[11]) + int(fields[12])) / TICKS
            totals["main" if renderer and int(tid) == pid else "other"] += seconds
    return totals


class CpuMeter:
    """CPU time used by named process trees between start and `stop()`, in ms per MiB moved."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = pids
        self._start = self._read()

    def _read(self) -> dict[str, float]:
        out = {}
        for name, pid in self._pids.items():
            parts = thread_cpu(pid)
            if parts["main"]:
                out[f"{name} main thread"] = parts["main"]
                out[f"{name} rest"] = parts["other"]
            else:
                out[name] = parts["other"]
        return out

    def stop(self, size: int) -> dict[str, float]:
        end = self._read()
        return {k: 1000 * (end[k] - self._start.get(k, 0.0)) / (size / MiB) for k in end}


def bare_browser(work: Path, name: str) -> BareChromium:
    return BareChromium(work / f"profile-{name}", work / f"downloads-{name}", CHROMIUM_FLAGS)


def bare_create_link(
    browser: BareChromium, url: str, source: Path, init: str | None
) -> tuple[BarePage, str]:
    """Open the site, choose `source`, create the link; the page and the link."""
    page = browser.new_page(url, init)
    page.wait_for("document.getElementById('engine').classList.contains('ready')", LONG / 1000)
    page.set_files("#file-input", [source])
    page.wait_for("!document.getElementById('selection').hidden", 60)
    page.click("#create-link")
    return page, page.wait_for("document.getElementById('share-link')?.value", 60)


DOWNLOAD_SHOWN = """(() => {
  const button = document.querySelector("[data-part=download]");
  return !!button && button.offsetParent !== null;
})()"""


def transfer(
    work: Path,
    url: str,
    relay_pid: int,
    source: Path,
    sample_memory: bool,
    route: str = "relayed",
) -> dict[str, float]:
    """One page → page transfer of `source`, through the relay or (route="direct") over WebRTC
    if it connects: timing, the relay's share of the bytes, the CPU each part used, and
    (optionally) the receiver's memory. The browsers run without Playwright (see bare.py)."""
    name = f"{route}-{source.stat().st_size}"
    size = source.stat().st_size
    # WebRTC finds no path in the relayed run, so the pages stay on the relay.
    init = BLOCK_ICE if route == "relayed" else None
    with (
        bare_browser(work, f"sender-{name}") as sending,
        bare_browser(work, f"receiver-{name}") as receiving,
    ):
        relayed_before = relayed_bytes(url)
        sender, link = bare_create_link(sending, url, source, init)
        receiver = receiving.new_page(link, init)
        receiver.wait_for(DOWNLOAD_SHOWN, LONG / 1000)
        time.sleep(1)  # let the idle page settle before taking its memory baseline
        idle = tree_pss(receiving.pid)
        sampler = PssSampler(receiving.pid) if sample_memory else None
        cpu = CpuMeter({"sender": sending.pid, "receiver": receiving.pid, "relay": relay_pid})
        start = time.perf_counter()
        receiver.click("[data-part=download]")
        path = receiving.wait_download(LONG / 1000)
        elapsed = time.perf_counter() - start
        used = cpu.stop(size)
        peak = sampler.stop() if sampler else 0
        relayed = relayed_bytes(url) - relayed_before
        if sha256_file(path) != sha256_file(source):
            raise RuntimeError("the downloaded file differs from the source")
        ceiling = sender.evaluate(
            f"({CEILING_JS})({json.dumps({'total': 256 * MiB, 'chunk': 16384, 'inflight': 64})})"
        )
        path.unlink()
    result = {"seconds": elapsed, "mib_s": size / MiB / elapsed}
    result["relayed_share"] = relayed / size
    result["ceiling_mib_s"] = ceiling / MiB
    result["cpu_ms_per_mib"] = used
    if sample_memory:
        result.update(idle_mb=idle / 1e6, peak_mb=peak / 1e6, above_idle_mb=(peak - idle) / 1e6)
    return result


def one_page(work: Path, relay_url: str, source: Path) -> dict[str, float]:
    """Each page on its own, with the CLI as the other side: CLI → page and page → CLI."""
    size = source.stat().st_size
    out = {}
    with bare_browser(work, f"alone-{size}") as browser:
        cli = send(relay_url, source)
        try:
            page = browser.new_page(cli.wait_event("code", 60)["link"], BLOCK_ICE)
            page.wait_for(DOWNLOAD_SHOWN, LONG / 1000)
            start = time.perf_counter()
            page.click("[data-part=download]")
            path = browser.wait_download(LONG / 1000)
            out["receive_mib_s"] = size / MiB / (time.perf_counter() - start)
            if cli.wait(60) != 0 or sha256_file(path) != sha256_file(source):
                raise RuntimeError("CLI → page failed")
            path.unlink()
        finally:
            cli.stop()
        page, _ = bare_create_link(browser, relay_url + "/", source, BLOCK_ICE)
        code = page.evaluate("document.querySelector('code.code').innerText")
        target = work / "from-page"
        target.mkdir()
        start = time.perf_counter()
        cli = receive(relay_url, code, target, extra=["--yes"])
        try:
            if cli.wait(LONG / 1000) != 0:
                raise RuntimeError(f"page → CLI failed: {cli.stderr}")
            # Counted from the CLI's start, so a little slower than the page really sends.
            out["send_mib_s"] = size / MiB / (time.perf_counter() - start)
        finally:
            cli.stop()
        if sha256_file(target / source.name) != sha256_file(source):
            raise RuntimeError("page → CLI: the saved file differs")
        shutil.rmtree(target)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("1GiB"))
    parser.add_argument("--memory-size", type=parse_size, default=parse_size("2GiB"))
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-load", action="store_true")
    parser.add_argument("--skip-direct", action="store_true", help="no direct (WebRTC) transfer")
    parser.add_argument(
        "--skip-single", action="store_true", help="no CLI → page and page → CLI transfers"
    )
    parser.add_argument("--load-only", action="store_true", help="only the page load times")
    parser.add_argument("--runs", type=int, default=1, help="cold starts for the load times")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--tmpdir", type=Path, default=None)
    args = parser.parse_args(argv)

    results: dict[str, object] = {"cpus": os.cpu_count(), "load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="hushdrop-page-bench-", dir=args.tmpdir) as tmp:
        work = Path(tmp)
        largest = max(args.size, 0 if args.skip_memory else args.memory_size)
        need = 0 if args.load_only else 3 * largest
        if shutil.disk_usage(work).free < need:
            sys.exit(f"Not enough free space in {work}: need {need / 1e9:.1f} GB.")
        site = build_site.build(work / "site")
        relay = RelayProcess(["--site-dir", str(site)])
        try:
            relay.wait_ready()
            url = relay.url + "/"
            if not args.skip_load:
                with sync_playwright() as playwright:
                    results["load"] = measure_load(playwright, work, url, args.runs)
            if args.load_only:
                return finish(results, args)
            source = random_file(work / "payload.bin", args.size)
            results["throughput"] = transfer(work, url, relay.pid, source, False)
            if not args.skip_direct:
                results["direct"] = transfer(work, url, relay.pid, source, False, "direct")
            if not args.skip_single:
                results["single"] = one_page(work, relay.url, source)
            source.unlink()
            if not args.skip_memory:
                source = random_file(work / "payload-memory.bin", args.memory_size)
                results["memory"] = transfer(work, url, relay.pid, source, True)
                source.unlink()
        finally:
            relay.stop()
    return finish(results, args)


def finish(results: dict, args: argparse.Namespace) -> int:
    results["load_after"] = os.getloadavg()[0]
    print(json.dumps(results, indent=None if args.json else 2))
    if not args.json:
        report(results, args)
    return 0


def report(results: dict, args: argparse.Namespace) -> None:
    print()
    if "load" in results:
        load = results["load"]
        print(
            f"page load to ready: cold {load['cold_s']:.2f} s (goal ≤ 3.5), "
            f"warm {load['warm_s']:.2f} s (goal ≤ 1.0), revisit {load['revisit_s']:.2f} s"
            + (f" (medians of {args.runs} runs)" if args.runs > 1 else "")
        )
    if "throughput" in results:
        report_transfers(results, args)
    print(
        f"{results['cpus']} CPUs, load {results['load_before']:.2f} → {results['load_after']:.2f}"
    )


def report_transfers(results: dict, args: argparse.Namespace) -> None:
    t = results["throughput"]
    ratio = t["mib_s"] / t["ceiling_mib_s"]
    print(
        f"page → relay → page (WebRTC blocked), {args.size / MiB:.0f} MiB: {t['mib_s']:.1f} MiB/s; "
        f"WebCrypto ceiling {t['ceiling_mib_s']:.1f} MiB/s; ratio {ratio:.0%} (goal ≥ 60 %)"
    )
    if "direct" in results:
        d = results["direct"]
        print(
            f"page → page direct (WebRTC), same file: {d['mib_s']:.1f} MiB/s, "
            f"{d['mib_s'] / t['mib_s']:.2f}× the relayed path (goal ≥ 1); the relay carried "
            f"{d['relayed_share']:.2%} of the file's size (relayed run: {t['relayed_share']:.0%})"
        )
    cpu = t.get("cpu_ms_per_mib")
    if cpu:
        parts = ", ".join(f"{name} {ms:.1f}" for name, ms in cpu.items())
        print(f"  CPU per MiB moved (ms): {parts}; total {sum(cpu.values()):.1f}")
    if "single" in results:
        single = results["single"]
        print(
            f"one page alone, same file: CLI → page {single['receive_mib_s']:.1f} MiB/s, "
            f"page → CLI {single['send_mib_s']:.1f} MiB/s"
        )
    if "memory" in results:
        m = results["memory"]
        print(
            f"receiving browser, {args.memory_size / MiB:.0f} MiB at {m['mib_s']:.1f} MiB/s: "
            f"idle {m['idle_mb']:.0f} MB, peak {m['peak_mb']:.0f} MB, "
            f"{m['above_idle_mb']:.0f} MB above idle (goal < 256)"
        )


if __name__ == "__main__":
    raise SystemExit(main())
