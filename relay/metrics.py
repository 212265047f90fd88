"""Relay metrics: in-process counters and their Prometheus text exposition (``GET /metrics``).

This module owns the metric names, their fixed label values and the text format. Labels
only ever take values from the fixed sets below, never a room number or an address, so
scraping the relay reveals aggregate activity and nothing about individual users.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from hushdrop_relay import protocol

PREFIX = "hushdrop_relay_"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# errors_total{kind}: every way a connection or room ends badly, counted once per event (a
# room-wide error such as "idle" counts once, not once per peer).
ERROR_KINDS = (
    "bad-request",  # malformed request, data before pairing, text after pairing
    "request-timeout",  # no create/join within --handshake-timeout (sent as bad-request)
    "open-timeout",  # HTTP request headers not complete within --open-timeout
    "no-such-room",
    "room-full",
    "expired",
    "idle",
    "byte-limit",
    "stall",  # a peer (or HTTP client) left data unread longer than --stall-timeout
    "frame-too-big",  # a message over --max-frame (closed with 1009)
    "replaced",  # a waiting resume slot was taken over by a newer connection of the same side
    "backlog",  # a client kept sending while leaving the relay's output unread (a PING flood)
    "limit",  # any limit below; limit_rejections_total says which
)

# limit_rejections_total{limit}: connections-per-ip, waiting-rooms-per-ip, rooms-per-ip,
# failed-joins-per-ip, max-rooms, room-codes (no free room code found; practically
# unreachable under --max-rooms).
LIMIT_KINDS = tuple(protocol.LIMIT_MESSAGES)


@dataclass
class Metrics:
    """Counters updated by the session code; gauges are sampled when rendering."""

    peers_connected: int = 0
    bytes_relayed: int = 0
    pairs_closed_normally: int = 0
    rooms_created: int = 0
    resumes: int = 0
    links_spliced: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    limit_rejections: Counter[str] = field(default_factory=Counter)

    def error(self, kind: str) -> None:
        assert kind in ERROR_KINDS, kind  # a new kind must be declared (and documented)
        self.errors[kind] += 1

    def limit_rejected(self, limit: str) -> None:
        assert limit in LIMIT_KINDS, limit
        self.limit_rejections[limit] += 1
        self.error("limit")

    def render(self, rooms_waiting: int, rooms_paired: int) -> str:
        """The Prometheus text exposition format, version 0.0.4."""
        out: list[str] = []

        def family(name: str, kind: str, help_: str, samples: list[tuple[str, int]]) -> None:
            out.append(f"# HELP {PREFIX}{name} {help_}")
            out.append(f"# TYPE {PREFIX}{name} {kind}")
            out.extend(f"{PREFIX}{name}{labels} {value}" for labels, value in samples)

        family(
            "rooms_open",
            "gauge",
            "Rooms currently open, by state.",
            [('{state="waiting"}', rooms_waiting), ('{state="paired"}', rooms_paired)],
        )
        family(
            "peers_connected",
            "gauge",
            "WebSocket connections currently open.",
            [("", self.peers_connected)],
        )
        family(
            "bytes_relayed_total",
            "counter",
            "Binary payload bytes forwarded between peers, both directions.",
            [("", self.bytes_relayed)],
        )
        family(
            "pairs_closed_normally_total",
            "counter",
            "Paired rooms that carried data both ways and ended by both peers closing normally: "
            "finished transfers, but also declined, cancelled and wrong-code ones.",
            [("", self.pairs_closed_normally)],
        )
        family(
            "rooms_created_total",
            "counter",
            "Rooms created.",
            [("", self.rooms_created)],
        )
        family(
            "resumes_total",
            "counter",
            "Times two peers of an interrupted transfer were paired again to resume it.",
            [("", self.resumes)],
        )
        family(
            "links_spliced_total",
            "counter",
            "Peers carried to another node of the cluster whose bytes this node then passed "
            "through unchanged, without decoding or re-framing messages.",
            [("", self.links_spliced)],
        )
        family(
            "errors_total",
            "counter",
            "Connections or rooms ended by an error, by kind.",
            [(f'{{kind="{k}"}}', self.errors[k]) for k in ERROR_KINDS],
        )
        family(
            "limit_rejections_total",
            "counter",
            "Requests refused because a limit was reached, by limit.",
            [(f'{{limit="{k}"}}', self.limit_rejections[k]) for k in LIMIT_KINDS],
        )
        return "\n".join(out) + "\n"
