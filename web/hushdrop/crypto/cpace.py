"""CPace with X25519 and SHA-512 (CPACE-X25519-SHA512), exactly as draft-irtf-cfrg-cpace-21.

This module owns Hushdrop's password-authenticated key exchange: the draft's string encodings
(prepend_len, lv_cat, o_cat, transcripts), the generator derivation (section 8.2 with the
appendix A.5 Elligator 2 map from `hushdrop.crypto.curve25519`), the public shares, the shared
point K with the abort on the neutral element (scalar_mult_vfy), the intermediate session key ISK
(section 7.2) for initiator-responder and symmetric mode, the optional sid_output (section 10.6),
and the explicit key confirmation that section 10.4 suggests.

All X25519 operations go through `backend.x25519` and the confirmation MAC (HMAC-SHA-512) through
`backend.hmac_sha512`; SHA-512 is `hashlib`. Names follow the draft where that helps checking
against it: Ya/Yb are the shares, ADa/ADb the associated data, sid the session identifier, CI the
channel identifier and PRS the password-related string.

A typical initiator-responder run (A speaks first):

    g = calculate_generator(prs, ci, sid)          # both sides
    ya, share_a = await cpace_share(backend, g)    # A sends share_a, ad_a
    yb, share_b = await cpace_share(backend, g)    # B sends share_b, ad_b
    isk = await cpace_isk_initiator(backend, sid=sid, ya=ya, share_a=share_a, ad_a=ad_a,
                                    share_b=share_b, ad_b=ad_b)           # on A
    isk = await cpace_isk_responder(backend, sid=sid, yb=yb, share_a=share_a, ad_a=ad_a,
                                    share_b=share_b, ad_b=ad_b)           # on B
    ta, tb = await confirmation_tags(backend, sid=sid, isk=isk, share_a=share_a, ad_a=ad_a,
                                     share_b=share_b, ad_b=ad_b)          # both; A sends ta,
    verify_confirmation_tag(expected=tb, received=tag_from_b)             # B sends tb

Either ISK function raises InvalidPointError when the peer's share is malformed or low order.
"""

from __future__ import annotations

import hashlib
import hmac

from hushdrop.crypto.backend import (
    X25519_SIZE,
    AuthenticationError,
    CryptoBackend,
    InvalidPointError,
)
from hushdrop.crypto.curve25519 import (
    FIELD_SIZE_BITS,
    FIELD_SIZE_BYTES,
    decode_u_coordinate,
    elligator2,
    encode_u_coordinate,
)

CPACE_DRAFT = "draft-irtf-cfrg-cpace-21"
SUITE = "CPACE-X25519-SHA512"

# G_X25519 constants (section 8.2).
DSI = b"CPace255"
DSI_ISK = DSI + b"_ISK"
IDENTITY = bytes(FIELD_SIZE_BYTES)  # G.I, the neutral element: zero_bytes(32)
SCALAR_SIZE = FIELD_SIZE_BYTES  # sample_scalar() = sample_random_bytes(G.field_size_bytes)
SHARE_SIZE = X25519_SIZE

# H = SHA-512: b_in_bytes = 64, s_in_bytes (input block size) = 128 (section 6.2).
HASH_SIZE = 64
HASH_BLOCK_SIZE = 128
ISK_SIZE = HASH_SIZE

# Labels from sections 10.4 and 10.6.
SID_OUTPUT_LABEL = b"CPaceSidOutput"
MAC_KEY_LABEL = b"CPaceMac"
# Section 10.4 leaves the MAC open ("such as HMAC or CMAC"). Hushdrop uses HMAC with the suite's
# hash, HMAC-SHA-512 (via backend.hmac_sha512), as other public CPace implementations do; tags are
# its full 64-byte output.
CONFIRMATION_TAG_SIZE = 64


def _sha512(data: bytes) -> bytes:
    return hashlib.sha512(data).digest()


# -- String utilities (appendix A.1 and A.3) ------------------------------------------------------


def prepend_len(data: bytes) -> bytes:
    """Prefix `data` with its length encoded as LEB128 (appendix A.1.1)."""
    length = len(data)
    encoded = bytearray()
    while True:
        # Seven bits per byte, least significant group first; bit 7 flags that more follow.
        if length < 128:
            encoded.append(length)
        else:
            encoded.append((length & 0x7F) | 0x80)
        length >>= 7
        if length == 0:
            break
    return bytes(encoded) + bytes(data)


def lv_cat(*args: bytes) -> bytes:
    """Length-value concatenation: prepend_len(a0) || prepend_len(a1) || ... (appendix A.1.3)."""
    return b"".join(prepend_len(arg) for arg in args)


def lexicographically_larger(bytes1: bytes, bytes2: bytes) -> bool:
    """True if bytes1 > bytes2 in the draft's lexicographical order (appendix A.3.1).

    The draft spells it "lexiographically_larger". Python's bytes comparison is this same order
    (byte-wise, then a proper prefix is smaller), which the appendix A.3.3 vectors confirm.
    """
    return bytes(bytes1) > bytes(bytes2)


