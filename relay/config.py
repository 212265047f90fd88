"""Relay configuration: the `RelayConfig` dataclass and its command-line/environment parsing.

This module owns every tunable of the relay and the rule that a command-line flag wins over
the matching ``HUSHDROP_*`` environment variable, which wins over the built-in default.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

# An installed wheel carries the built site inside the package (setup.py); in a source checkout
# `make site` builds it into build/site.
_PACKAGED_SITE = Path(__file__).resolve().parent / "site"
DEFAULT_SITE_DIR = (
    _PACKAGED_SITE
    if _PACKAGED_SITE.is_dir()
    else Path(__file__).resolve().parent.parent / "build" / "site"
)

# The strictest policy the page works under: only our own origin, no inline script or style.
# 'wasm-unsafe-eval' lets Pyodide compile WebAssembly. 'unsafe-eval' is needed because PyScript
# 0.7 builds its hook functions with Function() at start-up (core.js), even for main-thread
# scripts; Pyodide alone would not need it. worker-src 'blob:': PyScript starts the engine's
# worker from a blob: URL (its own bootstrap code); such a worker keeps the page's policy.
# Link lifetimes offered to senders (10 minutes, an hour, a day, a week), where the relay's
# min and max room ttl allow them; the default ttl is always offered too.
TTL_PRESETS = (600, 3600, 86400, 604800)

DEFAULT_CSP = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval' 'unsafe-eval'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; manifest-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
)

# One encrypted chunk of 1 MiB plus room for framing/AEAD overhead.
DEFAULT_MAX_FRAME = 1024 * 1024 + 4096

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")

# Room codes are drawn at random among one million; capping live rooms at half of that keeps a
# draw's chance of hitting a free code at least 1/2, so 100 draws practically never all fail.
ROOM_CODE_SPACE = 1_000_000
MAX_MAX_ROOMS = ROOM_CODE_SPACE // 2

# A web origin as browsers send it in the Origin header: scheme, host and port, nothing more.
_ORIGIN = re.compile(r"^https?://[^/?#\s@]+$")
# An HTTP field name (RFC 9110 token); anything else could never match a request header.
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")

# A node's advertised base URL: scheme, host and port, nothing after.
_ADVERTISE = re.compile(r"^https?://[^/?#\s]+/?$")
MIN_CLUSTER_SECRET = 32
CLUSTER_SECRET_VAR = "HUSHDROP_CLUSTER_SECRET"

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class ConfigError(ValueError):
    """Raised when a configuration value is out of range or inconsistent."""


@dataclass(frozen=True)
class RelayConfig:
    """Everything the relay needs to run; immutable once built.

    Durations are in seconds, sizes in bytes. For ``room_byte_limit``,
    ``max_connections_per_ip``, ``max_waiting_rooms_per_ip``, ``rooms_per_ip_per_minute`` and
    ``failed_joins_per_ip_per_minute``, 0 means unlimited; an empty
    ``trust_proxy_header`` means client addresses come from the TCP connection.
    """

    host: str = "127.0.0.1"
    port: int = 8780
    site_dir: Path = field(default_factory=lambda: DEFAULT_SITE_DIR)
    # HTTPS/WSS served by the relay itself: both PEM files, or neither (plain HTTP).
    tls_cert: str = ""
    tls_key: str = ""
    # Pages of these origins only may open WebSockets (comma-separated); empty = any origin.
    allowed_origins: str = ""
    room_ttl: int = 3600
    min_room_ttl: int = 30
    max_room_ttl: int = 86400
    idle_timeout: float = 300.0
    room_byte_limit: int = 0
    max_frame: int = DEFAULT_MAX_FRAME
    handshake_timeout: float = 10.0
    open_timeout: float = 10.0
    stall_timeout: float = 60.0
    max_connections_per_ip: int = 32
    max_waiting_rooms_per_ip: int = 32
    rooms_per_ip_per_minute: int = 60
    failed_joins_per_ip_per_minute: int = 30
    resume_timeout: float = 600.0
    max_rooms: int = 10_000
    trust_proxy_header: str = ""
    metrics: bool = True
    csp: str = DEFAULT_CSP
    log_level: str = "INFO"
    log_format: str = "text"
    log_identifiers: bool = False
    # Several nodes (cluster.py): the shared Redis, this node's URL as the other nodes reach it,
    # and the secret all nodes share (environment only, so it stays out of the process list).
    redis: str = field(default="", repr=False)  # may hold a password
    advertise: str = ""
    cluster_secret: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Reject values that would make the relay misbehave rather than fail loudly later."""
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be between 0 and 65535, not {self.port}")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("tls cert and tls key go together: give both files or neither")
        for origin in self.origins() or ():
            if not _ORIGIN.fullmatch(origin):
                raise ConfigError(
                    f"allowed origins must look like https://host or https://host:port, "
                    f"not {origin!r}"
                )
        if self.min_room_ttl < 1:
            raise ConfigError("min room ttl must be at least 1 second")
        if self.max_room_ttl < self.min_room_ttl:
            raise ConfigError("max room ttl must not be below the min room ttl")
        if not 1 <= self.room_ttl <= self.max_room_ttl:
            raise ConfigError("room ttl must be between 1 second and the max room ttl")
        for name in (
            "idle_timeout",
            "handshake_timeout",
            "open_timeout",
            "stall_timeout",
            "resume_timeout",
        ):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name.replace('_', ' ')} must be positive")
        for name in (
            "room_byte_limit",
            "max_connections_per_ip",
            "max_waiting_rooms_per_ip",
            "rooms_per_ip_per_minute",
            "failed_joins_per_ip_per_minute",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name.replace('_', ' ')} must be 0 (unlimited) or positive")
        if not 1 <= self.max_rooms <= MAX_MAX_ROOMS:
            raise ConfigError(f"max rooms must be between 1 and {MAX_MAX_ROOMS}")
        if self.max_frame < 1024:
            raise ConfigError("max frame must be at least 1024 bytes")
        if self.trust_proxy_header and not _HEADER_NAME.fullmatch(self.trust_proxy_header):
            raise ConfigError("trust proxy header must be an HTTP header name")
        if self.log_level not in LOG_LEVELS:
            raise ConfigError(f"log level must be one of {', '.join(LOG_LEVELS)}")
        if self.log_format not in LOG_FORMATS:
            raise ConfigError(f"log format must be one of {', '.join(LOG_FORMATS)}")
        self._validate_cluster()

    def _validate_cluster(self) -> None:
        if not self.redis:
            if self.advertise:
                raise ConfigError("--advertise is for several nodes: give --redis too")
            return
        if not self.redis.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError("redis must be a URL: redis://HOST:PORT/DB (or rediss://, unix://)")
        if not _ADVERTISE.fullmatch(self.advertise):
            raise ConfigError(
                "--redis needs --advertise: this node's http(s)://HOST:PORT as the other nodes "
                "reach it"
            )
        if len(self.cluster_secret) < MIN_CLUSTER_SECRET:
            raise ConfigError(
                f"--redis needs HUSHDROP_CLUSTER_SECRET: the same secret on every node, at least "
                f"{MIN_CLUSTER_SECRET} characters (e.g. from `openssl rand -hex 32`)"
            )

    def origins(self) -> list[str] | None:
        """The origins whose pages may open WebSockets, or None for any origin."""
        entries = [o.strip().rstrip("/") for o in self.allowed_origins.split(",")]
        return [o for o in entries if o] or None

    def ttl_presets(self) -> list[int]:
        """The link lifetimes a client offers its sender: those of `TTL_PRESETS` within the
        relay's range, and the default (PROTOCOL.md §3.2)."""
        presets = {t for t in TTL_PRESETS if self.min_room_ttl <= t <= self.max_room_ttl}
        return sorted(presets | {self.room_ttl})

    def clamp_ttl(self, requested: int | None) -> int:
        """Return the ttl granted for a room whose creator asked for ``requested`` seconds.

        The operator's default is granted as is (it was validated against the max); only
        client-requested values are clamped, so a client can neither pin a code forever
        nor ask for a uselessly short one.
        """
        if requested is None:
            return self.room_ttl
        return max(self.min_room_ttl, min(self.max_room_ttl, requested))

    @classmethod
    def from_args(
        cls,
        argv: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        prog: str | None = None,
    ) -> RelayConfig:
        """Build a config from ``argv`` (flags) and ``env`` (defaults to ``os.environ``).

        Exits through argparse (status 2, message on stderr) on invalid input, which is what
        both ``python -m hushdrop_relay`` and ``hushdrop serve`` want.
        """
        env = os.environ if env is None else env
        parser = build_parser(env, prog)
        values = vars(parser.parse_args(argv))
        values["site_dir"] = Path(values["site_dir"]).expanduser()
        values["cluster_secret"] = env.get(CLUSTER_SECRET_VAR, "")
        try:
            return cls(**values)
        except ConfigError as exc:
            parser.error(str(exc))


