"""The node link's fast path: a proxied pair's bytes passed through untouched, frames and all.

A node that carries a client to the room's home (cluster.proxy) sits between two WebSocket
connections whose frames need no change to cross it: the client masks its frames as a client
must, and so must the link, on which this node is the client; the home sends unmasked frames,
as a server must, and so must this node to its client. Neither connection has extensions
(compression is off everywhere). So once both byte streams are at a frame boundary, the node
stops parsing and re-framing messages and copies bytes from one socket to the other as they
arrive, as a TCP proxy would: the home sees the client's own frames, including its pings,
pongs and close frame, and the client sees the home's.

This module owns that switch and the pass-through:

* `FrameScanner` follows a byte stream frame by frame (headers only, no copies), so the node
  knows where frames end and how many payload bytes binary messages carried (the metrics).
* `Tap` is a connection's hold on its input: asked to, it lets websockets parse the stream up
  to the next frame boundary and keeps the rest unparsed, reading no more meanwhile.
* `Splice` asks both connections to hold, and once both are held with nothing left undelivered
  in websockets (both copy loops of cluster.proxy wait for a message), it takes both sockets
  over from websockets and passes bytes through. If the switch does not happen within
  `HOLD_TIMEOUT` (a message still on its way), both connections let go and the pair carries on
  message by message: the switch is an optimisation, never a requirement.

Bounds and ends stay as they were: a direction stops reading its source while its destination
holds more than `SPLICE_WRITE_LIMIT` unsent bytes (so backpressure still reaches the sender,
and the node holds at most that plus one read per direction); a destination that takes nothing
for the stall timeout is cut off with its source; when either side goes away the other side's
socket is closed once what is in flight reached it (a clean close passes through as frames, a
lost connection arrives as a lost connection), within `NOTIFY_TIMEOUT`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from hushdrop_relay.metrics import Metrics
from websockets.asyncio.connection import Connection
from websockets.protocol import State

# How long a pair may hold its input for the switch before it gives up and goes on message by
# message: at most the time a message in flight takes to arrive whole.
HOLD_TIMEOUT = 2.0
# Unsent bytes a passed-through direction may leave in its destination's write buffer before
# it stops reading its source. Plus one read (256 KiB) this is what a direction holds.
SPLICE_WRITE_LIMIT = 256 * 1024
# Bound on passing the last bytes on and closing, once one side went away.
NOTIFY_TIMEOUT = 5.0

_BINARY, _TEXT, _CONTINUATION = 0x2, 0x1, 0x0


class FrameScanner:
    """Where a WebSocket byte stream is, frame-wise, from a frame boundary on (RFC 6455 §5.2).

    Reads only the frame headers: the payloads are skipped by length, never copied.
    ``binary_bytes`` counts the payload of binary messages (all their frames) seen so far.
    """

    __slots__ = ("_binary", "_counting", "_head", "_left", "binary_bytes")

    def __init__(self) -> None:
        self._head = b""  # the start of a header cut by the end of the last chunk
        self._left = 0  # payload bytes of the current frame not seen yet
        self._counting = False  # whether the current frame's payload counts as binary
        self._binary = False  # whether the current (possibly fragmented) message is binary
        self.binary_bytes = 0

    @property
    def at_boundary(self) -> bool:
        return not self._left and not self._head

    def scan(self, data: bytes | bytearray | memoryview, *, stop: bool = False) -> int:
        """Follow ``data``, the stream's next bytes.

        With ``stop``, stop at the first frame boundary in ``data`` (0 if the stream is at one
        now) and return its offset, or -1 after scanning all of ``data`` if there is none.
        Without, scan all of it and return its length.
        """
        pos, end = 0, len(data)
        while True:
            if self._left:
                take = min(self._left, end - pos)
                self._left -= take
                pos += take
                if self._counting:
                    self.binary_bytes += take
                if self._left:
                    return -1 if stop else end
            if not self._head and (stop or pos == end):
                return pos
            head = self._head + bytes(data[pos : pos + 14 - len(self._head)])
            if len(head) < 2:
                self._head = head
                return -1 if stop else end
            first, second = head[0], head[1]
            length = second & 0x7F
            size = 2 + (2 if length == 126 else 8 if length == 127 else 0) + (second >> 7) * 4
            if len(head) < size:
                # Only when ``data`` ended: the slice above takes up to a longest header.
                self._head = head
                return -1 if stop else end
            if length == 126:
                length = int.from_bytes(head[2:4], "big")
            elif length == 127:
                length = int.from_bytes(head[2:10], "big")
            pos += size - len(self._head)
            self._head = b""
            opcode = first & 0x0F
            if opcode in (_BINARY, _TEXT):
                self._binary = opcode == _BINARY
            self._counting = self._binary and opcode in (_BINARY, _CONTINUATION)
            self._left = length


class Tap:
    """One connection's hold on its input, for `Splice` (see the module docstring).

    The connection class calls `intake` with every chunk it receives before websockets sees it.
    A tap made `from_start` (a link) follows the stream from the first chunk after the opening
    handshake; one made `from_here` (a client, when its pair starts) from that moment. Either
    follows it only if websockets then stands between two frames (see `_between_frames`).
    """

    __slots__ = ("_known", "_on_held", "_want", "cut", "held", "scanner")

    def __init__(self) -> None:
        self.scanner: FrameScanner | None = None
        self.held: bytearray | None = None  # input kept from websockets while held
        self._known: bool | None = None  # whether the stream is followed; None: not yet known
        self._want = False
        self._on_held: Callable[[], None] | None = None
        # Once spliced: what cuts the pair off should websockets want to write (see below).
        self.cut: Callable[[], None] | None = None

    @classmethod
    def from_start(cls) -> Tap:
        return cls()

    @classmethod
    def from_here(cls, conn: Connection) -> Tap:
        tap = cls()
        tap._known = conn.protocol.state is State.OPEN and _between_frames(conn)
        if tap._known:
            tap.scanner = FrameScanner()
        return tap

    def intake(self, conn: Connection, data: bytes) -> bytes:
        """The part of ``data`` websockets should parse now; the rest is held."""
        if self.held is not None:
            self.held += data
            conn.transport.pause_reading()
            return b""
        if self._known is None:
            if conn.protocol.state is not State.OPEN:
                return data
            self._known = _between_frames(conn)
            if self._known:
                self.scanner = FrameScanner()
        if self.scanner is None:
            return data
        if not self._want:
            self.scanner.scan(data)
            return data
        cut = self.scanner.scan(data, stop=True)
        if cut < 0:
            return data
        self._hold(conn, bytearray(data[cut:]))
        return data[:cut]

    def after(self) -> None:
        """Called once websockets processed what `intake` let through."""
        if self.held is not None and self._on_held is not None:
            on_held, self._on_held = self._on_held, None
            on_held()

    def hold(self, conn: Connection, on_held: Callable[[], None]) -> bool:
        """Hold the input at the next frame boundary, then call ``on_held``.

        False if this connection's stream is not followed (it cannot be held)."""
        if self.scanner is None or conn.protocol.state is not State.OPEN:
            return False
        self._on_held = on_held
        if self.scanner.at_boundary:
            self._hold(conn, bytearray())
            self.after()
        else:
            self._want = True
        return True

    def _hold(self, conn: Connection, rest: bytearray) -> None:
        self._want = False
        self.held = rest
        conn.transport.pause_reading()

    def release(self, conn: Connection, parse: Callable[[bytes], None]) -> None:
        """Let go: websockets parses what was held and reading goes on."""
        held, self.held = self.held, None
        self._want = False
        self._on_held = None
        if held is None:
            return
        # Unless websockets itself stopped reading (its queue is full): it resumes then.
        if not conn.recv_messages.paused:
            conn.transport.resume_reading()
        if held:
            parse(bytes(held))

    def take(self) -> tuple[FrameScanner, bytearray]:
        """Hand the stream over: its scanner and the bytes held (not scanned yet)."""
        assert self.scanner is not None and self.held is not None
        held, self.held = self.held, None
        self._on_held = None
        return self.scanner, held


