"""`hushdrop receive`: the asyncio driver around ReceiverSession."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from ..crypto.pyca import PycaBackend
from ..protocol.codes import Code
from ..protocol.errors import HushdropError
from ..protocol.events import (
    Completed,
    FileCompleted,
    FileData,
    FileStarted,
    Offered,
    PasswordRequired,
    Verified,
)
from ..protocol.receiver import ReceiverSession
from ..transport.relay_client import RelayConnection
from .files import IncomingFiles
from .output import Reporter

AskPassword = Callable[[], str]
AskAccept = Callable[[], Awaitable[bool]]


async def receive(
    code: Code,
    relay: str,
    output: Path,
    *,
    password: str | None,
    ask_password: AskPassword,
    ask_accept: AskAccept | None,
    overwrite: bool,
    reporter: Reporter,
) -> None:
    backend = PycaBackend()
    files = IncomingFiles(output, overwrite)
    connection = await RelayConnection.open(relay)
    session = ReceiverSession(backend, code, password)
    try:
        await connection.join_room(code.room)
        reporter.status("Connected to the sender; checking the code…")
        while not session.finished:
            message = await connection.receive()
            for event in await session.receive(message):
                await _handle(event, session, files, reporter, ask_password, ask_accept)
            await connection.send_all(session.data_to_send())
    except (HushdropError, OSError, asyncio.CancelledError, KeyboardInterrupt) as exc:
        files.close()
        if not isinstance(exc, HushdropError) or exc.kind == "local":
            await session.cancel(
                str(exc) if isinstance(exc, HushdropError) else "The receiver cancelled."
            )
        await connection.send_best_effort(session.data_to_send())
        raise
    finally:
        files.close()
        await connection.close()


async def _handle(event, session, files, reporter, ask_password, ask_accept) -> None:
    if isinstance(event, PasswordRequired):
        await session.provide_password(ask_password())
    elif isinstance(event, Verified):
        reporter.verification(event.sas)
    elif isinstance(event, Offered):
        try:
            files.plan(event.manifest)
        except HushdropError as exc:
            await session.decline(str(exc))
            raise
        targets = [str(p) for p in files.targets]
        reporter.offer(event.manifest, targets)
        if ask_accept is not None and not await ask_accept():
            await session.decline("The receiver said no.")
            raise HushdropError("You declined the transfer.")
        reporter.start_progress(event.manifest.total_size)
        for follow_up in await session.accept():
            await _handle(follow_up, session, files, reporter, ask_password, ask_accept)
    elif isinstance(event, FileStarted):
        files.start(event.index)
    elif isinstance(event, FileData):
        files.write(event.index, event.data)
        reporter.progress(session.bytes_done, session.bytes_total)
    elif isinstance(event, FileCompleted):
        target = files.complete(event.index)
        reporter.file_saved(str(target), event.sha256)
    elif isinstance(event, Completed):
        files.finish()
        await session.finish()
        reporter.progress(session.bytes_total, session.bytes_total)
        reporter.done(len(session.manifest.files), session.bytes_total)
