"""Numbers as the page shows them: sizes, counts, speeds and time left. Pure Python (no `js`).

The numbers go to the page as message arguments (see messages.py); web/i18n.js formats them for
the page's language. `RateMeter` turns (bytes done, time) samples into a smoothed speed and an
ETA, and decides when the page should repaint its progress (at most a few times per second), so
the transfer loop can call it after every message without touching the DOM each time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from .messages import Duration, Message, Period, Rate, Size, t


def files_summary(count: int, size: int | None) -> Message:
    """`3 files, 50.0 MiB`, in the page's language; size None: a stream's unknown size
    (PROTOCOL.md §7.2)."""
    return t("files.summary", count=count, size=Size(size))


def transfer_summary(count: int, size: int | None, text_size: int | None) -> Message:
    """`3 files, 50.0 MiB`, `a text of 12 B`, or `1 file, 9 B and a text of 12 B`: what a
    transfer carries (`text_size` None: no text)."""
    if text_size is None:
        return files_summary(count, size)
    if not count:
        return t("transfer.text", size=Size(text_size))
    return t("transfer.files-and-text", files=files_summary(count, size), size=Size(text_size))


def expiry_label(seconds: int) -> Message:
    """A link lifetime as a person says it: `10 minutes`, `1 hour`, `1 day`, `1 week` (in the
    page's language, by Intl's units)."""
    units = (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))
    for unit, size in units:
        if seconds >= size and seconds % size == 0:
            return t("expiry.period", period=Period(seconds // size, unit))
    return t("expiry.period", period=Duration(seconds))


class RateMeter:
    """Smoothed transfer speed and ETA, with a repaint throttle.

    `due(done)` is cheap and says whether it is time to repaint; `text(done)` formats the line
    shown under the progress bar. The speed is an exponential moving average over roughly the last
    few seconds, so it follows real changes without jumping around.
    """

    def __init__(
        self,
        total: int | None,
        interval: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.interval = interval
        self._clock = clock
        self.started = clock()
        self._last_time = self.started
        self._last_done = 0
        self._last_paint = -math.inf
        self._painted = 0  # the bytes done the last repaint showed
        self._ended = False
        self.rate = 0.0

    def due(self, done: int) -> bool:
        """True when the page should repaint: every `interval` seconds, and once at the end."""
        now = self._clock()
        if self.total is not None and done >= self.total:
            if self._ended:
                return False
            self._ended = True
        elif now - self._last_paint < self.interval:
            return False
        self._last_paint = now
        self._painted = done
        self._sample(done, now)
        return True

    def held_back(self, done: int) -> float | None:
        """Seconds until `done`, which `due` held back, may be shown; None: it is on screen.

        The data may stop right after a held-back update (a pipe waiting for its writer, a
        stalled connection): the driver repaints then, or the line would show old numbers."""
        if done == self._painted:
            return None
        return max(0.0, self._last_paint + self.interval - self._clock())

    def _sample(self, done: int, now: float) -> None:
        elapsed = now - self._last_time
        if elapsed <= 0:
            return
        instant = (done - self._last_done) / elapsed
        # Weight by elapsed time: a time constant of about 3 s whatever the repaint rate.
        weight = 1 - math.exp(-elapsed / 3.0)
        self.rate = instant if self.rate == 0 else self.rate + weight * (instant - self.rate)
        self._last_time, self._last_done = now, done

    def restart(self, done: int) -> None:
        """After a pause (a lost connection): no speed until new samples, none from before."""
        self.rate = 0.0
        self._last_time, self._last_done = self._clock(), done
        self._last_paint = -math.inf

    def elapsed(self) -> float:
        """Seconds since the meter started."""
        return self._clock() - self.started

    def text(self, done: int) -> Message:
        """`12.5 MiB of 50.0 MiB · 35.2 MiB/s · about 2 s left`; with no total (a stream,
        PROTOCOL.md §7.2) `12.5 MiB so far · 35.2 MiB/s`; in the page's language."""
        if self.total is None:
            if self.rate > 0:
                return t("progress.so-far-rate", done=Size(done), rate=Rate(self.rate))
            return t("progress.so-far", done=Size(done))
        if self.rate > 0 and done < self.total:
            left = Duration((self.total - done) / self.rate)
            return t(
                "progress.line-rate",
                done=Size(done),
                total=Size(self.total),
                rate=Rate(self.rate),
                left=left,
            )
        return t("progress.line", done=Size(done), total=Size(self.total))
