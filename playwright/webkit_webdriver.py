"""WebKitGTK (Safari's engine) driven over classic W3C WebDriver.

Debian's webkit2gtk-driver provides WebKitWebDriver, which starts the MiniBrowser that
libwebkit2gtk ships, in `--automation` mode. MiniBrowser needs a display (with `--headless` it
hangs), so `Xvfb` first starts a private X server on a display number the X server picks itself.

Each `WebKit.person()` is a WebKitWebDriver and MiniBrowser of its own (separate storage and service
workers: another person's browser) whose downloads land in a folder of its own (XDG_DOWNLOAD_DIR
in a HOME of its own), and returns a `WebKitTab`, which implements enginetools.Tab.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from enginetools import Download, PageScriptError, ensure_program

START_TIMEOUT = 60.0  # s
COMMAND_TIMEOUT = 150.0  # s; navigation waits for the page's load event
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C key of an element reference
SETTLED_S = 1.0  # a download whose size held still this long after the page finished is done


def _stop(process: subprocess.Popen, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL to what is left of the process group it leads."""
    if process.poll() is None:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


class Xvfb:
    """A private X server on a free display; `display` is its DISPLAY value."""

    def __init__(self) -> None:
        read, write = os.pipe()
        self._process = subprocess.Popen(
            [
                ensure_program("Xvfb"),
                *("-displayfd", str(write), "-nolisten", "tcp"),
                *("-screen", "0", "1280x1024x24", "-noreset"),
            ],
            pass_fds=[write],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        os.close(write)
        with os.fdopen(read) as pipe:  # Xvfb writes the display number once it accepts clients
            number = pipe.readline().strip()
        if not number:
            _stop(self._process)
            raise RuntimeError("Xvfb did not start")
        self.display = f":{number}"

    def stop(self) -> None:
        _stop(self._process)


def minibrowser_path() -> str:
    found = sorted(glob.glob("/usr/lib/*/webkit2gtk-4.*/MiniBrowser"))
    if not found:
        ensure_program("MiniBrowser (libwebkit2gtk)")  # fails the test with the install hint
    return found[-1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class WebDriverError(Exception):
    """A command WebKitWebDriver answered with an error."""


class WebKit:
    """Starts one WebKitWebDriver + MiniBrowser per person on an X display; stop() ends them all."""

    def __init__(self, display: str) -> None:
        self._display = display
        self._dir = Path(tempfile.mkdtemp(prefix="hushdrop-webkit-"))
        self._tabs: list[WebKitTab] = []

    def person(self, env: dict[str, str] | None = None) -> WebKitTab:
        """A MiniBrowser of its own. WebKitGTK takes navigator.languages from the C library's
        locale (LC_ALL …): English (C.UTF-8) whatever the machine's, unless `env` says otherwise
        (e.g. {"LC_ALL": "de_DE.UTF-8", "LOCPATH": a folder with that locale})."""
        home = Path(tempfile.mkdtemp(prefix="person-", dir=self._dir))
        downloads = home / "Downloads"
        downloads.mkdir()
        (home / ".config").mkdir()
        (home / ".config" / "user-dirs.dirs").write_text(f'XDG_DOWNLOAD_DIR="{downloads}"\n')
        env = {
            **os.environ,
            "DISPLAY": self._display,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "LC_ALL": "C.UTF-8",
            **(env or {}),
        }
        port = _free_port()
        process = subprocess.Popen(
            [ensure_program("WebKitWebDriver"), f"--port={port}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            env=env,
            start_new_session=True,  # MiniBrowser and its web processes join its group
        )
        tab = WebKitTab(process, f"http://127.0.0.1:{port}", downloads)
        self._tabs.append(tab)
        tab.start()
        return tab

    def stop(self) -> None:
        for tab in self._tabs:
            tab.close()
        shutil.rmtree(self._dir, ignore_errors=True)


class WebKitTab:
    """One person's MiniBrowser window (see enginetools.Tab)."""

    engine = "webkit"

    def __init__(self, driver: subprocess.Popen, base: str, downloads: Path) -> None:
        self._driver = driver
        self._base = base
        self._session = ""
        self.downloads = downloads
        # Classic WebDriver reports no console messages: this is the driver's own output.
        self.console: list[str] = []
        self._seen: set[str] = set()  # downloads already handed out by next_download
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self._driver.stdout is not None
        for line in self._driver.stdout:
            self.console.append(line.rstrip("\n"))

    def _request(self, method: str, path: str, body: dict | None = None) -> Any:
        request = urllib.request.Request(
            self._base + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=COMMAND_TIMEOUT) as response:
                return json.load(response)["value"]
        except urllib.error.HTTPError as error:
            value = json.load(error).get("value", {})
            raise WebDriverError(f"{path}: {value.get('error')}: {value.get('message')}") from None

    def _command(self, method: str, path: str, body: dict | None = None) -> Any:
        return self._request(method, f"/session/{self._session}{path}", body)

    def start(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if self._request("GET", "/status").get("ready"):
                    break
            except (urllib.error.URLError, OSError):
                pass
            if self._driver.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("WebKitWebDriver did not start:\n" + "\n".join(self.console))
            time.sleep(0.05)
        options = {"binary": minibrowser_path(), "args": ["--automation"]}
        capabilities = {"alwaysMatch": {"webkitgtk:browserOptions": options}}
        self._session = self._request("POST", "/session", {"capabilities": capabilities})[
            "sessionId"
        ]
        self._command("POST", "/timeouts", {"script": COMMAND_TIMEOUT * 1000})

    def goto(self, url: str) -> None:
        self._command("POST", "/url", {"url": url})

    def call(self, function: str, *args: Any) -> Any:
        script = f"""
            const done = arguments[arguments.length - 1];
            Promise.resolve()
              .then(() => ({function})(...JSON.parse(arguments[0])))
              .then((value) => done(JSON.stringify({{value: value ?? null}})),
                    (error) => done(JSON.stringify({{error: String(error && error.stack
                                                                 || error)}})));
        """
        reply = json.loads(
            self._command("POST", "/execute/async", {"script": script, "args": [json.dumps(args)]})
        )
        if "error" in reply:
            raise PageScriptError(reply["error"])
        return reply["value"]

    def _element(self, finder: str, args: tuple) -> str:
        script = f"return ({finder})(...JSON.parse(arguments[0]));"
        value = self._command(
            "POST", "/execute/sync", {"script": script, "args": [json.dumps(args)]}
        )
        if not isinstance(value, dict) or ELEMENT not in value:
            raise PageScriptError(f"no element for {finder} {args!r}")
        return value[ELEMENT]

    def click(self, finder: str, *args: Any) -> None:
        self._command("POST", f"/element/{self._element(finder, args)}/click", {})

    def set_files(self, paths: list[Path], finder: str, *args: Any) -> None:
        element = self._element(finder, args)
        text = "\n".join(str(path) for path in paths)
        self._command("POST", f"/element/{element}/value", {"text": text})

    def next_download(self, timeout: float) -> Download:
        """WebDriver has no download events, and WebKitGTK writes a download under its final name
        as it arrives: the next new file in the folder, once its size has held still for
        SETTLED_S. Call it when the page says the transfer ended, so a pause is not taken for the
        end. A failed download is not told apart (the page's alert says it failed)."""
        deadline = time.monotonic() + timeout
        sizes: dict[str, tuple[int, float]] = {}  # name -> (size, since when)
        while time.monotonic() < deadline:
            now = time.monotonic()
            for path in sorted(self.downloads.iterdir()):
                if path.name in self._seen:
                    continue
                size = path.stat().st_size
                if sizes.get(path.name, (None,))[0] != size:
                    sizes[path.name] = (size, now)
                elif now - sizes[path.name][1] >= SETTLED_S:
                    self._seen.add(path.name)
                    return Download(path, path.name, None)
            time.sleep(0.1)
        raise AssertionError(f"no download finished within {timeout:.0f} s")

    def close(self) -> None:
        if self._driver.poll() is None and self._session:
            with contextlib.suppress(Exception):
                self._request("DELETE", f"/session/{self._session}")
        _stop(self._driver)
        shutil.rmtree(self.downloads.parent, ignore_errors=True)  # the person's HOME
