"""Direct connections between two CLIs (PROTOCOL.md §8.5), wired into `send` and `receive`.

`SenderRoute` offers this side's hints once the keys are confirmed, and again whenever the
transfer resumed through the relay (a receiver restarted from its record, §8.3), holds the data
stream back while a direct connection may still open, and moves the transfer onto it when
`RouteChoice` says so. `ReceiverRoute` answers the first offer of its run with its own hints
(later ones, after its direct path failed, with a refusal) and follows the sender's SWITCH. A
lost direct connection resumes through the relay like any lost connection (§8).
"""

from __future__ import annotations

import asyncio
import time

from ..crypto.backend import CryptoBackend
from ..protocol.constants import SIDE_RECEIVER, SIDE_SENDER
from ..protocol.direct import (
    CONNECT_TIMEOUT,
    NoDirect,
    RouteChoice,
    TcpHints,
    no_direct,
    read_signal,
    tcp_offer,
)
from ..protocol.errors import RelayError
from ..protocol.receiver import ReceiverSession
from ..protocol.sender import SenderSession
from ..transport.pump import Pump
from ..transport.tcp import DirectAttempt, TcpChannel
from .output import Reporter

RELAY, DIRECT = "relay", "direct"


class SenderRoute:
    """The sender's direct connection for one transfer, if one opens in time."""

    def __init__(
        self, backend: CryptoBackend, session: SenderSession, reporter: Reporter, enabled: bool
    ) -> None:
        self.backend = backend
        self.session = session
        self.reporter = reporter
        self.enabled = enabled
        self.pump: Pump | None = None
        self.choice = RouteChoice()
        self._attempt: DirectAttempt | None = None
        self._channel: TcpChannel | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._said: str | None = None
        self._since = 0  # content read when the current attempt began

    async def offer(self) -> None:
        """Keys confirmed: listen and send the hints (sealed), unless there is nothing to
        gain (`--no-direct`, or no data to move)."""
        key = self.session.direct_key
        if not self.enabled or not key or self.session.data_total == 0:
            self.choice.failed()
            return
        self._since = self.session.data_done
        self._attempt = DirectAttempt(
            self.backend, SIDE_SENDER, key, on_connection=self._authenticated
        )
        hints = await self._attempt.listen()
        await self.session.send_signal(tcp_offer(hints))
        self._decide()

    async def on_signal(self, payload: bytes) -> None:
        """The receiver's answer: its hints, or that it makes no direct connections."""
        signal = read_signal(payload)
        if self.choice.answered(signal, time.monotonic()) and isinstance(signal, TcpHints):
            self._attempt.connect(signal.hints)
        elif isinstance(signal, NoDirect) and self.choice.state == "relay":
            self.reporter.status("The receiver makes no direct connection.")
        self._decide()

    def accepted(self) -> None:
        self.choice.accepted(time.monotonic())
        self._decide()

    async def resumed(self) -> None:
        """The transfer resumed (§8.2). Through the relay, with data left to move, a new
        attempt starts as for a fresh transfer: a receiver restarted from its record (§8.3)
        goes direct again when it can, the data held back meanwhile at most the same timeouts;
        one whose direct path failed in this run refuses at once and the relay carries the
        rest. On the direct connection: nothing to do."""
        session = self.session
        total = session.data_total  # a text is data to move like a file's (§6.1.1)
        if not self.enabled or self.choice.state != "relay" or not session.can_switch:
            return
        if total is not None and session.data_done >= total:
            return  # only padding or COMPLETE left: nothing worth moving
        self._close()
        self.choice = RouteChoice()
        self.choice.accepted(time.monotonic())  # the receiver took the offer long ago
        await self.offer()

    def lost(self) -> None:
        """The connection carrying the transfer was lost; the relay takes it from here."""
        moved = self.choice.state == "moved"
        self.choice.failed()
        self._close()
        self.session.hold(False)
        if moved:
            self._say(RELAY)

    def close(self) -> None:
        self._close()

    async def _authenticated(self, channel: TcpChannel) -> None:
        if self._attempt is None or not self.choice.authenticated():
            channel.close_now()
            return
        self._channel = channel
        self._attempt.choose(channel)
        self._decide()

    def _decide(self) -> None:
        """Act on the route choice now: move, stop waiting, or wait until its deadline."""
        if self.pump is None:
            return
        session, choice, now = self.session, self.choice, time.monotonic()
        # A text is data like a file's here (§6.1.1): it moves the same way, so the relay
        # cannot tell them apart by the route. None for a stream (§7.2) until it ended.
        total = session.data_total
        left = None if total is None else total - session.data_done
        if choice.state == "ready" and session.can_switch:
            if choice.should_move(session.data_done - self._since, left):
                choice.moved()
                self.pump.switch(self._channel, announce=True)
                self._channel = None
                self._say(DIRECT)
            else:
                choice.failed()
        choice.give_up_if_late(now)
        if choice.state == "relay" and (self._attempt is not None or self._channel is not None):
            self._close()
            self._say(RELAY)
        held = choice.hold_data(now)
        session.hold(held)
        self.pump.wake()
        if self._timer is not None:
            self._timer.cancel()
        deadline = choice.deadline()
        if held and deadline is not None:
            self._timer = asyncio.get_running_loop().call_later(deadline - now, self._decide)

    def _say(self, route: str) -> None:
        if route != self._said:
            self._said = route
            self.reporter.route(route, "receiver")

    def _close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._attempt is not None:
            self._attempt.close()
            self._attempt = None
        if self._channel is not None:
            self._channel.close_now()
            self._channel = None


