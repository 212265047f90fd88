"""Files on disk for the CLI: collecting what to send, and writing what arrives safely.

`OutgoingFiles` turns command-line paths into a Manifest and serves the byte ranges the sender
session asks for. `IncomingFiles` writes each arriving file to `<name>.part` and gives it its final
name only once the session reports its SHA-256 verified (PROTOCOL.md §8).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
from pathlib import Path
from typing import BinaryIO

from ..protocol.errors import HushdropError, UnsafePathError
from ..protocol.manifest import DirEntry, FileEntry, Manifest

PART_SUFFIX = ".part"
READ_BLOCK = 1024 * 1024


class LocalFileError(HushdropError):
    """A problem with local files: missing input, existing output, full disk."""

    kind = "local"


class OutgoingFiles:
    """The sender's files, in manifest order."""

    def __init__(self, manifest: Manifest, sources: list[Path]) -> None:
        self.manifest = manifest
        self._sources = sources
        self._open_index: int | None = None
        self._handle: BinaryIO | None = None
        self._buffer = bytearray()

    @classmethod
    def collect(cls, paths: list[str]) -> OutgoingFiles:
        files: list[FileEntry] = []
        dirs: list[DirEntry] = []
        sources: list[Path] = []
        top_names: set[str] = set()
        for raw in paths:
            path = Path(raw)
            try:
                info = path.stat()
            except OSError as exc:
                raise LocalFileError(f"Cannot read {raw}: {exc.strerror}.") from exc
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
        return cls(Manifest(tuple(files), tuple(dirs)), sources)

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

    def read(self, index: int, offset: int, length: int) -> memoryview:
        """Bytes [offset, offset+length) of file `index`, in a buffer reused by the next read."""
        if self._open_index != index:
            self.close()
            try:
                self._handle = open(self._sources[index], "rb")  # noqa: SIM115
            except OSError as exc:
                raise LocalFileError(
                    f"Cannot read {self._sources[index]}: {exc.strerror}."
                ) from exc
            self._open_index = index
        if self._handle.tell() != offset:
            self._handle.seek(offset)
        if len(self._buffer) < length:
            self._buffer = bytearray(length)
        view = memoryview(self._buffer)[:length]
        filled = 0
        while filled < length and (got := self._handle.readinto(view[filled:])):
            filled += got
        return view[:filled]

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        self._handle = None
        self._open_index = None


def _entry(path: str, info: os.stat_result) -> FileEntry:
    return FileEntry(path, info.st_size, stat.S_IMODE(info.st_mode), int(info.st_mtime))


