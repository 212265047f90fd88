"""The page's sender: the browser driver around SenderSession, mirroring `hushdrop.cli.send`.

It connects to the relay, creates the room, shows the link, QR code and typed code, then runs the
session: file slices in (`next_read` → `File.slice`), messages out, events to the view. Protocol
decisions stay in the session; this module only translates between it, the relay connection and
the page. Pyodide only.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time

from ..protocol.codes import new_sender_secrets
from ..protocol.errors import HushdropError, PeerGoneError
from ..protocol.events import (
    Accepted,
    Completed,
    DirectSignal,
    Progress,
    Reconnecting,
    Resumed,
    Verified,
)
from ..protocol.sender import SenderSession
from ..transport import direct
from ..transport.browser import BrowserRelayConnection
from ..transport.pump import Pump
from . import ui
from .context import PageContext
from .errors import error_message
from .files import OutgoingSelection
from .humanize import transfer_summary
from .links import qr_data_uri
from .messages import Duration, Message, Rate, t
from .send_link import LinkSender

# Seconds after the receiver's acceptance that the first DATA waits for a direct connection
# still opening (it usually opened while the receiver looked at the offer); then the data goes
# through the relay, and moves to the direct connection if that opens later (PROTOCOL.md §8.4).
DIRECT_GRACE = 1.0
# Seconds from the offer after which a direct connection that has not opened is given up.
DIRECT_TIMEOUT = 20.0
# A later move needs this much left to send: it resends what was on its way through the relay
# (up to the receiver's credit window) and costs a resume handshake.
SWITCH_MIN_REMAINING = 32 * 1024 * 1024


class SendFlow:
    """One transfer from this page, from "Create link" to its end state."""

    def __init__(
        self,
        ctx: PageContext,
        selection: OutgoingSelection,
        password: str,
        ttl: int | None = None,
        receivers: int = 1,
    ) -> None:
        self.ctx = ctx
        # The link options (PROTOCOL.md §3.1): its lifetime (None: the relay's default) and how
        # many receivers may use it.
        self.ttl = ttl
        self.receivers = receivers
        self.selection = selection
        self.password = password
        self.manifest = selection.manifest
        self.view = ui.View("send-template")
        self.progress: ui.ProgressView | None = None
        self.pump: Pump | None = None
        self.direct: direct.DirectLink | None = None
        # The typed code works only once it was shown (PROTOCOL.md §2): a transfer shared by its
        # link alone keeps the link's 128 bits.
        self.short_code_shown = False
        self.lost = False  # a Reconnecting came, and no Resumed yet
        self.link_sender: LinkSender | None = None  # a link for several receivers
        self.countdown: ui.ResumeCountdown | None = None
        self.direct_deadline = 0.0

    async def run(self) -> None:
        view = self.view
        task = asyncio.current_task()
        view.on("cancel", "click", lambda _event: task.cancel())
        title = t("send.title.files", summary=self.summary)
        view.text("title", title)
        if not self.manifest.files:  # a text alone: "Send more files" would be odd
            view.text("again", t("send.again.text"))
        # Said on the next load if this tab is reloaded or left mid-way (app.js).
        ui.post("running", message=title.to_json())
        ui.set_busy(True)
        connection: BrowserRelayConnection | None = None
        pump: Pump | None = None
        try:
            connection = await BrowserRelayConnection.open(self.ctx.relay)
            room, ttl = await connection.create_room(self.ttl, self.receivers)
            secrets = new_sender_secrets(room, self.ctx.backend.random_bytes, bool(self.password))
            self._show_share(secrets.link(self.ctx.site), secrets.typed, ttl, connection.receivers)
            if connection.receivers > 1:
                self.link_sender = LinkSender(self, connection, secrets)
                await self.link_sender.run()
                return
            view.status(t("send.status.waiting"))
            await connection.wait_paired()
            view.hide("share")  # the code admits one receiver: it is spent now
            view.status(t("send.status.checking"))
            session = SenderSession(
                self.ctx.backend,
                secrets,
                self.manifest,
                self.password,
                text=self.selection.text,
                accept_typed=self.short_code_shown,
            )
            await session.start()
            pump = self.pump = Pump(
                session,
                connection,
                reopen=functools.partial(BrowserRelayConnection.open, self.ctx.relay),
                resume_window=self.ctx.resume_window,
                on_event=self._on_event,
                read=self.selection.read,
            )
            await pump.run()
        except asyncio.CancelledError:
            task.uncancel()  # the user's Cancel: handled here, not propagated
            if pump is not None:
                # The peer's page (or CLI) shows this sentence as it is: the wire's words.
                await pump.session.cancel("The sender cancelled the transfer.")  # i18n: wire
                await pump.send_final()
            # Those who already have everything keep it: said, not hidden behind "cancelled".
            delivered = self.link_sender.link.delivered if self.link_sender else 0
            view.status(
                t("link.cancelled", count=delivered) if delivered else t("status.you-cancelled")
            )
            view.text("title", t("send.title.cancelled"))
        except HushdropError as exc:
            if pump is not None:
                if exc.kind == "local":
                    await pump.session.cancel(str(exc))
                await pump.send_final()
            view.status(t("status.not-complete"))
            view.text("title", t("send.title.stopped"))
            ui.set_title(t("title.stopped"))
            gone = isinstance(exc, PeerGoneError) and exc.left
            ui.alert(t("error.receiver-left") if gone else error_message(exc, sender=True))
        finally:
            ui.post("running", message=None)
            self._stop_countdown()
            if self.direct is not None:
                self.direct.close()
            with contextlib.suppress(Exception):
                await (pump.close() if pump is not None else connection.close())
            ui.set_busy(False)
            self.view.end()

    def _stop_countdown(self) -> None:
        if self.countdown is not None:
            self.countdown.stop()
            self.countdown = None

    def _try_direct(self) -> None:
        """Offer a direct connection while the receiver looks at the offer (PROTOCOL.md §8.4)."""
        if not self.ctx.capabilities.direct:
            return
        self.direct = direct.DirectLink(list(self.ctx.ice_servers), self._send_signal)
        self.direct_deadline = time.monotonic() + DIRECT_TIMEOUT
        # Files are read only once the route is chosen; a text, encrypted from memory when
        # the receiver accepts, waits the same way (PROTOCOL.md §6.1.1): it takes the route a
        # file would, so the relay cannot tell them apart by it.
        self.pump.session.hold(True)
        direct.in_background(self.direct, self.direct.offer())

    async def _send_signal(self, payload: bytes) -> None:
        await self.pump.session.send_signal(payload)
        await self.pump.flush()

    async def _choose_route(self) -> None:
        """Before any file data moves: the direct connection if it is open (or opens within
        DIRECT_GRACE); else the relay now, and the direct connection if it opens later."""
        link = self.direct
        session = self.pump.session
        if link is not None and session.data_done >= session.data_total:
            # Nothing to read (only empty files): the whole stream is already queued and goes
            # through the relay with the signaling; moving would leave the receiver's COMPLETE
            # behind on the relay connection.
            self._drop_direct(link)
            link = None
        if link is not None and await self._wait_direct(link):
            if session.finished:
                return
            self.pump.switch(link.channel, announce=True)
            ui.show_route(self.view, "direct")
            return
        ui.show_route(self.view, "relayed")
        session.hold(False)
        if link is not None and link.pending:
            direct.in_background(link, self._switch_when_open(link))
        elif link is not None:
            self._drop_direct(link)

    async def _switch_when_open(self, link: direct.DirectLink) -> None:
        """Move a transfer already going through the relay to the direct connection once it
        opens, if enough is left to send to be worth the move."""
        opened = await link.wait_open(self.direct_deadline)
        session = self.pump.session
        left = session.data_total - session.data_done
        if self.direct is not link:
            return  # the connection was lost meanwhile; the pump closed the link
        if not opened or not session.can_switch or left < SWITCH_MIN_REMAINING:
            self._drop_direct(link)
            return
        self.pump.switch(link.channel, announce=True)
        ui.show_route(self.view, "direct")

    def _drop_direct(self, link: direct.DirectLink) -> None:
        link.close()
        if self.direct is link:
            self.direct = None
            self.pump.session.hold(False)

    async def _wait_direct(self, link: direct.DirectLink) -> bool:
        """Wait briefly for the data channel, still reading the receiver's messages (its answer
        may arrive after its acceptance)."""
        deadline = min(self.direct_deadline, time.monotonic() + DIRECT_GRACE)
        # A small transfer (one empty file) may complete meanwhile: then the receiver's close
        # that follows its COMPLETE is the pump's to see, not an error here.
        while not self.pump.session.finished:
            opening = asyncio.ensure_future(link.wait_open(deadline))
            message = asyncio.ensure_future(self.pump.peer_message())
            done, _ = await asyncio.wait({opening, message}, return_when=asyncio.FIRST_COMPLETED)
            if message not in done:
                message.cancel()  # safe: a pending queue read loses nothing when cancelled
                return opening.result()
            opening.cancel()
            for event in await self.pump.session.receive(message.result()):
                await self._on_event(event)
        return False

    @property
    def total(self) -> int:
        return self.manifest.total_size

    @property
    def summary(self) -> Message:
        """`2 files, 3.0 MiB`, `a text of 12 B`, or both."""
        manifest = self.manifest
        return transfer_summary(len(manifest.files), self.total, manifest.text_size)

    def _show_share(self, link: str, typed: str, ttl: int, receivers: int = 1) -> None:
        view = self.view
        view.part("link").value = link
        view.plain("code", typed)
        view.on("show-code", "click", lambda _event: self._show_code())
        view.part("qr").src = qr_data_uri(link)
        # What the link is good for, then what to keep in mind (the password is never part of
        # the link: said whenever there is one).
        if receivers == 1:
            works = t("send.works.once-expires", expires=Duration(ttl)) if ttl > 0 else None
            works = works or t("send.works.once")
        elif ttl > 0:
            works = t("send.works.receivers-expires", count=receivers, expires=Duration(ttl))
        else:
            works = t("send.works.receivers", count=receivers)
        view.text("hint", t("send.hint.password" if self.password else "send.hint", works=works))
        view.show("share")

    def _show_code(self) -> None:
        self.short_code_shown = True
        self.view.hide("code-offer")
        self.view.show("code-box")
        self.view.part("code").focus()

    async def _on_event(self, event: object) -> None:
        view = self.view
        if isinstance(event, Progress):
            self.progress.update(event.done)
        elif isinstance(event, DirectSignal):
            if self.direct is not None:
                direct.in_background(self.direct, self.direct.on_signal(event.payload))
        elif isinstance(event, Reconnecting):
            self.lost = True
            self._stop_countdown()
            self.countdown = ui.ResumeCountdown(
                view, self.progress, self.ctx.resume_window, "send.status.lost"
            )
            self.direct = None  # the pump closed it; the relay carries the rest
            ui.show_route(view, "relayed")
        elif isinstance(event, Resumed):
            self._stop_countdown()
            self.pump.session.hold(False)  # on the new connection nothing waits for a route
            # A move to the direct connection resumes too; only a real loss says "Reconnected".
            view.status(t("send.status.reconnected") if self.lost else t("send.status.sending"))
            self.lost = False
            if self.progress is not None:
                self.progress.update(event.done)
        elif isinstance(event, Verified):
            view.plain("sas", event.sas)
            view.show("verify")
            files = bool(self.manifest.files or self.manifest.dirs)
            view.status(t("send.status.verified" if files else "send.status.verified-text"))
            self._try_direct()
        elif isinstance(event, Accepted):
            if not self.manifest.entry_sizes:
                # Nothing to stream (empty folders alone): no direct connection is worth
                # opening.
                if self.direct is not None:
                    self._drop_direct(self.direct)
                view.status(t("send.status.accepted-only"))
                return
            if self.manifest.files:
                view.status(t("send.status.accepted"))
                self.progress = ui.ProgressView(view, self.total, sending=True)
            else:  # a text alone: no progress to show, but it travels as a file would
                view.status(t("send.status.accepted-only"))
            await self._choose_route()
        elif isinstance(event, Completed):
            if self.progress is not None:
                self.progress.update(self.total)
            seconds = self.progress.meter.elapsed() if self.progress else 0
            if not self.manifest.files:
                done = t("send.done.text", summary=self.summary)
            elif seconds > 0 and self.total:
                speed = Rate(self.total / seconds)
                done = t(
                    "send.done.timed", summary=self.summary, time=Duration(seconds), rate=speed
                )
            else:
                done = t("send.done", summary=self.summary)
            view.text("done", done)
            view.text("title", t("send.title.sent", summary=self.summary))
            view.show("done")
            view.status(t("status.done"))
            ui.set_title(t("title.sent"))
            # Sent: "Send more files" starts from an empty list and an empty text box.
            ui.clear_text_to_send()
            ui.post("clear-selection")
