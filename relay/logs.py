"""Privacy-preserving logging for the relay process.

This module owns the logging setup: one stderr handler whose filter redacts anything that
looks like an IP address (with its port) from every record, including tracebacks, and
websockets' own loggers held at WARNING or above because their INFO/DEBUG output
describes individual connections. The relay's own modules log aggregate events only.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import TextIO

REDACTED = "<address>"

_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?(?![\w.])")
# Loose on purpose: at least two colons between hex groups. Redacting an odd timestamp-like
# string in a message is a fine price for never printing an IPv6 peer.
_IPV6 = re.compile(
    r"\[?(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:%\w+)?\]?(?::\d{1,5})?"
)

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_QUIET_LOGGERS = ("websockets", "asyncio")


def redact(text: str) -> str:
    """Replace IPv4/IPv6 addresses (and an attached port) in ``text``."""
    return _IPV6.sub(REDACTED, _IPV4.sub(REDACTED, text))


class RedactingFilter(logging.Filter):
    """Rewrites each record so that no network address reaches the log output."""

    def __init__(self) -> None:
        super().__init__()
        self._plain = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not kill logging
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._plain.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send all logging to ``stream`` (stderr) through the redacting filter."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    numeric = logging.getLevelName(level)
    for name in _QUIET_LOGGERS:
        # Their INFO/DEBUG lines are per connection (and may carry headers or frames).
        logging.getLogger(name).setLevel(max(logging.WARNING, numeric))
