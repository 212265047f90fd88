"""The CLI receiver's SHA-256 on a worker thread (cli/hashing.py, PROTOCOL.md §7.3): the same
digests as hashlib, in order, for several files at once, with bounded memory."""

from __future__ import annotations

import hashlib
import os
import threading

from hushdrop.cli.hashing import INLINE_BELOW, HashWorker


def test_digests_equal_hashlibs_for_small_and_large_pieces_in_order():
    worker = HashWorker()
    pieces = [os.urandom(n) for n in (1, INLINE_BELOW - 1, 3 << 20, 10, INLINE_BELOW, 1 << 20, 7)]
    queued = worker.sha256()
    for piece in pieces:
        queued.update(piece)
    assert queued.hexdigest() == hashlib.sha256(b"".join(pieces)).hexdigest()


def test_files_hashed_at_once_keep_their_own_digests():
    worker = HashWorker()
    a, b = worker.sha256(), worker.sha256()
    data_a, data_b = (
        [os.urandom(1 << 20) for _ in range(4)],
        [os.urandom(1 << 19) for _ in range(4)],
    )
    for piece_a, piece_b in zip(data_a, data_b, strict=True):
        a.update(piece_a)
        b.update(piece_b)
    assert a.digest() == hashlib.sha256(b"".join(data_a)).digest()
    assert b.digest() == hashlib.sha256(b"".join(data_b)).digest()


def test_a_hash_continues_from_a_prefix():
    prefix = os.urandom(5000)
    queued = HashWorker().sha256(hashlib.sha256(prefix))
    rest = os.urandom(2 << 20)
    queued.update(rest)
    assert queued.digest() == hashlib.sha256(prefix + rest).digest()


def test_update_waits_while_the_queue_holds_its_limit():
    worker = HashWorker(limit=2 << 20)
    queued = worker.sha256()
    most = 0

    def watch(stop: threading.Event) -> None:
        nonlocal most
        while not stop.is_set():
            most = max(most, worker._queued)

    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(stop,))
    watcher.start()
    data = [os.urandom(1 << 20) for _ in range(32)]
    for piece in data:
        queued.update(piece)
    digest = queued.digest()
    stop.set()
    watcher.join()
    assert digest == hashlib.sha256(b"".join(data)).digest()
    assert most <= 2 << 20
