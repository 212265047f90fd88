"""Accessibility of the page: axe-core finds no violations in any main state of either view (also
with 1,000 files), in every language the page speaks; focus never falls back to <body>, and
progress and the end state are announced.

axe-core comes from npm (a pinned dev dependency) and is injected into the page by the test with
a script tag; the site itself never carries it. The page's CSP forbids that tag (as it should), so
these pages are opened with `bypass_csp` (test_page.py checks the page under its real policy).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pagetools import (
    BLOCK_ICE,
    PYTHON_READY_TIMEOUT,
    STEP_TIMEOUT,
    TRANSFER_TIMEOUT,
    MiB,
    accept_download,
    create_link,
    expect_received,
    expect_sent,
    random_file,
    same_verification_code,
    wait_until_ready,
)
from playwright.sync_api import Page, expect

from tests.conftest import REPO_ROOT

AXE = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"
LANGUAGES = sorted(path.stem for path in (REPO_ROOT / "web" / "locales").glob("*.json"))


def axe_violations(page: Page, state: str) -> list[str]:
    """axe-core's violations on the page as it is now, one line per rule and node."""
    if not AXE.exists():
        pytest.fail("axe-core is missing: run `npm ci` (it is a dev dependency in package.json).")
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => JSON.stringify((await axe.run(document)).violations)")
    lines = []
    for violation in json.loads(result):
        for node in violation["nodes"]:
            lines.append(f"{state}: {violation['id']} ({violation['help']}) at {node['target']}")
    return lines


def check(page: Page, state: str, found: list[str]) -> None:
    """Collect this state's violations in every language (English last, as the test goes on in
    it), and check that focus is somewhere (not on <body>)."""
    for code in [*(code for code in LANGUAGES if code != "en"), "en"]:
        # As the language control does, without moving focus to it.
        page.evaluate("(code) => hushdrop.i18n.use(code)", code)
        expect(page.locator("html")).to_have_attribute("lang", code)
        found.extend(axe_violations(page, f"{state} [{code}]"))
    focused = page.evaluate("document.activeElement && document.activeElement.tagName")
    if focused in (None, "BODY"):
        found.append(f"{state}: focus fell back to <body>")


