"""The manifest: what a sender offers (PROTOCOL.md §6.1), encoded, decoded and validated.

Besides files and folders it may announce a text (a message, a password, a link): the manifest
says only that there is one and its size; the text itself is the data stream's first entry,
encrypted, framed and padded exactly like a file (§6.1.1, §7).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field

from .constants import MAX_MANIFEST_BYTES, MAX_MANIFEST_ENTRIES, MAX_PATH_BYTES, MAX_TEXT_BYTES
from .errors import HushdropError, ProtocolError, UnsafePathError
from .paths import fold, sanitize_all

MANIFEST_VERSION = 1
MAX_FILE_SIZE = 1 << 50  # C2SP's 2^38 chunks of 16 KiB is 4 PiB; stay far below.


class TextError(HushdropError):
    """A text this side wants to send cannot go (too large, or not Unicode text); `problem`
    ("too-large", "not-unicode") and `size` let a user interface say it in its own words."""

    kind = "usage"

    def __init__(self, message: str, problem: str = "", size: int = 0) -> None:
        super().__init__(message)
        self.problem = problem
        self.size = size


def text_bytes(text: str) -> bytes:
    """`text` as the UTF-8 bytes that travel; raises TextError when it cannot be sent."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise TextError(
            "The text is not valid Unicode text (UTF-8); send it as a file instead.",
            "not-unicode",
        ) from exc
    if len(data) > MAX_TEXT_BYTES:
        raise TextError(_too_large(len(data)), "too-large", len(data))
    return data


def _too_large(size: int) -> str:
    # Exact bytes: rounded, a text just over the limit read "1.0 MiB; at most 1.0 MiB".
    return (
        f"The text is {size:,} bytes; at most {MAX_TEXT_BYTES:,} bytes of text go in one "
        "transfer. Send it as a file instead."
    )


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB" if size >= 1 << 20 else f"{size:,} bytes"


@dataclass(frozen=True)
class FileEntry:
    """One file offered. `size` None: a stream whose length is known only at its end (§7.2)."""

    path: str
    size: int | None
    mode: int = 0o644
    mtime: int = 0

    @property
    def streamed(self) -> bool:
        return self.size is None


@dataclass(frozen=True)
class DirEntry:
    path: str
    mode: int = 0o755


