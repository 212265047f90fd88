"""Each received file's SHA-256, computed on a thread of its own (PROTOCOL.md §7.3).

The receiver keeps a running hash of every file (a resume inside it needs one, and `--json`
reports it), but nothing waits for it while a file arrives: the plaintext buffers go to a worker
thread and the event loop carries on decrypting and writing. hashlib releases the GIL while it
hashes a large buffer, so on two cores hashing no longer adds to the receiver's critical path.
Memory stays bounded: `update()` blocks while more than `limit` bytes wait to be hashed.
"""

from __future__ import annotations

import collections
import hashlib
import threading

QUEUE_LIMIT = 8 * 1024 * 1024  # bytes waiting for the worker, at most
INLINE_BELOW = 64 * 1024  # smaller buffers are hashed at once, when nothing of theirs waits
IDLE_EXIT = 5.0  # seconds without work after which the worker thread ends


class HashWorker:
    """One thread hashing, in order, for every file of a transfer."""

    def __init__(self, limit: int = QUEUE_LIMIT) -> None:
        self._limit = limit
        self._queue: collections.deque[tuple[QueuedSha256, bytes]] = collections.deque()
        self._queued = 0
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def sha256(self, prefix: hashlib._Hash | None = None) -> QueuedSha256:
        """A running SHA-256 hashed by this worker; `prefix`: continue that hash."""
        return QueuedSha256(self, prefix or hashlib.sha256())

    def _submit(self, owner: QueuedSha256, data: bytes) -> None:
        with self._changed:
            while self._queued and self._queued + len(data) > self._limit:
                self._changed.wait()
            self._queue.append((owner, data))
            self._queued += len(data)
            owner.pending += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="hushdrop-hash", daemon=True)
                self._thread.start()
            self._changed.notify_all()

    def _wait(self, owner: QueuedSha256) -> None:
        with self._changed:
            while owner.pending:
                self._changed.wait()

    def _run(self) -> None:
        while True:
            with self._changed:
                if not self._queue and not self._changed.wait_for(lambda: self._queue, IDLE_EXIT):
                    self._thread = None
                    return
                owner, data = self._queue.popleft()
            owner.hash.update(data)  # releases the GIL for buffers over 2 KiB
            with self._changed:
                self._queued -= len(data)
                owner.pending -= 1
                self._changed.notify_all()


class QueuedSha256:
    """A SHA-256 whose `update()` returns at once; `digest()` waits for what is queued."""

    def __init__(self, worker: HashWorker, initial: hashlib._Hash) -> None:
        self._worker = worker
        self.hash = initial
        self.pending = 0  # buffers queued and not yet hashed (guarded by the worker's lock)

    def update(self, data: bytes, /) -> None:
        """`data` must not change afterwards (the receiver's plaintext buffers do not)."""
        if len(data) < INLINE_BELOW and not self.pending:
            self.hash.update(data)
        else:
            self._worker._submit(self, data)

    def digest(self) -> bytes:
        self._worker._wait(self)
        return self.hash.digest()

    def hexdigest(self) -> str:
        self._worker._wait(self)
        return self.hash.hexdigest()
