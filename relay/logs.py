"""Privacy-preserving, structured logging for the relay process.

This module owns the logging setup and the `event` helper the relay logs through. An event
has a short name ("room closed") and fields (``reason="idle"``); identifying fields (room
number, client address) are passed separately and reach the output only when the operator
turned on ``--log-identifiers``. Without that switch a filter also redacts anything that
looks like an IP address (with its port) from every record, tracebacks included, as a safety
net for messages the relay does not control. Output is one line per record, either text or
one JSON object (``ts``, ``level``, ``logger``, ``event``, fields). websockets' own loggers are
held at WARNING or above because their INFO/DEBUG output describes individual connections.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any, TextIO

REDACTED = "<address>"

_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?(?![\w.])")
# Loose on purpose: at least two colons between hex groups. Redacting an odd timestamp-like
# string in a message is a fine price for never printing an IPv6 peer.
_IPV6 = re.compile(
    r"\[?(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:%\w+)?\]?(?::\d{1,5})?"
)

_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_QUIET_LOGGERS = ("websockets", "asyncio")

# LogRecord attributes carrying an event's fields and its identifying fields.
_FIELDS = "hushdrop_fields"
_IDENTIFIERS = "hushdrop_identifiers"


def redact(text: str) -> str:
    """Replace IPv4/IPv6 addresses (and an attached port) in ``text``."""
    return _IPV6.sub(REDACTED, _IPV4.sub(REDACTED, text))


def event(
    logger: logging.Logger,
    name: str,
    *,
    level: int = logging.INFO,
    room: str | None = None,
    client: str | None = None,
    **fields: str | int | float | bool,
) -> None:
    """Log event ``name`` with ``fields``; ``room`` and ``client`` only if identifiers are on.

    Field values must be aggregate facts (reasons, counts), never user data.
    """
    if not logger.isEnabledFor(level):
        return
    identifiers = {k: v for k, v in (("room", room), ("client", client)) if v is not None}
    logger.log(level, name, extra={_FIELDS: fields, _IDENTIFIERS: identifiers})


class PrivacyFilter(logging.Filter):
    """Drops identifying fields and redacts addresses unless identifiers are wanted."""

    def __init__(self, identifiers: bool = False) -> None:
        super().__init__()
        self.identifiers = identifiers
        self._plain = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not kill logging
            message = str(record.msg)
        record.msg, record.args = message, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._plain.formatException(record.exc_info)
        fields = dict(getattr(record, _FIELDS, None) or {})
        if self.identifiers:
            # Identifiers first: they say what the rest of the line is about.
            fields = {**(getattr(record, _IDENTIFIERS, None) or {}), **fields}
        else:
            record.msg = redact(message)
            fields = {k: redact(v) if isinstance(v, str) else v for k, v in fields.items()}
            if record.exc_text:
                record.exc_text = redact(record.exc_text)
            if record.stack_info:
                record.stack_info = redact(record.stack_info)
        setattr(record, _IDENTIFIERS, {})
        setattr(record, _FIELDS, fields)
        return True


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return getattr(record, _FIELDS, None) or {}


class TextFormatter(logging.Formatter):
    """``<time> <LEVEL> <logger>: <event> key=value …``; values with spaces are quoted."""

    def __init__(self) -> None:
        super().__init__(_TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        for key, value in _fields(record).items():
            shown = json.dumps(value) if isinstance(value, bool) else str(value)
            if not shown or any(c.isspace() or c in '"=' for c in shown):
                shown = json.dumps(shown)
            line += f" {key}={shown}"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC, ISO 8601), level, logger, event, then the fields."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        obj: dict[str, Any] = {
            "ts": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in _fields(record).items():
            obj.setdefault(key, value)  # a field never overwrites the envelope
        if record.exc_text:
            obj["exc"] = record.exc_text
        if record.stack_info:
            obj["stack"] = record.stack_info
        return json.dumps(obj, ensure_ascii=False, default=str)


def configure_logging(
    level: str = "INFO",
    stream: TextIO | None = None,
    *,
    log_format: str = "text",
    identifiers: bool = False,
) -> None:
    """Send all logging (and warnings) to ``stream`` (stderr), one line per record."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(PrivacyFilter(identifiers))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Python warnings would otherwise be written to stderr raw, breaking one-JSON-per-line.
    logging.captureWarnings(True)
    numeric = logging.getLevelName(level)
    for name in _QUIET_LOGGERS:
        # Their INFO/DEBUG lines are per connection (and may carry headers or frames).
        logging.getLogger(name).setLevel(max(logging.WARNING, numeric))
