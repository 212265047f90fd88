"""A server process a test starts and must stop: SIGTERM, then SIGKILL after 10 s; usable as a
context manager."""

from __future__ import annotations

import signal
import subprocess
from types import TracebackType
from typing import Self


class ServerProcess:
    """Base of the deployment tests' servers; subclasses set `self.proc`."""

    proc: subprocess.Popen

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
