"""The home view's link options (PROTOCOL.md §3.1, §3.2): how long the link stays valid, among
the lifetimes the relay allows (`GET /v1/info`), and how many receivers may use it. Pyodide only.
"""

from __future__ import annotations

from pyodide.http import pyfetch

from ..protocol.constants import MAX_RECEIVERS
from ..transport.rendezvous import parse_info
from . import ui
from .humanize import expiry_label

INFO_PATH = "/v1/info"
_HTTP = {"ws": "http", "wss": "https"}


def info_url(relay: str) -> str:
    """`GET /v1/info` of the relay at `relay` (an http(s) or ws(s) base URL)."""
    scheme, sep, rest = relay.partition("://")
    return f"{_HTTP.get(scheme, scheme)}{sep}{rest.rstrip('/')}{INFO_PATH}"


async def offer(relay: str) -> None:
    """Offer the lifetimes the relay allows, its default chosen; and at most its receivers.

    Without an answer (an older or unreachable relay) the page keeps asking for the relay's
    default lifetime: it never offers one the relay would not grant.
    """
    try:
        response = await pyfetch(info_url(relay), cache="no-cache")
        info = parse_info(await response.json()) if response.ok else None
    except Exception:  # the relay's default is the safe choice
        info = None
    if info is None:
        return
    lifetimes = [
        [seconds, ui.message_json(expiry_label(seconds))]
        for seconds in sorted({*info.presets, info.default})
    ]
    ui.post("link-options", lifetimes=lifetimes, default=info.default, receivers=info.receivers)


def chosen(expiry: str, receivers: str) -> tuple[int | None, int]:
    """The lifetime (None: the relay's default) and receivers the sender chose (the home
    screen's fields' values)."""
    ttl = int(expiry) if expiry.isdigit() else None
    count = int(receivers) if receivers.isdigit() else 1
    return ttl, min(max(count, 1), MAX_RECEIVERS)
