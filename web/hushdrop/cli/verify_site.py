"""`hushdrop verify-site URL`: is the site deployed at URL, file by file, the one built here?

The page is code sent by whoever serves it (README, "Who you trust when you use the web page").
This command fetches every file a build's `site-manifest.json` lists (hushdrop/site_manifest.py)
from the deployed site, and the site's root page too (what a browser opens), and compares their
SHA-256 with the manifest. Files the deployed site's own manifest lists that the local one does
not are differences as well. Exit status 0 only when everything matches.
"""

from __future__ import annotations

import hashlib
import json
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from urllib.parse import quote, urlsplit

from ..protocol.errors import HushdropError
from ..site_manifest import MANIFEST_NAME, ManifestError, load, shown

FETCH_TIMEOUT = 60.0
PARALLEL_FETCHES = 4
ROOT_ENTRY = "(the site's address itself)"


class SiteUnreachable(HushdropError):
    """The deployed site could not be fetched at all."""

    kind = "relay"


@dataclass(frozen=True)
class FileCheck:
    """One file's verdict: `ok`, `different`, `missing` (not served) or `extra`."""

    path: str
    verdict: str
    detail: str = ""


def _fetch_sha256(url: str) -> tuple[int, str]:
    """(HTTP status, SHA-256 hex of the body) of a GET, bypassing caches; status 0 if no reply."""
    request = urllib.request.Request(
        url, headers={"Cache-Control": "no-cache", "Accept-Encoding": "identity"}
    )
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT) as reply:
            while block := reply.read(1 << 20):
                digest.update(block)
            return reply.status, digest.hexdigest()
    except urllib.error.HTTPError as error:
        return error.code, ""
    except (urllib.error.URLError, OSError) as error:
        raise SiteUnreachable(f"Cannot fetch {url}: {getattr(error, 'reason', error)}") from error


def _fetch_json(url: str) -> object | None:
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT) as reply:
            return json.loads(reply.read(16 << 20))
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _check(base: str, path: str, expected: str) -> FileCheck:
    url = base if path == ROOT_ENTRY else base + quote(path)
    status, got = _fetch_sha256(url)
    if status != 200:
        return FileCheck(path, "missing", f"HTTP {status}")
    if got != expected:
        return FileCheck(path, "different", f"expected sha256 {expected}, got {got}")
    return FileCheck(path, "ok")


def verify(url: str, manifest: dict) -> list[FileCheck]:
    """Check the site at `url` against `manifest`; one FileCheck per file, in manifest order."""
    base = url if url.endswith("/") else url + "/"
    files: dict[str, str] = manifest["files"]
    wanted = [(path, files[path]) for path in sorted(files)]
    if "index.html" in files:
        wanted.insert(0, (ROOT_ENTRY, files["index.html"]))
    with ThreadPoolExecutor(PARALLEL_FETCHES) as pool:
        checks = list(pool.map(lambda item: _check(base, *item), wanted))
    deployed = _fetch_json(base + MANIFEST_NAME)
    if isinstance(deployed, dict) and isinstance(deployed.get("files"), dict):
        for path in sorted(set(deployed["files"]) - set(files)):
            checks.append(FileCheck(str(path), "extra", "in the deployed site's manifest only"))
    return checks


def report(url: str, source: Path, manifest: dict, checks: list[FileCheck], out: TextIO) -> bool:
    """Print one line per file and a verdict; True when everything matched."""
    print(f"Checking {url} against {source}", file=out)
    print(f"expected fingerprint {shown(manifest['fingerprint'])}", file=out)
    for check in checks:
        detail = f"  ({check.detail})" if check.detail else ""
        print(f"  {check.verdict.upper():<9} {check.path}{detail}", file=out)
    bad = [c for c in checks if c.verdict != "ok"]
    if not bad:
        print(f"All {len(checks)} files match: this is the site you built.", file=out)
        return True
    print(
        f"{len(bad)} of {len(checks)} files differ from your build: do not trust this site's "
        "page with your files (the command line is unaffected).",
        file=out,
    )
    return False


def run(url: str, manifest_path: Path, out: TextIO = sys.stdout) -> bool:
    """The whole command; raises HushdropError on a bad address or manifest."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HushdropError(f"{url!r} is not a site address: use https://host/path/.")
    try:
        manifest = load(manifest_path)
    except ManifestError as exc:
        raise HushdropError(
            f"{exc} Build the site (`make site`) or pass the build's manifest with --manifest."
        ) from exc
    return report(url, manifest_path, manifest, verify(url, manifest), out)
