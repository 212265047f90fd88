"""The page's interface as the drivers see it: the home screen, transfer views, alerts, progress.

The drivers run in the engine worker, away from the document: every change is an operation
posted to the page, where web/views.js applies it, and what the person does there (a click, a
submitted form) comes back as an event (`dispatch`). A transfer view is cloned from a
`<template>` in index.html (`send-template`, `receive-template`) into `#view`, and the home
screen is taken out of the document meanwhile, so the page only ever holds one "Password" field
and one "Verification code". A view's elements are named by their `data-part`. Every text is a
catalog message (messages.py), painted by web/i18n.js in the page's language. Pyodide only.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from collections.abc import Callable

import js

from .humanize import RateMeter
from .messages import Message, Percent, Size, t


def post(op: str, **fields: object) -> None:
    """One operation for the page (views.js), in the order they are made."""
    js.hushdrop.ui(json.dumps({"op": op, **fields}, ensure_ascii=False))


def message_json(message: Message | None) -> dict[str, object] | None:
    """A message as views.js paints it: {key, args} (None: no text)."""
    if message is None:
        return None
    return {"key": message.key, "args": json.loads(message.args_json())}


_handlers: dict[int, Callable[[object], None]] = {}
_handler_ids = itertools.count(1)


def dispatch(handler: int, value: object) -> None:
    """The person acted in a view: run the handler registered for it (if its view still is)."""
    callback = _handlers.get(handler)
    if callback is not None:
        callback(value)


def alert(message: Message) -> None:
    """Show an error in the page's role="alert" element (screen readers announce it)."""
    post("alert", message=message_json(message))


def clear_alert() -> None:
    post("alert", message=None)


def set_title(message: Message) -> None:
    """The tab's title (kept as a message too: a change of language repaints it)."""
    post("title", message=message_json(message))


def announce(message: Message) -> None:
    """Say it in the polite live region (screen readers read it when they are not busy)."""
    post("announce", message=message_json(message))


def set_busy(busy: bool) -> None:
    """While busy, leaving the page asks for confirmation (app.js)."""
    post("busy", value=busy)


def clear_text_to_send() -> None:
    """Empty the "Text to send" box (it was sent), and let Create link follow (app.js)."""
    set_home_field("send-text", "value", "", input_event=True)


def set_home_field(element_id: str, prop: str, value: object, *, input_event: bool = False) -> None:
    """A control of the home screen, also while a transfer's view replaced it."""
    post("home-field", id=element_id, property=prop, value=value, input=input_event)


def show_home() -> None:
    post("home")


class Part:
    """One element of a view, by its `data-part` name: what is set on it goes to the page."""

    def __init__(self, view: View, name: str) -> None:
        object.__setattr__(self, "_view", view)
        object.__setattr__(self, "_name", name)

    def __setattr__(self, prop: str, value: object) -> None:
        self._view.post("set", part=self._name, property=prop, value=value)

    def focus(self) -> None:
        self._view.post("call", part=self._name, method="focus")

    def removeAttribute(self, name: str) -> None:
        self._view.post("call", part=self._name, method="removeAttribute", args=[name])

    def set_data(self, name: str, value: str) -> None:
        """`data-<name>` on the element."""
        self._view.post("data", part=self._name, name=name, value=value)


class View:
    """One transfer's part of the page."""

    current: View | None = None  # the view on screen; replaced views release their handlers
    _ids = itertools.count(1)

    def __init__(self, template_id: str) -> None:
        if View.current is not None:
            View.current.release()
        View.current = self
        self.id = next(View._ids)
        self._handlers: list[int] = []
        post("view", view=self.id, template=template_id)

    def post(self, op: str, **fields: object) -> None:
        post(op, view=self.id, **fields)

    def part(self, name: str) -> Part:
        return Part(self, name)

    def text(self, name: str, message: Message) -> None:
        self.post("text", part=name, message=message_json(message))

    def plain(self, name: str, value: str) -> None:
        """A text that is no message (a code, a verification code)."""
        self.post("plain", part=name, value=value)

    def status(self, message: Message) -> None:
        self.text("status", message)

    def show(self, *names: str) -> None:
        self.post("show", parts=list(names))

    def hide(self, *names: str) -> None:
        # The page keeps the focus in the view when it was inside what is hidden.
        self.post("hide", parts=list(names))

    def on(self, name: str, event: str, handler: Callable, *, read: str | None = None) -> None:
        """Call `handler(value)` on each `event` of the part; `value`: the part `read`'s value
        then (None without one)."""
        handler_id = next(_handler_ids)
        _handlers[handler_id] = handler
        self._handlers.append(handler_id)
        self.post("listen", part=name, event=event, handler=handler_id, read=read)

    def click(self, *names: str) -> asyncio.Future[str]:
        """A future resolved with the name of whichever of these buttons is clicked first.
        Made before the buttons show: a click then always finds its listener."""
        future: asyncio.Future[str] = asyncio.get_event_loop().create_future()

        def make(name: str) -> Callable:
            def handler(_value) -> None:
                if not future.done():
                    future.set_result(name)

            return handler

        for name in names:
            self.on(name, "click", make(name))
        return future

    def submitted(self, form: str, field: str) -> asyncio.Future[str]:
        """A future resolved with the field's value when the form is submitted non-empty."""
        future: asyncio.Future[str] = asyncio.get_event_loop().create_future()

        def handler(value) -> None:
            if value and not future.done():
                future.set_result(str(value))

        self.on(form, "submit", handler, read=field)
        return future

    def offer_list(self, rows: list[tuple[str, Message]], more: Message | None) -> None:
        """The offer's files: name and size of each, and how many more are not listed."""
        self.post(
            "offer-list",
            rows=[[name, message_json(size)] for name, size in rows],
            more=message_json(more),
        )

    def end(self) -> None:
        """The transfer is over (either way): the page swaps Cancel for the button that starts
        anew, hides what asked for an action that can no longer happen (a dead link, an offer
        that can no longer be downloaded, a password nobody checks), and says how it ended."""
        self._forget_handlers()
        self.post("end")

    def release(self) -> None:
        """Detach every listener this view added."""
        self._forget_handlers()
        self.post("release")

    def _forget_handlers(self) -> None:
        for handler_id in self._handlers:
            _handlers.pop(handler_id, None)
        self._handlers.clear()


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
        self._view = view
        self._bar = view.part("progress")
        self.meter = RateMeter(total)
        self._done = 0
        self._catch_up: asyncio.TimerHandle | None = None
        if total is None:
            self._bar.removeAttribute("value")  # an indeterminate <progress>
        else:
            self._bar.max = max(total, 1)
            self._bar.value = 0
        self._view.text("progress-text", self.meter.text(0))
        view.show("progress-block")

    def pause(self) -> None:
        """No data flows (a lost connection): drop the speed and time left; the next update
        measures afresh."""
        done = self._done if self.meter.total else 0
        if self._catch_up is not None:
            self._catch_up.cancel()
            self._catch_up = None
        self.meter.restart(done)
        self._view.text("progress-text", t("progress.paused", line=self.meter.text(done)))

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
        self._view.text("progress-text", self.meter.text(done))
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
    view.part("route").set_data("route", route)
    view.show("route")
