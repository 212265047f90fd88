"""The page's sender for a link with several receivers (PROTOCOL.md §3.1): one row per receiver
with its state, progress and verification code, and one SenderSession each.

`transport.fanout.serve_link` gives each receiver its connection and stops them all when a failed
key exchange ends the link; `protocol.link.Link` keeps the rows. This module only shows them.
Direct (WebRTC) connections are left out here: every receiver's data goes through the relay.
Pyodide only.
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING

from ..protocol.codes import SenderSecrets
from ..protocol.errors import HushdropError
from ..protocol.events import Completed
from ..protocol.link import Link, ReceiverRow, ReceiverState
from ..protocol.sender import SenderSession
from ..transport.browser import BrowserRelayConnection
from ..transport.fanout import LinkIncompleteError, serve_link
from ..transport.pump import Pump
from ..transport.rendezvous import RelayChannel
from . import ui
from .errors import error_message
from .messages import Message, Percent, Size, t

if TYPE_CHECKING:
    from .send import SendFlow

CANCELLED = "The sender cancelled the transfer."  # i18n: wire (the receivers' pages show it)

STATE_TEXT = {
    ReceiverState.CHECKING: t("link.state.checking"),
    ReceiverState.VERIFIED: t("link.state.verified"),
    ReceiverState.SENDING: t("send.status.sending"),
    ReceiverState.DONE: t("link.state.done"),
}
# A text alone has no files to accept or verify.
TEXT_STATE_TEXT = {
    **STATE_TEXT,
    ReceiverState.VERIFIED: t("link.state.verified-text"),
    ReceiverState.DONE: t("link.state.done-text"),
}


class ReceiverRowView:
    """One receiver's row in the sender's list: name, verification code, state and progress."""

    def __init__(self, view: ui.View, number: int, text_only: bool) -> None:
        self.states = TEXT_STATE_TEXT if text_only else STATE_TEXT
        self.view = view
        self.number = number
        view.post(
            "receiver-row",
            number=number,
            name=ui.message_json(t("link.receiver", number=number)),
            sas=ui.message_json(t("link.receiver-sas", number=number)),
            bar=ui.message_json(t("link.receiver-progress", number=number)),
        )

    def render(self, row: ReceiverRow, reason: Message | None = None) -> None:
        bar = valuetext = None
        if row.state is ReceiverState.FAILED:
            text = t("link.state.stopped", reason=reason or t("link.state.ended"))
        else:
            text = self.states[row.state]
        if row.state in (ReceiverState.SENDING, ReceiverState.DONE) and row.total:
            percent = Percent((100 * row.done // row.total) / 100)
            if row.state is ReceiverState.SENDING:
                text = t(
                    "link.state.progress",
                    percent=percent,
                    done=Size(row.done),
                    total=Size(row.total),
                )
            bar = {"max": row.total, "value": row.done}
            valuetext = t("announce.percent", percent=percent)
        elif row.state is ReceiverState.DONE:
            bar = {"max": 1, "value": 1}
        self.view.post(
            "receiver-render",
            number=self.number,
            sas=row.sas,
            state=ui.message_json(text),
            bar=bar,
            valuetext=ui.message_json(valuetext),
        )


class LinkSender:
    """Serve every receiver of the link `control` belongs to, showing one row each."""

    def __init__(
        self, flow: SendFlow, control: BrowserRelayConnection, secrets: SenderSecrets
    ) -> None:
        self.flow = flow
        self.control = control
        self.secrets = secrets
        self.link = Link(control.receivers)
        self.rows: dict[int, ReceiverRowView] = {}
        # How each failed receiver's transfer ended, for its row in the page's words.
        self.failures: dict[int, BaseException] = {}
        manifest = flow.manifest
        self.text_only = not manifest.files and manifest.has_text
        # Set by "Close link": nobody else may join; those who came carry on.
        self.closing = asyncio.Event()

    async def run(self) -> None:
        flow, view, link = self.flow, self.flow.view, self.link
        view.show("receivers")
        view.status(t("link.waiting", count=link.receivers))
        view.on("close-link", "click", lambda _event: self._close())
        try:
            await serve_link(
                self.control,
                link,
                functools.partial(BrowserRelayConnection.open, flow.ctx.relay),
                self._serve,
                self._joined,
                self._over,
                self.closing,
            )
        except LinkIncompleteError as exc:
            if not link.delivered:
                raise exc.failure from exc  # nobody got it: the transfer stopped, and why
            # Some got it: the rows say why the others did not.
        finally:
            view.hide("share", "close-link")  # over: nobody else can use the link
        summary = flow.summary
        count = link.delivered
        view.text("title", t("link.title.sent", count=count))
        view.text("done", t("link.done", count=count, summary=summary))
        view.show("done")
        view.status(t("link.closed" if self.closing.is_set() else "status.done"))
        ui.set_title(t("title.sent"))
        ui.post("clear-selection")

    def _close(self) -> None:
        """The sender's "Close link": nobody else can use it; those who came carry on."""
        self.closing.set()
        self.flow.view.hide("share", "close-link")
        self._show_status()

    def _show_status(self) -> None:
        """Where the link stands, from its rows: how many got it, and what it waits for."""
        link, view = self.link, self.flow.view
        running = len(link.running)
        if self.closing.is_set():
            if running:
                view.status(t("link.closing", count=running))
        elif link.all_joined:
            if running:
                view.status(t("link.all-connected", count=link.receivers))
        elif link.delivered:
            view.status(t("link.done-waiting", count=link.delivered, total=link.receivers))
        elif running:
            view.status(t("link.connected", count=running, total=link.receivers))
        else:
            view.status(t("link.waiting", count=link.receivers))
        # Once someone has it, the sender may stop here and keep what was delivered.
        if link.delivered and not link.all_joined and not self.closing.is_set():
            view.show("close-link")

    def _joined(self, number: int) -> None:
        view = self.flow.view
        self.rows[number] = ReceiverRowView(view, number, self.text_only)
        self.rows[number].render(self.link.row(number))
        if self.link.all_joined:
            view.hide("share", "close-link")  # every receiver came: the link is spent
        self._show_status()

    def _over(self, number: int) -> None:
        self.rows[number].render(self.link.row(number), self._reason(number))
        self._show_status()

    def _reason(self, number: int) -> Message:
        """Why receiver `number`'s transfer stopped, in the page's words."""
        failure = self.failures.get(number)
        if failure is not None:
            return error_message(failure, sender=True)
        if self.link.ended:  # another receiver's failed guess closed the link
            return t("link.state.ended")
        return t("status.you-cancelled")

    async def _serve(self, number: int, channel: RelayChannel) -> None:
        flow = self.flow
        session = SenderSession(
            flow.ctx.backend,
            self.secrets,
            flow.manifest,
            flow.password,
            text=flow.selection.text,
            accept_typed=flow.short_code_shown,
        )
        reader = flow.selection.reader(number)
        pump = Pump(
            session,
            channel,
            reopen=functools.partial(BrowserRelayConnection.open, flow.ctx.relay),
            resume_window=flow.ctx.resume_window,
            on_event=functools.partial(self._on_event, number),
            read=reader.read,
        )
        try:
            await session.start()
            await pump.run()
        except (HushdropError, asyncio.CancelledError) as exc:
            if isinstance(exc, HushdropError):
                self.failures[number] = exc
            if isinstance(exc, asyncio.CancelledError):
                await session.cancel(self.link.cancel_reason(CANCELLED))
            elif exc.kind == "local":
                await session.cancel(str(exc))
            await pump.send_final()
            raise
        finally:
            reader.close()
            await pump.close()

    async def _on_event(self, number: int, event: object) -> None:
        row = self.link.event(number, event)
        self.rows[number].render(row)
        if isinstance(event, Completed):
            self._show_status()
