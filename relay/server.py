"""Process wiring: one websockets server for the WebSocket endpoint and plain HTTP, plus signals.

This module owns the websockets server options that make forwarding memory-bounded, the
startup banner other tools parse, and graceful shutdown on SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import sys
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, cast

from hushdrop_relay.config import RelayConfig
from hushdrop_relay.connection import connection_factory
from hushdrop_relay.http import HttpFrontend, StaticSite
from hushdrop_relay.logs import event
from hushdrop_relay.session import Relay
from websockets.asyncio.server import ServerConnection, serve

if TYPE_CHECKING:
    from hushdrop_relay.cluster import Cluster

log = logging.getLogger("hushdrop_relay.server")

# Receive queue high/low water marks, in frames: websockets stops reading the socket as soon as
# one frame waits for the forwarding loop, and reads again once the loop took it. The kernel
# buffer then fills and TCP flow control reaches the sender. Per forwarding direction the relay
# so holds about three max-size frames: the one waiting here, the one being sent, and the
# unsent rest of it in the write buffer. The kernel's socket buffers keep the pipe full, so a
# single transfer is as fast as with a deeper queue (bench/README.md, "Load").
MAX_QUEUE = (0, 0)
# Transport write buffer high-water mark: send() waits (and so the pump stops receiving) until
# the receiver's socket has taken all but this much.
WRITE_LIMIT = 64 * 1024
# Room for the small frames written without waiting for the buffer to drain: PONGs, the
# keepalive PINGs below, a goodbye message and the close frame.
CONTROL_ALLOWANCE = 256 * 1024
# Keepalive pings keep NAT and proxy mappings warm. No ping timeout: a peer held back by
# backpressure legitimately answers late (its pong queues behind our data, or behind its own
# unread data), and dead pairs are caught by the idle timeout, dead waiting rooms by their ttl.
PING_INTERVAL = 20.0
CLOSE_TIMEOUT = 5.0

ReadyCallback = Callable[[str, int], None]


def max_unread(max_frame: int) -> int:
    """The most relay output a client may leave unread while it keeps sending, in bytes.

    A forwarded message is written whole once the buffer is below WRITE_LIMIT, so a client
    that reads has at most that, one message and a few control frames pending (the allowance
    also covers the message's header); more means it stopped reading. With the default
    --max-frame this is about 1.3 MiB.
    """
    return WRITE_LIMIT + max_frame + CONTROL_ALLOWANCE


def display_url(host: str, port: int, *, tls: bool = False) -> str:
    """The http:// (https:// with ``tls``) URL for a bound host/port, bracketing IPv6 literals."""
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"{'https' if tls else 'http'}://{shown}:{port}"


def tls_context(config: RelayConfig) -> ssl.SSLContext | None:
    """The server TLS context of ``--tls-cert``/``--tls-key``, or None for plain HTTP.

    Raises OSError (missing or unreadable file) or ssl.SSLError (not a matching PEM pair), so a
    bad file stops the relay at start rather than at the first client.
    """
    if not config.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.tls_cert, config.tls_key)
    return context


def websocket_origins(config: RelayConfig) -> list[str | None] | None:
    """websockets' ``origins``: the page origins allowed (--allowed-origins), and None for
    clients that send no Origin (the CLI); None when pages of any origin may connect.

    A browser always sends its page's origin; a refused one gets HTTP 403 before any request.
    """
    allowed = config.origins()
    return None if allowed is None else [None, *allowed]


def _cluster(config: RelayConfig) -> Cluster | None:
    """This node's share of a cluster (--redis), started; None for a single node."""
    if not config.redis:
        return None
    # Only here: a single node neither needs the redis package nor imports it.
    from hushdrop_relay.cluster import Cluster

    cluster = Cluster(config)
    cluster.start()
    return cluster


@contextlib.asynccontextmanager
async def _cluster_closed(cluster: Cluster | None) -> AsyncIterator[None]:
    try:
        yield
    finally:
        if cluster is not None:
            await cluster.aclose()


async def serve_forever(
    config: RelayConfig,
    ready: ReadyCallback | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until ``stop`` is set (or the task is cancelled), then shut down gracefully.

    ``ready(host, port)`` is called once the socket listens, with the real port when the
    config asked for port 0.
    """
    context = tls_context(config)
    cluster = _cluster(config)
    relay = Relay(config, cluster=cluster)
    frontend = HttpFrontend(
        StaticSite(config.site_dir),
        config.csp,
        metrics=relay.render_metrics if config.metrics else None,
        links=cluster.accepts_link if cluster is not None else None,
        info=relay.render_info,
    )
    async with (
        _cluster_closed(cluster),
        serve(
            relay.handle,
            config.host,
            config.port,
            ssl=context,
            origins=websocket_origins(config),
            process_request=frontend.process_request,
            process_response=frontend.process_response,
            server_header=None,
            compression=None,
            max_size=config.max_frame,
            max_queue=MAX_QUEUE,
            write_limit=WRITE_LIMIT,
            ping_interval=PING_INTERVAL,
            ping_timeout=None,
            # RelayConnection bounds the opening handshake itself (see connection.py): a single
            # overall timeout would also cut off slow but steady downloads of the web client.
            open_timeout=None,
            create_connection=cast(
                "type[ServerConnection]",
                connection_factory(
                    config.open_timeout,
                    config.stall_timeout,
                    max_unread(config.max_frame),
                    relay.metrics,
                ),
            ),
            close_timeout=CLOSE_TIMEOUT,
        ) as server,
    ):
        port = server.sockets[0].getsockname()[1]
        if ready is not None:
            ready(config.host, port)
        event(
            log,
            "relay ready",
            metrics=config.metrics,
            log_identifiers=config.log_identifiers,
            cluster=cluster is not None,
        )
        await (stop.wait() if stop is not None else asyncio.Future())
        log.info("relay shutting down")


async def run(config: RelayConfig) -> None:
    """Run the relay as a process: banner on stdout, stop on SIGINT/SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):
            # Not on Windows nor outside the main thread; Ctrl-C still raises there.
            pass

    def announce(host: str, port: int) -> None:
        # Exactly this first line is parsed by the test harness and the CLI; keep it stable.
        where = display_url(host, port, tls=bool(config.tls_cert))
        print(f"Hushdrop relay listening on {where}", flush=True)
        if config.redis:
            print(f"Cluster node, reached by other nodes at {config.advertise}", flush=True)
        if config.site_dir.is_dir():
            print(f"Serving the web client from {config.site_dir}", flush=True)
        else:
            print(
                f"No site at {config.site_dir} (run `make site`); serving the relay only",
                flush=True,
            )

    try:
        await serve_forever(config, announce, stop)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
    log.info("relay stopped")
    sys.stdout.flush()
