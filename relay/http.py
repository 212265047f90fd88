"""Plain-HTTP side of the relay: health check, static site, and the headers on every response.

This module owns what the relay answers to requests that are not the WebSocket endpoint:
``/healthz``, ``/metrics`` (when enabled), safe static file serving from the site directory
(no traversal, no dotfiles, GET/HEAD only, ETag revalidation), the share target's POST, and the
security and caching headers added to every HTTP response the process sends.
"""

from __future__ import annotations

import asyncio
import email.utils
import mimetypes
import os
import re
import stat
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from urllib.parse import unquote

from hushdrop_relay.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

WS_PATH = "/v1/ws"
HEALTH_PATH = "/healthz"
# Node-to-node links of a relay cluster (cluster.py); a WebSocket endpoint only with --redis.
LINK_PATH = "/v1/node"
# The header by which a node proves, before the upgrade, that it is one (cluster.py).
LINK_HEADER = "X-Hushdrop-Node"
METRICS_PATH = "/metrics"
# What a client may ask of this relay: link lifetimes and receivers (PROTOCOL.md §3.2).
INFO_PATH = "/v1/info"
# The installed app's share target (web/manifest.webmanifest share_target.action, on the site's
# root): the page's service worker takes the shared files in the browser. A POST that reaches
# the relay (no service worker: site data cleared, or an engine without one) is sent on to the
# page rather than met with an error; its files are dropped (the page's visit installs the
# worker, so sharing again works).
SHARE_PATH = "/share"

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"

# Fixed types for what the web client ships; the platform's mimetypes table varies between
# systems (e.g. .js as application/javascript or .wasm unknown) and is only a fallback.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".wasm": "application/wasm",
    ".py": "text/x-python; charset=utf-8",
    ".whl": "application/zip",
    ".zip": "application/zip",
    ".tar": "application/x-tar",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}

# A path segment carrying a content hash (e.g. app.3f9c2b1d.js or chunk-9a8b7c6d5e/) names
# bytes that never change, so it may be cached forever. A hash has a digit in it; this keeps
# words like "facade" or "deadbeef" from qualifying by accident.
_HASH_SEGMENT = re.compile(r"(?:^|[.\-_])(?=[0-9a-f]*[0-9])[0-9a-f]{8,}(?:[.\-_]|$)")


def security_headers(csp: str) -> list[tuple[str, str]]:
    """The headers every HTTP response carries."""
    return [
        ("Content-Security-Policy", csp),
        ("Referrer-Policy", "no-referrer"),
        ("X-Content-Type-Options", "nosniff"),
    ]


def content_type(path: Path) -> str:
    """The Content-Type for a file, by extension."""
    suffix = path.suffix.lower()
    if suffix in CONTENT_TYPES:
        return CONTENT_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(path.name, strict=False)
    return guessed or "application/octet-stream"


def cache_control(relative: str) -> str:
    """Cache policy for a site-relative path: vendored or hash-named files are immutable."""
    segments = relative.split("/")
    if "vendor" in segments[:-1] or any(_HASH_SEGMENT.search(s) for s in segments):
        return IMMUTABLE
    return REVALIDATE


def make_response(
    status: HTTPStatus,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    *,
    content_length: int | None = None,
) -> Response:
    """Build a response; ``content_length`` overrides len(body) (for HEAD), -1 omits it."""
    all_headers = Headers(headers or [])
    all_headers["Date"] = email.utils.formatdate(usegmt=True)
    # websockets closes the TCP connection after any non-101 response.
    all_headers["Connection"] = "close"
    length = len(body) if content_length is None else content_length
    if length >= 0:
        all_headers["Content-Length"] = str(length)
    return Response(status.value, status.phrase, all_headers, body)


def text_response(status: HTTPStatus, text: str, *, head: bool = False) -> Response:
    body = text.encode()
    return make_response(
        status,
        [("Content-Type", "text/plain; charset=utf-8")],
        b"" if head else body,
        content_length=len(body),
    )


def _etag(st: os.stat_result) -> str:
    # mtime+size is cheap and good enough for a site that changes by redeploying files.
    return f'"{st.st_mtime_ns:x}-{st.st_size:x}"'


def _etag_matches(header: str | None, etag: str) -> bool:
    if header is None:
        return False
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


