"""The manifest of a built site: every file's SHA-256, and one fingerprint of the whole site.

Whoever serves the page can change what it does, so the build writes `site-manifest.json`:

    {"format": "hushdrop-site-manifest-1", "fingerprint": "<64 hex>",
     "files": {"index.html": "<sha256 hex>", ...}}

`files` lists every file of the site as served (the manifest itself excepted), by its path
relative to the site's root, with "/" between folders. The fingerprint is the SHA-256 of

    "hushdrop-site-1\\n" + "".join(f"{sha256}  {path}\\n" for each file, sorted by path)

computed with the pages that show the fingerprint holding FINGERPRINT_PLACEHOLDER instead (they
cannot contain their own hash); the build then writes the fingerprint into them. So two builds
from the same sources and settings (the relay address too) have the same fingerprint, the page
shows it in its footer, and `hushdrop verify-site` checks a deployed site file by file. Pure
Python, shared by web/build_site.py and the CLI.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

MANIFEST_NAME = "site-manifest.json"
FORMAT = "hushdrop-site-manifest-1"
FINGERPRINT_PLACEHOLDER = "SITE-FINGERPRINT-PLACEHOLDER"
_FINGERPRINT_DOMAIN = b"hushdrop-site-1\n"
# What the footer shows: 128 bits in groups of four, enough to compare by eye.
SHOWN_HEX_DIGITS = 32


class ManifestError(ValueError):
    """A manifest file that is not one the build writes."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fingerprint(hashes: Mapping[str, str]) -> str:
    """The site's fingerprint from {path: sha256 hex} (pages in their placeholder form)."""
    lines = "".join(f"{hashes[path]}  {path}\n" for path in sorted(hashes))
    return hashlib.sha256(_FINGERPRINT_DOMAIN + lines.encode()).hexdigest()


def shown(fingerprint_hex: str) -> str:
    """The fingerprint as the page shows it: `3f9c 2b1d …` (the first 128 bits)."""
    digits = fingerprint_hex[:SHOWN_HEX_DIGITS]
    return " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))


def site_files(root: Path) -> list[str]:
    """Every file under `root` as a site path, sorted, the manifest itself left out."""
    paths = (p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    return sorted(path for path in paths if path != MANIFEST_NAME)


def seal(root: Path) -> dict:
    """Write the fingerprint into the pages that hold the placeholder, then the manifest.

    Returns the manifest written to `root / MANIFEST_NAME`.
    """
    placeholder = FINGERPRINT_PLACEHOLDER.encode()
    contents = {path: (root / path).read_bytes() for path in site_files(root)}
    pages = [path for path, data in contents.items() if placeholder in data]
    site_fingerprint = fingerprint({path: sha256_hex(data) for path, data in contents.items()})
    for path in pages:
        contents[path] = contents[path].replace(placeholder, shown(site_fingerprint).encode())
        (root / path).write_bytes(contents[path])
    manifest = {
        "format": FORMAT,
        "fingerprint": site_fingerprint,
        "files": {path: sha256_hex(data) for path, data in contents.items()},
    }
    (root / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def load(path: Path) -> dict:
    """Read and check a manifest written by `seal`."""
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ManifestError(f"{path} cannot be read as a site manifest: {exc}") from exc
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if (
        manifest.get("format") != FORMAT
        or not isinstance(files, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items())
    ):
        raise ManifestError(f"{path} is not a Hushdrop site manifest ({FORMAT}).")
    return manifest
