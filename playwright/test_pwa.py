"""The installable app: its web app manifest and icons, the service worker's offline copy of the
app, the share target, and how a new version takes over (never mid-transfer).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import build_site  # web/build_site.py (on sys.path: see conftest.py)
import pytest
from conftest import RESUME_WINDOW
from enginetools import BUTTON, LABELLED, READY_S, STEP_S, expect_text, wait_for
from enginetools import wait_until_ready as wait_until_tab_ready
from hushdrop import site_manifest
from pagetools import (
    STEP_TIMEOUT,
    MiB,
    create_link,
    expect_sent,
    random_file,
    sha256_file,
    wait_until_ready,
)
from playwright.sync_api import Page, expect

from tests.conftest import RelayProcess
from tests.integration.cli import receive

CLI_TIMEOUT = 240  # s

UNREACHABLE = "Could not reach the relay"
OFFLINE_HINT = "This device may be offline, or the relay is down"
# The service worker that controls the page has its app copy complete (install finished).
WORKER_READY = """() => navigator.serviceWorker.ready.then(
  (registration) => Boolean(registration.active && navigator.serviceWorker.controller))"""


class SiteRelay(RelayProcess):
    """A relay of one test's own, serving a copy of the site the test may redeploy, or stop."""

    root: Path


@pytest.fixture
def own_relay(site: Path, tmp_path: Path) -> Iterator[SiteRelay]:
    root = tmp_path / "deployed"
    shutil.copytree(site, root)
    relay = SiteRelay(["--site-dir", str(root)])
    relay.root = root
    relay.wait_ready()
    yield relay
    relay.stop()


def test_manifest_is_linked_valid_and_its_icons_have_their_declared_sizes(
    web_relay, new_page, site
):
    page, _ = new_page(web_relay.url)
    link = page.locator("link[rel=manifest]")
    expect(link).to_have_count(1)
    url = page.evaluate("document.querySelector('link[rel=manifest]').href")
    response = page.request.get(url)
    assert response.ok
    assert response.headers["content-type"] == "application/manifest+json"
    manifest = json.loads(response.text())

    assert manifest["name"].startswith("Hushdrop") and manifest["short_name"] == "Hushdrop"
    assert manifest["description"]
    assert manifest["display"] == "standalone"
    assert manifest["start_url"] == "./" and manifest["scope"] == "./"
    # The colours of app.css's light scheme (--bg), which the page's theme-color also says.
    assert manifest["theme_color"] == manifest["background_color"] == "#f4f6f9"
    assert page.locator("meta[name=theme-color]").first.get_attribute("content") == "#f4f6f9"

    sizes = {}
    for icon in manifest["icons"]:
        src = page.evaluate(
            "(src) => new URL(src, document.querySelector('link[rel=manifest]').href).href",
            icon["src"],
        )
        assert page.request.get(src).headers["content-type"] == icon["type"]
        width, height = page.evaluate(
            """async (src) => {
              const image = new Image();
              image.src = src;
              await image.decode();
              return [image.naturalWidth, image.naturalHeight];
            }""",
            src,
        )
        if icon["sizes"] != "any":
            assert f"{width}x{height}" == icon["sizes"], icon
        sizes.setdefault(icon["purpose"], set()).add(icon["sizes"])
    assert {"any", "192x192", "512x512"} <= sizes["any"]
    assert "512x512" in sizes["maskable"]

    # The site's fingerprint covers the manifest and every icon (`hushdrop verify-site`).
    files = site_manifest.load(site / site_manifest.MANIFEST_NAME)["files"]
    assert "manifest.webmanifest" in files
    for icon in manifest["icons"]:
        assert icon["src"] in files


def choose_and_create_offline(page: Page, files: list[Path]) -> None:
    page.get_by_label("Choose files").set_input_files(files)
    wait_until_ready(page)
    create = page.get_by_role("button", name="Create link")
    expect(create).to_be_enabled()
    create.click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text(UNREACHABLE, timeout=STEP_TIMEOUT)
    expect(alert).to_contain_text(OFFLINE_HINT)


def test_after_one_visit_the_page_starts_offline_and_says_the_relay_is_unreachable(
    own_relay, new_page, tmp_path
):
    source = random_file(tmp_path / "offline.bin", 1000)
    page, _ = new_page(own_relay.url)
    wait_until_ready(page)
    assert page.evaluate(WORKER_READY)

    page.context.set_offline(True)
    page.reload()
    wait_until_ready(page)
    choose_and_create_offline(page, [source])


