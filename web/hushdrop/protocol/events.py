"""Events the sessions report to their driver. Drivers show them; they never decide protocol."""

from __future__ import annotations

from dataclasses import dataclass

from .manifest import Manifest


@dataclass(frozen=True)
class PasswordRequired:
    """The sender set a password and the receiver has none yet: ask, then `provide_password`."""


@dataclass(frozen=True)
class Verified:
    """Keys confirmed. `sas` is the verification code both sides show."""

    sas: str


@dataclass(frozen=True)
class Offered:
    """The receiver learned what is coming: decide, then `accept()` or `decline()`."""

    manifest: Manifest


@dataclass(frozen=True)
class Accepted:
    """The receiver accepted; the sender may start reading files (`next_read`)."""


@dataclass(frozen=True)
class TextReceived:
    """The offer's text (PROTOCOL.md §6.1.1) arrived whole, as the data stream's first entry,
    and its SHA-256 matched: show it now. Held in memory only; nothing is written anywhere."""

    text: str


@dataclass(frozen=True)
class FileStarted:
    index: int


@dataclass(frozen=True)
class FileData:
    """Verified plaintext of file `index`, to be appended to its partial file."""

    index: int
    data: bytes


@dataclass(frozen=True)
class FileCompleted:
    """File `index` is whole and its SHA-256 matched: give it its final name now."""

    index: int
    sha256: str


@dataclass(frozen=True)
class Progress:
    """The sender's view of the transfer: `done` content bytes the receiver says it verified and
    stored (its CREDIT, §7), so both sides show the same number, speed and time left. `total`
    is None while a stream's length is unknown (§7.2)."""

    done: int
    total: int | None


@dataclass(frozen=True)
class DirectSignal:
    """A WebRTC signaling message from the peer (PROTOCOL.md §8.4), for the driver's
    RTCPeerConnection; a driver without WebRTC answers `{"type": "unsupported"}`."""

    payload: bytes


@dataclass(frozen=True)
class SwitchDirect:
    """The sender moved the transfer to the direct connection: resume on it now."""


@dataclass(frozen=True)
class Reconnecting:
    """The connection was lost and the driver is reconnecting; `Resumed` follows if it works."""


@dataclass(frozen=True)
class Resumed:
    """A lost connection was replaced and the transfer continues; `done` bytes need no resend."""

    done: int


@dataclass(frozen=True)
class Completed:
    """Every file arrived and verified (receiver: after COMPLETE is queued; sender: on COMPLETE)."""


Event = (
    PasswordRequired
    | Verified
    | Offered
    | Accepted
    | TextReceived
    | FileStarted
    | FileData
    | FileCompleted
    | Progress
    | DirectSignal
    | SwitchDirect
    | Reconnecting
    | Resumed
    | Completed
)
