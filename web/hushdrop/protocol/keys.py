"""The key schedule (PROTOCOL.md §5.3) and the sealed control channel (§6)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..crypto.backend import AuthenticationError, CryptoBackend
from ..crypto.hkdf import hkdf_expand, hkdf_extract
from .constants import (
    KEY_SCHEDULE_SALT,
    LABEL_CONTROL_R2S,
    LABEL_CONTROL_S2R,
    LABEL_DATA,
    LABEL_DIRECT,
    LABEL_RESUME,
    LABEL_SAS,
    MSG_SEALED,
    SAS_SIZE,
)
from .errors import ProtocolError, TamperedError
from .framing import decode_inner, encode_inner

_AAD = bytes([MSG_SEALED])
_NONCE = struct.Struct(">4xQ")


@dataclass(frozen=True)
class SessionKeys:
    """Keys both peers derive from CPace's ISK once confirmation succeeded."""

    control_s2r: bytes
    control_r2s: bytes
    data: bytes
    sas: str
    resume: bytes  # RS of PROTOCOL.md §8
    # Authenticates direct TCP connections (§8.5). A resume record keeps it (§8.3); empty in
    # one that does not, whose restarted receiver then makes no direct connections.
    direct: bytes = b""

    @classmethod
    async def derive(cls, backend: CryptoBackend, isk: bytes) -> SessionKeys:
        prk = await hkdf_extract(backend, KEY_SCHEDULE_SALT, isk)
        sas = await hkdf_expand(backend, prk, LABEL_SAS, SAS_SIZE)
        return cls(
            control_s2r=await hkdf_expand(backend, prk, LABEL_CONTROL_S2R, 32),
            control_r2s=await hkdf_expand(backend, prk, LABEL_CONTROL_R2S, 32),
            data=await hkdf_expand(backend, prk, LABEL_DATA, 32),
            sas=format_sas(sas),
            resume=await hkdf_expand(backend, prk, LABEL_RESUME, 32),
            direct=await hkdf_expand(backend, prk, LABEL_DIRECT, 32),
        )


def format_sas(raw: bytes) -> str:
    """4 bytes as `FD79-FDBB`."""
    text = raw.hex().upper()
    return f"{text[:4]}-{text[4:]}"


class SealedChannel:
    """SEALED messages in one session: AES-256-GCM, one key and one counter per direction."""

    def __init__(self, backend: CryptoBackend, send_key: bytes, receive_key: bytes) -> None:
        self._backend = backend
        self._send_key = send_key
        self._receive_key = receive_key
        self._send_counter = 0
        self._receive_counter = 0

    async def seal(self, kind: int, body: bytes = b"") -> bytes:
        nonce = _NONCE.pack(self._send_counter)
        self._send_counter += 1
        ciphertext = await self._backend.seal(self._send_key, nonce, encode_inner(kind, body), _AAD)
        return _AAD + ciphertext

    async def open(self, message: bytes) -> tuple[int, bytes]:
        """Decrypt the next SEALED message. Raises TamperedError if it is not authentic."""
        nonce = _NONCE.pack(self._receive_counter)
        try:
            inner = await self._backend.open(self._receive_key, nonce, message[1:], _AAD)
        except AuthenticationError as exc:
            raise TamperedError(
                "An encrypted control message failed authentication: the connection was tampered "
                "with or lost a message."
            ) from exc
        self._receive_counter += 1
        try:
            return decode_inner(inner)
        except ProtocolError as exc:
            raise TamperedError(str(exc)) from exc
