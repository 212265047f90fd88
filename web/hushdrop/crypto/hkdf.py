"""HKDF (RFC 5869) with HMAC-SHA-256 or HMAC-SHA-512, computed through the crypto backend.

This module owns Hushdrop's only key-derivation function. It is used with two hashes:

- "SHA-256" (the default): Hushdrop's key schedule (PROTOCOL.md §5.3), Extract and Expand.
- "SHA-512": HKDF-Expand inside C2SP chunked encryption as instantiated by Cobblestone
  (`hushdrop.crypto.chunked`, PROTOCOL.md §7).

Every HMAC goes through `backend.hmac_sha256` or `backend.hmac_sha512`, so the same code derives the
same keys on CPython (pyca) and in the browser (WebCrypto); nothing here computes HMAC itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

from hushdrop.crypto.backend import CryptoBackend

HashName = Literal["SHA-256", "SHA-512"]
DEFAULT_HASH: HashName = "SHA-256"
# HashLen of each supported hash: the PRK size and the size of one Expand block T(i).
HASH_SIZES: dict[str, int] = {"SHA-256": 32, "SHA-512": 64}
# RFC 5869 section 2.3: the output is limited to 255 blocks because the block counter is one octet.
MAX_OUTPUT_SIZES: dict[str, int] = {name: 255 * size for name, size in HASH_SIZES.items()}


def _hmac(backend: CryptoBackend, hash: HashName) -> Callable[[bytes, bytes], Awaitable[bytes]]:
    if hash == "SHA-256":
        return backend.hmac_sha256
    if hash == "SHA-512":
        return backend.hmac_sha512
    raise ValueError(f"unsupported HKDF hash {hash!r}; expected one of {sorted(HASH_SIZES)}")


async def hkdf_extract(
    backend: CryptoBackend, salt: bytes, ikm: bytes, *, hash: HashName = DEFAULT_HASH
) -> bytes:
    """HKDF-Extract(salt, IKM) -> PRK (HashLen bytes), RFC 5869 section 2.2.

    An empty salt is replaced by HashLen zero octets, as the RFC specifies for "not provided".
    """
    mac = _hmac(backend, hash)
    # HMAC pads short keys with zeros anyway, but spelling out the RFC's rule keeps the intent
    # visible and does not rely on that detail of the backend.
    if not salt:
        salt = bytes(HASH_SIZES[hash])
    return bytes(await mac(bytes(salt), bytes(ikm)))


async def hkdf_expand(
    backend: CryptoBackend, prk: bytes, info: bytes, length: int, *, hash: HashName = DEFAULT_HASH
) -> bytes:
    """HKDF-Expand(PRK, info, L) -> OKM of `length` bytes, RFC 5869 section 2.3.

    The PRK length is not checked: C2SP chunked encryption deliberately uses a 16- or 32-byte input
    key directly as the PRK (HKDF-Expand without Extract, see its rationale section).
    """
    mac = _hmac(backend, hash)
    limit = MAX_OUTPUT_SIZES[hash]
    if not 0 <= length <= limit:
        raise ValueError(f"HKDF-{hash} output length must be in [0, {limit}]")
    prk = bytes(prk)
    info = bytes(info)
    okm = bytearray()
    block = b""
    counter = 1
    while len(okm) < length:
        # T(i) = HMAC(PRK, T(i-1) || info || i), with T(0) empty.
        block = bytes(await mac(prk, block + info + bytes([counter])))
        okm += block
        counter += 1
    return bytes(okm[:length])


async def hkdf(
    backend: CryptoBackend,
    salt: bytes,
    ikm: bytes,
    info: bytes,
    length: int,
    *,
    hash: HashName = DEFAULT_HASH,
) -> bytes:
    """Full HKDF: Expand(Extract(salt, IKM), info, length), both with the same hash."""
    prk = await hkdf_extract(backend, salt, ikm, hash=hash)
    return await hkdf_expand(backend, prk, info, length, hash=hash)
