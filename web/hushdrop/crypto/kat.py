"""Runtime-independent known-answer tests for the crypto layer.

This module owns the code that runs the published test vectors in tests/vectors/*.json against
any `CryptoBackend`: pytest runs it with the pyca backend, and the browser can run the very same
vectors against its WebCrypto backend. It takes already-parsed JSON (keyed by file stem) so that
it does no file or network I/O itself.

Vector files and what is checked (result counts in parentheses):

- hkdf-sha256-rfc5869: RFC 5869 test cases 1-3, Extract and Expand (3).
- aes-gcm-spec: GCM specification test cases 1-4 and 13-16: seal, open, tampered tag, plus
  seal_many/open_many batches (32).
- x25519-rfc7748: RFC 7748 sections 5.2 and 6.1, incl. the 1000-iteration value, and the
  InvalidPointError the backend contract requires for an all-zero result (9).
- cpace-x25519-sha512: every X25519 vector of draft-irtf-cfrg-cpace-21 (string utilities,
  generator, shares, K, ISK_IR, ISK_SY, sid_output) and the low-order points of appendix B.1.10,
  both as scalar_mult_vfy results and as aborted protocol runs, plus Hushdrop's section 10.4 key
  confirmation (HMAC-SHA-512 tags through the backend) from the draft's ISK_IR, checked against
  the standard library's hmac; the draft publishes no confirmation vectors (62).
- chunked-encryption-wycheproof-aes-{128,256}-gcm: Wycheproof's C2SP chunked-encryption vectors
  for Cobblestone-128 and Cobblestone-256 (HKDF-Expand-SHA-512 with AES-128-GCM / AES-256-GCM),
  the latter exactly Hushdrop's instantiation. Every vector runs in full mode (70 each): header
  failures are rejected by ChunkDecryptor.create (wrong key size, truncated header, commitment
  mismatch); every other vector checks the derived key, base nonce and commitment, then decrypts
  from key, context and header; valid ones are also re-encrypted with the vector's salt and must
  reproduce the ciphertext byte for byte.

A vector file with an unknown stem yields one failed result, so nothing is skipped silently.
"""

from __future__ import annotations

import hashlib
import hmac
import zlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from hushdrop.crypto import cpace
from hushdrop.crypto.backend import (
    AuthenticationError,
    CryptoBackend,
    CryptoError,
    InvalidPointError,
)
from hushdrop.crypto.chunked import (
    HEADER_SIZE,
    KDF_HASH,
    SALT_SIZE,
    ChunkDecryptor,
    ChunkEncryptor,
    TruncatedError,
    derive_message_keys,
)
from hushdrop.crypto.curve25519 import decode_u_coordinate
from hushdrop.crypto.hkdf import hkdf, hkdf_expand, hkdf_extract

Result = tuple[str, bool, str]
Check = Callable[[], Awaitable[str]]

# Feeding ciphertext in these irregular piece sizes exercises every buffering path of the
# streaming code: partial blocks, blocks straddling two calls, several blocks in one call.
_PIECE_SIZES = (5, 16400, 9999, 40000, 1)


class _Mismatch(Exception):
    """A check ran but produced the wrong answer."""


def _hex(value: str) -> bytes:
    return bytes.fromhex(value)


def _expect(actual: bytes, expected: bytes, what: str) -> str:
    actual, expected = bytes(actual), bytes(expected)
    if actual == expected:
        return f"{what} matches"
    if max(len(actual), len(expected)) <= 128:
        raise _Mismatch(f"{what}: got {actual.hex()}, expected {expected.hex()}")
    # Long values (whole ciphertexts): say where they part instead of printing megabytes of hex.
    offset = next(
        (i for i, (a, b) in enumerate(zip(actual, expected, strict=False)) if a != b),
        min(len(actual), len(expected)),
    )
    raise _Mismatch(
        f"{what}: {len(actual)} bytes, expected {len(expected)}; first difference at {offset}"
    )