def _between_frames(conn: Connection) -> bool:
    """Whether websockets has parsed all it received into whole frames.

    Then its parser (generators delegating with ``yield from``) waits in
    ``StreamReader.at_eof`` for a next frame, with nothing buffered.
    Should a later websockets parse differently, this says False and pairs are never spliced.
    """
    waiting_in = conn.protocol.parser
    while (inner := getattr(waiting_in, "gi_yieldfrom", None)) is not None:
        waiting_in = inner
    return not conn.protocol.reader.buffer and getattr(waiting_in, "__name__", "") == "at_eof"


class TappedConnection(Connection):
    """What `Splice` needs of a connection class: a `Tap` fed by ``data_received``.

    Mixed into the relay's server connections (connection.py) and the node links' client
    connections (`LinkConnection`), ahead of websockets' class. Without a tap (None, all
    connections until a pair is proxied, except links) data goes straight to websockets.
    """

    tap: Tap | None

    def parse(self, data: bytes) -> None:
        """Give ``data`` to websockets (what its ``data_received`` does)."""
        super().data_received(data)

    def data_received(self, data: bytes) -> None:
        tap = self.tap
        if tap is None:
            self.parse(data)
            return
        data = tap.intake(self, data)
        if data:
            self.parse(data)
        tap.after()

    def send_data(self) -> None:
        # Once spliced, this socket carries the peers' frames: websockets may not add its own.
        # It only tries to when this node shuts down or gives up on the connection (a close
        # frame), and then the peers are better off seeing a lost connection, which they resume.
        if self.tap is not None and self.tap.cut is not None:
            self.protocol.data_to_send()
            self.tap.cut()
            return
        super().send_data()

    def _let_go(self) -> None:
        if self.tap is not None and self.tap.held is not None:
            self.tap.release(self, self.parse)

    def eof_received(self) -> bool | None:
        self._let_go()  # what was held is the peer's last words: parse them first
        return super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._let_go()
        super().connection_lost(exc)


