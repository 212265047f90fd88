"""Sending a text instead of (or with) files, in every engine the suite runs (Chromium through
Playwright, Firefox and WebKit through WebDriver): page → page, page → CLI and CLI → page. The
text is typed into "Text to send" and arrives in the read-only "Received text", with Copy;
nothing is downloaded.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from enginetools import (
    BUTTON,
    LABELLED,
    READY_S,
    STEP_S,
    TRANSFER_S,
    Tab,
    expect_text,
    fill,
    verification_code,
    wait_for,
    wait_until_ready,
)
from hushdrop.page.humanize import transfer_summary
from hushdrop.page.messages import Size, t
from pagetools import random_file, sha256_file

from tests.integration.cli import receive, send

CLI_TIMEOUT = 240  # s
ENGINES = pytest.mark.parametrize("engine", ["chromium", "firefox", "webkit"])
TEXT = "Grüße 👋 — the door code is 4711.\nSecond line,\ttabbed.\n"
TEXT_SIZE = f"{len(TEXT.encode())} B"
# A download from the page goes through a hidden frame (service worker) or a link with
# `download` (in memory): neither may appear for a text.
NO_DOWNLOAD = """() => !document.querySelector("iframe, a[download]")"""


class ChromiumTab:
    """A Playwright page as an enginetools Tab, so one test body runs on every engine."""

    engine = "chromium"

    def __init__(self, page, log) -> None:
        self.page = page
        self.console = log.console
        self.downloads: list[object] = []
        page.on("download", lambda download: self.downloads.append(download))

    def goto(self, url: str) -> None:
        self.page.goto(url)

    def call(self, function: str, *args: Any) -> Any:
        return self.page.evaluate(f"async (args) => (await ({function})(...args)) ?? null", args)

    def _element(self, finder: str, args: tuple):
        handle = self.page.evaluate_handle(f"(args) => ({finder})(...args)", list(args))
        return handle.as_element()

    def click(self, finder: str, *args: Any) -> None:
        self._element(finder, args).click()

    def set_files(self, paths: list[Path], finder: str, *args: Any) -> None:
        self._element(finder, args).set_input_files(paths)

    def close(self) -> None:
        pass


@pytest.fixture
def person(new_page, open_tab):
    """`person(engine, url=None)`: one person's page in that engine, as a Tab."""

    def open_(engine: str, url: str | None = None) -> Tab:
        if engine == "chromium":
            page, log = new_page(permissions=["clipboard-read", "clipboard-write"])
            tab = ChromiumTab(page, log)
            if url is not None:
                tab.goto(url)
            return tab
        return open_tab(engine, url)

    return open_


def create_text_link(tab: Tab, text: str, files: list[Path] | None = None, short: bool = False):
    """Type the text (and choose files), create the link; (link, typed code or "")."""
    if files:
        tab.set_files(files, LABELLED, "Choose files")
    fill(tab, "Text to send", text)
    wait_until_ready(tab)
    tab.click(BUTTON, "Create link")
    link = wait_for(
        tab,
        f"""() => {{ const field = ({LABELLED})("Share link");
          return field && /#\\d{{6}}-/.test(field.value) ? field.value : null; }}""",
        timeout=STEP_S,
        what="no share link appeared",
    )
    if not short:
        return link, ""
    tab.click(BUTTON, "Show a short code")
    return link, tab.call("() => document.querySelector('code.code').textContent")


def show_text(tab: Tab, offered: str) -> str:
    """Wait for the offer, check what it announces, accept; the "Received text" field's value."""
    wait_for(
        tab,
        f"(name) => Boolean(({BUTTON})(name))",
        "Show text",
        timeout=READY_S,
        what="the offer's Show text button never showed",
    )
    expect_text(tab, f"The sender offers {offered}")
    assert not tab.call(f"() => Boolean(({LABELLED})('Received text')?.value)")  # not before
    tab.click(BUTTON, "Show text")
    return received_text(tab)


def received_text(tab: Tab) -> str:
    return wait_for(
        tab,
        f"""() => {{ const field = ({LABELLED})("Received text");
          return field && field.value && !field.closest("[hidden]") ? field.value : null; }}""",
        timeout=TRANSFER_S,
        what="no received text showed",
    )


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUSHDROP_")}
    return {**env, **extra}


@ENGINES
def test_page_sends_a_text_to_a_page(engine, web_relay, person):
    sender = person(engine, web_relay.url)
    link, _ = create_text_link(sender, TEXT)
    receiver = person(engine, link)
    assert verification_code(receiver) == verification_code(sender)

    assert show_text(receiver, f"a text of {TEXT_SIZE}") == TEXT

    field = f"({LABELLED})('Received text')"
    assert receiver.call(f"() => {field}.readOnly")
    expect_text(receiver, f"Received a text of {TEXT_SIZE}, shown above. Nothing was downloaded.")
    expect_text(sender, f"Sent a text of {TEXT_SIZE}")
    assert receiver.call(NO_DOWNLOAD)
    if isinstance(receiver, ChromiumTab):
        assert receiver.downloads == []
    # The sent text leaves the home screen's box once sent.
    sender.click(BUTTON, "Send more")  # not "Send more files": it sent a text
    assert sender.call(f"() => ({LABELLED})('Text to send').value") == ""