async def _expect_raises(
    action: Callable[[], Awaitable[object]], errors: tuple[type[Exception], ...], what: str
) -> str:
    try:
        await action()
    except errors as error:
        return f"{what}: rejected with {type(error).__name__}"
    raise _Mismatch(f"{what}: accepted, expected {' or '.join(e.__name__ for e in errors)}")


def _pieces(data: bytes) -> Iterator[memoryview]:
    view = memoryview(data)
    offset = 0
    index = 0
    while offset < len(view):
        size = _PIECE_SIZES[index % len(_PIECE_SIZES)]
        yield view[offset : offset + size]
        offset += size
        index += 1


async def _run(results: list[Result], name: str, check: Check) -> None:
    # Every check is isolated: a crash in one vector is reported as that vector's failure and the
    # remaining vectors still run.
    try:
        detail = await check()
    except _Mismatch as mismatch:
        results.append((name, False, str(mismatch)))
    except Exception as error:
        results.append((name, False, f"unexpected {type(error).__name__}: {error}"))
    else:
        results.append((name, True, detail))


# -- HKDF -----------------------------------------------------------------------------------------


async def _hkdf_vectors(backend: CryptoBackend, data: Any, results: list[Result]) -> None:
    for test in data["tests"]:

        async def check(test: Any = test) -> str:
            salt, ikm, info = _hex(test["salt"]), _hex(test["ikm"]), _hex(test["info"])
            prk = await hkdf_extract(backend, salt, ikm)
            _expect(prk, _hex(test["prk"]), "PRK")
            _expect(await hkdf_expand(backend, prk, info, test["length"]), _hex(test["okm"]), "OKM")
            return _expect(
                await hkdf(backend, salt, ikm, info, test["length"]),
                _hex(test["okm"]),
                "PRK and OKM",
            )

        await _run(results, f"hkdf: {test['name']}", check)


# -- AES-GCM and X25519 backend primitives ------------------------------------------------------


async def _aes_gcm_vectors(backend: CryptoBackend, data: Any, results: list[Result]) -> None:
    batches: dict[bytes, list[Any]] = {}
    for test in data["tests"]:
        key, iv, aad = _hex(test["key"]), _hex(test["iv"]), _hex(test["aad"])
        pt, sealed = _hex(test["pt"]), _hex(test["ct"] + test["tag"])
        tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])

        async def seal(
            key: bytes = key,
            iv: bytes = iv,
            pt: bytes = pt,
            aad: bytes = aad,
            sealed: bytes = sealed,
        ) -> str:
            return _expect(await backend.seal(key, iv, pt, aad), sealed, "ciphertext || tag")

        async def open_(
            key: bytes = key,
            iv: bytes = iv,
            sealed: bytes = sealed,
            aad: bytes = aad,
            pt: bytes = pt,
        ) -> str:
            return _expect(await backend.open(key, iv, sealed, aad), pt, "plaintext")

        async def reject(
            key: bytes = key, iv: bytes = iv, tampered: bytes = tampered, aad: bytes = aad
        ) -> str:
            return await _expect_raises(
                lambda: backend.open(key, iv, tampered, aad),
                (AuthenticationError,),
                "flipped tag bit",
            )

        await _run(results, f"aes-gcm: {test['name']} seal", seal)
        await _run(results, f"aes-gcm: {test['name']} open", open_)
        await _run(results, f"aes-gcm: {test['name']} tampered", reject)
        if not aad:
            batches.setdefault(key, []).append(test)

    for key, tests in batches.items():
        names = ", ".join(test["name"].rsplit(" ", 1)[-1] for test in tests)
        items = [(_hex(t["iv"]), memoryview(_hex(t["pt"]))) for t in tests]
        sealed_items = [(_hex(t["iv"]), memoryview(_hex(t["ct"] + t["tag"]))) for t in tests]
        sealed_all = b"".join(_hex(t["ct"] + t["tag"]) for t in tests)
        plain_all = b"".join(_hex(t["pt"]) for t in tests)

        async def seal_many(
            key: bytes = key, items: Any = items, expected: bytes = sealed_all
        ) -> str:
            return _expect(await backend.seal_many(key, items), expected, "batch ciphertexts")

        async def open_many(
            key: bytes = key, items: Any = sealed_items, expected: bytes = plain_all
        ) -> str:
            return _expect(await backend.open_many(key, items), expected, "batch plaintexts")

        await _run(results, f"aes-gcm: seal_many, test cases {names}", seal_many)
        await _run(results, f"aes-gcm: open_many, test cases {names}", open_many)


