"""The receiver's session: handshake, offer, then decrypting and verifying the data stream.

Driver contract (sans-I/O): pass every binary message from the relay to `receive()` and act on the
events in order (TextReceived: show the text; FileData: append to the file's `.part`;
FileCompleted: give it its final name);
answer PasswordRequired with `provide_password()` and Offered with `accept()` or `decline()`; once
Completed arrived and every file is saved, call `finish()`. After every call, send everything
`data_to_send()` returns, in order. When the connection closes, see
`PeerSession.connection_lost()`; a restarted receiver starts from `ReceiverSession.restore()`.

A file of unknown size (a stream, §7.2) is the last one; `bytes_total` is None until it ends.

A text (§6.1.1) is the data stream's first entry: its plaintext is held in memory (at most
MAX_TEXT_BYTES) and TextReceived comes once all of it arrived and its SHA-256 matched. Internally
indices count the data stream's entries (the text, then the files), as the file contexts and
RESUME_AT do (§7); events name files by their index in the manifest. `bytes_done` and
`bytes_total` count file content only.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable
from typing import Protocol

from ..crypto.backend import CryptoBackend, CryptoError
from ..crypto.chunked import HEADER_SIZE, ChunkDecryptor, ciphertext_size
from .codes import Code
from .constants import (
    CREDIT_BATCH,
    FILE_DIGEST_SIZE,
    INITIAL_CREDIT,
    KIND_ACCEPT,
    KIND_CANCEL,
    KIND_COMPLETE,
    KIND_CREDIT,
    KIND_DECLINE,
    KIND_KEEPALIVE,
    KIND_MANIFEST,
    KIND_RESUME_AT,
    KIND_RESUMED,
    KIND_SIGNAL,
    KIND_SWITCH,
    MSG_ABORT,
    MSG_DATA,
    MSG_HELLO,
    MSG_PAKE_B,
    MSG_SEALED,
    MSG_SEALED_PART,
    SIDE_RECEIVER,
)
from .errors import HushdropError, ProtocolError, TamperedError
from .events import (
    Completed,
    Event,
    FileCompleted,
    FileData,
    FileStarted,
    Offered,
    PasswordRequired,
    Resumed,
    SwitchDirect,
    TextReceived,
    Verified,
)
from .framing import decode_abort, encode_credit, encode_resume_at, encode_u64, message_type
from .handshake import ReceiverHandshake
from .keys import SealedChannel, SessionKeys
from .manifest import Manifest
from .padding import all_zeros, stream_padding
from .session import PeerSession, abort_error, cancel_error, file_context
from .stream import StreamReader


class FileHash(Protocol):
    """A running SHA-256 (hashlib's, or one a driver computes elsewhere, e.g. on a thread)."""

    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...

    def hexdigest(self) -> str: ...


class _IncomingFile:
    """Decryption state of the file currently arriving."""

    def __init__(
        self,
        index: int,
        size: int | None,
        padding: int | Callable[[int], int],
        file_hash: FileHash,
        written: int = 0,
    ) -> None:
        self.index = index  # the data stream's entry
        self.size = size  # None: a stream (§7.2), whose framing says where it ends
        # Zero bytes after the trailer (the last file's, §7.1); a stream's depends on its framed
        # length, so it is a function of that.
        self.padding = padding
        self.written = written  # content bytes verified and handed to the driver
        # Of everything written: the trailer of a resumed ciphertext is checked against it
        # (§7.3), and the driver reports it.
        self.hash = file_hash
        self.expect_ciphertext()

    def expect_ciphertext(self) -> None:
        """Wait for a (new) ciphertext of the rest of the file, from `written` on (§7, §8.2)."""
        self.start = self.written
        self.header = bytearray()
        self.decryptor: ChunkDecryptor | None = None
        self.digest = bytearray()
        if self.size is None:
            self.reader: StreamReader | None = StreamReader(self.written, self.padding)
            self.remaining = -1  # unknown: the empty DATA after it marks its end
            return
        self.reader = None
        # Chunk bytes after the header: the plaintext is the content, its SHA-256, the padding.
        plaintext = self.size - self.start + FILE_DIGEST_SIZE + self.padding
        self.remaining = ciphertext_size(plaintext) - HEADER_SIZE


class ReceiverSession(PeerSession):
    side = SIDE_RECEIVER
    resumable_states = frozenset({"receiving", "saving"})

    def __init__(
        self,
        backend: CryptoBackend,
        code: Code,
        password: str | None = None,
        *,
        file_hash: Callable[[], FileHash] = hashlib.sha256,
    ) -> None:
        """`file_hash` makes each file's running SHA-256 (a driver may hash off its thread)."""
        super().__init__(backend)
        self._file_hash = file_hash
        self._handshake = ReceiverHandshake(backend, code)
        self._password = password
        self._state = "await-hello"
        self.manifest: Manifest | None = None
        self._file: _IncomingFile | None = None
        self._text = bytearray()  # the text entry's verified plaintext so far
        self._next_index = 0
        self._received = 0
        self._credited = 0
        self._flushed = False  # a stream flush was read in the DATA message being handled
        self.bytes_done = 0
        self.bytes_total = 0

    @classmethod
    def restore(
        cls,
        backend: CryptoBackend,
        code: Code,
        keys: SessionKeys,
        manifest: Manifest,
        saved: int,
        partial: tuple[int, FileHash] | None = None,
        *,
        file_hash: Callable[[], FileHash] = hashlib.sha256,
        text_shown: bool = True,
    ) -> ReceiverSession:
        """A restarted receiver (§8.3): `saved` files are stored; the next has `partial` =
        (verified bytes, their SHA-256) in its `.part`, or None. `text_shown`: the
        manifest's text (if any) was shown before the restart; when not, the data stream
        restarts at the text (nothing of it was kept) and `saved`/`partial` must be 0/None.
        Waits to `resume()`."""
        session = cls(backend, code, file_hash=file_hash)
        session._keys = keys
        session.manifest = manifest
        session.bytes_total = manifest.total_size
        session.bytes_done = sum(f.size for f in manifest.files[:saved])
        if manifest.has_text and not text_shown:
            if saved or partial is not None:
                raise ValueError("files cannot be saved before the text that precedes them")
            session._next_index = 0
        else:
            entry = saved + manifest.first_file
            session._next_index = entry
            if partial is not None and saved < len(manifest.files):
                written, prefix_hash = partial
                session._file = _IncomingFile(
                    entry,
                    manifest.files[saved].size,
                    session._padding_of(entry),
                    prefix_hash,
                    written,
                )
                session._next_index = entry + 1
                session.bytes_done += written
        session._resume_state = "receiving"
        session._state = "reconnecting"
        return session

    async def receive(self, message: bytes) -> list[Event]:
        """Process one message from the sender; raises HushdropError when the transfer ends."""
        try:
            return await self._receive(message)
        except HushdropError as exc:
            await self._guard(exc)
            raise

    async def _receive(self, message: bytes) -> list[Event]:
        kind = message_type(message)
        if kind in (MSG_SEALED, MSG_SEALED_PART):
            message = self._assemble(message)
            if message is None:
                return []
        if kind == MSG_ABORT:
            if self._peer_proven:
                return []  # forged: after confirmation only sealed messages count (§5.4)
            self._state = "failed"
            raise abort_error(decode_abort(message), self.side)
        if kind == MSG_DATA and self._state == "receiving":
            if len(message) == 1:
                return await self._on_stream_end()
            return await self._on_data(memoryview(message)[1:])
        if self._is_resume(kind):
            await self._on_resume(message)
            return []
        if self._state == "await-hello" and kind == MSG_HELLO:
            if self._handshake.on_hello(message) and not self._password:
                self._state = "need-password"
                return [PasswordRequired()]
            await self._send_share(self._password or "")
            return []
        if self._state == "await-pake-b" and kind == MSG_PAKE_B:
            self._keys, confirm = await self._handshake.on_pake_b(message)
            self._channel = SealedChannel(
                self._backend, self._keys.control_r2s, self._keys.control_s2r
            )
            self._outgoing.append(confirm)
            self._state = "await-manifest"
            return [Verified(self._keys.sas)]
        if kind == MSG_SEALED and self._channel is not None and self._state != "failed":
            return await self._on_sealed(*await self._open_sealed(message))
        raise ProtocolError(f"Received an unexpected message (type {kind:#04x}) from the sender.")

    async def provide_password(self, password: str) -> None:
        if self._state != "need-password":
            raise ProtocolError("No password was asked for.")
        await self._send_share(password)

    async def _send_share(self, password: str) -> None:
        self._outgoing.append(await self._handshake.pake_a(password))
        self._state = "await-pake-b"

    async def _on_sealed(self, kind: int, body: bytes) -> list[Event]:
        if kind == KIND_CANCEL:
            self._state = "failed"
            raise cancel_error(body, self.side)
        if kind == KIND_SIGNAL and self._state in ("await-manifest", "offered", "receiving"):
            return self._signal(body)
        if kind == KIND_SWITCH and self._state == "receiving":
            return [SwitchDirect()]
        if kind == KIND_KEEPALIVE and self._state == "receiving" and not body:
            return []  # the sender's stream input is quiet (§7.2): it only kept the link alive
        if kind == KIND_RESUMED and self._state == "resume-wait":
            self._state = self._resume_state
            return [Resumed(self.bytes_done)]
        if kind == KIND_MANIFEST and self._state == "await-manifest":
            self.manifest = Manifest.decode(body)
            self.manifest.safe_paths()  # refuse colliding names before anything is written
            self.bytes_total = self.manifest.total_size
            self._state = "offered"
            return [Offered(self.manifest)]
        raise ProtocolError(f"Received an unexpected control message ({kind}) from the sender.")

    def _forget_connection(self) -> None:
        # The sender restarts the current file's ciphertext; credit starts afresh (§8.2).
        self._received = self._credited = 0
        if self._file is not None:
            self._file.expect_ciphertext()

    async def _resume_started(self) -> None:
        if self._resume_state == "saving":
            position = encode_resume_at(len(self.manifest.entry_sizes), 0, 0)
        elif self._file is not None:
            position = encode_resume_at(self._file.index, self._file.written, INITIAL_CREDIT)
        else:
            position = encode_resume_at(self._next_index, 0, INITIAL_CREDIT)
        await self._send_sealed(KIND_RESUME_AT, position)

    @property
    def keys(self) -> SessionKeys | None:
        """The session keys, for a resume record (§8.3)."""
        return self._keys

    async def accept(self) -> list[Event]:
        """Accept the offer: grant the initial credit. Returns Completed at once if the data
        stream has no entries (only empty folders)."""
        if self._state != "offered" or self._channel is None:
            raise ProtocolError("There is no offer to accept.")
        await self._send_sealed(KIND_ACCEPT, encode_u64(INITIAL_CREDIT))
        self._state = "receiving"
        return self._maybe_completed()

    async def decline(self, reason: str) -> None:
        if self._state != "offered" or self._channel is None:
            raise ProtocolError("There is no offer to decline.")
        await self._send_sealed(KIND_DECLINE, reason.encode("utf-8"))
        self._state = "failed"

    async def finish(self) -> None:
        """Every file is saved under its final name: tell the sender."""
        if self._state != "saving" or self._channel is None:
            raise ProtocolError("The transfer is not complete.")
        await self._send_sealed(KIND_COMPLETE)
        self._state = "done"

    def _maybe_completed(self) -> list[Event]:
        if self._next_index >= len(self.manifest.entry_sizes) and self._file is None:
            self._state = "saving"
            return [Completed()]
        return []

    async def _on_data(self, data: memoryview) -> list[Event]:
        # Credit is returned for data this call decrypts; the driver handles (writes) these events
        # before it passes the next message, so unwritten data stays within one credit window.
        self._received += len(data)
        events: list[Event] = []
        while data:
            if self._file is None:
                if self._next_index >= len(self.manifest.entry_sizes):
                    raise ProtocolError("The sender sent more data than it announced.")
                index = self._next_index
                self._file = self._incoming(index)
                self._next_index += 1
                if not self._is_text(index):
                    events.append(FileStarted(index - self.manifest.first_file))
            data = await self._consume(self._file, data, events)
        events.extend(self._maybe_completed())
        flushed, self._flushed = self._flushed, False
        unreported = self._received - self._credited
        # A flush means the sender's input paused: report at once, so its progress (and the
        # window it keeps for a resume) follows a slow stream rather than every 4 MiB (§7.4).
        report = unreported >= CREDIT_BATCH or (flushed and unreported > 0)
        if self._state == "receiving" and report:
            grant = unreported
            self._credited = self._received
            await self._send_sealed(KIND_CREDIT, encode_credit(grant, self.bytes_done))
        return events

    async def _on_stream_end(self) -> list[Event]:
        """The empty DATA message: the data stream, whose last file is a stream, ends (§7.2)."""
        f = self._file
        if f is None and self._next_index == len(self.manifest.entry_sizes) - 1:
            f = self._file = self._incoming(self._next_index)
            self._next_index += 1
        if f is None or f.reader is None:
            raise ProtocolError("The sender ended a data stream that has no stream in it.")
        if f.decryptor is None:
            raise TamperedError(self._tampered(f))
        events: list[Event] = []
        try:
            plaintext = await f.decryptor.finalize()
        except CryptoError as exc:
            raise TamperedError(self._tampered(f)) from exc
        self._deliver_stream(f, plaintext, events)
        f.reader.finish()
        self._check_trailer(f, f.reader.digest)
        self.bytes_total = self.bytes_done
        events.append(FileCompleted(self._file_index(f), f.hash.hexdigest()))
        self._file = None
        events.extend(self._maybe_completed())
        return events

    def _deliver_stream(self, f: _IncomingFile, plaintext: bytes, events: list[Event]) -> None:
        for piece in f.reader.feed(memoryview(plaintext)):
            chunk = bytes(piece)
            f.hash.update(chunk)
            f.written += len(chunk)
            self.bytes_done += len(chunk)
            events.append(FileData(self._file_index(f), chunk))

    def _incoming(self, index: int) -> _IncomingFile:
        if self._is_text(index):
            del self._text[:]  # a new ciphertext of the text from 0: a restarted receiver
            text_hash = hashlib.sha256()  # in memory, and small: no need to hash elsewhere
            return _IncomingFile(index, self.manifest.text_size, self._padding_of(index), text_hash)
        size = self.manifest.entry_sizes[index]
        return _IncomingFile(index, size, self._padding_of(index), self._file_hash())

    def _is_text(self, index: int) -> bool:
        return index < self.manifest.first_file

    def _file_index(self, f: _IncomingFile) -> int:
        return f.index - self.manifest.first_file

    def _check_trailer(self, f: _IncomingFile, trailer: bytes) -> None:
        """§7.3: a ciphertext that starts inside its file (resumed) ends with the whole file's
        SHA-256, which must be the hash of the part kept from earlier connections followed by
        this one's; a ciphertext of the whole file, authenticated as one, ends with zeros."""
        if f.start == 0:
            if trailer != bytes(FILE_DIGEST_SIZE):  # authenticated: only a broken sender
                raise ProtocolError(
                    f"The sender ended {self._name(f)} with a SHA-256 where none belongs (an "
                    "older or broken Hushdrop); it was not saved."
                )
        elif not hmac.compare_digest(f.hash.digest(), trailer):
            raise TamperedError(
                f"{self._name(f, start=True)} arrived with the wrong SHA-256: the part received "
                "before the connection broke and the rest do not belong to the same file (it "
                "may have changed on the sender's side meanwhile); it was not saved."
            )

    async def _consume(self, f: _IncomingFile, data: memoryview, events: list[Event]) -> memoryview:
        """Feed file `f` from `data`; return what belongs to the following files."""
        if f.decryptor is None:
            take = HEADER_SIZE - len(f.header)
            f.header += data[:take]
            data = data[take:]
            if len(f.header) < HEADER_SIZE:
                return data
            try:
                f.decryptor = await ChunkDecryptor.create(
                    self._backend, self._data_key, file_context(f.index, f.start), bytes(f.header)
                )
            except CryptoError as exc:
                raise TamperedError(self._tampered(f)) from exc
        if f.reader is not None:  # a stream: everything up to the end belongs to it
            try:
                plaintext = await f.decryptor.update(data)
            except CryptoError as exc:
                raise TamperedError(self._tampered(f)) from exc
            flushes = f.reader.flushes
            self._deliver_stream(f, plaintext, events)
            self._flushed |= f.reader.flushes != flushes
            return data[len(data) :]
        take = min(len(data), f.remaining)
        try:
            plaintext = await f.decryptor.update(data[:take])
            f.remaining -= take
            if f.remaining == 0:
                plaintext += await f.decryptor.finalize()
        except CryptoError as exc:
            raise TamperedError(self._tampered(f)) from exc
        self._deliver(f, plaintext, events)
        if f.remaining == 0:
            self._check_trailer(f, bytes(f.digest))
            events.append(self._completed(f))
            self._file = None
        return data[take:]

    def _completed(self, f: _IncomingFile) -> Event:
        """The entry `f` is whole and verified: a file to save, or the text to show."""
        if not self._is_text(f.index):
            return FileCompleted(self._file_index(f), f.hash.hexdigest())
        try:
            text = self._text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError("The sender's text is not valid Unicode text.") from exc
        del self._text[:]
        return TextReceived(text)

    def _deliver(self, f: _IncomingFile, plaintext: bytes, events: list[Event]) -> None:
        content = min(len(plaintext), f.size - f.written)
        if content > 0:
            chunk = plaintext[:content] if content < len(plaintext) else plaintext
            f.hash.update(chunk)
            f.written += content
            if self._is_text(f.index):
                self._text += chunk  # shown once whole and verified
            else:
                self.bytes_done += content
                events.append(FileData(self._file_index(f), chunk))
        rest = memoryview(plaintext)[max(content, 0) :]
        take = FILE_DIGEST_SIZE - len(f.digest)
        f.digest += rest[:take]
        if not all_zeros(rest[take:]):  # authenticated, so only a broken sender gets here
            raise ProtocolError(f"The padding after {self._name(f)} is not zeros.")

    def _padding_of(self, index: int) -> int | Callable[[int], int]:
        """Stream padding after entry `index`'s digest: only the last entry has any (§7.1); a
        stream's as a function of its framed length (§7.2)."""
        sizes = self.manifest.entry_sizes
        if index != len(sizes) - 1:
            return 0
        if sizes[index] is None:
            return functools.partial(stream_padding, self.manifest)
        return stream_padding(self.manifest)

    def _name(self, f: _IncomingFile, *, start: bool = False) -> str:
        if self._is_text(f.index):
            return "The text" if start else "the text"
        return repr(self.manifest.files[self._file_index(f)].path)

    def _tampered(self, f: _IncomingFile) -> str:
        return (
            f"The encrypted data of {self._name(f)} failed authentication: it was altered or "
            "truncated on the way. Nothing was saved under its name."
        )
