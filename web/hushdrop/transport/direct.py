"""A direct WebRTC connection between two pages (PROTOCOL.md §8.4), for the page (Pyodide).

`DirectLink` negotiates one RTCPeerConnection with one data channel. Its offer and answer, with
every ICE candidate inside, travel as sealed signaling messages of the session, so the relay
learns no address and cannot swap the DTLS fingerprints. `DataChannelConnection` gives the data
channel the relay connection's interface, so the Pump can move a session onto it and back.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

import js
from pyodide.ffi import JsException, create_proxy, to_js

from ..protocol.constants import CREDIT_BATCH, DATA_FRAME_SIZE, SIGNAL_UNSUPPORTED
from ..protocol.errors import RelayError
from .rendezvous import RelayChannel

# Each peer message is cut into pieces no larger than this (and than the peer's own limit,
# pc.sctp.maxMessageSize); the first byte of a piece says whether more of the message follows.
MAX_PIECE = 256 * 1024  # Chromium's maxMessageSize; fewer, larger pieces cost less per byte
MORE, LAST = 0, 1
# Send-buffer watermarks, in bytes: `send` waits for `bufferedamountlow` above HIGH_WATER. The
# receiver's credit (16 MiB) already bounds what is in flight; SCTP needs a deep buffer to keep
# the channel busy (bench/page.py: 2 MiB gave 0.71× the relayed speed, 16 MiB 0.84×). But the
# buffer plus one piece must stay under the browser's own limit, or `send` throws "send queue is
# full": Chromium allows 16 MiB (kMaxQueuedSendDataBytes), so stay well below.
HIGH_WATER = 12 * DATA_FRAME_SIZE
LOW_WATER = 2 * CREDIT_BATCH
GATHER_TIMEOUT = 3.0  # seconds to wait for ICE candidates before sending what we have
GATHER_POLL = 0.02
UNSUPPORTED = SIGNAL_UNSUPPORTED

SendSignal = Callable[[bytes], Awaitable[None]]


def available() -> bool:
    return hasattr(js, "RTCPeerConnection")


def _js(value: object):
    return to_js(value, dict_converter=js.Object.fromEntries)


class DirectLink:
    """One attempt at a direct connection. The sender `offer()`s; the receiver answers from
    `on_signal`; `wait_open()` says whether it connected in time."""

    def __init__(self, ice_servers: list[dict], send_signal: SendSignal) -> None:
        self._send_signal = send_signal
        self._pc = js.RTCPeerConnection.new(_js({"iceServers": ice_servers}))
        # Negotiated with a fixed id on both sides: no `datachannel` event to wait for.
        options = {"negotiated": True, "id": 0, "ordered": True}
        self._dc = self._pc.createDataChannel("hushdrop", _js(options))
        self.channel = DataChannelConnection(self._pc, self._dc)
        self.failed = False
        js.hushdrop.directConnection = self._pc  # for tests that break it on purpose

    async def offer(self) -> None:
        await self._pc.setLocalDescription(await self._pc.createOffer())
        await self._send_description()

    async def on_signal(self, payload: bytes) -> None:
        """The peer's offer (answer it), answer (apply it) or refusal (give up)."""
        try:
            message = json.loads(payload)
            kind, sdp = message.get("type"), message.get("sdp")
        except (ValueError, AttributeError):
            kind, sdp = None, None
        if kind == "offer" and isinstance(sdp, str):
            await self._pc.setRemoteDescription(_js({"type": "offer", "sdp": sdp}))
            await self._pc.setLocalDescription(await self._pc.createAnswer())
            await self._send_description()
        elif kind == "answer" and isinstance(sdp, str):
            await self._pc.setRemoteDescription(_js({"type": "answer", "sdp": sdp}))
            local = str(self._pc.localDescription.sdp)
            if not _has_candidates(local) and not _has_candidates(sdp):
                # Neither side has an address to try (e.g. WebRTC told to use only TURN
                # servers, and none are configured): ICE would wait for nothing.
                self.failed = True
        else:
            self.failed = True

    @property
    def pending(self) -> bool:
        """Still negotiating: neither open nor failed."""
        return (
            not self.failed
            and self._dc.readyState == "connecting"
            and (self._pc.connectionState not in ("failed", "closed"))
        )

    async def wait_open(self, deadline: float) -> bool:
        """Whether the data channel opened before `deadline` (time.monotonic())."""
        while not self.failed and time.monotonic() < deadline:
            if self._dc.readyState == "open":
                return True
            if self._dc.readyState == "closed" or self._pc.connectionState == "failed":
                return False
            await asyncio.sleep(0.05)
        return self._dc.readyState == "open"

    def close(self) -> None:
        self.channel.close_now()

    async def _send_description(self) -> None:
        """Send our description once ICE gathering finished (no trickle: one message)."""
        deadline = time.monotonic() + GATHER_TIMEOUT
        while self._pc.iceGatheringState != "complete" and time.monotonic() < deadline:
            await asyncio.sleep(GATHER_POLL)
        description = self._pc.localDescription
        payload = {"type": str(description.type), "sdp": str(description.sdp)}
        await self._send_signal(json.dumps(payload).encode())