async def _x25519_vectors(backend: CryptoBackend, data: Any, results: list[Result]) -> None:
    for test in data["scalar_mult"]:

        async def check(test: Any = test) -> str:
            out = await backend.x25519(_hex(test["scalar"]), _hex(test["u"]))
            return _expect(out, _hex(test["output"]), "X25519 output")

        await _run(results, f"x25519: {test['name']}", check)

    wanted = {test["iterations"]: _hex(test["output"]) for test in data["iterated"]}
    outcomes: dict[int, bytes] = {}

    async def iterate() -> None:
        # RFC 7748 5.2: k = u = 9; repeatedly k, u = X25519(k, u), k.
        k = u = (9).to_bytes(32, "little")
        for iteration in range(1, max(wanted) + 1):
            k, u = await backend.x25519(k, u), k
            if iteration in wanted:
                outcomes[iteration] = k

    error: Exception | None = None
    try:
        await iterate()
    except Exception as exc:
        error = exc
    for iterations, expected in sorted(wanted.items()):

        async def check(iterations: int = iterations, expected: bytes = expected) -> str:
            if error is not None:
                raise error
            return _expect(outcomes[iterations], expected, f"after {iterations} iterations")

        await _run(results, f"x25519: RFC 7748 5.2 iterated x{iterations}", check)

    async def zero_point() -> str:
        # RFC 7748 section 6.1's all-zero check, which the backend contract turns into
        # InvalidPointError. CPace checks again itself, so this is the only place a backend that
        # forgets it shows up.
        scalar = _hex(data["scalar_mult"][0]["scalar"])
        return await _expect_raises(
            lambda: backend.x25519(scalar, bytes(32)), (InvalidPointError,), "u = 0"
        )

    await _run(results, "x25519: all-zero output raises InvalidPointError", zero_point)

    dh = data["diffie_hellman"]
    base = (9).to_bytes(32, "little")
    for who in ("alice", "bob"):

        async def public(who: str = who) -> str:
            out = await backend.x25519(_hex(dh[f"{who}_private"]), base)
            return _expect(out, _hex(dh[f"{who}_public"]), f"{who}'s public key")

        await _run(results, f"x25519: RFC 7748 6.1 {who} public key", public)
    for me, peer in (("alice", "bob"), ("bob", "alice")):

        async def shared(me: str = me, peer: str = peer) -> str:
            out = await backend.x25519(_hex(dh[f"{me}_private"]), _hex(dh[f"{peer}_public"]))
            return _expect(out, _hex(dh["shared"]), "shared secret")

        await _run(results, f"x25519: RFC 7748 6.1 shared secret ({me})", shared)


# -- CPace ----------------------------------------------------------------------------------------


