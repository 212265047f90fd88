"""Debian's Firefox driven over WebDriver BiDi, the W3C protocol Firefox itself speaks.

firefox-esr starts headless on a fresh profile with `--remote-debugging-port=0` and prints the
address of its BiDi WebSocket; `Firefox` connects to it with the `websockets` client the CLI
already depends on. No geckodriver and no downloaded browser.

`Firefox.person()` opens one tab in a user context of its own (separate cookies, storage, cache
and service workers: another person's browser) with a download folder of its own, and returns a
`FirefoxTab`, which implements enginetools.Tab.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

from enginetools import Download, PageScriptError, ensure_program
from websockets.sync.client import connect

START_TIMEOUT = 60.0  # s, a cold start on a busy 2-core machine
COMMAND_TIMEOUT = 120.0  # s; navigation waits for the page's load event
_LISTENING = re.compile(r"WebDriver BiDi listening on (ws://\S+)")

# Written to the profile's user.js before Firefox starts.
PREFS: dict[str, bool | int | str] = {
    # Downloads go to each person's folder (browser.setDownloadBehavior), never to a dialog.
    "browser.download.always_ask_before_handling_new_types": False,
    "browser.download.useDownloadDir": True,
    "browser.download.folderList": 2,
    "browser.download.alwaysOpenPanel": False,
    # WebRTC between two pages on this machine: host candidates on the loopback interface only,
    # as real addresses (not mDNS names, which nothing here resolves).
    "media.peerconnection.ice.loopback": True,
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    "media.peerconnection.ice.force_interface": "lo",
    # The browser's languages (navigator.languages): English unless a test asks for others, whatever
    # the machine's locale.
    "intl.accept_languages": "en-US, en",
    # Only the pages under test use the network: no updates, telemetry, experiments, safe-browsing
    # look-ups or connectivity probes.
    "app.normandy.enabled": False,
    "app.update.auto": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.blockedURIs.enabled": False,
    "browser.newtabpage.enabled": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "datareporting.policy.dataSubmissionEnabled": False,
    "extensions.update.enabled": False,
    "media.gmp-manager.updateEnabled": False,
    "messaging-system.rsexperimentloader.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "services.settings.server": "http://127.0.0.1:9/remote-settings-disabled",
    "toolkit.telemetry.reportingpolicy.firstRun": False,
}


class BiDiError(Exception):
    """A command the browser answered with an error."""


class Firefox:
    """One firefox-esr process and its BiDi session; stop() ends both, whatever their state."""

    def __init__(self, prefs: dict[str, bool | int | str] | None = None) -> None:
        """`prefs` are added to PREFS (e.g. `{"intl.accept_languages": "de-DE, de"}`)."""
        self._dir = Path(tempfile.mkdtemp(prefix="hushdrop-firefox-"))
        profile = self._dir / "profile"
        profile.mkdir()
        chosen = {**PREFS, **(prefs or {})}
        (profile / "user.js").write_text(
            "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in chosen.items())
        )
        self.output: list[str] = []
        self._process = subprocess.Popen(
            [
                ensure_program("firefox-esr"),
                *("--headless", "--no-remote", "--profile", str(profile)),
                *("--remote-debugging-port=0", "about:blank"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,  # its content processes share the group: stop() ends them all
            env={**os.environ, "MOZ_CRASHREPORTER_DISABLE": "1"},
        )
        self._ids = itertools.count(1)
        self._replies: dict[int, queue.Queue[dict]] = {}
        self._owners: dict[str, FirefoxTab] = {}  # browsing context -> the tab it belongs to
        self._lock = threading.Lock()
        self._socket = None
        try:
            self._socket = connect(
                self._bidi_address() + "/session",
                legacy=True,
                max_size=None,
                proxy=None,
                ping_interval=None,
                open_timeout=START_TIMEOUT,
            )
            threading.Thread(target=self._read, daemon=True).start()
            capabilities = self.send("session.new", capabilities={})["capabilities"]
            self.version = capabilities["browserVersion"]
            self.send(
                "session.subscribe",
                events=[
                    "browsingContext.contextCreated",
                    "browsingContext.downloadWillBegin",
                    "browsingContext.downloadEnd",
                    "log.entryAdded",
                ],
            )
        except BaseException:
            self.stop()
            raise

    def _bidi_address(self) -> str:
        """Read Firefox's output until it says where BiDi listens; keep draining it afterwards."""
        assert self._process.stderr is not None
        found: queue.Queue[str] = queue.Queue()

        def drain() -> None:
            for line in self._process.stderr:
                self.output.append(line)
                if match := _LISTENING.search(line):
                    found.put(match.group(1))
            found.put("")

        threading.Thread(target=drain, daemon=True).start()
        try:
            address = found.get(timeout=START_TIMEOUT)
        except queue.Empty:
            address = ""
        if not address:
            raise RuntimeError("Firefox did not start WebDriver BiDi:\n" + "".join(self.output))
        return address

    def _read(self) -> None:
        assert self._socket is not None
        try:
            for message in self._socket:
                self._dispatch(json.loads(message))
        except Exception:  # the connection closed: every waiting command fails below
            pass
        with self._lock:
            for reply in self._replies.values():
                reply.put({"type": "error", "error": "closed", "message": "Firefox went away"})

    def _dispatch(self, message: dict) -> None:
        if "id" in message:
            with self._lock:
                reply = self._replies.get(message["id"])
            if reply is not None:
                reply.put(message)
            return
        params = message.get("params", {})
        method = message.get("method")
        if method == "browsingContext.contextCreated":
            # Frames (the download frame among them) belong to the tab of their parent.
            owner = self._owners.get(params.get("parent") or "")
            if owner is not None:
                self._owners[params["context"]] = owner
            return
        owner = self._owners.get(params.get("context") or params.get("source", {}).get("context"))
        if owner is not None:
            owner._event(method, params)

    def send(self, method: str, **params: Any) -> dict:
        """Run one command; its result, or BiDiError."""
        if self._socket is None:
            raise BiDiError("not connected")
        command_id = next(self._ids)
        reply: queue.Queue[dict] = queue.Queue()
        with self._lock:
            self._replies[command_id] = reply
        try:
            self._socket.send(json.dumps({"id": command_id, "method": method, "params": params}))
            try:
                message = reply.get(timeout=COMMAND_TIMEOUT)
            except queue.Empty:
                raise BiDiError(f"{method}: no answer in {COMMAND_TIMEOUT:.0f} s") from None
        finally:
            with self._lock:
                del self._replies[command_id]
        if message.get("type") == "error":
            raise BiDiError(f"{method}: {message.get('error')}: {message.get('message')}")
        return message["result"]

    def person(self) -> FirefoxTab:
        """A tab in a fresh user context, downloading into a folder of its own."""
        user_context = self.send("browser.createUserContext")["userContext"]
        downloads = Path(tempfile.mkdtemp(prefix="downloads-", dir=self._dir))
        self.send(
            "browser.setDownloadBehavior",
            downloadBehavior={"type": "allowed", "destinationFolder": str(downloads)},
            userContexts=[user_context],
        )
        context = self.send("browsingContext.create", type="tab", userContext=user_context)
        tab = FirefoxTab(self, user_context, context["context"], downloads)
        self._owners[tab.context] = tab
        return tab

    def stop(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(BiDiError):
                self.send("browser.close")
            self._socket.close()
            self._socket = None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)  # whatever is left of its process group
        self._process.wait()
        shutil.rmtree(self._dir, ignore_errors=True)


