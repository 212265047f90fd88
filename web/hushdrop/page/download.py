"""What the receiving page saves, and the bytes it streams. Pure Python (no `js`).

`plan_download` decides, from the manifest, between one plain file (a single file was sent) and
one zip (several files, or any folder), and names it with the core's sanitised paths
(`Manifest.safe_paths`, PROTOCOL.md §8). `content_disposition` builds the RFC 6266 header.

The writers turn the receiver session's events into bytes for a *sink* (`write(bytes)`, `close()`,
`abort(message)`, all awaitable; in the page a service-worker download stream). `ZipWriter` builds
the zip on the fly with the standard library's `zipfile` over an unseekable stream: every member is
ZIP_STORED with its size announced up front (so `zipfile` switches a member to ZIP64 on its own
when it needs to) and a data descriptor after its bytes; the central directory goes out at the end.
Nothing is ever buffered beyond what one message produced.
"""

from __future__ import annotations

import time
import zipfile
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote

from ..protocol.manifest import Manifest

ZIP_TYPE = "application/zip"
FILE_TYPE = "application/octet-stream"
# DOS timestamps in a zip cover 1980-01-01 … 2107-12-31.
_ZIP_EPOCH = 315532800
_ZIP_END = 4354819199


class Sink(Protocol):
    """Where the downloaded bytes go, in order. `abort` must make the target fail visibly."""

    def write(self, data: bytes) -> Awaitable[None]: ...

    def close(self) -> Awaitable[None]: ...

    def abort(self, message: str) -> Awaitable[None]: ...


@dataclass(frozen=True)
class DownloadPlan:
    """One download: its file name, MIME type, exact size if known, and the zip member names."""

    name: str
    content_type: str
    size: int | None
    is_zip: bool
    file_names: tuple[str, ...]  # zip member names (or the one file's name), in manifest order
    dir_names: tuple[str, ...]  # zip directory members, each ending in "/"

    def headers(self) -> dict[str, str]:
        """Response headers for the service worker."""
        headers = {
            "Content-Type": self.content_type,
            "Content-Disposition": content_disposition(self.name),
        }
        if self.size is not None:
            headers["Content-Length"] = str(self.size)
        return headers


def plan_download(manifest: Manifest, room: str) -> DownloadPlan:
    """One file stays itself; several files or any folder become one zip. Raises UnsafePathError."""
    file_paths, dir_paths = manifest.safe_paths()
    files = tuple("/".join(parts) for parts in file_paths)
    dirs = tuple("/".join(parts) + "/" for parts in dir_paths)
    if len(files) == 1 and not dirs:
        name = file_paths[0][-1]
        return DownloadPlan(name, FILE_TYPE, manifest.files[0].size, False, (name,), ())
    tops = {parts[0] for parts in (*file_paths, *dir_paths)}
    # A single folder sent on its own keeps its name; anything else is named after the room.
    single_folder = len(tops) == 1 and (dirs or any(len(p) > 1 for p in file_paths))
    name = f"{next(iter(tops))}.zip" if single_folder else f"hushdrop-{room}.zip"
    return DownloadPlan(name, ZIP_TYPE, None, True, files, dirs)


def content_disposition(name: str) -> str:
    """`attachment` with an ASCII fallback and the exact UTF-8 name (RFC 6266, RFC 8187)."""
    fallback = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\%' else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def zip_date_time(mtime: int) -> tuple[int, int, int, int, int, int]:
    """The member timestamp: local time, as unzip tools expect, clamped to the DOS range."""
    return time.localtime(min(max(mtime, _ZIP_EPOCH), _ZIP_END))[:6]


class SingleFileWriter:
    """One file: its verified plaintext goes straight to the sink."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink

    def start(self, index: int) -> None:
        pass

    async def write(self, index: int, data: bytes) -> None:
        await self._sink.write(data)

    def complete(self, index: int) -> None:
        pass

    async def flush(self) -> None:
        pass

    async def finish(self) -> None:
        await self._sink.close()

    async def abort(self, message: str) -> None:
        await self._sink.abort(message)


class _Collector:
    """The unseekable "file" zipfile writes to: it only appends. No tell()/seek(), on purpose:
    zipfile then wraps it in its own position counter and writes data descriptors."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


class ZipWriter:
    """Several files as one zip, streamed: members are written as their data arrives."""

    def __init__(self, sink: Sink, plan: DownloadPlan, manifest: Manifest) -> None:
        self._sink = sink
        self._plan = plan
        self._manifest = manifest
        self._out = _Collector()
        self._zip = zipfile.ZipFile(self._out, "w", zipfile.ZIP_STORED, allowZip64=True)
        self._member = None
        self._index: int | None = None
        for name, entry in zip(plan.dir_names, manifest.dirs, strict=True):
            info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
            info.external_attr = ((0o40000 | (entry.mode & 0o777)) << 16) | 0x10  # MS-DOS dir bit
            info.CRC = info.compress_size = info.file_size = 0
            self._zip.mkdir(info)

    def start(self, index: int) -> None:
        entry = self._manifest.files[index]
        info = zipfile.ZipInfo(self._plan.file_names[index], zip_date_time(entry.mtime))
        info.compress_type = zipfile.ZIP_STORED
        info.external_attr = (0o100000 | (entry.mode & 0o777)) << 16
        # Announced up front so zipfile picks ZIP64 for a member that needs it: over an
        # unseekable stream it cannot go back and fix the header afterwards. A stream's size
        # is unknown (PROTOCOL.md §7.2): ZIP64 whatever it turns out to be.
        info.file_size = entry.size or 0
        self._member = self._zip.open(info, "w", force_zip64=entry.size is None)
        self._index = index

    async def write(self, index: int, data: bytes) -> None:
        if self._member is None or index != self._index:
            self.start(index)
        self._member.write(data)

    def complete(self, index: int) -> None:
        if self._member is None or index != self._index:
            self.start(index)  # an empty file got no data
        self._member.close()
        self._member = None
        self._index = None

    async def flush(self) -> None:
        """Hand what the last message produced to the sink (one chunk per message)."""
        data = self._out.take()
        if data:
            await self._sink.write(data)

    async def finish(self) -> None:
        self._zip.close()  # writes the central directory
        await self.flush()
        await self._sink.close()

    async def abort(self, message: str) -> None:
        await self._sink.abort(message)


def make_writer(sink: Sink, plan: DownloadPlan, manifest: Manifest) -> SingleFileWriter | ZipWriter:
    return ZipWriter(sink, plan, manifest) if plan.is_zip else SingleFileWriter(sink)
