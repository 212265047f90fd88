"""`hushdrop receive`: the asyncio driver around ReceiverSession.

A transfer that a restart interrupted is picked up from its resume record (PROTOCOL.md §8.3)
when the same code is used again with the same output directory. With `-o -` the single file
goes to standard output instead, and nothing is kept for a restart.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from pathlib import Path

from ..crypto.pyca import PycaBackend
from ..protocol.codes import Code
from ..protocol.errors import HushdropError, ProtocolError
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
from ..protocol.receiver import ReceiverSession
from ..transport.pump import RESUME_WINDOW, Pump
from ..transport.relay_client import RelayConnection
from .direct import ReceiverRoute
from .files import IncomingFiles, LocalFileError, StdoutFile, check_output_dir, save_error
from .hashing import HashWorker
from .output import Reporter
from .resume_record import ResumeRecord, code_tag, find_record, record_path

AskPassword = Callable[[], str]
AskAccept = Callable[[], Awaitable[bool]]


class Receiving:
    """One `hushdrop receive`: the session, where its files go, and its resume record."""

    def __init__(
        self,
        session: ReceiverSession,
        files: IncomingFiles | StdoutFile,
        reporter: Reporter,
        ask_password: AskPassword,
        ask_accept: AskAccept | None,
        code: Code,
        route: ReceiverRoute,
    ) -> None:
        self.session = session
        self.route = route
        self.files = files
        self.reporter = reporter
        self.ask_password = ask_password
        self.ask_accept = ask_accept
        self.code = code
        self.record: ResumeRecord | None = None

    async def handle(self, event: object) -> None:
        """Act on one session event (the Pump's `on_event`)."""
        session, files, reporter = self.session, self.files, self.reporter
        if isinstance(event, PasswordRequired):
            await session.provide_password(self.ask_password())
        elif isinstance(event, Verified):
            reporter.verification(event.sas)
        elif isinstance(event, Offered):
            await self._offer(event)
        elif isinstance(event, TextReceived):
            reporter.text(event.text)
            if self.record is not None:
                try:
                    self.record.mark_text_shown()
                except OSError as exc:
                    raise save_error(self.record.path, exc) from exc
        elif isinstance(event, FileStarted):
            files.start(event.index)
        elif isinstance(event, FileData):
            files.write(event.index, event.data)
            reporter.progress(session.bytes_done, session.bytes_total)
        elif isinstance(event, FileCompleted):
            target = files.complete(event.index)
            self._saved(event.index + 1)
            reporter.file_saved(str(target), event.sha256)
        elif isinstance(event, DirectSignal):
            await self.route.on_signal(event.payload)
        elif isinstance(event, SwitchDirect):
            await self.route.on_switch()
        elif isinstance(event, Reconnecting):
            self.route.lost()
            reporter.reconnecting()
        elif isinstance(event, Resumed):
            reporter.resumed(event.done)
        elif isinstance(event, Completed):
            files.finish()
            await session.finish()
            self._forget()
            reporter.progress(session.bytes_total, session.bytes_total)
            reporter.done(
                len(session.manifest.files), session.bytes_total, session.manifest.text_size
            )

    async def _offer(self, event: Offered) -> None:
        session, files, reporter = self.session, self.files, self.reporter
        manifest = event.manifest
        if not manifest.files and not manifest.dirs:
            # Only a text: it goes to standard output, so nothing is planned, created or
            # recorded in the output folder (a text is small; a restarted receiver has no record
            # and needs a new transfer, §8.3; a lost connection resumes as usual).
            reporter.offer(manifest, [])
            if not await self._accepted():
                await session.decline("they said no.")
                raise HushdropError("You declined the transfer.")
            for follow_up in await session.accept():
                await self.handle(follow_up)
            return
        try:
            files.plan(event.manifest)
        except LocalFileError as exc:
            await session.decline(exc.peer_message)
            raise
        except HushdropError as exc:
            await session.decline(str(exc))
            raise
        if isinstance(files, StdoutFile):  # the sender's name for it, and where it goes
            shown = [f"{f.path} (to standard output)" for f in event.manifest.files]
        else:
            shown = [str(p) for p in files.targets]
        reporter.offer(event.manifest, shown)
        if not await self._accepted():
            await session.decline("they said no.")
            raise HushdropError("You declined the transfer.")
        reporter.start_progress(event.manifest.total_size, "Received")
        files.make_root()
        if isinstance(files, StdoutFile):  # nothing on disk to continue after a restart
            for follow_up in await session.accept():
                await self.handle(follow_up)
            return
        targets = [target.relative_to(files.root) for target in files.targets]
        self.record = ResumeRecord(
            record_path(files.root, files.transfer),
            session.keys,
            event.manifest,
            targets,
            files.transfer,
            code_tag(self.code),
        )
        try:
            self.record.save()
        except OSError as exc:
            raise save_error(self.record.path, exc) from exc
        for follow_up in await session.accept():
            await self.handle(follow_up)

    async def _accepted(self) -> bool:
        """The user's answer to the offer, listening to the sender meanwhile: a link the sender
        closed while the question is open (another receiver's failed guess, PROTOCOL.md §3.1)
        ends it at once with the sender's reason, and nothing is delivered after it."""
        if self.ask_accept is None:
            return True
        pump = self.route.pump
        assert pump is not None
        answer = asyncio.ensure_future(self.ask_accept())
        message: asyncio.Future[bytes] | None = None
        try:
            while True:
                message = asyncio.ensure_future(pump.peer_message())
                done, _ = await asyncio.wait({answer, message}, return_when=asyncio.FIRST_COMPLETED)
                if message not in done:
                    message.cancel()  # a pending queue read loses nothing when cancelled
                    return answer.result()
                # While the user decides the sender only offers a direct connection; the
                # session turns a CANCEL or ABORT into its error.
                for event in await self.session.receive(message.result()):
                    if not isinstance(event, DirectSignal):
                        raise ProtocolError(
                            "The sender sent a message before it was asked for anything."
                        )
                    await self.route.on_signal(event.payload)
        finally:
            answer.cancel()
            if message is not None:
                message.cancel()

    def _saved(self, count: int) -> None:
        if self.record is not None:
            try:
                self.record.mark_saved(count)
            except OSError as exc:
                raise save_error(self.record.path, exc) from exc

    def _forget(self) -> None:
        if self.record is not None:
            self.record.delete()
            self.record = None

    def abandon(self) -> None:
        """The transfer ended for good without finishing: nothing is left to resume, so its
        temporary files and record go (files already saved stay): the record first, since the
        folders this transfer created go only when empty."""
        self._forget()
        self.files.abandon()


async def receive(
    code: Code,
    relay: str,
    output: Path | None,
    *,
    password: str | None,
    ask_password: AskPassword,
    ask_accept: AskAccept | None,
    overwrite: bool,
    reporter: Reporter,
    resume_window: float = RESUME_WINDOW,
    check_output: bool = True,
    direct: bool = True,
) -> None:
    """Receive into the folder `output`, or, when it is None, the one file to standard output.
    `check_output`: refuse an unusable output folder before the code is used; otherwise it is
    checked only when files come (a text needs no folder)."""
    backend = PycaBackend()
    files: IncomingFiles | StdoutFile
    if output is None:
        files, previous = StdoutFile(), None
    else:
        if check_output:
            check_output_dir(output)
        files = IncomingFiles(output, overwrite)
        previous = find_record(output, code)
    hashing = HashWorker()  # each file's SHA-256 off the event loop's thread (§7.3)
    if previous is not None:
        session = _restore(backend, code, previous, files, reporter, hashing)
    else:
        session = ReceiverSession(backend, code, password, file_hash=hashing.sha256)
    route = ReceiverRoute(backend, session, reporter, direct)
    receiving = Receiving(session, files, reporter, ask_password, ask_accept, code, route)
    receiving.record = previous
    connection: RelayConnection | None = None
    pump: Pump | None = None
    try:
        if previous is None:  # else the pump reconnects to resume (§8.3)
            connection = await RelayConnection.open(relay)
            await connection.join_room(code.room)
            reporter.status("Connected to the sender; checking the code…")
        pump = Pump(
            session,
            connection,
            reopen=functools.partial(RelayConnection.open, relay),
            on_event=receiving.handle,
            resume_window=resume_window,
        )
        route.pump = pump
        await pump.run()
    except (Exception, asyncio.CancelledError, KeyboardInterrupt) as exc:
        # Ended for good (the sender is told why): only a process that dies without getting
        # here leaves its temporary files and record, for a rerun to continue (§8.3).
        receiving.abandon()
        error = save_error(output or files.root, exc) if isinstance(exc, OSError) else exc
        if isinstance(files, StdoutFile) and isinstance(error, HushdropError):
            error = _with_note(error, files.incomplete())
        if isinstance(error, LocalFileError):
            await session.cancel(error.peer_message)
        elif isinstance(error, (asyncio.CancelledError, KeyboardInterrupt)):
            await session.cancel("The receiver cancelled the transfer.")
        elif not isinstance(error, HushdropError):  # a bug (main() reports it)
            await session.cancel("The receiver stopped on an internal error.")
        if pump is not None:
            await pump.send_final()
        if error is not exc:
            raise error from exc
        raise
    finally:
        files.close()
        route.close()
        if pump is not None:
            await pump.close()
        elif connection is not None:
            await connection.close()


def _with_note(error: HushdropError, note: str) -> HushdropError:
    """`error`, its message followed by `note` (same type and peer message)."""
    if not note:
        return error
    error.args = (f"{error}{note}", *error.args[1:])
    return error


def _restore(
    backend: PycaBackend,
    code: Code,
    record: ResumeRecord,
    files: IncomingFiles,
    reporter: Reporter,
    hashing: HashWorker,
) -> ReceiverSession:
    """The session of an interrupted transfer, from its record and its `.part` files."""
    files.restore(record.manifest, record.targets, record.transfer)
    partial = files.partial(record.saved) if record.saved < len(record.targets) else None
    size = record.manifest.files[record.saved].size if partial is not None else None
    text_pending = record.manifest.has_text and not record.text_shown
    if partial is not None and (text_pending or (size is not None and partial[0] > size)):
        # Not what this transfer wrote (its files follow the text, which was not shown yet, or
        # the part is longer than the file): start that file again.
        files.discard(record.saved)
        partial = None
    if partial is not None:
        files.reopen(record.saved)
        partial = (partial[0], hashing.sha256(partial[1]))
    session = ReceiverSession.restore(
        backend,
        code,
        record.keys,
        record.manifest,
        record.saved,
        partial,
        file_hash=hashing.sha256,
        text_shown=record.text_shown,
    )
    again = " (the text comes again)" if record.manifest.has_text and not record.text_shown else ""
    reporter.status(
        f"Resuming an interrupted transfer: {record.saved} of {len(record.targets)} files "
        f"already saved{again}."
    )
    reporter.verification(record.keys.sas)
    reporter.start_progress(record.manifest.total_size, "Received")
    return session
