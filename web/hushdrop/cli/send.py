"""`hushdrop send`: the asyncio driver around SenderSession (one per receiver of a link)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable

from ..crypto.pyca import PycaBackend
from ..protocol.codes import SenderSecrets, new_sender_secrets
from ..protocol.errors import HushdropError, PeerGoneError, RelayError, WrongCodeError
from ..protocol.events import (
    Accepted,
    Completed,
    DirectSignal,
    Progress,
    Reconnecting,
    Resumed,
    Verified,
)
from ..protocol.link import LINK_ENDED_REASON, Link
from ..protocol.manifest import Manifest
from ..protocol.sender import SenderSession
from ..transport.pump import RESUME_WINDOW, Pump
from ..transport.relay_client import RelayConnection
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
    connection: RelayConnection,
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
        session = SenderSession(backend, secrets, files.manifest, password)
        await session.start()
        route = SenderRoute(backend, session, reporter, direct)

        async def read(index: int, offset: int, length: int) -> memoryview:
            if files.manifest.files[index].size is None:  # a pipe may make us wait
                return await asyncio.to_thread(files.read_stream, length)
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
    except (HushdropError, asyncio.CancelledError, KeyboardInterrupt) as exc:
        if pump is not None:
            if isinstance(exc, LocalFileError):
                await pump.session.cancel(exc.peer_message)
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
    assert control.room is not None and control.token is not None
    room, token = control.room, control.token
    link = Link(control.receivers)
    transfers: dict[int, asyncio.Task[None]] = {}
    link_ended = asyncio.Event()

    async def serve(number: int) -> None:
        mine = reporter.for_receiver(number)
        connection = await RelayConnection.open(relay)
        reader = files.reader()
        try:
            await connection.attach_room(room, number, token)
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
                lambda: LINK_ENDED_REASON if link.ended else None,
            )
        except HushdropError as exc:
            if link.failed(number, exc):
                link_ended.set()
            mine.error(exc.kind, str(exc))
            raise
        finally:
            reader.close()
            await connection.close()

    async def admit() -> None:
        while not link.all_joined:
            try:
                number = await control.next_receiver()
            except (RelayError, PeerGoneError):
                if not link.rows:
                    raise  # nobody came: the link expired, as with one receiver
                return
            link.joined(number)
            reporter.status(f"Receiver {number} of {link.receivers} connected.")
            transfers[number] = asyncio.create_task(serve(number))

    admitting = asyncio.create_task(admit())
    ending = asyncio.create_task(link_ended.wait())
    try:
        while True:
            waiting = {admitting, ending, *transfers.values()}
            if admitting.done() and all(t.done() for t in transfers.values()):
                break
            await asyncio.wait(waiting, return_when="FIRST_COMPLETED")
            if admitting.done() and admitting.exception() is not None:
                raise admitting.exception()  # type: ignore[misc]
            if link.ended:
                break
    finally:
        admitting.cancel()
        ending.cancel()
        if link.ended or any(not t.done() for t in transfers.values()):
            await control.close()  # no receiver joins a link that is over
            for task in transfers.values():
                if not task.done():
                    task.cancel()
        results = await asyncio.gather(*transfers.values(), return_exceptions=True)
        await asyncio.gather(admitting, ending, return_exceptions=True)
    if link.ended:
        raise WrongCodeError(sender=True)
    failures = [(number, r) for number, r in enumerate(results, 1) if isinstance(r, BaseException)]
    if failures:
        number, error = failures[0]
        raise HushdropError(
            f"Sent to {link.delivered} of {len(link.rows)} receivers; receiver {number}: {error}"
        )
    reporter.status(f"Done: sent to {link.delivered} receiver{'s' if link.delivered != 1 else ''}.")


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
        reporter.start_progress(session.bytes_total, "Sent")
        route.accepted()
    elif isinstance(event, Reconnecting):
        route.lost()
        reporter.reconnecting()
    elif isinstance(event, Resumed):
        reporter.resumed(event.done)
        reporter.progress(event.done, session.bytes_total)
    elif isinstance(event, Completed):
        reporter.progress(session.bytes_total, session.bytes_total)
        reporter.done(
            len(session.manifest.files), session.bytes_total, _text_size(session.manifest)
        )


def _text_size(manifest: Manifest) -> int | None:
    return None if manifest.text is None else manifest.text_size
