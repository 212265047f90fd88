"""What the sender and receiver sessions share: the outgoing queue, failure, cancellation and
reconnecting (PROTOCOL.md §8)."""

from __future__ import annotations

from ..crypto.backend import CryptoBackend
from .constants import (
    ABORT_CANCELLED,
    ABORT_CONFIRMATION_FAILED,
    ABORT_FORM_REFUSED,
    ABORT_MALFORMED,
    ABORT_VERSION,
    FILE_CONTEXT_PREFIX,
    KIND_CANCEL,
    KIND_SIGNAL,
    MAX_SIGNAL_BYTES,
    MSG_RESUME,
    MSG_SEALED,
    MSG_SEALED_PART,
    SIDE_SENDER,
)
from .errors import (
    CodeFormError,
    HushdropError,
    PeerCancelledError,
    ProtocolError,
    TamperedError,
    VersionError,
    WrongCodeError,
)
from .events import DirectSignal, Event
from .framing import encode_abort, split_sealed
from .keys import SealedChannel, SessionKeys
from .padding import max_sealed_message
from .resume import ResumeHandshake, resume_id
from .text import peer_text


def file_context(index: int, offset: int = 0) -> bytes:
    """C2SP context for file `index` whose ciphertext starts at byte `offset` (PROTOCOL.md §7)."""
    return FILE_CONTEXT_PREFIX + index.to_bytes(8, "big") + offset.to_bytes(8, "big")


def abort_error(reason: int, side: int) -> HushdropError:
    """What an ABORT from the peer means to the user on `side`."""
    if reason == ABORT_CONFIRMATION_FAILED:
        return WrongCodeError(sender=side == SIDE_SENDER)
    if reason == ABORT_FORM_REFUSED:
        return WrongCodeError(
            "Someone tried the short code, but this transfer accepts only its link (the short "
            "code was not shown). The transfer is closed; start a new one."
        )
    if reason == ABORT_CANCELLED:
        return PeerCancelledError(f"The {_peer(side)} cancelled the transfer.")
    if reason == ABORT_MALFORMED:
        return ProtocolError("The other side received a malformed message and stopped.")
    return VersionError("The other side stopped: it needs a different Hushdrop version.")


def cancel_error(body: bytes, side: int) -> PeerCancelledError:
    """A CANCEL from the peer. Its reason is a sentence meant for this side's user ("The receiver
    could not save the files: the disk is full."), shown as it is once made printable."""
    reason = peer_text(body)
    return PeerCancelledError(reason or f"The {_peer(side)} cancelled the transfer.")


def _peer(side: int) -> str:
    return "receiver" if side == SIDE_SENDER else "sender"


class _Sealing:
    """A sealed message still being encrypted: it keeps its place in the outgoing queue.

    Its counter (nonce) was taken when sealing started; encryptions may finish out of order
    (WebCrypto runs them off the main thread, and a page seals signaling messages from a task
    of its own), but they must leave in counter order or the peer cannot open them.
    """

    __slots__ = ("message",)

    def __init__(self) -> None:
        self.message: bytes | None = None


