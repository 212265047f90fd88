"""Standard input as the data of `hushdrop send -`, read without holding up the event loop.

A producer may keep its pipe open and write nothing for hours (`tail -f`), and a terminal waits
for its user. Reading blocks, so it happens on a thread of its own, one read at a time, into one
reused buffer (memory stays at one read, whatever the input). The event loop meanwhile handles
the receiver's messages (its CANCEL, a lost connection) and Ctrl-C; a transfer that ends that way
leaves the thread blocked in its read. It is a daemon thread reading the unbuffered file, so it
holds no lock the interpreter needs at exit, and it is never waited for.
"""

from __future__ import annotations

import asyncio
import io
import queue
import select
import threading
from typing import BinaryIO


class StandardInput:
    """One input stream read a block at a time by `read()`, on a background thread."""

    def __init__(self, stream: BinaryIO) -> None:
        # The unbuffered file when there is one: a buffered reader's lock would be held by a
        # thread blocked in it, and interpreter shutdown would wait for that lock.
        self._source = getattr(stream, "raw", stream)
        self._buffer = bytearray()
        self._requests: queue.SimpleQueue[tuple[asyncio.AbstractEventLoop, asyncio.Future, int]]
        self._requests = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pending: asyncio.Future[int] | None = None
        # Set by the reading thread once a read returned nothing. A terminal's end of input
        # (Ctrl-D) is not sticky: reading on would wait for a second Ctrl-D, so nothing is
        # read after the first.
        self._ended = False

    async def read(self, length: int) -> memoryview:
        """Up to `length` bytes: what one read returns (a pipe gives what was written so far,
        so a quiet producer's lines are not held back until `length` fill), more while more is
        there at once; none: the input ended. In a buffer that the next call reuses; raises
        the OSError reading gave. A call that is cancelled while waiting does not lose what is
        being read: the next call (for the same length) returns it."""
        if self._pending is None:
            if len(self._buffer) < length:
                self._buffer = bytearray(length)
            loop = asyncio.get_running_loop()
            self._pending = loop.create_future()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="hushdrop-stdin", daemon=True
                )
                self._thread.start()
            self._requests.put((loop, self._pending, length))
        # shield: cancelling the caller must leave the read itself alone (the thread cannot
        # be interrupted, and its bytes must not be lost).
        filled = await asyncio.shield(self._pending)
        self._pending = None
        return memoryview(self._buffer)[:filled]

    def _run(self) -> None:
        while True:
            loop, future, length = self._requests.get()
            view = memoryview(self._buffer)[:length]
            filled = 0
            error: BaseException | None = None
            try:
                while filled < length and not self._ended:
                    if filled and not _readable(self._source):
                        break  # what a quiet producer wrote goes now (PROTOCOL.md §7.2)
                    got = self._source.readinto(view[filled:])
                    if not got:
                        self._ended = True
                        break
                    filled += got
            except OSError as exc:
                error = exc
            except ValueError:  # closed under us (the process is exiting)
                return
            del view
            try:
                loop.call_soon_threadsafe(_settle, future, filled, error)
            except RuntimeError:  # the event loop is gone: nobody wants the bytes any more
                return


def _readable(source: BinaryIO) -> bool:
    """Whether a read would return at once (a fast producer's pipe fills whole blocks); where
    that cannot be told (no file descriptor, or one select() does not take), no."""
    try:
        return bool(select.select([source], [], [], 0)[0])
    except (OSError, ValueError, TypeError, io.UnsupportedOperation):
        return False


def _settle(future: asyncio.Future[int], filled: int, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(filled)