async def _cpace_vectors(backend: CryptoBackend, data: Any, results: list[Result]) -> None:
    for i, test in enumerate(data["prepend_len"]):

        async def prepend(test: Any = test) -> str:
            return _expect(cpace.prepend_len(_hex(test["input"])), _hex(test["output"]), "output")

        await _run(results, f"cpace: prepend_len #{i + 1}", prepend)
    for i, test in enumerate(data["lv_cat"]):

        async def lv(test: Any = test) -> str:
            out = cpace.lv_cat(*(_hex(x) for x in test["inputs"]))
            return _expect(out, _hex(test["output"]), "output")

        await _run(results, f"cpace: lv_cat #{i + 1}", lv)
    for i, test in enumerate(data["lexicographically_larger"]):

        async def larger(test: Any = test) -> str:
            out = cpace.lexicographically_larger(_hex(test["a"]), _hex(test["b"]))
            if out != test["result"]:
                raise _Mismatch(f"got {out}, expected {test['result']}")
            return f"{out} as expected"

        await _run(results, f"cpace: lexicographically_larger #{i + 1}", larger)
    for i, test in enumerate(data["o_cat"]):

        async def ocat(test: Any = test) -> str:
            out = cpace.o_cat(_hex(test["a"]), _hex(test["b"]))
            return _expect(out, _hex(test["output"]), "output")

        await _run(results, f"cpace: o_cat #{i + 1}", ocat)
    for kind, function in (
        ("transcript_ir", cpace.transcript_ir),
        ("transcript_oc", cpace.transcript_oc),
    ):
        for i, test in enumerate(data[kind]):

            async def transcript(test: Any = test, function: Any = function) -> str:
                args = (_hex(test[k]) for k in ("ya", "ada", "yb", "adb"))
                return _expect(function(*args), _hex(test["output"]), "output")

            await _run(results, f"cpace: {kind} #{i + 1}", transcript)

    await _cpace_run_vectors(backend, data["x25519_sha512"], results)
    await _cpace_low_order_vectors(backend, data["x25519_low_order"], results)


async def _cpace_run_vectors(backend: CryptoBackend, v: Any, results: list[Result]) -> None:
    prs, ci, sid = _hex(v["PRS"]), _hex(v["CI"]), _hex(v["sid"])
    ya, yb, ada, adb = _hex(v["ya"]), _hex(v["yb"]), _hex(v["ADa"]), _hex(v["ADb"])
    share_a, share_b, k = _hex(v["Ya"]), _hex(v["Yb"]), _hex(v["K"])
    run = {"sid": sid, "share_a": share_a, "ad_a": ada, "share_b": share_b, "ad_b": adb}
    label = "cpace X25519 (B.1)"

    async def gen_string() -> str:
        out = cpace.generator_string(cpace.DSI, prs, ci, sid, cpace.HASH_BLOCK_SIZE)
        return _expect(out, _hex(v["generator_string"]), "generator string")

    async def gen_hash() -> str:
        gen_str = _hex(v["generator_string"])
        out = hashlib.sha512(gen_str).digest()[: cpace.FIELD_SIZE_BYTES]
        return _expect(out, _hex(v["hash_generator_string"]), "hash of the generator string")

    async def gen_decoded() -> str:
        out = decode_u_coordinate(_hex(v["hash_generator_string"])).to_bytes(32, "little")
        return _expect(out, _hex(v["decoded_field_element"]), "decoded field element")

    async def generator() -> str:
        return _expect(cpace.calculate_generator(prs, ci, sid), _hex(v["g"]), "generator g")

    async def share(y: bytes, expected: bytes) -> str:
        _, out = await cpace.cpace_share(backend, _hex(v["g"]), y)
        return _expect(out, expected, "share")

    async def shared_k(y: bytes, peer: bytes) -> str:
        return _expect(await cpace.scalar_mult_vfy(backend, y, peer), k, "K")

    async def isk_input(transcript: bytes, expected: bytes) -> str:
        return _expect(cpace.lv_cat(cpace.DSI_ISK, sid, k) + transcript, expected, "ISK input")

    async def isk_initiator() -> str:
        out = await cpace.cpace_isk_initiator(backend, ya=ya, **run)
        return _expect(out, _hex(v["ISK_IR"]), "ISK_IR")

    async def isk_responder() -> str:
        out = await cpace.cpace_isk_responder(backend, yb=yb, **run)
        return _expect(out, _hex(v["ISK_IR"]), "ISK_IR")

    async def isk_symmetric(
        scalar: bytes, own: tuple[bytes, bytes], peer: tuple[bytes, bytes]
    ) -> str:
        out = await cpace.cpace_isk_symmetric(
            backend,
            sid=sid,
            scalar=scalar,
            own_share=own[0],
            own_ad=own[1],
            peer_share=peer[0],
            peer_ad=peer[1],
        )
        return _expect(out, _hex(v["ISK_SY"]), "ISK_SY")

    transcript_ir = cpace.transcript_ir(share_a, ada, share_b, adb)
    transcript_oc = cpace.transcript_oc(share_a, ada, share_b, adb)
    checks: list[tuple[str, Check]] = [
        ("generator_string", gen_string),
        ("hash of generator string", gen_hash),
        ("decoded field element", gen_decoded),
        ("calculate_generator", generator),
        ("Ya", lambda: share(ya, share_a)),
        ("Yb", lambda: share(yb, share_b)),
        ("K = scalar_mult_vfy(ya, Yb)", lambda: shared_k(ya, share_b)),
        ("K = scalar_mult_vfy(yb, Ya)", lambda: shared_k(yb, share_a)),
        ("transcript_ir", lambda: _done(_expect(transcript_ir, _hex(v["transcript_ir"]), "t"))),
        ("ISK_IR hash input", lambda: isk_input(transcript_ir, _hex(v["ISK_IR_hash_input"]))),
        ("ISK_IR initiator", isk_initiator),
        ("ISK_IR responder", isk_responder),
        ("transcript_oc", lambda: _done(_expect(transcript_oc, _hex(v["transcript_oc"]), "t"))),
        ("ISK_SY hash input", lambda: isk_input(transcript_oc, _hex(v["ISK_SY_hash_input"]))),
        ("ISK_SY as A", lambda: isk_symmetric(ya, (share_a, ada), (share_b, adb))),
        ("ISK_SY as B", lambda: isk_symmetric(yb, (share_b, adb), (share_a, ada))),
        (
            "sid_output_ir",
            lambda: _done(
                _expect(
                    cpace.sid_output_ir(share_a, ada, share_b, adb), _hex(v["sid_output_ir"]), "sid"
                )
            ),
        ),
        (
            "sid_output_oc",
            lambda: _done(
                _expect(
                    cpace.sid_output_oc(share_a, ada, share_b, adb), _hex(v["sid_output_oc"]), "sid"
                )
            ),
        ),
    ]
    for name, check in checks:
        await _run(results, f"{label}: {name}", check)

    async def key_confirmation() -> str:
        # Section 10.4 with HMAC-SHA-512, computed independently of the backend and of cpace.py.
        isk = _hex(v["ISK_IR"])
        mac_key = hashlib.sha512(b"CPaceMac" + sid + isk).digest()
        expected_a = hmac.new(mac_key, cpace.lv_cat(share_a, ada), "sha512").digest()
        expected_b = hmac.new(mac_key, cpace.lv_cat(share_b, adb), "sha512").digest()
        tag_a, tag_b = await cpace.confirmation_tags(backend, isk=isk, **run)
        _expect(tag_a, expected_a, "Ta")
        return _expect(tag_b, expected_b, "Tb")

    await _run(results, f"{label}: key confirmation Ta, Tb (HMAC-SHA-512)", key_confirmation)


