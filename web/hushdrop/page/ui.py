"""The page's DOM as the drivers see it: the home screen, transfer views, alerts, progress.

A transfer view is cloned from a `<template>` in index.html (`send-template`, `receive-template`)
into `#view`, and the home screen is taken out of the document meanwhile, so the page only ever
holds one "Password" field and one "Verification code". Elements are found once, by their
`data-part` name, and kept: the transfer loop never searches the DOM. Every text is a catalog
message (messages.py), painted by web/i18n.js in the page's language. Pyodide only.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable

import js
from pyodide.ffi import create_proxy

from .humanize import RateMeter
from .messages import Message, Percent, Size, t

_home = js.document.getElementById("home")


def paint(element, message: Message) -> None:
    """Give `element` the message as its text, in the page's language (and in the next one)."""
    js.hushdrop.i18n.setText(element, message.key, message.args_json())


def paint_attributes(element, attributes: dict[str, str], **args: object) -> None:
    """Attributes from messages: `{"aria-label": "key"}`, the messages' arguments as keywords."""
    js.hushdrop.i18n.setAttributes(element, json.dumps(attributes), Message("", args).args_json())


def plain(element, text: str) -> None:
    """Text that is no message (a file name, a code): shown as it is in every language."""
    element.removeAttribute("data-i18n")
    element.removeAttribute("data-i18n-args")
    element.textContent = text


def formatted(message: Message) -> str:
    """The message in the page's language now (for what cannot keep it: a peer's reason)."""
    return str(js.hushdrop.i18n.format(message.key, message.args_json()))


def set_title(message: Message) -> None:
    """The tab's title (kept as a message too: a change of language repaints it)."""
    js.hushdrop.i18n.setTitle(message.key, message.args_json())


def alert(message: Message) -> None:
    """Show an error in the page's role="alert" element (screen readers announce it)."""
    paint(js.document.getElementById("alert"), message)


def clear_alert() -> None:
    plain(js.document.getElementById("alert"), "")


def announce(message: Message) -> None:
    """Say it in the polite live region (screen readers read it when they are not busy)."""
    js.hushdrop.announce(formatted(message))


def set_busy(busy: bool) -> None:
    """While busy, leaving the page asks for confirmation (app.js)."""
    js.hushdrop.setBusy(busy)


def text_to_send() -> str:
    """What the home screen's "Text to send" box holds."""
    return str(_home.querySelector("#send-text").value)


def clear_text_to_send() -> None:
    """Empty the "Text to send" box (it was sent), and let Create link follow (app.js)."""
    box = _home.querySelector("#send-text")
    box.value = ""
    box.dispatchEvent(js.Event.new("input"))


def home_field(element_id: str):
    """A control of the home screen, found also while a transfer's view replaced it."""
    return _home.querySelector(f"#{element_id}")


def show_home() -> None:
    view = js.document.getElementById("view")
    view.replaceChildren()
    if not _home.isConnected:
        view.before(_home)
    _home.hidden = False  # app.js hides it while a link is being opened
    set_title(t("title.home"))


# Parts that ask the user to act while a transfer runs; hidden when it ends (see View.end).
ENDED_PROMPTS = ("share", "password-form", "offer", "close-link")


class View:
    """One transfer's part of the page."""

    current: View | None = None  # the view on screen; replaced views release their listeners

    def __init__(self, template_id: str) -> None:
        if View.current is not None:
            View.current.release()
        View.current = self
        template = js.document.getElementById(template_id)
        self.root = template.content.firstElementChild.cloneNode(True)
        self._parts = {el.dataset.part: el for el in self.root.querySelectorAll("[data-part]")}
        self._proxies: list = []
        _home.remove()
        js.document.getElementById("view").replaceChildren(self.root)
        js.window.scrollTo(0, 0)
        # Move focus into the new view so keyboard and screen-reader users land where things are.
        self._parts["title"].focus()

    def part(self, name: str):
        return self._parts[name]

    def text(self, name: str, message: Message) -> None:
        paint(self._parts[name], message)

    def plain(self, name: str, value: str) -> None:
        """A text that is no message (a code, a verification code)."""
        plain(self._parts[name], value)

    def status(self, message: Message) -> None:
        paint(self._parts["status"], message)

    def show(self, *names: str) -> None:
        for name in names:
            self._parts[name].hidden = False

    def hide(self, *names: str) -> None:
        for name in names:
            self._parts[name].hidden = True
        self._keep_focus()

    def _keep_focus(self) -> None:
        """Focus that was inside a part now hidden (or on a button just disabled, which browsers
        send back to <body>) goes to the view's heading, not the top of the page."""
        active = js.document.activeElement
        if active is None or active == js.document.body or not active.getClientRects().length:
            self._parts["title"].focus()

    def on(self, name: str, event: str, handler: Callable) -> None:
        proxy = create_proxy(handler)
        self._proxies.append((self._parts[name], event, proxy))
        self._parts[name].addEventListener(event, proxy)

    def click(self, *names: str) -> asyncio.Future[str]:
        """A future resolved with the name of whichever of these buttons is clicked first."""
        future: asyncio.Future[str] = asyncio.get_event_loop().create_future()

        def make(name: str) -> Callable:
            def handler(_event) -> None:
                if not future.done():
                    future.set_result(name)

            return handler

        for name in names:
            self.on(name, "click", make(name))
        return future

    def submitted(self, form: str, field: str) -> asyncio.Future[str]:
        """A future resolved with the field's value when the form is submitted non-empty."""
        future: asyncio.Future[str] = asyncio.get_event_loop().create_future()
        element = self._parts[field]

        def handler(_event) -> None:
            value = element.value
            if value and not future.done():
                future.set_result(value)

        self.on(form, "submit", handler)
        return future

    def end(self) -> None:
        """The transfer is over (either way): swap Cancel for the button that starts anew, and
        say how it ended."""
        # What asked for an action that can no longer happen goes: a dead link, an offer that
        # can no longer be downloaded, a password nobody checks.
        self.hide("cancel", *(name for name in ENDED_PROMPTS if name in self._parts))
        self.show("again")
        self._announce_end()

        def again(_event) -> None:
            self.release()
            clear_alert()
            show_home()
            js.document.getElementById("send-title").focus()  # the button clicked is gone

        self.on("again", "click", again)

    def _announce_end(self) -> None:
        # The status line (role=status) and the alert announce themselves; this adds what they
        # do not say: the heading's outcome, or the details of a completed transfer.
        done = self._parts["done"]
        if not done.hidden and done.textContent:
            announce(t("announce.complete", details=str(done.textContent)))
        else:
            announce(t("announce.ended", heading=str(self._parts["title"].textContent)))

    def release(self) -> None:
        """Detach every listener this view added (their proxies would otherwise leak)."""
        for element, event, proxy in self._proxies:
            element.removeEventListener(event, proxy)
            proxy.destroy()
        self._proxies.clear()


