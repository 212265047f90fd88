"""A stream's framed plaintext (PROTOCOL.md §7.2), split anywhere: the reader finds the same
content, end, digest and padding whatever pieces the chunks cut it into, and refuses any other
framing with a ProtocolError (never another exception)."""

from __future__ import annotations

import hashlib
import itertools

from hushdrop.protocol.errors import ProtocolError
from hushdrop.protocol.stream import (
    StreamReader,
    end_record,
    flush_record,
    segment_header,
)
from hypothesis import given
from hypothesis import strategies as st

segments = st.lists(st.binary(min_size=1, max_size=300), max_size=8)
cuts = st.lists(st.integers(min_value=0, max_value=4000), max_size=12)


def framed(parts: list[bytes], padding: int) -> bytes:
    content = b"".join(parts)
    body = b"".join(segment_header(len(p)) + p for p in parts)
    return body + end_record(len(content)) + hashlib.sha256(content).digest() + bytes(padding)


def pieces(data: bytes, positions: list[int]) -> list[memoryview]:
    points = sorted({min(p, len(data)) for p in positions} | {0, len(data)})
    return [memoryview(data)[a:b] for a, b in itertools.pairwise(points)]


@given(segments, st.integers(min_value=0, max_value=500), cuts)
def test_any_split_of_a_framed_stream_reads_the_same(parts, padding, positions):
    data = framed(parts, padding)
    reader = StreamReader(0, lambda framed_length: padding)
    content = b"".join(
        bytes(piece) for chunk in pieces(data, positions) for piece in reader.feed(chunk)
    )
    reader.finish()
    assert content == b"".join(parts)
    assert reader.digest == hashlib.sha256(content).digest()
    assert reader.total == len(content)


@given(segments, st.lists(st.booleans(), max_size=8), st.integers(min_value=0, max_value=500), cuts)
def test_flush_records_anywhere_read_the_same(parts, flushes, padding, positions):
    body = bytearray()
    for part, flush in zip(parts, flushes + [False] * len(parts), strict=False):
        body += segment_header(len(part)) + part
        if flush:
            body += flush_record(len(body))
    content = b"".join(parts)
    data = bytes(body) + end_record(len(content)) + hashlib.sha256(content).digest()
    reader = StreamReader(0, lambda framed_length: padding)
    read = b"".join(
        bytes(piece)
        for chunk in pieces(data + bytes(padding), positions)
        for piece in reader.feed(chunk)
    )
    reader.finish()
    assert read == content and reader.digest == hashlib.sha256(content).digest()


@given(st.binary(max_size=600), cuts)
def test_arbitrary_plaintext_after_a_flush_marker_is_read_or_refused(data, positions):
    reader = StreamReader(0, lambda framed_length: 16)
    try:
        for chunk in pieces(b"\xff\xff\xff\xff" + data, positions):
            reader.feed(chunk)
        reader.finish()
    except ProtocolError:
        pass


@given(st.binary(max_size=600), cuts)
def test_arbitrary_plaintext_is_read_or_refused_with_a_protocol_error(data, positions):
    reader = StreamReader(0, lambda framed_length: 16)
    try:
        for chunk in pieces(data, positions):
            reader.feed(chunk)
        reader.finish()
    except ProtocolError:
        pass


@given(segments, st.integers(min_value=1, max_value=100))
def test_a_wrong_announced_length_or_extra_padding_is_refused(parts, extra):
    content = b"".join(parts)
    wrong = b"".join(segment_header(len(p)) + p for p in parts) + end_record(len(content) + extra)
    reader = StreamReader(0, lambda framed_length: 0)
    try:
        reader.feed(memoryview(wrong))
        raise AssertionError("a wrong length was accepted")
    except ProtocolError:
        pass
    reader = StreamReader(0, lambda framed_length: 0)
    reader.feed(memoryview(framed(parts, 0)))
    try:
        reader.feed(memoryview(bytes(extra)))
        raise AssertionError("padding beyond its length was accepted")
    except ProtocolError:
        pass