def test_after_one_visit_the_page_starts_with_its_server_gone(own_relay, new_page, tmp_path):
    """The whole origin's network gone: nothing answers on its address any more."""
    source = random_file(tmp_path / "offline.bin", 1000)
    page, _ = new_page(own_relay.url)
    wait_until_ready(page)
    assert page.evaluate(WORKER_READY)

    own_relay.stop()
    page.reload()
    wait_until_ready(page)
    choose_and_create_offline(page, [source])


@pytest.mark.parametrize("engine", ["firefox", "webkit"])
def test_in_other_engines_the_page_starts_with_its_server_gone(
    engine, own_relay, open_tab, tmp_path
):
    source = random_file(tmp_path / "offline.bin", 1000)
    tab = open_tab(engine, own_relay.url)
    wait_until_tab_ready(tab)
    wait_for(tab, WORKER_READY, timeout=STEP_S, what="the service worker never took control")

    own_relay.stop()
    tab.goto(own_relay.url)
    wait_until_tab_ready(tab)
    tab.set_files([source], LABELLED, "Choose files")
    tab.click(BUTTON, "Create link")
    expect_text(tab, UNREACHABLE, READY_S)
    expect_text(tab, OFFLINE_HINT)


def share(page: Page, site: str, files: tuple[Path, ...] = (), **fields: str) -> None:
    """What the operating system's share sheet does (manifest.webmanifest share_target): a
    navigation that POSTs the files (and title, text, url) as a multipart form to the action. It
    starts from a blank page, as the share sheet has no page of ours (whose CSP forbids forms
    anyway)."""
    page.goto("about:blank")
    page.set_content(
        f'<form method="post" enctype="multipart/form-data" action="{site}/share">'
        '<input type="file" name="files" multiple></form>'
    )
    if files:
        page.locator("input[type=file]").set_input_files(files)
    page.evaluate(
        """(fields) => {
          for (const [name, value] of Object.entries(fields)) {
            const input = Object.assign(document.createElement("input"), { name, value });
            document.forms[0].append(input);
          }
        }""",
        fields,
    )
    with page.expect_navigation():
        page.evaluate("document.forms[0].submit()")


def test_files_shared_into_the_app_open_the_send_view_and_reach_a_cli_receiver(
    own_relay, new_page, tmp_path, processes
):
    sources = [
        random_file(tmp_path / "src" / "holiday photo.jpg", 3 * MiB + 5),
        random_file(tmp_path / "src" / "notes.txt", 321),
    ]
    page, _ = new_page(own_relay.url)
    wait_until_ready(page)
    assert page.evaluate(WORKER_READY)

    share(page, own_relay.url, files=tuple(sources))

    expect(page).to_have_url(f"{own_relay.url}/")  # the send view, its address plain again
    chosen = page.get_by_label("Files to send")
    expect(chosen).to_contain_text("holiday photo.jpg")
    expect(chosen).to_contain_text("notes.txt")
    expect(page.get_by_text("2 files, 3.0 MiB")).to_be_visible()
    _, code = create_link(page, short_code=True)
    out = tmp_path / "out"
    out.mkdir()
    cli = receive(own_relay.url, code, out, extra=["--yes"])
    processes.append(cli)
    assert cli.wait(CLI_TIMEOUT) == 0, cli.stderr
    for source in sources:
        assert sha256_file(out / source.name) == sha256_file(source)
    expect_sent(page, "2 files")
    # Picked up once: a reload does not add them again.
    page.reload()
    wait_until_ready(page)
    expect(page.get_by_label("Files to send")).not_to_contain_text("notes.txt")


class HeldProxy:
    """Forwards 127.0.0.1:`port` to `target_port` at `rate` bytes/s per direction; `hold()`
    stops every byte until `release()`: a transfer paused mid-way for as long as a test needs."""

    def __init__(self, target_port: int, rate: float) -> None:
        self.target_port = target_port
        self.rate = rate
        self._open = threading.Event()
        self._open.set()
        self._sockets: list[socket.socket] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._open.set()
        self._server.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                return
            self._sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        started, moved = time.monotonic(), 0
        with contextlib.suppress(OSError):
            while data := src.recv(16384):
                self._open.wait()
                dst.sendall(data)
                moved += len(data)
                # Paced: never ahead of `rate` since the start.
                time.sleep(max(0.0, moved / self.rate - (time.monotonic() - started)))
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


def shown_fingerprint(root: Path) -> str:
    manifest = site_manifest.load(root / site_manifest.MANIFEST_NAME)
    return site_manifest.shown(manifest["fingerprint"])


def cache_names(page: Page) -> list[str]:
    return page.evaluate("caches.keys()")


