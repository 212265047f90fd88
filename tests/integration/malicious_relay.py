"""A malicious relay for tests: the rendezvous of PROTOCOL.md §3, then an attacker in the middle.

`MaliciousRelay` pairs real `hushdrop send` / `hushdrop receive` processes the way the real relay
does (create and join, resume slots, peer-gone), from a websockets server on 127.0.0.1 run by its
own event loop in a background thread. After pairing, each binary message goes through the policy
of its direction, a small object the test chooses:

    with MaliciousRelay(s2r=FlipBit(nth=2, kind=MSG_DATA)) as relay:
        sender = send(relay.url, path)

Policies: `Forward` (the default), `FlipBit`, `Drop`, `Duplicate`, `Swap`, `Replay`, `Reflect`,
`Cut`, `Substitute`, `Insert` and `Inject`; `Chain` puts several on one direction. They count
the messages of their direction from 1 (only those of type `kind` when one is given), across
reconnections; `s2r` is sender → receiver, `r2s` the other way.

The other attacks are options of the relay itself: how it answers `resume` requests (`resume=`),
whether it lets a third party into a paired room (`admit_third_party=`; `third_party()` drives
such a client), and a man in the middle who knows the code (`intercept()`), who runs one key
exchange with each peer using the project's own sessions.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from hushdrop.crypto.pyca import PycaBackend
from hushdrop.protocol.codes import Code, SenderSecrets, parse_code
from hushdrop.protocol.constants import DATA_FRAME_SIZE, FORM_LINK, FORM_WORDS, LINK_SECRET_SIZE
from hushdrop.protocol.errors import HushdropError
from hushdrop.protocol.events import Completed, FileData, Offered, Verified
from hushdrop.protocol.manifest import FileEntry, Manifest
from hushdrop.protocol.receiver import ReceiverSession
from hushdrop.protocol.sender import SenderSession
from websockets.asyncio.client import connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

MAX_MESSAGE = 2 * DATA_FRAME_SIZE
ROOM_TTL = 600
RESUME_LIFETIME = 120
CLOSE_TIMEOUT = 2
THIRD_PARTY_MARK = "third-party"  # query string of the clients `third_party()` drives
SIDES = ("sender", "receiver")
OTHER_SIDE = {"sender": "receiver", "receiver": "sender"}


# Policies ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Back:
    """Deliver `message` to the connection it came from instead of to its peer."""

    message: bytes


class Hangup:
    """Close both connections of the pair, after everything delivered before."""


HANGUP = Hangup()

Item = bytes | Back | Hangup


class Forward:
    """Deliver every message unchanged: an honest relay, and the base of the other policies.

    Subclasses override `on_counted`, which sees each message of type `kind` (every message when
    `kind` is None) with its number `n`, and returns what to deliver instead.
    """

    def __init__(self, kind: int | None = None) -> None:
        self.kind = kind
        self.count = 0
        self.fired = False  # the attack happened; tests check it did

    async def on_message(self, message: bytes) -> list[Item]:
        if self.kind is not None and message[:1] != bytes([self.kind]):
            return [message]
        self.count += 1
        return await self.on_counted(message, self.count)

    async def on_counted(self, message: bytes, n: int) -> list[Item]:
        return [message]


class _Nth(Forward):
    """A policy that does something to the nth message only."""

    def __init__(self, nth: int, kind: int | None = None) -> None:
        super().__init__(kind)
        self.nth = nth

    async def on_counted(self, message: bytes, n: int) -> list[Item]:
        if n != self.nth:
            return [message]
        self.fired = True
        return self.tamper(message)

    def tamper(self, message: bytes) -> list[Item]:
        raise NotImplementedError


class FlipBit(_Nth):
    """Flip bit `bit` of byte `offset` (default: the middle byte) of the nth message."""

    def __init__(
        self, nth: int, kind: int | None = None, offset: int | None = None, bit: int = 0
    ) -> None:
        super().__init__(nth, kind)
        self.offset = offset
        self.bit = bit

    def tamper(self, message: bytes) -> list[Item]:
        altered = bytearray(message)
        altered[len(message) // 2 if self.offset is None else self.offset] ^= 1 << self.bit
        return [bytes(altered)]


class Drop(_Nth):
    """Never deliver the nth message."""

    def tamper(self, message: bytes) -> list[Item]:
        return []


class Duplicate(_Nth):
    """Deliver the nth message twice in a row."""

    def tamper(self, message: bytes) -> list[Item]:
        return [message, message]


class Insert(_Nth):
    """Deliver `forged` (a message the relay made up) right after the nth message."""

    def __init__(self, nth: int, forged: bytes, kind: int | None = None) -> None:
        super().__init__(nth, kind)
        self.forged = forged

    def tamper(self, message: bytes) -> list[Item]:
        return [message, self.forged]


class Reflect(_Nth):
    """Send the nth message back to the peer that sent it (swapped directions)."""

    def tamper(self, message: bytes) -> list[Item]:
        return [Back(message)]


class Swap(Forward):
    """Reorder: hold the nth message back and deliver it right after the next one."""

    def __init__(self, nth: int, kind: int | None = None) -> None:
        super().__init__(kind)
        self.nth = nth
        self._held = b""

    async def on_counted(self, message: bytes, n: int) -> list[Item]:
        if n == self.nth:
            self._held = message
            return []
        if n == self.nth + 1:
            self.fired = True
            return [message, self._held]
        return [message]


class Replay(Forward):
    """Record the nth message and deliver a copy of it again right after message `after`."""

    def __init__(self, nth: int, after: int, kind: int | None = None) -> None:
        super().__init__(kind)
        self.nth = nth
        self.after = after
        self._recorded = b""

    async def on_counted(self, message: bytes, n: int) -> list[Item]:
        if n == self.nth:
            self._recorded = message
        if n == self.after:
            self.fired = True
            return [message, self._recorded]
        return [message]


class Cut(Forward):
    """Truncate: close both connections after `messages` messages or `size` bytes.

    A message crossing `size` is delivered cut short. A Cut fires once: a pair that resumed
    afterwards is left alone.
    """

    def __init__(
        self, messages: int | None = None, size: int | None = None, kind: int | None = None
    ) -> None:
        super().__init__(kind)
        self.messages = messages
        self.size = size
        self.bytes = 0
        self.fired_at = 0.0  # time.monotonic() of the cut

    def _fire(self) -> None:
        self.fired = True
        self.fired_at = time.monotonic()

    async def on_counted(self, message: bytes, n: int) -> list[Item]:
        if self.fired:
            return [message]
        if self.messages is not None and n >= self.messages:
            self._fire()
            return [message, HANGUP]
        if self.size is not None and self.bytes + len(message) >= self.size:
            self._fire()
            keep = self.size - self.bytes
            return [message[:keep], HANGUP] if keep > 1 else [HANGUP]
        self.bytes += len(message)
        return [message]


class Substitute(Forward):
    """Hold back the first `count` messages (delivering none), call `between()`, and close both
    connections; on the next connection deliver the held-back messages in place of the first
    `count` new ones: old ciphertext of a file that has since changed on the sender's disk."""

    def __init__(
        self, messages: int, kind: int | None = None, between: Callable[[], None] | None = None
    ) -> None:
        super().__init__(kind)
        self.messages = messages
        self.between = between
        self._held: list[bytes] = []

    async def on_counted(self, message: bytes, n: int) -> list[Item]:
        if n <= self.messages:
            self._held.append(message)
            if n < self.messages:
                return []
            if self.between is not None:
                self.between()
            return [HANGUP]
        if n <= 2 * self.messages:
            self.fired = True
            return [self._held[n - self.messages - 1]]
        return [message]


