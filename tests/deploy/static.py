"""A plain static file server for a built site: `python -m http.server` on 127.0.0.1, port 0.

Stands for any static host (GitHub Pages, a CDN, nginx): it sends the files and no headers of
ours, no CSP among them.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

from tests.deploy.process import ServerProcess

_SERVING = re.compile(rb"port (\d+)")


class StaticServer(ServerProcess):
    def __init__(self, root: Path, port: int = 0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1", str(port)],
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 20
        line = b""
        while not (match := _SERVING.search(line)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"http.server did not start: {line!r}")
            line = self.proc.stdout.readline()
        self.proc.stdout.close()
        self.port = int(match.group(1))
        self.url = f"http://127.0.0.1:{self.port}"