@dataclass(frozen=True)
class _Option:
    """One tunable: its flag, environment variable, parser and help text (without default)."""

    flag: str
    var: str
    convert: Callable[[str], Any]
    help: str
    choices: tuple[str, ...] | None = None

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(raw)


_OPTIONS = (
    _Option("--host", "HUSHDROP_HOST", str, "interface to bind"),
    _Option("--port", "HUSHDROP_PORT", int, "TCP port, 0 picks a free one"),
    _Option("--site-dir", "HUSHDROP_SITE_DIR", str, "static site directory"),
    _Option(
        "--tls-cert",
        "HUSHDROP_TLS_CERT",
        str,
        "PEM certificate chain: serve HTTPS and WSS (with --tls-key); empty = plain HTTP",
    ),
    _Option("--tls-key", "HUSHDROP_TLS_KEY", str, "PEM private key of --tls-cert"),
    _Option(
        "--allowed-origins",
        "HUSHDROP_ALLOWED_ORIGINS",
        str,
        "comma-separated origins (https://host[:port]) whose pages may use this relay; clients "
        "that send no Origin (the CLI) are always accepted; empty = pages of any origin",
    ),
    _Option(
        "--room-ttl",
        "HUSHDROP_ROOM_TTL",
        int,
        "seconds a room waits for its receiver when the sender asks for no ttl",
    ),
    _Option("--min-room-ttl", "HUSHDROP_MIN_ROOM_TTL", int, "smallest ttl a sender may request"),
    _Option("--max-room-ttl", "HUSHDROP_MAX_ROOM_TTL", int, "largest ttl a sender may request"),
    _Option(
        "--idle-timeout",
        "HUSHDROP_IDLE_TIMEOUT",
        float,
        "seconds without a forwarded frame before a paired room is closed",
    ),
    _Option(
        "--room-byte-limit",
        "HUSHDROP_ROOM_BYTE_LIMIT",
        int,
        "max payload bytes forwarded per room, both directions; 0 = unlimited",
    ),
    _Option(
        "--max-frame", "HUSHDROP_MAX_FRAME", int, "largest WebSocket message accepted, in bytes"
    ),
    _Option(
        "--handshake-timeout",
        "HUSHDROP_HANDSHAKE_TIMEOUT",
        float,
        "seconds a new WebSocket connection has to send its create/join request",
    ),
    _Option(
        "--open-timeout",
        "HUSHDROP_OPEN_TIMEOUT",
        float,
        "seconds a new TCP connection has to send its complete HTTP request headers",
    ),
    _Option(
        "--stall-timeout",
        "HUSHDROP_STALL_TIMEOUT",
        float,
        "seconds a peer (or HTTP client) may leave data unread before it is dropped",
    ),
    _Option(
        "--max-connections-per-ip",
        "HUSHDROP_MAX_CONNECTIONS_PER_IP",
        int,
        "concurrent WebSocket connections per client address, except creators of rooms "
        "(counted by --max-waiting-rooms-per-ip while they wait) and peers whose room or resume "
        "slot was joined; 0 = unlimited",
    ),
    _Option(
        "--max-waiting-rooms-per-ip",
        "HUSHDROP_MAX_WAITING_ROOMS_PER_IP",
        int,
        "rooms per client address waiting for their receiver at once; 0 = unlimited",
    ),
    _Option(
        "--rooms-per-ip-per-minute",
        "HUSHDROP_ROOMS_PER_IP_PER_MINUTE",
        int,
        "rooms a client address may create per minute (bursts up to the same number); "
        "0 = unlimited",
    ),
    _Option(
        "--failed-joins-per-ip-per-minute",
        "HUSHDROP_FAILED_JOINS_PER_IP_PER_MINUTE",
        int,
        "joins of unknown or taken rooms a client address may make per minute before its "
        "joins are refused for a while (slows room-number scanning); 0 = unlimited",
    ),
    _Option(
        "--resume-timeout",
        "HUSHDROP_RESUME_TIMEOUT",
        float,
        "seconds a reconnecting peer waits in its resume slot for the other side",
    ),
    _Option("--max-rooms", "HUSHDROP_MAX_ROOMS", int, "live rooms (waiting or paired) at most"),
    _Option(
        "--trust-proxy-header",
        "HUSHDROP_TRUST_PROXY_HEADER",
        str,
        "take the client address from the last entry of this request header (e.g. "
        "X-Forwarded-For) set by your reverse proxy; empty = the TCP peer address",
    ),
    _Option(
        "--redis",
        "HUSHDROP_REDIS",
        str,
        "redis://HOST:PORT/DB shared by several relay nodes (needs --advertise and "
        f"{CLUSTER_SECRET_VAR}); empty = a single node",
    ),
    _Option(
        "--advertise",
        "HUSHDROP_ADVERTISE",
        str,
        "this node's base URL as the other nodes reach it, http(s)://HOST:PORT (with --redis)",
    ),
    _Option("--metrics", "HUSHDROP_METRICS", _bool, "serve Prometheus metrics at /metrics"),
    _Option("--csp", "HUSHDROP_CSP", str, "Content-Security-Policy header value"),
    _Option("--log-level", "HUSHDROP_LOG_LEVEL", str.upper, "log verbosity", LOG_LEVELS),
    _Option("--log-format", "HUSHDROP_LOG_FORMAT", str.lower, "log line format", LOG_FORMATS),
    _Option(
        "--log-identifiers",
        "HUSHDROP_LOG_IDENTIFIERS",
        _bool,
        "add room numbers and client addresses to log lines (debugging only)",
    ),
)


