"""The page's sender: the browser driver around SenderSession, mirroring `hushdrop.cli.send`.

It connects to the relay, creates the room, shows the link, QR code and typed code, then runs the
session: file slices in (`next_read` → `File.slice`), messages out, events to the view. Protocol
decisions stay in the session; this module only translates between it, the relay connection and
the page. Pyodide only.
"""

from __future__ import annotations

import asyncio
import contextlib

import js

from ..protocol.codes import new_sender_secrets
from ..protocol.errors import HushdropError, PeerGoneError
from ..protocol.events import Accepted, Completed, Verified
from ..protocol.sender import SenderSession
from ..transport.browser import BrowserRelayConnection
from . import ui
from .context import PageContext
from .files import OutgoingSelection
from .humanize import files_summary, human_duration, human_size
from .links import qr_data_uri

RECEIVER_GONE = (
    "The receiver disconnected (closed the page or lost the connection) before the transfer "
    "finished. Nothing was completed on their side."
)


class SendFlow:
    """One transfer from this page, from "Create link" to its end state."""

    def __init__(self, ctx: PageContext, selection: OutgoingSelection, password: str) -> None:
        self.ctx = ctx
        self.selection = selection
        self.password = password
        self.manifest = selection.manifest
        self.view = ui.View("send-template")
        self.progress: ui.ProgressView | None = None

    async def run(self) -> None:
        view = self.view
        task = asyncio.current_task()
        view.on("cancel", "click", lambda _event: task.cancel())
        view.text("title", f"Sending {files_summary(len(self.manifest.files), self.total)}")
        ui.set_busy(True)
        connection: BrowserRelayConnection | None = None
        session: SenderSession | None = None
        try:
            connection = await BrowserRelayConnection.open(self.ctx.relay)
            room, ttl = await connection.create_room()
            secrets = new_sender_secrets(room, self.ctx.backend.random_bytes, bool(self.password))
            self._show_share(secrets.link(self.ctx.site), secrets.typed, ttl)
            view.status("Waiting for the receiver to open the link or type the code…")
            await connection.wait_paired()
            view.hide("share")  # the code admits one receiver: it is spent now
            view.status("The receiver connected; checking the code…")
            session = SenderSession(self.ctx.backend, secrets, self.manifest, self.password)
            session.start()
            await self._transfer(session, connection)
        except asyncio.CancelledError:
            task.uncancel()  # the user's Cancel: handled here, not propagated
            if session is not None and connection is not None:
                await session.cancel("The sender cancelled the transfer.")
                await connection.send_best_effort(session.data_to_send())
            view.status("You cancelled the transfer.")
        except HushdropError as exc:
            if session is not None and connection is not None:
                if exc.kind == "local":
                    await session.cancel(str(exc))
                await connection.send_best_effort(session.data_to_send())
            view.status("The transfer did not complete.")
            ui.alert(RECEIVER_GONE if isinstance(exc, PeerGoneError) else str(exc))
        finally:
            if connection is not None:
                with contextlib.suppress(Exception):
                    await connection.close()
            ui.set_busy(False)
            self.view.end()

    @property
    def total(self) -> int:
        return self.manifest.total_size

    def _show_share(self, link: str, typed: str, ttl: int) -> None:
        view = self.view
        view.part("link").value = link
        view.text("code", typed)
        view.part("qr").src = qr_data_uri(link)
        hint = "The link and the code work once"
        hint += f" and expire in {human_duration(ttl)}." if ttl > 0 else "."
        if self.password:
            hint += " Tell the receiver the password separately: it is not part of the link."
        hint += " Keep this tab open until the transfer is done."
        view.text("hint", hint)
        view.show("share")

    async def _transfer(self, session: SenderSession, connection: BrowserRelayConnection) -> None:
        incoming: asyncio.Queue[bytes | BaseException] = asyncio.Queue()

        async def read_peer() -> None:
            # Only queues raw messages: the session is touched by this loop alone.
            while True:
                try:
                    message = await connection.receive()
                except BaseException as exc:
                    await incoming.put(exc)
                    return
                await incoming.put(message)

        reader = asyncio.create_task(read_peer())
        try:
            await connection.send_all(session.data_to_send())
            while not session.finished:
                request = session.next_read()
                if request is not None:
                    index, offset, length = request
                    await session.send_plaintext(await self.selection.read(index, offset, length))
                    self.progress.update(session.bytes_done)
                    await connection.send_all(session.data_to_send())
                    if incoming.empty():
                        continue
                item = await incoming.get()
                if isinstance(item, BaseException):
                    raise item
                for event in await session.receive(item):
                    self._on_event(event)
                await connection.send_all(session.data_to_send())
        finally:
            reader.cancel()

    def _on_event(self, event: object) -> None:
        view = self.view
        if isinstance(event, Verified):
            view.text("sas", event.sas)
            view.show("verify")
            view.status("Code verified. Waiting for the receiver to accept the files…")
        elif isinstance(event, Accepted):
            view.status("The receiver accepted. Sending…")
            self.progress = ui.ProgressView(view, self.total, "sent")
        elif isinstance(event, Completed):
            if self.progress is not None:
                self.progress.update(self.total)
            seconds = self.progress.meter.elapsed() if self.progress else 0
            done = f"Sent {files_summary(len(self.manifest.files), self.total)}"
            if seconds > 0 and self.total:
                done += f" in {human_duration(seconds)} ({human_size(self.total / seconds)}/s)"
            view.text("done", done + ". The receiver verified every file.")
            view.show("done")
            view.status("Done.")
            js.document.title = "Sent — Hushdrop"
            js.hushdrop.clearSelection()  # sent: "Send more files" starts from an empty list