class PeerSession:
    """Base of SenderSession and ReceiverSession.

    Reconnecting: when the connection closes, the driver calls `connection_lost()`; if it returns
    True the driver reconnects with `resume_id()` and, once paired, calls `resume()`. The
    subclasses say in which states that is possible and what the connection's first sealed
    message is.
    """

    side = 0
    resumable_states: frozenset[str] = frozenset()

    def __init__(self, backend: CryptoBackend) -> None:
        self._backend = backend
        self._outgoing: list[bytes | bytearray | _Sealing] = []
        self._parts: list[bytes] = []  # SEALED_PART pieces of the sealed message arriving
        self._parts_size = 0
        self._state = "new"
        self._keys: SessionKeys | None = None
        self._channel: SealedChannel | None = None
        self._resumed_data_key: bytes | None = None  # the data key of a resumed connection
        # The peer sealed a message with this session's keys: the key exchange completed on
        # both sides, so from now on the peer ends the session with a sealed CANCEL, never with
        # an (unauthenticated) ABORT, which only a forger would still send.
        self._peer_proven = False
        self._resume: ResumeHandshake | None = None
        self._resume_state: str | None = None  # the state to return to once resumed

    @property
    def sas(self) -> str | None:
        """The verification code, once keys are confirmed."""
        return self._keys.sas if self._keys else None

    @property
    def direct_key(self) -> bytes:
        """The key that authenticates direct TCP connections (§8.5); empty without keys or in
        a session restored from a resume record that does not keep it."""
        return self._keys.direct if self._keys else b""

    @property
    def state(self) -> str:
        return self._state

    @property
    def finished(self) -> bool:
        return self._state == "done"

    async def input_idle(self) -> None:
        """The file read the session asked for has been waiting (a quiet stream, §7.2); the
        sender acts on it, other sessions have nothing to do."""

    @property
    def can_switch(self) -> bool:
        """Whether this side may move the transfer to a direct connection now (the sender's)."""
        return False

    @property
    def reconnecting(self) -> bool:
        return self._state in ("reconnecting", "resume-hello", "resume-wait")

    async def resume_id(self) -> str:
        """The relay's resume slot of this session (PROTOCOL.md §8.1)."""
        if self._keys is None:
            raise ProtocolError("A session without keys cannot resume.")
        return await resume_id(self._backend, self._keys.resume)

    def ended_by(self, error: HushdropError) -> HushdropError:
        """What `error`, which ends this session, means to the user (the driver raises the
        result). Only the sender changes it: see `SenderSession.ended_by`."""
        return error

    def connection_lost(self) -> bool:
        """The connection closed. True when the session can resume on a new one (§8.1).

        Whatever was queued for the old connection is dropped; the resume handshake restarts
        the data stream from what the receiver verified.
        """
        if self.reconnecting:
            self._state = "reconnecting"
        elif self._keys is not None and self._state in self.resumable_states:
            self._resume_state = self._state
            self._state = "reconnecting"
            self._forget_connection()
        else:
            return False
        self._outgoing.clear()
        self._parts.clear()
        self._parts_size = 0
        self._channel = None  # until the new connection's keys exist, failures send ABORT
        return True

    def resume(self) -> None:
        """The relay paired this session again: start the resume handshake (§8.2)."""
        if self._state != "reconnecting" or self._keys is None:
            raise ProtocolError("The session is not waiting to resume.")
        self._resume = ResumeHandshake(self._backend, self.side, self._keys.resume)
        self._outgoing.append(self._resume.message())
        self._state = "resume-hello"

    async def _on_resume(self, message: bytes) -> None:
        """The peer's RESUME: derive the new connection's channel, then say what comes first."""
        self._channel, self._resumed_data_key = await self._resume.on_resume(message)
        self._resume = None
        self._state = "resume-wait"
        await self._resume_started()

    @property
    def _data_key(self) -> bytes:
        """The key of this connection's file data (§7): the key schedule's on the first
        connection, the resume handshake's on each later one (§8.2)."""
        return self._resumed_data_key or self._keys.data

    async def _open_sealed(self, message: bytes) -> tuple[int, bytes]:
        try:
            opened = await self._channel.open(message)
            self._peer_proven = True
            return opened
        except TamperedError as exc:
            if self._state != "resume-wait":
                raise
            raise TamperedError(
                "Someone other than the other side tried to resume this transfer: its first "
                "message did not authenticate. The transfer was stopped."
            ) from exc

    async def send_signal(self, payload: bytes) -> None:
        """Queue a WebRTC signaling message for the peer, sealed like any control message so
        the relay learns no address, candidate or fingerprint (PROTOCOL.md §8.4)."""
        if self._channel is None or self.reconnecting or self._state in ("failed", "done"):
            return  # nobody to tell right now; the direct attempt simply times out
        if len(payload) > MAX_SIGNAL_BYTES:
            raise ProtocolError("A signaling message is too large.")
        await self._send_sealed(KIND_SIGNAL, payload)

    def _signal(self, body: bytes) -> list[Event]:
        if len(body) > MAX_SIGNAL_BYTES:
            raise ProtocolError("The other side sent a signaling message that is too large.")
        return [DirectSignal(bytes(body))]

    def _is_resume(self, kind: int) -> bool:
        return kind == MSG_RESUME and self._state == "resume-hello"

    def _forget_connection(self) -> None:
        """Subclasses drop per-connection state (flow control, partial ciphertext)."""

    async def _resume_started(self) -> None:
        """Subclasses queue their first sealed message on a resumed connection."""

    def data_to_send(self) -> list[bytes]:
        """Messages to send to the peer, in order: the queue up to a message still sealing."""
        out = []
        for item in self._outgoing:
            if isinstance(item, _Sealing):
                if item.message is None:
                    break
                item = item.message
            out.append(item)
        del self._outgoing[: len(out)]
        return [piece for item in out for piece in self._pieces(item)]

    @staticmethod
    def _pieces(message: bytes | bytearray) -> list[bytes | bytearray]:
        if message[0] == MSG_SEALED:
            return split_sealed(message)  # a large manifest travels in several frames (§6.2)
        return [message]

    def _assemble(self, message: bytes) -> bytes | None:
        """A SEALED message whole again from its pieces (§6.2); None while pieces arrive."""
        kind = message[0]
        if kind == MSG_SEALED_PART:
            if self._channel is None:
                raise ProtocolError("Received part of an encrypted message before the keys.")
            self._parts_size += len(message) - 1
            if 1 + self._parts_size > max_sealed_message():
                raise ProtocolError(
                    "The other side sent a control message larger than the protocol allows "
                    "(a file list over 16 MiB)."
                )
            self._parts.append(message[1:])
            return None
        if kind == MSG_SEALED and self._parts:
            whole = b"".join([message[:1], *self._parts, message[1:]])
            self._parts.clear()
            self._parts_size = 0
            return whole
        return message

    async def _send_sealed(self, kind: int, body: bytes = b"") -> None:
        """Queue a SEALED message in the place it was asked for (see `_Sealing`)."""
        slot = _Sealing()
        self._outgoing.append(slot)
        slot.message = await self._channel.seal(kind, body)

    async def cancel(self, reason: str) -> None:
        """End the transfer from this side, telling the peer why (user cancel, disk full, …)."""
        await self._fail(reason, ABORT_CANCELLED)

    async def _guard(self, error: HushdropError) -> None:
        """Tell the peer why this side is stopping, then let the caller re-raise."""
        if isinstance(error, WrongCodeError):
            if self._state not in ("failed", "done"):
                reason = (
                    ABORT_FORM_REFUSED
                    if isinstance(error, CodeFormError)
                    else ABORT_CONFIRMATION_FAILED
                )
                self._outgoing.append(encode_abort(reason))
            self._state = "failed"
        elif isinstance(error, PeerCancelledError) or self._state == "failed":
            self._state = "failed"
        else:
            # Another version is not a malformed message: the peer is told which it is (§4).
            abort = ABORT_VERSION if isinstance(error, VersionError) else ABORT_MALFORMED
            await self._fail(str(error), abort)

    async def _fail(self, reason: str, abort_code: int) -> None:
        if self._state in ("failed", "done"):
            return
        self._state = "failed"
        if self._channel is not None:
            await self._send_sealed(KIND_CANCEL, reason.encode("utf-8"))
        else:
            self._outgoing.append(encode_abort(abort_code))
