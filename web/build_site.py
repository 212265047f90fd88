"""Build the static site: `python web/build_site.py [--out build/site] [--relay URL]`.

The output folder is plain files any static host can serve:

* our HTML/CSS/JS from `web/`, each file the pages load named by its content hash
  (`app.<hash>.js`), so browsers may cache them forever; only the HTML pages (and `sw.js`, whose
  address must not change) are revalidated, so a repeat visit costs one request;
* Pyodide and PyScript copied from `node_modules` (pinned in package-lock.json) under versioned
  paths (`vendor/pyodide/<version>-<hash>/`), so they can be cached forever;
* the Python that runs in the page's engine worker — the shared `hushdrop` core (without the
  CPython-only CLI, asyncio transport and pyca backend), the page driver and segno for QR codes —
  as one zip whose name carries its content hash, unpacked by PyScript at start;
* `manifest.webmanifest`, the web app manifest that makes the site an installable app, its
  icons (`icons/`, drawn from favicon.svg by icons/make_icons.py) under hashed names;
* `pyscript.<hash>.json` pointing PyScript at those local files (and, in the engine worker it
  starts, at engine-worker.js), and `config.json` with the relay
  address (empty means: the page's own origin);
* the known-answer test vectors for `selftest.html`;
* with `--relay`, a Content-Security-Policy `<meta>` in each page allowing that relay, so the site
  keeps the relay's policy on any static host;
* `site-manifest.json`: every file's SHA-256 and the site's fingerprint, which the page shows in
  its footer (see hushdrop/site_manifest.py; `hushdrop verify-site` checks a deployed site).

Python in the page starts much faster from bytecode than from source: Pyodide's standard library
comes as `.py` files, and compiling the ~200 modules imported at start-up is about half of
Pyodide's start. So the build compiles the standard library, and our package, with Pyodide itself
under Node (bytecode is specific to the exact CPython inside Pyodide). Results are cached in
`build/pyc-cache/`, keyed by their inputs.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

# web/ is this script's folder, so the shared package imports from the sources.
from hushdrop import site_manifest

WEB = Path(__file__).resolve().parent
ROOT = WEB.parent
NODE_MODULES = ROOT / "node_modules"
PYC_CACHE = ROOT / "build" / "pyc-cache"

# Copied under their own names: the pages, and the service worker (its URL is its identity; the
# build fills in its version and the list of files it keeps for offline use).
STATIC_FILES = ["index.html", "selftest.html", "sw.js"]
# Copied under content-hashed names; the pages refer to them by these names and are rewritten,
# and so are the scripts (i18n.js names the catalogs, app.js imports i18n.js, engine.js imports
# PyScript): a file comes after the files it names.
HASHED_FILES = [
    "app.css",
    "i18n.js",
    "crypto-batch.js",
    "engine-worker.js",
    "engine.py",
    "views.js",
    "direct.js",
    "engine.js",  # imports PyScript: it is named first
    "app.js",
    "selftest.py",
    "favicon.svg",
    # The installed app's icons (drawn from favicon.svg by icons/make_icons.py).
    "icons/icon-192.png",
    "icons/icon-512.png",
    "icons/icon-maskable-512.png",
]
# The language catalogs (one per language, shared by app.js and the page's Python through
# i18n.js), under content-hashed names too.
LOCALES = WEB / "locales"
# The web app manifest: a fixed address (pages link to it), its icons rewritten to built names.
APP_MANIFEST = "manifest.webmanifest"
PAGES = ["index.html", "selftest.html"]
# What the page needs from the shared package; everything else in web/hushdrop is CPython-only.
PAGE_PACKAGES = ["hushdrop/protocol", "hushdrop/crypto", "hushdrop/page"]
PAGE_MODULES = [
    "hushdrop/__init__.py",
    "hushdrop/transport/__init__.py",
    "hushdrop/transport/browser.py",
    "hushdrop/transport/rendezvous.py",  # browser.py's relay messages (pure Python)
    "hushdrop/transport/pump.py",  # the driver loop shared with the CLI (pure asyncio)
    "hushdrop/transport/fanout.py",  # a link's receivers, shared with the CLI (pure asyncio)
    "hushdrop/transport/direct.py",  # WebRTC data channels between two pages
]
CPYTHON_ONLY = {"hushdrop/crypto/pyca.py"}
PYODIDE_FILES = [
    "pyodide.mjs",
    "pyodide.asm.mjs",
    "pyodide.asm.wasm",
    "pyodide-lock.json",
]
# PyScript plugins the pages never use; each would otherwise be fetched at every start.
UNUSED_PLUGINS = [
    "codemirror",
    "deprecations-manager",
    "donkey",
    "py-editor",
    "py-game",
    "py-terminal",
]

# Runs inside Pyodide (under Node): compiles every .py of /work/in/<name>.zip into
# /work/out/<name>.zip, in one of three ways (the job's "kind"):
#   stdlib    bytecode instead of source (the standard library is imported from its zip);
#   package   the sources, and bytecode in __pycache__ beside them (unpacked into the file system);
#   bytecode  only the __pycache__ bytecode: PyScript writes its own package's sources at start.
# Hash-based .pyc files (PEP 552): "unchecked" ones are used without reading or stat()ing the
# source, right for files built together with their bytecode; "checked" ones are compared with
# the source's hash first and recompiled on a mismatch, safe for sources someone else writes.
COMPILE_PY = r"""
import importlib.util, marshal, sys, zipfile

