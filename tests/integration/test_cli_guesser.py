"""A guesser who checks its guess of the code and leaves without confirming (PROTOCOL.md §3.1).

PAKE_B lets whoever sent PAKE_A check one guess of the code. A guesser that then closes its
connection, or sends any ABORT other than "confirmation failed", must still have spent the
link's one guess: otherwise, on a link for several receivers, it could guess once per receiver
and the sender would never hear of it. The guesser here is a hostile client built from
Hushdrop's own receiver handshake; the sender and the relay are real processes.
"""

from __future__ import annotations

import asyncio

import pytest
from hushdrop.crypto.pyca import PycaBackend
from hushdrop.protocol.codes import parse_code
from hushdrop.protocol.constants import ABORT_CANCELLED
from hushdrop.protocol.errors import WrongCodeError
from hushdrop.protocol.framing import encode_abort
from hushdrop.protocol.handshake import ReceiverHandshake
from hushdrop.transport.relay_client import RelayConnection

from .cli import receive, send
from .test_cli import EXIT_CONNECTION, EXIT_WRONG_CODE, random_file


def wrong_guess(code: str) -> str:
    room, *words = code.split("-")
    return "-".join([room, "zoo" if words[0] != "zoo" else "zero", *words[1:]])


async def guess_and_leave(relay_url: str, typed: str, goodbye: bytes | None) -> bool:
    """Join the room, check the guess against PAKE_B, then leave without CONFIRM (after
    `goodbye`, when given). True when the guess was right."""
    code = parse_code(typed)
    channel = await RelayConnection.open(relay_url)
    try:
        await channel.join_room(code.room)
        handshake = ReceiverHandshake(PycaBackend(), code)
        handshake.on_hello(await channel.receive())
        await channel.send(await handshake.pake_a(""))
        try:
            await handshake.on_pake_b(await channel.receive())
            right = True
        except WrongCodeError:
            right = False
        if goodbye is not None:
            await channel.send(goodbye)
        return right
    finally:
        await channel.close()


@pytest.mark.parametrize("goodbye", [None, encode_abort(ABORT_CANCELLED)], ids=["leaves", "aborts"])
def test_a_guesser_who_leaves_after_checking_its_guess_ends_a_one_receiver_link(
    relay, tmp_path, goodbye
):
    src = random_file(tmp_path / "a.bin", 1000)
    sender = send(relay.url, src)
    code = sender.wait_event("code")["code"]
    try:
        assert not asyncio.run(guess_and_leave(relay.url, wrong_guess(code), goodbye))
        assert sender.wait() == EXIT_WRONG_CODE
    finally:
        sender.stop()
    error = sender.error()
    assert error["kind"] == "wrong-code"
    assert "left during the key exchange" in error["message"], error


def test_a_guesser_who_leaves_gets_no_second_guess_on_a_link_for_three(relay, tmp_path):
    src = random_file(tmp_path / "a.bin", 1000)
    sender = send(relay.url, src, extra=["--receivers", "3"])
    code = sender.wait_event("code")["code"]
    out = tmp_path / "out"
    out.mkdir()
    try:
        assert not asyncio.run(guess_and_leave(relay.url, wrong_guess(code), None))
        assert sender.wait() == EXIT_WRONG_CODE
        # The link is closed: the right code now finds nothing to join.
        later = receive(relay.url, code, out)
        assert later.wait() == EXIT_CONNECTION
        assert later.error()["message"].startswith("No transfer is waiting")
    finally:
        sender.stop()
    assert "left during the key exchange" in sender.error()["message"]
    assert list(out.iterdir()) == []
