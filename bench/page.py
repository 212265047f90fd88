"""Browser benchmarks of the page client, in headless Debian Chromium against a real relay.

    .venv/bin/python bench/page.py [--size 1GiB] [--memory-size 2GiB] [--skip-memory] [--json]
    .venv/bin/python bench/page.py --load-only --runs 3
    .venv/bin/python bench/page.py --size 256MiB --profile DIR   # where the main threads spend it

Measures, in one run:

* **ceiling**: in-page WebCrypto AES-256-GCM throughput from plain JavaScript with many 16 KiB
  calls in flight — the most a page can encrypt, whatever it is written in;
* **page → relay → page**: one file of `--size` from a sending browser to a receiving browser,
  timed from the receiver's click on "Download" to the finished download, and its ratio to the
  ceiling (goal: at least 60 %); with the CPU time each part used per MiB moved (each page's main
  thread, the rest of each browser, the relay), which says what the machine spent it on, the
  long tasks (> 50 ms) on each page's main thread during the transfer (Long Tasks API: count,
  longest) and the receiving browser's memory above idle at its peak;
* **reference JS** (bench/reference, README "Reference client"): the same file, in the same run,
  through a plain-JavaScript client doing the same work on the same path (same relay and
  framing, WebCrypto, SHA-256, the site's service-worker download), with the same figures:
  what Hushdrop's Python engine costs against plain JavaScript (goal: Hushdrop ≥ 80 %);
* **one page alone**: the same file CLI → page and page → CLI, each page with the CLI as its
  peer: what one page can receive and send when it does not share the machine with another;
  and the reference page with its CLI peer (bench/reference/peer.py) both ways;
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
import itertools
import json
import os
import re
import shutil
import statistics
import subprocess
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
from bare import BareChromium, BarePage, DevToolsError  # noqa: E402
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


def pss(pid: int) -> int:
    """The PSS of one process in bytes (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_pss(root_pid: int) -> int:
    """Sum of PSS (bytes) over `root_pid` and all its descendants."""
    return sum(map(pss, process_tree(root_pid)))


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
    """Samples a browser's tree PSS on a thread; `peak` is the largest value seen.

    The process tree is listed again every `REFRESH` samples only (a download or a service
    worker may start a process), which keeps the sampler's own CPU small. It samples at once,
    every `interval`, and once more at `stop`: a transfer shorter than `interval` (a small file)
    still has a peak, of the samples at its start and end."""

    REFRESH = 10

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid = pid
        self.peak = 0
        self._pids: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _sample(self, refresh: bool) -> None:
        if refresh:
            self._pids = process_tree(self.pid)
        self.peak = max(self.peak, sum(map(pss, self._pids)))

    def _run(self, interval: float) -> None:
        for count in itertools.count():
            self._sample(count % self.REFRESH == 0)
            if self._stop.wait(interval):
                return

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        self._sample(refresh=True)
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


def thread_cpu(root_pid: int) -> tuple[dict[str, float], dict[str, float]]:
    """CPU seconds of `root_pid`'s process tree: renderer main threads apart from the rest; and
    by process type and thread name (e.g. "renderer ThreadPoolForeg", Linux's 15 characters)."""
    totals = {"main": 0.0, "other": 0.0}
    threads: dict[str, float] = {}
    for pid in process_tree(root_pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                # Chromium rewrites its argv in place, so look for the flag anywhere in it.
                kind = re.search(rb"--type=([a-z-]+)", cmdline.read())
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        process = kind[1].decode() if kind else "browser"
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/stat") as stat:
                    head, rest = stat.read().rsplit(")", 1)
                fields = rest.split()
            except OSError:
                continue
            seconds = (int(fields[11]) + int(fields[12])) / TICKS
            main = process == "renderer" and int(tid) == pid
            totals["main" if main else "other"] += seconds
            thread = "main thread" if main else head.split("(", 1)[1]
            name = f"{process} {thread}"
            threads[name] = threads.get(name, 0.0) + seconds
    return totals, threads


class CpuMeter:
    """CPU time used by named process trees between start and `stop()`, in ms per MiB moved;
    `threads` has the same by process type and thread name (threads that ended in between are
    missing from it)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = pids
        self.threads: dict[str, float] = {}
        self._start, self._start_threads = self._read()

    def _read(self) -> tuple[dict[str, float], dict[str, float]]:
        out, by_thread = {}, {}
        for name, pid in self._pids.items():
            parts, threads = thread_cpu(pid)
            if parts["main"]:
                out[f"{name} main thread"] = parts["main"]
                out[f"{name} rest"] = parts["other"]
            else:
                out[name] = parts["other"]
            by_thread.update({f"{name}: {thread}": s for thread, s in threads.items()})
        return out, by_thread

    def stop(self, size: int) -> dict[str, float]:
        end, end_threads = self._read()
        per_mib = {
            k: 1000 * (v - self._start_threads.get(k, 0.0)) / (size / MiB)
            for k, v in end_threads.items()
        }
        self.threads = {
            k: round(v, 2) for k, v in sorted(per_mib.items(), key=lambda kv: -kv[1]) if v >= 0.05
        }
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


# Long tasks on a page's main thread (Long Tasks API): every entry since the page started, and
# a mark the bench sets when the timed part begins, so only the transfer's tasks are counted.
LONG_TASK_PROBE = """
(() => {
  const tasks = [];
  let from = Infinity;
  try {
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) tasks.push([entry.startTime, entry.duration]);
    }).observe({type: "longtask", buffered: true});
  } catch (error) {
    globalThis.__benchLongTaskError = String(error);
  }
  globalThis.__benchMark = () => { from = performance.now(); };
  globalThis.__benchLongTasks = () => {
    const mine = tasks.filter(([start]) => start >= from).map(([, duration]) => duration);
    return {count: mine.length, longest_ms: Math.max(0, ...mine),
            total_ms: mine.reduce((sum, d) => sum + d, 0),
            error: globalThis.__benchLongTaskError || null};
  };
})();
"""

REFERENCE_PATH = "bench-reference/"  # where the reference client is served, inside the SW's scope
REFERENCE_DIR = Path(__file__).resolve().parent / "reference"


def add_reference(site: Path) -> None:
    """Serve the reference client from the bench's copy of the built site (never the real one)."""
    target = site / REFERENCE_PATH
    target.mkdir()
    for name in ("index.html", "reference.js", "sha256.js"):
        shutil.copyfile(REFERENCE_DIR / name, target / name)


