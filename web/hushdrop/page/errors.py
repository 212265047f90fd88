"""What the page says when a transfer ends in an error: a catalog message for each error with a
stable kind, the core's own (English) sentence for the rest. Pure Python (no `js`).

The core (hushdrop.protocol, hushdrop.transport) raises errors whose `str()` is an English
sentence, shared with the CLI. Errors the page can name — by their type and `kind`, or a relay
error's `code` — are shown from the page's catalogs, in the person's language. Any other error
(a malformed code, a protocol violation with its details, a relay's own refusal text) is shown
through `error.detail`, whose text around the core's sentence is translated while the sentence
itself stays English: it names details (limits, fields) the catalogs cannot know.
"""

from __future__ import annotations

from ..protocol.constants import MAX_TEXT_BYTES
from ..protocol.errors import (
    CodeFormatError,
    DeclinedError,
    GuessLeftError,
    HushdropError,
    PeerCancelledError,
    TamperedError,
    VersionError,
    WrongCodeError,
)
from ..protocol.link import LINK_ENDED_REASON
from ..protocol.manifest import TextError
from .messages import Message, t

# What a malformed code or link is told, by `CodeFormatError.problem` (and its details).
CODE_PROBLEMS = {
    "empty": "error.code.empty",
    "link-address": "error.code.link-address",
    "link-scheme": "error.code.link-scheme",
    "link-incomplete": "error.code.link-incomplete",
    "link-secret": "error.code.link-secret",
    "room": "error.code.room",
    "word-count": "error.code.word-count",
    "word": "error.code.word",
}

# A plain "no" from the receiver: the words the CLI and the page send with their DECLINE say
# nothing the page's own message does not.
PLAIN_DECLINES = frozenset(
    ("they said no.", "they chose not to download them.", "they chose not to see it.")
)  # i18n: wire

# Relay errors by their code (PROTOCOL.md §3): what the relay refused, in the page's words; the
# first ones say it all, the others are followed by the relay's own (English) details.
RELAY_CODES = {
    "no-such-room": "error.relay.no-such-room",
    "expired": "error.relay.expired",
    "idle": "error.relay.idle",
    "byte-limit": "error.relay.byte-limit",
    "stall": "error.relay.stall",
    "replaced": "error.relay.replaced",
}
RELAY_CODES_WITH_DETAILS = {
    "unreachable": "error.relay.unreachable",
    "connection-lost": "error.relay.connection-lost",
    "room-full": "error.relay.room-full",
    "limit": "error.relay.limit",
}


class PageError(HushdropError):
    """An error the page itself describes with a catalog message."""

    def __init__(self, message: Message) -> None:
        super().__init__(message.key)
        self.message = message


def error_message(exc: BaseException, *, sender: bool) -> Message:
    """The message for a transfer's error, on the sender's or the receiver's page."""
    message = getattr(exc, "message", None)
    if isinstance(message, Message):
        return message
    text = str(exc)
    if isinstance(exc, GuessLeftError):
        return t("error.guess-left")
    if type(exc) is WrongCodeError and text == str(WrongCodeError(sender=sender)):
        return t("error.wrong-code.sender" if sender else "error.wrong-code.receiver")
    if isinstance(exc, TamperedError):
        return t("error.tampered", detail=text)
    if isinstance(exc, VersionError):
        return t("error.version", detail=text)
    if isinstance(exc, CodeFormatError) and exc.problem in CODE_PROBLEMS:
        return t(CODE_PROBLEMS[exc.problem], **exc.details)
    if isinstance(exc, TextError) and exc.problem == "too-large":
        return t("error.text.too-large", size=exc.size, limit=MAX_TEXT_BYTES)
    if isinstance(exc, TextError) and exc.problem == "not-unicode":
        return t("error.text.not-unicode")
    if isinstance(exc, DeclinedError):
        if not exc.reason or exc.reason in PLAIN_DECLINES:
            return t("error.declined")
        return t("error.declined.reason", reason=exc.reason)  # the receiver's own words
    if isinstance(exc, PeerCancelledError) and text == LINK_ENDED_REASON:
        return t("error.link-ended")
    if isinstance(exc, PeerCancelledError):
        # The session's words when the peer gave no reason of its own (protocol/session.py).
        default = f"The {'receiver' if sender else 'sender'} cancelled the transfer."  # i18n: core
        if text == default:
            return t("error.receiver-cancelled" if sender else "error.sender-cancelled")
        # The peer's own words (its page's language, or the CLI's English), as it sent them.
        return t("error.peer-cancelled", reason=text)
    code = getattr(exc, "code", None)
    if isinstance(code, str) and code in RELAY_CODES:
        return t(RELAY_CODES[code])
    if isinstance(code, str) and code in RELAY_CODES_WITH_DETAILS:
        return t(RELAY_CODES_WITH_DETAILS[code], detail=text)
    return t("error.detail", detail=text)
