"""Direct TCP connections between CLIs (PROTOCOL.md §8.5): hints, the authenticated handshake,
framing and the sender's choice of route — all without a network."""

from __future__ import annotations

import asyncio
import json

import pytest
from hushdrop.crypto.hkdf import hkdf_expand, hkdf_extract
from hushdrop.crypto.pyca import PycaBackend
from hushdrop.protocol import direct
from hushdrop.protocol.constants import (
    KEY_SCHEDULE_SALT,
    MAX_DIRECT_MESSAGE,
    MAX_HINTS,
    MSG_DATA,
    PROTOCOL_VERSION,
    SIDE_RECEIVER,
    SIDE_SENDER,
    SIGNAL_UNSUPPORTED,
)
from hushdrop.protocol.direct import (
    DirectHandshake,
    Hint,
    NoDirect,
    OtherSignal,
    RouteChoice,
    TcpHints,
    read_signal,
    tcp_offer,
)
from hushdrop.protocol.errors import ProtocolError, RelayError
from hushdrop.protocol.keys import SessionKeys
from hushdrop.transport.rendezvous import parse

from .pair import Pair

BACKEND = PycaBackend()
KEY = bytes(range(32))


def run(coroutine):
    return asyncio.run(coroutine)


# Hints -------------------------------------------------------------------------------------


def test_hints_survive_the_round_trip() -> None:
    hints = [Hint("192.0.2.7", 40123), Hint("2001:db8::1", 40123)]
    assert read_signal(tcp_offer(hints)) == TcpHints(tuple(hints))


def test_an_empty_hint_list_still_means_the_peer_connects() -> None:
    assert read_signal(tcp_offer([])) == TcpHints(())


def test_hints_that_are_names_or_bad_ports_are_dropped() -> None:
    payload = json.dumps(
        {
            "type": "tcp",
            "hints": [
                {"host": "relay.example.org", "port": 80},
                {"host": "192.0.2.1", "port": 0},
                {"host": "192.0.2.2", "port": 65536},
                {"host": "192.0.2.3", "port": "80"},
                {"host": "192.0.2.4", "port": True},
                {"host": "0.0.0.0", "port": 80},
                {"host": "224.0.0.1", "port": 80},
                {"host": "fe80::1%eth0", "port": 80},
                "192.0.2.5:80",
                {"host": "192.0.2.6", "port": 443},
                {"host": "192.0.2.6", "port": 443},
            ],
        }
    ).encode()
    assert read_signal(payload) == TcpHints((Hint("192.0.2.6", 443),))


def test_at_most_max_hints_are_kept() -> None:
    hints = [{"host": f"10.0.{i // 256}.{i % 256}", "port": 1000} for i in range(1000)]
    signal = read_signal(json.dumps({"type": "tcp", "hints": hints}).encode())
    assert len(signal.hints) == MAX_HINTS


def test_an_offer_never_carries_more_than_max_hints() -> None:
    many = [Hint(f"10.1.0.{i}", 9) for i in range(40)]
    assert len(json.loads(tcp_offer(many))["hints"]) == MAX_HINTS


def test_a_refusal_reads_as_no_direct() -> None:
    assert read_signal(SIGNAL_UNSUPPORTED) == NoDirect()
    assert read_signal(direct.no_direct()) == NoDirect()


@pytest.mark.parametrize(
    "payload",
    [
        b'{"type": "offer", "sdp": "v=0"}',
        b"not json",
        b"[1, 2]",
        b'{"type": "tcp", "hints": 5}',
        b"[" * 60_000,  # too deep for the JSON parser: not a crash (RecursionError)
    ],
    ids=["webrtc", "not-json", "list", "bad-hints", "deep"],
)
def test_webrtc_and_malformed_signals_are_not_tcp_offers(payload: bytes) -> None:
    signal = read_signal(payload)
    assert isinstance(signal, (OtherSignal, TcpHints))
    assert not getattr(signal, "hints", ())


def test_an_oversized_signal_is_refused() -> None:
    with pytest.raises(ProtocolError):
        read_signal(b" " * (64 * 1024 + 1))


