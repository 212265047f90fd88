"""The pyca backend: RFC 7748 X25519, low-order points, HMAC, AES-GCM and the batch calls.

Also runs the whole known-answer suite (every tests/vectors/*.json file) through
`run_known_answer_tests`, as the browser will with its WebCrypto backend.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hushdrop.crypto.backend import AuthenticationError, CryptoBackend, InvalidPointError
from hushdrop.crypto.kat import EXPECTED_RESULT_COUNTS, run_known_answer_tests
from hushdrop.crypto.pyca import PycaBackend

VECTOR_DIR = Path(__file__).parents[1] / "vectors"
X25519 = json.loads((VECTOR_DIR / "x25519-rfc7748.json").read_text())
GCM = json.loads((VECTOR_DIR / "aes-gcm-spec.json").read_text())
CPACE = json.loads((VECTOR_DIR / "cpace-x25519-sha512.json").read_text())
BACKEND = PycaBackend()
T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def test_implements_the_protocol() -> None:
    assert isinstance(BACKEND, CryptoBackend)
    assert BACKEND.name == "pyca"


def test_random_bytes() -> None:
    a, b = BACKEND.random_bytes(32), BACKEND.random_bytes(32)
    assert len(a) == 32 and a != b
    assert BACKEND.random_bytes(0) == b""


# -- X25519 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", X25519["scalar_mult"], ids=lambda v: v["name"])
def test_x25519_rfc7748(vector: dict) -> None:
    out = run(BACKEND.x25519(bytes.fromhex(vector["scalar"]), bytes.fromhex(vector["u"])))
    assert out.hex() == vector["output"]


def test_x25519_rfc7748_iterated() -> None:
    async def iterate() -> dict[int, str]:
        k = u = (9).to_bytes(32, "little")
        seen = {}
        for i in range(1, 1001):
            k, u = await BACKEND.x25519(k, u), k
            seen[i] = k.hex()
        return seen

    seen = run(iterate())
    for vector in X25519["iterated"]:
        assert seen[vector["iterations"]] == vector["output"]


def test_x25519_rfc7748_diffie_hellman() -> None:
    dh = {k: bytes.fromhex(v) for k, v in X25519["diffie_hellman"].items()}
    base = (9).to_bytes(32, "little")
    assert run(BACKEND.x25519(dh["alice_private"], base)) == dh["alice_public"]
    assert run(BACKEND.x25519(dh["bob_private"], base)) == dh["bob_public"]
    assert run(BACKEND.x25519(dh["alice_private"], dh["bob_public"])) == dh["shared"]
    assert run(BACKEND.x25519(dh["bob_private"], dh["alice_public"])) == dh["shared"]


@pytest.mark.parametrize("point", CPACE["x25519_low_order"]["points"], ids=lambda p: p["name"])
def test_x25519_low_order_points(point: dict) -> None:
    # The draft's B.1.10 list: low-order points of the curve and twist, some non-canonical.
    scalar = bytes.fromhex(CPACE["x25519_low_order"]["s"])
    u = bytes.fromhex(point["u"])
    if point["q"] == "00" * 32:
        with pytest.raises(InvalidPointError):
            run(BACKEND.x25519(scalar, u))
        with pytest.raises(InvalidPointError):
            run(BACKEND.x25519(os.urandom(32), u))  # whatever the scalar
    else:
        assert run(BACKEND.x25519(scalar, u)).hex() == point["q"]


def test_x25519_all_zero_point_and_bad_lengths() -> None:
    with pytest.raises(InvalidPointError):
        run(BACKEND.x25519(os.urandom(32), bytes(32)))
    with pytest.raises(InvalidPointError):
        run(BACKEND.x25519(os.urandom(32), bytes(31)))
    with pytest.raises(ValueError):
        run(BACKEND.x25519(bytes(16), (9).to_bytes(32, "little")))


# -- HMAC -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "data", "mac"),
    [
        # RFC 4231 test cases 1 and 2 (HMAC-SHA-256).
        (
            b"\x0b" * 20,
            b"Hi There",
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        ),
        (
            b"Jefe",
            b"what do ya want for nothing?",
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        ),
    ],
)
def test_hmac_sha256_rfc4231(key: bytes, data: bytes, mac: str) -> None:
    assert run(BACKEND.hmac_sha256(key, data)).hex() == mac


@pytest.mark.parametrize(
    ("key", "data", "mac"),
    [
        # RFC 4231 test cases 1, 2 and 6 (HMAC-SHA-512); 6 has a key longer than the block size.
        (
            b"\x0b" * 20,
            b"Hi There",
            "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
            "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
        ),
        (
            b"Jefe",
            b"what do ya want for nothing?",
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
            "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
        ),
        (
            b"\xaa" * 131,
            b"Test Using Larger Than Block-Size Key - Hash Key First",
            "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352"
            "6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598",
        ),
    ],
)
def test_hmac_sha512_rfc4231(key: bytes, data: bytes, mac: str) -> None:
    assert run(BACKEND.hmac_sha512(key, data)).hex() == mac


def test_hmac_empty_key() -> None:
    # RFC 2104 zero-pads the key, so the empty key equals a single zero byte (the WebCrypto
    # backend relies on that, since WebCrypto refuses to import an empty HMAC key).
    for mac in (BACKEND.hmac_sha256, BACKEND.hmac_sha512):
        assert run(mac(b"", b"data")) == run(mac(b"\x00", b"data"))


# -- AES-GCM --------------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", GCM["tests"], ids=lambda v: v["name"])
def test_aes_gcm_spec_vectors(vector: dict) -> None:
    key, iv, aad, pt = (bytes.fromhex(vector[k]) for k in ("key", "iv", "aad", "pt"))
    sealed = bytes.fromhex(vector["ct"] + vector["tag"])
    assert run(BACKEND.seal(key, iv, pt, aad)) == sealed
    assert run(BACKEND.open(key, iv, sealed, aad)) == pt
    for position in (0, len(sealed) - 1):
        tampered = bytearray(sealed)
        tampered[position] ^= 0x80
        with pytest.raises(AuthenticationError):
            run(BACKEND.open(key, iv, bytes(tampered), aad))
    with pytest.raises(AuthenticationError):
        run(BACKEND.open(key, iv, sealed, aad + b"x"))


def test_aes_gcm_parameter_checks() -> None:
    with pytest.raises(ValueError):
        run(BACKEND.seal(bytes(24), bytes(12), b"x"))  # AES-192 is not offered
    with pytest.raises(ValueError):
        run(BACKEND.seal(bytes(32), bytes(8), b"x"))
    with pytest.raises(AuthenticationError):
        run(BACKEND.open(bytes(32), bytes(12), bytes(15)))


@pytest.mark.parametrize("key_size", [16, 32])
def test_seal_many_and_open_many_match_single_calls(key_size: int) -> None:
    key = os.urandom(key_size)
    sizes = [0, 1, 16384, 777, 16384, 5]
    items = [(os.urandom(12), memoryview(os.urandom(n))) for n in sizes]
    sealed = run(BACKEND.seal_many(key, items))
    expected = b"".join(AESGCM(key).encrypt(nonce, bytes(data), None) for nonce, data in items)
    assert bytes(sealed) == expected

    offsets = [0]
    for n in sizes:
        offsets.append(offsets[-1] + n + 16)
    sealed_items = [
        (nonce, memoryview(expected)[offsets[i] : offsets[i + 1]])
        for i, (nonce, _) in enumerate(items)
    ]
    opened = run(BACKEND.open_many(key, sealed_items))
    assert bytes(opened) == b"".join(bytes(data) for _, data in items)
    assert run(BACKEND.seal_many(key, [])) == b""
    assert run(BACKEND.open_many(key, [])) == b""


def test_open_many_is_all_or_nothing() -> None:
    key = os.urandom(32)
    items = [(os.urandom(12), memoryview(os.urandom(100))) for _ in range(4)]
    sealed = [(nonce, AESGCM(key).encrypt(nonce, bytes(data), None)) for nonce, data in items]
    bad = bytearray(sealed[3][1])
    bad[-1] ^= 1
    batch = [(n, memoryview(c)) for n, c in sealed[:3]] + [(sealed[3][0], memoryview(bytes(bad)))]
    with pytest.raises(AuthenticationError):
        run(BACKEND.open_many(key, batch))
    short = [(sealed[0][0], memoryview(sealed[0][1])), (os.urandom(12), memoryview(bytes(10)))]
    with pytest.raises(AuthenticationError):
        run(BACKEND.open_many(key, short))


def test_cached_cipher_follows_the_key() -> None:
    nonce, data = bytes(12), memoryview(b"same plaintext")
    k1, k2 = os.urandom(32), os.urandom(32)
    a = bytes(run(BACKEND.seal_many(k1, [(nonce, data)])))
    b = bytes(run(BACKEND.seal_many(k2, [(nonce, data)])))
    assert a != b
    assert a == bytes(run(BACKEND.seal_many(k1, [(nonce, data)])))
    assert a == AESGCM(k1).encrypt(nonce, bytes(data), None)


# -- The complete known-answer suite --------------------------------------------------------------


def load_all_vectors() -> dict[str, object]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(VECTOR_DIR.glob("*.json"))}


def test_every_vector_file_has_a_runner() -> None:
    assert set(load_all_vectors()) == set(EXPECTED_RESULT_COUNTS)


def test_full_known_answer_suite() -> None:
    results = run(run_known_answer_tests(BACKEND, load_all_vectors()))
    failures = [r for r in results if not r[1]]
    assert not failures, failures
    assert len(results) == sum(EXPECTED_RESULT_COUNTS.values()) == 246


def test_known_answer_suite_catches_a_broken_backend() -> None:
    class FlippingBackend(PycaBackend):
        """Corrupts one bit of every batch: every chunked vector must notice."""

        async def seal_many(
            self, key: bytes, items: Sequence[tuple[bytes, memoryview]]
        ) -> bytearray:
            out = await super().seal_many(key, items)
            if out:
                out[0] ^= 1
            return out

    class LaxBackend(PycaBackend):
        """Returns the all-zero point instead of raising (a WebCrypto-style slip)."""

        async def x25519(self, scalar: bytes, u: bytes) -> bytes:
            try:
                return await super().x25519(scalar, u)
            except InvalidPointError:
                return bytes(32)

    class UnkeyedHmac(PycaBackend):
        async def hmac_sha256(self, key: bytes, data: bytes) -> bytes:
            return await super().hmac_sha256(b"", data)

    class UnkeyedHmac512(PycaBackend):
        async def hmac_sha512(self, key: bytes, data: bytes) -> bytes:
            return await super().hmac_sha512(b"", data)

    vectors = load_all_vectors()
    flipped = run(run_known_answer_tests(FlippingBackend(), vectors))
    assert any(not ok and "aes-gcm" in name for name, ok, _ in flipped)
    assert any(not ok and "re-encrypt" in name for name, ok, _ in flipped)
    # CPace's own zero check still aborts, so a lax x25519 only shows in the x25519 vectors.
    lax = run(run_known_answer_tests(LaxBackend(), vectors))
    assert all(ok for name, ok, _ in lax if name.startswith("cpace"))
    assert [name for name, ok, _ in lax if not ok] == [
        "x25519: all-zero output raises InvalidPointError"
    ]
    unkeyed = run(run_known_answer_tests(UnkeyedHmac(), vectors))
    assert all(not ok for name, ok, _ in unkeyed if name.startswith("hkdf"))
    assert all(ok for name, ok, _ in unkeyed if not name.startswith("hkdf"))
    # HMAC-SHA-512 carries the chunked-encryption KDF and CPace key confirmation: every
    # Wycheproof vector that gets past the header check, and every header check that relies on
    # the commitment, must notice.
    unkeyed512 = run(run_known_answer_tests(UnkeyedHmac512(), vectors))
    failed = {name for name, ok, _ in unkeyed512 if not ok}
    assert "cpace X25519 (B.1): key confirmation Ta, Tb (HMAC-SHA-512)" in failed
    for name, _, _ in unkeyed512:
        if name.startswith("chunked") and not name.endswith("header rejected"):
            assert name in failed, name
    assert not any(name.startswith(("hkdf", "aes-gcm", "x25519")) for name in failed)
    assert run(run_known_answer_tests(BACKEND, {"no-such-file": {}})) == [
        ("no-such-file", False, "no known-answer runner for this vector file")
    ]
    broken = run(run_known_answer_tests(BACKEND, {"hkdf-sha256-rfc5869": {"tests": [{}]}}))
    assert broken and not any(ok for _, ok, _ in broken)
