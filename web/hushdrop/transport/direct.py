"""A direct WebRTC connection between two pages (PROTOCOL.md §8.4), for the page (Pyodide).

`DirectLink` negotiates one RTCPeerConnection with one data channel. Its offer and answer, with
every ICE candidate inside, travel as sealed signaling messages of the session, so the relay
learns no address and cannot swap the DTLS fingerprints. `DataChannelConnection` gives the data
channel the relay connection's interface, so the Pump can move a session onto it and back.

This runs in the engine worker, and RTCPeerConnection exists only on the page's main thread:
the connection lives there (web/direct.js), driven through a bridge (engine-worker.js
`openDirect`) that passes the channel's messages without copying them on the page and tells
this side the channel's state and how much it holds unsent.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

import js
from pyodide.ffi import create_proxy

from ..protocol.constants import CREDIT_BATCH, DATA_FRAME_SIZE, SIGNAL_UNSUPPORTED
from ..protocol.errors import RelayError
from ..protocol.padding import max_sealed_message
from .browser import MAX_QUEUED, flooded_error
from .rendezvous import RelayChannel

# Each peer message is cut into pieces no larger than this (and than the peer's own limit,
# pc.sctp.maxMessageSize); the first byte of a piece says whether more of the message follows.
MAX_PIECE = 256 * 1024  # Chromium's maxMessageSize; fewer, larger pieces cost less per byte
MORE, LAST = 0, 1
# Send-buffer watermarks, in bytes: `send` waits for `bufferedamountlow` above HIGH_WATER
# (direct.js sets LOW_WATER as the channel's threshold). The
# receiver's credit (16 MiB) already bounds what is in flight; SCTP needs a deep buffer to keep
# the channel busy (bench/page.py: 2 MiB gave 0.71× the relayed speed, 16 MiB 0.84×). But the
# buffer plus one piece must stay under the browser's own limit, or `send` throws "send queue is
# full": Chromium allows 16 MiB (kMaxQueuedSendDataBytes), so stay well below.
HIGH_WATER = 12 * DATA_FRAME_SIZE
LOW_WATER = 2 * CREDIT_BATCH
UNSUPPORTED = SIGNAL_UNSUPPORTED

SendSignal = Callable[[bytes], Awaitable[None]]


class DirectLink:
    """One attempt at a direct connection. The sender `offer()`s; the receiver answers from
    `on_signal`; `wait_open()` says whether it connected in time."""

    def __init__(self, ice_servers: list[dict], send_signal: SendSignal) -> None:
        self._send_signal = send_signal
        self._bridge = js.hushdrop.openDirect(json.dumps(ice_servers))
        self.channel = DataChannelConnection(self._bridge)
        self.failed = False

    async def offer(self) -> None:
        reply = (await self._bridge.offer()).to_py()
        if reply.get("failed") or not reply.get("description"):
            self.failed = True
            return
        await self._send_signal(str(reply["description"]).encode())

    async def on_signal(self, payload: bytes) -> None:
        """The peer's offer (answer it), answer (apply it) or refusal (give up)."""
        reply = (await self._bridge.signal(payload.decode("utf-8", "replace"))).to_py()
        if reply.get("failed"):
            self.failed = True
        elif reply.get("answer"):
            await self._send_signal(str(reply["answer"]).encode())

    @property
    def pending(self) -> bool:
        """Still negotiating: neither open nor failed."""
        return (
            not self.failed
            and self._bridge.dc == "connecting"
            and self._bridge.pc not in ("failed", "closed")
        )

    async def wait_open(self, deadline: float) -> bool:
        """Whether the data channel opened before `deadline` (time.monotonic())."""
        while not self.failed and time.monotonic() < deadline:
            if self._bridge.dc == "open":
                return True
            if self._bridge.dc == "closed" or self._bridge.pc == "failed":
                return False
            await asyncio.sleep(0.05)
        return self._bridge.dc == "open"

    def close(self) -> None:
        self.channel.close_now()


def in_background(link: DirectLink, step: Awaitable[None]) -> None:
    """Run a negotiation step without holding up the transfer; a failure only ends the attempt."""

    async def run() -> None:
        try:
            await step
        except Exception as exc:
            link.failed = True
            js.console.warn(f"Hushdrop: no direct connection: {exc}")

    _keep(run())


