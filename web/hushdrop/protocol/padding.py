"""Padding that hides sizes from the relay (PROTOCOL.md §6, §7.1): PADMÉ.

PADMÉ rounds a length L up so that only its top ⌊log₂ E⌋ + 1 bits remain free (E = ⌊log₂ L⌋):
a padded length reveals O(log log L) bits of L, at most 12% overhead (Nikitin, Barman, Lueks,
Underwood, Hubaux, Ford: "Reducing Metadata Leakage from Encrypted Files and Communication with
PURBs", PoPETs 2019(4), §4).
"""

from __future__ import annotations

from .constants import FILE_DIGEST_SIZE, MAX_MANIFEST_BYTES, SEALED_PAD
from .manifest import Manifest


def padme(length: int) -> int:
    """The PADMÉ length for `length` (PURBs paper, Algorithm 1)."""
    if length < 2:
        return length
    exponent = length.bit_length() - 1  # E = ⌊log₂ L⌋
    size_bits = exponent.bit_length()  # S = ⌊log₂ E⌋ + 1
    mask = (1 << (exponent - size_bits)) - 1
    return (length + mask) & ~mask


_ZERO_BLOCK = bytes(64 * 1024)


def all_zeros(data: bytes | bytearray | memoryview) -> bool:
    """Whether `data` is only zero bytes (a received padding check).

    Compares against a block of zeros with `bytes.startswith`, a memcmp: `any(data)` walks the
    bytes one Python int at a time, which for a large file's padding (up to 1/2⁵ of it at
    1 GiB) cost the receiver about a CPU-second per GiB.
    """
    view = memoryview(data).cast("B")
    step = len(_ZERO_BLOCK)
    return all(
        _ZERO_BLOCK.startswith(view[start : start + step]) for start in range(0, len(view), step)
    )


def sealed_length(inner: int) -> int:
    """Length of a SEALED message's padded inner plaintext: PADMÉ, then a multiple of 256."""
    return -(-padme(max(inner, 1)) // SEALED_PAD) * SEALED_PAD


def max_sealed_message() -> int:
    """The largest SEALED message (type byte, ciphertext, tag) the protocol allows: a manifest
    of MAX_MANIFEST_BYTES, padded (§6)."""
    return 1 + sealed_length(5 + MAX_MANIFEST_BYTES) + 16


def stream_padding(manifest: Manifest, stream_framed: int | None = None) -> int:
    """Zero bytes that end the last entry's plaintext (§7.1): they bring the sum of every
    entry's plaintext (content and digest; the text is an entry like a file) up to its PADMÉ
    length. 0 without entries.

    When the last file is a stream (§7.2), its part of the sum is `stream_framed`: its plaintext
    before the padding (segments, end record, digest), known only once it ended."""
    sizes = manifest.entry_sizes
    if not sizes:
        return 0
    plaintext = sum(size + FILE_DIGEST_SIZE for size in sizes if size is not None)
    if manifest.has_stream:
        if stream_framed is None:
            raise ValueError("a stream's padding is known only at its end")
        plaintext += stream_framed
    return padme(plaintext) - plaintext
