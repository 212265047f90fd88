"""HKDF with HMAC-SHA-256 (RFC 5869), computed through the crypto backend.

This module owns Hushdrop's only key-derivation function. Every HMAC goes through
`backend.hmac_sha256`, so the same code derives the same keys on CPython (pyca) and in the browser
(WebCrypto); nothing here computes HMAC itself.
"""

from __future__ import annotations

from hushdrop.crypto.backend import CryptoBackend

HASH_SIZE = 32
# RFC 5869 section 2.3: the output is limited to 255 blocks because the block counter is one octet.
MAX_OUTPUT_SIZE = 255 * HASH_SIZE


async def hkdf_extract(backend: CryptoBackend, salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract(salt, IKM) -> PRK (32 bytes), RFC 5869 section 2.2.

    An empty salt is replaced by HashLen zero octets, as the RFC specifies for "not provided".
    """
    # HMAC pads short keys with zeros anyway, but spelling out the RFC's rule keeps the intent
    # visible and does not rely on that detail of the backend.
    if not salt:
        salt = bytes(HASH_SIZE)
    return bytes(await backend.hmac_sha256(bytes(salt), bytes(ikm)))


async def hkdf_expand(backend: CryptoBackend, prk: bytes, info: bytes, length: int) -> bytes:
    """HKDF-Expand(PRK, info, L) -> OKM of `length` bytes, RFC 5869 section 2.3.

    The PRK length is not checked: C2SP chunked encryption deliberately uses a 16- or 32-byte input
    key directly as the PRK (HKDF-Expand without Extract, see its rationale section).
    """
    if not 0 <= length <= MAX_OUTPUT_SIZE:
        raise ValueError(f"HKDF-SHA-256 output length must be in [0, {MAX_OUTPUT_SIZE}]")
    prk = bytes(prk)
    info = bytes(info)
    okm = bytearray()
    block = b""
    counter = 1
    while len(okm) < length:
        # T(i) = HMAC(PRK, T(i-1) || info || i), with T(0) empty.
        block = bytes(await backend.hmac_sha256(prk, block + info + bytes([counter])))
        okm += block
        counter += 1
    return bytes(okm[:length])


async def hkdf(backend: CryptoBackend, salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    """Full HKDF: Expand(Extract(salt, IKM), info, length)."""
    prk = await hkdf_extract(backend, salt, ikm)
    return await hkdf_expand(backend, prk, info, length)