@ENGINES
def test_copy_puts_the_received_text_on_the_clipboard(engine, web_relay, person):
    sender = person(engine, web_relay.url)
    link, _ = create_text_link(sender, TEXT)
    receiver = person(engine, link)
    show_text(receiver, f"a text of {TEXT_SIZE}")

    receiver.click(
        f"""() => ({LABELLED})("Received text").closest(".row").querySelector("button")"""
    )

    expect_text(receiver, "Copied")
    if isinstance(receiver, ChromiumTab):  # the one engine whose clipboard a test may read
        assert receiver.call("() => navigator.clipboard.readText()") == TEXT


@ENGINES
def test_page_sends_a_text_to_the_cli(engine, web_relay, person, tmp_path, processes):
    sender = person(engine, web_relay.url)
    _, code = create_text_link(sender, TEXT, short=True)

    received = subprocess.run(
        [sys.executable, "-m", "hushdrop.cli.main", "receive", "--yes", "--relay", web_relay.url],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=clean_env(HUSHDROP_CODE=code),
        cwd=tmp_path,
        timeout=CLI_TIMEOUT,
    )

    assert received.returncode == 0, received.stderr
    assert received.stdout == TEXT.encode()
    assert list(tmp_path.iterdir()) == []
    expect_text(sender, f"Sent a text of {TEXT_SIZE}")


@ENGINES
def test_cli_sends_a_text_to_the_page(engine, web_relay, person, processes):
    cli = send(web_relay.url, extra=["--text", TEXT])
    processes.append(cli)
    receiver = person(engine, cli.wait_event("code")["link"])

    assert show_text(receiver, f"a text of {TEXT_SIZE}") == TEXT

    assert cli.wait(CLI_TIMEOUT) == 0, cli.stderr
    assert cli.wait_event("verification")["sas"] == verification_code(receiver)
    expect_text(receiver, f"Received a text of {TEXT_SIZE}")
    assert receiver.call(NO_DOWNLOAD)


def test_page_sends_a_text_with_files_to_the_cli(web_relay, person, tmp_path, processes):
    source = random_file(tmp_path / "src" / "photo.jpg", 300_000)
    sender = person("chromium", web_relay.url)
    _, code = create_text_link(sender, "photos from Sunday", [source], short=True)
    out = tmp_path / "out"

    cli = receive(web_relay.url, code, out, extra=["--yes"])
    processes.append(cli)

    assert cli.wait(CLI_TIMEOUT) == 0, cli.stderr
    offer = cli.wait_event("offer")
    assert offer["text_bytes"] == len(b"photos from Sunday") and len(offer["files"]) == 1
    assert cli.wait_event("text")["text"] == "photos from Sunday"
    assert sha256_file(out / "photo.jpg") == sha256_file(source)
    expect_text(sender, "Sent 1 file, 293.0 KiB and a text of 18 B")


def test_cli_sends_a_text_with_files_to_the_page(web_relay, person, tmp_path, processes):
    source = random_file(tmp_path / "notes.bin", 5000)
    cli = send(web_relay.url, source, extra=["--text", "read me first"])
    processes.append(cli)
    receiver = person("chromium", cli.wait_event("code")["link"])
    page = receiver.page
    expect_text(receiver, "The sender offers 1 file, 4.9 KiB and a text of 13 B")

    with page.expect_download(timeout=STEP_S * 1000) as info:
        receiver.click(BUTTON, "Download")
    info.value.save_as(tmp_path / "saved.bin")

    assert received_text(receiver) == "read me first"
    assert sha256_file(tmp_path / "saved.bin") == sha256_file(source)
    assert cli.wait(CLI_TIMEOUT) == 0, cli.stderr


def test_a_text_over_the_limit_is_refused_on_the_page_before_a_link(web_relay, person):
    sender = person("chromium", web_relay.url)
    fill(sender, "Text to send", "x" * (1024 * 1024 + 1))
    wait_until_ready(sender)
    sender.click(BUTTON, "Create link")
    expect_text(sender, "The text is 1,048,577 bytes; at most 1,048,576 bytes of text go in one")
    assert not sender.call(f"() => Boolean(({LABELLED})('Share link'))")


def test_create_link_needs_files_or_a_text(web_relay, person):
    sender = person("chromium", web_relay.url)
    wait_until_ready(sender)
    button = "() => document.getElementById('create-link').disabled"
    assert sender.call(button)
    fill(sender, "Text to send", "   \n")
    assert sender.call(button)  # white space is no text
    fill(sender, "Text to send", "hello")
    assert not sender.call(button)


