"""The page's receiver: the browser driver around ReceiverSession, mirroring `hushdrop.cli.receive`.

It joins the room, asks for the password when the link or the session says one is needed, shows
the verification code and the offer, and on "Download" streams the verified plaintext into a
browser download (one file as itself, several as one zip; see `download.py`). The loop never
passes the next message to the session before the previous message's data was handed to the
download, whose writes wait for the browser to ask for more: memory stays bounded end to end.
Protocol decisions stay in the session. Pyodide only.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from typing import TypeVar

import js
from pyodide.ffi import JsException

from ..protocol.codes import Code
from ..protocol.direct import TcpHints, read_signal
from ..protocol.errors import HushdropError, PeerGoneError, ProtocolError
from ..protocol.events import (
    Completed,
    DirectSignal,
    FileCompleted,
    FileData,
    FileStarted,
    Offered,
    PasswordRequired,
    Reconnecting,
    Resumed,
    SwitchDirect,
    TextReceived,
    Verified,
)
from ..protocol.manifest import Manifest
from ..protocol.receiver import ReceiverSession
from ..protocol.text import visible_text
from ..transport import direct
from ..transport.browser import BrowserRelayConnection
from ..transport.pump import Pump
from . import ui
from .context import PageContext
from .download import DownloadPlan, SingleFileWriter, ZipWriter, make_writer, plan_download
from .errors import error_message
from .files import LocalError
from .humanize import transfer_summary
from .jsbridge import JsSink, js_error_message
from .messages import Duration, Message, Rate, Size, t

T = TypeVar("T")

OFFER_LIST_LIMIT = 200
# Without a service worker (some private windows) the download is assembled in memory instead of
# streamed to disk: only up to this size.
MEMORY_LIMIT = 512 * 1024 * 1024


# The offer's note: how the download arrives (one file or a zip) and how it is saved.
NOTES = {
    ("file", "streamed"): "receive.note.file.streamed",
    ("file", "memory"): "receive.note.file.memory",
    ("file", "too-large"): "receive.note.file.too-large",
    ("file", "too-large-save-as"): "receive.note.file.too-large-save-as",
    ("zip", "streamed"): "receive.note.zip.streamed",
    ("zip", "memory"): "receive.note.zip.memory",
    ("zip", "too-large"): "receive.note.zip.too-large",
    ("zip", "too-large-save-as"): "receive.note.zip.too-large-save-as",
    ("file", "unknown"): "receive.note.file.unknown",
    ("file", "unknown-save-as"): "receive.note.file.unknown-save-as",
    ("zip", "unknown"): "receive.note.zip.unknown",
    ("zip", "unknown-save-as"): "receive.note.zip.unknown-save-as",
}


class Finished(Exception):
    """The transfer ended normally without completing (declined)."""


class ReceiveFlow:
    """One transfer into this page, from the code to its end state."""

    def __init__(self, ctx: PageContext, code: Code) -> None:
        self.ctx = ctx
        self.code = code
        self.view = ui.View("receive-template")
        self.pump: Pump | None = None
        self.session: ReceiverSession | None = None
        self.direct: direct.DirectLink | None = None
        self.route: str | None = None
        self.writer: SingleFileWriter | ZipWriter | None = None
        self.plan: DownloadPlan | None = None
        self.progress: ui.ProgressView | None = None
        self.streaming = True  # downloads go through the service worker
        self.lost = False  # a Reconnecting came, and no Resumed yet
        self.countdown: ui.ResumeCountdown | None = None

    async def run(self) -> None:
        view = self.view
        task = asyncio.current_task()
        view.on("cancel", "click", lambda _event: task.cancel())
        ui.set_busy(True)
        try:
            password = None
            if self.code.password_required:
                # Asked before joining: joining spends the code, a password prompt does not.
                view.status(t("receive.status.password"))
                password = await self._ask_password()
            view.status(t("receive.status.connecting"))
            connection = await BrowserRelayConnection.open(self.ctx.relay)
            self.session = ReceiverSession(self.ctx.backend, self.code, password)
            self.pump = Pump(
                self.session,
                connection,
                reopen=functools.partial(BrowserRelayConnection.open, self.ctx.relay),
                resume_window=self.ctx.resume_window,
                on_event=self._handle,
                after_message=self._after_message,
            )
            await connection.join_room(self.code.room)
            view.status(t("receive.status.checking"))
            await self.pump.run()
        except Finished:
            pass
        except asyncio.CancelledError:
            task.uncancel()  # the user's Cancel: handled here, not propagated
            # Wire words: the download's failure reason, and the sentence the peer shows as it is.
            await self._stop(
                "Cancelled.",  # i18n: wire
                peer_reason="The receiver cancelled the transfer.",  # i18n: wire
            )
            view.status(t("status.you-cancelled"))
            view.text("title", t("receive.title.cancelled"))
        except HushdropError as exc:
            await self._stop(str(exc), peer_reason=str(exc) if exc.kind == "local" else None)
            view.status(t("status.not-complete"))
            view.text("title", t("receive.title.stopped"))
            ui.set_title(t("title.stopped"))
            gone = isinstance(exc, PeerGoneError) and exc.left
            ui.alert(t("error.sender-left") if gone else error_message(exc, sender=False))
        finally:
            self._stop_countdown()
            if self.direct is not None:
                self.direct.close()
            if self.pump is not None:
                with contextlib.suppress(Exception):
                    await self.pump.close()
            ui.set_busy(False)
            self.view.end()

    async def _after_message(self) -> None:
        if self.writer is not None:
            await self.writer.flush()  # waits until the download asked for more
        if self.progress is not None:
            self.progress.update(self.session.bytes_done)

    async def _handle(self, event: object) -> None:
        view, session = self.view, self.session
        if isinstance(event, PasswordRequired):
            view.status(t("receive.status.password-set"))
            await session.provide_password(await self._ask_password())
            view.status(t("receive.status.checking-password"))
        elif isinstance(event, Verified):
            view.hide("password-form")
            view.plain("sas", event.sas)
            view.show("verify")
            view.status(t("receive.status.verified"))
        elif isinstance(event, Offered):
            await self._offer(event.manifest)
        elif isinstance(event, DirectSignal):
            self._on_signal(event.payload)
        elif isinstance(event, SwitchDirect):
            if self.direct is None:
                raise ProtocolError(  # i18n: core (shown through error.protocol)
                    "The sender moved to a direct connection that was not set up."
                )
            self.pump.switch(self.direct.channel)
            self._show_route("direct")
        elif isinstance(event, TextReceived):
            # A textarea's value is text, never markup. Characters that are invisible or turn
            # the text around (U+202E…) are shown marked, so they cannot disguise it (§9 does
            # the same on a terminal); Copy takes the exact text (app.js).
            shown, marked = visible_text(event.text)
            field = view.part("received-text")
            field.value = shown
            field.hushdropExact = event.text
            if marked:
                view.show("received-text-marked")
            view.show("received-text-block")
        elif isinstance(event, FileStarted):
            self.writer.start(event.index)
            self._show_route(self.route or "relayed")
        elif isinstance(event, FileData):
            await self.writer.write(event.index, event.data)
        elif isinstance(event, FileCompleted):
            self.writer.complete(event.index)
        elif isinstance(event, Reconnecting):
            self.lost = True
            self._stop_countdown()
            self.countdown = ui.ResumeCountdown(
                view, self.progress, self.ctx.resume_window, "receive.status.lost"
            )
            self.direct = None  # the pump closed it; the relay carries the rest
            self._show_route("relayed")
        elif isinstance(event, Resumed):
            self._stop_countdown()
            # A move to the direct connection resumes too; only a real loss says "Reconnected".
            key = "receive.status.reconnected" if self.lost else "receive.status.receiving"
            view.status(t(key))
            self.lost = False
        elif isinstance(event, Completed):
            if self.writer is not None:
                await self.writer.finish()
            await session.finish()
            self._show_done()

    def _stop_countdown(self) -> None:
        if self.countdown is not None:
            self.countdown.stop()
            self.countdown = None

    def _on_signal(self, payload: bytes) -> None:
        """The sender offers a direct connection (PROTOCOL.md §8.4): answer it, or decline."""
        if isinstance(read_signal(payload), TcpHints):
            # A CLI's TCP hints (§8.5): a page opens no sockets, so it says so at once and the
            # CLI sends through the relay without waiting for an answer.
            direct.decline(self.session, self.pump)
            return
        if self.direct is None:
            if not self.ctx.capabilities.direct:
                direct.decline(self.session, self.pump)
                return
            self.direct = direct.DirectLink(list(self.ctx.ice_servers), self._send_signal)
        direct.in_background(self.direct, self.direct.on_signal(payload))

    async def _send_signal(self, payload: bytes) -> None:
        await self.session.send_signal(payload)
        await self.pump.flush()

    def _show_route(self, route: str) -> None:
        if self.progress is not None and route != self.route:
            self.route = route
            ui.show_route(self.view, route)

    async def _ask_password(self) -> str:
        view = self.view
        submitted = view.submitted("password-form", "password")
        view.show("password-form")
        field = view.part("password")
        field.focus()
        password = await self._wait_for_user(submitted)
        field.value = ""
        view.hide("password-form")
        return password

    async def _offer(self, manifest: Manifest) -> None:
        if not manifest.files and not manifest.dirs:
            await self._offer_text(manifest)
            return
        view, session = self.view, self.session
        try:
            self.plan = plan_download(manifest, self.code.room)
        except HushdropError as exc:
            await session.decline(str(exc))
            raise
        self.streaming = bool(await js.hushdrop.ask("streaming", "{}"))
        choices = ("download", "save-as", "decline")
        clicked = view.click(*choices)  # listening before the buttons show
        self._show_offer(manifest)
        view.hide("cancel")  # "Decline" says it while the offer shows
        view.status(t("receive.status.offer"))
        if self.ctx.capabilities.save_as:
            view.show("save-as")
        ui.set_title(t("title.incoming"))
        while True:
            choice = await self._wait_for_user(clicked)
            if choice == "decline":
                await session.decline("they chose not to download them.")  # i18n: wire
                await self.pump.send_final()
                view.hide("offer")
                view.status(t("receive.status.declined"))
                view.text("title", t("receive.title.declined"))
                raise Finished
            buttons = [view.part(name) for name in ("download", "save-as", "decline")]
            for button in buttons:
                button.disabled = True
            try:
                sink = await self._open_sink(choice)
            finally:
                for button in buttons:
                    button.disabled = False
            if sink is not None:
                break
            clicked = view.click(*choices)  # the file dialog was closed: choose again
        view.hide("offer")
        view.show("cancel")
        view.status(t("receive.status.receiving"))
        self.writer = make_writer(sink, self.plan, manifest)
        self.progress = ui.ProgressView(view, manifest.total_size, sending=False)
        for follow_up in await session.accept():
            await self._handle(follow_up)

    async def _offer_text(self, manifest: Manifest) -> None:
        """A text alone (PROTOCOL.md §6.1.1): its size before accepting, as for files; then the
        text on the page. Nothing is downloaded."""
        view, session = self.view, self.session
        summary = self._summary(manifest)
        view.text("title", t("receive.title.files", summary=summary))
        view.text("offer-summary", t("receive.offer.text", summary=summary))
        view.hide("offer-list")
        view.text("offer-note", t("receive.note.text"))
        view.text("download", t("receive.show-text"))
        clicked = view.click("download", "decline")  # listening before the buttons show
        view.show("offer")
        view.hide("cancel")
        view.status(t("receive.status.offer-text"))
        ui.set_title(t("title.incoming-text"))
        choice = await self._wait_for_user(clicked)
        if choice == "decline":
            await session.decline("they chose not to see it.")  # i18n: wire
            await self.pump.send_final()
            view.hide("offer")
            view.status(t("receive.status.declined-text"))
            view.text("title", t("receive.title.declined"))
            raise Finished
        view.hide("offer")
        view.show("cancel")
        for follow_up in await session.accept():
            await self._handle(follow_up)

    @staticmethod
    def _summary(manifest: Manifest, size: int | None = None) -> Message:
        """What is offered; `size`: what a stream turned out to be (PROTOCOL.md §7.2)."""
        total = manifest.total_size if size is None else size
        return transfer_summary(len(manifest.files), total, manifest.text_size)

    async def _open_sink(self, choice: str) -> JsSink | None:
        """The browser download for the plan: the service-worker stream, or a picked file."""
        headers = json.dumps(self.plan.headers())
        try:
            if choice == "save-as":
                target = await js.hushdrop.openSaveAs(self.plan.name)
                return JsSink(target) if target is not None else None
            if not self.streaming:
                return JsSink(
                    js.hushdrop.openMemoryDownload(self.plan.name, self.plan.content_type)
                )
            return JsSink(await js.hushdrop.openStreamDownload(headers))
        except JsException as exc:
            reason = js_error_message(exc)
            raise LocalError(t("error.download-failed", reason=reason)) from exc

    def _show_offer(self, manifest: Manifest) -> None:
        view, plan = self.view, self.plan
        total = manifest.total_size
        summary = self._summary(manifest)
        view.text("title", t("receive.title.files", summary=summary))
        view.text("offer-summary", t("receive.offer", summary=summary))
        rows = list(zip(plan.file_names, manifest.files, strict=True))
        listed = [
            (name, t("files.size", size=Size(entry.size)))
            for name, entry in rows[:OFFER_LIST_LIMIT]
        ]
        more = None
        if len(rows) > OFFER_LIST_LIMIT:
            more = t("files.more", count=len(rows) - OFFER_LIST_LIMIT)
        view.offer_list(listed, more)
        empty_dirs = len(plan.dir_names) if not rows else 0
        if empty_dirs:
            view.text("offer-summary", t("receive.offer.empty-folders", count=empty_dirs))
        form = "zip" if plan.is_zip else "file"
        if self.streaming:
            how = "streamed"
        elif total is None:
            # A stream's size is known only at its end: it cannot be held in memory first.
            how = "unknown-save-as" if self.ctx.capabilities.save_as else "unknown"
            view.hide("download")
        elif total <= MEMORY_LIMIT:
            how = "memory"
        else:
            how = "too-large-save-as" if self.ctx.capabilities.save_as else "too-large"
            view.hide("download")
        note = t(NOTES[form, how], name=plan.name)
        if manifest.has_text:
            note = t("receive.note.with-text", note=note)
        view.text("offer-note", note)
        view.show("offer")

    def _show_done(self) -> None:
        view, session, plan = self.view, self.session, self.plan
        total = session.bytes_total
        if self.progress is not None:
            self.progress.update(total, total)
        seconds = self.progress.meter.elapsed() if self.progress else 0
        summary = self._summary(session.manifest, total)
        if plan is None:
            done = t("receive.done.text", summary=summary)
        elif seconds > 0 and total:
            rate = Rate(total / seconds)
            done = t(
                "receive.done.timed",
                summary=summary,
                time=Duration(seconds),
                rate=rate,
                name=plan.name,
            )
        else:
            done = t("receive.done", summary=summary, name=plan.name)
        view.text("done", done)
        view.text("title", t("receive.title.received", summary=summary))
        view.show("done")
        view.status(t("status.done"))
        ui.set_title(t("title.received"))

    async def _wait_for_user(self, decision: asyncio.Future[T]) -> T:
        """Wait for the user while still listening to the peer: a cancel or a vanished sender
        ends the wait with its error instead of leaving a dead prompt on screen."""
        while True:
            message = asyncio.ensure_future(self._next_message())
            done, _ = await asyncio.wait({decision, message}, return_when=asyncio.FIRST_COMPLETED)
            if message not in done:
                message.cancel()  # safe: a pending queue read loses nothing when cancelled
                return decision.result()
            # While we decide the sender only offers a direct connection; the session turns a
            # CANCEL or ABORT into its error, and anything else is a protocol error.
            events = await self.session.receive(message.result())
            if not all(isinstance(event, DirectSignal) for event in events):
                raise ProtocolError(  # i18n: core (shown through error.protocol)
                    "The sender sent a message before it was asked for anything."
                )
            for event in events:
                self._on_signal(event.payload)

    async def _next_message(self) -> bytes:
        if self.pump is None:
            await asyncio.get_event_loop().create_future()  # not connected yet: nothing comes
        return await self.pump.peer_message()

    async def _stop(self, reason: str, *, peer_reason: str | None) -> None:
        """Fail the download visibly; tell the peer `peer_reason` when the cause is on this side
        (errors from the peer or the protocol were already answered by the session)."""
        if self.writer is not None:
            await self.writer.abort(reason)
        if self.session is not None and self.pump is not None:
            if peer_reason is not None:
                await self.session.cancel(peer_reason)
            await self.pump.send_final()
