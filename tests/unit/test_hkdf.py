"""HKDF-SHA-256 through the backend: RFC 5869 vectors, edge cases, and a cross-check with pyca."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand
from hushdrop.crypto.hkdf import MAX_OUTPUT_SIZE, hkdf, hkdf_expand, hkdf_extract
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


@pytest.mark.parametrize("length", [-1, MAX_OUTPUT_SIZE + 1])
def test_expand_rejects_impossible_lengths(length: int) -> None:
    with pytest.raises(ValueError):
        asyncio.run(hkdf_expand(BACKEND, bytes(32), b"", length))


def test_known_answer_runner() -> None:
    results = asyncio.run(run_known_answer_tests(BACKEND, {"hkdf-sha256-rfc5869": VECTORS}))
    assert len(results) == 3
    assert all(passed for _, passed, _ in results), results
