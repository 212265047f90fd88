"""The CPython crypto backend, built on pyca `cryptography`.

This module owns the CPython implementation of `hushdrop.crypto.backend.CryptoBackend`: X25519,
HMAC-SHA-256 and HMAC-SHA-512, AES-GCM (single and batched) and the CSPRNG. It is the only crypto
module that may import `cryptography`; it never runs in Pyodide. Every coroutine returns without
awaiting anything, because the underlying calls are synchronous.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hushdrop.crypto.backend import (
    GCM_NONCE_SIZE,
    GCM_TAG_SIZE,
    X25519_SIZE,
    AuthenticationError,
    InvalidPointError,
)

# AES-256-GCM for Hushdrop itself; AES-128-GCM only so published 128-bit vectors can run.
_AES_GCM_KEY_SIZES = (16, 32)


class PycaBackend:
    """CryptoBackend on pyca `cryptography` (OpenSSL/AWS-LC underneath)."""

    name = "pyca"

    def __init__(self) -> None:
        # One-entry cache of the last AESGCM object: a transfer seals or opens thousands of
        # batches under one key, and this saves re-validating and copying the key per batch while
        # keeping at most one key alive in the cache.
        self._cached_key: bytes | None = None
        self._cached_aead: AESGCM | None = None

    def random_bytes(self, n: int) -> bytes:
        """`n` bytes from the operating system's CSPRNG."""
        return os.urandom(n)

    async def x25519(self, scalar: bytes, u: bytes) -> bytes:
        """RFC 7748 X25519(scalar, u); InvalidPointError if the result is all zeros.

        pyca clamps the scalar and masks bit 255 of u as RFC 7748 requires, and refuses to return
        an all-zero shared secret (a ValueError), which is translated here.
        """
        if len(scalar) != X25519_SIZE:
            raise ValueError(f"an X25519 scalar has {X25519_SIZE} bytes")
        if len(u) != X25519_SIZE:
            raise InvalidPointError(f"an X25519 u-coordinate has {X25519_SIZE} bytes")
        private_key = X25519PrivateKey.from_private_bytes(bytes(scalar))
        public_key = X25519PublicKey.from_public_bytes(bytes(u))
        try:
            shared = private_key.exchange(public_key)
        except ValueError as error:
            raise InvalidPointError("X25519 produced the all-zero output (low-order point)") from (
                error
            )
        # pyca already refuses this; the explicit check keeps the contract independent of it.
        if hmac.compare_digest(shared, bytes(X25519_SIZE)):
            raise InvalidPointError("X25519 produced the all-zero output (low-order point)")
        return shared

    async def hmac_sha256(self, key: bytes, data: bytes) -> bytes:
        """HMAC-SHA-256 (RFC 2104) from the standard library, which uses OpenSSL's."""
        return hmac.digest(bytes(key), bytes(data), "sha256")

    async def hmac_sha512(self, key: bytes, data: bytes) -> bytes:
        """HMAC-SHA-512 (RFC 2104) from the standard library, which uses OpenSSL's."""
        return hmac.digest(bytes(key), bytes(data), "sha512")

    def _aead(self, key: bytes) -> AESGCM:
        if len(key) not in _AES_GCM_KEY_SIZES:
            raise ValueError("AES-GCM keys have 16 or 32 bytes")
        key = bytes(key)
        cached = self._cached_key
        # compare_digest: the comparison involves the secret key, so keep it constant time.
        if cached is None or self._cached_aead is None or not hmac.compare_digest(cached, key):
            self._cached_aead = AESGCM(key)
            self._cached_key = key
        return self._cached_aead

    async def seal(self, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
        """AES-GCM encrypt (AES-256, or AES-128 for a 16-byte key); ciphertext || tag."""
        _check_nonce(nonce)
        return self._aead(key).encrypt(bytes(nonce), plaintext, bytes(aad) or None)

    async def open(self, key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes = b"") -> bytes:
        """AES-GCM decrypt; AuthenticationError on a bad tag (or too-short input)."""
        _check_nonce(nonce)
        if len(ciphertext) < GCM_TAG_SIZE:
            raise AuthenticationError("the ciphertext is shorter than an AES-GCM tag")
        try:
            return self._aead(key).decrypt(bytes(nonce), ciphertext, bytes(aad) or None)
        except InvalidTag:
            raise AuthenticationError("AES-GCM authentication failed") from None

    async def seal_many(self, key: bytes, items: Sequence[tuple[bytes, memoryview]]) -> bytearray:
        """Encrypt each (nonce, plaintext), empty AAD, into one preallocated buffer.

        Returns the buffer itself (a bytearray) rather than copying it into bytes.
        """
        aead = self._aead(key)
        out = bytearray(sum(len(data) + GCM_TAG_SIZE for _, data in items))
        view = memoryview(out)
        offset = 0
        for nonce, data in items:
            _check_nonce(nonce)
            end = offset + len(data) + GCM_TAG_SIZE
            aead.encrypt_into(nonce, data, None, view[offset:end])
            offset = end
        return out

    async def open_many(self, key: bytes, items: Sequence[tuple[bytes, memoryview]]) -> bytearray:
        """Decrypt each (nonce, ciphertext || tag), empty AAD, into one preallocated buffer.

        All or nothing: if any item fails, AuthenticationError is raised and no plaintext of any
        item is returned.
        """
        aead = self._aead(key)
        if any(len(data) < GCM_TAG_SIZE for _, data in items):
            raise AuthenticationError("a ciphertext is shorter than an AES-GCM tag")
        out = bytearray(sum(len(data) - GCM_TAG_SIZE for _, data in items))
        view = memoryview(out)
        offset = 0
        try:
            for nonce, data in items:
                _check_nonce(nonce)
                end = offset + len(data) - GCM_TAG_SIZE
                aead.decrypt_into(nonce, data, None, view[offset:end])
                offset = end
        except InvalidTag:
            # decrypt_into may have written unauthenticated bytes of the failing item; the caller
            # gets nothing back, so wipe the buffer rather than leave them in memory.
            view[:] = bytes(len(out))
            raise AuthenticationError("AES-GCM authentication failed") from None
        return out


def _check_nonce(nonce: bytes) -> None:
    if len(nonce) != GCM_NONCE_SIZE:
        raise ValueError(f"AES-GCM nonces have {GCM_NONCE_SIZE} bytes")
