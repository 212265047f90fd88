"""The page's Python entry point: configuration, the crypto backend, and routing what the user
asks for (send the selection, receive a code or a link) to one transfer flow at a time.

app.js keeps the page usable before Python is ready; `main()` hands it the handlers and from then
on the buttons work. Pyodide only.
"""

from __future__ import annotations

import asyncio
import re
import traceback
from collections.abc import Coroutine

import js
from pyodide.ffi import create_proxy, to_js
from pyodide.http import pyfetch

from ..crypto.webcrypto import WebCryptoBackend
from ..protocol.codes import parse_code
from ..protocol.errors import HushdropError
from . import options, ui
from .context import PageContext
from .errors import error_message
from .files import OutgoingSelection
from .links import check_site, site_url
from .messages import t
from .receive import ReceiveFlow
from .send import SendFlow

# A fragment that is meant as a code (`#123456-…`), not an in-page anchor.
_CODE_FRAGMENT = re.compile(r"^#\d{6}[-_ ]")


async def load_config() -> dict[str, object]:
    """config.json from the build (`relay`: empty means this page's origin)."""
    try:
        response = await pyfetch("config.json", cache="no-cache")
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

    def send(self, password: str) -> None:
        if self.busy:
            return
        ui.clear_alert()
        try:
            selection = OutgoingSelection.snapshot(ui.text_to_send())
        except HushdropError as exc:
            ui.alert(error_message(exc, sender=True))
            return
        js.document.getElementById("send-password").value = ""
        ttl, receivers = options.chosen()
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
        js.document.getElementById("receive-code").value = ""
        self._start(ReceiveFlow(self.ctx, code).run())

    def link(self, href: str) -> None:
        """The page was opened with (or navigated to) `#<room>-<secret>`."""
        if self.busy or not _CODE_FRAGMENT.match(js.location.hash):
            return
        # The secret leaves the address bar and the history: the code works only once anyway.
        js.history.replaceState(None, "", js.location.pathname + js.location.search)
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
    try:
        config = await load_config()
        origin = str(js.location.origin)
        relay = str(config.get("relay") or origin)
        ctx = PageContext(
            WebCryptoBackend(),
            relay,
            site_url(origin, str(js.location.pathname)),
            origin,
            **resume_window(config),
            ice_servers=ice_servers(config),
        )
        app = App(ctx)
        handlers = {
            "send": create_proxy(app.send),
            "receive": create_proxy(app.receive),
            "link": create_proxy(app.link),
        }
    except Exception as exc:
        js.console.error(traceback.format_exc())
        js.hushdrop.engineFailed(str(exc))
        return
    js.hushdrop.ready(to_js(handlers, dict_converter=js.Object.fromEntries))
    # In the background: the page is ready to send before the relay answered.
    app.options = asyncio.ensure_future(options.offer(ctx.relay))
    if js.location.hash:
        app.link(str(js.location.href))