class _Pipe(asyncio.Protocol):
    """One socket of a spliced pair: what it receives is written to the other socket."""

    def __init__(self, splice: Splice, conn: TappedConnection, scanner: FrameScanner) -> None:
        self.splice = splice
        self.conn = conn
        self.transport: asyncio.Transport = conn.transport
        self.scanner = scanner
        self.other: _Pipe
        self.lost = False
        self.stall: asyncio.TimerHandle | None = None

    def forward(self, data: bytes | bytearray) -> None:
        before = self.scanner.binary_bytes
        self.scanner.scan(data)
        self.splice.metrics.bytes_relayed += self.scanner.binary_bytes - before
        # A view: what the socket does not take now is copied once into the write buffer,
        # not sliced into a new object first.
        self.other.transport.write(memoryview(data))

    def data_received(self, data: bytes) -> None:
        self.forward(data)

    def eof_received(self) -> bool:
        self.splice.ending()
        return False  # the transport closes itself, after writing what it still holds

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.stall is not None:
            self.stall.cancel()
        self.splice.lost(self, exc)

    # Called by our own transport about its write buffer, which the other pipe fills: stop
    # reading the other socket while this one has not taken what it was given.

    def pause_writing(self) -> None:
        if self.stall is not None or self.lost:
            return
        if not self.other.lost:
            self.other.transport.pause_reading()
        self.stall = asyncio.get_running_loop().call_later(
            self.splice.stall_timeout, self.splice.stalled
        )

    def resume_writing(self) -> None:
        if self.stall is None:
            return
        self.stall.cancel()
        self.stall = None
        if not self.other.lost:
            self.other.transport.resume_reading()