STDLIB_PREFIX = f"/lib/python{sys.version_info[0]}{sys.version_info[1]}.zip/"
TAG = sys.implementation.cache_tag

def pyc(source, filename, checked):
    code = compile(source, filename, "exec", dont_inherit=True)
    flags = (0b11 if checked else 0b01).to_bytes(4, "little")
    header = importlib.util.MAGIC_NUMBER + flags + importlib.util.source_hash(source)
    return header + marshal.dumps(code)

def cached(name):
    folder, _, module = name.rpartition("/")
    return f"{folder}/__pycache__/{module[:-3]}.{TAG}.pyc".lstrip("/")

def entry(name, date_time):
    info = zipfile.ZipInfo(name, date_time=date_time)
    info.compress_type = zipfile.ZIP_DEFLATED
    return info

def compile_zip(src, dst, kind):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data, name = zin.read(info), info.filename
            if not name.endswith(".py"):
                zout.writestr(entry(name, info.date_time), data)
            elif kind == "stdlib":
                # Code objects carry the names compiling from the zip would have given them.
                code = pyc(data, STDLIB_PREFIX + name, checked=False)
                zout.writestr(entry(name + "c", info.date_time), code)
            else:
                if kind == "package":
                    zout.writestr(entry(name, info.date_time), data)
                code = pyc(data, name, checked=kind == "bytecode")
                zout.writestr(entry(cached(name), info.date_time), code)

for job in JOBS:
    compile_zip(f"/work/in/{job['name']}", f"/work/out/{job['name']}", job["kind"])
"""

# Boots Pyodide from node_modules under Node, mounts the work folder and runs COMPILE_PY.
NODE_RUNNER = r"""
import { pathToFileURL } from "node:url";
const [indexURL, work, code] = process.argv.slice(1);
const { loadPyodide } = await import(pathToFileURL(indexURL + "pyodide.mjs").href);
const pyodide = await loadPyodide({ indexURL, stdout: console.error });
pyodide.FS.mkdir("/work");
pyodide.FS.mount(pyodide.FS.filesystems.NODEFS, { root: work }, "/work");
pyodide.runPython(code);
"""


def package_version(name: str) -> str:
    return json.loads((NODE_MODULES / name / "package.json").read_text())["version"]


def content_hash(data: bytes, length: int = 16) -> str:
    return hashlib.sha256(data).hexdigest()[:length]


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


def pyscript_sources() -> list[tuple[str, bytes]]:
    """The `pyscript` package PyScript writes into the file system at start, as it writes it.

    The sources are a JSON object in one of PyScript's modules; should that ever change shape,
    the page only loses PyScript's bytecode and compiles its package at start as before.
    """
    module = NODE_MODULES / "@pyscript" / "core" / "src" / "stdlib" / "pyscript.js"
    try:
        text = module.read_text()
        tree = json.loads(text[text.index("export default") + 14 :].strip().rstrip(";"))
    except (OSError, ValueError) as exc:
        print(f"warning: PyScript's Python package not found ({exc}); not precompiled")
        return []
    files: list[tuple[str, bytes]] = []

    def walk(folder: str, node: dict) -> None:
        for name, value in node.items():
            if isinstance(value, str):
                files.append((f"{folder}{name}", value.encode()))
            else:
                walk(f"{folder}{name}/", value)

    walk("", tree)
    return sorted(files)


def zip_of(files: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))  # reproducible
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return buffer.getvalue()


def merged(*archives: bytes) -> bytes:
    """One zip with the entries of all `archives`, in order."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        for data in archives:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for info in archive.infolist():
                    out.writestr(info, archive.read(info))
    return buffer.getvalue()


