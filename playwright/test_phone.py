"""The page on a phone (390×844, touch): the whole link shows, the short code never breaks inside
a word, Share opens the system share sheet where there is one, nobody is told to drop files on a
touch screen, and nothing is wider than the screen. Every state is also photographed at phone and
desktop size in both colour schemes, for a person to look at.

Screenshots go to $HUSHDROP_SCREENSHOT_DIR if set, else to the test's tmp_path (never committed).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pagetools import (
    BLOCK_ICE,
    PYTHON_READY_TIMEOUT,
    STEP_TIMEOUT,
    MiB,
    create_link,
    expect_received,
    expect_sent,
    random_file,
    same_verification_code,
    wait_until_ready,
)
from playwright.sync_api import Page, expect

PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "has_touch": True,
    "is_mobile": True,
}
DESKTOP = {"viewport": {"width": 1280, "height": 900}}

# A share sheet that records what it was given (headless Chromium on Linux has none).
STUB_SHARE = "navigator.share = async (data) => { window.__shared = data; };"
NO_SHARE = "delete Navigator.prototype.share; delete navigator.share;"


def screenshot_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("HUSHDROP_SCREENSHOT_DIR") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shoot(page: Page, folder: Path, size: str, state: str) -> None:
    """The page in this state, in the light and the dark colour scheme."""
    # Not `full_page=True`: Chromium drops the touch emulation (hover: none) for that capture, so
    # the viewport is made as tall as the page instead.
    viewport = page.viewport_size
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": viewport["width"], "height": max(height, viewport["height"])})
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.screenshot(path=folder / f"{size}-{state}-{scheme}.png")
    page.emulate_media(color_scheme="light")
    page.set_viewport_size(viewport)


def fits_the_screen(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"the page is {width}px wide"


def words_break_only_between_them(page: Page, selector: str) -> None:
    """Each hyphen-separated word of the element's text lies on one line."""
    split = page.evaluate(
        """(selector) => {
        const node = document.querySelector(selector).firstChild;
        const split = [];
        let start = 0;
        for (const word of node.textContent.split("-")) {
          const range = document.createRange();
          range.setStart(node, start);
          range.setEnd(node, start + word.length);
          const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
          if (tops.size > 1) split.push(word);
          start += word.length + 1;
        }
        return split;
    }""",
        selector,
    )
    assert split == [], f"broken inside: {split}"


def test_phone_shows_the_whole_link_and_code_and_shares_the_link(web_relay, new_page, tmp_path):
    page, _ = new_page(**PHONE)
    page.add_init_script(STUB_SHARE)
    page.goto(web_relay.url)
    wait_until_ready(page)
    # A touch screen is not told to drop files.
    expect(page.get_by_text("Choose the files or the folder to send")).to_be_visible()
    expect(page.get_by_text("Drop files or folders here")).to_be_hidden()
    fits_the_screen(page)

    link, _ = create_link(page, [random_file(tmp_path / "a.txt", 10)], short_code=True)
    field = page.get_by_label("Share link")
    whole = field.evaluate("(el) => el.scrollHeight <= el.clientHeight + 1")
    assert whole, "the link field hides part of the link"
    words_break_only_between_them(page, "code.code")
    fits_the_screen(page)

    page.get_by_role("button", name="Share").click()
    page.wait_for_function("window.__shared !== undefined", timeout=STEP_TIMEOUT)
    assert page.evaluate("window.__shared.url") == link


def test_without_a_share_sheet_there_is_no_share_button(web_relay, new_page, tmp_path):
    page, _ = new_page()
    page.add_init_script(NO_SHARE)
    page.goto(web_relay.url)
    # A mouse can drop files: the drop zone says so.
    expect(page.get_by_text("Drop files or folders here")).to_be_visible()
    expect(page.get_by_text("Choose the files or the folder to send")).to_be_hidden()
    create_link(page, [random_file(tmp_path / "a.txt", 10)])
    expect(page.get_by_role("button", name="Copy")).to_be_visible()
    expect(page.get_by_role("button", name="Share")).to_be_hidden()


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_screenshots_of_every_state(web_relay, new_page, tmp_path, size):
    options = PHONE if size == "phone" else DESKTOP
    folder = screenshot_dir(tmp_path)
    sender, _ = new_page(**options)
    sender.add_init_script(BLOCK_ICE)  # relayed: slow enough to photograph the progress
    sender.add_init_script(STUB_SHARE if size == "phone" else NO_SHARE)
    sender.goto(web_relay.url)
    wait_until_ready(sender)
    shoot(sender, folder, size, "home-empty")
    names = ["holiday-photos-2026-with-a-rather-long-name.zip", "notes.txt", "b.bin"]
    files = [random_file(tmp_path / name, 100) for name in names]
    big = random_file(tmp_path / "video.mp4", 96 * MiB)
    sender.get_by_label("Choose files").set_input_files([*files, big])
    shoot(sender, folder, size, "home-files")
    link, _ = create_link(sender, password="hunter2")
    shoot(sender, folder, size, "send-waiting")
    sender.get_by_role("button", name="Show a short code").click()
    shoot(sender, folder, size, "send-code")
    fits_the_screen(sender)

    receiver, _ = new_page(**options)
    receiver.add_init_script(BLOCK_ICE)
    receiver.goto(link)
    password = receiver.get_by_label("Password")
    expect(password).to_be_visible(timeout=PYTHON_READY_TIMEOUT)
    shoot(receiver, folder, size, "receive-password")
    password.fill("hunter2")
    password.press("Enter")
    download = receiver.get_by_role("button", name="Download")
    expect(download).to_be_visible(timeout=STEP_TIMEOUT)
    same_verification_code(sender, receiver)
    shoot(receiver, folder, size, "receive-offer")
    shoot(sender, folder, size, "send-verifying")
    fits_the_screen(receiver)

    with receiver.expect_download(timeout=STEP_TIMEOUT) as info:
        download.click()
    expect(receiver.get_by_role("progressbar")).to_be_visible()
    shoot(receiver, folder, size, "receive-receiving")
    shoot(sender, folder, size, "send-sending")
    info.value.save_as(tmp_path / "out.zip")
    expect_received(receiver, "4 files")
    expect_sent(sender, "4 files")
    shoot(receiver, folder, size, "receive-done")
    shoot(sender, folder, size, "send-done")
    fits_the_screen(receiver)

    # Failed: the sender cancels while the receiver looks at the offer.
    sender.get_by_role("button", name="Send more files").click()
    link2, _ = create_link(sender, [files[0]])
    receiver2, _ = new_page(**options)
    receiver2.goto(link2)
    expect(receiver2.get_by_role("button", name="Download")).to_be_visible(
        timeout=PYTHON_READY_TIMEOUT
    )
    sender.get_by_role("button", name="Cancel").click()
    expect(receiver2.get_by_role("alert")).to_contain_text("cancel", timeout=STEP_TIMEOUT)
    expect(sender.get_by_role("button", name="Send more files")).to_be_visible()
    # The offer that can no longer be downloaded goes away with the transfer.
    expect(receiver2.get_by_role("button", name="Download")).to_be_hidden()
    shoot(receiver2, folder, size, "receive-failed")
    shoot(sender, folder, size, "send-cancelled")
    fits_the_screen(receiver2)
    print(f"screenshots: {folder}")
