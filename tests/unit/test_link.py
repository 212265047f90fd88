"""A link for several receivers (PROTOCOL.md §3.1, §3.2) without a network: the rows the sender
keeps, the rule that a failed key exchange ends the link for all, and the relay's info."""

from __future__ import annotations

import pytest
from hushdrop.protocol.errors import (
    CodeFormError,
    HushdropError,
    PeerCancelledError,
    ProtocolError,
    WrongCodeError,
)
from hushdrop.protocol.events import Accepted, Completed, Progress, Verified
from hushdrop.protocol.link import LINK_ENDED_REASON, Link, ReceiverState
from hushdrop.transport.rendezvous import RelayInfo, create_request, parse_info


def test_receivers_are_numbered_in_the_order_the_relay_announces_them():
    link = Link(3)
    assert [link.joined(n).number for n in (1, 2)] == [1, 2]
    assert not link.all_joined
    link.joined(3)
    assert link.all_joined


@pytest.mark.parametrize("number", [0, 2, 4])
def test_a_receiver_announced_out_of_turn_is_a_protocol_error(number):
    link = Link(3)
    if number == 4:
        for n in (1, 2, 3):
            link.joined(n)
    with pytest.raises(ProtocolError):
        link.joined(number)


def test_a_row_follows_its_sessions_events():
    link = Link(2)
    link.joined(1)
    row = link.event(1, Verified("ABCD-1234"))
    assert (row.state, row.sas) == (ReceiverState.VERIFIED, "ABCD-1234")
    link.event(1, Accepted())
    row = link.event(1, Progress(done=10, total=40))
    assert (row.state, row.done, row.total) == (ReceiverState.SENDING, 10, 40)
    row = link.event(1, Completed())
    assert (row.state, row.done) == (ReceiverState.DONE, 40)
    assert link.delivered == 1 and link.running == []


@pytest.mark.parametrize("error", [WrongCodeError(sender=True), CodeFormError("short code")])
def test_a_failed_key_exchange_ends_the_link_for_every_receiver(error):
    link = Link(3)
    for n in (1, 2):
        link.joined(n)
    assert link.failed(2, error) is True
    assert link.ended and link.ended_by == 2
    assert link.cancel_reason("cancelled") == LINK_ENDED_REASON
    assert [row.number for row in link.running] == [1]


@pytest.mark.parametrize(
    "error", [PeerCancelledError("declined"), HushdropError("disk full"), ProtocolError("bad")]
)
def test_other_failures_end_only_their_own_receiver(error):
    link = Link(2)
    for n in (1, 2):
        link.joined(n)
    assert link.failed(1, error) is False
    assert not link.ended
    assert link.row(1).state is ReceiverState.FAILED and link.row(1).error == str(error)
    assert link.cancel_reason("cancelled") == "cancelled"


def test_a_receiver_that_already_got_the_files_does_not_fail_afterwards():
    link = Link(2)
    link.joined(1)
    link.event(1, Completed())
    assert link.failed(1, WrongCodeError()) is False
    assert not link.ended and link.row(1).state is ReceiverState.DONE


def test_one_receiver_creates_a_room_as_before_and_several_ask_for_them():
    assert create_request(60) == '{"op": "create", "ttl": 60}'
    assert '"receivers": 3' in create_request(None, 3)


def test_the_relays_info_lists_its_lifetimes_sorted_and_its_receivers():
    info = {"version": 3, "ttl": {"default": 3600, "presets": [86400, 600, 3600]}, "receivers": 10}
    assert parse_info(info) == RelayInfo((600, 3600, 86400), 3600, 10)


@pytest.mark.parametrize(
    "info",
    [
        None,
        [],
        {"ttl": {"default": 3600, "presets": []}, "receivers": 10},
        {"ttl": {"default": 3600, "presets": [True]}, "receivers": 10},
        {"ttl": {"default": "3600", "presets": [600]}, "receivers": 10},
        {"ttl": {"default": 3600, "presets": [600]}},
    ],
)
def test_anything_else_is_no_info_and_the_page_keeps_the_relays_default(info):
    assert parse_info(info) is None