def test_a_transfer_summary_names_the_text_and_the_files():
    # Messages of the page's catalogs; test_i18n checks how the page writes them.
    assert transfer_summary(0, 0, 12) == t("transfer.text", size=Size(12))
    assert transfer_summary(2, 3 * 1024 * 1024, 5) == t(
        "transfer.files-and-text",
        files=t("files.summary", count=2, size=Size(3 * 1024 * 1024)),
        size=Size(5),
    )
    assert transfer_summary(1, 9, None) == t("files.summary", count=1, size=Size(9))


def test_the_text_views_have_no_accessibility_violations(web_relay, new_page):
    """axe-core (as test_accessibility.py runs it) on the home screen with a text, the text
    offer, and the received text."""
    from test_accessibility import axe_violations

    sender_page, sender_log = new_page(web_relay.url, bypass_csp=True)
    sender = ChromiumTab(sender_page, sender_log)
    fill(sender, "Text to send", TEXT)
    found = axe_violations(sender_page, "home with a text")
    link, _ = create_text_link(sender, TEXT)
    receiver_page, receiver_log = new_page(link, bypass_csp=True)
    receiver = ChromiumTab(receiver_page, receiver_log)
    wait_for(
        receiver,
        f"(name) => Boolean(({BUTTON})(name))",
        "Show text",
        timeout=READY_S,
        what="the offer's Show text button never showed",
    )
    found += axe_violations(receiver_page, "text offer")
    receiver.click(BUTTON, "Show text")
    received_text(receiver)
    expect_text(receiver, "Received a text of")
    found += axe_violations(receiver_page, "text received")
    assert found == []


def test_a_received_right_to_left_text_reads_right_to_left(web_relay, person):
    arabic = "مرحبا، رمز الباب هو ٤٧١١"
    sender = person("chromium", web_relay.url)
    link, _ = create_text_link(sender, arabic)
    receiver = person("chromium", link)

    assert show_text(receiver, f"a text of {len(arabic.encode())} B") == arabic
    field = f"({LABELLED})('Received text')"
    assert receiver.call(f"() => getComputedStyle({field}).direction") == "rtl"


# A received text is shown so it cannot disguise itself (PROTOCOL.md §6.1.1, §9): a right-to-left
# override (U+202E) would show "invoice_fdp.exe" as "invoice_exe.pdf"; a zero-width space and an
# escape are invisible. Each is shown marked; emoji joined by U+200D stay as they are.
DISGUISED = "invoice_\u202efdp.exe\nzero\u200bwidth \x1b[31m family 👨\u200d👩\u200d👧"
SHOWN = "invoice_⟨U+202E⟩fdp.exe\nzero⟨U+200B⟩width ⟨U+001B⟩[31m family 👨\u200d👩\u200d👧"


@ENGINES
def test_a_received_text_shows_invisible_and_direction_characters_and_copy_keeps_them(
    engine, web_relay, person, processes
):
    cli = send(web_relay.url, extra=["--text", DISGUISED])
    processes.append(cli)
    receiver = person(engine, cli.wait_event("code")["link"])
    size = f"{len(DISGUISED.encode())} B"

    assert show_text(receiver, f"a text of {size}") == SHOWN
    expect_text(receiver, "shown as ⟨U+…⟩, so they cannot disguise it")
    described = receiver.call(
        f"""() => document.getElementById(
             ({LABELLED})("Received text").getAttribute("aria-describedby")).textContent"""
    )
    assert "Copy copies the text exactly as sent" in described

    receiver.click(
        f"""() => ({LABELLED})("Received text").closest(".row").querySelector("button")"""
    )
    expect_text(receiver, "Copied")
    if isinstance(receiver, ChromiumTab):  # the one engine whose clipboard a test may read
        assert receiver.call("() => navigator.clipboard.readText()") == DISGUISED
    assert cli.wait(CLI_TIMEOUT) == 0, cli.stderr


def test_the_whole_marked_text_copied_by_hand_is_the_exact_text(web_relay, person, processes):
    cli = send(web_relay.url, extra=["--text", DISGUISED])
    processes.append(cli)
    receiver = person("chromium", cli.wait_event("code")["link"])
    assert show_text(receiver, f"a text of {len(DISGUISED.encode())} B") == SHOWN
    field = f"({LABELLED})('Received text')"

    receiver.call(f"() => {{ {field}.focus(); {field}.select(); document.execCommand('copy'); }}")
    assert receiver.call("() => navigator.clipboard.readText()") == DISGUISED
    receiver.call(f"() => {{ {field}.setSelectionRange(0, 8); document.execCommand('copy'); }}")
    assert receiver.call("() => navigator.clipboard.readText()") == "invoice_"  # as shown
    assert cli.wait(CLI_TIMEOUT) == 0, cli.stderr


def test_a_plain_received_text_has_no_note_about_hidden_characters(web_relay, person, processes):
    cli = send(web_relay.url, extra=["--text", TEXT])
    processes.append(cli)
    receiver = person("chromium", cli.wait_event("code")["link"])
    assert show_text(receiver, f"a text of {TEXT_SIZE}") == TEXT
    assert receiver.call(
        "() => document.getElementById('received-text-marked').closest('[hidden]') !== null"
    )
    assert cli.wait(CLI_TIMEOUT) == 0, cli.stderr
