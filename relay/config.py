"""Relay configuration: the `RelayConfig` dataclass and its command-line/environment parsing.

This module owns every tunable of the relay and the rule that a command-line flag wins over
the matching ``HUSHDROP_*`` environment variable, which wins over the built-in default.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

# `make site` builds the browser client here in a source checkout; a packaged deployment points
# --site-dir at its own copy of the built site.
DEFAULT_SITE_DIR = Path(__file__).resolve().parent.parent / "build" / "site"

# The strictest policy the page works under: only our own origin, no inline script or style.
# 'wasm-unsafe-eval' lets Pyodide compile WebAssembly. 'unsafe-eval' is needed because PyScript
# 0.7 builds its hook functions with Function() at start-up (core.js), even for main-thread
# scripts; Pyodide alone would not need it.
DEFAULT_CSP = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval' 'unsafe-eval'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; worker-src 'self'; manifest-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
)

# One encrypted chunk of 1 MiB plus room for framing/AEAD overhead.
DEFAULT_MAX_FRAME = 1024 * 1024 + 4096

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

T = TypeVar("T")


class ConfigError(ValueError):
    """Raised when a configuration value is out of range or inconsistent."""


@dataclass(frozen=True)
class RelayConfig:
    """Everything the relay needs to run; immutable once built.

    Durations are in seconds, sizes in bytes. ``room_byte_limit == 0`` means unlimited.
    """

    host: str = "127.0.0.1"
    port: int = 8780
    site_dir: Path = field(default_factory=lambda: DEFAULT_SITE_DIR)
    room_ttl: int = 3600
    min_room_ttl: int = 30
    max_room_ttl: int = 86400
    idle_timeout: float = 300.0
    room_byte_limit: int = 0
    max_frame: int = DEFAULT_MAX_FRAME
    handshake_timeout: float = 10.0
    csp: str = DEFAULT_CSP
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Reject values that would make the relay misbehave rather than fail loudly later."""
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be between 0 and 65535, not {self.port}")
        if self.min_room_ttl < 1:
            raise ConfigError("min room ttl must be at least 1 second")
        if self.max_room_ttl < self.min_room_ttl:
            raise ConfigError("max room ttl must not be below the min room ttl")
        if not 1 <= self.room_ttl <= self.max_room_ttl:
            raise ConfigError("room ttl must be between 1 second and the max room ttl")
        if self.idle_timeout <= 0:
            raise ConfigError("idle timeout must be positive")
        if self.handshake_timeout <= 0:
            raise ConfigError("handshake timeout must be positive")
        if self.room_byte_limit < 0:
            raise ConfigError("room byte limit must be 0 (unlimited) or positive")
        if self.max_frame < 1024:
            raise ConfigError("max frame must be at least 1024 bytes")
        if self.log_level not in LOG_LEVELS:
            raise ConfigError(f"log level must be one of {', '.join(LOG_LEVELS)}")

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
        parser = build_parser(os.environ if env is None else env, prog)
        args = parser.parse_args(argv)
        try:
            return cls(
                host=args.host,
                port=args.port,
                site_dir=Path(args.site_dir).expanduser(),
                room_ttl=args.room_ttl,
                min_room_ttl=args.min_room_ttl,
                max_room_ttl=args.max_room_ttl,
                idle_timeout=args.idle_timeout,
                room_byte_limit=args.room_byte_limit,
                max_frame=args.max_frame,
                handshake_timeout=args.handshake_timeout,
                csp=args.csp,
                log_level=args.log_level.upper(),
            )
        except ConfigError as exc:
            parser.error(str(exc))


def build_parser(env: Mapping[str, str], prog: str | None = None) -> argparse.ArgumentParser:
    """Return the argument parser; defaults come from ``env`` so that flags win over it."""
    defaults = RelayConfig.__dataclass_fields__
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Hushdrop relay: pairs two peers by a 6-digit code and forwards "
        "their end-to-end encrypted frames; also serves the web client.",
    )

    def env_default(name: str, convert: Callable[[str], T], fallback: T) -> T:
        raw = env.get(name)
        if raw is None or raw == "":
            return fallback
        try:
            return convert(raw)
        except ValueError:
            parser.error(f"invalid value for {name}: {raw!r}")

    def add(flag: str, var: str, convert: Callable[[str], T], fallback: T, help_: str) -> None:
        parser.add_argument(
            flag,
            type=convert,
            default=env_default(var, convert, fallback),
            help=f"{help_} (env {var}; default %(default)s)",
        )

    add("--host", "HUSHDROP_HOST", str, defaults["host"].default, "interface to bind")
    add("--port", "HUSHDROP_PORT", int, defaults["port"].default, "TCP port, 0 picks a free one")
    add("--site-dir", "HUSHDROP_SITE_DIR", str, str(DEFAULT_SITE_DIR), "static site directory")
    add(
        "--room-ttl",
        "HUSHDROP_ROOM_TTL",
        int,
        defaults["room_ttl"].default,
        "seconds a room waits for its receiver when the sender asks for no ttl",
    )
    add(
        "--min-room-ttl",
        "HUSHDROP_MIN_ROOM_TTL",
        int,
        defaults["min_room_ttl"].default,
        "smallest ttl a sender may request",
    )
    add(
        "--max-room-ttl",
        "HUSHDROP_MAX_ROOM_TTL",
        int,
        defaults["max_room_ttl"].default,
        "largest ttl a sender may request",
    )
    add(
        "--idle-timeout",
        "HUSHDROP_IDLE_TIMEOUT",
        float,
        defaults["idle_timeout"].default,
        "seconds without a forwarded frame before a paired room is closed",
    )
    add(
        "--room-byte-limit",
        "HUSHDROP_ROOM_BYTE_LIMIT",
        int,
        defaults["room_byte_limit"].default,
        "max payload bytes forwarded per room, both directions; 0 = unlimited",
    )
    add(
        "--max-frame",
        "HUSHDROP_MAX_FRAME",
        int,
        defaults["max_frame"].default,
        "largest WebSocket message accepted, in bytes",
    )
    add(
        "--handshake-timeout",
        "HUSHDROP_HANDSHAKE_TIMEOUT",
        float,
        defaults["handshake_timeout"].default,
        "seconds a new connection has to send its create/join request",
    )
    add("--csp", "HUSHDROP_CSP", str, DEFAULT_CSP, "Content-Security-Policy header value")
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        default=env.get("HUSHDROP_LOG_LEVEL", "INFO").upper(),
        help="log verbosity (env HUSHDROP_LOG_LEVEL; default %(default)s)",
    )
    return parser