def build_parser(env: Mapping[str, str], prog: str | None = None) -> argparse.ArgumentParser:
    """Return the argument parser; defaults come from ``env`` so that flags win over it."""
    defaults = RelayConfig()
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Hushdrop relay: pairs two peers by a 6-digit code and forwards "
        "their end-to-end encrypted frames; also serves the web client.",
    )

    def fail(message: str) -> NoReturn:
        parser.error(message)

    for option in _OPTIONS:
        fallback = getattr(defaults, option.dest)
        if isinstance(fallback, Path):
            fallback = str(fallback)
        raw = env.get(option.var)
        default = fallback
        if raw:
            try:
                default = option.convert(raw)
            except ValueError:
                fail(f"invalid value for {option.var}: {raw!r}")
            if option.choices is not None and default not in option.choices:
                fail(f"invalid value for {option.var}: {raw!r}")
        help_ = f"{option.help} (env {option.var}; default %(default)s)"
        if option.convert is _bool:
            # --metrics/--no-metrics; the environment takes 1/0, true/false, yes/no, on/off.
            action: Any = argparse.BooleanOptionalAction
            parser.add_argument(option.flag, action=action, default=default, help=help_)
        else:
            parser.add_argument(
                option.flag,
                type=option.convert,
                choices=option.choices,
                default=default,
                help=help_,
            )
    return parser
