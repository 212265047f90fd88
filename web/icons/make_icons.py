"""Render the app's PNG icons from web/favicon.svg: `python web/icons/make_icons.py`.

Run once when the logo changes; the PNGs are committed (the site build copies them, and needs no
image tools). Headless Chromium (Debian's, through Playwright) draws the SVG at each size, so
the PNGs are the SVG exactly as a browser shows it, in the light colour scheme.

* icon-192.png, icon-512.png: the favicon as it is (a rounded tile, transparent corners);
* icon-maskable-512.png: for launchers that cut icons to their own shape (a circle, a squircle):
  the tile's colour fills the whole square and the lock is scaled into the central safe zone
  (a circle of 40% of the size around the centre, https://w3c.github.io/manifest/#icon-masks).
"""

from __future__ import annotations

import base64
import re
import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ICONS = Path(__file__).resolve().parent
FAVICON = ICONS.parent / "favicon.svg"
TILE = "#1f3a5f"  # favicon.svg's light-scheme tile
# The lock's size in a maskable icon: its farthest corner (8, 10 units from the centre at full
# size) lands at 0.7 × 12.8 units, well inside the safe circle (radius 12.8 of 32).
MASKABLE_LOCK_SCALE = 0.7


def maskable_svg(svg: str) -> str:
    """The favicon's lock (all after its tile) on a full-bleed square of the tile's colour."""
    lock = re.search(r'<rect class="tile"[^>]*/>(.*)</svg>', svg, re.DOTALL)
    if lock is None:
        sys.exit("favicon.svg has changed shape: update maskable_svg()")
    offset = 16 * (1 - MASKABLE_LOCK_SCALE)
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
        f'<rect width="32" height="32" fill="{TILE}"/>'
        f'<g transform="translate({offset} {offset}) scale({MASKABLE_LOCK_SCALE})">'
        f"{lock.group(1)}</g></svg>"
    )


def render(page, svg: str, size: int, out: Path) -> None:
    data = base64.b64encode(svg.encode()).decode()
    page.set_viewport_size({"width": size, "height": size})
    page.set_content(
        '<body style="margin:0;background:transparent">'
        f'<img src="data:image/svg+xml;base64,{data}" width="{size}" height="{size}" '
        'style="display:block"></body>'
    )
    page.locator("img").evaluate("img => img.decode()")
    page.screenshot(
        path=str(out), omit_background=True, clip={"x": 0, "y": 0, "width": size, "height": size}
    )
    print(f"wrote {out.relative_to(ICONS.parent.parent)}")


def main() -> int:
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("Debian's chromium is needed to draw the icons (apt install chromium).")
    svg = FAVICON.read_text()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(color_scheme="light", device_scale_factor=1)
        for size in (192, 512):
            render(page, svg, size, ICONS / f"icon-{size}.png")
        render(page, maskable_svg(svg), 512, ICONS / "icon-maskable-512.png")
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
