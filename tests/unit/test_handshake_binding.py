"""The sender decides which code forms work, and commits to its CPace shares before it sees the
receiver's (PROTOCOL.md §5.1): what a man in the middle who knows the code can no longer do."""

from __future__ import annotations

import asyncio

import pytest
from hushdrop.crypto import cpace
from hushdrop.protocol.codes import Code, parse_code
from hushdrop.protocol.constants import FORM_LINK, FORM_WORDS
from hushdrop.protocol.errors import CodeFormError, WrongCodeError
from hushdrop.protocol.handshake import SenderHandshake, channel_identifier, pake_secret
from hushdrop.protocol.receiver import ReceiverSession

from .pair import Pair


def run(coroutine):
    return asyncio.run(coroutine)


def link_code(secrets) -> Code:
    return Code(secrets.room, FORM_LINK, secrets.link_secret)


def test_a_link_only_transfer_refuses_the_typed_code_on_both_sides():
    outcome = run(Pair({"a": b"secret"}, accept_typed=False).run())
    assert isinstance(outcome.receiver_error, CodeFormError)
    assert "only its link" in str(outcome.receiver_error)
    assert isinstance(outcome.sender_error, WrongCodeError)
    assert "short code" in str(outcome.sender_error)
    assert outcome.received == {}


def test_a_link_only_transfer_works_with_the_link():
    outcome = run(Pair({"a": b"secret"}, accept_typed=False, code=link_code).run())
    assert outcome.received[0] == b"secret"


def test_a_transfer_that_showed_the_short_code_takes_both_forms():
    assert run(Pair({"a": b"x"}).run()).received[0] == b"x"
    assert run(Pair({"a": b"x"}, code=link_code).run()).received[0] == b"x"


def test_the_sender_refuses_a_typed_attempt_even_if_hello_was_altered():
    # A relay that sets FLAG_WORDS in HELLO makes the receiver try the typed code, and the sender
    # still refuses it (and the flags are in the CPace transcript besides).
    async def scenario():
        pair = Pair({"a": b"x"}, accept_typed=False)
        await pair.sender.start()
        (hello,) = pair.sender.data_to_send()
        forged = bytearray(hello)
        forged[2] |= 0x02
        forged += bytes(32)  # a commitment for the typed form
        await pair.receiver.receive(bytes(forged))
        (pake_a,) = pair.receiver.data_to_send()
        with pytest.raises(WrongCodeError, match="short code"):
            await pair.sender.receive(pake_a)

    run(scenario())


@pytest.mark.parametrize("form", [FORM_WORDS, FORM_LINK])
def test_a_share_chosen_after_seeing_the_receivers_is_refused(form):
    # A man in the middle who knows the code answers the receiver with a share picked after
    # seeing the receiver's (to search for a matching verification code). Everything else in
    # its answer is correct CPace for the right code; only the commitment in HELLO gives it away.
    async def scenario():
        pair = Pair({"a": b"x"}, code=None if form == FORM_WORDS else link_code)
        handshake: SenderHandshake = pair.sender._handshake
        secrets = pair.secrets
        receiver = ReceiverSession(
            pair.backend,
            parse_code(secrets.typed) if form == FORM_WORDS else link_code(secrets),
        )
        await receiver.receive(await handshake.hello())
        (pake_a,) = receiver.data_to_send()
        prs = pake_secret(form, secrets.secret_for(form), "")
        generator = cpace.calculate_generator(prs, channel_identifier(secrets.room), handshake._sid)
        handshake._shares[form] = await cpace.cpace_share(pair.backend, generator)  # a new share
        pake_b = await handshake.on_pake_a(pake_a)
        with pytest.raises(WrongCodeError):
            await receiver.receive(pake_b)
        assert receiver.sas is None

    run(scenario())