class Pair:
    """The two pages of one page → page transfer, up to the receiver's "Download" click."""

    sender: BarePage
    receiver: BarePage

    def click(self) -> None:
        raise NotImplementedError

    def check(self) -> dict[str, object]:
        """After the download: raise if either side failed; extra figures for the result."""
        return {}


class HushdropPair(Pair):
    def __init__(
        self, sending: BareChromium, receiving: BareChromium, url: str, source: Path, init: str
    ) -> None:
        self.sender, link = bare_create_link(sending, url, source, init)
        self.receiver = receiving.new_page(link, init)
        self.receiver.wait_for(DOWNLOAD_SHOWN, LONG / 1000)

    def click(self) -> None:
        self.receiver.click("[data-part=download]")

    def check(self) -> dict[str, object]:
        ceiling = self.sender.evaluate(
            f"({CEILING_JS})({json.dumps({'total': 256 * MiB, 'chunk': 16384, 'inflight': 64})})"
        )
        return {"ceiling_mib_s": ceiling / MiB}


class ReferencePair(Pair):
    """bench/reference: the plain-JavaScript client, on the same relay and service worker."""

    def __init__(
        self, sending: BareChromium, receiving: BareChromium, url: str, source: Path, init: str
    ) -> None:
        # The test key rides in the fragment, which the browser never sends to the relay.
        page = f"{url}{REFERENCE_PATH}#isk={os.urandom(64).hex()}"
        self.sender = sending.new_page(page, init)
        self.sender.wait_for(READY, 60)
        self.sender.set_files("#file", [source])
        room = self.sender.evaluate("referenceSend()")
        self.receiver = receiving.new_page(page, init)
        self.receiver.wait_for(READY, 60)
        self.receiver.evaluate(f"referenceJoin({json.dumps(room)})")
        self.receiver.wait_for(reference_state("offered"), 60)

    def click(self) -> None:
        self.receiver.evaluate("referenceDownload()")

    def check(self) -> dict[str, object]:
        self.sender.wait_for(reference_state("done"), 60)
        receiver = self.receiver.evaluate("globalThis.reference")
        if receiver["error"]:
            raise RuntimeError(f"reference receiver: {receiver['error']}")
        return {"sha256_mib_s": self.sender.evaluate("globalThis.reference.sha256MiBs")}