def compiled(archives: dict[str, tuple[str, bytes]]) -> dict[str, bytes]:
    """{name: (kind, zip)} -> {name: the zip compiled as `kind` says (see COMPILE_PY)}.

    Each result is cached under a key of its input, its kind, the compiler code and the Pyodide
    version; Node runs only for what the cache does not have.
    """
    recipe = (COMPILE_PY + NODE_RUNNER + package_version("pyodide")).encode()
    keys = {
        name: hashlib.sha256(recipe + kind.encode() + data).hexdigest()
        for name, (kind, data) in archives.items()
    }
    missing = [name for name in archives if not (PYC_CACHE / keys[name]).is_file()]
    if missing:
        node = shutil.which("node")
        if node is None:
            sys.exit("node is missing: the site build compiles the page's Python with Pyodide.")
        with tempfile.TemporaryDirectory(prefix="hushdrop-pyc-") as tmp:
            work = Path(tmp)
            (work / "in").mkdir()
            (work / "out").mkdir()
            jobs = [{"kind": archives[name][0], "name": name} for name in missing]
            for name in missing:
                (work / "in" / name).write_bytes(archives[name][1])
            code = f"JOBS = {json.dumps(jobs)}\n{COMPILE_PY}"
            index_url = f"{NODE_MODULES / 'pyodide'}/"
            result = subprocess.run(
                [node, "--input-type=module", "-e", NODE_RUNNER, index_url, str(work), code],
                capture_output=True,
                text=True,
            )
            if result.returncode != 0:
                sys.exit(f"Compiling the page's Python with Pyodide failed:\n{result.stderr}")
            PYC_CACHE.mkdir(parents=True, exist_ok=True)
            for name in missing:
                # Written then renamed: concurrent builds never see half a file.
                partial = PYC_CACHE / f"{keys[name]}.{os.getpid()}.tmp"
                partial.write_bytes((work / "out" / name).read_bytes())
                os.replace(partial, PYC_CACHE / keys[name])
    return {name: (PYC_CACHE / keys[name]).read_bytes() for name in archives}


def pyscript_chunks(dist: Path) -> list[str]:
    """The modules of PyScript's bundle that every start imports: core.js's static imports, and
    the error plugin, which is imported whether or not the config turns it off."""
    chunks = re.findall(
        r"""(?:^|[;\s}])(?:import|export)\b[^"';]*?\bfrom\s*["']\./([^"']+)["']""",
        (dist / "core.js").read_text(),
    )
    for chunk in list(chunks):
        chunks += re.findall(
            r"""\berror:\(\)=>import\(["']\./([^"']+)["']\)""", (dist / chunk).read_text()
        )
    return chunks


def hashed_name(name: str, data: bytes) -> str:
    stem, dot, suffix = name.rpartition(".")
    return f"{stem}.{content_hash(data)}.{suffix}" if dot else f"{name}.{content_hash(data)}"


def rewrite_page(html: str, names: dict[str, str]) -> str:
    """Point a page's src/href/config attributes at the built files' names."""

    def replace(match: re.Match) -> str:
        target = names.get(match.group(3), match.group(3))
        return f'{match.group(1)}="{match.group(2) or ""}{target}"'

    return re.sub(r'\b(src|href|config)="(\./)?([^"#?]+)"', replace, html)


def app_manifest(text: str, names: dict[str, str]) -> str:
    """The web app manifest with its icons pointing at the built files' names."""
    manifest = json.loads(text)
    for icon in manifest.get("icons", []):
        if icon["src"] not in names:
            sys.exit(f"{APP_MANIFEST}: icon {icon['src']} is not one of HASHED_FILES")
        icon["src"] = names[icon["src"]]
    return json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"


def app_shell(out: Path, names: dict[str, str]) -> list[dict]:
    """What sw.js keeps for the page to start offline: every file of the built site but the
    self-test, PyScript's plugins the page turns off, and the worker itself; the page as "./"
    (its address). Each says whether it never changes at its address (see relay/http.py)."""
    from hushdrop_relay.http import IMMUTABLE, cache_control

    left_out = {"sw.js", "selftest.html", names["selftest.py"]}
    # The plugins' chunks (xterm: py-terminal's), and PyScript's own (empty) service worker.
    unused = (*(f"{name}-" for name in [*UNUSED_PLUGINS, "xterm"]), "service-worker.js")
    shell = []
    for path in site_manifest.site_files(out):
        name = path.rpartition("/")[2]
        if path in left_out or path.startswith("selftest/"):
            continue
        if path.startswith("vendor/pyscript/") and name.startswith(unused):
            continue
        address = "./" if path == "index.html" else path
        shell.append({"path": address, "immutable": cache_control(path) == IMMUTABLE})
    return shell


