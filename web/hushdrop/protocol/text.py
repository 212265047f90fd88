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


# Zero-width joiners are part of emoji sequences (👨‍👩‍👧) and of words in many scripts
# (Persian, Indic): kept where they join two letters, marks or symbols, not both ASCII.
_JOINERS = {"\u200c", "\u200d"}
_JOINABLE = ("L", "M", "So", "Sk")
# Letters that show as nothing (Hangul fillers): as good as invisible spaces.
_BLANK_LETTERS = {"\u115f", "\u1160", "\u3164", "\uffa0"}


def visible_text(text: str) -> tuple[str, int]:
    """A whole text from the peer (PROTOCOL.md §6.1.1) for a page's text field, which shows
    characters as they are: every character that is invisible or changes how the text around
    it is ordered — controls, bidirectional overrides, embeddings and isolates (U+202A–U+202E,
    U+2066–U+2069), zero-width spaces, other format, separator, private-use and unassigned
    characters — is shown as ``⟨U+202E⟩`` instead, so it cannot disguise the text (§9 treats
    peer text on a terminal alike). Line breaks and tabs stay. Returns the text to show and how
    many characters were marked; the exact text is what a Copy should copy."""
    out: list[str] = []
    marked = 0
    for index, ch in enumerate(text):
        if ch in "\n\t\r ":
            out.append(ch)
            continue
        category = unicodedata.category(ch)
        if ch in _JOINERS and 0 < index < len(text) - 1:
            pair = text[index - 1] + text[index + 1]
            joinable = all(unicodedata.category(c).startswith(_JOINABLE) for c in pair)
            if joinable and not pair.isascii():  # Latin letters have no use for a joiner
                out.append(ch)
                continue
        if category in _UNSAFE_CATEGORIES or ch in _BLANK_LETTERS:
            out.append(f"\u27e8U+{ord(ch):04X}\u27e9")
            marked += 1
        else:
            out.append(ch)
    return "".join(out), marked


def peer_text(body: bytes) -> str:
    """A reason the peer sent (UTF-8), decoded leniently and made printable."""
    return printable(body.decode("utf-8", "replace").strip(), MAX_PEER_TEXT)
