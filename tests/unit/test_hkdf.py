"""HKDF through the backend: RFC 5869 vectors (SHA-256), SHA-512, edge cases, pyca cross-checks.

RFC 5869 has no SHA-512 test cases. The SHA-512 known answers below are the RFC's test-case
inputs run through an independent implementation (pyca `cryptography`'s HKDF with SHA512),
pinned as hex; every SHA-512 test also compares with pyca at run time.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand
from hushdrop.crypto.hkdf import MAX_OUTPUT_SIZES, hkdf, hkdf_expand, hkdf_extract
from hushdrop.crypto.kat import run_known_answer_tests
from hushdrop.crypto.pyca import PycaBackend

VECTORS = json.loads(
    (Path(__file__).parents[1] / "vectors" / "hkdf-sha256-rfc5869.json").read_text()
)
BACKEND = PycaBackend()


@pytest.mark.parametrize("vector", VECTORS["tests"], ids=lambda v: v["name"])
def test_rfc5869_vectors(vector: dict) -> None:
    salt, ikm, info = (bytes.fromhex(vector[k]) for k in ("salt", "ikm", "info"))
    length = vector["length"]

    async def run() -> None:
        prk = await hkdf_extract(BACKEND, salt, ikm)
        assert prk.hex() == vector["prk"]
        assert (await hkdf_expand(BACKEND, prk, info, length)).hex() == vector["okm"]
        assert (await hkdf(BACKEND, salt, ikm, info, length)).hex() == vector["okm"]

    asyncio.run(run())


def test_empty_salt_means_hash_length_zeros() -> None:
    ikm = os.urandom(40)
    a = asyncio.run(hkdf_extract(BACKEND, b"", ikm))
    b = asyncio.run(hkdf_extract(BACKEND, bytes(32), ikm))
    assert a == b


@pytest.mark.parametrize("length", [0, 1, 31, 32, 33, 76, 255 * 32])
def test_expand_matches_pyca(length: int) -> None:
    prk, info = os.urandom(32), os.urandom(20)
    expected = HKDFExpand(hashes.SHA256(), length, info).derive(prk) if length else b""
    assert asyncio.run(hkdf_expand(BACKEND, prk, info, length)) == expected


def test_expand_accepts_a_16_byte_prk() -> None:
    # C2SP chunked encryption feeds a 16-byte AES-128 input key straight into Expand.
    prk, info = os.urandom(16), b"info"
    expected = HKDFExpand(hashes.SHA256(), 60, info).derive(prk)
    assert asyncio.run(hkdf_expand(BACKEND, prk, info, 60)) == expected


def test_full_hkdf_matches_pyca() -> None:
    salt, ikm, info = os.urandom(16), os.urandom(50), os.urandom(7)
    expected = HKDF(hashes.SHA256(), 100, salt, info).derive(ikm)
    assert asyncio.run(hkdf(BACKEND, salt, ikm, info, 100)) == expected


@pytest.mark.parametrize(
    ("hash_name", "length"),
    [
        ("SHA-256", -1),
        ("SHA-256", 255 * 32 + 1),
        ("SHA-512", -1),
        ("SHA-512", 255 * 64 + 1),
    ],
)
def test_expand_rejects_impossible_lengths(hash_name: str, length: int) -> None:
    assert MAX_OUTPUT_SIZES == {"SHA-256": 255 * 32, "SHA-512": 255 * 64}
    with pytest.raises(ValueError):
        asyncio.run(hkdf_expand(BACKEND, bytes(32), b"", length, hash=hash_name))


def test_unknown_hash_is_rejected() -> None:
    for call in (
        hkdf_extract(BACKEND, b"salt", b"ikm", hash="SHA-384"),
        hkdf_expand(BACKEND, bytes(32), b"", 10, hash="SHA-1"),
    ):
        with pytest.raises(ValueError, match="unsupported HKDF hash"):
            asyncio.run(call)


def test_default_hash_is_sha256() -> None:
    prk, info = os.urandom(32), b"info"
    default = asyncio.run(hkdf_expand(BACKEND, prk, info, 50))
    assert default == asyncio.run(hkdf_expand(BACKEND, prk, info, 50, hash="SHA-256"))
    assert default != asyncio.run(hkdf_expand(BACKEND, prk, info, 50, hash="SHA-512"))


# -- SHA-512 ---------------------------------------------------------------------------------------

# RFC 5869 test cases 1 and 3 (inputs) with SHA-512; PRK and OKM computed with pyca's HKDF.
SHA512_CASES = [
    {
        "name": "RFC 5869 A.1 inputs, SHA-512",
        "ikm": "0b" * 22,
        "salt": "000102030405060708090a0b0c",
        "info": "f0f1f2f3f4f5f6f7f8f9",
        "length": 42,
        "prk": (
            "665799823737ded04a88e47e54a5890bb2c3d247c7a4254a8e61350723590a26"
            "c36238127d8661b88cf80ef802d57e2f7cebcf1e00e083848be19929c61b4237"
        ),
        "okm": (
            "832390086cda71fb47625bb5ceb168e4c8e26a1a16ed34d9fc7fe92c1481579338da362cb8d9f925d7cb"
        ),
    },
    {
        "name": "RFC 5869 A.3 inputs (empty salt and info), SHA-512",
        "ikm": "0b" * 22,
        "salt": "",
        "info": "",
        "length": 42,
        "prk": (
            "fd200c4987ac491313bd4a2a13287121247239e11c9ef82802044b66ef357e5b"
            "194498d0682611382348572a7b1611de54764094286320578a863f36562b0df6"
        ),
        "okm": (
            "f5fa02b18298a72a8c23898a8703472c6eb179dc204c03425c970e3b164bf90fff22d04836d0e2343bac"
        ),
    },
]


@pytest.mark.parametrize("vector", SHA512_CASES, ids=lambda v: v["name"])
def test_sha512_known_answers(vector: dict) -> None:
    salt, ikm, info = (bytes.fromhex(vector[k]) for k in ("salt", "ikm", "info"))
    length = vector["length"]

    async def run() -> None:
        prk = await hkdf_extract(BACKEND, salt, ikm, hash="SHA-512")
        assert prk.hex() == vector["prk"]
        assert len(prk) == 64
        okm = await hkdf_expand(BACKEND, prk, info, length, hash="SHA-512")
        assert okm.hex() == vector["okm"]
        assert (await hkdf(BACKEND, salt, ikm, info, length, hash="SHA-512")).hex() == vector["okm"]

    asyncio.run(run())
    independent = HKDF(hashes.SHA512(), length, salt or None, info).derive(ikm)
    assert independent.hex() == vector["okm"]


def test_sha512_empty_salt_means_64_zero_bytes() -> None:
    ikm = os.urandom(40)
    a = asyncio.run(hkdf_extract(BACKEND, b"", ikm, hash="SHA-512"))
    assert a == asyncio.run(hkdf_extract(BACKEND, bytes(64), ikm, hash="SHA-512"))


@pytest.mark.parametrize("length", [0, 1, 63, 64, 65, 76, 128, 129, 255 * 64])
@pytest.mark.parametrize("prk_size", [16, 32, 64])
def test_sha512_expand_matches_pyca(length: int, prk_size: int) -> None:
    # 76 = 32 + 12 + 32 is what Cobblestone-256 derives; 16- and 32-byte PRKs are its input keys.
    prk, info = os.urandom(prk_size), os.urandom(20)
    expected = HKDFExpand(hashes.SHA512(), length, info).derive(prk) if length else b""
    assert asyncio.run(hkdf_expand(BACKEND, prk, info, length, hash="SHA-512")) == expected


def test_sha512_full_hkdf_matches_pyca() -> None:
    salt, ikm, info = os.urandom(16), os.urandom(50), os.urandom(7)
    expected = HKDF(hashes.SHA512(), 200, salt, info).derive(ikm)
    assert asyncio.run(hkdf(BACKEND, salt, ikm, info, 200, hash="SHA-512")) == expected


def test_known_answer_runner() -> None:
    results = asyncio.run(run_known_answer_tests(BACKEND, {"hkdf-sha256-rfc5869": VECTORS}))
    assert len(results) == 3
    assert all(passed for _, passed, _ in results), results
