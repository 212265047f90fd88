"""The installable app: its web app manifest and icons, the service worker's offline copy of the
app, the share target, and how a new version takes over (never mid-transfer).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from enginetools import BUTTON, LABELLED, READY_S, STEP_S, expect_text, wait_for
from enginetools import wait_until_ready as wait_until_tab_ready
from hushdrop import site_manifest
from pagetools import STEP_TIMEOUT, random_file, wait_until_ready
from playwright.sync_api import Page, expect

from tests.conftest import RelayProcess

UNREACHABLE = "Could not reach the relay"
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
    expect(page.get_by_role("alert")).to_contain_text(UNREACHABLE, timeout=STEP_TIMEOUT)


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