class Inject(Forward):
    """After message `after`, deliver what an admitted third party sent, as if from the peer.

    The third party's messages arrive in `pending` (see `MaliciousRelay.admit_third_party`); the
    direction waits for the first one, so the test decides the timing, not the scheduler.
    """

    def __init__(self, after: int, kind: int | None = None, wait: float = 20) -> None:
        super().__init__(kind)
        self.after = after
        self.wait = wait
        self.pending: asyncio.Queue[bytes] = asyncio.Queue()

    async def on_counted(self, message: bytes, n: int) -> list[Item]:
        if n != self.after:
            return [message]
        try:
            injected = [await asyncio.wait_for(self.pending.get(), self.wait)]
        except TimeoutError:
            return [message]  # no third party came: `fired` stays False and the test says so
        while not self.pending.empty():
            injected.append(self.pending.get_nowait())
        self.fired = True
        return [message, *injected]


class Chain(Forward):
    """Several policies on one direction: what one delivers is what the next one sees."""

    def __init__(self, *policies: Forward) -> None:
        self.policies = policies  # a chain counts nothing itself: no Forward.__init__

    @property
    def fired(self) -> bool:  # type: ignore[override]
        return all(p.fired for p in self.policies)

    async def on_message(self, message: bytes) -> list[Item]:
        items: list[Item] = [message]
        for policy in self.policies:
            passed: list[Item] = []
            for item in items:
                passed += await policy.on_message(item) if isinstance(item, bytes) else [item]
            items = passed
        return items


