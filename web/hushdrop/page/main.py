"""The engine's Python entry point, in the engine worker: configuration, the crypto backend, and
routing what the person asks for (send the selection, receive a code or a link) to one transfer
flow at a time.

app.js keeps the page usable before Python is ready; the page's commands (web/engine.js) come
here as JSON, and once `main()` said it is ready the buttons work. Pyodide only.
"""

from __future__ import annotations

import asyncio
import json
import re
import traceback
from collections.abc import Coroutine
from urllib.parse import urljoin

import js
from pyodide.ffi import create_proxy
from pyodide.http import pyfetch

from ..crypto.webcrypto import WebCryptoBackend
from ..protocol.codes import parse_code
from ..protocol.errors import HushdropError
from . import options, ui
from .context import Capabilities, PageContext
from .errors import error_message
from .files import OutgoingSelection
from .links import check_site, site_url
from .messages import t
from .receive import ReceiveFlow
from .send import SendFlow

# A fragment that is meant as a code (`#123456-…`), not an in-page anchor.
_CODE_FRAGMENT = re.compile(r"^#\d{6}[-_ ]")


async def load_config(page_url: str) -> dict[str, object]:
    """config.json from the build (`relay`: empty means this page's origin), next to the page.

    Resolved against the page's address: the worker's own is PyScript's (a blob: URL), against
    which no relative address resolves.
    """
    try:
        response = await pyfetch(urljoin(page_url, "config.json"), cache="no-cache")
        if response.ok:
            config = await response.json()
            if isinstance(config, dict):
                return config
    except Exception:  # an unreachable or broken config falls back to the defaults
        pass
    return {}


class App:
    """Starts transfers; at most one runs at a time (the home screen is hidden meanwhile)."""

    def __init__(self, ctx: PageContext) -> None:
        self.ctx = ctx
        self.task: asyncio.Task | None = None
        self.options: asyncio.Future | None = None  # filling in the link options

    @property
    def busy(self) -> bool:
        return self.task is not None and not self.task.done()

    def command(self, command: dict) -> None:
        """A command from the page (web/engine.js)."""
        kind = command.get("kind")
        if kind == "event":
            ui.dispatch(command["handler"], command.get("value"))
        elif kind == "send":
            self.send(command)
        elif kind == "receive":
            self.receive(str(command["text"]))
        elif kind == "link":
            self.link(str(command["href"]))

    def send(self, command: dict) -> None:
        """ "Create link": the selection and the home screen's fields as they were then."""
        if self.busy:
            return
        ui.clear_alert()
        try:
            selection = OutgoingSelection.snapshot(
                command.get("selection"), str(command.get("text") or "")
            )
        except HushdropError as exc:
            ui.alert(error_message(exc, sender=True))
            return
        ui.set_home_field("send-password", "value", "")
        ttl, receivers = options.chosen(
            str(command.get("expiry") or ""), str(command.get("receivers") or "")
        )
        password = str(command.get("password") or "")
        self._start(SendFlow(self.ctx, selection, password, ttl, receivers).run())

    def receive(self, text: str) -> None:
        if self.busy:
            return
        ui.clear_alert()
        try:
            code = parse_code(text)
            check_site(code, self.ctx.origin)
        except HushdropError as exc:
            ui.show_home()
            ui.alert(error_message(exc, sender=False))
            return
        ui.set_home_field("receive-code", "value", "")
        self._start(ReceiveFlow(self.ctx, code).run())

    def link(self, href: str) -> None:
        """The page was opened with (or navigated to) `#<room>-<secret>` (the page took the
        secret out of its address already)."""
        if self.busy or not _CODE_FRAGMENT.match("#" + href.partition("#")[2]):
            return
        self.receive(href)

    def _start(self, flow: Coroutine) -> None:
        self.task = asyncio.ensure_future(self._guarded(flow))

    @staticmethod
    async def _guarded(flow: Coroutine) -> None:
        try:
            await flow
        except Exception as exc:  # a bug: say so plainly rather than freeze the page
            js.console.error(traceback.format_exc())
            ui.alert(t("error.bug", detail=repr(exc)))


def resume_window(config: dict[str, object]) -> dict[str, float]:
    """config.json's `resumeWindow` (seconds), when it is a sensible number."""
    value = config.get("resumeWindow")
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= 86400:
        return {"resume_window": float(value)}
    return {}


def ice_servers(config: dict[str, object]) -> tuple:
    """config.json's `iceServers` for WebRTC: a list of {urls, username?, credential?}."""
    servers = config.get("iceServers")
    if not isinstance(servers, list):
        return ()
    return tuple(s for s in servers if isinstance(s, dict) and s.get("urls"))


async def main() -> None:
    loop = asyncio.get_event_loop()
    started: asyncio.Future[dict] = loop.create_future()
    app: App | None = None

    def on_command(text: str) -> None:
        command = json.loads(text)
        if command.get("kind") == "start":
            if not started.done():
                started.set_result(command)
        elif app is not None:
            app.command(command)

    js.hushdrop.listen(create_proxy(on_command))
    try:
        page = await started  # where the page is, and what it can do
        origin = str(page["origin"])
        config = await load_config(origin + str(page["pathname"]))
        relay = str(config.get("relay") or origin)
        ctx = PageContext(
            WebCryptoBackend(),
            relay,
            site_url(origin, str(page["pathname"])),
            origin,
            **resume_window(config),
            ice_servers=ice_servers(config),
            capabilities=Capabilities.of(page.get("capabilities")),
        )
        app = App(ctx)
    except Exception as exc:
        js.console.error(traceback.format_exc())
        js.hushdrop.engineFailed(str(exc))
        return
    js.hushdrop.ready(None)
    # In the background: the page is ready to send before the relay answered.
    app.options = asyncio.ensure_future(options.offer(ctx.relay))