class ReceiverRoute:
    """The receiver's side: answer the sender's hints, follow its SWITCH."""

    def __init__(
        self, backend: CryptoBackend, session: ReceiverSession, reporter: Reporter, enabled: bool
    ) -> None:
        self.backend = backend
        self.session = session
        self.reporter = reporter
        self.enabled = enabled
        self.pump: Pump | None = None
        self._attempt: DirectAttempt | None = None
        self._direct = False
        self._answered = False  # this run already answered an offer with its hints

    async def on_signal(self, payload: bytes) -> None:
        """The sender's hints: answer with ours and connect, once per run. A later offer
        (the sender offers again after every resume through the relay) comes after our direct
        connection broke or our attempt failed: the same path, so we decline and the relay
        carries the rest at once. A receiver restarted from its record is a new run."""
        signal = read_signal(payload)
        if isinstance(signal, NoDirect):
            return
        key = self.session.direct_key
        if not (self.enabled and key and isinstance(signal, TcpHints)) or self._answered:
            await self.session.send_signal(no_direct())  # e.g. a page's WebRTC offer
            return
        self._answered = True
        self._attempt = DirectAttempt(self.backend, SIDE_RECEIVER, key)
        hints = await self._attempt.listen()
        if not hints and not signal.hints:
            # Neither side has an address the other could reach (only loopback, say): say so
            # at once rather than leave the sender holding the data until its timeout.
            self._attempt.close()
            self._attempt = None
            await self.session.send_signal(no_direct())
            return
        await self.session.send_signal(tcp_offer(hints))
        self._attempt.connect(signal.hints)
        # The sender connects as soon as these hints arrive; nobody else needs the port.
        asyncio.get_running_loop().call_later(2 * CONNECT_TIMEOUT, self._attempt.stop_listening)

    async def on_switch(self) -> None:
        """SWITCH: resume on the connection the sender chose (GO), or, if it never came,
        through the relay again."""
        channel = await self._attempt.chosen(CONNECT_TIMEOUT) if self._attempt else None
        if channel is None:
            raise RelayError(
                "The sender moved to a direct connection that never arrived.", "connection-lost"
            )
        self.pump.switch(channel)
        self._direct = True
        self.reporter.route(DIRECT, "sender")

    def lost(self) -> None:
        if self._direct:
            self._direct = False
            self.reporter.route(RELAY, "sender")
        self.close()

    def close(self) -> None:
        """The transfer ended, or left the direct connection: nothing direct stays open (the
        pump closes a connection it still uses itself; closing twice is harmless)."""
        if self._attempt is not None:
            self._attempt.close(keep_chosen=False)
            self._attempt = None
