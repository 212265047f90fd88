"""Text from the peer, made safe to show: it never reaches a terminal or a page as control codes.

A peer's cancel or decline reason is authenticated (it came through the sealed channel) but not
trusted: a hostile sender could otherwise clear the receiver's screen, recolour it, set its
window title or hide text behind bidirectional overrides (ECMA-48 escape and control sequences,
Unicode Cc/Cf).
"""

from __future__ import annotations

import unicodedata

REPLACEMENT = "\ufffd"
MAX_PEER_TEXT = 300
_UNSAFE_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}


def printable(text: str, limit: int | None = None) -> str:
    """`text` with every control, format and unassigned character replaced by U+FFFD (runs of
    them by one), cut to `limit` characters with an ellipsis."""
    out: list[str] = []
    for ch in text:
        if ch == " " or unicodedata.category(ch) not in _UNSAFE_CATEGORIES:
            out.append(ch)
        elif not out or out[-1] != REPLACEMENT:
            out.append(REPLACEMENT)
    cleaned = "".join(out)
    if limit is not None and len(cleaned) > limit:
        cleaned = cleaned[: limit - 1] + "…"
    return cleaned


def printable_text(text: str) -> str:
    """A whole text from the peer (PROTOCOL.md §6.1) made safe for a terminal: like
    `printable`, but its line breaks and tabs stay (CR LF and lone CR become LF) and it is not
    cut."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join("\t".join(printable(part) for part in line.split("\t")) for line in lines)


def peer_text(body: bytes) -> str:
    """A reason the peer sent (UTF-8), decoded leniently and made printable."""
    return printable(body.decode("utf-8", "replace").strip(), MAX_PEER_TEXT)