# The man in the middle --------------------------------------------------------------------------


class Interceptor:
    """A man in the middle who knows the code: the receiver to the sender, the sender to the
    receiver, each with its own key exchange.

    With the right code both exchanges succeed and the files pass through the interceptor, but
    the two real peers show different verification codes: comparing them is how users catch
    this (PROTOCOL.md §5.3). With a wrong code both exchanges fail confirmation (§5.4); the
    receiver is then offered a decoy file.
    """

    def __init__(self, code: str) -> None:
        self.code = parse_code(code)
        self.sas_with_sender: str | None = None
        self.sas_with_receiver: str | None = None
        self.errors: list[str] = []
        self._backend = PycaBackend()

    async def run(self, sender: ServerConnection, receiver: ServerConnection) -> None:
        taken = await self._receive_from(sender)
        manifest, contents = taken or _decoy()
        await self._send_to(receiver, manifest, contents)
        await asyncio.gather(_finish(sender), _finish(receiver))

    async def _receive_from(self, ws: ServerConnection) -> tuple[Manifest, list[bytes]] | None:
        """Take the files from the real sender, as the receiver it believes it talks to."""
        session = ReceiverSession(self._backend, self.code)
        contents: list[bytearray] = []
        try:
            while not session.finished:
                events = list(await session.receive(await _recv_binary(ws)))
                while events:
                    event = events.pop(0)
                    if isinstance(event, Verified):
                        self.sas_with_sender = event.sas
                    elif isinstance(event, Offered):
                        contents = [bytearray() for _ in event.manifest.files]
                        events += await session.accept()
                    elif isinstance(event, FileData):
                        contents[event.index] += event.data
                    elif isinstance(event, Completed):
                        await session.finish()
                await _send_all(ws, session.data_to_send())
        except (HushdropError, ConnectionClosed) as exc:
            self.errors.append(f"with the sender: {exc}")
            await _send_all(ws, session.data_to_send())  # its ABORT or CANCEL
            return None
        assert session.manifest is not None
        return session.manifest, [bytes(c) for c in contents]

    async def _send_to(
        self, ws: ServerConnection, manifest: Manifest, contents: list[bytes]
    ) -> None:
        """Offer the files to the real receiver, as the sender it believes it talks to."""
        session = SenderSession(self._backend, _sender_secrets(self.code), manifest)
        await session.start()
        try:
            await _send_all(ws, session.data_to_send())
            while not session.finished:
                while (request := session.next_read()) is not None:
                    index, offset, length = request
                    await session.send_plaintext(contents[index][offset : offset + length])
                    await _send_all(ws, session.data_to_send())
                for event in await session.receive(await _recv_binary(ws)):
                    if isinstance(event, Verified):
                        self.sas_with_receiver = event.sas
                await _send_all(ws, session.data_to_send())
        except (HushdropError, ConnectionClosed) as exc:
            self.errors.append(f"with the receiver: {exc}")
            await _send_all(ws, session.data_to_send())