def o_cat(bytes1: bytes, bytes2: bytes) -> bytes:
    """Ordered concatenation: b"oc" || larger || smaller (appendix A.3.2)."""
    if lexicographically_larger(bytes1, bytes2):
        return b"oc" + bytes1 + bytes2
    return b"oc" + bytes2 + bytes1


def transcript_ir(share_a: bytes, ad_a: bytes, share_b: bytes, ad_b: bytes) -> bytes:
    """Initiator-responder transcript: lv_cat(Ya, ADa) || lv_cat(Yb, ADb) (appendix A.3.4)."""
    return lv_cat(share_a, ad_a) + lv_cat(share_b, ad_b)


def transcript_oc(share_a: bytes, ad_a: bytes, share_b: bytes, ad_b: bytes) -> bytes:
    """Symmetric-mode transcript: o_cat(lv_cat(Ya, ADa), lv_cat(Yb, ADb)) (appendix A.3.6)."""
    return o_cat(lv_cat(share_a, ad_a), lv_cat(share_b, ad_b))


# -- Generator (sections 8.1 and 8.2) -------------------------------------------------------------


def generator_string(dsi: bytes, prs: bytes, ci: bytes, sid: bytes, s_in_bytes: int) -> bytes:
    """lv_cat(DSI, PRS, zero_bytes(len_zpad), CI, sid) (section 8.1, appendix A.2).

    The zero padding makes DSI and PRS fill the hash's first input block, so for short passwords
    the amount of hashing does not depend on the password length.
    """
    len_zpad = max(0, s_in_bytes - 1 - len(prepend_len(prs)) - len(prepend_len(dsi)))
    return lv_cat(dsi, prs, bytes(len_zpad), ci, sid)


def calculate_generator(prs: bytes, ci: bytes, sid: bytes) -> bytes:
    """G_X25519.calculate_generator(SHA-512, PRS, CI, sid): the 32-byte u-coordinate g.

    gen_str is hashed with SHA-512 and truncated to the 32-byte field size, decoded as an RFC 7748
    u-coordinate (bit 255 cleared) and mapped to the curve with Elligator 2; the map's v coordinate
    is not needed and is discarded, as the draft says.
    """
    gen_str = generator_string(DSI, prs, ci, sid, HASH_BLOCK_SIZE)
    gen_str_hash = _sha512(gen_str)[:FIELD_SIZE_BYTES]
    u = decode_u_coordinate(gen_str_hash, FIELD_SIZE_BITS)
    return encode_u_coordinate(elligator2(u), FIELD_SIZE_BITS)


# -- Scalars, shares and K (sections 7.2 and 8.2) -------------------------------------------------


def sample_scalar(backend: CryptoBackend) -> bytes:
    """G_X25519.sample_scalar(): 32 uniformly random bytes.

    The draft takes the bytes as they are; X25519 itself clamps them (RFC 7748 decodeScalar25519
    clears the three low bits and bit 255 and sets bit 254), which makes every scalar actually used
    a multiple of the cofactor, as section 10.8 requires. Clamping here as well would change
    nothing, so the sampled bytes are kept verbatim like the draft's test vectors (whose ya ends
    in 0x80).
    """
    return backend.random_bytes(SCALAR_SIZE)


async def scalar_mult_vfy(backend: CryptoBackend, scalar: bytes, point: bytes) -> bytes:
    """G_X25519.scalar_mult_vfy(y, X) = X25519(y, X), aborting on the neutral element.

    Where the draft returns G.I (all zeros) this raises InvalidPointError, so the caller cannot
    forget the abort that section 7.2 mandates. That covers every low-order point of the curve and
    its twist, including non-canonical encodings with bit 255 set (appendix B.1.10). A peer share
    that is not 32 bytes is rejected the same way.
    """
    if len(scalar) != SCALAR_SIZE:
        raise ValueError(f"an X25519 scalar has {SCALAR_SIZE} bytes")
    if len(point) != SHARE_SIZE:
        raise InvalidPointError(f"a CPace share has {SHARE_SIZE} bytes, got {len(point)}")
    k = bytes(await backend.x25519(bytes(scalar), bytes(point)))
    # The backend contract already raises on an all-zero result; checking again costs nothing and
    # keeps the abort independent of any one backend getting that right.
    if hmac.compare_digest(k, IDENTITY):
        raise InvalidPointError("CPace: the peer's share is a low-order point")
    return k


async def cpace_share(
    backend: CryptoBackend, generator: bytes, scalar: bytes | None = None
) -> tuple[bytes, bytes]:
    """Sample a scalar y (unless given) and compute the public share Y = X25519(y, g).

    Returns (y, Y). Keep y secret and use it once (section 10.9); pass `scalar` only to reproduce
    test vectors.
    """
    if scalar is None:
        scalar = sample_scalar(backend)
    share = await scalar_mult_vfy(backend, scalar, generator)
    return bytes(scalar), share


