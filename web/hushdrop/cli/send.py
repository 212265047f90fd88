"""`hushdrop send`: the asyncio driver around SenderSession (one per receiver of a link)."""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Callable

from ..crypto.pyca import PycaBackend
from ..protocol.codes import SenderSecrets, new_sender_secrets
from ..protocol.errors import HushdropError
from ..protocol.events import (
    Accepted,
    Completed,
    DirectSignal,
    Progress,
    Reconnecting,
    Resumed,
    Verified,
)
from ..protocol.link import Link
from ..protocol.sender import SenderSession
from ..transport.fanout import STOPPED, serve_link
from ..transport.pump import RESUME_WINDOW, Pump
from ..transport.relay_client import RelayConnection
from ..transport.rendezvous import RelayChannel
from .direct import SenderRoute
from .files import STDIN, LocalFileError, OutgoingFiles
from .output import Reporter


async def send(
    paths: list[str],
    name: str,
    relay: str,
    password: str,
    ttl: int | None,
    reporter: Reporter,
    *,
    receivers: int = 1,
    resume_window: float = RESUME_WINDOW,
    text: str | None = None,
    direct: bool = True,
) -> None:
    """Send `paths`, or standard input as one file called `name` when `paths` is ["-"]."""
    files = (
        OutgoingFiles.standard_input(name, text)
        if paths == [STDIN]
        else OutgoingFiles.collect(paths, text)
    )
    backend = PycaBackend()
    connection = await RelayConnection.open(relay)
    try:
        room, granted_ttl = await connection.create_room(ttl, receivers)
        if ttl is not None and granted_ttl != ttl:
            reporter.status(
                f"The relay does not keep codes for {ttl} s; this code lasts {granted_ttl} s "
                f"instead ({'the longest' if granted_ttl < ttl else 'the shortest'} it allows)."
            )
        if receivers > 1 and connection.receivers != receivers:
            reporter.status(f"The relay admits at most {connection.receivers} receivers per link.")
        secrets = new_sender_secrets(room, backend.random_bytes, bool(password))
        reporter.code(
            secrets.typed, secrets.link(relay), granted_ttl, bool(password), connection.receivers
        )
        if receivers == 1:
            await connection.wait_paired()
            await _serve(
                connection, relay, files, secrets, password, reporter, resume_window, direct
            )
        else:
            await _serve_link(
                connection, relay, files, secrets, password, reporter, resume_window, direct
            )
    finally:
        files.close()
        await connection.close()


async def _serve(
    connection: RelayChannel,
    relay: str,
    files: OutgoingFiles,
    secrets: SenderSecrets,
    password: str,
    reporter: Reporter,
    resume_window: float,
    direct: bool,
    track: Callable[[object], object] | None = None,
    cancel_reason: Callable[[], str | None] | None = None,
) -> None:
    """One receiver's whole transfer on its paired `connection`; `track` sees every event."""
    reporter.status("The receiver connected; checking the code…")
    pump: Pump | None = None
    route: SenderRoute | None = None
    try:
        backend = PycaBackend()
        session = SenderSession(backend, secrets, files.manifest, password, text=files.text)
        await session.start()
        route = SenderRoute(backend, session, reporter, direct)

        async def read(index: int, offset: int, length: int) -> memoryview:
            if files.manifest.files[index].size is None:  # a pipe may keep us waiting
                return await files.read_stream(length)
            return files.read(index, offset, length)

        pump = Pump(
            session,
            connection,
            reopen=functools.partial(RelayConnection.open, relay),
            on_event=functools.partial(_on_event, session, reporter, route, track),
            read=read,
            resume_window=resume_window,
        )
        route.pump = pump
        await pump.run()
    except (Exception, asyncio.CancelledError, KeyboardInterrupt) as exc:
        if pump is not None:
            if isinstance(exc, LocalFileError):
                await pump.session.cancel(exc.peer_message)
            elif not isinstance(exc, (HushdropError, asyncio.CancelledError, KeyboardInterrupt)):
                await pump.session.cancel("The sender stopped on an internal error.")
            elif not isinstance(exc, HushdropError):
                # A link that a failed guess ended says so to its other receivers (§3.1).
                given = cancel_reason() if cancel_reason is not None else None
                await pump.session.cancel(given or "The sender cancelled the transfer.")
            await pump.send_final()
        raise
    finally:
        if route is not None:
            route.close()
        if pump is not None:
            await pump.close()


async def _serve_link(
    control: RelayConnection,
    relay: str,
    files: OutgoingFiles,
    secrets: SenderSecrets,
    password: str,
    reporter: Reporter,
    resume_window: float,
    direct: bool,
) -> None:
    """Serve every receiver of a link (PROTOCOL.md §3.1), each on its own connection.

    Each receiver reads the files through its own reader, one window of credit at a time, so
    memory grows with the receivers served at once, not with the files.
    """
    link = Link(control.receivers)

    async def serve(number: int, connection: RelayChannel) -> None:
        mine = reporter.for_receiver(number)
        reader = files.reader()
        try:
            await _serve(
                connection,
                relay,
                reader,
                secrets,
                password,
                mine,
                resume_window,
                direct,
                functools.partial(link.event, number),
                lambda: link.cancel_reason("The sender cancelled the transfer."),
            )
        except HushdropError as exc:
            mine.error(exc.kind, str(exc))
            raise
        finally:
            reader.close()

    def joined(number: int) -> None:
        reporter.status(f"Receiver {number} of {link.receivers} connected.")

    open_channel = functools.partial(RelayConnection.open, relay)
    try:
        await serve_link(control, link, open_channel, serve, joined)
    except asyncio.CancelledError:
        if not link.delivered:
            raise  # nobody has it: Ctrl-C cancelled the transfer
        # Ctrl-C once someone has it closes the link: what was delivered stays delivered, the
        # receivers still under way are stopped (and told), and it is no interruption (exit 0).
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        stopped = sum(1 for row in link.rows if row.error == STOPPED)
        reporter.status(
            f"Closed the link: sent to {_receivers(link.delivered)}; nobody else can use it."
            + (f" Stopped {_receivers(stopped)} still under way." if stopped else "")
        )
        return
    reporter.status(f"Done: sent to {_receivers(link.delivered)}.")


def _receivers(count: int) -> str:
    return f"{count} receiver{'s' if count != 1 else ''}"


async def _on_event(
    session: SenderSession,
    reporter: Reporter,
    route: SenderRoute,
    track: Callable[[object], object] | None,
    event: object,
) -> None:
    if track is not None:
        track(event)
    if isinstance(event, Progress):
        reporter.progress(event.done, event.total)
    elif isinstance(event, Verified):
        reporter.verification(event.sas)
        await route.offer()
    elif isinstance(event, DirectSignal):
        await route.on_signal(event.payload)
    elif isinstance(event, Accepted):
        reporter.status("The receiver accepted; sending…")
        if session.manifest.has_stream and sys.stdin is not None and sys.stdin.isatty():
            reporter.status("Type what to send, then Ctrl-D on a line of its own.")
        reporter.start_progress(session.bytes_total, "Sent")
        route.accepted()
    elif isinstance(event, Reconnecting):
        route.lost()
        reporter.reconnecting()
    elif isinstance(event, Resumed):
        reporter.resumed(event.done)
        reporter.progress(event.done, session.bytes_total)
        await route.resumed()
    elif isinstance(event, Completed):
        reporter.progress(session.bytes_total, session.bytes_total)
        reporter.done(len(session.manifest.files), session.bytes_total, session.manifest.text_size)
