"""C2SP chunked encryption (https://c2sp.org/chunked-encryption, "@v1"), streaming.

This module owns how Hushdrop encrypts file contents: the key/nonce/commitment derivation, the
16 KiB chunking with its always-short final chunk, the per-chunk nonces, and the streaming
encryptor and decryptor. AES-GCM runs through `backend.seal_many` / `backend.open_many`, one call
per `update` for every complete chunk available, so per-chunk work in Python is a handful of
integer operations and no per-byte loop exists.

Instantiation. Hushdrop uses exactly Cobblestone-256: C2SP chunked-encryption instantiated with
SHA-512 and AES-256-GCM, i.e. HKDF-Expand-SHA-512 (via `hushdrop.crypto.hkdf`, hence
`backend.hmac_sha512`) and AEAD_AES_256_GCM. Its ciphertexts are Cobblestone-256 ciphertexts, and
the Wycheproof Cobblestone vectors (generated from filippo.io/cobblestone) run against it in full:
key derivation, commitment check, decryption and deterministic re-encryption. The AEAD is a
parameter so that the published Cobblestone-128 vectors (SHA-512 with AEAD_AES_128_GCM) run as
well; Hushdrop itself only uses AEAD_AES_256_GCM. The chunk layer is identical for both.

Key derivation, for input key IK (16 or 32 bytes, the AEAD's key size), 24-byte salt and
context:

    info = "c2sp.org/chunked-encryption@v1+" || aead_name || 0x00 || salt || context
    key || base_nonce || commitment = HKDF-Expand-SHA-512(PRK = IK, info, Nk + 12 + 32)

where aead_name is the IANA AEAD name in ASCII ("AEAD_AES_256_GCM") and Nk its key size. The
context is the last field and is not length-prefixed. Chunk i is sealed with nonce
base_nonce XOR i (i as a 96-bit big-endian integer) and empty associated data.

Wire format: salt (24) || commitment (32) || chunk_0 || ... || chunk_n, where every chunk but the
last is 16384 plaintext bytes + 16-byte tag and the last is 0..16383 bytes + tag.

`update` and `finalize` return whatever the backend's batch call returns, which may be a
`bytearray`: handing the backend's output buffer straight through saves a copy of every byte.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Sequence

from hushdrop.crypto.backend import (
    GCM_NONCE_SIZE,
    GCM_TAG_SIZE,
    AuthenticationError,
    CryptoBackend,
    CryptoError,
    Ready,
)
from hushdrop.crypto.hkdf import HashName, hkdf_expand

CHUNK_SIZE = 16384
TAG_SIZE = GCM_TAG_SIZE
ENCRYPTED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE
SALT_SIZE = 24
COMMITMENT_SIZE = 32
HEADER_SIZE = SALT_SIZE + COMMITMENT_SIZE
NONCE_SIZE = GCM_NONCE_SIZE
# Chunk numbers must stay below 2^38 (4 PiB): the counter is XOR'd into the nonce's low 38 bits.
MAX_CHUNKS = 1 << 38

INFO_PREFIX = b"c2sp.org/chunked-encryption@v1+"
# HKDF-Expand-SHA-512, as in both Cobblestone instantiations.
KDF_HASH: HashName = "SHA-512"
DEFAULT_AEAD = "AEAD_AES_256_GCM"
# AEAD name (IANA AEAD registry) -> key size. Only AES-GCM: it is what every backend provides.
AEAD_KEY_SIZES = {"AEAD_AES_128_GCM": 16, "AEAD_AES_256_GCM": 32}
# The published names of the two instantiations, by AEAD. Hushdrop uses Cobblestone-256.
INSTANTIATIONS = {"AEAD_AES_128_GCM": "Cobblestone-128", "AEAD_AES_256_GCM": "Cobblestone-256"}
INSTANTIATION = INSTANTIATIONS[DEFAULT_AEAD]


class TruncatedError(CryptoError):
    """The ciphertext ended before its short final chunk: the file was cut off (or padded)."""

    def __init__(self, message: str = "the encrypted file ends early: it was truncated") -> None:
        super().__init__(message)


def ciphertext_size(plaintext_size: int) -> int:
    """Total ciphertext bytes for a plaintext of `plaintext_size`: header, every chunk, all tags.

    There are plaintext_size // 16384 full chunks plus the final short chunk, which exists even
    when it is empty (so a 16 KiB file has two chunks).
    """
    if plaintext_size < 0:
        raise ValueError("plaintext size cannot be negative")
    chunks = plaintext_size // CHUNK_SIZE + 1
    if chunks > MAX_CHUNKS:
        raise ValueError("chunked encryption is limited to 2^38 chunks (4 PiB)")
    return HEADER_SIZE + plaintext_size + chunks * TAG_SIZE


def kdf_info(aead: str, salt: bytes, context: bytes) -> bytes:
    """HKDF-Expand info: "c2sp.org/chunked-encryption@v1+" || aead || 0x00 || salt || context."""
    return INFO_PREFIX + aead.encode("ascii") + b"\x00" + bytes(salt) + bytes(context)


def _key_size(aead: str) -> int:
    try:
        return AEAD_KEY_SIZES[aead]
    except KeyError:
        supported = sorted(AEAD_KEY_SIZES)
        raise ValueError(f"unsupported AEAD {aead!r}; expected one of {supported}") from None


async def derive_message_keys(
    backend: CryptoBackend, input_key: bytes, salt: bytes, context: bytes, aead: str = DEFAULT_AEAD
) -> tuple[bytes, bytes, bytes]:
    """key || base nonce || commitment = HKDF-Expand-SHA-512(prk=input_key, info, Nk + 12 + 32).

    Returns (key, base_nonce, commitment). The input key must have the AEAD's key size, as the
    spec requires; anything else raises ValueError.
    """
    key_size = _key_size(aead)
    if len(input_key) != key_size:
        raise ValueError(f"{aead} needs a {key_size}-byte input key, got {len(input_key)} bytes")
    if len(salt) != SALT_SIZE:
        raise ValueError(f"the salt has {SALT_SIZE} bytes")
    okm = await hkdf_expand(
        backend,
        input_key,
        kdf_info(aead, salt, context),
        key_size + NONCE_SIZE + COMMITMENT_SIZE,
        hash=KDF_HASH,
    )
    return okm[:key_size], okm[key_size : key_size + NONCE_SIZE], okm[key_size + NONCE_SIZE :]


def _as_bytes_view(data: bytes | bytearray | memoryview) -> memoryview:
    view = memoryview(data)
    if view.ndim != 1 or view.format != "B":
        view = view.cast("B")
    return view


class _Chunker:
    """State shared by both directions: the key, nonces, chunk counter and the input buffer."""

    def __init__(self, backend: CryptoBackend, key: bytes, base_nonce: bytes, block: int) -> None:
        if len(base_nonce) != NONCE_SIZE:
            raise ValueError(f"the base nonce has {NONCE_SIZE} bytes")
        self._backend = backend
        self._key = bytes(key)
        # Nonce i = base nonce XOR i, big-endian over the whole nonce. Keeping the base nonce as an
        # integer makes that one XOR and one to_bytes per chunk.
        self._base_nonce = int.from_bytes(base_nonce, "big")
        self._block = block  # input bytes that make one complete chunk
        self._counter = 0  # number of the next chunk
        self._pending = b""  # buffered input, always shorter than one block
        self._finished = False
        self._failure: CryptoError | None = None

    def _nonce(self, counter: int) -> bytes:
        return (self._base_nonce ^ counter).to_bytes(NONCE_SIZE, "big")

    def _check_usable(self) -> None:
        # Once a stream has failed it keeps failing, so a caller that ignores one exception cannot
        # go on to read a clean end-of-message from the same object.
        if self._failure is not None:
            raise self._failure
        if self._finished:
            raise RuntimeError("this stream was already finalized")

    def _fail(self, error: CryptoError) -> CryptoError:
        self._failure = error
        return error

    def _take_blocks(self, data: bytes | bytearray | memoryview) -> list[tuple[bytes, memoryview]]:
        """Split buffered + new input into (nonce, block) items for every complete block.

        Complete blocks inside `data` are passed as memoryviews of the caller's object (no copy);
        only a block straddling the old buffer and `data`, and the new remainder, are copied.
        """
        view = _as_bytes_view(data)
        blocks: list[memoryview] = []
        offset = 0
        if self._pending:
            need = self._block - len(self._pending)
            if len(view) < need:
                self._pending += view.tobytes()
                return []
            blocks.append(memoryview(self._pending + view[:need].tobytes()))
            offset = need
        whole = (len(view) - offset) // self._block
        end = offset + whole * self._block
        blocks.extend(
            view[start : start + self._block] for start in range(offset, end, self._block)
        )
        # A fresh object rather than an in-place edit: a backend may still hold views of the old
        # buffer while the batch is in flight.
        self._pending = view[end:].tobytes()
        if self._counter + len(blocks) >= MAX_CHUNKS:
            # ">=": the final chunk needs a number below 2^38 too.
            raise self._fail(CryptoError("chunked encryption is limited to 2^38 chunks (4 PiB)"))
        first = self._counter
        self._counter += len(blocks)
        return [(self._nonce(first + i), block) for i, block in enumerate(blocks)]


class ChunkEncryptor(_Chunker):
    """Streaming encryptor. Write `header`, then every `update` result, then `finalize()`."""

    header: bytes

    def __init__(
        self, backend: CryptoBackend, key: bytes, base_nonce: bytes, header: bytes = b""
    ) -> None:
        # Use `create`; the constructor takes already derived values.
        super().__init__(backend, key, base_nonce, CHUNK_SIZE)
        self.header = header

    @classmethod
    async def create(
        cls,
        backend: CryptoBackend,
        input_key: bytes,
        context: bytes,
        salt: bytes | None = None,
        aead: str = DEFAULT_AEAD,
    ) -> ChunkEncryptor:
        """Derive the message keys; a random 24-byte salt is drawn unless one is given.

        The salt MUST NOT repeat for the same input key; pass it only for known-answer tests.
        """
        if salt is None:
            salt = backend.random_bytes(SALT_SIZE)
        key, base_nonce, commitment = await derive_message_keys(
            backend, input_key, salt, context, aead
        )
        return cls(backend, key, base_nonce, bytes(salt) + commitment)

    @classmethod
    def _create_raw(cls, backend: CryptoBackend, key: bytes, base_nonce: bytes) -> ChunkEncryptor:
        """Raw mode (spec appendix): caller-supplied key and base nonce, no header.

        Hazmat, for known-answer tests only: without the derivation there is no key commitment
        and nothing stops key/nonce reuse.
        """
        return cls(backend, key, base_nonce)

    async def update(self, data: bytes | bytearray | memoryview) -> bytes | bytearray:
        """Encrypt every complete 16 KiB chunk now available; buffer the rest.

        A full chunk is never the final chunk (the final one is always shorter), so full chunks
        are emitted at once, all in a single `seal_many` call. Returns b"" while less than one
        chunk is buffered.
        """
        return await self.start_update(data)

    def start_update(self, data: bytes | bytearray | memoryview) -> Awaitable[bytes | bytearray]:
        """Like `update`, but a background backend starts encrypting before this returns.

        The caller can then hash the same bytes while WebCrypto encrypts them, and await the
        ciphertext afterwards. `data` may be reused as soon as this returns.
        """
        self._check_usable()
        items = self._take_blocks(data)
        if not items:
            return Ready(b"")
        return self._backend.seal_many(self._key, items)

    async def finalize(self) -> bytes | bytearray:
        """Encrypt and return the final chunk: the buffered remainder, possibly empty."""
        self._check_usable()
        self._finished = True
        item = [(self._nonce(self._counter), memoryview(self._pending))]
        self._pending = b""
        return await self._backend.seal_many(self._key, item)


class ChunkDecryptor(_Chunker):
    """Streaming decryptor. Create it from the header, feed the rest to `update`, then finalize.

    Plaintext returned by `update` is authenticated chunk by chunk, but only `finalize()` proves
    the message is complete: never act on a file until finalize has succeeded.
    """

    def __init__(self, backend: CryptoBackend, key: bytes, base_nonce: bytes) -> None:
        # Use `create`; the constructor takes already derived and checked values.
        super().__init__(backend, key, base_nonce, ENCRYPTED_CHUNK_SIZE)

    @classmethod
    async def create(
        cls,
        backend: CryptoBackend,
        input_key: bytes,
        context: bytes,
        header: bytes,
        aead: str = DEFAULT_AEAD,
    ) -> ChunkDecryptor:
        """Check the 56-byte header's commitment before anything is decrypted.

        Raises TruncatedError if the header is incomplete and AuthenticationError if the
        commitment does not match (wrong key or context, or a modified salt or commitment).
        """
        if len(header) < HEADER_SIZE:
            raise TruncatedError()
        if len(header) > HEADER_SIZE:
            raise ValueError(f"the header has exactly {HEADER_SIZE} bytes")
        salt = bytes(header[:SALT_SIZE])
        key, base_nonce, commitment = await derive_message_keys(
            backend, input_key, salt, context, aead
        )
        if not hmac.compare_digest(commitment, bytes(header[SALT_SIZE:])):
            raise AuthenticationError(
                "the file cannot be decrypted: wrong key or context, or its header was altered"
            )
        return cls(backend, key, base_nonce)

    @classmethod
    def _create_raw(cls, backend: CryptoBackend, key: bytes, base_nonce: bytes) -> ChunkDecryptor:
        """Raw mode (spec appendix): caller-supplied key and base nonce, no header.

        Hazmat, for known-answer tests only: there is no commitment check.
        """
        return cls(backend, key, base_nonce)

    async def update(self, data: bytes | bytearray | memoryview) -> bytes | bytearray:
        """Decrypt every complete 16400-byte encrypted chunk buffered, in one `open_many` call.

        A complete 16400-byte block is never the final chunk (that one is at most 16399 bytes),
        so it is safe to decrypt it before the end of the stream is known. Raises
        AuthenticationError if any chunk fails; the stream then stays failed.
        """
        self._check_usable()
        items = self._take_blocks(data)
        if not items:
            return b""
        return await self._open(items)

    async def finalize(self) -> bytes | bytearray:
        """Decrypt the final chunk, which must hold 16 to 16399 bytes, else TruncatedError."""
        self._check_usable()
        self._finished = True
        final = self._pending
        self._pending = b""
        if not TAG_SIZE <= len(final) < ENCRYPTED_CHUNK_SIZE:
            # Zero bytes left means the short final chunk is missing (cut at a chunk boundary);
            # 1..15 bytes cannot even hold a tag.
            raise self._fail(TruncatedError())
        return await self._open([(self._nonce(self._counter), memoryview(final))])

    async def _open(self, items: Sequence[tuple[bytes, memoryview]]) -> bytes | bytearray:
        try:
            return await self._backend.open_many(self._key, items)
        except AuthenticationError as error:
            raise self._fail(error) from None
