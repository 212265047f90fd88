"""Messages of the page's language catalogs, as Python names them. Pure Python (no `js`).

Every text the page shows comes from one catalog per language (web/locales/<code>.json), shared
with app.js. Python never formats a visible text itself: it names a message by its key and gives
its arguments, and web/i18n.js paints it in the language the person chose, formatting numbers,
sizes, speeds, durations and percentages with `Intl`, and keeping the message on the element so a
change of language repaints it in place. `t("files.summary", count=3, size=Size(1536))`.

Argument values are strings (shown as they are: file names, a relay's own words), ints (counts,
formatted for the language), other messages, or the typed values below.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Size:
    """A number of bytes, shown as `1.5 KiB` (`1,5 KiB`, `1,5 Kio` …); None: a stream's
    unknown size, shown as "size unknown" (PROTOCOL.md §7.2)."""

    bytes: float | None

    def to_json(self) -> object:
        return {"$size": self.bytes}


@dataclass(frozen=True)
class Rate:
    """Bytes per second, shown as `35.2 MiB/s`."""

    bytes_per_second: float

    def to_json(self) -> object:
        return {"$rate": self.bytes_per_second}


@dataclass(frozen=True)
class Duration:
    """Seconds, shown roughly: `3.2 s`, `2 min 5 s`, `1 h 4 min` (Intl.DurationFormat)."""

    seconds: float

    def to_json(self) -> object:
        return {"$duration": self.seconds}


@dataclass(frozen=True)
class Period:
    """A whole number of one unit (week, day, hour, minute, second): `1 day`, `10 minutes`."""

    amount: int
    unit: str

    def to_json(self) -> object:
        return {"$period": [self.amount, self.unit]}


@dataclass(frozen=True)
class Percent:
    """A fraction (0…1) shown as a whole percentage: `42%`, `42 %`."""

    fraction: float

    def to_json(self) -> object:
        return {"$percent": self.fraction}


@dataclass(frozen=True)
class Message:
    """A catalog message: its key and arguments; `{count}` also chooses the plural form."""

    key: str
    args: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> object:
        return {"$message": self.key, "args": _args(self.args)}

    def args_json(self) -> str:
        return json.dumps(_args(self.args), ensure_ascii=False)


def _value(value: object) -> object:
    if isinstance(value, Size | Rate | Duration | Period | Percent | Message):
        return value.to_json()
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"a message argument cannot be {value!r}")
    return value


def _args(args: dict[str, object]) -> dict[str, object]:
    return {name: _value(value) for name, value in args.items()}


def t(key: str, **args: object) -> Message:
    """The message `key` of the catalogs, with its arguments (checked now, not when painted)."""
    _args(args)
    return Message(key, args)