def _sender_secrets(code: Code) -> SenderSecrets:
    """What a sender holding `code` knows; only the form the receiver uses matters."""
    words = tuple(code.secret.decode("ascii").split("-")) if code.form == FORM_WORDS else ()
    link_secret = code.secret if code.form == FORM_LINK else bytes(LINK_SECRET_SIZE)
    return SenderSecrets(code.room, words, link_secret, code.password_required)


def _decoy() -> tuple[Manifest, list[bytes]]:
    content = os.urandom(1000)
    return Manifest((FileEntry("decoy.bin", len(content)),)), [content]


# The relay --------------------------------------------------------------------------------------


@dataclass
class Pair:
    sender: ServerConnection
    receiver: ServerConnection
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    hung_up: bool = False


@dataclass
class Room:
    creator: ServerConnection
    joiner: asyncio.Future[ServerConnection]
    ended: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Waiter:
    """A connection waiting in a resume slot for the other side."""

    ws: ServerConnection
    third_party: bool
    pair: asyncio.Future[Pair]


class MaliciousRelay:
    """The relay protocol of PROTOCOL.md §3 with an attacker inside.

    `resume` says what happens to a real peer's `resume` request: "serve" pairs the two sides as
    the real relay does, "refuse" closes the connection at once, "hold" keeps it waiting in its
    slot, where only a third party can pair with it. `admit_third_party` lets a `join` into a
    room that is already paired; what that client sends goes to the `Inject` policies. Third
    parties are the clients `third_party()` runs; they connect with `?third-party` in the URL so
    the relay can tell them from the real peers.
    """

    def __init__(
        self,
        s2r: Forward | None = None,
        r2s: Forward | None = None,
        *,
        resume: str = "serve",
        admit_third_party: bool = False,
    ) -> None:
        if resume not in ("serve", "refuse", "hold"):
            raise ValueError(f"unknown resume mode {resume!r}")
        self.s2r = s2r or Forward()
        self.r2s = r2s or Forward()
        self.resume = resume
        self.admit_third_party = admit_third_party
        self.interceptor: Interceptor | None = None
        self.pairings = 0
        self.resume_requests: list[tuple[str, str]] = []  # (id, side) from the real peers
        self.port = 0
        self._rooms: dict[str, Room] = {}
        self._slots: dict[str, dict[str, Waiter]] = {}
        self._loop = asyncio.new_event_loop()
        self._server: Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    # Test-side API (called from the test's thread) ----------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> MaliciousRelay:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self._thread.start()
        self.call(self._open())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.call(self._shut(), timeout=15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def call(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        """Run `coroutine` on the relay's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def intercept(self, code: str) -> Interceptor:
        """From the next pairing on, be a man in the middle who knows `code` (a leaked code)."""
        self.interceptor = Interceptor(code)
        return self.interceptor

    def third_party(
        self, request: dict[str, object], send: list[bytes] | None = None, timeout: float = 10
    ) -> dict[str, object]:
        """Connect a third client, make `request` (join or resume), return the relay's answer.

        If it was paired, the client sends `send` as if it were a peer and stays connected until
        the relay closes it.
        """
        answer: concurrent.futures.Future[dict[str, object]] = concurrent.futures.Future()
        asyncio.run_coroutine_threadsafe(self._third_party(request, send or [], answer), self._loop)
        return answer.result(timeout)

    def wait_until(self, condition: Callable[[], object], timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {condition}")
            time.sleep(0.05)

    def resume_id(self, side: str) -> str | None:
        """The ID of the first `resume` request a real peer of `side` made, if any."""
        return next((i for i, s in self.resume_requests if s == side), None)

    # Server lifecycle -------------------------------------------------------------------------

    async def _open(self) -> None:
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            0,
            compression=None,
            max_size=MAX_MESSAGE,
            max_queue=16,
            close_timeout=CLOSE_TIMEOUT,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _shut(self) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 10)

    # Rendezvous (PROTOCOL.md §3) ------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        try:
            request = json.loads(await asyncio.wait_for(ws.recv(), 10))
        except (ConnectionClosed, TimeoutError, ValueError):
            await _finish(ws, _error("bad-request", "The relay did not understand the request."))
            return
        op = request.get("op") if isinstance(request, dict) else None
        third_party = THIRD_PARTY_MARK in (ws.request.path if ws.request else "")
        if op == "create":
            await self._create(ws)
        elif op == "join":
            await self._join(ws, str(request.get("room")))
        elif op == "resume":
            await self._resume(ws, request.get("id"), request.get("side"), third_party)
        else:
            await _finish(ws, _error("bad-request", "The relay did not understand the request."))

    async def _create(self, ws: ServerConnection) -> None:
        code = f"{secrets.randbelow(10**6):06d}"
        while code in self._rooms:
            code = f"{secrets.randbelow(10**6):06d}"
        room = Room(ws, asyncio.get_running_loop().create_future())
        self._rooms[code] = room
        try:
            await ws.send(_notice("created", room=code, ttl=ROOM_TTL))
            if await _wait_unless_closed(ws, room.joiner, ROOM_TTL):
                await self._run_pair(ws, room.joiner.result(), interceptable=True)
            else:
                await _finish(ws, _error("expired", "Nobody joined before the code expired."))
        except ConnectionClosed:
            pass
        finally:
            del self._rooms[code]
            room.ended.set()

    async def _join(self, ws: ServerConnection, code: str) -> None:
        room = self._rooms.get(code)
        if room is None:
            await _finish(ws, _error("no-such-room", "No transfer is waiting under that code."))
        elif not room.joiner.done():
            room.joiner.set_result(ws)
            await room.ended.wait()  # the creator's task runs the pair
        elif self.admit_third_party:
            await self._admit(ws)
        else:
            await _finish(ws, _error("room-full", "This transfer already has a receiver."))

    async def _admit(self, ws: ServerConnection) -> None:
        """Let a third client into a paired room: what it sends goes to the Inject policies."""
        targets = [p for p in (self.s2r, self.r2s) if isinstance(p, Inject)]
        with contextlib.suppress(ConnectionClosed):
            await ws.send(_notice("paired"))
            async for message in ws:
                for policy in targets:
                    if isinstance(message, bytes):
                        policy.pending.put_nowait(message)

    async def _resume(self, ws: ServerConnection, slot_id, side, third_party: bool) -> None:
        if not isinstance(slot_id, str) or len(slot_id) != 22 or side not in SIDES:
            await _finish(ws, _error("bad-request", "The relay did not understand the request."))
            return
        if not third_party:
            self.resume_requests.append((slot_id, side))
            if self.resume == "refuse":
                await _finish(ws, None, CloseCode.INTERNAL_ERROR)
                return
        slot = self._slots.setdefault(slot_id, {})
        other = slot.get(OTHER_SIDE[side])
        if other is not None and (self.resume == "serve" or third_party or other.third_party):
            del slot[OTHER_SIDE[side]]
            sender, receiver = (ws, other.ws) if side == "sender" else (other.ws, ws)
            pair = Pair(sender, receiver)
            other.pair.set_result(pair)
            await self._run_pair(sender, receiver, pair=pair)
            return
        if (replaced := slot.get(side)) is not None:
            await _finish(replaced.ws, _error("replaced", "A newer connection resumed."))
        waiter = Waiter(ws, third_party, asyncio.get_running_loop().create_future())
        slot[side] = waiter
        try:
            if await _wait_unless_closed(ws, waiter.pair, RESUME_LIFETIME):
                await waiter.pair.result().ended.wait()
            else:
                await _finish(ws, _error("expired", "The other side did not resume in time."))
        finally:
            if slot.get(side) is waiter:
                del slot[side]
            if not slot:
                self._slots.pop(slot_id, None)

    # Forwarding -------------------------------------------------------------------------------

    async def _run_pair(
        self,
        sender: ServerConnection,
        receiver: ServerConnection,
        *,
        pair: Pair | None = None,
        interceptable: bool = False,
    ) -> None:
        pair = pair or Pair(sender, receiver)
        self.pairings += 1
        try:
            for ws in (sender, receiver):
                try:
                    await ws.send(_notice("paired"))
                except ConnectionClosed:
                    await asyncio.gather(_finish(sender, _peer_gone()), _finish(receiver, None))
                    return
            if interceptable and self.interceptor is not None:
                await self.interceptor.run(sender, receiver)
                return
            await asyncio.gather(
                self._pump(pair, sender, receiver, self.s2r),
                self._pump(pair, receiver, sender, self.r2s),
            )
        finally:
            pair.ended.set()

    async def _pump(
        self, pair: Pair, src: ServerConnection, dst: ServerConnection, policy: Forward
    ) -> None:
        """Forward src → dst through `policy` until src leaves; then tell dst, as a relay does."""
        while True:
            try:
                message = await src.recv()
            except ConnectionClosed:
                break
            if isinstance(message, str):
                text = _error("bad-request", "Only binary frames may follow pairing.")
                await asyncio.gather(_finish(src, text), _finish(dst, text))
                return
            for item in await policy.on_message(message):
                if isinstance(item, Hangup):
                    pair.hung_up = True
                    going = CloseCode.GOING_AWAY
                    await asyncio.gather(_finish(src, None, going), _finish(dst, None, going))
                    return
                target, data = (src, item.message) if isinstance(item, Back) else (dst, item)
                with contextlib.suppress(ConnectionClosed):
                    await target.send(data)
        if not pair.hung_up:
            await _finish(dst, _peer_gone())

    # A third client ---------------------------------------------------------------------------

    async def _third_party(
        self,
        request: dict[str, object],
        messages: list[bytes],
        answer: concurrent.futures.Future[dict[str, object]],
    ) -> None:
        url = f"ws://127.0.0.1:{self.port}/v1/ws?{THIRD_PARTY_MARK}"
        try:
            async with connect(url, compression=None, max_size=MAX_MESSAGE) as ws:
                await ws.send(json.dumps(request))
                reply = json.loads(await ws.recv())
                answer.set_result(reply)
                if reply.get("op") != "paired":
                    return
                for message in messages:
                    await ws.send(message)
                async for _ in ws:  # stay, reading and ignoring, until the relay closes us
                    pass
        except Exception as exc:  # reported to the test, or the pair ended
            if not answer.done():
                answer.set_exception(exc)


# Helpers ----------------------------------------------------------------------------------------


def _notice(op: str, **fields: object) -> str:
    return json.dumps({"op": op, **fields})


def _error(code: str, message: str) -> str:
    return _notice("error", code=code, message=message)


def _peer_gone() -> str:
    return _notice("peer-gone", message="The other side disconnected.")


async def _finish(
    ws: ServerConnection, notice: str | None = None, code: int = CloseCode.NORMAL_CLOSURE
) -> None:
    """Send a last notice (if any) and close; never raises."""
    with contextlib.suppress(ConnectionClosed):
        if notice is not None:
            await ws.send(notice)
        await ws.close(code)


async def _wait_unless_closed(ws: ServerConnection, future: asyncio.Future, timeout: float) -> bool:
    """Wait for `future` while `ws` stays open, at most `timeout` seconds; whether it is done."""
    closed = asyncio.ensure_future(ws.wait_closed())
    try:
        await asyncio.wait({future, closed}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        closed.cancel()
    return future.done()


async def _recv_binary(ws: ServerConnection) -> bytes:
    message = await ws.recv()
    if isinstance(message, str):
        raise HushdropError("A peer sent text after pairing.")
    return message


async def _send_all(ws: ServerConnection, messages: list[bytes]) -> None:
    with contextlib.suppress(ConnectionClosed):
        for message in messages:
            await ws.send(message)
