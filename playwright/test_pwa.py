"""The installable app: its web app manifest and icons, the service worker's offline copy of the
app, the share target, and how a new version takes over (never mid-transfer).
"""

from __future__ import annotations

import json

from hushdrop import site_manifest
from playwright.sync_api import expect


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
