"""Transfer codes: the typed form `<room>-<w1>-<w2>-<w3>` and the link `<site>/#<room>-<secret>`.

A sender creates a `SenderSecrets` (both forms); a receiver parses whatever the user pasted into a
`Code` (one form). `pake_secret` turns either into the CPace password input (PRS, PROTOCOL.md §5.1).
"""

from __future__ import annotations

import base64
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..crypto.cpace import lv_cat
from .constants import (
    CODE_WORDS,
    FORM_LABELS,
    FORM_LINK,
    FORM_WORDS,
    LINK_PASSWORD_SUFFIX,
    LINK_SECRET_SIZE,
    ROOM_DIGITS,
)
from .errors import CodeFormatError
from .wordlist import WORDS

_BY_PREFIX = {word[:4]: word for word in WORDS}
_ROOM_RE = re.compile(rf"[0-9]{{{ROOM_DIGITS}}}\Z")
_B64URL_RE = re.compile(r"[A-Za-z0-9_-]+\Z")


@dataclass(frozen=True)
class Code:
    """What a receiver holds: the room and one form of the secret."""

    room: str
    form: int
    secret: bytes
    password_required: bool = False
    site: str | None = None

    @property
    def typed(self) -> str:
        if self.form != FORM_WORDS:
            raise ValueError("a link code has no typed form")
        return f"{self.room}-{self.secret.decode('ascii')}"


@dataclass(frozen=True)
class SenderSecrets:
    """Both forms of a transfer's secret, created by the sender once the relay gave it a room."""

    room: str
    words: tuple[str, ...]
    link_secret: bytes
    password_required: bool

    @property
    def typed(self) -> str:
        return f"{self.room}-" + "-".join(self.words)

    def link(self, site: str) -> str:
        secret = base64.urlsafe_b64encode(self.link_secret).rstrip(b"=").decode("ascii")
        suffix = LINK_PASSWORD_SUFFIX if self.password_required else ""
        return f"{site.rstrip('/')}/#{self.room}-{secret}{suffix}"

    def secret_for(self, form: int) -> bytes:
        if form == FORM_WORDS:
            return "-".join(self.words).encode("ascii")
        if form == FORM_LINK:
            return self.link_secret
        raise ValueError(f"unknown code form {form}")


def new_sender_secrets(room: str, random_bytes, password_required: bool) -> SenderSecrets:
    """Draw three words (33 bits) and a 128-bit link secret from `random_bytes(n)`."""
    if not _ROOM_RE.match(room):
        raise CodeFormatError(f"The relay returned an invalid room number {room!r}.")
    raw = random_bytes(2 * CODE_WORDS)
    words = tuple(
        WORDS[int.from_bytes(raw[2 * i : 2 * i + 2], "big") % len(WORDS)] for i in range(CODE_WORDS)
    )
    return SenderSecrets(room, words, random_bytes(LINK_SECRET_SIZE), password_required)


def pake_secret(form: int, secret: bytes, password: str) -> bytes:
    """The CPace PRS: lv_cat(form label, secret, NFC UTF-8 password)."""
    normalized = unicodedata.normalize("NFC", password).encode("utf-8")
    return lv_cat(FORM_LABELS[form], secret, normalized)


def parse_code(text: str) -> Code:
    """Parse a typed code, a link, or a bare link fragment. Raises CodeFormatError."""
    text = text.strip()
    if not text:
        raise CodeFormatError("The code is empty.", "empty")
    site = None
    if "#" in text:
        before, _, text = text.partition("#")
        if before:
            try:
                parts = urlsplit(before)
            except ValueError as exc:
                raise CodeFormatError(
                    "The link's address is malformed; copy it again.", "link-address"
                ) from exc
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise CodeFormatError(
                    "The link must start with http:// or https://.", "link-scheme"
                )
            site = f"{parts.scheme}://{parts.netloc}"
    return _parse_fragment(text, site)


def _parse_fragment(text: str, site: str | None) -> Code:
    password_required = text.endswith(LINK_PASSWORD_SUFFIX)
    body = text[: -len(LINK_PASSWORD_SUFFIX)] if password_required else text
    room, sep, secret_text = body.partition("-")
    if _looks_typed(text) or not (sep and _ROOM_RE.match(room)):
        if site is not None and not _looks_typed(text):
            raise CodeFormatError(
                "The link is incomplete: it should end in #<6 digits>-<secret>.", "link-incomplete"
            )
        return _parse_typed(text)
    if len(secret_text) != 22 or _B64URL_RE.match(secret_text) is None:
        if site is None and re.fullmatch(r"[A-Za-z]+([-_\s]+[A-Za-z]+)*", secret_text):
            return _parse_typed(text)  # a typed code with the wrong number of words
        raise CodeFormatError(
            "The link's secret is damaged; copy the whole link again.", "link-secret"
        )
    secret = base64.urlsafe_b64decode(secret_text + "==")
    return Code(room, FORM_LINK, secret, password_required, site)


def _looks_typed(text: str) -> bool:
    """Room plus exactly three list words: a 22-character link secret can look like words."""
    parts = [p for p in re.split(r"[-_\s]+", text.lower()) if p]
    return (
        len(parts) == 1 + CODE_WORDS
        and _ROOM_RE.match(parts[0]) is not None
        and all(p[:4] in _BY_PREFIX for p in parts[1:])
    )


def _parse_typed(text: str) -> Code:
    parts = [p for p in re.split(r"[-_\s]+", text.lower()) if p]
    if not parts or not _ROOM_RE.match(parts[0]):
        raise CodeFormatError(
            "A code starts with the 6-digit number the sender was shown, "
            "like 123456-word-word-word.",
            "room",
        )
    words = parts[1:]
    if len(words) != CODE_WORDS:
        raise CodeFormatError(
            f"A code has {CODE_WORDS} words after the number; this one has {len(words)}.",
            "word-count",
            expected=CODE_WORDS,
            given=len(words),
        )
    canonical = [_canonical_word(w) for w in words]
    return Code(parts[0], FORM_WORDS, "-".join(canonical).encode("ascii"))


def _canonical_word(word: str) -> str:
    # BIP-39 words are unique in their first four letters, so those decide; the rest may be
    # abbreviated or mistyped.
    if word[:4] in _BY_PREFIX:
        return _BY_PREFIX[word[:4]]
    raise CodeFormatError(
        f"'{word}' is not one of the code words; check the spelling.", "word", word=word
    )
