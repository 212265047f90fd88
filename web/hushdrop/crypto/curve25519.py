"""Curve25519 field arithmetic and the Elligator 2 map, for CPace's generator derivation.

This module owns the only elliptic-curve arithmetic Hushdrop does in Python: turning the hash of
CPace's generator string into a Curve25519 u-coordinate, exactly as draft-irtf-cfrg-cpace
appendices A.4 (decodeUCoordinate / encodeUCoordinate from RFC 7748) and A.5 (Elligator 2 from
RFC 9380) define it. Scalar multiplication is never done here: it goes through `backend.x25519`.

Pure-Python big integers are used because neither pyca nor WebCrypto exposes a hash-to-curve map.
They are not constant time; see `elligator2` for why that is tolerated.
"""

from __future__ import annotations

# Field prime q = 2^255 - 19 and Montgomery curve parameter A of Curve25519 (RFC 7748, section 4.1).
P = 2**255 - 19
A = 486662
# Elligator 2 non-square: the draft's find_z_ell2 yields Z = 2 for GF(2^255 - 19) (appendix A.5),
# which is also the Z that RFC 9380 lists for curve25519.
Z = 2
FIELD_SIZE_BYTES = 32
FIELD_SIZE_BITS = 255

_LEGENDRE_EXPONENT = (P - 1) // 2
# A/2 in the field, used by the draft's formula x = epsilon*v - (1 - epsilon)*A/2.
_A_HALF = A * pow(2, P - 2, P) % P


def decode_u_coordinate(u: bytes, bits: int = FIELD_SIZE_BITS) -> int:
    """RFC 7748 decodeUCoordinate: little-endian integer with the unused top bit(s) cleared.

    The result is not reduced modulo P, as in RFC 7748; callers reduce when they do arithmetic.
    """
    size = (bits + 7) // 8
    if len(u) != size:
        raise ValueError(f"a u-coordinate has {size} bytes")
    u_list = bytearray(u)
    if bits % 8:
        u_list[-1] &= (1 << (bits % 8)) - 1
    return int.from_bytes(u_list, "little")


def encode_u_coordinate(u: int, bits: int = FIELD_SIZE_BITS) -> bytes:
    """RFC 7748 encodeUCoordinate: the canonical field element as little-endian bytes."""
    return (u % P).to_bytes((bits + 7) // 8, "little")


def elligator2(r: int) -> int:
    """Map field element r to the u-coordinate of a point on Curve25519 (draft appendix A.5).

    Transcribes the draft's reference code: v = -A / (1 + Z r^2), epsilon is the Legendre symbol
    of v^3 + A v^2 + B v (B = 1), and x = epsilon * v - (1 - epsilon) * A / 2, i.e. x = v if the
    right-hand side is a square and x = -v - A otherwise.

    The draft says the map SHALL run in constant time (section 10.10). Python big-integer
    arithmetic does not guarantee that: the exponents are public constants, but multiplication
    and reduction times can vary slightly with the operand values, which derive from the password.
    This is a known, documented deviation; the map runs once per session on the user's own device,
    so only a local side-channel observer could try to exploit it.
    """
    r %= P
    # 1 + Z r^2 is never zero: -1/Z = -1/2 is a non-square modulo P, so no r satisfies r^2 = -1/2.
    denominator = (1 + Z * r * r) % P
    v = (-A * pow(denominator, P - 2, P)) % P
    # Euler's criterion: 1 for a non-zero square, P - 1 for a non-square. Zero cannot occur because
    # v != 0 and v^2 + A v + 1 has no root (A^2 - 4 is a non-square for Curve25519).
    epsilon = pow((v * v * v + A * v * v + v) % P, _LEGENDRE_EXPONENT, P)
    return (epsilon * v - (1 - epsilon) * _A_HALF) % P