class FirefoxTab:
    """One person's tab (see enginetools.Tab)."""

    engine = "firefox"

    def __init__(self, firefox: Firefox, user_context: str, context: str, downloads: Path) -> None:
        self._firefox = firefox
        self._user_context = user_context
        self.context = context
        self.downloads = downloads
        self.console: list[str] = []
        self._downloads: queue.Queue[Download] = queue.Queue()
        self._names: dict[str, str] = {}  # download URL -> suggested file name
        self._closed = False

    def _event(self, method: str, params: dict) -> None:
        if method == "log.entryAdded":
            self.console.append(f"{params.get('level')}: {params.get('text')}")
        elif method == "browsingContext.downloadWillBegin":
            self._names[params["url"]] = params.get("suggestedFilename", "")
        elif method == "browsingContext.downloadEnd":
            path = params.get("filepath")
            self._downloads.put(
                Download(
                    path=Path(path) if path else None,
                    suggested_filename=self._names.get(params["url"], ""),
                    failure=None if params.get("status") == "complete" else params.get("status"),
                )
            )

    def goto(self, url: str) -> None:
        self._firefox.send(
            "browsingContext.navigate", context=self.context, url=url, wait="complete"
        )

    def _call(self, declaration: str, arguments: list[dict], **options: Any) -> dict:
        result = self._firefox.send(
            "script.callFunction",
            functionDeclaration=declaration,
            arguments=arguments,
            target={"context": self.context},
            awaitPromise=True,
            **options,
        )
        if result["type"] == "exception":
            details = result["exceptionDetails"]
            raise PageScriptError(details.get("text", "") + "\n" + json.dumps(details)[:2000])
        return result["result"]

    def call(self, function: str, *args: Any) -> Any:
        declaration = (
            f"async (json) => JSON.stringify((await ({function})(...JSON.parse(json))) ?? null)"
        )
        value = self._call(declaration, [{"type": "string", "value": json.dumps(args)}])
        return json.loads(value["value"])

    def _element(self, finder: str, args: tuple) -> dict:
        declaration = f"(json) => ({finder})(...JSON.parse(json))"
        value = self._call(
            declaration,
            [{"type": "string", "value": json.dumps(args)}],
            resultOwnership="none",
            serializationOptions={"maxDomDepth": 0},
        )
        if value.get("type") != "node":
            raise PageScriptError(f"no element for {finder} {args!r}")
        return {"sharedId": value["sharedId"]}

    def click(self, finder: str, *args: Any) -> None:
        element = self._element(finder, args)
        self._call("(element) => element.scrollIntoView({block: 'center'})", [element])
        origin = {"type": "element", "element": element}
        pointer = [
            {"type": "pointerMove", "x": 0, "y": 0, "origin": origin},
            {"type": "pointerDown", "button": 0},
            {"type": "pointerUp", "button": 0},
        ]
        self._firefox.send(
            "input.performActions",
            context=self.context,
            actions=[{"type": "pointer", "id": "mouse", "actions": pointer}],
        )

    def set_files(self, paths: list[Path], finder: str, *args: Any) -> None:
        element = self._element(finder, args)
        self._firefox.send(
            "input.setFiles", context=self.context, element=element, files=[str(p) for p in paths]
        )

    def next_download(self, timeout: float) -> Download:
        try:
            return self._downloads.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no download finished within {timeout:.0f} s") from None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            with contextlib.suppress(BiDiError):
                self._firefox.send("browser.removeUserContext", userContext=self._user_context)
            shutil.rmtree(self.downloads, ignore_errors=True)
