"""What the sender and receiver sessions share: the outgoing queue, failure and cancellation."""

from __future__ import annotations

from ..crypto.backend import CryptoBackend
from .constants import (
    ABORT_CANCELLED,
    ABORT_CONFIRMATION_FAILED,
    ABORT_MALFORMED,
    FILE_CONTEXT_PREFIX,
    KIND_CANCEL,
)
from .errors import HushdropError, PeerCancelledError, ProtocolError, WrongCodeError
from .framing import encode_abort
from .keys import SealedChannel, SessionKeys


def file_context(index: int) -> bytes:
    """C2SP context for file `index` (PROTOCOL.md §7)."""
    return FILE_CONTEXT_PREFIX + index.to_bytes(8, "big")


def abort_error(reason: int) -> HushdropError:
    """What an ABORT from the peer means to the user."""
    if reason == ABORT_CONFIRMATION_FAILED:
        return WrongCodeError()
    if reason == ABORT_CANCELLED:
        return PeerCancelledError("The other side cancelled the transfer.")
    if reason == ABORT_MALFORMED:
        return ProtocolError("The other side received a malformed message and stopped.")
    return ProtocolError("The other side stopped: it needs a different Hushdrop version.")


def cancel_error(body: bytes) -> PeerCancelledError:
    reason = body.decode("utf-8", "replace")[:500]
    return PeerCancelledError(f"The other side cancelled the transfer: {reason}")


class PeerSession:
    """Base of SenderSession and ReceiverSession."""

    def __init__(self, backend: CryptoBackend) -> None:
        self._backend = backend
        self._outgoing: list[bytes] = []
        self._state = "new"
        self._keys: SessionKeys | None = None
        self._channel: SealedChannel | None = None

    @property
    def sas(self) -> str | None:
        """The verification code, once keys are confirmed."""
        return self._keys.sas if self._keys else None

    @property
    def state(self) -> str:
        return self._state

    @property
    def finished(self) -> bool:
        return self._state == "done"

    def data_to_send(self) -> list[bytes]:
        """Messages to send to the peer, in order; the queue is emptied."""
        out, self._outgoing = self._outgoing, []
        return out

    async def cancel(self, reason: str) -> None:
        """End the transfer from this side, telling the peer why (user cancel, disk full, …)."""
        await self._fail(reason, ABORT_CANCELLED)

    async def _guard(self, error: HushdropError) -> None:
        """Tell the peer why this side is stopping, then let the caller re-raise."""
        if isinstance(error, WrongCodeError):
            if self._state not in ("failed", "done"):
                self._outgoing.append(encode_abort(ABORT_CONFIRMATION_FAILED))
            self._state = "failed"
        elif isinstance(error, PeerCancelledError) or self._state == "failed":
            self._state = "failed"
        else:
            await self._fail(str(error), ABORT_MALFORMED)

    async def _fail(self, reason: str, abort_code: int) -> None:
        if self._state in ("failed", "done"):
            return
        self._state = "failed"
        if self._channel is not None:
            self._outgoing.append(await self._channel.seal(KIND_CANCEL, reason.encode("utf-8")))
        else:
            self._outgoing.append(encode_abort(abort_code))
