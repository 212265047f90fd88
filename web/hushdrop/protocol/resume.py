"""Reconnecting an established session (PROTOCOL.md §8): the resume ID and the resume handshake.

Both peers keep the resume secret RS from the key schedule. After a lost connection each sends
RESUME with a fresh nonce; from both nonces and RS come a new pair of control keys and a new data
key, so nothing from an earlier connection (control messages or file data a relay held back)
authenticates on the new one, and only a holder of RS can take part.
"""

from __future__ import annotations

import base64

from ..crypto.backend import CryptoBackend
from ..crypto.hkdf import hkdf_expand, hkdf_extract
from .constants import (
    LABEL_CONTROL_R2S,
    LABEL_CONTROL_S2R,
    LABEL_DATA,
    LABEL_RESUME_ID,
    RESUME_ID_SIZE,
    RESUME_NONCE_SIZE,
    SIDE_RECEIVER,
    SIDE_SENDER,
)
from .errors import ProtocolError
from .framing import decode_resume, encode_resume
from .keys import SealedChannel

SIDE_NAMES = {SIDE_SENDER: "sender", SIDE_RECEIVER: "receiver"}


async def resume_id(backend: CryptoBackend, resume_secret: bytes) -> str:
    """The ID both peers give the relay to find each other again (22 base64url characters)."""
    raw = await hkdf_expand(backend, resume_secret, LABEL_RESUME_ID, RESUME_ID_SIZE)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class ResumeHandshake:
    """One side's part of §8.2: send RESUME, read the peer's, derive the connection's channel."""

    def __init__(self, backend: CryptoBackend, side: int, resume_secret: bytes) -> None:
        self._backend = backend
        self._side = side
        self._secret = resume_secret
        self._nonce = backend.random_bytes(RESUME_NONCE_SIZE)

    def message(self) -> bytes:
        return encode_resume(self._side, self._nonce)

    async def on_resume(self, message: bytes) -> tuple[SealedChannel, bytes]:
        """The new connection's control channel and data key."""
        peer = decode_resume(message)
        if peer.side == self._side:
            raise ProtocolError(
                f"The relay connected this {SIDE_NAMES[self._side]} to another "
                f"{SIDE_NAMES[self._side]} instead of the other side."
            )
        sender_first = self._side == SIDE_SENDER
        salt = self._nonce + peer.nonce if sender_first else peer.nonce + self._nonce
        prk = await hkdf_extract(self._backend, salt, self._secret)
        s2r = await hkdf_expand(self._backend, prk, LABEL_CONTROL_S2R, 32)
        r2s = await hkdf_expand(self._backend, prk, LABEL_CONTROL_R2S, 32)
        data = await hkdf_expand(self._backend, prk, LABEL_DATA, 32)
        if self._side == SIDE_SENDER:
            return SealedChannel(self._backend, s2r, r2s), data
        return SealedChannel(self._backend, r2s, s2r), data