class ProgressView:
    """The progress bar and its "done of total · speed · time left" line, repainted ≤ 4×/s.

    The percentage also goes into the tab title, where it stays visible in a background tab.
    """

    TITLE_INTERVAL = 2.0  # s; a title change costs the page several ms (the browser UI redraws)

    def __init__(self, view: View, total: int | None, *, sending: bool) -> None:
        """`total` None: a stream of unknown length (PROTOCOL.md §7.2): the bar is indeterminate
        and the line says bytes and speed, until `update` is told the total at the end."""
        self._sending = sending  # the tab title says "sent" or "received"
        self._title_at = -self.TITLE_INTERVAL
        self._bar = view.part("progress")
        self._text = view.part("progress-text")
        self.meter = RateMeter(total)
        self._done = 0
        self._catch_up: asyncio.TimerHandle | None = None
        if total is None:
            self._bar.removeAttribute("value")  # an indeterminate <progress>
        else:
            self._bar.max = max(total, 1)
            self._bar.value = 0
        paint(self._text, self.meter.text(0))
        view.show("progress-block")

    def pause(self) -> None:
        """No data flows (a lost connection): drop the speed and time left; the next update
        measures afresh."""
        done = self._done if self.meter.total else 0
        if self._catch_up is not None:
            self._catch_up.cancel()
            self._catch_up = None
        self.meter.restart(done)
        paint(self._text, t("progress.paused", line=self.meter.text(done)))

    def update(self, done: int, total: int | None = None) -> None:
        """`total`: the length a stream turned out to have, once it ended."""
        self._done = done
        if self.meter.total is None and total is not None:
            self.meter.total = total
            self._bar.max = max(total, 1)
        if not self.meter.due(done):
            # Repainted within the interval: these numbers are shown once it is over, also when
            # no further update comes (e.g. the sender's pipe waiting for its writer).
            delay = self.meter.held_back(done)
            if delay is not None and self._catch_up is None:
                loop = asyncio.get_running_loop()
                self._catch_up = loop.call_later(delay, self._show_held_back)
            return
        total = self.meter.total
        now = self.meter.elapsed()
        paint(self._text, self.meter.text(done))
        if total is None:
            if now - self._title_at >= self.TITLE_INTERVAL:
                self._title_at = now
                key = "title.sent-size" if self._sending else "title.received-size"
                set_title(t(key, size=Size(done)))
            return
        self._bar.value = done if total else 1
        if now - self._title_at >= self.TITLE_INTERVAL:
            self._title_at = now
            percent = Percent((100 * done // total if total else 100) / 100)
            key = "title.sent-percent" if self._sending else "title.received-percent"
            set_title(t(key, percent=percent))

    def _show_held_back(self) -> None:
        self._catch_up = None
        self.update(self._done)


class ResumeCountdown:
    """While a lost connection is being restored: the time left of the resume window, counted
    down in the status line, the stale speed and time left cleared, the tab title saying so."""

    def __init__(
        self, view: View, progress: ProgressView | None, window: float, status_key: str
    ) -> None:
        self._view = view
        self._progress = progress
        self._deadline = time.monotonic() + window
        self._status_key = status_key  # says who is awaited, with the time {left}
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        if self._progress is not None:
            self._progress.pause()
        set_title(t("title.reconnecting"))
        while (left := self._deadline - time.monotonic()) > 0:
            minutes, seconds = divmod(math.ceil(left), 60)
            # A clock (m:ss) reads the same in every language the page speaks.
            self._view.status(t(self._status_key, left=f"{minutes}:{seconds:02d}"))
            await asyncio.sleep(min(1.0, left))

    def stop(self) -> None:
        self._task.cancel()


ROUTES = {"direct": t("route.direct"), "relayed": t("route.relayed")}


def show_route(view: View, route: str) -> None:
    """Say whether the data goes straight to the other device or through the relay."""
    view.text("route", ROUTES[route])
    view.part("route").dataset.route = route
    view.show("route")
