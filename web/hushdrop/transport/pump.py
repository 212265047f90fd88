"""Running a session over relay connections: the one driver loop the CLI and the page share.

`Pump` moves messages between a sans-I/O session and a `RelayChannel`, feeds the sender file
data when it asks (a read that waits, standard input's, never holds up the peer's messages: a
CANCEL or a lost connection is handled meanwhile), hands events to the caller, and when a
connection is lost and the session can resume (PROTOCOL.md §8) opens a new one and resumes.
`switch()` moves a session to a direct connection the same way (§8.4). It decides nothing
about the protocol: the session says what to send and whether it can resume,
`rendezvous.connection_lost()` whether a closed connection was lost or the session ended. Runs
under asyncio in CPython and Pyodide.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from ..protocol.constants import KEEPALIVE_INTERVAL, SIDE_SENDER, STREAM_FLUSH_DELAY
from ..protocol.errors import HushdropError, PeerGoneError, RelayError
from ..protocol.events import Event, Reconnecting
from ..protocol.resume import SIDE_NAMES
from ..protocol.session import PeerSession
from .rendezvous import STALL, RelayChannel, connection_lost

RESUME_WINDOW = 600.0  # seconds a peer keeps trying to reconnect (PROTOCOL.md §8.1)
RETRY_FIRST = 1.0
RETRY_MAX = 10.0
REASON_WAIT = 2.0  # seconds to wait for the peer's last message after a failed send
# Relay answers worth another attempt while reconnecting: the other side may not be there yet,
# or its old connection is still being noticed as gone.
RETRYABLE = ("connection-lost", "unreachable", "expired", "room-full", "replaced", "limit")

OpenChannel = Callable[[], Awaitable[RelayChannel]]
ReadFile = Callable[[int, int, int], Awaitable[bytes | bytearray | memoryview]]
OnEvent = Callable[[Event], Awaitable[None]]

# Put into the message queue to wake a loop waiting for the peer (a switch was asked for).
_WAKE = object()


class Pump:
    """One transfer's message loop across as many connections as it takes."""

    def __init__(
        self,
        session: PeerSession,
        channel: RelayChannel | None,
        *,
        reopen: OpenChannel,
        on_event: OnEvent,
        read: ReadFile | None = None,
        after_message: Callable[[], Awaitable[None]] | None = None,
        resume_window: float = RESUME_WINDOW,
    ) -> None:
        self.session = session
        self.channel = channel
        self._reopen = reopen
        self._on_event = on_event
        self._read = read
        self._after_message = after_message
        self._resume_window = resume_window
        self._incoming: asyncio.Queue[bytes | BaseException | object] = asyncio.Queue()
        self._reader: asyncio.Task | None = None
        # The file read in progress, and the range it reads (the session's `next_read()`).
        self._reading: asyncio.Future | None = None
        self._reading_range: tuple[int, int, int] | None = None
        # When to tell the session that a read waits (`input_idle()`): STREAM_FLUSH_DELAY
        # after the first read since it was last told (so bytes read while a producer trickles
        # wait at most that long), then every KEEPALIVE_INTERVAL while the read waits.
        self._idle_at = 0.0
        self._idle_told = True
        self._switch_to: RelayChannel | None = None
        self._lost: BaseException | None = None  # what ended the last connection
        self._announce = False
        # One flush at a time: a background task (a WebRTC offer) may flush while the loop
        # waits, and two interleaved sends would reorder the sealed messages.
        self._sending = asyncio.Lock()

    async def run(self) -> None:
        """Run until the session finished; raise the HushdropError that ended it otherwise.

        Without a channel the session is one waiting to resume (a restarted receiver).
        """
        try:
            if self.channel is None:
                await self._reconnect()
            while True:
                try:
                    await self._run_connection()
                except (PeerGoneError, RelayError) as exc:
                    if not connection_lost(exc) or not self.session.connection_lost():
                        raise
                    self._lost = exc
                    await self._reconnect()
                    continue
                if self._switch_to is None or self.session.finished:
                    return
                await self._switch()
        except HushdropError as exc:
            error = self.session.ended_by(exc)  # e.g. a guesser who left counts as a guess
            if error is exc:
                raise
            raise error from exc
        finally:
            self._stop_reader()
            self._stop_reading()

    def switch(self, channel: RelayChannel, *, announce: bool = False) -> None:
        """Continue on `channel` (a direct connection) once the current message is handled.

        The sender asks with `announce`: the loop then tells the receiver (`switch_direct()`,
        any time while sending) before it leaves; the receiver calls it on `SwitchDirect`. The
        session then resumes on the channel as after a lost connection (PROTOCOL.md §8.4). May be
        called from outside the loop: a loop waiting for the peer wakes up for it.
        """
        self._switch_to = channel
        self._announce = announce
        self._incoming.put_nowait(_WAKE)

    def wake(self) -> None:
        """Make a loop waiting for the peer look at the session again (e.g. a held data
        stream was released). May be called from outside the loop."""
        self._incoming.put_nowait(_WAKE)

    async def flush(self) -> None:
        """Send what the session queued outside the loop (e.g. a signaling message) now."""
        if self.channel is not None and not self.session.reconnecting:
            await self._flush()

    async def peer_message(self) -> bytes:
        """The next message from the peer, for a driver waiting on its user meanwhile."""
        item = await self._incoming.get()
        while item is _WAKE:
            item = await self._incoming.get()
        if isinstance(item, BaseException):
            self._incoming.put_nowait(item)  # the loop still has to see how the connection ended
            raise item
        return item

    async def send_final(self) -> None:
        """Deliver what the session queued while giving up (CANCEL, ABORT); never raises."""
        if self.channel is not None:
            await self.channel.send_best_effort(self.session.data_to_send())

    async def close(self) -> None:
        self._stop_reader()
        if self.channel is not None:
            await self.channel.close()

    async def _run_connection(self) -> None:
        session = self.session
        self._start_reader()
        await self._flush()
        while not session.finished and self._switch_to is None:
            request = session.next_read() if self._read is not None else None
            if request is not None and (data := self._read_result(request)) is not None:
                await session.send_plaintext(data)
                await self._flush()
                if self._incoming.empty():
                    continue
            item = await self._next_message()
            if item is _WAKE:
                if self._switch_to is None:
                    await self._flush()  # e.g. a text's DATA a released hold let go (§6.1.1)
                continue
            if isinstance(item, BaseException):
                raise item
            for event in await session.receive(item):
                await self._on_event(event)
            if self._after_message is not None:
                await self._after_message()
            await self._flush()

    async def _next_message(self) -> bytes | BaseException | object:
        """The next item from the peer. While a read waits (a quiet or slow stream), the session
        hears of it once `_idle_at` passed (`input_idle()`)."""
        if self._reading is None or self._reading.done():
            return await self._incoming.get()
        delay = self._idle_at - time.monotonic()
        if delay <= 0:
            self._idle_at = time.monotonic() + KEEPALIVE_INTERVAL
            self._idle_told = True
            await self.session.input_idle()
            await self._flush()
            delay = KEEPALIVE_INTERVAL
        # A timer wakes the loop rather than a timeout on the queue, which could lose an item.
        timer = asyncio.get_running_loop().call_later(delay, self.wake)
        try:
            return await self._incoming.get()
        finally:
            timer.cancel()

    def _read_result(self, request: tuple[int, int, int]) -> memoryview | bytes | None:
        """The bytes of `request` once its read finished (raising its error); until then None,
        and the read runs as a task that wakes the loop when done, so peer messages are handled
        while it waits. A read the session no longer asks for is dropped: a file range can be
        read again, and a stream's reader keeps what it read for the next call (§7.2)."""
        if self._reading is not None and self._reading_range != request:
            self._stop_reading()
        if self._reading is None:
            self._reading_range = request
            if self._idle_told:  # bytes read from now on wait at most STREAM_FLUSH_DELAY
                self._idle_at = time.monotonic() + STREAM_FLUSH_DELAY
                self._idle_told = False
            self._reading = asyncio.ensure_future(self._read(*request))
            self._reading.add_done_callback(lambda _: self.wake())
            return None
        if not self._reading.done():
            return None
        reading, self._reading = self._reading, None
        return reading.result()

    def _stop_reading(self) -> None:
        if self._reading is not None:
            if self._reading.done() and not self._reading.cancelled():
                self._reading.exception()  # seen: the transfer ended for another reason
            self._reading.cancel()
            self._reading = None

    async def _flush(self) -> None:
        async with self._sending:
            messages = self.session.data_to_send()
            if self.session.finished:
                # The last word (the receiver's COMPLETE): the transfer succeeded whether or not
                # it still reaches the sender, which resumes to hear it if it does not.
                await self.channel.send_best_effort(messages)
                return
            try:
                await self.channel.send_all(messages)
            except (PeerGoneError, RelayError):
                await self._peer_reason()  # raises the peer's own reason, if it gave one
                raise

    async def _switch(self) -> None:
        """Leave the relay for the direct channel: the session resumes there (§8.4)."""
        channel, self._switch_to = self._switch_to, None
        if self._announce:
            if not self.session.can_switch:  # e.g. everything was sent meanwhile
                await channel.close()
                self._stop_reader()  # the loop goes on here and starts a new one
                return
            await self.session.switch_direct()
            await self._flush()
        if not self.session.connection_lost():
            raise RelayError("The transfer could not move to the direct connection.")
        await self.close()
        self.channel = channel
        self._incoming = asyncio.Queue()
        self.session.resume()

    async def _peer_reason(self) -> None:
        """A send failed: process what the peer sent before it went.

        A peer that stops (disk full, tampered data) sends CANCEL and leaves; if our send fails
        first, its CANCEL is still queued, and the session turns it into the real reason.
        """
        while True:
            try:
                item = await asyncio.wait_for(self._incoming.get(), REASON_WAIT)
            except TimeoutError:
                return
            if item is _WAKE:
                continue
            if isinstance(item, BaseException):
                return
            for event in await self.session.receive(item):
                await self._on_event(event)

    async def _reconnect(self) -> None:
        """Open connections until the other side is back, then start the resume handshake."""
        await self.close()
        self.channel = None
        await self._on_event(Reconnecting())
        slot = await self.session.resume_id()
        side = SIDE_NAMES[self.session.side]
        deadline = time.monotonic() + self._resume_window
        delay = RETRY_FIRST
        reached = False  # whether the relay answered at all: else it, not the peer, is gone
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PeerGoneError(
                    _gone_message(self.session, self._resume_window, self._lost, reached)
                )
            channel: RelayChannel | None = None
            try:
                async with asyncio.timeout(remaining):
                    channel = await self._reopen()
                    reached = True
                    await channel.resume_room(slot, side)
            except (TimeoutError, PeerGoneError, RelayError) as exc:
                if channel is not None:
                    await channel.close()
                if isinstance(exc, RelayError) and exc.code not in RETRYABLE:
                    raise
                await asyncio.sleep(max(0.0, min(delay, deadline - time.monotonic())))
                delay = min(delay * 2, RETRY_MAX)
                continue
            self.channel = channel
            self._incoming = asyncio.Queue()
            self.session.resume()
            return

    def _start_reader(self) -> None:
        channel, incoming = self.channel, self._incoming

        async def read_peer() -> None:
            # Only queues raw messages: the session is touched by the loop alone.
            while True:
                try:
                    message = await channel.receive()
                except BaseException as exc:
                    await incoming.put(exc)
                    return
                await incoming.put(message)

        self._reader = asyncio.ensure_future(read_peer())

    def _stop_reader(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None


def _gone_message(
    session: PeerSession, window: float, lost: BaseException | None, reached: bool = True
) -> str:
    """Why the transfer stopped after `window` seconds of trying to resume; `reached`: whether
    the relay could be reached meanwhile (if not, it is the one that did not come back)."""
    other = "receiver" if session.side == SIDE_SENDER else "sender"
    seconds = round(window)
    span = f"{seconds} seconds" if seconds < 120 else f"{round(seconds / 60)} minutes"
    if not reached:
        message = f"The connection was lost and the relay could not be reached again within {span}"
    elif isinstance(lost, RelayError) and lost.code == STALL:
        # The relay told this side that the other one stopped reading; it was the other's
        # connection that the relay dropped.
        message = (
            f"The relay dropped the {other}'s connection because it stopped taking data (a "
            f"paused program, or a computer gone to sleep), and the {other} did not come back "
            f"within {span}"
        )
    else:
        message = f"The connection was lost and the {other} did not come back within {span}"
    if getattr(session, "sent_everything", False):
        return (
            f"{message}. Everything was sent, but the receiver's confirmation that it saved the "
            "files never arrived."
        )
    return f"{message}, so the transfer was stopped."