def _has_candidates(sdp: str) -> bool:
    return "\na=candidate:" in sdp or sdp.startswith("a=candidate:")


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

    def __init__(self, pc, dc) -> None:
        self._pc = pc
        self._dc = dc
        self._dc.binaryType = "arraybuffer"
        self._dc.bufferedAmountLowThreshold = LOW_WATER
        self._messages: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._pieces: list[bytes] = []
        self._drained: asyncio.Event = asyncio.Event()
        self._closed = False
        self._proxies = []
        for event, handler in (
            ("message", self._on_message),
            ("close", self._on_close),
            ("bufferedamountlow", lambda _event: self._drained.set()),
        ):
            proxy = create_proxy(handler)
            self._proxies.append(proxy)
            self._dc.addEventListener(event, proxy)
        # A peer that vanished (a crashed tab, a machine gone to sleep) stops answering ICE
        # consent checks: the connection turns "disconnected" within seconds, long before the
        # channel itself would close. Give it up then: the relay carries on from the last
        # verified byte (§8.4), and the page can say what it waits for.
        proxy = create_proxy(self._on_connection_state)
        self._proxies.append(proxy)
        self._pc.addEventListener("connectionstatechange", proxy)

    def _on_message(self, event) -> None:
        piece = event.data.to_bytes()
        self._pieces.append(piece[1:])
        if piece[:1] == bytes([LAST]):
            message, self._pieces = b"".join(self._pieces), []
            self._messages.put_nowait(message)

    def _on_connection_state(self, _event) -> None:
        if self._pc.connectionState in ("disconnected", "failed", "closed") and not self._closed:
            self._on_close(None)
            self.close_now()

    def _on_close(self, _event) -> None:
        self._closed = True
        self._messages.put_nowait(None)
        self._drained.set()

    def _piece_size(self) -> int:
        sctp = self._pc.sctp
        limit = int(sctp.maxMessageSize) if sctp is not None and sctp.maxMessageSize else 0
        return max(1024, min(MAX_PIECE, limit or MAX_PIECE)) - 1

    async def send(self, message: bytes | str) -> None:
        if isinstance(message, str):
            message = message.encode()
        while self._dc.readyState == "connecting":
            await asyncio.sleep(0.02)
        view = memoryview(message)
        size = self._piece_size()
        for start in range(0, max(len(view), 1), size):
            if self._closed or self._dc.readyState != "open":
                raise RelayError("The direct connection closed.", "connection-lost")
            while self._dc.bufferedAmount > HIGH_WATER:
                self._drained.clear()
                await self._drained.wait()
                if self._closed:
                    raise RelayError("The direct connection closed.", "connection-lost")
            part = view[start : start + size]
            piece = bytearray(1 + len(part))
            piece[0] = LAST if start + size >= len(view) else MORE
            piece[1:] = part
            try:
                js.hushdrop.sendBytes(self._dc, piece)
            except JsException as exc:
                # Whatever the channel refuses (a full queue, a closing channel): the transfer
                # carries on through the relay (the pump resumes there, §8.4).
                self.close_now()
                raise RelayError(
                    f"The direct connection failed ({exc.name}).", "connection-lost"
                ) from exc

    async def receive(self) -> bytes:
        message = await self._messages.get()
        if message is None:
            self._messages.put_nowait(None)
            raise RelayError("The direct connection closed.", "connection-lost")
        return message

    async def _recv(self) -> str | bytes:
        return await self.receive()

    async def close(self) -> None:
        self.close_now()

    def close_now(self) -> None:
        self._dc.close()
        self._pc.close()