# Key schedule -----------------------------------------------------------------------------


def test_the_direct_key_comes_from_its_own_label_of_the_key_schedule() -> None:
    isk = bytes(64)

    async def derive():
        keys = await SessionKeys.derive(BACKEND, isk)
        prk = await hkdf_extract(BACKEND, KEY_SCHEDULE_SALT, isk)
        return keys, await hkdf_expand(BACKEND, prk, b"hushdrop/3 direct", 32)

    keys, expected = run(derive())
    assert keys.direct == expected
    assert keys.direct not in (keys.data, keys.resume, keys.control_s2r, keys.control_r2s)


# Handshake --------------------------------------------------------------------------------


async def _handshake(sender_key: bytes, receiver_key: bytes) -> tuple[bool, bool]:
    sender = DirectHandshake(BACKEND, SIDE_SENDER, sender_key)
    receiver = DirectHandshake(BACKEND, SIDE_RECEIVER, receiver_key)
    sender_tag = await sender.on_hello(receiver.hello())
    receiver_tag = await receiver.on_hello(sender.hello())
    return await sender.check_tag(receiver_tag), await receiver.check_tag(sender_tag)


def test_both_ends_with_the_session_key_authenticate_each_other() -> None:
    assert run(_handshake(KEY, KEY)) == (True, True)


def test_an_end_without_the_session_key_fails_on_both_sides() -> None:
    assert run(_handshake(KEY, bytes(32))) == (False, False)


def test_a_hello_from_the_same_side_is_refused() -> None:
    async def reflect():
        sender = DirectHandshake(BACKEND, SIDE_SENDER, KEY)
        await sender.on_hello(sender.hello())

    with pytest.raises(ProtocolError):
        run(reflect())


def test_a_tag_reflected_back_does_not_authenticate() -> None:
    async def reflect():
        sender = DirectHandshake(BACKEND, SIDE_SENDER, KEY)
        receiver = DirectHandshake(BACKEND, SIDE_RECEIVER, KEY)
        own_tag = await sender.on_hello(receiver.hello())
        return await sender.check_tag(own_tag)

    assert run(reflect()) is False


def test_a_tag_recorded_on_another_connection_does_not_authenticate() -> None:
    async def replay():
        first_sender = DirectHandshake(BACKEND, SIDE_SENDER, KEY)
        impostor_hello = DirectHandshake(BACKEND, SIDE_RECEIVER, KEY).hello()
        recorded = await DirectHandshake(BACKEND, SIDE_RECEIVER, KEY).on_hello(first_sender.hello())
        second_sender = DirectHandshake(BACKEND, SIDE_SENDER, KEY)
        await second_sender.on_hello(impostor_hello)
        return await second_sender.check_tag(recorded)

    assert run(replay()) is False


@pytest.mark.parametrize("hello", [b"", b"GET / HTTP/1.1\r\n" + bytes(18), bytes(34)])
def test_anything_but_a_hello_is_refused(hello: bytes) -> None:
    with pytest.raises(ProtocolError):
        run(DirectHandshake(BACKEND, SIDE_SENDER, KEY).on_hello(hello))


def test_a_hello_of_another_version_is_refused() -> None:
    hello = bytearray(DirectHandshake(BACKEND, SIDE_RECEIVER, KEY).hello())
    hello[16] = 2
    with pytest.raises(ProtocolError):
        run(DirectHandshake(BACKEND, SIDE_SENDER, KEY).on_hello(bytes(hello)))


def test_hello_is_magic_version_side_and_nonce() -> None:
    hello = DirectHandshake(BACKEND, SIDE_RECEIVER, KEY).hello()
    assert len(hello) == direct.HELLO_SIZE == 34
    assert hello[:16] == b"hushdrop direct\n"
    assert hello[16:18] == bytes([PROTOCOL_VERSION, SIDE_RECEIVER])


# Framing ----------------------------------------------------------------------------------


def test_a_frame_header_is_the_length_as_u32() -> None:
    assert direct.frame_header(MSG_DATA) == b"\x00\x00\x00\x20"
    assert direct.frame_length(direct.frame_header(MAX_DIRECT_MESSAGE)) == MAX_DIRECT_MESSAGE


