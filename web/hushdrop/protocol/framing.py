"""Byte layouts of peer messages (PROTOCOL.md §4 and §6): building and parsing, nothing else."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..crypto import cpace
from .constants import (
    COMMITMENT_SIZE,
    FLAG_WORDS,
    KNOWN_FLAGS,
    MSG_ABORT,
    MSG_CONFIRM,
    MSG_DATA,
    MSG_HELLO,
    MSG_PAKE_A,
    MSG_PAKE_B,
    MSG_RESUME,
    MSG_SEALED,
    MSG_SEALED_PART,
    POINT_SIZE,
    PROTOCOL_VERSION,
    RESUME_NONCE_SIZE,
    SEALED_PAD,
    SEALED_PART_SIZE,
    SID_PART_SIZE,
    SIDE_RECEIVER,
    SIDE_SENDER,
)
from .errors import ProtocolError, VersionError
from .padding import all_zeros, sealed_length

CONFIRM_TAG_SIZE = cpace.CONFIRMATION_TAG_SIZE
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")

MESSAGE_NAMES = {
    MSG_HELLO: "HELLO",
    MSG_PAKE_A: "PAKE_A",
    MSG_PAKE_B: "PAKE_B",
    MSG_CONFIRM: "CONFIRM",
    MSG_RESUME: "RESUME",
    MSG_ABORT: "ABORT",
    MSG_SEALED: "SEALED",
    MSG_SEALED_PART: "SEALED_PART",
    MSG_DATA: "DATA",
}


@dataclass(frozen=True)
class Hello:
    flags: int
    sid: bytes
    commitments: bytes  # 32 bytes per accepted code form: link, then words (§5.1)


@dataclass(frozen=True)
class PakeA:
    form: int
    share: bytes


@dataclass(frozen=True)
class Resume:
    side: int
    nonce: bytes


@dataclass(frozen=True)
class ResumeAt:
    index: int
    offset: int
    credit: int


@dataclass(frozen=True)
class PakeB:
    share: bytes
    tag: bytes


def message_type(message: bytes) -> int:
    if not message:
        raise ProtocolError("Received an empty message.")
    return message[0]


def _expect(message: bytes, kind: int, length: int) -> memoryview:
    if len(message) != 1 + length:
        raise ProtocolError(f"Received a {MESSAGE_NAMES[kind]} message of the wrong length.")
    return memoryview(message)[1:]


def _check_version(version: int) -> None:
    if version != PROTOCOL_VERSION:
        raise VersionError(
            f"The other side speaks Hushdrop protocol version {version}; this one speaks "
            f"{PROTOCOL_VERSION}. Both sides need the same version."
        )


def encode_hello(flags: int, sid: bytes, commitments: bytes) -> bytes:
    return bytes([MSG_HELLO, PROTOCOL_VERSION, flags]) + sid + commitments


def decode_hello(message: bytes) -> Hello:
    if len(message) < 3:
        raise ProtocolError("Received a HELLO message of the wrong length.")
    _check_version(message[1])
    flags = message[2]
    if flags & ~KNOWN_FLAGS:
        raise ProtocolError("The sender asked for options this version does not know.")
    forms = 2 if flags & FLAG_WORDS else 1
    body = _expect(message, MSG_HELLO, 2 + SID_PART_SIZE + forms * COMMITMENT_SIZE)
    return Hello(flags, bytes(body[2 : 2 + SID_PART_SIZE]), bytes(body[2 + SID_PART_SIZE :]))


def encode_pake_a(form: int, share: bytes) -> bytes:
    return bytes([MSG_PAKE_A, PROTOCOL_VERSION, form]) + share


def decode_pake_a(message: bytes) -> PakeA:
    body = _expect(message, MSG_PAKE_A, 2 + POINT_SIZE)
    _check_version(body[0])
    return PakeA(body[1], bytes(body[2:]))


def encode_pake_b(share: bytes, tag: bytes) -> bytes:
    return bytes([MSG_PAKE_B]) + share + tag


def decode_pake_b(message: bytes) -> PakeB:
    body = _expect(message, MSG_PAKE_B, POINT_SIZE + CONFIRM_TAG_SIZE)
    return PakeB(bytes(body[:POINT_SIZE]), bytes(body[POINT_SIZE:]))


def encode_confirm(tag: bytes) -> bytes:
    return bytes([MSG_CONFIRM]) + tag


def decode_confirm(message: bytes) -> bytes:
    return bytes(_expect(message, MSG_CONFIRM, CONFIRM_TAG_SIZE))


def encode_abort(reason: int) -> bytes:
    return bytes([MSG_ABORT, reason])


def decode_abort(message: bytes) -> int:
    return _expect(message, MSG_ABORT, 1)[0]


def encode_resume(side: int, nonce: bytes) -> bytes:
    return bytes([MSG_RESUME, PROTOCOL_VERSION, side]) + nonce


def decode_resume(message: bytes) -> Resume:
    body = _expect(message, MSG_RESUME, 2 + RESUME_NONCE_SIZE)
    _check_version(body[0])
    if body[1] not in (SIDE_SENDER, SIDE_RECEIVER):
        raise ProtocolError("Received a RESUME message for an unknown side.")
    return Resume(body[1], bytes(body[2:]))


_RESUME_AT = struct.Struct(">IQQ")


def encode_resume_at(index: int, offset: int, credit: int) -> bytes:
    return _RESUME_AT.pack(index, offset, credit)


def decode_resume_at(body: bytes) -> ResumeAt:
    if len(body) != _RESUME_AT.size:
        raise ProtocolError("Received a malformed RESUME_AT message.")
    return ResumeAt(*_RESUME_AT.unpack(body))


def encode_inner(kind: int, body: bytes) -> bytes:
    """Inner plaintext of a SEALED message: kind, length, body, zero padding to its PADMÉ
    length rounded up to a multiple of SEALED_PAD (§6)."""
    inner = bytes([kind]) + _U32.pack(len(body)) + body
    return inner + bytes(sealed_length(len(inner)) - len(inner))


def decode_inner(inner: bytes) -> tuple[int, bytes]:
    if len(inner) < 5 or len(inner) % SEALED_PAD:
        raise ProtocolError("Received a sealed message with a malformed body.")
    (length,) = _U32.unpack_from(inner, 1)
    if 5 + length > len(inner) or not all_zeros(memoryview(inner)[5 + length :]):
        raise ProtocolError("Received a sealed message with a malformed body.")
    return inner[0], inner[5 : 5 + length]


def split_sealed(message: bytes) -> list[bytes]:
    """A SEALED message as it travels (§6.2): whole when it fits one frame, else SEALED_PART
    messages of SEALED_PART_SIZE ciphertext bytes and a final SEALED with the rest."""
    if len(message) <= 1 + SEALED_PART_SIZE:
        return [message]
    body = memoryview(message)[1:]
    cuts = range(0, len(body), SEALED_PART_SIZE)
    pieces = [bytes(body[at : at + SEALED_PART_SIZE]) for at in cuts]
    return [bytes([MSG_SEALED_PART]) + piece for piece in pieces[:-1]] + [
        bytes([MSG_SEALED]) + pieces[-1]
    ]


def encode_u64(value: int) -> bytes:
    return _U64.pack(value)


def encode_credit(grant: int, verified: int) -> bytes:
    """CREDIT (§7): more credit, and the content bytes verified and stored so far."""
    return _U64.pack(grant) + _U64.pack(verified)


def decode_credit(body: bytes) -> tuple[int, int]:
    if len(body) != 16:
        raise ProtocolError("Received a malformed credit message.")
    return _U64.unpack_from(body, 0)[0], _U64.unpack_from(body, 8)[0]


def decode_u64(body: bytes) -> int:
    if len(body) != 8:
        raise ProtocolError("Received a malformed number.")
    return _U64.unpack(body)[0]