class Splice:
    """Switches a proxied pair to passing bytes through (see the module docstring)."""

    def __init__(
        self,
        client: TappedConnection,
        link: TappedConnection,
        metrics: Metrics,
        stall_timeout: float,
        on_switch: Callable[[], None],
    ) -> None:
        self.client, self.link = client, link
        self.metrics = metrics
        self.stall_timeout = stall_timeout
        self._on_switch = on_switch
        self.waiting: set[Any] = set()  # connections whose copy loop waits for a message
        self.switched = False
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._timer: asyncio.TimerHandle | None = None
        self._pipes: tuple[_Pipe, _Pipe] | None = None
        self._closer: asyncio.TimerHandle | None = None
        self._lost: dict[_Pipe, Exception | None] = {}

    def start(self) -> None:
        """Ask both connections to hold at their next frame boundary."""
        if self.link.tap is None:
            return
        if self.client.tap is None:
            # The client is quiet now (it waits for its answer), so it follows from here; the
            # link followed from its start, since the home may have sent more after the answer.
            self.client.tap = Tap.from_here(self.client)
        if not (
            self.client.tap.hold(self.client, self.try_switch)
            and self.link.tap.hold(self.link, self.try_switch)
        ):
            self.give_up()
            return
        self._timer = asyncio.get_running_loop().call_later(HOLD_TIMEOUT, self.give_up)

    def give_up(self) -> None:
        """Go on message by message."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for conn in (self.client, self.link):
            conn._let_go()

    def ready(self) -> bool:
        return not self.switched and all(
            conn.tap is not None
            and conn.tap.held is not None
            and conn in self.waiting
            and not len(conn.recv_messages.frames)
            and conn.protocol.state is State.OPEN
            for conn in (self.client, self.link)
        )

    def try_switch(self) -> bool:
        """Switch now if both connections are held with nothing undelivered; whether it did."""
        if not self.ready():
            return False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.switched = True
        self.metrics.links_spliced += 1
        self._on_switch()  # the copy loops stop at their next await
        pipes = []
        for conn in (self.client, self.link):
            assert conn.tap is not None
            # From here on websockets writes nothing: no keepalive pings of this node.
            if conn.keepalive_task is not None:
                conn.keepalive_task.cancel()
                conn.keepalive_task = None
            scanner, held = conn.tap.take()
            conn.tap.cut = self._abort
            pipe = _Pipe(self, conn, scanner)
            pipes.append((pipe, held))
        (client_pipe, client_held), (link_pipe, link_held) = pipes
        client_pipe.other, link_pipe.other = link_pipe, client_pipe
        self._pipes = (client_pipe, link_pipe)
        for pipe in self._pipes:
            pipe.transport.set_protocol(pipe)
            pipe.transport.set_write_buffer_limits(high=SPLICE_WRITE_LIMIT)
        # What websockets sent is already in the write buffers, ahead of these bytes.
        if client_held:
            client_pipe.forward(client_held)
        if link_held:
            link_pipe.forward(link_held)
        # A pipe reads while the other side's write buffer has room (see _Pipe.pause_writing).
        for pipe in self._pipes:
            if pipe.transport.get_write_buffer_size() > SPLICE_WRITE_LIMIT:
                pipe.pause_writing()
        for pipe in self._pipes:
            if pipe.other.stall is None:
                pipe.transport.resume_reading()
        return True

    # Ends of a spliced pair ----------------------------------------------------------------

    def ending(self) -> None:
        """One side closed its socket (or lost it): close the other once it has all."""
        assert self._pipes is not None
        for pipe in self._pipes:
            if not pipe.lost:
                pipe.transport.close()  # after writing what it holds
        if self._closer is None:
            self._closer = asyncio.get_running_loop().call_later(NOTIFY_TIMEOUT, self._abort)

    def stalled(self) -> None:
        """A destination took nothing for the stall timeout: it stopped reading."""
        self._abort()

    def _abort(self) -> None:
        assert self._pipes is not None
        for pipe in self._pipes:
            if not pipe.lost:
                pipe.transport.abort()

    def lost(self, pipe: _Pipe, exc: Exception | None) -> None:
        self._lost[pipe] = exc
        if len(self._lost) == 1:
            self.ending()
            return
        if self._closer is not None:
            self._closer.cancel()
        # Now websockets learns that its connections are gone, and its handlers end.
        for done in self._lost:
            done.conn.connection_lost(self._lost[done])
        if not self.finished.done():
            self.finished.set_result(None)