@pytest.mark.parametrize("length", [0, MAX_DIRECT_MESSAGE + 1, 2**32 - 1])
def test_an_impossible_frame_length_is_refused(length: int) -> None:
    with pytest.raises(ProtocolError):
        direct.frame_length(length.to_bytes(4, "big"))


# Route choice -----------------------------------------------------------------------------


def test_the_sender_holds_data_until_the_answer_timeout() -> None:
    choice = RouteChoice()
    choice.accepted(100.0)
    assert choice.hold_data(100.0 + direct.ANSWER_TIMEOUT - 0.1)
    assert not choice.hold_data(100.0 + direct.ANSWER_TIMEOUT)
    assert choice.give_up_if_late(100.0 + direct.ANSWER_TIMEOUT)
    assert choice.state == "relay"


def test_a_refusal_releases_the_data_at_once() -> None:
    choice = RouteChoice()
    choice.accepted(0.0)
    assert not choice.answered(NoDirect(), 0.1)
    assert not choice.hold_data(0.1)


def test_a_peer_that_never_answers_is_given_up_after_the_timeout() -> None:
    choice = RouteChoice()
    choice.accepted(0.0)
    assert choice.deadline() == direct.ANSWER_TIMEOUT


def test_hints_give_the_connections_their_own_timeout() -> None:
    choice = RouteChoice()
    choice.accepted(0.0)
    assert choice.answered(TcpHints((Hint("192.0.2.1", 1),)), 4.0)
    assert choice.hold_data(4.0 + direct.CONNECT_TIMEOUT - 0.1)
    assert choice.deadline() == 4.0 + direct.CONNECT_TIMEOUT


def test_only_the_first_authenticated_connection_is_chosen() -> None:
    choice = RouteChoice()
    choice.answered(TcpHints(()), 0.0)
    assert choice.authenticated()
    assert not choice.authenticated()
    assert not choice.hold_data(1.0)


def test_before_any_data_the_transfer_moves_whatever_is_left() -> None:
    choice = RouteChoice()
    choice.answered(TcpHints(()), 0.0)
    choice.authenticated()
    assert choice.should_move(bytes_sent=0, bytes_left=10)


def test_a_transfer_under_way_moves_only_with_enough_left() -> None:
    choice = RouteChoice()
    choice.answered(TcpHints(()), 0.0)
    choice.authenticated()
    assert not choice.should_move(bytes_sent=1, bytes_left=direct.SWITCH_MIN_REMAINING - 1)
    assert choice.should_move(bytes_sent=1, bytes_left=direct.SWITCH_MIN_REMAINING)


def test_a_connection_after_giving_up_is_not_chosen() -> None:
    choice = RouteChoice()
    choice.failed()
    assert not choice.authenticated()
    assert not choice.should_move(0, 10)


# The sender's hold ------------------------------------------------------------------------


def test_a_held_sender_reads_no_file_data_until_released() -> None:
    async def scenario():
        pair = Pair({"a.bin": b"x" * 100_000})
        pair.sender.hold(True)
        await pair.run()
        state_while_held, read_while_held = pair.sender.state, pair.sender.bytes_done
        pair.sender.hold(False)
        done = await pair.proceed()
        return state_while_held, read_while_held, done, pair

    state_while_held, read_while_held, done, pair = run(scenario())
    assert state_while_held == "sending"  # accepted, waiting for the route
    assert read_while_held == 0
    assert pair.sender.finished
    assert done.received[0] == b"x" * 100_000


def test_a_relay_message_nested_too_deep_is_a_relay_error_not_a_crash() -> None:
    with pytest.raises(RelayError, match="malformed"):
        parse("[" * 60_000)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "169.254.169.254", "fe80::1", "0.0.0.0"])
def test_hints_to_this_machine_or_link_local_services_are_dropped(host: str) -> None:
    payload = json.dumps({"type": "tcp", "hints": [{"host": host, "port": 80}]}).encode()
    assert read_signal(payload) == TcpHints(())