async def _done(detail: str) -> str:
    return detail


async def _cpace_low_order_vectors(backend: CryptoBackend, v: Any, results: list[Result]) -> None:
    s = _hex(v["s"])
    # Any valid share and scalar will do for the protocol runs: only the malicious share matters.
    generator = cpace.calculate_generator(b"password", b"", b"")
    honest_scalar = bytes(range(32))
    for point in v["points"]:
        u, q = _hex(point["u"]), _hex(point["q"])

        async def vfy(u: bytes = u, q: bytes = q) -> str:
            if q == cpace.IDENTITY:
                return await _expect_raises(
                    lambda: cpace.scalar_mult_vfy(backend, s, u),
                    (InvalidPointError,),
                    "neutral element",
                )
            return _expect(await cpace.scalar_mult_vfy(backend, s, u), q, "scalar_mult_vfy")

        await _run(results, f"cpace low-order (B.1.10): scalar_mult_vfy(s, {point['name']})", vfy)
        if not point["abort"]:
            continue

        async def initiator_aborts(u: bytes = u) -> str:
            _, share_a = await cpace.cpace_share(backend, generator, honest_scalar)
            return await _expect_raises(
                lambda: cpace.cpace_isk_initiator(
                    backend,
                    sid=b"",
                    ya=honest_scalar,
                    share_a=share_a,
                    ad_a=b"",
                    share_b=u,
                    ad_b=b"",
                ),
                (InvalidPointError,),
                "Yb",
            )

        async def responder_aborts(u: bytes = u) -> str:
            _, share_b = await cpace.cpace_share(backend, generator, honest_scalar)
            return await _expect_raises(
                lambda: cpace.cpace_isk_responder(
                    backend,
                    sid=b"",
                    yb=honest_scalar,
                    share_a=u,
                    ad_a=b"",
                    share_b=share_b,
                    ad_b=b"",
                ),
                (InvalidPointError,),
                "Ya",
            )

        name = point["name"]
        await _run(results, f"cpace low-order: initiator aborts on Yb = {name}", initiator_aborts)
        await _run(results, f"cpace low-order: responder aborts on Ya = {name}", responder_aborts)