READY = "globalThis.reference?.state === 'ready'"


def reference_state(state: str) -> str:
    """A condition for wait_for: the reference page reached `state`; its error raises."""
    return (
        "(() => { const r = globalThis.reference;"
        " if (r.error) throw new Error(r.error);"
        f" return r.state === {json.dumps(state)}; }})()"
    )


RUNS = itertools.count()
# What a page shows (Hushdrop) or its state (the reference), to say why a transfer failed.
PAGE_TEXT = "JSON.stringify(globalThis.reference) || document.body.innerText.slice(0, 600)"
PROFILE_NAMES = {HushdropPair: "hushdrop", ReferencePair: "reference"}


def transfer(
    work: Path,
    url: str,
    relay_pid: int,
    source: Path,
    client: type[Pair] = HushdropPair,
    route: str = "relayed",
    profile: Path | None = None,
) -> dict[str, object]:
    """One page → page transfer of `source` by `client`, through the relay or (route="direct")
    over WebRTC if it connects: timing, the relay's share of the bytes, the CPU each part used,
    long tasks on each page's main thread, and the receiving browser's memory above idle.
    The browsers run without Playwright (see bare.py). With `profile`, the pages' main threads
    run under the DevTools CPU profiler instead (slower: for where the time goes, not speed)."""
    size = source.stat().st_size
    name = f"{client.__name__}-{route}-{size}-{next(RUNS)}"  # a fresh profile every time
    # WebRTC finds no path in the relayed run, so the pages stay on the relay.
    init = (BLOCK_ICE if route == "relayed" else "") + LONG_TASK_PROBE
    with (
        bare_browser(work, f"sender-{name}") as sending,
        bare_browser(work, f"receiver-{name}") as receiving,
    ):
        relayed_before = relayed_bytes(url)
        pair = client(sending, receiving, url, source, init)
        time.sleep(1)  # let the idle page settle before taking its memory baseline
        idle = tree_pss(receiving.pid)
        sampler = PssSampler(receiving.pid)
        cpu = CpuMeter({"sender": sending.pid, "receiver": receiving.pid, "relay": relay_pid})
        for page in (pair.sender, pair.receiver):
            page.evaluate("__benchMark()")
            if profile:
                page.command("Profiler.enable")
                page.command("Profiler.setSamplingInterval", interval=500)
                page.command("Profiler.start")
        start = time.perf_counter()
        pair.click()
        try:
            path = receiving.wait_download(LONG / 1000)
        except DevToolsError as exc:
            pages = {"sender": pair.sender, "receiver": pair.receiver}
            said = {side: page.evaluate(PAGE_TEXT) for side, page in pages.items()}
            raise RuntimeError(f"{client.__name__}: {exc}; the pages say: {said}") from exc
        elapsed = time.perf_counter() - start
        used = cpu.stop(size)
        peak = sampler.stop()
        if profile:
            for side, page in (("sender", pair.sender), ("receiver", pair.receiver)):
                cpu_profile = page.command("Profiler.stop")["profile"]
                (profile / f"{PROFILE_NAMES[client]}-{side}.cpuprofile").write_text(
                    json.dumps(cpu_profile)
                )
        long_tasks = {
            side: page.evaluate("__benchLongTasks()")
            for side, page in (("sender", pair.sender), ("receiver", pair.receiver))
        }
        relayed = relayed_bytes(url) - relayed_before
        if sha256_file(path) != sha256_file(source):
            raise RuntimeError("the downloaded file differs from the source")
        path.unlink()
        extra = pair.check()
    result: dict[str, object] = {"seconds": elapsed, "mib_s": size / MiB / elapsed}
    result["relayed_share"] = relayed / size
    result["cpu_ms_per_mib"] = used
    result["cpu_threads_ms_per_mib"] = cpu.threads
    result["long_tasks"] = long_tasks
    result.update(idle_mb=idle / 1e6, peak_mb=peak / 1e6, above_idle_mb=(peak - idle) / 1e6)
    result.update(extra)
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
            try:
                path = browser.wait_download(LONG / 1000)
            except DevToolsError as exc:
                said = page.evaluate(PAGE_TEXT)
                message = f"CLI → page: {exc}; the page says: {said}; CLI: {cli.stdout}"
                raise RuntimeError(message) from exc
            out["receive_mib_s"] = size / MiB / (time.perf_counter() - start)
            if cli.wait(60) != 0 or sha256_file(path) != sha256_file(source):
                raise RuntimeError("CLI → page failed")
            path.unlink()
        finally:
            cli.stop()
        # The link, not the short code: the page accepts the short code only once it showed it.
        page, link = bare_create_link(browser, relay_url + "/", source, BLOCK_ICE)
        target = work / "from-page"
        target.mkdir()
        start = time.perf_counter()
        cli = receive(relay_url, link, target, extra=["--yes"])
        try:
            if cli.wait(LONG / 1000) != 0:
                raise RuntimeError(f"page → CLI failed: {cli.stderr}{cli.stdout}")
            # Counted from the CLI's start, so a little slower than the page really sends.
            out["send_mib_s"] = size / MiB / (time.perf_counter() - start)
        finally:
            cli.stop()
        if sha256_file(target / source.name) != sha256_file(source):
            raise RuntimeError("page → CLI: the saved file differs")
        shutil.rmtree(target)
    return out


