"""A bare Chromium for benchmarks: driven over the DevTools protocol without Playwright.

Playwright enables the DevTools *Network* domain on every page it drives, and Chromium then
copies every WebSocket frame it sends or receives, base64-encoded, into a DevTools event. For a
page moving hundreds of MiB through a WebSocket that costs more than the transfer itself: a
page's WebSocket receives about 50 MiB/s under Playwright here and over 300 MiB/s without it.
No user's browser does that work, so the transfer benchmarks drive Chromium with this module,
which only ever enables what it uses (Runtime evaluation, file inputs, downloads).

Only what bench/page.py needs: launch, open a page, evaluate, poll, set files, click, wait for a
download, and plain commands in a tab's session (the CPU profiler).
"""

from __future__ import annotations

import itertools
import json
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

START_TIMEOUT = 30.0
POLL = 0.05


class DevToolsError(RuntimeError):
    pass


class BareChromium:
    """One headless Chromium process with its own profile, and its DevTools connection."""

    def __init__(self, profile: Path, downloads: Path, flags: list[str]) -> None:
        self.downloads = downloads
        downloads.mkdir(parents=True, exist_ok=True)
        executable = shutil.which("chromium") or "/usr/bin/chromium"
        self.process = subprocess.Popen(
            [
                executable,
                "--headless",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                *flags,
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        self.pid = self.process.pid
        self._ids = itertools.count(1)
        self._replies: dict[int, queue.Queue[dict]] = {}
        self._events: list[dict] = []
        self._events_changed = threading.Condition()
        self._lock = threading.Lock()
        try:
            self._socket = connect(self._endpoint(profile), max_size=None, open_timeout=10)
        except BaseException:
            self.close()
            raise
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.send(
            "Browser.setDownloadBehavior",
            behavior="allowAndName",
            downloadPath=str(downloads),
            eventsEnabled=True,
        )

    def _endpoint(self, profile: Path) -> str:
        marker = profile / "DevToolsActivePort"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DevToolsError(f"Chromium exited with {self.process.returncode}")
            lines = marker.read_text().split() if marker.exists() else []
            if len(lines) == 2:
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
            time.sleep(POLL)
        raise DevToolsError("Chromium did not open its DevTools port")

    def _read(self) -> None:
        try:
            for raw in self._socket:
                message = json.loads(raw)
                if "id" in message:
                    with self._lock:
                        reply = self._replies.pop(message["id"], None)
                    if reply is not None:
                        reply.put(message)
                else:
                    with self._events_changed:
                        self._events.append(message)
                        self._events_changed.notify_all()
        except Exception:  # the browser went away: waiting calls time out with a clear error
            return

    def send(self, method: str, session: str | None = None, **params: Any) -> dict:
        """One DevTools command; its result, or DevToolsError."""
        number = next(self._ids)
        reply: queue.Queue[dict] = queue.Queue()
        with self._lock:
            self._replies[number] = reply
        message: dict[str, Any] = {"id": number, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        self._socket.send(json.dumps(message))
        try:
            answer = reply.get(timeout=120)
        except queue.Empty:
            raise DevToolsError(f"no answer to {method}") from None
        if "error" in answer:
            raise DevToolsError(f"{method}: {answer['error'].get('message')}")
        return answer.get("result", {})

    def wait_event(self, method: str, timeout: float, **match: Any) -> dict:
        """The first event named `method` whose params contain `match` (seen before or after).

        A tuple in `match` accepts any of its values."""
        deadline = time.monotonic() + timeout
        with self._events_changed:
            while True:
                for event in self._events:
                    params = event.get("params", {})
                    if event["method"] == method and all(
                        params.get(k) in v if isinstance(v, tuple) else params.get(k) == v
                        for k, v in match.items()
                    ):
                        return params
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DevToolsError(f"timed out waiting for {method} {match}")
                self._events_changed.wait(remaining)

    def new_page(self, url: str, init_script: str | None = None) -> BarePage:
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        page = BarePage(self, session)
        if init_script:
            self.send("Page.enable", session)  # scripts for new documents need the domain on
            self.send("Page.addScriptToEvaluateOnNewDocument", session, source=init_script)
        self.send("Page.navigate", session, url=url)
        return page

    def wait_download(self, timeout: float) -> Path:
        """The file of the first download to finish (its failure raises DevToolsError)."""
        guid = self.wait_event("Browser.downloadWillBegin", timeout)["guid"]
        ended = self.wait_event(
            "Browser.downloadProgress", timeout, guid=guid, state=("completed", "canceled")
        )
        if ended["state"] != "completed":
            raise DevToolsError("the download failed")
        return self.downloads / guid

    def close(self) -> None:
        socket = getattr(self, "_socket", None)
        if socket is not None:
            socket.close()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> BareChromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BarePage:
    """A tab: evaluate JavaScript, wait for a condition, set files, click with a user gesture."""

    def __init__(self, browser: BareChromium, session: str) -> None:
        self._browser = browser
        self._session = session

    def command(self, method: str, **params: Any) -> dict:
        """Any other DevTools command in this tab's session (e.g. the CPU profiler)."""
        return self._browser.send(method, self._session, **params)

    def evaluate(self, expression: str, *, by_value: bool = True) -> Any:
        result = self._browser.send(
            "Runtime.evaluate",
            self._session,
            expression=expression,
            awaitPromise=True,
            returnByValue=by_value,
            userGesture=True,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise DevToolsError(f"evaluation failed: {text}")
        return result["result"].get("value") if by_value else result["result"]

    def wait_for(self, expression: str, timeout: float) -> Any:
        """Poll `expression` until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(expression)
            except DevToolsError:
                value = None  # e.g. the page is still navigating
            if value:
                return value
            if time.monotonic() > deadline:
                raise DevToolsError(f"timed out waiting for {expression}")
            time.sleep(POLL)

    def set_files(self, selector: str, paths: list[Path]) -> None:
        element = self.evaluate(f"document.querySelector({json.dumps(selector)})", by_value=False)
        self._browser.send(
            "DOM.setFileInputFiles",
            self._session,
            files=[str(p) for p in paths],
            objectId=element["objectId"],
        )

    def click(self, selector: str) -> None:
        self.evaluate(f"document.querySelector({json.dumps(selector)}).click()")
