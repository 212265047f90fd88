"""Build the static site: `python web/build_site.py [--out build/site] [--relay URL]`.

The output folder is plain files any static host can serve:

* our HTML/CSS/JS from `web/`;
* Pyodide and PyScript copied from `node_modules` (pinned in package-lock.json) under versioned
  paths (`vendor/pyodide/<version>/`), so they can be cached forever;
* the Python that runs in the page — the shared `hushdrop` core (without the CPython-only CLI,
  asyncio transport and pyca backend), the page driver and segno for QR codes — as one zip whose
  name carries its content hash, unpacked by PyScript at start;
* `pyscript.json` pointing PyScript at those local files, and `config.json` with the relay
  address (empty means: the page's own origin);
* the known-answer test vectors for `selftest.html`.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import sys
import zipfile
from pathlib import Path

WEB = Path(__file__).resolve().parent
ROOT = WEB.parent
NODE_MODULES = ROOT / "node_modules"

STATIC_FILES = [
    "index.html",
    "selftest.html",
    "app.css",
    "app.js",
    "crypto-batch.js",
    "sw.js",
    "page.py",
    "selftest.py",
    "favicon.svg",
]
# What the page needs from the shared package; everything else in web/hushdrop is CPython-only.
PAGE_PACKAGES = ["hushdrop/protocol", "hushdrop/crypto", "hushdrop/page"]
PAGE_MODULES = [
    "hushdrop/__init__.py",
    "hushdrop/transport/__init__.py",
    "hushdrop/transport/browser.py",
    "hushdrop/transport/rendezvous.py",  # browser.py's relay messages (pure Python)
    "hushdrop/transport/pump.py",  # the driver loop shared with the CLI (pure asyncio)
]
CPYTHON_ONLY = {"hushdrop/crypto/pyca.py"}
PYODIDE_FILES = [
    "pyodide.mjs",
    "pyodide.asm.mjs",
    "pyodide.asm.wasm",
    "python_stdlib.zip",
    "pyodide-lock.json",
]


def package_version(name: str) -> str:
    return json.loads((NODE_MODULES / name / "package.json").read_text())["version"]


def python_sources() -> list[tuple[str, bytes]]:
    """(archive name, content) of every Python file the page runs, in a stable order."""
    files: list[tuple[str, bytes]] = []
    for package in PAGE_PACKAGES:
        for path in sorted((WEB / package).rglob("*.py")):
            name = path.relative_to(WEB).as_posix()
            if name not in CPYTHON_ONLY:
                files.append((name, path.read_bytes()))
    files += [(name, (WEB / name).read_bytes()) for name in PAGE_MODULES]
    import segno  # pure Python; shipped to the page for QR codes

    segno_root = Path(segno.__file__).parent
    for path in sorted(segno_root.rglob("*.py")):
        files.append(((Path("segno") / path.relative_to(segno_root)).as_posix(), path.read_bytes()))
    return sorted(files)


def python_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in python_sources():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))  # reproducible
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return buffer.getvalue()


def build(out: Path, relay: str = "") -> Path:
    if not NODE_MODULES.is_dir():
        sys.exit("node_modules is missing: run `npm ci` (or `make setup`) first.")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)

    for name in STATIC_FILES:
        shutil.copy2(WEB / name, out / name)

    pyodide = f"vendor/pyodide/{package_version('pyodide')}"
    (out / pyodide).mkdir(parents=True)
    for name in PYODIDE_FILES:
        shutil.copy2(NODE_MODULES / "pyodide" / name, out / pyodide / name)

    pyscript = f"vendor/pyscript/{package_version('@pyscript/core')}"
    dist = NODE_MODULES / "@pyscript" / "core" / "dist"
    (out / pyscript).mkdir(parents=True)
    for path in dist.iterdir():
        if path.suffix in (".js", ".css") and path.is_file():
            shutil.copy2(path, out / pyscript / path.name)

    archive = python_zip()
    zip_name = f"py/hushdrop-{hashlib.sha256(archive).hexdigest()[:16]}.zip"
    (out / "py").mkdir()
    (out / zip_name).write_bytes(archive)

    (out / "pyscript.json").write_text(
        json.dumps({"interpreter": f"./{pyodide}/pyodide.mjs", "files": {f"./{zip_name}": "./*"}})
    )
    (out / "config.json").write_text(json.dumps({"relay": relay, "pyscript": pyscript}))

    vectors = out / "selftest" / "vectors"
    vectors.mkdir(parents=True)
    for path in sorted((ROOT / "tests" / "vectors").glob("*.json")):
        shutil.copy2(path, vectors / path.name)
    (vectors / "index.json").write_text(
        json.dumps(sorted(p.name for p in vectors.glob("*.json") if p.name != "index.json"))
    )

    # Both HTML pages name the PyScript runtime by its versioned path.
    for page in ("index.html", "selftest.html"):
        html = (out / page).read_text()
        (out / page).write_text(html.replace("vendor/pyscript/CURRENT/", f"{pyscript}/"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "site")
    parser.add_argument(
        "--relay", default="", help="relay base URL if the site is hosted apart from its relay"
    )
    args = parser.parse_args(argv)
    out = build(args.out, args.relay)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"Built {out} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
