"""Memory-allocator settings for high-throughput transfers (CPython on glibc only).

Every 1 MiB DATA message passes through several buffers of 256 KiB to 1 MiB: socket reads,
websockets' frame assembly, AES-GCM output. With glibc's defaults such blocks are mmap()ed and
unmapped again, or the heap top is trimmed and regrown, so each MiB costs hundreds of page faults
(bench/transfer.py measured ~700,000 minor faults per GiB in the sender). Keeping them in the heap
lets the memory be reused: CPU per GiB fell by a quarter across sender, relay and receiver, for a
few MB more peak RSS. Memory stays bounded: the heap never holds more than the peak working set.
A long-running process keeps that peak after the load is gone: the relay gives it back with
malloc_trim once its pairs have ended (hushdrop_relay.forward.HeapRelease).
"""

from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 128 * 1024 * 1024


def tune_allocator() -> bool:
    """Apply the settings if this process runs on glibc; return whether they were applied."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # musl and others have no mallopt: left as they are
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
