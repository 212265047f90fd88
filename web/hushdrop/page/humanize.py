"""Numbers as the page shows them: sizes, counts, speeds and time left. Pure Python (no `js`).

`RateMeter` turns (bytes done, time) samples into a smoothed speed and an ETA, and decides when the
page should repaint its progress (at most a few times per second), so the transfer loop can call it
after every message without touching the DOM each time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human_size(size: float | None) -> str:
    """`1536` → `1.5 KiB`; the same format as the CLI and app.js. None: a stream's unknown size
    (PROTOCOL.md §7.2)."""
    if size is None:
        return "size unknown"
    for unit in UNITS:
        if size < 1024 or unit == UNITS[-1]:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def files_summary(count: int, size: int | None) -> str:
    """`3 files, 50.0 MiB`."""
    return f"{plural(count, 'file')}, {human_size(size)}"


def transfer_summary(count: int, size: int | None, text_size: int | None) -> str:
    """`3 files, 50.0 MiB`, `a text of 12 B`, or `1 file, 9 B and a text of 12 B`: what a
    transfer carries (`text_size` None: no text)."""
    if text_size is None:
        return files_summary(count, size)
    text = f"a text of {human_size(text_size)}"
    return f"{files_summary(count, size)} and {text}" if count else text


def human_duration(seconds: float) -> str:
    """A rough, friendly duration: `3.2 s`, `48 s`, `2 min 5 s`, `1 h 4 min`."""
    if not math.isfinite(seconds) or seconds < 0:
        return "—"
    if seconds < 9.95:
        return f"{seconds:.1f} s"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def expiry_label(seconds: int) -> str:
    """A link lifetime as a person says it: `10 minutes`, `1 hour`, `1 day`, `1 week`."""
    if seconds < 1:
        return human_duration(seconds)
    units = (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))
    for unit, size in units:
        if seconds >= size and seconds % size == 0:
            return plural(seconds // size, unit)
    return human_duration(seconds)


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
        self._sample(done, now)
        return True

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

    def text(self, done: int) -> str:
        """`12.5 MiB of 50.0 MiB · 35.2 MiB/s · about 2 s left`; with no total (a stream,
        PROTOCOL.md §7.2) `12.5 MiB so far · 35.2 MiB/s`."""
        if self.total is None:
            parts = [f"{human_size(done)} so far"]
            if self.rate > 0:
                parts.append(f"{human_size(self.rate)}/s")
            return " · ".join(parts)
        parts = [f"{human_size(done)} of {human_size(self.total)}"]
        if self.rate > 0 and done < self.total:
            parts.append(f"{human_size(self.rate)}/s")
            parts.append(f"about {human_duration((self.total - done) / self.rate)} left")
        return " · ".join(parts)