@dataclass(frozen=True)
class Manifest:
    files: tuple[FileEntry, ...]
    dirs: tuple[DirEntry, ...] = field(default_factory=tuple)
    # UTF-8 bytes of a text sent with (or instead of) files, which leads the data stream
    # (§6.1.1); None when there is none.
    text_size: int | None = None

    @property
    def total_size(self) -> int | None:
        """The bytes offered; None when a file is a stream of unknown length (§7.2)."""
        if self.has_stream:
            return None
        return sum(f.size for f in self.files)

    @property
    def known_size(self) -> int:
        """The bytes of the files whose size is known (all of them, without a stream)."""
        return sum(f.size for f in self.files if f.size is not None)

    @property
    def has_stream(self) -> bool:
        return bool(self.files) and self.files[-1].size is None

    @property
    def has_text(self) -> bool:
        return self.text_size is not None

    @property
    def first_file(self) -> int:
        """The data-stream entry of file 0: 1 when a text leads the stream, else 0 (§7)."""
        return 1 if self.has_text else 0

    @functools.cached_property
    def entry_sizes(self) -> tuple[int | None, ...]:
        """The data stream's entries in order (§7): the text, if any, then every file.
        Cached: the receiver consults it per message and per file."""
        text = () if self.text_size is None else (self.text_size,)
        return text + tuple(f.size for f in self.files)

    def encode(self) -> bytes:
        doc = {
            "version": MANIFEST_VERSION,
            "files": [
                {"path": _utf8(f.path), "size": f.size, "mode": f.mode, "mtime": f.mtime}
                for f in self.files
            ],
            "dirs": [{"path": _utf8(d.path), "mode": d.mode} for d in self.dirs],
        }
        if self.text_size is not None:
            if not 0 <= self.text_size <= MAX_TEXT_BYTES:
                raise TextError(_too_large(self.text_size), "too-large", self.text_size)
            doc["text"] = {"size": self.text_size}
        entries = len(self.files) + len(self.dirs)
        if entries > MAX_MANIFEST_ENTRIES:
            raise ProtocolError(
                f"Too many files to send in one transfer: {entries:,} files and folders, at most "
                f"{MAX_MANIFEST_ENTRIES:,}. Send them in parts, or as an archive."
            )
        _check_stream(self.files)
        data = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        if len(data) > MAX_MANIFEST_BYTES:
            raise ProtocolError(
                f"The list of files to send is {len(data) / (1 << 20):.1f} MiB, more than one "
                f"transfer carries ({MAX_MANIFEST_BYTES >> 20} MiB of names). Send them in parts, "
                "or as an archive."
            )
        return data

    @classmethod
    def decode(cls, data: bytes) -> Manifest:
        """Parse and validate a manifest from the peer. Raises ProtocolError when malformed."""
        if len(data) > MAX_MANIFEST_BYTES:
            raise ProtocolError("The sender's file list is too large.")
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise ProtocolError("The sender's file list is malformed.") from exc
        version = doc.get("version") if isinstance(doc, dict) else None
        if type(version) is not int or version != MANIFEST_VERSION:
            raise ProtocolError("The sender's file list has an unsupported format.")
        files_raw, dirs_raw = doc.get("files"), doc.get("dirs", [])
        if not isinstance(files_raw, list) or not isinstance(dirs_raw, list):
            raise ProtocolError("The sender's file list is malformed.")
        if len(files_raw) + len(dirs_raw) > MAX_MANIFEST_ENTRIES:
            raise ProtocolError("The sender offered too many files.")
        files = tuple(
            FileEntry(
                _path(e),
                _size(e),
                _int(e, "mode", 0, 0o7777, 0o644) & 0o777,
                _int(e, "mtime", -(1 << 40), 1 << 40, 0),
            )
            for e in files_raw
        )
        _check_stream(files)
        dirs = tuple(
            DirEntry(_path(e), _int(e, "mode", 0, 0o7777, 0o755) & 0o777) for e in dirs_raw
        )
        return cls(files, dirs, _text(doc.get("text")))

    def safe_paths(self) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
        """Sanitised components for files and dirs; refuses collisions and file/dir overlaps."""
        all_paths = sanitize_all([f.path for f in self.files] + [d.path for d in self.dirs])
        file_paths, dir_paths = all_paths[: len(self.files)], all_paths[len(self.files) :]
        # A path lies inside a file when one of its proper prefixes is a file's path. Each file
        # gets a key, and each prefix is looked up through its parent's key, so the check stays
        # linear in the total number of components however deep the paths are.
        keys: dict[tuple[int, str], int] = {}  # (parent key, folded component) -> key
        file_keys: set[int] = set()
        for index, path in enumerate(all_paths):
            key = 0
            for part in path:
                key = keys.setdefault((key, fold(part)), len(keys) + 1)
            if index < len(file_paths):
                file_keys.add(key)
        for path in all_paths:
            key = 0
            for depth, part in enumerate(path):
                if depth and key in file_keys:
                    raise UnsafePathError(
                        f"The sender offered {'/'.join(path)!r} inside something that is a file."
                    )
                key = keys[(key, fold(part))]
        return file_paths, dir_paths


def _utf8(path: str) -> str:
    """A file name that was not valid UTF-8 on disk (Python's surrogate escapes) travels with
    U+FFFD in place of its undecodable bytes."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _path(entry: object) -> str:
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
        raise ProtocolError("The sender's file list has an entry without a name.")
    path = entry["path"]
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise ProtocolError("The sender's file list has a name that is too long.")
    return path


def _text(value: object) -> int | None:
    """The announced text's size (§6.1.1): `{"size": n}`, 0 ≤ n ≤ MAX_TEXT_BYTES."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"size"}:
        raise ProtocolError("The sender's text is malformed.")
    size = value["size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ProtocolError("The sender's text is malformed.")
    if size > MAX_TEXT_BYTES:
        raise ProtocolError(f"The sender's text is larger than {_mib(MAX_TEXT_BYTES)}.")
    return size


def _size(entry: dict) -> int | None:
    """A file's size; JSON null (present, not missing) marks a stream (§7.2)."""
    if "size" in entry and entry["size"] is None:
        return None
    return _int(entry, "size", 0, MAX_FILE_SIZE)


def _check_stream(files: tuple[FileEntry, ...]) -> None:
    """Only the last file may be a stream: the data stream ends where it ends (§7.2)."""
    if any(entry.size is None for entry in files[:-1]):
        raise ProtocolError("The sender's file list has a stream that is not its last file.")


def _int(entry: dict, key: str, low: int, high: int, default: int | None = None) -> int:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ProtocolError(f"The sender's file list has an invalid {key}.")
    return value
