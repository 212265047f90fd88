"""Crossings between the Python drivers and engine-worker.js: download sinks and JS errors.

`JsSink` adapts a download object from engine-worker.js (a service-worker stream whose port the
page handed over, a File System Access writable, or a Blob saved at the end) to the
`download.Sink` protocol. The target reads each Python buffer in place and copies its bytes out
before `write` returns to Python (no JavaScript copy is made here first); awaiting the target
when it says so brings the browser's backpressure to the receive loop. Pyodide only.
"""

from __future__ import annotations

import contextlib

from pyodide.ffi import JsException

from .files import LocalError
from .messages import t


def js_error_message(exc: BaseException) -> str:
    """The JS Error's own message, without Pyodide's `Error:` prefix when possible."""
    message = getattr(exc, "message", None)
    if isinstance(message, str) and message:
        return message
    return str(exc)


class JsSink:
    """A download target in the browser. Errors become LocalError (the peer is then told)."""

    def __init__(self, target) -> None:
        self._target = target

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        try:
            # True: handed over already (the download had asked for more), with no await, which
            # costs a trip through the browser's task queue; else a promise to await.
            handed = self._target.write(data)
            if handed is not True:
                await handed
        except JsException as exc:
            raise LocalError(t("error.detail", detail=js_error_message(exc))) from exc

    async def close(self) -> None:
        try:
            await self._target.close()
        except JsException as exc:
            raise LocalError(t("error.detail", detail=js_error_message(exc))) from exc

    async def abort(self, message: str) -> None:
        with contextlib.suppress(JsException):
            await self._target.abort(message)