def decline(session, pump) -> None:
    """Tell the peer this side makes no direct connections (no WebRTC here)."""

    async def run() -> None:
        await session.send_signal(UNSUPPORTED)
        await pump.flush()

    _keep(run())


_running: set[asyncio.Future] = set()


def _keep(step: Awaitable[None]) -> None:
    """Run `step` as a task held until it ends (asyncio keeps only weak references)."""
    _running.add(task := asyncio.ensure_future(step))
    task.add_done_callback(_running.discard)


class DataChannelConnection(RelayChannel):
    """An open data channel with the relay connection's interface (`send`, `receive`, `close`)."""

    def __init__(self, bridge) -> None:
        self._bridge = bridge
        self._messages: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._pieces: list[bytes] = []
        self._pieced = 0  # bytes in `_pieces`: at most one message, the largest sealed one
        self._queued = 0  # bytes of whole messages not yet taken (bounded as in browser.py)
        self._flooded = False
        self._changed: asyncio.Event = asyncio.Event()
        self._closed = False
        self._proxies = [create_proxy(self._on_message), create_proxy(self._on_change)]
        bridge.onData, bridge.onChange = self._proxies

    def _on_message(self, data) -> None:
        if self._flooded:
            return
        piece = data.to_bytes()
        self._pieces.append(piece[1:])
        self._pieced += len(piece) - 1
        if self._pieced > max_sealed_message() or self._queued + self._pieced > MAX_QUEUED:
            # A peer that ignores credit or never ends a message: cut off, not kept (§7.4).
            self._flooded = True
            self._pieces, self._pieced = [], 0
            self.close_now()
            self._on_close()
            return
        if piece[:1] == bytes([LAST]):
            message, self._pieces = b"".join(self._pieces), []
            self._queued += self._pieced
            self._pieced = 0
            self._messages.put_nowait(message)

    def _on_change(self) -> None:
        self._changed.set()
        if self._closed:
            return
        # A peer that vanished (a crashed tab, a machine gone to sleep) stops answering ICE
        # consent checks: the connection turns "disconnected" within seconds, long before the
        # channel itself would close. Give it up then: the relay carries on from the last
        # verified byte (§8.4), and the page can say what it waits for.
        if self._bridge.pc in ("disconnected", "failed", "closed"):
            self._on_close()
            self.close_now()
        elif self._bridge.dc == "closed" or self._bridge.error:
            self._on_close()

    def _on_close(self) -> None:
        self._closed = True
        self._messages.put_nowait(None)
        self._changed.set()

    def _piece_size(self) -> int:
        limit = int(self._bridge.maxMessageSize or 0)
        return max(1024, min(MAX_PIECE, limit or MAX_PIECE)) - 1

    def _failed(self) -> bool:
        return self._closed or self._bridge.dc != "open" or bool(self._bridge.error)

    async def send(self, message: bytes | str) -> None:
        if isinstance(message, str):
            message = message.encode()
        while self._bridge.dc == "connecting" and not self._closed:
            self._changed.clear()
            await self._changed.wait()
        size = self._piece_size()
        for start in range(0, max(len(message), 1), size):
            while not self._failed() and self._bridge.bufferedAmount > HIGH_WATER:
                self._changed.clear()
                await self._changed.wait()
            if self._failed():
                error = self._bridge.error
                self.close_now()
                # Whatever the channel refuses (a full queue, a closing channel): the transfer
                # carries on through the relay (the pump resumes there, §8.4).
                detail = f"The direct connection failed ({error})." if error else None
                raise RelayError(detail or "The direct connection closed.", "connection-lost")
            length = min(size, len(message) - start)
            flag = LAST if start + size >= len(message) else MORE
            self._bridge.sendPiece(flag, message, start, length)

    async def receive(self) -> bytes:
        message = await self._messages.get()
        if message is None:
            self._messages.put_nowait(None)
            if self._flooded:
                raise flooded_error()
            raise RelayError("The direct connection closed.", "connection-lost")
        self._queued -= len(message)
        return message

    async def _recv(self) -> str | bytes:
        return await self.receive()

    async def close(self) -> None:
        self.close_now()

    def close_now(self) -> None:
        if self._bridge.dc != "closed":
            self._bridge.close()