PEER = Path(__file__).resolve().parent / "reference" / "peer.py"


@contextmanager
def reference_peer(relay_url: str, isk: str, *args: str) -> Iterator[subprocess.Popen]:
    """bench/reference/peer.py (the reference's CLI peer) as a process, stopped at the end."""
    env = {**os.environ, "HUSHDROP_BENCH_RELAY": relay_url, "HUSHDROP_BENCH_ISK": isk}
    peer = subprocess.Popen(
        [sys.executable, str(PEER), *args], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        yield peer
    finally:
        if peer.poll() is None:
            peer.terminate()
            try:
                peer.wait(10)
            except subprocess.TimeoutExpired:
                peer.kill()
                peer.wait()
        peer.stdout.close()


def reference_one_page(work: Path, relay_url: str, source: Path) -> dict[str, float]:
    """The reference page with its CLI peer (peer.py), timed as `one_page` times the CLI."""
    size = source.stat().st_size
    out = {}
    isk = os.urandom(64).hex()
    page_url = f"{relay_url}/{REFERENCE_PATH}#isk={isk}"
    with bare_browser(work, f"reference-alone-{size}") as browser:
        with reference_peer(relay_url, isk, "send", str(source)) as peer:
            room = json.loads(peer.stdout.readline())["room"]
            page = browser.new_page(page_url)
            page.wait_for(READY, 60)
            page.evaluate(f"referenceJoin({json.dumps(room)})")
            page.wait_for(reference_state("offered"), 60)
            start = time.perf_counter()
            page.evaluate("referenceDownload()")
            path = browser.wait_download(LONG / 1000)
            out["receive_mib_s"] = size / MiB / (time.perf_counter() - start)
            if peer.wait(60) != 0 or sha256_file(path) != sha256_file(source):
                raise RuntimeError("reference peer → page failed")
            path.unlink()
        page = browser.new_page(page_url)
        page.wait_for(READY, 60)
        page.set_files("#file", [source])
        room = page.evaluate("referenceSend()")
        target = work / "from-reference-page.bin"
        start = time.perf_counter()
        with reference_peer(relay_url, isk, "receive", room, str(target)) as peer:
            if peer.wait(LONG / 1000) != 0:
                raise RuntimeError("reference page → peer failed")
            # From the peer's start, as `one_page` counts from the CLI's start.
            out["send_mib_s"] = size / MiB / (time.perf_counter() - start)
        if sha256_file(target) != sha256_file(source):
            raise RuntimeError("reference page → peer: the saved file differs")
        target.unlink()
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
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="instead of measuring: one Hushdrop page → page transfer with both pages' main "
        "threads under the DevTools CPU profiler, then the same for the reference client; writes "
        "DIR/{hushdrop,reference}-{sender,receiver}.cpuprofile and "
        "prints the top functions",
    )
    args = parser.parse_args(argv)

    results: dict[str, object] = {"cpus": os.cpu_count(), "load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="hushdrop-page-bench-", dir=args.tmpdir) as tmp:
        work = Path(tmp)
        largest = max(args.size, 0 if args.skip_memory else args.memory_size)
        need = 0 if args.load_only else 3 * largest
        if shutil.disk_usage(work).free < need:
            sys.exit(f"Not enough free space in {work}: need {need / 1e9:.1f} GB.")
        site = build_site.build(work / "site")
        add_reference(site)
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
            if args.profile:
                args.profile.mkdir(parents=True, exist_ok=True)
                results["profiled"] = {
                    PROFILE_NAMES[client]: transfer(
                        work, url, relay.pid, source, client, profile=args.profile
                    )
                    for client in (HushdropPair, ReferencePair)
                }
                source.unlink()
                return finish(results, args)
            results["throughput"] = transfer(work, url, relay.pid, source)
            results["reference_js"] = transfer(work, url, relay.pid, source, ReferencePair)
            if not args.skip_direct:
                results["direct"] = transfer(work, url, relay.pid, source, route="direct")
            if not args.skip_single:
                results["single"] = one_page(work, relay.url, source)
                results["reference_js"]["single"] = reference_one_page(work, relay.url, source)
            source.unlink()
            if not args.skip_memory:
                source = random_file(work / "payload-memory.bin", args.memory_size)
                results["memory"] = transfer(work, url, relay.pid, source)
                source.unlink()
        finally:
            relay.stop()
    return finish(results, args)


PYODIDE_WASM = ROOT / "node_modules" / "pyodide" / "pyodide.asm.wasm"


def wasm_function_names(path: Path) -> dict[int, str]:
    """Function index → exported name, from a WebAssembly module's import and export sections.

    Pyodide's module has no name section, so a profile shows `wasm-function[N]`; being a
    dynamic-linking main module it exports most of CPython's functions, whose names this finds.
    """

    def leb(at: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            byte = data[at]
            at += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value, at

    def name(at: int) -> tuple[str, int]:
        length, at = leb(at)
        return data[at : at + length].decode(errors="replace"), at + length

    data = path.read_bytes()
    names: dict[int, str] = {}
    imported = 0
    at = 8  # magic and version
    while at < len(data):
        section = data[at]
        size, at = leb(at + 1)
        end = at + size
        if section == 2:  # imports: imported functions take the first indices
            count, at = leb(at)
            for _ in range(count):
                _, at = name(at)
                _, at = name(at)
                kind = data[at]
                at += 1
                if kind == 0:  # function: type index
                    _, at = leb(at)
                    imported += 1
                elif kind in (1, 2):  # table (reftype first) or memory: limits
                    at += kind == 1
                    flags, at = leb(at)
                    _, at = leb(at)
                    if flags & 1:
                        _, at = leb(at)
                elif kind == 3:  # global: type, mutability
                    at += 2
                else:  # tag
                    at += 1
                    _, at = leb(at)
        elif section == 7:  # exports
            count, at = leb(at)
            for _ in range(count):
                export, at = name(at)
                kind = data[at]
                index, at = leb(at + 1)
                if kind == 0:
                    names.setdefault(index, export)
        at = end
    return names


def profile_summary(path: Path, top: int = 25) -> dict[str, object]:
    """Self time of a DevTools .cpuprofile, by function and by script, idle time left out.
    Pyodide's unnamed WebAssembly functions get their exported names where they have one."""
    exported = wasm_function_names(PYODIDE_WASM) if PYODIDE_WASM.exists() else {}
    profile = json.loads(path.read_text())
    nodes = {node["id"]: node["callFrame"] for node in profile["nodes"]}
    by_function: dict[str, float] = {}
    by_script: dict[str, float] = {}
    # timeDeltas[i] is the time from sample i-1 to sample i; credit it to sample i's node.
    for node, delta in zip(profile["samples"], profile["timeDeltas"], strict=True):
        frame = nodes[node]
        if frame["functionName"] == "(idle)":
            continue
        script = frame["url"].rsplit("/", 1)[-1] or "(native)"
        if script.startswith("wasm-"):  # wasm://wasm/<module>-<hash>: Pyodide's interpreter
            script = "wasm"
        function = frame["functionName"] or "(anonymous)"
        index = re.fullmatch(r"wasm-function\[(\d+)\]", function)
        if index and script == "pyodide.asm.wasm" and int(index[1]) in exported:
            function = f"{exported[int(index[1])]} ({function})"
        function = f"{function} [{script}]"
        by_function[function] = by_function.get(function, 0.0) + delta / 1000
        by_script[script] = by_script.get(script, 0.0) + delta / 1000
    busy = sum(by_function.values())

    def ranked(table: dict[str, float], count: int) -> list[list]:
        rows = sorted(table.items(), key=lambda item: -item[1])[:count]
        return [[name, round(ms), round(100 * ms / busy, 1)] for name, ms in rows]

    return {
        "busy_ms": round(busy),
        "by_script": ranked(by_script, 10),
        "top": ranked(by_function, top),
    }


def finish(results: dict, args: argparse.Namespace) -> int:
    if "profiled" in results:
        results["profile"] = {
            f"{client} {side}": profile_summary(args.profile / f"{client}-{side}.cpuprofile")
            for client in results["profiled"]
            for side in ("sender", "receiver")
        }
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
    if "profile" in results:
        report_profile(results, args)
    print(
        f"{results['cpus']} CPUs, load {results['load_before']:.2f} → {results['load_after']:.2f}"
    )


def report_profile(results: dict, args: argparse.Namespace) -> None:
    speeds = ", ".join(f"{name} {p['mib_s']:.1f}" for name, p in results["profiled"].items())
    print(
        f"profiled page → relay → page, {args.size / MiB:.0f} MiB: {speeds} MiB/s "
        f"(under the profiler: not speed figures); profiles in {args.profile}"
    )
    for side, summary in results["profile"].items():
        print(f"{side} main thread: {summary['busy_ms']} ms busy; by script (ms, %):")
        for name, ms, share in summary["by_script"]:
            print(f"    {ms:7d} {share:5.1f}%  {name}")
        print("  top functions by self time (ms, %):")
        for name, ms, share in summary["top"]:
            print(f"    {ms:7d} {share:5.1f}%  {name}")


def report_cpu(label: str, result: dict) -> None:
    cpu = result["cpu_ms_per_mib"]
    parts = ", ".join(f"{name} {ms:.1f}" for name, ms in cpu.items())
    print(f"  {label} CPU per MiB moved (ms): {parts}; total {sum(cpu.values()):.1f}")
    tasks = ", ".join(
        f"{side} {t['count']} (longest {t['longest_ms']:.0f} ms, {t['total_ms']:.0f} ms in all)"
        for side, t in result["long_tasks"].items()
    )
    print(f"  {label} long tasks (> 50 ms) on the main thread: {tasks}")
    print(
        f"  {label} receiving browser: {result['above_idle_mb']:.0f} MB above idle at its peak "
        f"(idle {result['idle_mb']:.0f} MB, peak {result['peak_mb']:.0f} MB)"
    )


def report_transfers(results: dict, args: argparse.Namespace) -> None:
    t = results["throughput"]
    ratio = t["mib_s"] / t["ceiling_mib_s"]
    print(
        f"page → relay → page (WebRTC blocked), {args.size / MiB:.0f} MiB: {t['mib_s']:.1f} MiB/s; "
        f"WebCrypto ceiling {t['ceiling_mib_s']:.1f} MiB/s; ratio {ratio:.0%} (goal ≥ 60 %)"
    )
    r = results["reference_js"]
    print(
        f"reference JS page → relay → page, same file: {r['mib_s']:.1f} MiB/s; Hushdrop / "
        f"reference {t['mib_s'] / r['mib_s']:.0%} (goal ≥ 80 %); the reference's JS SHA-256 "
        f"ran at {r['sha256_mib_s'] or 0:.0f} MiB/s"
    )
    if "direct" in results:
        d = results["direct"]
        print(
            f"page → page direct (WebRTC), same file: {d['mib_s']:.1f} MiB/s, "
            f"{d['mib_s'] / t['mib_s']:.2f}× the relayed path (goal ≥ 1); the relay carried "
            f"{d['relayed_share']:.2%} of the file's size (relayed run: {t['relayed_share']:.0%})"
        )
    report_cpu("Hushdrop", t)
    report_cpu("reference", r)
    if "single" in results:
        single = results["single"]
        ref = r["single"]
        print(
            f"one page alone, same file: CLI → page {single['receive_mib_s']:.1f} MiB/s, "
            f"page → CLI {single['send_mib_s']:.1f} MiB/s; reference page with its CLI peer: "
            f"{ref['receive_mib_s']:.1f} and {ref['send_mib_s']:.1f} MiB/s; Hushdrop / reference "
            f"{single['receive_mib_s'] / ref['receive_mib_s']:.0%} and "
            f"{single['send_mib_s'] / ref['send_mib_s']:.0%} (goal ≥ 80 %)"
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
