"""Fuzzing what a peer controls in a direct TCP connection (PROTOCOL.md §8.5): the hints in its
SIGNAL, its HELLO_D and the frame lengths. Whatever arrives, the parser returns a value within
the protocol's limits or raises ProtocolError."""

from __future__ import annotations

import asyncio
import ipaddress
import json

from hushdrop.crypto.pyca import PycaBackend
from hushdrop.protocol.constants import (
    DIRECT_TAG_SIZE,
    MAX_DIRECT_MESSAGE,
    MAX_HINTS,
    SIDE_RECEIVER,
    SIDE_SENDER,
)
from hushdrop.protocol.direct import (
    DirectHandshake,
    NoDirect,
    OtherSignal,
    TcpHints,
    frame_length,
    read_signal,
)
from hushdrop.protocol.errors import ProtocolError
from hypothesis import given, settings
from hypothesis import strategies as st

FAST = settings(max_examples=300, deadline=None)
BACKEND = PycaBackend()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=30,
)
hint_like = st.fixed_dictionaries(
    {
        "host": st.ip_addresses().map(str) | st.text(max_size=30),
        "port": st.integers(min_value=-5, max_value=70000) | json_values,
    }
)
signals = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["tcp", "offer", "answer", "unsupported", ""]) | json_values,
        "hints": st.lists(hint_like | json_values, max_size=40) | json_values,
    }
).map(lambda message: json.dumps(message).encode())


def _check(signal: object) -> None:
    assert isinstance(signal, (TcpHints, NoDirect, OtherSignal))
    if isinstance(signal, TcpHints):
        assert len(signal.hints) <= MAX_HINTS
        for hint in signal.hints:
            ipaddress.ip_address(hint.host)  # an address literal, never a name
            assert 0 < hint.port < 65536


@FAST
@given(signals | st.binary(max_size=300))
def test_a_signal_reads_as_hints_within_limits_or_something_else(payload):
    try:
        signal = read_signal(payload)
    except ProtocolError:
        return
    _check(signal)


@FAST
@given(st.binary(max_size=80), st.sampled_from([SIDE_SENDER, SIDE_RECEIVER]))
def test_a_hello_yields_a_tag_or_protocol_error(data, side):
    handshake = DirectHandshake(BACKEND, side, bytes(32))
    try:
        tag = asyncio.run(handshake.on_hello(data))
    except ProtocolError:
        return
    assert len(tag) == DIRECT_TAG_SIZE


@FAST
@given(st.binary(min_size=4, max_size=4))
def test_a_frame_length_is_within_limits_or_protocol_error(header):
    try:
        length = frame_length(header)
    except ProtocolError:
        return
    assert 0 < length <= MAX_DIRECT_MESSAGE