def wait_until(page: Page, function: str, timeout: float, what: str) -> None:
    """Poll the async `function` in the page until it resolves truthy (wait_for_function does
    not wait for a promise)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(function):
        assert time.monotonic() < deadline, f"{what} (waited {timeout:.0f} s)"
        time.sleep(0.2)


def test_a_new_deployment_waits_for_the_running_transfer_and_is_taken_at_the_next_load(
    own_relay, new_page, tmp_path, processes
):
    """A new version of the site, deployed while a page sends, installs but does not take over
    until the transfer ends (which it does, undisturbed); the next load is the new version."""
    source = random_file(tmp_path / "film.mkv", 16 * MiB + 7)
    old_fingerprint = shown_fingerprint(own_relay.root)
    sender, _ = new_page(own_relay.url)
    wait_until_ready(sender)
    assert sender.evaluate(WORKER_READY)
    expect(sender.locator(".site-fingerprint")).to_have_text(old_fingerprint)
    [old_cache] = cache_names(sender)
    out = tmp_path / "out"
    out.mkdir()

    proxy = HeldProxy(own_relay.port, rate=0.5 * MiB)
    try:
        _, code = create_link(sender, files=[source], short_code=True)
        cli = receive(proxy.url, code, out, extra=["--yes"])
        processes.append(cli)
        sender.wait_for_function(
            "() => (document.querySelector('#view progress[data-part=progress]') || {}).value > 0",
            timeout=STEP_TIMEOUT,
        )
        proxy.hold()  # mid-transfer, for as long as the deployment takes

        # A new version: the site rebuilt with one setting changed, copied over the old one.
        settings = {"resumeWindow": RESUME_WINDOW, "deployment": 2}
        update = build_site.build(tmp_path / "next", settings=settings)
        shutil.copytree(update, own_relay.root, dirs_exist_ok=True)
        new_fingerprint = shown_fingerprint(update)
        new_version = re.search(r'SITE_VERSION = "(\w+)"', (update / "sw.js").read_text())[1]
        assert new_fingerprint != old_fingerprint

        # Another tab of the site loads the new version, and the browser installs its worker,
        # which waits, also once that tab has started (and asked it to take over): the
        # transfer still runs.
        other = sender.context.new_page()
        other.goto(own_relay.url)
        expect(other.locator(".site-fingerprint")).to_have_text(new_fingerprint)
        wait_until(
            other,
            "() => navigator.serviceWorker.getRegistration().then((r) => Boolean(r && r.waiting))",
            STEP_S,
            "the new version's worker never installed",
        )
        wait_until_ready(other)
        assert other.evaluate(
            "navigator.serviceWorker.getRegistration().then((r) => Boolean(r.waiting))"
        )
        assert sorted(cache_names(other)) == sorted([old_cache, f"hushdrop-app-{new_version}"])
        expect(sender.locator("[data-part=done]")).to_be_hidden()

        proxy.release()
        assert cli.wait(CLI_TIMEOUT) == 0, cli.stderr
        assert sha256_file(out / source.name) == sha256_file(source)
        expect_sent(sender, "1 file")
    finally:
        proxy.close()

    # The transfer over, the new version takes over, and the old copy is gone.
    wait_until(
        other,
        """() => navigator.serviceWorker.getRegistration().then(
          (r) => Boolean(r && !r.waiting && !r.installing && r.active.state === "activated"))""",
        STEP_S,
        "the new version never took over after the transfer",
    )
    wait_until(
        sender,
        f"() => caches.keys().then((names) => names.join() === 'hushdrop-app-{new_version}')",
        STEP_S,
        "the old version's cache was not deleted",
    )
    sender.reload()
    expect(sender.locator(".site-fingerprint")).to_have_text(new_fingerprint)
    wait_until_ready(sender)


def test_a_link_shared_into_the_app_fills_the_text_to_send(own_relay, new_page, tmp_path):
    page, _ = new_page(own_relay.url)
    wait_until_ready(page)
    assert page.evaluate(WORKER_READY)

    share(page, own_relay.url, title="Our trip", url="https://example.org/photos")

    expect(page).to_have_url(f"{own_relay.url}/")
    expect(page.get_by_label("Text to send")).to_have_value("Our trip\nhttps://example.org/photos")
    _, code = create_link(page, short_code=True)
    out = tmp_path / "out"
    out.mkdir()
    received = subprocess.run(
        [sys.executable, "-m", "hushdrop.cli.main", "receive", "--yes", "--relay", own_relay.url],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("HUSHDROP_")},
            "HUSHDROP_CODE": code,
        },
        cwd=out,
        timeout=CLI_TIMEOUT,
    )
    assert received.returncode == 0, received.stderr
    assert received.stdout == b"Our trip\nhttps://example.org/photos"
    # The share form's empty files field is no file: nothing but the text was sent.
    assert list(out.iterdir()) == []
