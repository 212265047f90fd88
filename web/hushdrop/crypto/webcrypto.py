"""The Pyodide crypto backend: the browser's WebCrypto, called from Python.

Importing this module requires Pyodide (`js`, `pyodide.ffi`) and `web/crypto-batch.js` loaded
beside it (the engine worker imports it; the self-test page loads it), which provides the
batched AES-GCM used for file data.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Generator, Sequence

import js
from pyodide.ffi import JsException, create_proxy, to_js

from .backend import (
    AES_KEY_SIZE,
    GCM_TAG_SIZE,
    AuthenticationError,
    CryptoError,
    InvalidPointError,
    Ready,
)

# PKCS #8 wrapping of a raw X25519 private key (RFC 8410): WebCrypto imports no raw private keys.
_PKCS8_X25519_PREFIX = bytes.fromhex("302e020100300506032b656e04220420")
_AES_KEY_SIZES = (16, AES_KEY_SIZE)
KEY_CACHE_SIZE = 16  # imported keys kept per kind: a session's few, and the current file's


class _KeyCache:
    """Imported (non-extractable) CryptoKeys, found by a SHA-256 of their raw bytes: the raw key
    itself is never kept, and at most KEY_CACHE_SIZE handles are (least recently used go), so
    per-file keys do not pile up for the page's lifetime."""

    def __init__(self) -> None:
        self._handles: OrderedDict[bytes, object] = OrderedDict()

    @staticmethod
    def _id(usage: str, key: bytes) -> bytes:
        return hashlib.sha256(usage.encode() + b"\0" + key).digest()

    def get(self, usage: str, key: bytes) -> object | None:
        handle = self._handles.get(ident := self._id(usage, key))
        if handle is not None:
            self._handles.move_to_end(ident)
        return handle

    def put(self, usage: str, key: bytes, handle: object) -> None:
        self._handles[self._id(usage, key)] = handle
        while len(self._handles) > KEY_CACHE_SIZE:
            self._handles.popitem(last=False)

    def held(self) -> list[bytes]:
        return list(self._handles)


def _js_bytes(data: bytes | bytearray | memoryview) -> js.Uint8Array:
    return to_js(memoryview(data))


def _py_bytes(buffer) -> bytes:
    return buffer.to_bytes() if hasattr(buffer, "to_bytes") else bytes(buffer)


def _algorithm(**fields: object):
    return to_js(fields, dict_converter=js.Object.fromEntries)


