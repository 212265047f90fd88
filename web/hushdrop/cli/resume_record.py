"""The receiver's resume record (PROTOCOL.md §8.3): what a restarted `hushdrop receive` needs.

It lives in the output folder under a random name, `.hushdrop-<transfer>.resume` (the name of the
transfer's temporary files, nothing derived from the code), and holds a tag that recognises the
code, the session's resume secret and
data key, the manifest (which announces a text only by its size; the text is printed and never
written to disk), the chosen file names, the name of the transfer's temporary files, whether the
text was shown and how many files are saved. The first line (JSON) is written once, atomically;
the text once shown appends a line `text`, and each saved file one line with the new count, so
the cost per file does not grow with the file list. It is removed when the transfer ends.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..protocol.codes import Code
from ..protocol.constants import RESUME_RECORD_LABEL
from ..protocol.errors import HushdropError
from ..protocol.keys import SessionKeys
from ..protocol.manifest import Manifest

VERSION = 5  # 5: the text is the data stream's first entry (PROTOCOL.md version 4)
TEXT_SHOWN = "text"


RECORD_GLOB = ".hushdrop-*.resume"


def record_path(output: Path, transfer: str) -> Path:
    return output / f".hushdrop-{transfer}.resume"


def code_tag(code: Code) -> str:
    """Recognises the code's record when the same command runs again. Stored inside the record,
    never in a name: whoever can read the record holds the session keys anyway."""
    return hashlib.sha256(RESUME_RECORD_LABEL + code.room.encode() + code.secret).hexdigest()


def find_record(output: Path, code: Code) -> ResumeRecord | None:
    """The record in `output` left by an interrupted transfer with `code`, if there is one."""
    tag = code_tag(code)
    try:
        candidates = sorted(output.glob(RECORD_GLOB))
    except OSError:
        return None
    for path in candidates:
        record = ResumeRecord.load(path)
        if record is not None and hmac.compare_digest(record.code_tag, tag):
            return record
    return None


@dataclass
class ResumeRecord:
    path: Path
    keys: SessionKeys
    manifest: Manifest
    targets: list[Path]  # relative to the output directory
    transfer: str  # names the temporary files (IncomingFiles.temporary)
    code_tag: str  # `code_tag(code)`
    saved: int = 0
    text_shown: bool = False  # the manifest's text (if any) was printed: not again after a restart

    def save(self) -> None:
        document = {
            "version": VERSION,
            "resume": _b64(self.keys.resume),
            "data": _b64(self.keys.data),
            # A restarted receiver goes direct again when it can (§8.5): K_direct authenticates
            # that connection.
            "direct": _b64(self.keys.direct),
            "sas": self.keys.sas,
            "manifest": self.manifest.encode().decode("utf-8"),
            "targets": [target.as_posix() for target in self.targets],
            "transfer": self.transfer,
            "code": self.code_tag,
        }
        temporary = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)

    def mark_saved(self, count: int) -> None:
        """`count` files are saved under their final names: append that, durably."""
        self.saved = count
        self._append(str(count))

    def mark_text_shown(self) -> None:
        """The text was printed: a restarted receiver does not ask for it again (§8.3)."""
        self.text_shown = True
        self._append(TEXT_SHOWN)

    def _append(self, line: str) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(f"{line}\n")
            handle.flush()
            os.fsync(handle.fileno())

    def delete(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    @classmethod
    def load(cls, path: Path) -> ResumeRecord | None:
        """The record at `path`, or None when there is none or it is not usable."""
        try:
            header, *counts = path.read_text(encoding="utf-8").split("\n")
            document = json.loads(header)
            if document.get("version") != VERSION:
                return None
            keys = SessionKeys(
                control_s2r=b"",
                control_r2s=b"",
                data=base64.b64decode(document["data"]),
                sas=str(document["sas"]),
                resume=base64.b64decode(document["resume"]),
                # A record without one (an older CLI's) resumes through the relay only.
                direct=base64.b64decode(document.get("direct", "")),
            )
            manifest = Manifest.decode(document["manifest"].encode("utf-8"))
            targets = [Path(target) for target in document["targets"]]
            transfer = str(document["transfer"])
            tag = str(document["code"])
            # Every complete line after the header is `text` or a count; a crash may leave a
            # partial last one (no newline), which does not count.
            lines = counts[:-1]
            text_shown = TEXT_SHOWN in lines
            numbers = [line for line in lines if line != TEXT_SHOWN]
            saved = int(numbers[-1]) if numbers else 0
        except (OSError, ValueError, KeyError, TypeError, HushdropError):
            return None
        if not 0 <= saved <= len(targets):
            return None
        # The files go where the manifest's sanitised paths say, inside the output folder (§9):
        # a record naming anything else is not one this receiver wrote.
        if targets != [Path(*parts) for parts in manifest.safe_paths()[0]]:
            return None
        if saved and manifest.has_text and not text_shown:
            return None  # files follow the text in the data stream: not what this side wrote
        if not transfer.isalnum() or not transfer.isascii():
            return None
        return cls(path, keys, manifest, targets, transfer, tag, saved, text_shown)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