class IncomingFiles:
    """Where the receiver's files go, checked before anything is written."""

    def __init__(self, root: Path, overwrite: bool = False) -> None:
        self.root = root
        self.overwrite = overwrite
        self._targets: list[Path] = []
        self._dirs: list[Path] = []
        self._manifest: Manifest | None = None
        self._handle: BinaryIO | None = None
        self._open_index: int | None = None
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
        existing = [t for t in self._targets if t.exists() or t.is_symlink()]
        if existing and not self.overwrite:
            names = ", ".join(str(p) for p in existing[:3])
            more = f" and {len(existing) - 3} more" if len(existing) > 3 else ""
            raise LocalFileError(
                f"Not overwriting existing files: {names}{more}. "
                "Use --overwrite or choose another directory with -o."
            )
        for target in existing:
            if target.is_dir() and not target.is_symlink():
                raise LocalFileError(f"{target} is a directory; cannot save a file there.")
        if self.root.exists():
            free = shutil.disk_usage(self.root).free
            if manifest.total_size > free:
                raise LocalFileError(
                    f"Not enough disk space in {self.root}: {manifest.total_size:,} bytes needed, "
                    f"{free:,} free."
                )

    def restore(self, manifest: Manifest, targets: list[Path]) -> None:
        """Take the plan of an interrupted transfer (its resume record) instead of planning."""
        _, dir_paths = manifest.safe_paths()
        self._manifest = manifest
        self._targets = [self.root / target for target in targets]
        self._dirs = [self.root.joinpath(*parts) for parts in dir_paths]

    def partial(self, index: int) -> tuple[int, object] | None:
        """(length, SHA-256 so far) of file `index`'s `.part`, whose bytes were all verified
        when written; None if there is none."""
        part = _part_path(self._targets[index])
        if part.is_symlink() or not part.is_file():
            return None
        digest = hashlib.sha256()
        with open(part, "rb") as handle:
            while block := handle.read(READ_BLOCK):
                digest.update(block)
            return handle.tell(), digest

    def reopen(self, index: int) -> None:
        """Continue writing file `index`'s `.part` where it ends (after a restart)."""
        self.close()
        part = _part_path(self._targets[index])
        flags = os.O_WRONLY | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(part, flags)
        except OSError as exc:
            raise LocalFileError(f"Cannot reopen {part}: {exc.strerror}.") from exc
        self._handle = os.fdopen(fd, "ab")
        self._open_index = index

    def _ensure_dir(self, directory: Path) -> None:
        """Create `directory` under root without following symlinks planted inside root."""
        self.root.mkdir(parents=True, exist_ok=True)
        current = self.root
        for part in directory.relative_to(self.root).parts:
            current = current / part
            if current.is_symlink():
                raise UnsafePathError(
                    f"{current} is a symbolic link; refusing to write through it."
                )
            if not current.exists():
                current.mkdir()
            elif not current.is_dir():
                raise LocalFileError(f"{current} exists and is not a directory.")

    def start(self, index: int) -> None:
        self.close()
        target = self._targets[index]
        self._ensure_dir(target.parent)
        part = _part_path(target)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(part, flags, 0o600)
        except OSError as exc:
            raise LocalFileError(f"Cannot create {part}: {exc.strerror}.") from exc
        self._handle = os.fdopen(fd, "wb")
        self._open_index = index

    def write(self, index: int, data: bytes) -> None:
        if self._open_index != index or self._handle is None:
            raise LocalFileError("Internal error: data for a file that is not open.")
        try:
            self._handle.write(data)
        except OSError as exc:
            raise LocalFileError(
                f"Could not write {_part_path(self._targets[index])}: {exc.strerror}. "
                "The partial file was kept."
            ) from exc

    def complete(self, index: int) -> Path:
        """The file verified: flush it and move it to its final name."""
        if self._open_index != index or self._handle is None:
            self.start(index)  # an empty file never got data
        try:
            self._handle.flush()
            os.fsync(self._handle.fileno())
        except OSError as exc:
            raise LocalFileError(
                f"Could not write {self._targets[index]}: {exc.strerror}."
            ) from exc
        self.close()
        target = self._targets[index]
        part = _part_path(target)
        self._rename(part, target)
        entry = self._manifest.files[index]
        try:
            os.chmod(target, (entry.mode & 0o777) | 0o600)
            if entry.mtime:
                os.utime(target, (entry.mtime, entry.mtime))
        except OSError:
            pass  # metadata is best effort; the content is what was verified
        self.saved.append(target)
        return target

    def _rename(self, part: Path, target: Path) -> None:
        if self.overwrite:
            os.replace(part, target)
            return
        try:
            os.link(part, target)  # fails instead of replacing a file that appeared meanwhile
        except FileExistsError as exc:
            raise LocalFileError(f"{target} appeared during the transfer; kept {part}.") from exc
        except OSError as exc:
            if target.exists():
                raise LocalFileError(
                    f"{target} appeared during the transfer; kept {part}."
                ) from exc
            os.rename(part, target)
            return
        os.unlink(part)

    def finish(self) -> None:
        """Create the (possibly empty) directories the sender listed and apply their modes."""
        for directory in self._dirs:
            self._ensure_dir(directory)
        for directory, entry in zip(self._dirs, self._manifest.dirs, strict=True):
            with contextlib.suppress(OSError):
                os.chmod(directory, (entry.mode & 0o777) | 0o700)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        self._handle = None
        self._open_index = None


def _part_path(target: Path) -> Path:
    return target.with_name(target.name + PART_SUFFIX)
