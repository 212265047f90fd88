"""The sender's files in the page: the user's selection (kept by app.js) as a Manifest, and reads.

Mirrors `hushdrop.cli.files.OutgoingFiles`: it serves exactly the byte ranges the sender session
asks for (`next_read()`). The page hands the chosen File objects to the engine worker, whose
engine-worker.js reads them with `File.slice().arrayBuffer()` in blocks of a few MiB, read ahead
while Python encrypts, never a whole large file. Pyodide only.
"""

from __future__ import annotations

import json

import js
from pyodide.ffi import JsException

from ..protocol.manifest import DirEntry, FileEntry, Manifest, text_bytes
from .errors import PageError
from .messages import t

FILE_MODE = 0o644  # browsers do not expose permissions
DIR_MODE = 0o755


class LocalError(PageError):
    """A problem on this side (a file that cannot be read, a download the browser stopped).

    Like the CLI's LocalFileError: the driver tells the peer why with `session.cancel`, in the
    words this page shows (`str()`: the message in the page's language).
    """

    kind = "local"

    def __str__(self) -> str:
        return str(js.hushdrop.format(self.message.key, self.message.args_json()))


def manifest_from_selection(data: dict, text: str | None = None) -> Manifest:
    """The Manifest for app.js's snapshot: `{"files": [{path, size, mtime}], "dirs": [path]}`,
    announcing the text to send with them, if any (its size; the text leads the data stream)."""
    files = tuple(
        FileEntry(f["path"], int(f["size"]), FILE_MODE, int(f.get("mtime") or 0))
        for f in data["files"]
    )
    dirs = tuple(DirEntry(path, DIR_MODE) for path in data["dirs"])
    return Manifest(files, dirs, None if text is None else len(text_bytes(text)))


class OutgoingSelection:
    """The files being sent, frozen when the link was created (later picks do not change it)."""

    def __init__(self, manifest: Manifest, reader: int = 0, text: str | None = None) -> None:
        self.manifest = manifest
        self.text = text  # what the manifest announces (PROTOCOL.md §6.1.1), or None
        # engine-worker.js keeps read-ahead per reader: one per receiver of a link (§3.1).
        self._reader = reader

    def reader(self, number: int) -> OutgoingSelection:
        """The same files read at their own pace, for receiver ``number`` of a link."""
        return OutgoingSelection(self.manifest, number, self.text)

    def close(self) -> None:
        """Let engine-worker.js drop this reader's read-ahead."""
        js.hushdrop.dropReader(self._reader)

    @classmethod
    def snapshot(cls, selection: str | None, text: str = "") -> OutgoingSelection:
        """The chosen files (app.js's snapshot, JSON; None: none chosen), and `text` (the "Text
        to send" box) unless it is only white space (PROTOCOL.md §6.1.1: a text alone, or with
        the files). The files the page handed over with them are the ones read from now on."""
        wanted = text if text.strip() else None
        if selection is None and wanted is None:
            raise LocalError(t("alert.no-files"))
        data = json.loads(selection) if selection is not None else {"files": [], "dirs": []}
        manifest = manifest_from_selection(data, wanted)
        manifest.encode()  # within the protocol's limits, checked before a link is made
        js.hushdrop.takeFiles()
        return cls(manifest, text=wanted)

    async def read(self, index: int, offset: int, length: int) -> bytes:
        try:
            # Usually already read ahead: taken synchronously, it needs no trip through the
            # event loop.
            chunk = js.hushdrop.readNow(index, offset, length, self._reader)
            if chunk is None:
                chunk = await js.hushdrop.read(index, offset, length, self._reader)
        except JsException as exc:
            message = getattr(exc, "message", None)
            reason = message if isinstance(message, str) else str(exc)  # the browser's words
            path = self.manifest.files[index].path
            raise LocalError(t("error.read-file", path=path, reason=reason)) from exc
        data = chunk.to_bytes()
        if len(data) != length:
            path = self.manifest.files[index].path
            raise LocalError(t("error.file-changed", path=path))
        return data
