"""The Hushdrop relay: pairs two peers in a room and forwards their opaque frames.

Also serves the web client's static files and a health check from the same port.
Entry point for embedding (``hushdrop serve``): `main`.
"""

from __future__ import annotations


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Run the relay with flags ``argv``; see `hushdrop_relay.cli.main`."""
    # Imported lazily so that importing the package stays cheap for callers that only
    # need the configuration or protocol constants.
    from hushdrop_relay.cli import main as _main

    return _main(argv, prog)


__all__ = ["main"]
