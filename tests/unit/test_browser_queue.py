"""The page's relay connection (transport/browser.py) bounds what it queues: the browser pushes
every message as it arrives, so a peer that ignores credit (PROTOCOL.md §7.4) is cut off
instead of filling the tab's memory. Run under CPython with a stand-in for the browser's
WebSocket (the `js` and `pyodide.ffi` modules exist only in Pyodide); the queue is ours."""

from __future__ import annotations

import asyncio
import importlib
import sys
import types

import pytest
from hushdrop.protocol.constants import DATA_FRAME_SIZE
from hushdrop.protocol.errors import ProtocolError
from hushdrop.protocol.padding import max_sealed_message


class FakeWebSocket:
    def __init__(self) -> None:
        self.listeners: dict[str, object] = {}
        self.bufferedAmount = 0
        self.closed = False
        self.binaryType = ""

    def addEventListener(self, event: str, handler) -> None:  # the DOM's name
        self.listeners[event] = handler

    def close(self, *args) -> None:
        self.closed = True


class Message:
    """A message event whose data is an ArrayBuffer of `size` bytes."""

    def __init__(self, size: int) -> None:
        self.data = types.SimpleNamespace(byteLength=size, to_bytes=lambda: bytes(size))


@pytest.fixture
def browser(monkeypatch):
    sockets: list[FakeWebSocket] = []

    def new_socket(_url: str) -> FakeWebSocket:
        sockets.append(FakeWebSocket())
        return sockets[-1]

    js = types.ModuleType("js")
    js.WebSocket = types.SimpleNamespace(new=new_socket)
    js.addEventListener = js.removeEventListener = lambda *args: None
    js.console = types.SimpleNamespace(warn=lambda *args: None)
    ffi = types.ModuleType("pyodide.ffi")
    ffi.create_proxy = lambda handler: handler
    monkeypatch.setitem(sys.modules, "js", js)
    monkeypatch.setitem(sys.modules, "pyodide", types.ModuleType("pyodide"))
    monkeypatch.setitem(sys.modules, "pyodide.ffi", ffi)
    monkeypatch.delitem(sys.modules, "hushdrop.transport.browser", raising=False)
    module = importlib.import_module("hushdrop.transport.browser")
    yield module, sockets
    sys.modules.pop("hushdrop.transport.browser", None)


def test_a_peer_that_sends_more_than_a_credit_window_unread_is_cut_off(browser):
    module, sockets = browser

    async def scenario():
        connection = module.BrowserRelayConnection("https://relay.example")
        socket = sockets[0]
        frames = module.MAX_QUEUED // DATA_FRAME_SIZE + 1
        for _ in range(frames + 100):  # the engine has not taken any yet
            socket.listeners["message"](Message(DATA_FRAME_SIZE))
        assert socket.closed
        assert connection._messages.qsize() <= frames + 1  # nothing kept after the cut
        with pytest.raises(ProtocolError, match="more data than the protocol allows"):
            while True:
                await connection.receive()

    asyncio.run(scenario())


def test_a_peer_within_its_credit_is_never_cut_off_however_much_it_sends(browser):
    module, sockets = browser

    async def scenario():
        connection = module.BrowserRelayConnection("https://relay.example")
        socket = sockets[0]
        for _ in range(3 * module.MAX_QUEUED // DATA_FRAME_SIZE):
            socket.listeners["message"](Message(DATA_FRAME_SIZE))
            assert len(await connection.receive()) == DATA_FRAME_SIZE
        assert not socket.closed

    asyncio.run(scenario())


class FakeBridge:
    """web/direct.js's bridge to the page's data channel, as the engine sees it."""

    def __init__(self) -> None:
        self.onData = self.onChange = None
        self.dc, self.pc, self.error, self.maxMessageSize = "open", "connected", None, 0
        self.bufferedAmount = 0

    def close(self) -> None:
        self.dc = "closed"


def piece(last: bool, size: int):
    data = bytes([1 if last else 0]) + bytes(size)
    return types.SimpleNamespace(to_bytes=lambda: data)


@pytest.fixture
def direct(browser, monkeypatch):
    monkeypatch.delitem(sys.modules, "hushdrop.transport.direct", raising=False)
    yield importlib.import_module("hushdrop.transport.direct")
    sys.modules.pop("hushdrop.transport.direct", None)


def test_a_direct_peer_that_never_ends_a_message_is_cut_off(direct):
    async def scenario():
        bridge = FakeBridge()
        channel = direct.DataChannelConnection(bridge)
        for _ in range(max_sealed_message() // direct.MAX_PIECE + 2):
            bridge.onData(piece(False, direct.MAX_PIECE))
        assert bridge.dc == "closed" and channel._pieces == []
        with pytest.raises(ProtocolError, match="more data than the protocol allows"):
            await channel.receive()

    asyncio.run(scenario())


def test_a_direct_peer_that_ignores_credit_is_cut_off(direct):
    async def scenario():
        bridge = FakeBridge()
        channel = direct.DataChannelConnection(bridge)
        for _ in range(direct.MAX_QUEUED // DATA_FRAME_SIZE + 2):
            for _ in range(3):
                bridge.onData(piece(False, DATA_FRAME_SIZE // 4))
            bridge.onData(piece(True, DATA_FRAME_SIZE // 4))
        assert bridge.dc == "closed"
        with pytest.raises(ProtocolError, match="more data than the protocol allows"):
            while True:
                await channel.receive()

    asyncio.run(scenario())


def test_a_direct_peer_read_as_it_sends_is_never_cut_off(direct):
    async def scenario():
        bridge = FakeBridge()
        channel = direct.DataChannelConnection(bridge)
        for _ in range(3 * direct.MAX_QUEUED // DATA_FRAME_SIZE):
            bridge.onData(piece(False, DATA_FRAME_SIZE // 2))
            bridge.onData(piece(True, DATA_FRAME_SIZE // 2))
            assert len(await channel.receive()) == DATA_FRAME_SIZE
        assert bridge.dc == "open"

    asyncio.run(scenario())