class WebCryptoBackend:
    """CryptoBackend over `crypto.subtle`. Keys are imported once and cached per session."""

    name = "webcrypto"

    def __init__(self) -> None:
        self._subtle = js.crypto.subtle
        self._keys = _KeyCache()

    def held_key_material(self) -> list[bytes]:
        """What the backend keeps to find imported keys (for the self-test: never raw keys)."""
        return self._keys.held()

    def random_bytes(self, n: int) -> bytes:
        out = js.Uint8Array.new(n)
        js.crypto.getRandomValues(out)
        return _py_bytes(out)

    async def x25519(self, scalar: bytes, u: bytes) -> bytes:
        # RFC 7748 §5: X25519 ignores the top bit of u (Firefox refuses it set, so mask it), and
        # clears the scalar's three low bits (WebKitGTK refuses a PKCS #8 key whose first byte
        # is zero, so set one of them: the result is the same).
        u = bytes(u[:31]) + bytes([u[31] & 0x7F]) if len(u) == 32 else bytes(u)
        scalar = bytes([scalar[0] | 1]) + bytes(scalar[1:])
        try:
            private = await self._subtle.importKey(
                "pkcs8", _js_bytes(_PKCS8_X25519_PREFIX + scalar), "X25519", False, ["deriveBits"]
            )
            public = await self._subtle.importKey("raw", _js_bytes(u), "X25519", False, [])
            shared = await self._subtle.deriveBits(
                _algorithm(name="X25519", public=public), private, 256
            )
        except JsException as exc:
            # Chromium refuses low-order points and all-zero results with an OperationError.
            raise InvalidPointError("X25519 failed: invalid or low-order point") from exc
        result = _py_bytes(js.Uint8Array.new(shared))
        if result == bytes(32):
            raise InvalidPointError("X25519 produced the all-zero value")
        return result

    async def hmac_sha256(self, key: bytes, data: bytes) -> bytes:
        return await self._hmac("SHA-256", key, data)

    async def hmac_sha512(self, key: bytes, data: bytes) -> bytes:
        return await self._hmac("SHA-512", key, data)

    async def _hmac(self, hash_name: str, key: bytes, data: bytes) -> bytes:
        # WebCrypto refuses to import an empty HMAC key. RFC 2104 zero-pads the key to the block
        # size, so the empty key and the single zero byte give the same HMAC: use the latter.
        key = bytes(key) or b"\x00"
        # A WebCrypto HMAC key is bound to its hash, so the cache is keyed by (hash, key).
        usage = f"HMAC-{hash_name}"
        handle = self._keys.get(usage, key)
        if handle is None:
            handle = await self._subtle.importKey(
                "raw", _js_bytes(key), _algorithm(name="HMAC", hash=hash_name), False, ["sign"]
            )
            self._keys.put(usage, key, handle)
        signature = await self._subtle.sign("HMAC", handle, _js_bytes(data))
        return _py_bytes(js.Uint8Array.new(signature))

    async def _aes(self, key: bytes):
        if len(key) not in _AES_KEY_SIZES:
            raise CryptoError(f"AES-GCM keys are 16 or 32 bytes, not {len(key)}")
        handle = self._keys.get("AES-GCM", key)
        if handle is None:
            handle = await self._subtle.importKey(
                "raw", _js_bytes(key), "AES-GCM", False, ["encrypt", "decrypt"]
            )
            self._keys.put("AES-GCM", key, handle)
        return handle

    async def seal(self, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
        params = _algorithm(name="AES-GCM", iv=_js_bytes(nonce), additionalData=_js_bytes(aad))
        result = await self._subtle.encrypt(params, await self._aes(key), _js_bytes(plaintext))
        return _py_bytes(js.Uint8Array.new(result))

    async def open(self, key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes = b"") -> bytes:
        params = _algorithm(name="AES-GCM", iv=_js_bytes(nonce), additionalData=_js_bytes(aad))
        try:
            result = await self._subtle.decrypt(params, await self._aes(key), _js_bytes(ciphertext))
        except JsException as exc:
            raise AuthenticationError("AES-GCM authentication failed") from exc
        return _py_bytes(js.Uint8Array.new(result))

    def seal_many(self, key: bytes, items: Sequence[tuple[bytes, memoryview]]) -> Awaitable[bytes]:
        """Start the batch now (WebCrypto works off the main thread); await the result later."""
        return self._batch("sealMany", key, items, GCM_TAG_SIZE)

    def open_many(self, key: bytes, items: Sequence[tuple[bytes, memoryview]]) -> Awaitable[bytes]:
        """Start the batch now; awaiting raises AuthenticationError if any chunk fails."""
        return self._batch("openMany", key, items, -GCM_TAG_SIZE)

    def _batch(
        self, op: str, key: bytes, items: Sequence[tuple[bytes, memoryview]], delta: int
    ) -> Awaitable[bytearray]:
        if not items:
            return Ready(b"")
        nonces = _js_bytes(b"".join(nonce for nonce, _ in items))
        # Handed over as a Python buffer: crypto-batch.js reads it in place (no copy to JS).
        data = b"".join(items_data for _, items_data in items)
        lengths = js.Uint32Array.new(to_js([len(d) for _, d in items]))
        # ... and writes the results straight into this one.
        output = bytearray(len(data) + delta * len(items))
        handle = self._keys.get("AES-GCM", key)
        if handle is None:  # the first batch under a key imports it first
            return self._batch_after_import(op, key, nonces, data, lengths, output)
        return _Batch(op, handle, nonces, data, lengths, output)

    async def _batch_after_import(
        self, op: str, key: bytes, nonces, data, lengths, output
    ) -> bytearray:
        handle = await self._aes(key)
        return await _Batch(op, handle, nonces, data, lengths, output)


class _Batch:
    """A batch already running in JavaScript; awaiting it yields `output`, filled in."""

    __slots__ = ("_output", "_promise", "_proxy")

    def __init__(self, op: str, handle, nonces, data: bytes, lengths, output: bytearray) -> None:
        self._output = output
        # Held until the batch ends: the JavaScript side writes the results through it.
        self._proxy = create_proxy(output)
        self._promise = getattr(js.hushdropCrypto, op)(handle, nonces, data, lengths, self._proxy)

    def __await__(self) -> Generator[object, None, bytearray]:
        try:
            yield from self._promise.__await__()
        except JsException as exc:
            raise AuthenticationError("AES-GCM authentication failed") from exc
        finally:
            self._proxy.destroy()
        return self._output
