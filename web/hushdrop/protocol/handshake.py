"""The key exchange (PROTOCOL.md §5): HELLO, CPace shares, explicit key confirmation.

`ReceiverHandshake` is the CPace initiator, `SenderHandshake` the responder. Each method consumes
one peer message and returns the message to send next; a failed confirmation raises WrongCodeError.
"""

from __future__ import annotations

from ..crypto import cpace
from ..crypto.backend import AuthenticationError, CryptoBackend, InvalidPointError
from .codes import Code, SenderSecrets, pake_secret
from .constants import (
    CI_LABEL,
    FLAG_PASSWORD,
    FORM_LABELS,
    PROTOCOL_VERSION,
    SID_PART_SIZE,
)
from .errors import ProtocolError, WrongCodeError
from .framing import (
    decode_confirm,
    decode_hello,
    decode_pake_a,
    decode_pake_b,
    encode_confirm,
    encode_hello,
    encode_pake_a,
    encode_pake_b,
)
from .keys import SessionKeys


def channel_identifier(room: str) -> bytes:
    return cpace.lv_cat(CI_LABEL, room.encode("ascii"))


def _ad_initiator(flags: int, form: int) -> bytes:
    return bytes([PROTOCOL_VERSION, flags, form])


_AD_RESPONDER = bytes([PROTOCOL_VERSION])


class SenderHandshake:
    """The sender's side: announces itself, answers the receiver's share, checks its tag."""

    def __init__(self, backend: CryptoBackend, secrets: SenderSecrets, password: str = "") -> None:
        self._backend = backend
        self._secrets = secrets
        self._password = password
        self._flags = FLAG_PASSWORD if secrets.password_required else 0
        self._sid = backend.random_bytes(SID_PART_SIZE)
        self._expected_ta: bytes | None = None
        self._isk: bytes | None = None

    def hello(self) -> bytes:
        return encode_hello(self._flags, self._sid)

    async def on_pake_a(self, message: bytes) -> bytes:
        pake_a = decode_pake_a(message)
        if pake_a.form not in FORM_LABELS:
            raise ProtocolError("The receiver used an unknown kind of code.")
        prs = pake_secret(pake_a.form, self._secrets.secret_for(pake_a.form), self._password)
        sid = self._sid + pake_a.sid
        generator = cpace.calculate_generator(prs, channel_identifier(self._secrets.room), sid)
        transcript = {"share_a": pake_a.share, "ad_a": _ad_initiator(self._flags, pake_a.form)}
        yb, share_b = await cpace.cpace_share(self._backend, generator)
        transcript.update(share_b=share_b, ad_b=_AD_RESPONDER)
        try:
            self._isk = await cpace.cpace_isk_responder(self._backend, sid=sid, yb=yb, **transcript)
        except InvalidPointError as exc:
            raise WrongCodeError(sender=True) from exc
        self._expected_ta, tag_b = await cpace.confirmation_tags(
            self._backend, sid=sid, isk=self._isk, **transcript
        )
        return encode_pake_b(share_b, tag_b)

    async def on_confirm(self, message: bytes) -> SessionKeys:
        if self._expected_ta is None or self._isk is None:
            raise ProtocolError("Received key confirmation before the key exchange.")
        try:
            cpace.verify_confirmation_tag(self._expected_ta, decode_confirm(message))
        except AuthenticationError as exc:
            raise WrongCodeError(sender=True) from exc
        return await SessionKeys.derive(self._backend, self._isk)


class ReceiverHandshake:
    """The receiver's side: reads HELLO, sends its share, checks the sender's tag, confirms."""

    def __init__(self, backend: CryptoBackend, code: Code) -> None:
        self._backend = backend
        self._code = code
        self._sid_r = backend.random_bytes(SID_PART_SIZE)
        self._flags: int | None = None
        self._sid: bytes | None = None
        self._ya: bytes | None = None
        self._transcript: dict[str, bytes] = {}

    def on_hello(self, message: bytes) -> bool:
        """Record the sender's HELLO; return whether it asks for a password."""
        hello = decode_hello(message)
        self._flags = hello.flags
        self._sid = hello.sid + self._sid_r
        return bool(hello.flags & FLAG_PASSWORD)

    async def pake_a(self, password: str = "") -> bytes:
        if self._flags is None or self._sid is None:
            raise ProtocolError("The key exchange started before the sender said hello.")
        code = self._code
        prs = pake_secret(code.form, code.secret, password)
        generator = cpace.calculate_generator(prs, channel_identifier(code.room), self._sid)
        self._ya, share_a = await cpace.cpace_share(self._backend, generator)
        self._transcript = {"share_a": share_a, "ad_a": _ad_initiator(self._flags, code.form)}
        return encode_pake_a(code.form, self._sid_r, share_a)

    async def on_pake_b(self, message: bytes) -> tuple[SessionKeys, bytes]:
        """Check the sender's tag; return the session keys and the CONFIRM message to send."""
        if self._ya is None or self._sid is None:
            raise ProtocolError("Received the sender's key share before sending ours.")
        pake_b = decode_pake_b(message)
        transcript = {**self._transcript, "share_b": pake_b.share, "ad_b": _AD_RESPONDER}
        try:
            isk = await cpace.cpace_isk_initiator(
                self._backend, sid=self._sid, ya=self._ya, **transcript
            )
            tag_a, tag_b = await cpace.confirmation_tags(
                self._backend, sid=self._sid, isk=isk, **transcript
            )
            cpace.verify_confirmation_tag(tag_b, pake_b.tag)
        except (InvalidPointError, AuthenticationError) as exc:
            raise WrongCodeError() from exc
        keys = await SessionKeys.derive(self._backend, isk)
        return keys, encode_confirm(tag_a)
