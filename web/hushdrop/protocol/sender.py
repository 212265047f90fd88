"""The sender's session: handshake, manifest, then the encrypted data stream under flow control.

Driver contract (sans-I/O): await `start()` once the relay says `paired`; pass every binary message
from the relay to `receive()`; whenever `next_read()` names a file range, read it and pass the bytes
to `send_plaintext()`; after every call, send everything `data_to_send()` returns, in order. When
the connection closes, see `PeerSession.connection_lost()`.

A file of unknown size (a stream, §7.2) is read the same way, except that a read may return fewer
bytes than asked, and returns none at the stream's end. While a read waits, call `input_idle()`
once `STREAM_FLUSH_DELAY` passed since the first read after the previous call, and then every
`KEEPALIVE_INTERVAL`: what was read goes out, and the connection stays alive however long the
input is quiet.

A text (§6.1.1) is the data stream's first entry; the session holds it (at most MAX_TEXT_BYTES)
and encrypts it itself, so `next_read()` only ever names files. Internally `_index` counts the
data stream's entries (the text, then the files), as the file contexts and RESUME_AT do (§7).
"""

from __future__ import annotations

import hashlib

from ..crypto.backend import CryptoBackend
from ..crypto.chunked import CHUNK_SIZE, ChunkEncryptor
from .codes import SenderSecrets
from .constants import (
    DATA_FRAME_SIZE,
    FILE_DIGEST_SIZE,
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
    MSG_CONFIRM,
    MSG_DATA,
    MSG_PAKE_A,
    MSG_SEALED,
    MSG_SEALED_PART,
    SEGMENT_HEADER_SIZE,
    SIDE_SENDER,
    STREAM_END_SIZE,
)
from .errors import (
    DeclinedError,
    GuessLeftError,
    HushdropError,
    ProtocolError,
    StreamLostError,
    WrongCodeError,
)
from .events import Accepted, Completed, Event, Progress, Resumed, Verified
from .framing import decode_abort, decode_credit, decode_resume_at, decode_u64, message_type
from .handshake import SenderHandshake
from .keys import SealedChannel
from .manifest import FileEntry, Manifest, text_bytes
from .padding import stream_padding
from .session import PeerSession, abort_error, cancel_error, file_context
from .stream import end_record, flush_record, segment_header
from .text import peer_text

READ_SIZE = 1024 * 1024  # a multiple of the 16 KiB chunk size, so reads map onto whole chunks
_ZEROS = bytes(READ_SIZE)  # stream padding is encrypted from here, a block at a time


