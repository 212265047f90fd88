"""The key exchange (PROTOCOL.md §5): HELLO, CPace shares, explicit key confirmation.

`ReceiverHandshake` is the CPace initiator, `SenderHandshake` the responder. Each method consumes
one peer message and returns the message to send next; a failed confirmation raises WrongCodeError.
"""

from __future__ import annotations

import hashlib
import hmac

from ..crypto import cpace
from ..crypto.backend import AuthenticationError, CryptoBackend, InvalidPointError
from .codes import Code, SenderSecrets, pake_secret
from .constants import (
    CI_LABEL,
    COMMITMENT_LABEL,
    COMMITMENT_SIZE,
    FLAG_PASSWORD,
    FLAG_WORDS,
    FORM_LABELS,
    FORM_LINK,
    FORM_WORDS,
    PROTOCOL_VERSION,
    SID_PART_SIZE,
)
from .errors import CodeFormError, ProtocolError, WrongCodeError
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


def share_commitment(form: int, share: bytes) -> bytes:
    """The sender's commitment to its CPace share for one code form, sent in HELLO (§5.1)."""
    return hashlib.sha256(COMMITMENT_LABEL + bytes([form]) + share).digest()


def accepted_forms(flags: int) -> tuple[int, ...]:
    """The code forms a sender with these HELLO flags accepts, in HELLO's commitment order."""
    return (FORM_LINK, FORM_WORDS) if flags & FLAG_WORDS else (FORM_LINK,)


class SenderHandshake:
    """The sender's side: commits to its shares, answers the receiver's, checks its tag.

    The shares are computed before the receiver's is seen, and HELLO commits to them, so a man in
    the middle who knows the code cannot search for a share that gives both sides the same
    verification code (§5.1).
    """

    def __init__(
        self,
        backend: CryptoBackend,
        secrets: SenderSecrets,
        password: str = "",
        *,
        accept_typed: bool = True,
    ) -> None:
        self._backend = backend
        self._secrets = secrets
        self._password = password
        self._flags = (FLAG_PASSWORD if secrets.password_required else 0) | (
            FLAG_WORDS if accept_typed else 0
        )
        self._sid = backend.random_bytes(SID_PART_SIZE)
        self._shares: dict[int, tuple[bytes, bytes]] = {}  # form -> (y, Y)
        self._expected_ta: bytes | None = None
        self._isk: bytes | None = None

    async def hello(self) -> bytes:
        commitments = []
        for form in accepted_forms(self._flags):
            prs = pake_secret(form, self._secrets.secret_for(form), self._password)
            generator = cpace.calculate_generator(
                prs, channel_identifier(self._secrets.room), self._sid
            )
            self._shares[form] = await cpace.cpace_share(self._backend, generator)
            commitments.append(share_commitment(form, self._shares[form][1]))
        return encode_hello(self._flags, self._sid, b"".join(commitments))

    async def on_pake_a(self, message: bytes) -> bytes:
        pake_a = decode_pake_a(message)
        if pake_a.form not in FORM_LABELS:
            raise ProtocolError("The receiver used an unknown kind of code.")
        if pake_a.form not in self._shares:
            # The short code was never shown: a typed attempt is a failed guess (§5.4).
            raise WrongCodeError(
                "Someone typed a short code, but this transfer accepts only its link (the short "
                "code was never shown). The transfer is closed; start a new one.",
            )
        yb, share_b = self._shares.pop(pake_a.form)
        self._shares.clear()  # each scalar is used once, and only the chosen one at all
        sid = self._sid
        transcript = {
            "share_a": pake_a.share,
            "ad_a": _ad_initiator(self._flags, pake_a.form),
            "share_b": share_b,
            "ad_b": _AD_RESPONDER,
        }
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
    """The receiver's side: reads HELLO, sends its share, checks the sender's share against its
    commitment and the sender's tag, confirms."""

    def __init__(self, backend: CryptoBackend, code: Code) -> None:
        self._backend = backend
        self._code = code
        self._flags: int | None = None
        self._sid: bytes | None = None
        self._commitment: bytes | None = None
        self._ya: bytes | None = None
        self._transcript: dict[str, bytes] = {}

    def on_hello(self, message: bytes) -> bool:
        """Record the sender's HELLO; return whether it asks for a password."""
        hello = decode_hello(message)
        forms = accepted_forms(hello.flags)
        if self._code.form not in forms:
            raise CodeFormError(
                "This transfer accepts only its link, not the short code: the sender did not "
                "show the short code for it. Ask the sender for the link."
            )
        self._flags = hello.flags
        self._sid = hello.sid
        at = forms.index(self._code.form) * COMMITMENT_SIZE
        self._commitment = hello.commitments[at : at + COMMITMENT_SIZE]
        return bool(hello.flags & FLAG_PASSWORD)

    async def pake_a(self, password: str = "") -> bytes:
        if self._flags is None or self._sid is None:
            raise ProtocolError("The key exchange started before the sender said hello.")
        code = self._code
        prs = pake_secret(code.form, code.secret, password)
        generator = cpace.calculate_generator(prs, channel_identifier(code.room), self._sid)
        self._ya, share_a = await cpace.cpace_share(self._backend, generator)
        self._transcript = {"share_a": share_a, "ad_a": _ad_initiator(self._flags, code.form)}
        return encode_pake_a(code.form, share_a)

    async def on_pake_b(self, message: bytes) -> tuple[SessionKeys, bytes]:
        """Check the sender's tag; return the session keys and the CONFIRM message to send."""
        if self._ya is None or self._sid is None:
            raise ProtocolError("Received the sender's key share before sending ours.")
        pake_b = decode_pake_b(message)
        if not hmac.compare_digest(
            share_commitment(self._code.form, pake_b.share), self._commitment
        ):
            # Not the share the sender committed to before it saw ours: a man in the middle
            # searching for a matching verification code (or a broken sender).
            raise WrongCodeError()
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