def _read_file(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read()


class StaticSite:
    """Serves files under ``root``; anything that does not resolve strictly inside is a 404."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def resolve(self, target: str) -> tuple[Path, str] | None:
        """Map a request target to (file path, site-relative path), or None if not servable."""
        # Split by hand: urlsplit would read "//host/x" as a network location.
        path = target.split("?", 1)[0].split("#", 1)[0]
        if not path.startswith("/"):
            return None
        try:
            decoded = unquote(path, errors="strict")
        except UnicodeDecodeError:
            return None
        if "\x00" in decoded or "\\" in decoded:
            return None
        segments = [s for s in decoded.split("/") if s]
        # Rejecting every dot-segment covers "..", "." and hidden files such as .git or .env;
        # bytecode caches next to the Python sources are build litter, not site content.
        if any(s.startswith(".") or s == "__pycache__" for s in segments):
            return None
        if decoded.endswith("/"):
            segments.append("index.html")
        candidate = self.root.joinpath(*segments).resolve()
        # Symlinks and anything else that escapes the root are refused after resolution.
        if not candidate.is_relative_to(self.root) or candidate == self.root:
            return None
        return candidate, "/".join(segments)

    async def respond(self, request: Request) -> Response:
        head = request.method == "HEAD"
        resolved = self.resolve(request.path)
        if resolved is None:
            return text_response(HTTPStatus.NOT_FOUND, "Not found\n", head=head)
        path, relative = resolved
        try:
            st = path.stat()
        except OSError:
            return text_response(HTTPStatus.NOT_FOUND, "Not found\n", head=head)
        if not stat.S_ISREG(st.st_mode):
            return text_response(HTTPStatus.NOT_FOUND, "Not found\n", head=head)

        etag = _etag(st)
        headers = [
            ("Content-Type", content_type(path)),
            ("Cache-Control", cache_control(relative)),
            ("ETag", etag),
            ("Last-Modified", email.utils.formatdate(st.st_mtime, usegmt=True)),
        ]
        if _etag_matches(request.headers.get("If-None-Match"), etag):
            return make_response(HTTPStatus.NOT_MODIFIED, headers, content_length=-1)
        if head:
            return make_response(HTTPStatus.OK, headers, content_length=st.st_size)
        try:
            # Site files are at most a few MiB; reading in a thread keeps the loop responsive.
            body = await asyncio.to_thread(_read_file, path)
        except OSError:
            return text_response(HTTPStatus.NOT_FOUND, "Not found\n")
        return make_response(HTTPStatus.OK, headers, body)


class HttpFrontend:
    """The ``process_request``/``process_response`` hooks given to websockets' server.

    ``metrics``, when given, renders the Prometheus text served at ``/metrics``; without it
    that path is just another (normally missing) site file. ``links`` opens the node-to-node
    WebSocket endpoint of a relay cluster at ``LINK_PATH``, to requests whose `LINK_HEADER` it
    accepts; anything else there is refused before it becomes a WebSocket.
    """

    def __init__(
        self,
        site: StaticSite,
        csp: str,
        metrics: Callable[[], str] | None = None,
        links: Callable[[str | None], bool] | None = None,
        info: Callable[[], str] | None = None,
    ) -> None:
        self.site = site
        self.info = info
        self.links = links
        self.headers = security_headers(csp)
        self.metrics = metrics

    async def process_request(self, connection: object, request: Request) -> Response | None:
        """Answer plain HTTP requests; return None to let the WebSocket handshake proceed."""
        path = request.path.split("?", 1)[0]
        if path == LINK_PATH and self.links is not None:
            if not self.links(request.headers.get(LINK_HEADER)):
                return text_response(HTTPStatus.FORBIDDEN, "Forbidden\n")
            return None
        if path == WS_PATH:
            # websockets itself answers non-upgrade requests here with 426 / 405.
            return None
        if request.method == "POST" and path == SHARE_PATH:
            return make_response(
                HTTPStatus.SEE_OTHER, [("Location", "/"), ("Cache-Control", "no-store")]
            )
        if request.method not in ("GET", "HEAD"):
            response = text_response(HTTPStatus.METHOD_NOT_ALLOWED, "Method not allowed\n")
            response.headers["Allow"] = "GET, HEAD"
            return response
        if path == HEALTH_PATH:
            return text_response(HTTPStatus.OK, "ok", head=request.method == "HEAD")
        if path == INFO_PATH and self.info is not None:
            body = self.info().encode()
            headers = [
                ("Content-Type", "application/json"),
                ("Cache-Control", "no-cache"),
                # Public facts about the relay, for a page served from another origin too.
                ("Access-Control-Allow-Origin", "*"),
            ]
            return make_response(
                HTTPStatus.OK,
                headers,
                b"" if request.method == "HEAD" else body,
                content_length=len(body),
            )
        if path == METRICS_PATH and self.metrics is not None:
            body = self.metrics().encode()
            return make_response(
                HTTPStatus.OK,
                [("Content-Type", METRICS_CONTENT_TYPE), ("Cache-Control", "no-store")],
                b"" if request.method == "HEAD" else body,
                content_length=len(body),
            )
        return await self.site.respond(request)

    def process_response(
        self, connection: object, request: Request, response: Response
    ) -> Response | None:
        """Add the security headers (and a default cache policy) to every response."""
        for name, value in self.headers:
            # Headers.__setitem__ appends, so replace rather than duplicate.
            if name in response.headers:
                del response.headers[name]
            response.headers[name] = value
        if "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = REVALIDATE
        return None