class SenderSession(PeerSession):
    side = SIDE_SENDER
    resumable_states = frozenset({"offered", "sending"})

    def __init__(
        self,
        backend: CryptoBackend,
        secrets: SenderSecrets,
        manifest: Manifest,
        password: str = "",
        *,
        text: str | None = None,
        accept_typed: bool = True,
    ) -> None:
        """`text`: the text the manifest announces (its `text_size` must be its UTF-8 length).
        `accept_typed`: whether the typed code works too, not only the link (§2): say so
        only when it was shown to someone."""
        super().__init__(backend)
        self._text = None if text is None else text_bytes(text)
        if (self._text is None) != (manifest.text_size is None) or (
            self._text is not None and len(self._text) != manifest.text_size
        ):
            raise ValueError("the manifest's text_size does not match the text")
        self._handshake = SenderHandshake(backend, secrets, password, accept_typed=accept_typed)
        self.manifest = manifest
        self._credit = 0
        self._sent = 0
        # The data stream is written straight into DATA messages: full ones wait in `_ready`
        # for credit; `_frame` is being filled (byte 0 is the message type).
        self._ready: list[bytearray] = []
        self._frame = _new_frame()
        self._fill = 1
        self._entries = manifest.entry_sizes  # the text (if any), then every file (§7)
        self._index = 0  # the data stream's entry being sent
        self._offset = 0
        # Bytes of the current file read so far; behind `_offset` only after a resume, while
        # the part the receiver already has is read again to complete the file's hash.
        self._hashed = 0
        self._start = 0  # where the current file's ciphertext starts (non-zero after a resume)
        self._encryptor: ChunkEncryptor | None = None
        # The current file's SHA-256, kept only where its trailer needs it (§7.3).
        self._stream_hash = hashlib.sha256() if manifest.has_stream else None
        self._hash = self._new_hash(0, 0)
        # A last file of unknown size (§7.2): how much of it was read (input cannot be read
        # again, so this never goes back), whether its end was, and its framed plaintext
        # length in the current ciphertext (which decides the padding).
        self._stream_read = 0
        self._stream_ended = False
        self._framed = 0
        # What was read of the stream and the receiver may not have verified yet, as
        # (stream offset, bytes), so that it can resume from the receiver's position (§7.2);
        # dropped as the receiver's CREDIT reports it verified: about a credit window at most.
        self._kept: list[tuple[int, bytes]] = []
        # The zero bytes that end the last file's plaintext (§7.1); `_padded` of them are
        # encrypted, after its digest, as credit makes room. A stream's is known at its end.
        self._padding = 0 if manifest.has_stream else stream_padding(manifest)
        self._padded: int | None = None  # None until the last file's digest is in the stream
        self.bytes_done = 0  # content read and encrypted (up to a credit window ahead)
        self.bytes_acknowledged = 0  # content the receiver verified and stored (its CREDIT)
        self.bytes_total = manifest.total_size
        self._sent_everything = False
        self._held = False
        self._switching = False  # SWITCH was queued: no more DATA on this connection
        self._end_marked = False  # the empty DATA after a stream's last byte was queued (§7.2)
        # PAKE_B went out and no CONFIRM came back: the peer could check one guess of the code.
        self._guess_open = False

    async def start(self) -> None:
        if self._state != "new":
            raise ProtocolError("The session was already started.")
        self._outgoing.append(await self._handshake.hello())
        self._state = "await-pake-a"

    def ended_by(self, error: HushdropError) -> HushdropError:
        """A session that ends between PAKE_B and the receiver's CONFIRM, however it ends (the
        peer leaves, aborts, the relay closes the room, a timeout), is a failed guess: PAKE_B let
        the peer check its guess of the code, so counting only a wrong CONFIRM would let a
        guesser who never confirms try again (on the link's other receivers, §3.1)."""
        if not self._guess_open or isinstance(error, WrongCodeError):
            return error
        self._guess_open = False
        self._state = "failed"
        return GuessLeftError()

    async def receive(self, message: bytes) -> list[Event]:
        """Process one message from the receiver; raises HushdropError when the transfer ends."""
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
        if self._is_resume(kind):
            await self._on_resume(message)
            return []
        if self._state == "await-pake-a" and kind == MSG_PAKE_A:
            self._outgoing.append(await self._handshake.on_pake_a(message))
            self._state = "await-confirm"
            self._guess_open = True
            return []
        if self._state == "await-confirm" and kind == MSG_CONFIRM:
            self._keys = await self._handshake.on_confirm(message)
            self._guess_open = False
            # R's tag proves it holds the keys; from now on it ends only with a sealed CANCEL,
            # so an ABORT can only be forged (by the relay, say during the offer prompt, §5.4).
            self._peer_proven = True
            self._channel = SealedChannel(
                self._backend, self._keys.control_s2r, self._keys.control_r2s
            )
            await self._send_sealed(KIND_MANIFEST, self.manifest.encode())
            self._state = "offered"
            return [Verified(self._keys.sas)]
        if (
            kind == MSG_SEALED
            and self._channel is not None
            and self._state in ("offered", "sending", "resume-wait")
        ):
            return await self._on_sealed(*await self._open_sealed(message))
        raise ProtocolError(f"Received an unexpected message (type {kind:#04x}) from the receiver.")

    async def _on_sealed(self, kind: int, body: bytes) -> list[Event]:
        if kind == KIND_CANCEL:
            self._state = "failed"
            raise cancel_error(body, self.side)
        if kind == KIND_SIGNAL and self._state in ("offered", "sending"):
            return self._signal(body)
        if self._state == "resume-wait":
            if kind == KIND_RESUME_AT:
                return await self._resume_at(body)
        elif self._state == "offered":
            if kind == KIND_DECLINE:
                self._state = "failed"
                reason = peer_text(body)
                raise DeclinedError(reason)
            if kind == KIND_ACCEPT:
                self._credit = decode_u64(body)
                self._state = "sending"
                await self._advance_files()
                return [Accepted()]
        elif self._state == "sending":
            if kind == KIND_CREDIT:
                grant, verified = decode_credit(body)
                self._credit += grant
                await self._advance_files()
                if verified <= self.bytes_acknowledged:
                    return []
                self.bytes_acknowledged = min(verified, self.bytes_done)
                self._forget_verified(self.bytes_acknowledged - self.manifest.known_size)
                return [Progress(self.bytes_acknowledged, self.bytes_total)]
            if kind == KIND_COMPLETE:
                if self._index < len(self._entries) or self._ready or self._fill > 1:
                    raise ProtocolError(
                        "The receiver reported success before receiving everything."
                    )
                self._state = "done"
                return [Completed()]
        raise ProtocolError(f"Received an unexpected control message ({kind}) from the receiver.")

    async def _resume_at(self, body: bytes) -> list[Event]:
        """Restart the data stream where the receiver says it stands (PROTOCOL.md §8.2)."""
        at = decode_resume_at(body)
        entries = self._entries
        size = entries[at.index] if at.index < len(entries) else 0
        if at.index > len(entries) or (size is not None and at.offset > size):
            raise ProtocolError("The receiver asked to resume at a position that does not exist.")
        self._check_stream_resume(at.index, at.offset)
        await self._send_sealed(KIND_RESUMED)
        events: list[Event] = [Accepted()] if self._resume_state == "offered" else []
        self._state = "sending"
        self._credit = at.credit
        self._index = at.index
        self._offset = self._start = at.offset
        self._framed = 0
        self._end_marked = False
        # A stream sends what it kept from `offset` on again (§7.2), and its hash goes on.
        self._hashed = at.offset if at.index < len(entries) and size is None else 0
        self._hash = self._new_hash(at.index, at.offset)
        self._encryptor = None
        self._padded = None
        self.bytes_done = self._position(at.index, at.offset)
        self.bytes_acknowledged = self.bytes_done  # the receiver holds everything before it
        await self._advance_files()
        return [*events, Resumed(self.bytes_done)]

    def _check_stream_resume(self, index: int, offset: int) -> None:
        """With a stream in the offer, the data stream can restart at (index, offset) only
        where the stream's bytes from there on were kept (§7.2): its input cannot be read
        again. Before the stream, all of it must have been kept."""
        stream = len(self._entries) - 1
        if not self.manifest.has_stream or index > stream:
            return
        kept_from = self._kept[0][0] if self._kept else self._stream_read
        position = offset if index == stream else 0
        if not kept_from <= position <= self._stream_read:
            raise StreamLostError()

    def _forget_verified(self, position: int) -> None:
        """The receiver verified the stream up to `position`: what is before it is not needed
        for a resume any more."""
        while self._kept and self._kept[0][0] + len(self._kept[0][1]) <= position:
            self._kept.pop(0)

    def _kept_piece(self, offset: int) -> memoryview:
        """Kept stream bytes from `offset` on, at most one read's worth."""
        for start, data in self._kept:
            if start <= offset < start + len(data):
                return memoryview(data)[offset - start :]
        raise ProtocolError("A stream position that was not kept was asked for.")

    def _position(self, index: int, offset: int) -> int:
        """File content bytes before byte `offset` of entry `index` (progress counts files:
        the text is not part of it)."""
        first = self.manifest.first_file
        before = self.manifest.files[: max(index - first, 0)]
        inside = offset if index >= first else 0
        return sum(self._stream_read if f.size is None else f.size for f in before) + inside

    def _file(self, index: int) -> FileEntry | None:
        """The file at entry `index`; None for the text."""
        first = self.manifest.first_file
        return None if index < first else self.manifest.files[index - first]

    def _forget_connection(self) -> None:
        complete = self._resume_state == "sending" and self._index >= len(self._entries)
        self._sent_everything = complete and not self._ready and self._fill == 1
        # Everything not yet sent goes: the receiver names the restart position on reconnect.
        self._ready = []
        self._frame = _new_frame()
        self._fill = 1
        self._sent = 0
        self._credit = 0
        self._switching = False

    @property
    def data_total(self) -> int | None:
        """Content bytes of the whole data stream, the text's included (§7); None while a
        stream's length is unknown. What a route decision weighs: a text moves like a file."""
        return (
            None if self.bytes_total is None else self.bytes_total + (self.manifest.text_size or 0)
        )

    @property
    def data_done(self) -> int:
        """Content bytes of the data stream read so far, the text's included; a held text
        counts as not yet read, as a held file is not read (it is encrypted from memory at
        once, but waits like one)."""
        if self._held or not self.manifest.has_text:
            return self.bytes_done
        text = self.manifest.text_size if self._index >= self.manifest.first_file else self._offset
        return self.bytes_done + text

    def data_to_send(self) -> list[bytes]:
        if self._state == "sending":
            self._emit_frames()  # DATA that waited while held goes as soon as it may
        return super().data_to_send()

    @property
    def can_switch(self) -> bool:
        """Whether `switch_direct()` may be called now: at any point while sending (what is in
        flight is sent again; a stream's from what was kept of it, §7.2)."""
        return self._state == "sending" and self._channel is not None

    async def switch_direct(self) -> None:
        """Move the transfer to a direct connection (PROTOCOL.md §8.4): tell the receiver on
        this one; then the driver treats this connection as lost and resumes on the new one.

        Allowed before the first DATA or later: the receiver names where the stream restarts,
        so whatever was still on its way through the relay is sent again on the new one."""
        if not self.can_switch:
            raise ProtocolError("Only a transfer that is sending can move to another connection.")
        await self._send_sealed(KIND_SWITCH)
        # DATA not yet sent is sent on the new connection (from the receiver's RESUME_AT);
        # none may follow SWITCH here, where the receiver no longer reads it.
        self._switching = True

    @property
    def sent_everything(self) -> bool:
        """The lost connection had carried every file's data; only COMPLETE was missing."""
        return self._sent_everything

    def hold(self, held: bool) -> None:
        """While held, no file data is read (`next_read()` says wait) and no DATA leaves (a
        text's, encrypted from memory, waits): the driver is waiting for a direct connection
        (PROTOCOL.md §8.4, §8.5), and data sent through the relay meanwhile would be sent
        again on it. Messages from the receiver are processed as usual. Released by
        `hold(False)`, also after the transfer moved and resumed on the direct connection; then
        `data_to_send()` has the DATA."""
        self._held = held

    def next_read(self) -> tuple[int, int, int] | None:
        """The next file range to read as (file index, offset, length), or None to wait."""
        if self._state != "sending" or self._ready or self._held:
            return None
        if self._index >= len(self._entries) or self._padded is not None:
            return None  # all read; what is left is padding (or nothing)
        if self._index < self.manifest.first_file:
            return None  # the text: encrypted from memory, not read
        file = self._index - self.manifest.first_file
        if self._hashed < self._offset:
            return file, self._hashed, min(READ_SIZE, self._offset - self._hashed)
        size = self._entries[self._index]
        if size is None:  # nothing to read while kept bytes are sent again
            if self._stream_ended or self._offset < self._stream_read:
                return None
            return file, self._offset, READ_SIZE
        return file, self._offset, min(READ_SIZE, size - self._offset)

    async def send_plaintext(self, data: bytes | bytearray | memoryview) -> None:
        """Encrypt the bytes `next_read()` asked for; queue whatever DATA the credit allows.

        `data` is not kept after this returns, so a driver may reuse its read buffer.
        """
        request = self.next_read()
        if request is None or self._encryptor is None:
            raise ProtocolError("File data was supplied when none was requested.")
        _, _, length = request
        if self._entries[self._index] is None:
            await self._stream_data(data, length)
            return
        if len(data) != length:
            raise HushdropError(f"{self._file(self._index).path} changed while it was being sent.")
        if self._hashed < self._offset:
            # Resumed inside this file: the receiver has these bytes; only the hash needs them.
            self._hash.update(data)
            self._hashed += length
            await self._advance_files()
            return
        if self._hash is None:  # sent whole from its first byte: no hash (§7.3)
            self._append(await self._encryptor.update(data))
        else:
            # WebCrypto encrypts off the main thread: hash while it does (pyca runs in turn).
            pending = self._encryptor.start_update(data)
            self._hash.update(data)
            self._append(await pending)
        self._offset += length
        self._hashed += length
        self.bytes_done += length
        await self._advance_files()

    async def _stream_data(self, data: bytes | bytearray | memoryview, length: int) -> None:
        """Up to `length` bytes of the stream as one segment; none: the stream ended."""
        if len(data) > length:
            raise ProtocolError("More stream data was supplied than requested.")
        if not data:
            self._stream_ended = True
            if self.bytes_total is None:
                self.bytes_total = self.manifest.known_size + self._stream_read
        else:
            kept = bytes(data)
            self._kept.append((self._stream_read, kept))
            self._stream_read += len(kept)
            self._stream_hash.update(kept)
            await self._segment(kept)
        await self._advance_files()

    async def _segment(self, data: bytes | memoryview) -> None:
        """Frame and encrypt stream bytes at the current position (read or kept)."""
        self._append(await self._encryptor.update(segment_header(len(data))))
        self._append(await self._encryptor.update(data))
        self._framed += SEGMENT_HEADER_SIZE + len(data)
        self._offset += len(data)
        self._hashed += len(data)
        self.bytes_done += len(data)

    async def input_idle(self) -> None:
        """The read `next_read()` asked for is waiting (PROTOCOL.md §7.2): send a stream's
        content read so far at once, completing its chunk with a flush record; with nothing
        to send, a KEEPALIVE, so that the relay does not close a quiet transfer as idle."""
        if self._state != "sending" or self._channel is None or self._switching:
            return
        if not await self._flush_stream():
            await self._send_sealed(KIND_KEEPALIVE)

    async def _flush_stream(self) -> bool:
        stream = self._index == len(self._entries) - 1 and self.manifest.has_stream
        if not stream or self._encryptor is None or self._ready or self._padded is not None:
            return False
        if self._framed % CHUNK_SIZE:  # content waits in a partial chunk: complete it
            record = flush_record(self._framed)
            self._append(await self._encryptor.update(record))
            self._framed += len(record)
        elif self._fill == 1 or not self._framed:
            return False  # nothing of the stream waits (a header alone can wait)
        if self._fill > 1:  # else the record filled the DATA message, already in `_ready`
            self._ready.append(self._frame[: self._fill])  # a short DATA message
            self._frame = _new_frame()
            self._fill = 1
        self._emit_frames()
        return True

    def _file_read(self) -> bool:
        """Whether all of the current entry's content is in the stream (a stream: its end)."""
        size = self._entries[self._index]
        if size is None:
            return self._stream_ended and self._offset == self._stream_read
        return self._hashed >= self._offset and self._offset >= size

    async def _encrypt_text(self) -> None:
        """The text entry, from memory: after a resume inside it, hash what the receiver
        already has and the rest for the trailer (§7.3); encrypt the rest. At most
        MAX_TEXT_BYTES, so at most a DATA message or two beyond the credit wait in `_ready`."""
        rest = self._text[self._offset :]
        if self._hash is not None:
            self._hash.update(self._text[self._hashed : self._offset])
            self._hash.update(rest)
        self._append(await self._encryptor.update(rest))
        self._offset = self._hashed = len(self._text)

    async def _advance_files(self) -> None:
        """Open the current entry's encryption, close finished ones, frame what is ready."""
        entries = self._entries
        while self._index < len(entries):
            if self._encryptor is None:
                self._encryptor = await ChunkEncryptor.create(
                    self._backend, self._data_key, file_context(self._index, self._start)
                )
                self._append(self._encryptor.header)
            if self._index < self.manifest.first_file and not self._file_read():
                await self._encrypt_text()
            if entries[self._index] is None:
                await self._send_kept()
            if not self._file_read():
                break
            if self._padded is None:
                if entries[self._index] is None:
                    self._append(await self._encryptor.update(end_record(self._stream_read)))
                    self._framed += STREAM_END_SIZE + FILE_DIGEST_SIZE
                    self._padding = stream_padding(self.manifest, self._framed)
                self._append(await self._encryptor.update(self._trailer()))
                # Only the last entry's plaintext ends with padding; the others count as padded.
                self._padded = 0 if self._index == len(entries) - 1 else self._padding
            if not await self._pad():
                break  # the rest of the padding when credit makes room for it
            self._append(await self._encryptor.finalize())
            self._padded = None
            self._encryptor = None
            if entries[self._index] is not None:
                self._offset = self._start = self._hashed = 0
                self._hash = self._new_hash(self._index + 1, 0)
            # else the stream, the last file, keeps its position and hash: if its final chunk
            # is lost, it resumes at its end (§7.2) and the trailer needs the hash (§7.3).
            self._index += 1
        self._emit_frames()

    async def _send_kept(self) -> None:
        """After a resume inside or before the stream: its kept bytes from the restart
        position, as credit makes room (as reads would be)."""
        while self._offset < self._stream_read:
            self._emit_frames()
            if self._ready:
                return  # the rest when CREDIT makes room
            await self._segment(self._kept_piece(self._offset)[:READ_SIZE])

    def _new_hash(self, index: int, start: int) -> hashlib._Hash | None:
        """A SHA-256 for entry `index` whose ciphertext starts at `start`, or None when its
        trailer will not need one (§7.3): a file of known size (or the text) sent from its
        first byte. A stream always has one: it may resume at its read position, where the
        trailer is the hash of everything read from it, and its input cannot be read again."""
        entries = self._entries
        if index < len(entries) and entries[index] is None:
            return self._stream_hash  # of every byte read from it, from the first
        if start > 0:
            return hashlib.sha256()
        return None

    def _trailer(self) -> bytes:
        """The 32 bytes after the current file's content (§7.3): the SHA-256 of the whole file
        when its ciphertext starts inside it, else zeros."""
        return self._hash.digest() if self._start > 0 else bytes(FILE_DIGEST_SIZE)

    async def _pad(self) -> bool:
        """Encrypt stream padding into DATA messages while credit would send them: the queue
        stays within the credit window, as file data does. True once all of it is in."""
        while self._padded < self._padding:
            queued = sum(len(frame) - 1 for frame in self._ready) + self._fill - 1
            if self._sent + queued >= self._credit:
                return False
            block = min(READ_SIZE, self._padding - self._padded)
            self._append(await self._encryptor.update(memoryview(_ZEROS)[:block]))
            self._padded += block
        return True

    def _append(self, data: bytes | bytearray | memoryview) -> None:
        """Copy stream bytes into DATA messages, starting a new one whenever one fills up."""
        view = memoryview(data)
        while view:
            size = min(len(self._frame) - self._fill, len(view))
            self._frame[self._fill : self._fill + size] = view[:size]
            self._fill += size
            view = view[size:]
            if self._fill == len(self._frame):
                self._ready.append(self._frame)
                self._frame = _new_frame()
                self._fill = 1

    def _emit_frames(self) -> None:
        """Queue every DATA message the credit allows; the last one may be short."""
        if self._held or self._switching:
            return
        while self._ready and self._sent + len(self._ready[0]) - 1 <= self._credit:
            frame = self._ready.pop(0)
            self._outgoing.append(frame)
            self._sent += len(frame) - 1
        complete = self._index >= len(self._entries)
        tail = self._fill - 1
        if complete and not self._ready and tail and self._sent + tail <= self._credit:
            self._outgoing.append(self._frame[: self._fill])
            self._sent += tail
            self._fill = 1
        ended = complete and not self._ready and self._fill == 1
        if ended and self.manifest.has_stream and not self._end_marked:
            self._outgoing.append(bytes([MSG_DATA]))  # where the stream's final chunk ends (§7.2)
            self._end_marked = True


def _new_frame() -> bytearray:
    frame = bytearray(1 + DATA_FRAME_SIZE)
    frame[0] = MSG_DATA
    return frame