def service_worker(out: Path, names: dict[str, str]) -> None:
    """Fill in sw.js's version and app shell. The version is the fingerprint of every other file
    of the site, so any change to the site is a new sw.js, which browsers install as an update."""
    files = {
        path: site_manifest.sha256_hex((out / path).read_bytes())
        for path in site_manifest.site_files(out)
        if path != "sw.js"
    }
    version = site_manifest.fingerprint(files)[:16]
    shell = json.dumps(app_shell(out, names), separators=(",", ":"))
    text = (out / "sw.js").read_text()
    for placeholder, value in [
        ('const SITE_VERSION = "development";', f'const SITE_VERSION = "{version}";'),
        ("const APP_SHELL = [];", f"const APP_SHELL = {shell};"),
    ]:
        if placeholder not in text:
            sys.exit(f"sw.js no longer says {placeholder!r}: update build_site.service_worker()")
        text = text.replace(placeholder, value, 1)
    (out / "sw.js").write_text(text)


def rewrite_script(text: str, names: dict[str, str]) -> str:
    """Point a script's quoted file names (`"./i18n.js"`, `"locales/de.json"`) at the built
    files' names."""

    def replace(match: re.Match) -> str:
        quote, dot, name = match.groups()
        return f"{quote}{dot or ''}{names[name]}{quote}" if name in names else match.group(0)

    return re.sub(r"""(["'])(\./)?([\w./-]+)\1""", replace, text)


def page_csp(relay: str) -> str:
    """The relay's policy for a site on another origin: it may also connect to `relay`.

    Without frame-ancestors, which browsers ignore in a <meta> (a static host that can should
    send it as a header).
    """
    from hushdrop_relay.config import DEFAULT_CSP

    parts = urlsplit(relay)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        sys.exit(f"--relay must look like https://relay.example, not {relay!r}")
    ws = {"http": "ws", "https": "wss"}[parts.scheme]
    allowed = f"connect-src 'self' {parts.scheme}://{parts.netloc} {ws}://{parts.netloc}"
    policy = [
        allowed if d.strip().startswith("connect-src") else d.strip()
        for d in DEFAULT_CSP.split(";")
        if not d.strip().startswith("frame-ancestors")
    ]
    return "; ".join(policy)