# -- C2SP chunked encryption ---------------------------------------------------------------------


async def _decrypt_stream(decryptor: ChunkDecryptor, body: bytes) -> tuple[bytes, Exception | None]:
    out = bytearray()
    try:
        for piece in _pieces(body):
            out += await decryptor.update(piece)
        out += await decryptor.finalize()
    except CryptoError as error:
        return bytes(out), error
    return bytes(out), None


async def _wycheproof_vectors(backend: CryptoBackend, data: Any, results: list[Result]) -> None:
    for group in data["testGroups"]:
        aead, sha = group["aead"], group["sha"]
        if sha != KDF_HASH:
            raise ValueError(f"these vectors use HKDF-Expand-{sha}; Hushdrop uses {KDF_HASH}")
        for test in group["tests"]:
            await _wycheproof_case(backend, aead, test, results)


async def _wycheproof_case(
    backend: CryptoBackend, aead: str, test: Any, results: list[Result]
) -> None:
    """One Wycheproof C2SP chunked-encryption vector, in full mode (not the spec's raw mode).

    Header failures: ChunkDecryptor.create must reject the header (wrong key size, truncated
    header, or a commitment that does not match) before any chunk is decrypted. Every other
    vector: the derived key, base nonce and commitment must be the vector's (derive); decryption
    from the key, context and header must succeed or fail as the vector says (decrypt); and valid
    messages must re-encrypt, with the vector's salt, to exactly the vector's ciphertext.
    """
    name = f"chunked {aead} wycheproof #{test['tcId']} ({test['comment']})"
    flags = set(test["flags"])
    valid = test["result"] == "valid"
    ct = zlib.decompress(_hex(test["ct"]))
    key, context = _hex(test["key"]), _hex(test["ctx"])
    header, body = ct[:HEADER_SIZE], ct[HEADER_SIZE:]

    if "aeadKey" not in test:
        # HeaderFailure vectors carry no aeadKey/baseNonce: nothing may get past the header.
        errors: tuple[type[Exception], ...]
        if "InvalidKeySize" in flags:
            errors, what = (ValueError,), f"{len(key)}-byte input key"
        elif len(ct) < HEADER_SIZE:
            errors, what = (TruncatedError,), f"{len(ct)}-byte ciphertext"
        else:
            errors, what = (AuthenticationError,), "commitment mismatch"

        async def header_failure() -> str:
            return await _expect_raises(
                lambda: ChunkDecryptor.create(backend, key, context, header, aead), errors, what
            )

        await _run(results, f"{name} header rejected", header_failure)
        return

    async def derive() -> str:
        message_key, base_nonce, commitment = await derive_message_keys(
            backend, key, ct[:SALT_SIZE], context, aead
        )
        _expect(message_key, _hex(test["aeadKey"]), "message key")
        _expect(base_nonce, _hex(test["baseNonce"]), "base nonce")
        _expect(commitment, ct[SALT_SIZE:HEADER_SIZE], "commitment")
        return "key, base nonce and commitment match"

    async def decrypt() -> str:
        # The commitment check in create() must pass: the header of these vectors is intact.
        decryptor = await ChunkDecryptor.create(backend, key, context, header, aead)
        out, error = await _decrypt_stream(decryptor, body)
        if valid:
            if error is not None:
                raise _Mismatch(f"valid message rejected: {type(error).__name__}: {error}")
            if len(out) != test["msgLength"]:
                raise _Mismatch(f"got {len(out)} bytes, expected {test['msgLength']}")
            return _expect(hashlib.sha512(out).digest(), _hex(test["msgSha512"]), "SHA-512")
        if error is None:
            raise _Mismatch(f"invalid message accepted ({len(out)} bytes)")
        if "msgLength" in test:
            # PartialPlaintext: at most the valid prefix may have been released.
            if len(out) > test["msgLength"]:
                raise _Mismatch(f"released {len(out)} bytes, prefix is {test['msgLength']}")
            if len(out) == test["msgLength"]:
                _expect(hashlib.sha512(out).digest(), _hex(test["msgSha512"]), "prefix SHA-512")
        elif out:
            raise _Mismatch(f"released {len(out)} bytes of an invalid message")
        # A failed stream must keep failing rather than report a clean end of message.
        await _expect_raises(decryptor.finalize, (CryptoError,), "finalize after failure")
        return f"rejected with {type(error).__name__} after {len(out)} plaintext bytes"

    await _run(results, f"{name} derive", derive)
    await _run(results, f"{name} decrypt", decrypt)
    if not valid:
        return

    async def reencrypt() -> str:
        decryptor = await ChunkDecryptor.create(backend, key, context, header, aead)
        message, error = await _decrypt_stream(decryptor, body)
        if error is not None:
            raise error
        encryptor = await ChunkEncryptor.create(
            backend, key, context, salt=ct[:SALT_SIZE], aead=aead
        )
        out = bytearray(encryptor.header)
        for piece in _pieces(message):
            out += await encryptor.update(piece)
        out += await encryptor.finalize()
        return _expect(bytes(out), ct, "ciphertext")

    await _run(results, f"{name} re-encrypt", reencrypt)


