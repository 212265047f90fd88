"""Command-line entry point of the relay, shared by ``python -m hushdrop_relay`` and
``hushdrop serve``.

This module owns turning argv into a running relay and an exit status.
"""

from __future__ import annotations

import asyncio
import ssl
import sys

from hushdrop.cli.allocator import tune_allocator
from hushdrop_relay.config import RelayConfig
from hushdrop_relay.logs import configure_logging
from hushdrop_relay.server import display_url, run


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Run the relay with flags ``argv`` (default: ``sys.argv[1:]``); return the exit status.

    Returns 0 after a graceful shutdown (SIGINT/SIGTERM) and 1 when the address cannot be
    bound or the TLS certificate and key cannot be used; invalid flags exit with status 2 via
    argparse.
    """
    # Forwarding 1 MiB frames churns large buffers: see the module for numbers. The heap this
    # keeps after load is released by forward.HeapRelease.
    tune_allocator()
    config = RelayConfig.from_args(argv, prog=prog)
    configure_logging(
        config.log_level, log_format=config.log_format, identifiers=config.log_identifiers
    )
    for path in (config.tls_cert, config.tls_key) if config.tls_cert else ():
        try:
            open(path, "rb").close()  # ssl names no file in its errors: check each first
        except OSError as exc:
            print(f"Hushdrop relay cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
            return 1
    try:
        asyncio.run(run(config))
    except KeyboardInterrupt:
        return 0
    except ssl.SSLError as exc:
        print(
            f"Hushdrop relay cannot use the certificate {config.tls_cert} with the key "
            f"{config.tls_key}: {exc.reason or exc}",
            file=sys.stderr,
        )
        return 1
    except OSError as exc:
        where = display_url(config.host, config.port, tls=bool(config.tls_cert))
        print(f"Hushdrop relay cannot listen on {where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0
