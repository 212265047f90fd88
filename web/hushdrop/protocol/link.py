"""A link for several receivers (PROTOCOL.md §3.1): one row per receiver, and the rule that a
failed key exchange with any of them ends the link for all.

The sender runs one `SenderSession` per receiver, each with its own keys and verification code;
this object follows them as the relay announces receivers, so that the CLI and the page show
the same rows and stop the others for the same reasons. No I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .errors import HushdropError, ProtocolError, WrongCodeError
from .events import Accepted, Completed, Progress, Resumed, Verified

# Sent to the other receivers when one receiver's key exchange failed (PROTOCOL.md §3.1).
LINK_ENDED_REASON = (
    "Someone used a wrong code or password on this link, so the sender closed it for every "
    "receiver. Ask the sender for a new link."
)


class ReceiverState(enum.Enum):
    CHECKING = "checking the code"
    VERIFIED = "waiting for the receiver to accept"
    SENDING = "sending"
    DONE = "done"
    FAILED = "failed"


@dataclass
class ReceiverRow:
    """What the sender knows of one receiver: its state, progress and verification code."""

    number: int
    state: ReceiverState = ReceiverState.CHECKING
    sas: str = ""
    done: int = 0
    total: int = 0
    error: str = ""

    @property
    def over(self) -> bool:
        return self.state in (ReceiverState.DONE, ReceiverState.FAILED)


class Link:
    """The receivers of one link, in the order they joined (numbered from 1)."""

    def __init__(self, receivers: int) -> None:
        self.receivers = receivers
        self.rows: list[ReceiverRow] = []
        # The receiver whose failed key exchange ended the link, if one did.
        self.ended_by: int | None = None

    def joined(self, number: int) -> ReceiverRow:
        """The relay announced receiver ``number``; it must be the next one the link admits."""
        if number != len(self.rows) + 1 or number > self.receivers:
            raise ProtocolError("The relay announced a receiver this link does not have.")
        row = ReceiverRow(number)
        self.rows.append(row)
        return row

    def row(self, number: int) -> ReceiverRow:
        return self.rows[number - 1]

    def event(self, number: int, event: object) -> ReceiverRow:
        """Update receiver ``number``'s row from an event of its session."""
        row = self.row(number)
        if isinstance(event, Verified):
            row.sas, row.state = event.sas, ReceiverState.VERIFIED
        elif isinstance(event, Accepted):
            row.state = ReceiverState.SENDING
        elif isinstance(event, Progress | Resumed):
            row.done = event.done
            if isinstance(event, Progress):
                row.total = event.total
        elif isinstance(event, Completed):
            row.state, row.done = ReceiverState.DONE, row.total
        return row

    def failed(self, number: int, error: HushdropError) -> bool:
        """Receiver ``number``'s transfer failed; True when that ends the link for all.

        A failed key exchange (a wrong code or password, or an attacker's guess) does: the typed
        code must give one online guess per link, not one per receiver (PROTOCOL.md §3.1).
        """
        row = self.row(number)
        if row.over:
            return False
        row.state, row.error = ReceiverState.FAILED, str(error)
        if isinstance(error, WrongCodeError) and self.ended_by is None:
            self.ended_by = number
            return True
        return False

    def cancel_reason(self, default: str) -> str:
        """What a receiver's transfer that the sender stops is told: why the link ended."""
        return LINK_ENDED_REASON if self.ended else default

    @property
    def ended(self) -> bool:
        return self.ended_by is not None

    @property
    def all_joined(self) -> bool:
        return len(self.rows) >= self.receivers

    @property
    def running(self) -> list[ReceiverRow]:
        return [row for row in self.rows if not row.over]

    @property
    def delivered(self) -> int:
        return sum(1 for row in self.rows if row.state is ReceiverState.DONE)
