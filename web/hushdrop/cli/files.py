"""Files on disk for the CLI: collecting what to send, and writing what arrives safely.

`OutgoingFiles` turns command-line paths into a Manifest and serves the byte ranges the sender
session asks for (or standard input, a stream of unknown size: `hushdrop send -`).
`IncomingFiles` writes each arriving file to a hidden temporary file of its own
(`.hushdrop-<transfer>-<index>.part`, created with O_EXCL, so it can collide with nothing) and
gives it its final name only once the session reports its SHA-256 verified (PROTOCOL.md §9).
`StdoutFile` stands in for it with `hushdrop receive -o -`: one file, straight to standard output.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import hashlib
import os
import shutil
import stat
import sys
from pathlib import Path
from typing import BinaryIO

from ..protocol.errors import HushdropError, UnsafePathError
from ..protocol.manifest import DirEntry, FileEntry, Manifest, text_bytes
from ..protocol.text import printable_text
from .standard_input import StandardInput

TEMP_PREFIX = ".hushdrop-"
TEMP_SUFFIX = ".part"
READ_BLOCK = 1024 * 1024
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)

# What the user (and the peer) is told for the errors a full, read-only or foreign disk gives.
_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EFBIG: "a file is larger than the file system allows",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENAMETOOLONG: "a name is too long for the file system",
    errno.EIO: "an input/output error",
}


class LocalFileError(HushdropError):
    """A problem with local files: missing input, existing output, full disk.

    `str()` is for this side's user (it may name local paths); `peer_message` is what the other
    side is told, without them.
    """

    kind = "local"

    def __init__(self, message: str, peer_message: str | None = None) -> None:
        super().__init__(message)
        self.peer_message = peer_message or "The other side hit a problem with its files."


class LinkInTheWayError(LocalFileError):
    """A folder on the way to a received file is a symbolic link: refused, never followed."""

    kind = UnsafePathError.kind


def reason(exc: OSError) -> str:
    """A short lower-case explanation of an OS error."""
    if exc.errno in _REASONS:
        return _REASONS[exc.errno]
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


def save_error(path: Path, exc: OSError) -> LocalFileError:
    """A receiver's failure to write `path`, for both sides."""
    why = reason(exc)
    return LocalFileError(
        f"Could not save {path}: {why}.", f"The receiver could not save the files: {why}."
    )


def read_error(path: Path | str, exc: OSError) -> LocalFileError:
    """A sender's failure to read `path`, for both sides."""
    why = reason(exc)
    return LocalFileError(
        f"Cannot read {path}: {why}.", f"The sender could not read its files: {why}."
    )


