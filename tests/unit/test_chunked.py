"""C2SP chunked encryption (Cobblestone-256): published vectors, reference, round trips, tampering.

Hushdrop's instantiation is Cobblestone-256 (HKDF-Expand-SHA-512, AES-256-GCM); the Wycheproof
Cobblestone-128/-256 vectors therefore run in full mode, and the independent reference below
(pyca directly, sharing no code with chunked.py) uses the same KDF.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import zlib
from array import array
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from hushdrop.crypto.backend import AuthenticationError, CryptoError
from hushdrop.crypto.chunked import (
    CHUNK_SIZE,
    ENCRYPTED_CHUNK_SIZE,
    HEADER_SIZE,
    INSTANTIATION,
    INSTANTIATIONS,
    KDF_HASH,
    MAX_CHUNKS,
    TAG_SIZE,
    ChunkDecryptor,
    ChunkEncryptor,
    TruncatedError,
    ciphertext_size,
    derive_message_keys,
    kdf_info,
)
from hushdrop.crypto.kat import EXPECTED_RESULT_COUNTS, run_known_answer_tests
from hushdrop.crypto.pyca import PycaBackend

VECTOR_DIR = Path(__file__).parents[1] / "vectors"
WYCHEPROOF_STEMS = [
    "chunked-encryption-wycheproof-aes-128-gcm",
    "chunked-encryption-wycheproof-aes-256-gcm",
]
WYCHEPROOF = {
    stem: json.loads((VECTOR_DIR / f"{stem}.json").read_text()) for stem in WYCHEPROOF_STEMS
}
BACKEND = PycaBackend()
KEY = bytes(range(32))
CONTEXT = b"hushdrop test context"


def wycheproof_cases() -> list[tuple[str, dict]]:
    return [
        (group["aead"], test)
        for data in WYCHEPROOF.values()
        for group in data["testGroups"]
        for test in group["tests"]
    ]


def pieces(data: bytes, sizes: tuple[int, ...] = (1, 777, 16384, 50000, 3, 16400)) -> list[bytes]:
    out, offset, i = [], 0, 0
    while offset < len(data):
        out.append(data[offset : offset + sizes[i % len(sizes)]])
        offset += sizes[i % len(sizes)]
        i += 1
    return out


async def encrypt(
    plaintext: bytes,
    key: bytes = KEY,
    context: bytes = CONTEXT,
    salt: bytes | None = None,
    aead: str = "AEAD_AES_256_GCM",
    split: bool = True,
) -> bytes:
    encryptor = await ChunkEncryptor.create(BACKEND, key, context, salt=salt, aead=aead)
    out = bytearray(encryptor.header)
    for piece in pieces(plaintext) if split else [plaintext]:
        out += await encryptor.update(piece)
    out += await encryptor.finalize()
    return bytes(out)


async def decrypt(
    ciphertext: bytes, key: bytes = KEY, context: bytes = CONTEXT, aead: str = "AEAD_AES_256_GCM"
) -> bytes:
    decryptor = await ChunkDecryptor.create(BACKEND, key, context, ciphertext[:HEADER_SIZE], aead)
    out = bytearray()
    for piece in pieces(ciphertext[HEADER_SIZE:], (5, 16400, 9999, 40000, 1)):
        out += await decryptor.update(piece)
    out += await decryptor.finalize()
    return bytes(out)


def reference_encrypt(
    key: bytes, context: bytes, salt: bytes, plaintext: bytes, aead: str = "AEAD_AES_256_GCM"
) -> bytes:
    """Straightforward reading of the spec, on pyca directly, sharing no code with chunked.py."""
    key_size = {"AEAD_AES_128_GCM": 16, "AEAD_AES_256_GCM": 32}[aead]
    info = b"c2sp.org/chunked-encryption@v1+" + aead.encode() + b"\x00" + salt + context
    okm = HKDFExpand(hashes.SHA512(), key_size + 12 + 32, info).derive(key)
    aes = AESGCM(okm[:key_size])
    base = okm[key_size : key_size + 12]
    out = salt + okm[key_size + 12 :]
    counter = 0
    while True:
        chunk = plaintext[counter * CHUNK_SIZE : (counter + 1) * CHUNK_SIZE]
        tail = zip(base[7:], counter.to_bytes(5, "big"), strict=True)
        nonce = base[:7] + bytes(a ^ b for a, b in tail)
        out += aes.encrypt(nonce, chunk, None)
        if len(chunk) < CHUNK_SIZE:
            return out
        counter += 1


# -- Published vectors ----------------------------------------------------------------------------


@pytest.mark.parametrize("stem", WYCHEPROOF_STEMS)
def test_wycheproof_through_known_answer_runner(stem: str) -> None:
    results = asyncio.run(run_known_answer_tests(BACKEND, {stem: WYCHEPROOF[stem]}))
    assert len(results) == EXPECTED_RESULT_COUNTS[stem]
    assert all(passed for _, passed, _ in results), [r for r in results if not r[1]]
    tests = [t for group in WYCHEPROOF[stem]["testGroups"] for t in group["tests"]]
    # Every published vector is present, including the 4 MiB CounterRollover ones (tcId 7, 8).
    assert [t["tcId"] for t in tests] == list(range(1, WYCHEPROOF[stem]["numberOfTests"] + 1))
    assert [t["tcId"] for t in tests if "CounterRollover" in t["flags"]] == [7, 8]
    header_failures = sum("aeadKey" not in t for t in tests)
    valid = sum(t["result"] == "valid" for t in tests)
    # One result per header failure; derive + decrypt for the rest; re-encrypt for valid ones.
    assert len(results) == header_failures + 2 * (len(tests) - header_failures) + valid
    commitment_checks = [n for n, _, d in results if "commitment mismatch" in d]
    assert len(commitment_checks) == 4  # wrong commitment, wrong key, wrong context, bad salt


def test_hushdrop_is_cobblestone_256() -> None:
    assert INSTANTIATION == "Cobblestone-256"
    assert KDF_HASH == "SHA-512"
    assert WYCHEPROOF["chunked-encryption-wycheproof-aes-256-gcm"]["algorithm"] == INSTANTIATION
    for data in WYCHEPROOF.values():
        for group in data["testGroups"]:
            assert group["sha"] == KDF_HASH
            assert INSTANTIATIONS[group["aead"]] == data["algorithm"]


@pytest.mark.parametrize(
    ("aead", "test"),
    wycheproof_cases(),
    ids=lambda x: str(x.get("tcId")) if isinstance(x, dict) else x,
)
def test_wycheproof_vector(aead: str, test: dict) -> None:
    """Each vector in full mode, independently of the known-answer runner."""
    ct = zlib.decompress(bytes.fromhex(test["ct"]))
    key, context = bytes.fromhex(test["key"]), bytes.fromhex(test["ctx"])
    valid = test["result"] == "valid"

    # Pin the info layout (kdf_info) and the KDF with pyca's HKDFExpand(SHA512), independently of
    # hushdrop.crypto.hkdf: the vectors' key, base nonce and commitment must follow from it.
    if len(ct) >= HEADER_SIZE and len(key) in (16, 32):
        info = kdf_info(aead, ct[:24], context)
        okm = HKDFExpand(hashes.SHA512(), len(key) + 44, info).derive(key)
        commitment_matches = okm[len(key) + 12 :] == ct[24:56]
        if "aeadKey" in test:
            assert okm[: len(key)].hex() == test["aeadKey"]
            assert okm[len(key) : len(key) + 12].hex() == test["baseNonce"]
            assert commitment_matches
        else:
            assert not commitment_matches  # the HeaderFailure vectors with a usable key size

    async def run() -> None:
        if "aeadKey" not in test:
            expected: type[Exception] = AuthenticationError
            if "InvalidKeySize" in test["flags"]:
                expected = ValueError
            elif len(ct) < HEADER_SIZE:
                expected = TruncatedError
            with pytest.raises(expected):
                await ChunkDecryptor.create(BACKEND, key, context, ct[:HEADER_SIZE], aead)
            return
        derived = await derive_message_keys(BACKEND, key, ct[:24], context, aead)
        assert derived == (
            bytes.fromhex(test["aeadKey"]),
            bytes.fromhex(test["baseNonce"]),
            ct[24:HEADER_SIZE],
        )
        decryptor = await ChunkDecryptor.create(BACKEND, key, context, ct[:HEADER_SIZE], aead)
        out = bytearray()
        try:
            out += await decryptor.update(ct[HEADER_SIZE:])
            out += await decryptor.finalize()
        except CryptoError:
            assert not valid
            assert len(out) <= test.get("msgLength", 0)
            return
        assert valid
        assert len(out) == test["msgLength"]
        assert hashlib.sha512(out).hexdigest() == test["msgSha512"]
        # Deterministic re-encryption with the vector's salt reproduces the ciphertext, and the
        # independent reference agrees.
        assert await encrypt(bytes(out), key, context, ct[:24], aead) == ct
        assert reference_encrypt(key, context, ct[:24], bytes(out), aead) == ct

    asyncio.run(run())


# -- Independent reference and round trips --------------------------------------------------------

SIZES = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE, (1 << 20) + 7]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("aead", ["AEAD_AES_256_GCM", "AEAD_AES_128_GCM"])
def test_round_trip_matches_reference(size: int, aead: str) -> None:
    key = KEY[: 16 if aead == "AEAD_AES_128_GCM" else 32]
    plaintext, salt = os.urandom(size), os.urandom(24)
    ciphertext = asyncio.run(encrypt(plaintext, key, CONTEXT, salt, aead))
    assert len(ciphertext) == ciphertext_size(size)
    assert ciphertext == reference_encrypt(key, CONTEXT, salt, plaintext, aead)
    assert asyncio.run(decrypt(ciphertext, key, CONTEXT, aead)) == plaintext


def test_counter_rollover_matches_reference() -> None:
    # 257 full chunks + a short one: the counter crosses the 0xff/0x100 byte boundary.
    plaintext, salt = os.urandom(257 * CHUNK_SIZE + 100), os.urandom(24)
    ciphertext = asyncio.run(encrypt(plaintext, salt=salt, split=False))
    assert ciphertext == reference_encrypt(KEY, CONTEXT, salt, plaintext)
    assert asyncio.run(decrypt(ciphertext)) == plaintext


def test_streaming_is_independent_of_piece_sizes() -> None:
    plaintext, salt = os.urandom(5 * CHUNK_SIZE + 123), os.urandom(24)
    one_shot = asyncio.run(encrypt(plaintext, salt=salt, split=False))
    assert asyncio.run(encrypt(plaintext, salt=salt)) == one_shot


def test_update_emits_only_complete_chunks() -> None:
    async def run() -> None:
        encryptor = await ChunkEncryptor.create(BACKEND, KEY, CONTEXT)
        assert await encryptor.update(bytes(CHUNK_SIZE - 1)) == b""
        assert len(await encryptor.update(bytes(1))) == ENCRYPTED_CHUNK_SIZE
        assert len(await encryptor.update(bytes(3 * CHUNK_SIZE + 5))) == 3 * ENCRYPTED_CHUNK_SIZE
        assert len(await encryptor.finalize()) == 5 + TAG_SIZE

        decryptor = await ChunkDecryptor.create(BACKEND, KEY, CONTEXT, encryptor.header)
        assert await decryptor.update(bytes(ENCRYPTED_CHUNK_SIZE - 1)) == b""

    asyncio.run(run())


def test_bytes_like_inputs() -> None:
    plaintext = os.urandom(2 * CHUNK_SIZE + 8)

    async def run() -> bytes:
        encryptor = await ChunkEncryptor.create(BACKEND, KEY, CONTEXT)
        out = bytearray(encryptor.header)
        out += await encryptor.update(bytearray(plaintext[:100]))
        out += await encryptor.update(memoryview(plaintext)[100:])
        out += await encryptor.finalize()
        decryptor = await ChunkDecryptor.create(BACKEND, KEY, CONTEXT, memoryview(out)[:56])
        result = bytearray(await decryptor.update(memoryview(out)[56:]))
        return bytes(result + await decryptor.finalize())

    assert asyncio.run(run()) == plaintext

    words = array("I", range(10000))  # a memoryview whose items are not bytes

    async def run_array() -> bytes:
        encryptor = await ChunkEncryptor.create(BACKEND, KEY, CONTEXT)
        return encryptor.header + await encryptor.update(words) + await encryptor.finalize()

    assert asyncio.run(decrypt(asyncio.run(run_array()))) == words.tobytes()


def test_ciphertext_size() -> None:
    assert ciphertext_size(0) == HEADER_SIZE + TAG_SIZE
    assert ciphertext_size(CHUNK_SIZE - 1) == HEADER_SIZE + CHUNK_SIZE - 1 + TAG_SIZE
    assert ciphertext_size(CHUNK_SIZE) == HEADER_SIZE + CHUNK_SIZE + 2 * TAG_SIZE
    assert ciphertext_size(1 << 30) == HEADER_SIZE + (1 << 30) + (65536 + 1) * TAG_SIZE
    assert ciphertext_size((MAX_CHUNKS - 1) * CHUNK_SIZE + 5) > 0
    with pytest.raises(ValueError):
        ciphertext_size(MAX_CHUNKS * CHUNK_SIZE)
    with pytest.raises(ValueError):
        ciphertext_size(-1)


def test_nonce_is_base_xor_counter() -> None:
    async def run() -> None:
        key, base_nonce, _ = await derive_message_keys(BACKEND, KEY, bytes(24), CONTEXT)
        encryptor = ChunkEncryptor._create_raw(BACKEND, key, base_nonce)
        base = int.from_bytes(base_nonce, "big")
        for counter in (0, 1, 255, 256, 2**32, MAX_CHUNKS - 1):
            assert encryptor._nonce(counter) == (base ^ counter).to_bytes(12, "big")
            assert encryptor._nonce(counter)[:7] == base_nonce[:7]

    asyncio.run(run())


def test_chunk_limit_aborts() -> None:
    async def run() -> None:
        encryptor = await ChunkEncryptor.create(BACKEND, KEY, CONTEXT)
        encryptor._counter = MAX_CHUNKS - 2
        # One more full chunk is fine: the final chunk then gets number 2^38 - 1.
        assert len(await encryptor.update(bytes(CHUNK_SIZE))) == ENCRYPTED_CHUNK_SIZE
        with pytest.raises(CryptoError):
            await encryptor.update(bytes(CHUNK_SIZE))
        with pytest.raises(CryptoError):
            await encryptor.finalize()  # the stream stays failed

        decryptor = await ChunkDecryptor.create(BACKEND, KEY, CONTEXT, encryptor.header)
        decryptor._counter = MAX_CHUNKS - 1
        with pytest.raises(CryptoError):
            await decryptor.update(bytes(ENCRYPTED_CHUNK_SIZE))

    asyncio.run(run())


# -- Tampering ------------------------------------------------------------------------------------

PLAINTEXT = os.urandom(3 * CHUNK_SIZE + 1000)  # chunks 0, 1, 2 full; chunk 3 short
CIPHERTEXT = asyncio.run(encrypt(PLAINTEXT))


def chunk_bounds(index: int) -> tuple[int, int]:
    start = HEADER_SIZE + index * ENCRYPTED_CHUNK_SIZE
    return start, min(start + ENCRYPTED_CHUNK_SIZE, len(CIPHERTEXT))


def test_untampered_baseline() -> None:
    assert asyncio.run(decrypt(CIPHERTEXT)) == PLAINTEXT


@pytest.mark.parametrize(
    ("name", "mutated", "error"),
    [
        ("drop final chunk", CIPHERTEXT[: chunk_bounds(3)[0]], TruncatedError),
        (
            "drop a middle full chunk",
            CIPHERTEXT[: chunk_bounds(1)[0]] + CIPHERTEXT[chunk_bounds(2)[0] :],
            AuthenticationError,
        ),
        ("cut inside final chunk", CIPHERTEXT[:-1], AuthenticationError),
        ("cut to less than a tag", CIPHERTEXT[: chunk_bounds(3)[0] + 15], TruncatedError),
        ("header only", CIPHERTEXT[:HEADER_SIZE], TruncatedError),
        ("append garbage", CIPHERTEXT + b"\x00" * 10, AuthenticationError),
        (
            "append a copy of the final chunk",
            CIPHERTEXT + CIPHERTEXT[chunk_bounds(3)[0] :],
            AuthenticationError,
        ),
        (
            "swap chunks 0 and 1",
            CIPHERTEXT[:HEADER_SIZE]
            + CIPHERTEXT[slice(*chunk_bounds(1))]
            + CIPHERTEXT[slice(*chunk_bounds(0))]
            + CIPHERTEXT[chunk_bounds(2)[0] :],
            AuthenticationError,
        ),
        (
            "duplicate chunk 0 over chunk 1",
            CIPHERTEXT[: chunk_bounds(1)[0]]
            + CIPHERTEXT[slice(*chunk_bounds(0))]
            + CIPHERTEXT[chunk_bounds(2)[0] :],
            AuthenticationError,
        ),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_structural_tampering_detected(name: str, mutated: bytes, error: type) -> None:
    with pytest.raises(error):
        asyncio.run(decrypt(mutated))


@pytest.mark.parametrize(
    "position",
    [
        0,
        23,
        24,
        55,
        HEADER_SIZE,
        HEADER_SIZE + CHUNK_SIZE + 3,
        chunk_bounds(1)[1] - 1,
        chunk_bounds(3)[0] + 2,
        len(CIPHERTEXT) - 1,
    ],
    ids=[
        "salt[0]",
        "salt[23]",
        "commitment[0]",
        "commitment[31]",
        "chunk0[0]",
        "chunk0 tag",
        "chunk1 tag end",
        "final chunk body",
        "final tag end",
    ],
)
def test_bit_flips_detected(position: int) -> None:
    mutated = bytearray(CIPHERTEXT)
    mutated[position] ^= 0x01
    with pytest.raises(AuthenticationError):
        asyncio.run(decrypt(bytes(mutated)))


def test_header_is_checked_before_any_chunk() -> None:
    # A wrong commitment fails in create(), i.e. before a single chunk reaches the backend.
    mutated = bytearray(CIPHERTEXT[:HEADER_SIZE])
    mutated[30] ^= 0x80
    with pytest.raises(AuthenticationError):
        asyncio.run(ChunkDecryptor.create(BACKEND, KEY, CONTEXT, bytes(mutated)))


def test_wrong_key_or_context_rejected_at_the_header() -> None:
    header = CIPHERTEXT[:HEADER_SIZE]
    with pytest.raises(AuthenticationError):
        asyncio.run(ChunkDecryptor.create(BACKEND, os.urandom(32), CONTEXT, header))
    with pytest.raises(AuthenticationError):
        asyncio.run(ChunkDecryptor.create(BACKEND, KEY, CONTEXT + b"!", header))
    with pytest.raises(AuthenticationError):  # the AEAD name is bound into the derivation
        asyncio.run(ChunkDecryptor.create(BACKEND, KEY[:16], CONTEXT, header, "AEAD_AES_128_GCM"))


def test_bad_parameters() -> None:
    with pytest.raises(TruncatedError, match="truncated"):
        asyncio.run(ChunkDecryptor.create(BACKEND, KEY, CONTEXT, CIPHERTEXT[:40]))
    with pytest.raises(ValueError):
        asyncio.run(ChunkDecryptor.create(BACKEND, KEY, CONTEXT, CIPHERTEXT[:57]))
    for key in (KEY[:16], KEY + b"\x00", b""):
        with pytest.raises(ValueError):
            asyncio.run(ChunkEncryptor.create(BACKEND, key, CONTEXT))
    with pytest.raises(ValueError):
        asyncio.run(ChunkEncryptor.create(BACKEND, KEY, CONTEXT, aead="AEAD_CHACHA20_POLY1305"))
    with pytest.raises(ValueError):
        asyncio.run(ChunkEncryptor.create(BACKEND, KEY, CONTEXT, salt=bytes(23)))


def test_failed_stream_keeps_failing_and_finished_stream_is_closed() -> None:
    async def run() -> None:
        mutated = bytearray(CIPHERTEXT)
        mutated[HEADER_SIZE + 5] ^= 1
        decryptor = await ChunkDecryptor.create(BACKEND, KEY, CONTEXT, CIPHERTEXT[:HEADER_SIZE])
        with pytest.raises(AuthenticationError):
            await decryptor.update(bytes(mutated[HEADER_SIZE:]))
        with pytest.raises(AuthenticationError):
            await decryptor.update(b"")
        with pytest.raises(AuthenticationError):
            await decryptor.finalize()

        truncated = await ChunkDecryptor.create(BACKEND, KEY, CONTEXT, CIPHERTEXT[:HEADER_SIZE])
        await truncated.update(CIPHERTEXT[HEADER_SIZE : chunk_bounds(3)[0]])
        with pytest.raises(TruncatedError):
            await truncated.finalize()
        with pytest.raises(TruncatedError):
            await truncated.finalize()

        encryptor = await ChunkEncryptor.create(BACKEND, KEY, CONTEXT)
        await encryptor.finalize()
        with pytest.raises(RuntimeError):
            await encryptor.update(b"x")
        with pytest.raises(RuntimeError):
            await encryptor.finalize()

    asyncio.run(run())


def test_truncated_error_is_a_crypto_error_with_a_clear_message() -> None:
    assert issubclass(TruncatedError, CryptoError)
    assert "truncated" in str(TruncatedError())
