"""Errors a transfer can end with, each with a message a user can act on."""

from __future__ import annotations


class HushdropError(Exception):
    """Base class: `str(error)` is the message shown to the user."""

    kind = "error"


class CodeFormatError(HushdropError):
    """The code or link the user typed cannot be parsed.

    `problem` names what is wrong ("room", "word", …) and `details` its particulars, so that a
    user interface can say it in its own language (the page's `error.code.<problem>`)."""

    kind = "bad-code"

    def __init__(self, message: str, problem: str = "", **details: str | int) -> None:
        super().__init__(message)
        self.problem = problem
        self.details = details


class WrongCodeError(HushdropError):
    """Key confirmation failed: wrong code or password, or an active attacker."""

    kind = "wrong-code"

    def __init__(self, message: str | None = None, *, sender: bool = False) -> None:
        if message is None and sender:
            message = (
                "The receiver's code or password is wrong, or someone tried to intercept the "
                "transfer. The transfer is closed; start a new one to get a new code."
            )
        super().__init__(
            message
            or "The code or password is wrong, or someone tried to intercept the transfer. "
            "The transfer is closed; ask the sender for a new code."
        )


class GuessLeftError(WrongCodeError):
    """The receiver got the sender's key-exchange answer, which checks one guess of the code,
    and then went away (or stopped) without confirming: an attacker's guess as far as the
    sender can tell (PROTOCOL.md §3.1)."""

    def __init__(self) -> None:
        super().__init__(
            "Someone connected with a code and left during the key exchange, after it could "
            "check its guess. The transfer is closed; start a new one to get a new code."
        )


class CodeFormError(WrongCodeError):
    """The receiver has the typed code, but the sender accepts only the link."""

    kind = "wrong-code"


class ProtocolError(HushdropError):
    """The peer (or something between us) sent a message that breaks the protocol."""

    kind = "protocol"


class TamperedError(ProtocolError):
    """Encrypted data failed authentication: it was altered, truncated, replayed or reordered."""

    kind = "tampered"


class VersionError(ProtocolError):
    """The peer speaks another protocol version."""

    kind = "version"


class StreamLostError(HushdropError):
    """The connection broke while a stream (standard input) was being sent, and the receiver
    lacks bytes the sender no longer kept: they cannot be read again (PROTOCOL.md §7.2)."""

    kind = "stream-lost"

    def __init__(self) -> None:
        super().__init__(
            "The connection broke while a stream (standard input) was being sent, and the "
            "receiver lacks bytes the sender no longer kept; a stream cannot be read again, "
            "so the transfer stopped. Start it again."
        )


class PeerCancelledError(HushdropError):
    """The peer ended the transfer and said why."""

    kind = "cancelled"


class DeclinedError(HushdropError):
    """The receiver declined the offer; `reason`: its own words, if it gave any."""

    kind = "declined"

    def __init__(self, reason: str = "") -> None:
        super().__init__(
            f"The receiver declined the files: {reason}"
            if reason
            else "The receiver declined the files."
        )
        self.reason = reason


class PeerGoneError(HushdropError):
    """The other side disconnected before the transfer finished.

    `left` when it closed its connection itself; otherwise its connection was lost and it may
    come back to resume (PROTOCOL.md §8).
    """

    kind = "peer-gone"

    def __init__(self, message: str, *, left: bool = False) -> None:
        super().__init__(message)
        self.left = left


class RelayError(HushdropError):
    """The relay refused a request or went away."""

    kind = "relay"

    def __init__(self, message: str, code: str = "relay") -> None:
        super().__init__(message)
        self.code = code


class UnsafePathError(HushdropError):
    """The manifest names paths that cannot be written safely."""

    kind = "unsafe-path"