def current_umask() -> int:
    """The process's umask (reading it means setting it; the restrictive value in between is
    harmless to anything created meanwhile)."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def nearest_existing(path: Path) -> Path:
    """`path` itself or the closest ancestor that exists (links not followed)."""
    path = path.absolute()
    while not os.path.lexists(path) and path.parent != path:
        path = path.parent
    return path


def check_output_dir(root: Path) -> None:
    """Refuse an output folder that cannot work, before the code is used (a mistake on this
    side must not burn the sender's code): it must be a folder, or be creatable, and writable."""
    existing = nearest_existing(root)
    if existing == root.absolute():
        if not root.is_dir():
            raise LocalFileError(f"{root} is not a folder; choose a folder to save into with -o.")
    elif not existing.is_dir():
        raise LocalFileError(
            f"Cannot create the folder {root}: {existing} is not a folder."
            if os.path.exists(existing)
            else f"Cannot create the folder {root}: {existing} is a broken link."
        )
    if not os.access(
        existing, os.W_OK | os.X_OK, effective_ids=os.access in os.supports_effective_ids
    ):
        why = "the file system is read-only" if _read_only(existing) else "permission denied"
        action = f"save into {root}" if existing == root.absolute() else f"create {root}"
        raise LocalFileError(f"Cannot {action}: {why}.")


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


class UsageError(HushdropError):
    """The command line (or its environment) asks for something that cannot work."""

    kind = "usage"


class OneFileOnlyError(LocalFileError, UsageError):
    """`receive -o -` was offered several files: standard output holds only one."""

    kind = "usage"


STDIN = "-"
STDIN_NAME = "stdin"


class OutgoingFiles:
    """The sender's files, in manifest order."""

    def __init__(
        self,
        manifest: Manifest,
        sources: list[Path],
        stdin: BinaryIO | None = None,
        text: str | None = None,
    ):
        self.manifest = manifest
        self.text = text  # the text the manifest announces, sent ahead of the files (§6.1.1)
        self._sources = sources
        # The stream that is the (only) file, for `send -`.
        self._stdin = StandardInput(stdin) if stdin is not None else None
        self._open_index: int | None = None
        self._handle: BinaryIO | None = None
        self._buffer = bytearray()

    @classmethod
    def collect(cls, paths: list[str], text: str | None = None) -> OutgoingFiles:
        """The files and folders at `paths`, and `text` (PROTOCOL.md §6.1.1) if one goes too."""
        files: list[FileEntry] = []
        dirs: list[DirEntry] = []
        sources: list[Path] = []
        top_names: set[str] = set()
        for raw in paths:
            path = Path(raw)
            try:
                info = path.stat()
            except OSError as exc:
                raise read_error(raw, exc) from exc
            name = path.resolve().name or path.resolve().anchor
            if name in top_names:
                raise LocalFileError(f"Two of the paths to send are both called {name!r}.")
            top_names.add(name)
            if stat.S_ISDIR(info.st_mode):
                cls._walk(path, name, files, dirs, sources)
            elif stat.S_ISREG(info.st_mode):
                files.append(_entry(name, info))
                sources.append(path)
            else:
                raise LocalFileError(f"{raw} is not a regular file or a directory.")
        manifest = Manifest(tuple(files), tuple(dirs), _text_size(text))
        manifest.encode()  # within the protocol's limits, checked before a code is made
        return cls(manifest, sources, text=text)

    @classmethod
    def standard_input(
        cls, name: str, text: str | None = None, stream: BinaryIO | None = None
    ) -> OutgoingFiles:
        """Standard input as one file of unknown size called `name` (PROTOCOL.md §7.2), and
        `text` if one goes too."""
        if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
            raise UsageError(f"--name must be a file name without folders, not {name!r}.")
        manifest = Manifest((FileEntry(name, None),), (), _text_size(text))
        manifest.encode()
        return cls(manifest, [], stream if stream is not None else sys.stdin.buffer, text)

    async def read_stream(self, length: int) -> memoryview:
        """Up to `length` bytes of standard input (fewer only at its end; none: it ended).
        Waiting for them leaves the event loop free (`StandardInput`)."""
        try:
            return await self._stdin.read(length)
        except OSError as exc:
            raise read_error("standard input", exc) from exc

    @staticmethod
    def _walk(root: Path, name: str, files, dirs, sources) -> None:
        dirs.append(DirEntry(name, stat.S_IMODE(root.stat().st_mode)))
        # Directory symlinks are not followed: they could loop or reach far outside the folder.
        for current, subdirs, filenames in os.walk(root, followlinks=False):
            subdirs.sort()
            rel = Path(current).relative_to(root)
            prefix = name if rel == Path(".") else f"{name}/{rel.as_posix()}"
            for sub in subdirs:
                sub_path = Path(current, sub)
                if not sub_path.is_symlink():
                    dirs.append(DirEntry(f"{prefix}/{sub}", stat.S_IMODE(sub_path.stat().st_mode)))
            for filename in sorted(filenames):
                file_path = Path(current, filename)
                try:
                    info = file_path.stat()
                except OSError:
                    continue  # a dangling symlink
                if stat.S_ISREG(info.st_mode):
                    files.append(_entry(f"{prefix}/{filename}", info))
                    sources.append(file_path)

    def reader(self) -> OutgoingFiles:
        """The same files with a handle and buffer of their own: one per receiver of a link,
        which each read the files at their own pace."""
        return OutgoingFiles(self.manifest, self._sources, text=self.text)

    def read(self, index: int, offset: int, length: int) -> memoryview:
        """Bytes [offset, offset+length) of file `index`, in a buffer reused by the next read."""
        if self._open_index != index:
            self.close()
            try:
                self._handle = open(self._sources[index], "rb")  # noqa: SIM115
            except OSError as exc:
                raise read_error(self._sources[index], exc) from exc
            self._open_index = index
        if self._handle.tell() != offset:
            self._handle.seek(offset)
        if len(self._buffer) < length:
            self._buffer = bytearray(length)
        view = memoryview(self._buffer)[:length]
        filled = 0
        try:
            while filled < length and (got := self._handle.readinto(view[filled:])):
                filled += got
        except OSError as exc:
            raise read_error(self._sources[index], exc) from exc
        return view[:filled]

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        self._handle = None
        self._open_index = None


def _entry(path: str, info: os.stat_result) -> FileEntry:
    return FileEntry(path, info.st_size, stat.S_IMODE(info.st_mode), int(info.st_mtime))


class IncomingFiles:
    """Where the receiver's files go, checked before anything is written.

    Everything this transfer creates is remembered, so that `abandon()` removes exactly that and
    nothing the receiver already had. Files are created with the receiver's umask; of the
    sender's mode only "executable" is kept.
    """

    def __init__(self, root: Path, overwrite: bool = False, umask: int | None = None) -> None:
        self.root = root
        self.overwrite = overwrite
        self.umask = current_umask() if umask is None else umask
        self.transfer: str | None = None  # names this transfer's temporary files
        self._targets: list[Path] = []
        self._dirs: list[Path] = []
        self._manifest: Manifest | None = None
        self._handle: BinaryIO | None = None
        self._open_index: int | None = None
        self._temporaries: set[int] = set()  # files whose temporary file exists
        self._created_dirs: list[Path] = []
        self.saved: list[Path] = []

    @property
    def targets(self) -> list[Path]:
        return list(self._targets)

    def plan(self, manifest: Manifest) -> None:
        """Map every manifest path under the output directory; refuse conflicts up front."""
        file_paths, dir_paths = manifest.safe_paths()
        self._manifest = manifest
        self._targets = [self.root.joinpath(*parts) for parts in file_paths]
        self._dirs = [self.root.joinpath(*parts) for parts in dir_paths]
        existing = [t for t in self._targets if os.path.lexists(t)]
        if existing and not self.overwrite:
            names = ", ".join(str(p) for p in existing[:3])
            more = f" and {len(existing) - 3} more" if len(existing) > 3 else ""
            raise LocalFileError(
                f"Not overwriting existing files: {names}{more}. "
                "Use --overwrite or choose another directory with -o.",
                "the receiver already has files of the same names.",
            )
        for target in existing:
            if target.is_dir() and not target.is_symlink():
                raise LocalFileError(
                    f"{target} is a directory; cannot save a file there.",
                    "the receiver has a folder where a file would go.",
                )
        check_output_dir(self.root)
        free = shutil.disk_usage(nearest_existing(self.root)).free
        if manifest.known_size > free:  # a stream's size is unknown: a full disk stops it later
            raise LocalFileError(
                f"Not enough disk space in {self.root}: {manifest.known_size:,} bytes needed, "
                f"{free:,} free.",
                "the receiver does not have enough free disk space.",
            )
        self.transfer = os.urandom(8).hex()

    def restore(self, manifest: Manifest, targets: list[Path], transfer: str) -> None:
        """Take the plan of an interrupted transfer (its resume record) instead of planning."""
        _, dir_paths = manifest.safe_paths()
        self._manifest = manifest
        self._targets = [self.root / target for target in targets]
        self._dirs = [self.root.joinpath(*parts) for parts in dir_paths]
        self.transfer = transfer

    def temporary(self, index: int) -> Path:
        """Where file `index` is written until verified: a hidden name of this transfer's, short
        enough for any file system whatever the final name's length."""
        return self._targets[index].with_name(f"{TEMP_PREFIX}{self.transfer}-{index}{TEMP_SUFFIX}")

    def partial(self, index: int) -> tuple[int, hashlib._Hash] | None:
        """(length, SHA-256 so far) of file `index`'s temporary file, whose bytes were all
        verified when written; None if there is none."""
        part = self.temporary(index)
        if part.is_symlink() or not part.is_file():
            return None
        self._temporaries.add(index)  # named by our own record: ours to continue or remove
        digest = hashlib.sha256()
        with open(part, "rb") as handle:
            while block := handle.read(READ_BLOCK):
                digest.update(block)
            return handle.tell(), digest

    def reopen(self, index: int) -> None:
        """Continue writing file `index`'s temporary file where it ends (after a restart)."""
        self.close()
        part = self.temporary(index)
        try:
            fd = os.open(part, os.O_WRONLY | os.O_APPEND | _NOFOLLOW)
        except OSError as exc:
            raise save_error(part, exc) from exc
        self._handle = os.fdopen(fd, "ab")
        self._open_index = index

    def discard(self, index: int) -> None:
        """Remove file `index`'s temporary file (ours: our record names it) to start it again."""
        self.close()
        with contextlib.suppress(FileNotFoundError):
            self.temporary(index).unlink()
        self._temporaries.discard(index)

    def make_root(self) -> None:
        """Create the output folder (and missing parents), remembering what was created."""
        self._make_dirs(self.root)

    def _make_dirs(self, directory: Path) -> None:
        """Create `directory` (root or a folder under it) and what is missing above it, without
        following symlinks planted under root (root itself may be one); mkdir applies the
        umask."""
        if directory == self.root:
            path, top = self.root.absolute(), nearest_existing(self.root)
            chain = [path]
            while path != top:
                path = path.parent
                chain.append(path)
            chain.reverse()
            inside = False
        else:
            self._make_dirs(self.root)
            chain = [self.root]
            for part in directory.relative_to(self.root).parts:
                chain.append(chain[-1] / part)
            inside = True
        for depth, path in enumerate(chain):
            if inside and depth and path.is_symlink():
                raise LinkInTheWayError(
                    f"{path} is a symbolic link; refusing to write through it.",
                    "the receiver has a symbolic link where a folder would go, and does not "
                    "write through links.",
                )
            if os.path.lexists(path):
                if not path.is_dir():
                    raise LocalFileError(
                        f"{path} exists and is not a directory.",
                        "the receiver has a file where a folder would go.",
                    )
                continue
            try:
                path.mkdir()
            except OSError as exc:
                raise save_error(path, exc) from exc
            self._created_dirs.append(path)

    def start(self, index: int) -> None:
        self.close()
        self._make_dirs(self._targets[index].parent)
        part = self.temporary(index)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW
        try:
            fd = os.open(part, flags, 0o600)
        except OSError as exc:
            raise save_error(part, exc) from exc
        self._temporaries.add(index)
        self._handle = os.fdopen(fd, "wb")
        self._open_index = index

    def write(self, index: int, data: bytes) -> None:
        if self._open_index != index or self._handle is None:
            raise LocalFileError("Internal error: data for a file that is not open.")
        try:
            self._handle.write(data)
        except OSError as exc:
            raise save_error(self._targets[index], exc) from exc

    def complete(self, index: int) -> Path:
        """The file verified: flush it, give it its mode, and move it to its final name."""
        if self._open_index != index or self._handle is None:
            self.start(index)  # an empty file never got data
        target = self._targets[index]
        part = self.temporary(index)
        entry = self._manifest.files[index]
        try:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self.close()
            os.chmod(part, self.file_mode(entry.mode))
            if entry.mtime:
                os.utime(part, (entry.mtime, entry.mtime))
        except OSError as exc:
            raise save_error(target, exc) from exc
        self._rename(part, target)
        self._temporaries.discard(index)
        self.saved.append(target)
        return target

    def file_mode(self, sender_mode: int) -> int:
        """Permissions of a received file: the receiver's umask decides; only "executable"
        follows the sender (like `cp` without `-p`, or git)."""
        base = 0o777 if sender_mode & 0o111 else 0o666
        return base & ~self.umask

    def _rename(self, part: Path, target: Path) -> None:
        try:
            if self.overwrite:
                os.replace(part, target)
                return
            try:
                os.link(part, target)  # fails instead of replacing a file that appeared meanwhile
            except FileExistsError as exc:
                raise LocalFileError(
                    f"{target} appeared during the transfer; not replacing it.",
                    "a file of the same name appeared on the receiver's side.",
                ) from exc
            except OSError:
                if os.path.lexists(target):
                    raise
                os.rename(part, target)  # a file system without hard links
                return
            os.unlink(part)
        except OSError as exc:
            raise save_error(target, exc) from exc

    def finish(self) -> None:
        """Create the (possibly empty) directories the sender listed."""
        for directory in self._dirs:
            self._make_dirs(directory)

    def abandon(self) -> None:
        """The transfer ended without finishing: remove its temporary files and the folders it
        created that are still empty. Verified files already saved stay."""
        self.close()
        for index in sorted(self._temporaries):
            with contextlib.suppress(OSError):
                self.temporary(index).unlink()
        self._temporaries.clear()
        for directory in reversed(self._created_dirs):
            with contextlib.suppress(OSError):
                directory.rmdir()  # only when empty
        self._created_dirs.clear()

    def close(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):  # the write error was already reported
                self._handle.close()
        self._handle = None
        self._open_index = None


class StdoutFile:
    """`hushdrop receive -o -`: the single offered file goes to standard output as it is
    verified, chunk by chunk. No temporary file and no resume record: what was written cannot
    be taken back, so a transfer that fails midway ends with an error (and a non-zero exit)
    saying the output is incomplete."""

    NAME = "<standard output>"

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout.buffer
        self.root = Path(self.NAME)
        self.transfer: str | None = None
        self.written = 0
        self.saved: list[Path] = []
        # On a terminal the file is shown made printable, as a received text is (PROTOCOL.md
        # §9): its bytes would otherwise be the sender's commands to the terminal (a window
        # title, a cleared screen, keys sent back by some emulators). Its exact bytes go to a
        # file or a pipe.
        try:
            self._terminal = self._stream.isatty()
        except (AttributeError, ValueError, OSError):
            self._terminal = False
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._held = ""  # a CR that may start a CR LF split across two pieces

    @property
    def targets(self) -> list[Path]:
        return [self.root]

    def plan(self, manifest: Manifest) -> None:
        if manifest.has_text and manifest.files:
            raise OneFileOnlyError(
                "The sender offers a text with the file; standard output (-o -) takes only the "
                "file. Choose a folder to save into with -o DIR.",
                "the receiver writes to its standard output, which takes a single file without "
                "a text. Send the file alone, or ask them to save into a folder.",
            )
        if len(manifest.files) != 1 or manifest.dirs:
            count = len(manifest.files)
            what = f"{count} files" if count != 1 else "a folder"
            raise OneFileOnlyError(
                f"The sender offers {what}; standard output (-o -) takes exactly one file. "
                "Choose a folder to save into with -o DIR.",
                f"the receiver writes to its standard output, which takes a single file, not "
                f"{what}. Send one file, or ask them to save into a folder.",
            )
        manifest.safe_paths()

    def make_root(self) -> None:
        pass

    def start(self, index: int) -> None:
        pass

    def _shown(self, data: bytes, final: bool = False) -> bytes:
        """`data` as a terminal is given it: UTF-8 text without control characters (each run
        of them, and of bytes that are not UTF-8, one U+FFFD); line breaks and tabs stay."""
        text = self._held + self._decoder.decode(data, final)
        self._held = ""
        if text.endswith("\r") and not final:
            text, self._held = text[:-1], "\r"
        return printable_text(text).encode("utf-8")

    def write(self, index: int, data: bytes) -> None:
        try:
            self._stream.write(self._shown(data) if self._terminal else data)
            self._stream.flush()  # a quiet stream's lines reach the reader as they arrive
        except OSError as exc:
            raise LocalFileError(
                f"Could not write to standard output: {reason(exc)}.",
                f"The receiver could not write the file: {reason(exc)}.",
            ) from exc
        self.written += len(data)

    def complete(self, index: int) -> Path:
        try:
            if self._terminal:
                self._stream.write(self._shown(b"", final=True))
            self._stream.flush()
        except OSError as exc:
            raise LocalFileError(
                f"Could not write to standard output: {reason(exc)}.",
                f"The receiver could not write the file: {reason(exc)}.",
            ) from exc
        self.saved.append(self.root)
        return self.root

    def finish(self) -> None:
        pass

    def incomplete(self) -> str:
        """What the user must know when the transfer failed after writing began."""
        if not self.written or self.saved:
            return ""
        return (
            f" The {self.written:,} bytes already written to standard output are incomplete: "
            "do not use them."
        )

    def abandon(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._stream.flush()

    def close(self) -> None:
        pass


def _text_size(text: str | None) -> int | None:
    """The UTF-8 size of `text` (None: no text); refuses a text that cannot be sent."""
    return None if text is None else len(text_bytes(text))
