"""Small real file systems for tests: a tmpfs of a given size (a disk that fills up) and a
read-only one, mounted by the test (root only) and unmounted when it ends."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def _mount(target: Path, options: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system for this test needs root")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "hushdrop-test", str(target)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")


@contextlib.contextmanager
def tmpfs(size: int, *, read_only: bool = False) -> Iterator[Path]:
    """A fresh tmpfs of `size` bytes (world-writable, sticky, like /tmp)."""
    with tempfile.TemporaryDirectory(prefix="hushdrop-disk-") as where:
        target = Path(where)
        _mount(target, f"size={size},mode=1777")
        try:
            if read_only:
                subprocess.run(["mount", "-o", "remount,ro", str(target)], check=True)
            yield target
        finally:
            subprocess.run(["umount", "-l", str(target)], check=False)
