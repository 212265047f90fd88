"""A file whose size is known only at its end (PROTOCOL.md §7.2): its framed plaintext.

The sender of a stream (standard input) cannot say its length up front, so the stream's C2SP
plaintext delimits itself, the way HTTP/1.1's chunked transfer coding does (RFC 9112 §7.1), in
binary: segments `u32 length || bytes` (length ≥ 1), then the end record `u32 0 || u64 total`,
then the trailer (§7.3) and the stream padding (§7.1). Everything is inside the authenticated
ciphertext, so the end and the true length are authenticated as the content is.

A sender whose input went quiet sends what it read at once: a flush record (`u32 0xFFFFFFFF`
and zeros up to the end of the current 16 KiB chunk) completes the chunk, so the receiver can
decrypt it and hand its content on without waiting for more.
"""

from __future__ import annotations

from collections.abc import Callable

from ..crypto.chunked import CHUNK_SIZE
from .constants import FILE_DIGEST_SIZE, SEGMENT_HEADER_SIZE, STREAM_END_SIZE, STREAM_FLUSH
from .errors import ProtocolError
from .padding import all_zeros

MAX_SEGMENT = STREAM_FLUSH - 1
_FLUSH_MARK = STREAM_FLUSH.to_bytes(SEGMENT_HEADER_SIZE, "big")


def segment_header(length: int) -> bytes:
    """The `u32 length` in front of `length` (1 … 2³²−1) content bytes."""
    if not 0 < length <= MAX_SEGMENT:
        raise ValueError("a segment holds 1 to 2^32 - 2 bytes")
    return length.to_bytes(SEGMENT_HEADER_SIZE, "big")


def flush_record(framed: int) -> bytes:
    """The flush record after `framed` plaintext bytes of the stream's ciphertext: the marker,
    then zeros up to the end of the chunk it ends in (none when the marker ends a chunk)."""
    return _FLUSH_MARK + bytes(-(framed + SEGMENT_HEADER_SIZE) % CHUNK_SIZE)


def end_record(total: int) -> bytes:
    """`u32 0 || u64 total`: the stream ended after `total` content bytes (from its start)."""
    return bytes(SEGMENT_HEADER_SIZE) + total.to_bytes(STREAM_END_SIZE - SEGMENT_HEADER_SIZE, "big")


class StreamReader:
    """Splits one ciphertext's worth of a stream's plaintext into content, end, digest, padding,
    dropping flush records.

    `written` is how much of the stream the receiver already has (0, or where a resumed
    ciphertext starts); `padding_for(framed)` is the stream padding that follows when `framed`
    plaintext bytes (segments, end record, digest) precede it. Memory: at most 32 bytes.
    """

    def __init__(self, written: int, padding_for: Callable[[int], int]) -> None:
        self.total = written  # content bytes of the whole stream seen so far
        self._padding_for = padding_for
        self._state = "header"
        self._field = bytearray()  # a header, end record or digest being collected
        self._segment_left = 0
        self._framed = 0  # plaintext bytes before the padding, in this ciphertext
        self.padding: int | None = None  # known once the digest is in
        self._padded = 0
        self.digest: bytes | None = None
        self.flushes = 0  # flush records read to their end: the sender's input paused there

    def feed(self, plaintext: memoryview) -> list[memoryview]:
        """The content pieces in `plaintext`, in order; raises ProtocolError on bad framing."""
        content: list[memoryview] = []
        while plaintext:
            if self._state == "content":
                take = min(self._segment_left, len(plaintext))
                content.append(plaintext[:take])
                self.total += take
                self._framed += take
                self._segment_left -= take
                plaintext = plaintext[take:]
                if not self._segment_left:
                    self._state = "header"
            elif self._state == "flush":
                take = min(self._segment_left, len(plaintext))
                if not all_zeros(plaintext[:take]):  # authenticated: only a broken sender
                    raise ProtocolError("A flush record in the stream is not followed by zeros.")
                self._framed += take
                self._segment_left -= take
                plaintext = plaintext[take:]
                if not self._segment_left:
                    self._state = "header"
                    self.flushes += 1
            elif self._state == "padding":
                if not all_zeros(plaintext):  # authenticated, so only a broken sender gets here
                    raise ProtocolError("The padding after the stream is not zeros.")
                self._padded += len(plaintext)
                if self._padded > self.padding:
                    raise ProtocolError("The stream's padding is longer than it may be.")
                plaintext = plaintext[len(plaintext) :]
            else:
                plaintext = self._collect(plaintext)
        return content

    def _collect(self, plaintext: memoryview) -> memoryview:
        size = {"header": SEGMENT_HEADER_SIZE, "end": STREAM_END_SIZE - SEGMENT_HEADER_SIZE}.get(
            self._state, FILE_DIGEST_SIZE
        )
        take = size - len(self._field)
        self._field += plaintext[:take]
        if len(self._field) < size:
            return plaintext[take:]
        value, self._field = bytes(self._field), bytearray()
        self._framed += size
        if self._state == "header":
            self._segment_left = int.from_bytes(value, "big")
            if self._segment_left == STREAM_FLUSH:  # zeros to the end of this chunk
                self._segment_left = -self._framed % CHUNK_SIZE
                self._state = "flush" if self._segment_left else "header"
                self.flushes += not self._segment_left
            else:
                self._state = "content" if self._segment_left else "end"
        elif self._state == "end":
            if int.from_bytes(value, "big") != self.total:
                raise ProtocolError("The stream's announced length does not match its data.")
            self._state = "digest"
        else:
            self.digest = value
            self.padding = self._padding_for(self._framed)
            self._state = "padding"
        return plaintext[take:]

    def finish(self) -> None:
        """The ciphertext ended: everything up to the last padding byte must have arrived."""
        if self._state != "padding" or self._padded != self.padding:
            raise ProtocolError("The stream ended before its end record, digest and padding.")