def many_files(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"file-{i:04}.txt"
        path.write_bytes(b"x" * (i % 7))
        paths.append(path)
    return paths


def test_home_page_has_no_violations_empty_with_files_and_after_removing(
    web_relay, new_page, tmp_path
):
    found: list[str] = []
    page, _ = new_page(web_relay.url, bypass_csp=True)
    wait_until_ready(page)
    page.get_by_role("button", name="Receive").focus()
    check(page, "home, empty", found)
    headings = page.get_by_role("heading", level=1)
    expect(headings).to_have_count(1)

    files = [random_file(tmp_path / name, 100) for name in ("a.txt", "b.txt", "c.txt")]
    page.get_by_label("Choose files").set_input_files(files)
    check(page, "home, 3 files", found)
    # Removing a file moves focus to the next one's remove button, and the last to the pickers.
    page.get_by_role("button", name="Remove b.txt").click()
    check(page, "home, removed a file", found)
    expect(page.get_by_role("button", name="Remove c.txt")).to_be_focused()
    page.get_by_role("button", name="Remove c.txt").click()
    expect(page.get_by_role("button", name="Remove a.txt")).to_be_focused()
    page.get_by_role("button", name="Remove a.txt").click()
    check(page, "home, removed every file", found)

    page.get_by_label("Choose files").set_input_files(many_files(tmp_path / "many", 1000))
    expect(page.get_by_text("1,000 files")).to_be_visible()
    check(page, "home, 1,000 files", found)
    page.get_by_role("button", name="Clear").click()
    check(page, "home, cleared", found)
    assert not found, "\n".join(found)


def test_send_and_receive_views_have_no_violations_in_any_state(web_relay, new_page, tmp_path):
    found: list[str] = []
    source = random_file(tmp_path / "big.bin", 64 * MiB)
    sender, sender_log = new_page(web_relay.url, bypass_csp=True)
    sender.add_init_script(BLOCK_ICE)  # relayed: slower, so the progress state can be seen
    link, _ = create_link(sender, [source], password="hunter2")
    check(sender, "send, waiting with link", found)
    sender.get_by_role("button", name="Show a short code").click()
    check(sender, "send, short code shown", found)

    receiver, receiver_log = new_page(bypass_csp=True)
    receiver.add_init_script(BLOCK_ICE)
    receiver.goto(link)
    password = receiver.get_by_label("Password")
    expect(password).to_be_visible(timeout=PYTHON_READY_TIMEOUT)
    check(receiver, "receive, password form", found)
    password.fill("hunter2")
    password.press("Enter")
    download = receiver.get_by_role("button", name="Download")
    expect(download).to_be_visible(timeout=STEP_TIMEOUT)
    check(receiver, "receive, offer (replaced the password form)", found)
    same_verification_code(sender, receiver)
    check(sender, "send, verifying", found)

    with receiver.expect_download(timeout=STEP_TIMEOUT) as info:
        download.click()
    check(receiver, "receive, receiving (after Download)", found)
    bar = receiver.get_by_role("progressbar")
    expect(bar).to_have_attribute("aria-valuetext", re.compile(r"\S"), timeout=STEP_TIMEOUT)
    check(sender, "send, sending", found)
    info.value.save_as(tmp_path / "out.bin")
    expect_received(receiver, "1 file")
    expect_sent(sender, "1 file")
    check(receiver, "receive, done", found)
    check(sender, "send, done", found)
    # The end state is announced: a polite live region carries the outcome's details.
    for page, verb in ((sender, "Sent"), (receiver, "Received")):
        live = page.locator("#announcer")
        expect(live).to_have_attribute("aria-live", "polite")
        expect(live).to_contain_text(re.compile(f"complete. {verb} 1 file"))
    assert not found, "\n".join(found) + f"\n{sender_log}\n{receiver_log}"


def test_failed_transfers_have_no_violations(web_relay, new_page, tmp_path):
    found: list[str] = []
    sender, _ = new_page(web_relay.url, bypass_csp=True)
    link, _ = create_link(sender, [random_file(tmp_path / "a.bin", 1000)])
    receiver, _ = new_page(link, bypass_csp=True)
    expect(receiver.get_by_role("button", name="Download")).to_be_visible(
        timeout=PYTHON_READY_TIMEOUT
    )
    sender.get_by_role("button", name="Cancel").focus()
    sender.get_by_role("button", name="Cancel").click()
    expect(receiver.get_by_role("alert")).to_contain_text("cancel", timeout=STEP_TIMEOUT)
    expect(sender.get_by_role("button", name="Send more files")).to_be_visible()
    check(sender, "send, cancelled", found)
    check(receiver, "receive, failed", found)
    expect(receiver.locator("#announcer")).to_contain_text("Receiving stopped")

    sender2, _ = new_page(web_relay.url, bypass_csp=True)
    link2, _ = create_link(sender2, [random_file(tmp_path / "b.bin", 1000)])
    receiver2, _ = new_page(link2, bypass_csp=True)
    expect(receiver2.get_by_role("button", name="Download")).to_be_visible(
        timeout=PYTHON_READY_TIMEOUT
    )
    receiver2.close()
    expect(sender2.get_by_role("alert")).to_contain_text("closed", timeout=STEP_TIMEOUT)
    check(sender2, "send, failed", found)
    assert not found, "\n".join(found)


def test_thousand_files_offered_have_no_violations(web_relay, new_page, tmp_path):
    found: list[str] = []
    sender, _ = new_page(web_relay.url, bypass_csp=True)
    link, _ = create_link(sender, many_files(tmp_path / "many", 1000))
    receiver, _ = new_page(link, bypass_csp=True)
    expect(receiver.get_by_role("button", name="Download")).to_be_visible(
        timeout=PYTHON_READY_TIMEOUT
    )
    check(receiver, "receive, offer of 1,000 files", found)
    check(sender, "send, verifying 1,000 files", found)
    # The long list scrolls by keyboard: it takes focus and has a name.
    offer = receiver.get_by_role("list", name="Incoming files")
    offer.focus()
    expect(offer).to_be_focused()
    accept_download(receiver, tmp_path / "out.zip")
    expect_received(receiver, "1,000 files")
    check(receiver, "receive, done with 1,000 files", found)
    assert not found, "\n".join(found)


def test_progress_is_announced_politely_and_not_too_often(web_relay, new_page, tmp_path):
    """The live region is updated at most every ~10 s (or at 25 % steps) during a transfer."""
    sender, _ = new_page(web_relay.url, bypass_csp=True)
    sender.add_init_script(BLOCK_ICE)
    link, _ = create_link(sender, [random_file(tmp_path / "big.bin", 64 * MiB)])
    receiver, _ = new_page(bypass_csp=True)
    receiver.add_init_script(BLOCK_ICE)
    receiver.add_init_script(
        """
        window.__announced = [];
        new MutationObserver(() => {
          const live = document.getElementById("announcer");
          const said = window.__announced;
          const text = live && live.textContent;
          if (text && said[said.length - 1] !== text) said.push(text);
        }).observe(document, {subtree: true, childList: true, characterData: true});
        """
    )
    receiver.goto(link)
    accept_download(receiver, tmp_path / "out.bin")
    expect_received(receiver, "1 file")
    expect(receiver.locator("#announcer")).to_contain_text("Received", timeout=TRANSFER_TIMEOUT)
    announced = receiver.evaluate("window.__announced")
    progress = [text for text in announced if re.fullmatch(r"\d+% done", text)]
    assert progress, announced
    # Progress steps of 25 % at most (plus at most one per 10 s on a slow machine).
    assert len(progress) <= 8, announced
    assert any("Received" in text for text in announced), announced
