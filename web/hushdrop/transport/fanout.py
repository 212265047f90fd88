"""Serving every receiver of a link (PROTOCOL.md §3.1): the control connection announces each
receiver, this module gives it a connection of its own (an attach) and runs the driver's
`serve` on it, and stops them all when `Link` says a failure ended the link.

Shared by the CLI and the page (pure asyncio, like pump.py). The driver's `serve` runs one
receiver's session to its end and raises the HushdropError that ended it otherwise; when it is
cancelled it tells its receiver why (`Link.cancel_reason`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from ..protocol.errors import HushdropError, PeerGoneError, RelayError, WrongCodeError
from ..protocol.link import Link
from .rendezvous import RelayChannel

# A receiver's row when the sender stopped its transfer (a user's cancel).
STOPPED = "The sender cancelled the transfer."

OpenChannel = Callable[[], Awaitable[RelayChannel]]
ServeOne = Callable[[int, RelayChannel], Awaitable[None]]


async def serve_link(
    control: RelayChannel,
    link: Link,
    open_channel: OpenChannel,
    serve: ServeOne,
    on_joined: Callable[[int], None] | None = None,
    on_over: Callable[[int], None] | None = None,
    closing: asyncio.Event | None = None,
) -> None:
    """Serve the link's receivers until each that came is done and no more can come.

    Setting `closing` closes the link early (the sender has given it to enough people): nobody
    else can join, and the receivers who came carry on to their end.

    `on_joined(n)` is called when receiver n came, `on_over(n)` when its transfer ended either
    way (its `Link` row says how). Raises `WrongCodeError` when a failed key exchange ended the
    link, the relay's error when the link expired (or the control connection broke) before
    anyone came, and an error naming the first receiver that failed otherwise.
    """
    assert control.room is not None and control.token is not None
    room, token = control.room, control.token
    transfers: dict[int, asyncio.Task[None]] = {}
    failures: dict[int, BaseException] = {}
    ended = asyncio.Event()

    async def run_one(number: int) -> None:
        # Never raises but to be cancelled: a receiver's end is its row (and `failures`), read
        # when the link is over. A task that raises before anyone awaits it is an "unhandled
        # exception" to Pyodide's event loop, which the page would show as a traceback.
        channel: RelayChannel | None = None
        try:
            channel = await open_channel()
            await channel.attach_room(room, number, token)
            await serve(number, channel)
        except HushdropError as exc:
            failures[number] = exc
            if link.failed(number, exc):
                ended.set()
        except asyncio.CancelledError:
            link.failed(number, HushdropError(link.cancel_reason(STOPPED)))
            raise
        except Exception as exc:  # a bug: raised by serve_link once the others are stopped
            failures[number] = exc
            link.failed(number, HushdropError(f"{type(exc).__name__}: {exc}"))
            ended.set()
        finally:
            if channel is not None:
                with contextlib.suppress(Exception):
                    await channel.close()
            if on_over is not None:
                on_over(number)

    async def admit() -> None:
        while not link.all_joined:
            try:
                number = await control.next_receiver()
            except (RelayError, PeerGoneError):
                if not link.rows:
                    raise  # nobody came: the link expired, as with one receiver
                return  # no more will come; those who came carry on
            link.joined(number)
            if on_joined is not None:
                on_joined(number)
            transfers[number] = asyncio.ensure_future(run_one(number))

    admitting = asyncio.ensure_future(admit())
    ending = asyncio.ensure_future(ended.wait())
    closed = asyncio.ensure_future((closing or asyncio.Event()).wait())
    try:
        while not (admitting.done() and all(t.done() for t in transfers.values())):
            # Only what is still running: a finished task would make this return at once.
            waits = (admitting, ending, closed, *transfers.values())
            running = {t for t in waits if not t.done()}
            await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            if closed.done() and not admitting.done():
                admitting.cancel()  # nobody else joins a closed link (PROTOCOL.md §3.1)
                await asyncio.gather(admitting, return_exceptions=True)
                with contextlib.suppress(Exception):
                    await control.close()
            if admitting.done() and not admitting.cancelled() and admitting.exception():
                raise admitting.exception()  # type: ignore[misc]
            if ended.is_set():
                break
    finally:
        admitting.cancel()
        ending.cancel()
        closed.cancel()
        if ended.is_set() or any(not t.done() for t in transfers.values()):
            # Nobody joins a link that is over; the receivers under way are told why.
            with contextlib.suppress(Exception):
                await control.close()
            for task in transfers.values():
                task.cancel()
        await asyncio.gather(*transfers.values(), admitting, ending, closed, return_exceptions=True)
    for failure in failures.values():
        if not isinstance(failure, HushdropError):
            raise failure
    if link.ended:
        guess = failures.get(link.ended_by)  # the wrong code, or a guesser who left
        raise guess if isinstance(guess, WrongCodeError) else WrongCodeError(sender=True)
    if failures:
        number, failure = next(iter(sorted(failures.items())))
        raise LinkIncompleteError(link, number, failure)  # type: ignore[arg-type]


class LinkIncompleteError(HushdropError):
    """Some receivers of a link did not get the transfer; `link.rows` say how each ended.

    `failure` is the first failed receiver's error (`number`), the whole story when nobody got
    it."""

    def __init__(self, link: Link, number: int, failure: HushdropError) -> None:
        super().__init__(
            f"Sent to {link.delivered} of {len(link.rows)} receivers; receiver {number}: {failure}"
        )
        self.link = link
        self.number = number
        self.failure = failure
