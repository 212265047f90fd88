"""Turning hostile manifest paths into safe relative paths (PROTOCOL.md §8).

The result of `sanitize_path` is a tuple of components that, joined under any output directory,
stays inside it on POSIX and Windows alike.
"""

from __future__ import annotations

import re
import unicodedata

from .errors import UnsafePathError

_UNSAFE_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}
_RESERVED_CHARS = set('<>:"|?*')
# Windows opens a device instead of a file for these names, with any extension, and ignores
# spaces before the extension ("con .txt") and trailing dots and spaces.
_DEVICE_RE = re.compile(
    r"^(con|prn|aux|nul|conin\$|conout\$|clock\$|com[0-9¹²³]|lpt[0-9¹²³]) *(\..*)?$",
    re.IGNORECASE,
)
MAX_COMPONENT_BYTES = 255
# Names a receiver keeps for itself: the CLI's temporary files and resume records (§9, §8.3). A
# sender must not be able to plant one, e.g. a resume record naming files outside the folder.
RESERVED_PREFIX = ".hushdrop-"


def fold(component: str) -> str:
    """The key two names collide on: Unicode canonical caseless matching (Unicode §3.13,
    NFD(casefold(NFD(x)))), so "é" and "e\u0301", "A" and "a" are one name, as they are on
    macOS and Windows file systems."""
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", component).casefold())


def _clean_component(component: str) -> str:
    cleaned = "".join(
        "_" if ch in _RESERVED_CHARS or unicodedata.category(ch) in _UNSAFE_CATEGORIES else ch
        for ch in component
    )
    if _DEVICE_RE.match(cleaned.rstrip(". ")):
        cleaned = "_" + cleaned
    encoded = cleaned.encode("utf-8")
    if len(encoded) > MAX_COMPONENT_BYTES:
        cleaned = encoded[:MAX_COMPONENT_BYTES].decode("utf-8", "ignore")
    # Windows ignores trailing dots and spaces, which would let "a." alias "a" (stripped after
    # the length cap, which could otherwise leave one behind).
    cleaned = cleaned.rstrip(". ")
    if cleaned in ("", ".", ".."):
        cleaned = "_"
    if fold(cleaned).startswith(fold(RESERVED_PREFIX)):
        cleaned = "_" + cleaned
    return cleaned


def sanitize_path(path: str) -> tuple[str, ...]:
    """Return safe components for a manifest path; raise UnsafePathError if nothing is left."""
    parts = []
    for raw in re.split(r"[/\\]", path):
        if raw in ("", "."):
            continue
        parts.append("_" if raw == ".." else _clean_component(raw))
    if not parts:
        raise UnsafePathError(f"The sender offered a file with an empty name ({path!r}).")
    return tuple(parts)


def sanitize_all(paths: list[str]) -> list[tuple[str, ...]]:
    """Sanitise every path and refuse collisions (two entries landing on one name).

    Collisions are compared case-insensitively and across Unicode normalisation forms because
    the receiving file system may do either (`fold`).
    """
    seen: dict[tuple[str, ...], str] = {}
    result = []
    for path in paths:
        safe = sanitize_path(path)
        key = tuple(fold(part) for part in safe)
        if key in seen:
            raise UnsafePathError(
                f"The sender offered two entries that would be saved under the same name: "
                f"{seen[key]!r} and {path!r} (names that differ only in letter case or Unicode "
                "spelling are one name on many file systems)."
            )
        seen[key] = path
        result.append(safe)
    return result