def _isk(sid: bytes, k: bytes, transcript: bytes) -> bytes:
    # ISK = H.hash(lv_cat(G.DSI || b"_ISK", sid, K) || transcript(Ya, ADa, Yb, ADb)) (section 7.2)
    return _sha512(lv_cat(DSI_ISK, sid, k) + transcript)


async def cpace_isk_initiator(
    backend: CryptoBackend,
    *,
    sid: bytes,
    ya: bytes,
    share_a: bytes,
    ad_a: bytes,
    share_b: bytes,
    ad_b: bytes,
) -> bytes:
    """ISK for party A (initiator) in initiator-responder mode: K = scalar_mult_vfy(ya, Yb).

    Raises InvalidPointError (abort) if Yb is malformed or of low order. K is never returned:
    section 10.3 forbids exposing it.
    """
    k = await scalar_mult_vfy(backend, ya, share_b)
    return _isk(sid, k, transcript_ir(share_a, ad_a, share_b, ad_b))


async def cpace_isk_responder(
    backend: CryptoBackend,
    *,
    sid: bytes,
    yb: bytes,
    share_a: bytes,
    ad_a: bytes,
    share_b: bytes,
    ad_b: bytes,
) -> bytes:
    """ISK for party B (responder) in initiator-responder mode: K = scalar_mult_vfy(yb, Ya).

    Raises InvalidPointError (abort) if Ya is malformed or of low order.
    """
    k = await scalar_mult_vfy(backend, yb, share_a)
    return _isk(sid, k, transcript_ir(share_a, ad_a, share_b, ad_b))


async def cpace_isk_symmetric(
    backend: CryptoBackend,
    *,
    sid: bytes,
    scalar: bytes,
    own_share: bytes,
    own_ad: bytes,
    peer_share: bytes,
    peer_ad: bytes,
) -> bytes:
    """ISK in the symmetric setting (transcript_oc), where either party may speak first.

    o_cat sorts the two messages, so both parties get the same ISK whichever they call "own".
    Section 10.1.1 requires ADa and ADb to be unique per session for this mode; Hushdrop's protocol
    uses initiator-responder mode, this exists for the draft's ISK_SY test vector.
    """
    k = await scalar_mult_vfy(backend, scalar, peer_share)
    return _isk(sid, k, transcript_oc(own_share, own_ad, peer_share, peer_ad))


def sid_output_ir(share_a: bytes, ad_a: bytes, share_b: bytes, ad_b: bytes) -> bytes:
    """sid_output = H.hash(b"CPaceSidOutput" || transcript_ir(...)) (section 10.6).

    A public session identifier both sides can derive when no sid was available at the start.
    """
    return _sha512(SID_OUTPUT_LABEL + transcript_ir(share_a, ad_a, share_b, ad_b))


def sid_output_oc(share_a: bytes, ad_a: bytes, share_b: bytes, ad_b: bytes) -> bytes:
    """sid_output for the symmetric setting, over transcript_oc (section 10.6)."""
    return _sha512(SID_OUTPUT_LABEL + transcript_oc(share_a, ad_a, share_b, ad_b))


# -- Explicit key confirmation (section 10.4) -----------------------------------------------------


def confirmation_mac_key(sid: bytes, isk: bytes) -> bytes:
    """mac_key = H.hash(b"CPaceMac" || sid || ISK), 64 bytes (section 10.4).

    The draft concatenates these three without length prefixes; this follows it exactly.
    """
    return _sha512(MAC_KEY_LABEL + sid + isk)


async def confirmation_tags(
    backend: CryptoBackend,
    *,
    sid: bytes,
    isk: bytes,
    share_a: bytes,
    ad_a: bytes,
    share_b: bytes,
    ad_b: bytes,
) -> tuple[bytes, bytes]:
    """(Ta, Tb) of the initiator A and the responder B (section 10.4), with HMAC-SHA-512.

        Ta = HMAC-SHA-512(mac_key, lv_cat(Ya, ADa))
        Tb = HMAC-SHA-512(mac_key, lv_cat(Yb, ADb))

    Each party sends the tag over the message it sent itself and checks the peer's tag with
    `verify_confirmation_tag`, aborting if it is wrong. The MAC is HMAC-SHA-512 via the backend
    (the draft leaves the MAC open; see CONFIRMATION_TAG_SIZE); tags have 64 bytes.
    """
    mac_key = confirmation_mac_key(sid, isk)
    tag_a = bytes(await backend.hmac_sha512(mac_key, lv_cat(share_a, ad_a)))
    tag_b = bytes(await backend.hmac_sha512(mac_key, lv_cat(share_b, ad_b)))
    return tag_a, tag_b


def verify_confirmation_tag(expected: bytes, received: bytes) -> None:
    """Constant-time check of the peer's confirmation tag; AuthenticationError on mismatch.

    A mismatch means the peer derived a different ISK: almost always a mistyped code, otherwise
    an active attacker who got one password guess.
    """
    if not hmac.compare_digest(bytes(expected), bytes(received)):
        raise AuthenticationError("CPace key confirmation failed: the codes do not match")
