"""The crypto backend interface: the only way the protocol core reaches cryptographic primitives.

Two implementations exist: `hushdrop.crypto.pyca` (CPython, pyca `cryptography`) and
`hushdrop.crypto.webcrypto` (Pyodide, the browser's WebCrypto). WebCrypto is promise-based, so every
primitive that may touch it is a coroutine; the CPython backend simply returns at once.

Bulk data goes through `seal_many` / `open_many`, which take a whole batch of (nonce, data) pairs
under one key. That lets the browser backend keep many AES-GCM calls in flight at once and keeps
Python<->JS copies out of the per-chunk path.

Hashing (SHA-256 of file contents, SHA-512 inside CPace) uses `hashlib`, which both runtimes
provide and which, unlike WebCrypto's one-shot digest, can hash a stream incrementally. Keyed
hashing goes through the backend: HMAC-SHA-256 for Hushdrop's key schedule (HKDF-SHA-256) and
HMAC-SHA-512 for C2SP chunked encryption's HKDF-Expand-SHA-512 (Cobblestone) and CPace key
confirmation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Generator, Sequence
from typing import Protocol, runtime_checkable

AES_KEY_SIZE = 32
GCM_NONCE_SIZE = 12
GCM_TAG_SIZE = 16
X25519_SIZE = 32


class CryptoError(Exception):
    """Base class for cryptographic failures the protocol reports to the user."""


class AuthenticationError(CryptoError):
    """An AEAD tag did not verify: the data was altered, truncated or reordered, or wrong key."""


class InvalidPointError(CryptoError):
    """An X25519 computation produced the all-zero output (a low-order or invalid peer point)."""


class Ready:
    """An awaitable that already holds its value (a batch that needed no work)."""

    __slots__ = ("value",)

    def __init__(self, value: bytes) -> None:
        self.value = value

    def __await__(self) -> Generator[None, None, bytes]:
        return self.value
        yield  # a generator function, so awaiting it never suspends


@runtime_checkable
class CryptoBackend(Protocol):
    """Primitives the core needs. Implementations must be safe to share within one session."""

    name: str

    def random_bytes(self, n: int) -> bytes:
        """Return `n` bytes from a cryptographically secure generator."""
        ...

    async def x25519(self, scalar: bytes, u: bytes) -> bytes:
        """RFC 7748 X25519(scalar, u). Raises InvalidPointError if the result is all zeros."""
        ...

    async def hmac_sha256(self, key: bytes, data: bytes) -> bytes:
        """HMAC-SHA-256 (RFC 2104); returns the full 32-byte tag. Any key length, including 0."""
        ...

    async def hmac_sha512(self, key: bytes, data: bytes) -> bytes:
        """HMAC-SHA-512 (RFC 2104); returns the full 64-byte tag. Any key length, including 0.

        Used by HKDF-Expand-SHA-512 (C2SP chunked encryption, Cobblestone) and by CPace's explicit
        key confirmation (draft-irtf-cfrg-cpace-21 section 10.4).
        """
        ...

    async def seal(self, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
        """AES-256-GCM encrypt; returns ciphertext || 16-byte tag.

        A 16-byte key selects AES-128-GCM instead; Hushdrop itself always uses 32-byte keys, the
        shorter size exists so published AES-128-GCM test vectors can run against every backend.
        Any other key size raises ValueError.
        """
        ...

    async def open(self, key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes = b"") -> bytes:
        """AES-256-GCM decrypt; raises AuthenticationError on a bad tag.

        Accepts 16-byte (AES-128-GCM) or 32-byte (AES-256-GCM) keys, as `seal` does.
        """
        ...

    def seal_many(self, key: bytes, items: Sequence[tuple[bytes, memoryview]]) -> Awaitable[bytes]:
        """Encrypt each (nonce, plaintext) with AES-256-GCM, empty AAD; await the concatenation.

        A backend that works in the background (WebCrypto) starts the batch when this is called,
        so the caller can do other work (hash the same data) before awaiting the result. The
        items are copied or consumed before this returns; the caller may reuse its buffers.

        Key sizes as for `seal`. The result may be a `bytearray` (a bytes-like object) so that a
        backend can fill one preallocated buffer instead of copying it into `bytes` at the end.
        """
        ...

    def open_many(self, key: bytes, items: Sequence[tuple[bytes, memoryview]]) -> Awaitable[bytes]:
        """Decrypt each (nonce, ciphertext||tag), empty AAD; return the concatenated plaintexts.

        Raises AuthenticationError if any item fails; no plaintext is returned in that case.
        Key sizes and the bytes-like result as for `seal_many`.
        """
        ...
