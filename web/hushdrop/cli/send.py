"""`hushdrop send`: the asyncio driver around SenderSession."""

from __future__ import annotations

import asyncio
import functools

from ..crypto.pyca import PycaBackend
from ..protocol.codes import new_sender_secrets
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
from ..protocol.manifest import Manifest
from ..protocol.sender import SenderSession
from ..transport.pump import RESUME_WINDOW, Pump
from ..transport.relay_client import RelayConnection
from .direct import SenderRoute
from .files import LocalFileError, OutgoingFiles
from .output import Reporter


async def send(
    paths: list[str],
    relay: str,
    password: str,
    ttl: int | None,
    reporter: Reporter,
    *,
    resume_window: float = RESUME_WINDOW,
    text: str | None = None,
    direct: bool = True,
) -> None:
    files = OutgoingFiles.collect(paths, text)
    backend = PycaBackend()
    connection = await RelayConnection.open(relay)
    pump: Pump | None = None
    route: SenderRoute | None = None
    try:
        room, granted_ttl = await connection.create_room(ttl)
        if ttl is not None and granted_ttl != ttl:
            reporter.status(
                f"The relay does not keep codes for {ttl} s; this code lasts {granted_ttl} s "
                f"instead ({'the longest' if granted_ttl < ttl else 'the shortest'} it allows)."
            )
        secrets = new_sender_secrets(room, backend.random_bytes, bool(password))
        reporter.code(secrets.typed, secrets.link(relay), granted_ttl, bool(password))
        await connection.wait_paired()
        reporter.status("The receiver connected; checking the code…")
        session = SenderSession(backend, secrets, files.manifest, password)
        await session.start()
        route = SenderRoute(backend, session, reporter, direct)

        async def read(index: int, offset: int, length: int) -> memoryview:
            return files.read(index, offset, length)

        pump = Pump(
            session,
            connection,
            reopen=functools.partial(RelayConnection.open, relay),
            on_event=functools.partial(_on_event, session, reporter, route),
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
                await pump.session.cancel("The sender cancelled the transfer.")
            await pump.send_final()
        raise
    finally:
        files.close()
        if route is not None:
            route.close()
        await (pump.close() if pump is not None else connection.close())


async def _on_event(
    session: SenderSession, reporter: Reporter, route: SenderRoute, event: object
) -> None:
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