_RUNNERS: dict[str, Callable[[CryptoBackend, Any, list[Result]], Awaitable[None]]] = {
    "hkdf-sha256-rfc5869": _hkdf_vectors,
    "aes-gcm-spec": _aes_gcm_vectors,
    "x25519-rfc7748": _x25519_vectors,
    "cpace-x25519-sha512": _cpace_vectors,
    "chunked-encryption-wycheproof-aes-128-gcm": _wycheproof_vectors,
    "chunked-encryption-wycheproof-aes-256-gcm": _wycheproof_vectors,
}

# How many results each vector file yields when it is complete; lets callers notice a vector file
# that silently lost tests.
EXPECTED_RESULT_COUNTS = {
    "hkdf-sha256-rfc5869": 3,
    "aes-gcm-spec": 32,
    "x25519-rfc7748": 9,
    "cpace-x25519-sha512": 62,
    "chunked-encryption-wycheproof-aes-128-gcm": 70,
    "chunked-encryption-wycheproof-aes-256-gcm": 70,
}


async def run_known_answer_tests(
    backend: CryptoBackend, vectors: dict[str, object]
) -> list[tuple[str, bool, str]]:
    """Run every vector file in `vectors` (file stem -> parsed JSON) against `backend`.

    Returns one (name, passed, detail) per check, in file order. Never raises for a failing
    vector: failures, including crashes and malformed files, are reported as results.
    """
    results: list[Result] = []
    for stem, data in vectors.items():
        runner = _RUNNERS.get(stem)
        if runner is None:
            results.append((stem, False, "no known-answer runner for this vector file"))
            continue
        before = len(results)
        try:
            await runner(backend, data, results)
        except Exception as error:
            results.append((stem, False, f"malformed vector file: {type(error).__name__}: {error}"))
            continue
        expected = EXPECTED_RESULT_COUNTS[stem]
        if len(results) - before != expected:
            results.append(
                (stem, False, f"ran {len(results) - before} checks, expected {expected}")
            )
    return results
