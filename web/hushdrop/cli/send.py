"""`hushdrop send`: the asyncio driver around SenderSession."""

from __future__ import annotations

import asyncio

from ..crypto.pyca import PycaBackend
from ..protocol.codes import new_sender_secrets
from ..protocol.errors import HushdropError, PeerGoneError, RelayError
from ..protocol.events import Accepted, Completed, Verified
from ..protocol.sender import SenderSession
from ..transport.relay_client import RelayConnection
from .files import OutgoingFiles
from .output import Reporter

REASON_WAIT = 2.0  # seconds to wait for the receiver's last message after a failed send


async def send(
    paths: list[str], relay: str, password: str, ttl: int | None, reporter: Reporter
) -> None:
    files = OutgoingFiles.collect(paths)
    backend = PycaBackend()
    connection = await RelayConnection.open(relay)
    session: SenderSession | None = None
    try:
        room, granted_ttl = await connection.create_room(ttl)
        secrets = new_sender_secrets(room, backend.random_bytes, bool(password))
        reporter.code(secrets.typed, secrets.link(relay), granted_ttl, bool(password))
        await connection.wait_paired()
        reporter.status("The receiver connected; checking the code…")
        session = SenderSession(backend, secrets, files.manifest, password)
        session.start()
        await _transfer(session, connection, files, reporter)
    except (HushdropError, asyncio.CancelledError, KeyboardInterrupt) as exc:
        if session is not None:
            if not isinstance(exc, HushdropError):
                await session.cancel("The sender cancelled the transfer.")
            await connection.send_best_effort(session.data_to_send())
        raise
    finally:
        files.close()
        await connection.close()


async def _transfer(
    session: SenderSession, connection: RelayConnection, files: OutgoingFiles, reporter: Reporter
) -> None:
    incoming: asyncio.Queue[bytes | BaseException] = asyncio.Queue()

    async def read_peer() -> None:
        # Only queues raw messages: the session is touched by the main loop alone.
        while True:
            try:
                message = await connection.receive()
            except BaseException as exc:
                await incoming.put(exc)
                return
            await incoming.put(message)

    async def flush() -> None:
        try:
            await connection.send_all(session.data_to_send())
        except (PeerGoneError, RelayError):
            await _peer_reason(session, incoming)  # raises the receiver's reason, if it gave one
            raise

    reader = asyncio.create_task(read_peer())
    try:
        await flush()
        while not session.finished:
            request = session.next_read()
            if request is not None:
                index, offset, length = request
                await session.send_plaintext(files.read(index, offset, length))
                reporter.progress(session.bytes_done, session.bytes_total)
                await flush()
                if incoming.empty():
                    continue
            item = await incoming.get()
            if isinstance(item, BaseException):
                raise item
            for event in await session.receive(item):
                if isinstance(event, Verified):
                    reporter.verification(event.sas)
                elif isinstance(event, Accepted):
                    reporter.status("The receiver accepted; sending…")
                    reporter.start_progress(session.bytes_total)
                elif isinstance(event, Completed):
                    reporter.progress(session.bytes_total, session.bytes_total)
                    reporter.done(len(session.manifest.files), session.bytes_total)
            await flush()
    finally:
        reader.cancel()


async def _peer_reason(session: SenderSession, incoming: asyncio.Queue) -> None:
    """The connection failed while sending: read what the receiver sent before it went.

    A receiver that stops (disk full, tampered data) sends CANCEL and leaves; if our send fails
    first, its CANCEL is still queued, and `session.receive` turns it into the real reason.
    """
    while True:
        try:
            item = await asyncio.wait_for(incoming.get(), REASON_WAIT)
        except TimeoutError:
            return
        if isinstance(item, BaseException):
            return
        await session.receive(item)