def build(out: Path, relay: str = "", settings: dict | None = None) -> Path:
    """Build the site into `out`; `settings` are added to its config.json (e.g. iceServers)."""
    if not NODE_MODULES.is_dir():
        sys.exit("node_modules is missing: run `npm ci` (or `make setup`) first.")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    names: dict[str, str] = {}  # the name a page uses -> the name in the built site

    for name in STATIC_FILES:
        shutil.copy2(WEB / name, out / name)
    (out / "locales").mkdir()
    for path in sorted(LOCALES.glob("*.json")):
        name = f"locales/{path.name}"
        data = path.read_bytes()
        json.loads(data)  # a broken catalog fails the build, not the page
        names[name] = hashed_name(name, data)
        (out / names[name]).write_bytes(data)

    pyodide_dir = NODE_MODULES / "pyodide"
    built = compiled(
        {
            "python_stdlib.zip": ("stdlib", (pyodide_dir / "python_stdlib.zip").read_bytes()),
            "hushdrop.zip": ("package", zip_of(python_sources())),
            "pyscript.zip": ("bytecode", zip_of(pyscript_sources())),
        }
    )
    stdlib = built["python_stdlib.zip"]
    # The folder's name says which Pyodide, and which build of its standard library, it holds.
    pyodide = f"vendor/pyodide/{package_version('pyodide')}-{content_hash(stdlib, 10)}"
    (out / pyodide).mkdir(parents=True)
    for name in PYODIDE_FILES:
        shutil.copy2(pyodide_dir / name, out / pyodide / name)
    (out / pyodide / "python_stdlib.zip").write_bytes(stdlib)
    for name in [*PYODIDE_FILES, "python_stdlib.zip"]:
        names[f"vendor/pyodide/CURRENT/{name}"] = f"{pyodide}/{name}"

    pyscript = f"vendor/pyscript/{package_version('@pyscript/core')}"
    dist = NODE_MODULES / "@pyscript" / "core" / "dist"
    (out / pyscript).mkdir(parents=True)
    for path in dist.iterdir():
        if path.suffix in (".js", ".css") and path.is_file():
            shutil.copy2(path, out / pyscript / path.name)
    names["vendor/pyscript/CURRENT/core.js"] = f"{pyscript}/core.js"

    # Our Python, and the bytecode of the package PyScript writes next to it (./pyscript/).
    bundle = merged(built["hushdrop.zip"], built["pyscript.zip"])
    zip_name = f"py/hushdrop-{content_hash(bundle)}.zip"
    (out / "py").mkdir()
    (out / zip_name).write_bytes(bundle)
    names["py/hushdrop.zip"] = zip_name

    for name in HASHED_FILES:
        data = (WEB / name).read_bytes()
        if name.endswith(".js"):
            data = rewrite_script(data.decode(), names).encode()
        names[name] = hashed_name(name, data)
        (out / names[name]).parent.mkdir(parents=True, exist_ok=True)
        (out / names[name]).write_bytes(data)
    (out / APP_MANIFEST).write_text(app_manifest((WEB / APP_MANIFEST).read_text(), names))

    plugins = [f"!{name}" for name in UNUSED_PLUGINS]
    pyscript_config = json.dumps(
        {
            "interpreter": f"./{pyodide}/pyodide.mjs",
            "files": {f"./{zip_name}": "./*"},
            # The engine worker's half in JavaScript, imported before engine.py runs.
            "js_modules": {"worker": {f"./{names['engine-worker.js']}": "hushdrop_engine"}},
            # The site is not cross-origin isolated, so a worker has no SharedArrayBuffer: no
            # pyscript.window or synchronous calls to the page, which the engine never uses
            # (its own MessageChannel carries everything). This says so, instead of a warning.
            "sync_main_only": True,
            "plugins": plugins,
        }
    ).encode()
    names["pyscript.json"] = hashed_name("pyscript.json", pyscript_config)
    (out / names["pyscript.json"]).write_bytes(pyscript_config)
    config = {**(settings or {}), "relay": relay, "pyscript": pyscript}
    (out / "config.json").write_text(json.dumps(config))

    vectors = out / "selftest" / "vectors"
    vectors.mkdir(parents=True)
    for path in sorted((ROOT / "tests" / "vectors").glob("*.json")):
        shutil.copy2(path, vectors / path.name)
    (vectors / "index.json").write_text(
        json.dumps(sorted(p.name for p in vectors.glob("*.json") if p.name != "index.json"))
    )

    # PyScript's own modules, preloaded by index.html (see there).
    chunks = "".join(
        f'  <link rel="modulepreload" href="{pyscript}/{chunk}">\n'
        for chunk in pyscript_chunks(out / pyscript)
    )
    for page in PAGES:
        html = rewrite_page((out / page).read_text(), names)
        html = html.replace("  <!-- PYSCRIPT CHUNKS -->\n", chunks)
        # The pages' own PyScript settings (index.html runs no Python on its main thread).
        page_config = json.dumps({"plugins": plugins})
        for tag in ("py-config", "mpy-config"):
            html = html.replace(f"<{tag} hidden></{tag}>", f"<{tag} hidden>{page_config}</{tag}>")
        if relay:
            html = html.replace(
                '  <meta charset="utf-8">\n',
                '  <meta charset="utf-8">\n'
                f'  <meta http-equiv="Content-Security-Policy" content="{page_csp(relay)}">\n',
                1,
            )
        (out / page).write_text(html)
    service_worker(out, names)
    site_manifest.seal(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "site")
    parser.add_argument(
        "--relay", default="", help="relay base URL if the site is hosted apart from its relay"
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="a JSON object of settings for the site's config.json, e.g. iceServers; set here, "
        "they are part of the site's fingerprint",
    )
    args = parser.parse_args(argv)
    settings = json.loads(args.config.read_text()) if args.config else None
    if settings is not None and not isinstance(settings, dict):
        sys.exit(f'{args.config} must hold a JSON object, e.g. {{"iceServers": [...]}}')
    out = build(args.out, args.relay, settings)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    fingerprint = json.loads((out / site_manifest.MANIFEST_NAME).read_text())["fingerprint"]
    print(f"Built {out} ({size / 1e6:.1f} MB), fingerprint {site_manifest.shown(fingerprint)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
