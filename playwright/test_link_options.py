"""Link options on the page (PROTOCOL.md §3.1, §3.2): the sender chooses how long the link lasts,
among the lifetimes the relay allows, and how many receivers may use it; each receiver gets its
own row with its own verification code. Chromium via Playwright; Firefox and WebKit through
WebDriver (enginetools), each with real relay and CLI processes."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from enginetools import Tab, describe, fill, wait_for
from enginetools import create_link as create_link_in_tab
from enginetools import expect_text as expect_text_in_tab
from pagetools import (
    PYTHON_READY_TIMEOUT,
    STEP_TIMEOUT,
    TRANSFER_TIMEOUT,
    MiB,
    accept_download,
    create_link,
    random_file,
    sha256_file,
    wait_until_ready,
)
from playwright.sync_api import Page, expect
from test_text import clean_env, create_text_link
from test_text import person as person  # a fixture

from tests.conftest import RelayProcess
from tests.integration.cli import receive
from tests.integration.test_cli import EXIT_CONNECTION, EXIT_WRONG_CODE

CLI_TIMEOUT = 240  # s
SAS = re.compile(r"^[0-9A-F]{4}-[0-9A-F]{4}$")


def row_code(page: Page, number: int) -> str:
    shown = page.get_by_label(f"Verification code of receiver {number}", exact=True)
    expect(shown).to_have_text(SAS, timeout=PYTHON_READY_TIMEOUT + STEP_TIMEOUT)
    return shown.inner_text()


def choose_receivers(page: Page, count: int) -> None:
    page.get_by_label("Receivers", exact=True).select_option(str(count))


def test_a_link_for_two_receivers_shows_a_row_with_its_own_code_for_each(
    web_relay, new_page, tmp_path, processes
):
    source = random_file(tmp_path / "report.bin", 6 * MiB + 5)
    sender, _ = new_page(web_relay.url)
    sender.get_by_label("Choose files").set_input_files([source])
    wait_until_ready(sender)
    choose_receivers(sender, 2)
    link, _ = create_link(sender)
    expect(sender.locator("[data-part=hint]")).to_contain_text("works for 2 receivers")

    # The first receiver is a page, the second the CLI: each runs its own key exchange.
    receiver, _ = new_page(link)
    download = accept_download(receiver, tmp_path / "page-copy.bin")
    assert download.suggested_filename == "report.bin"
    assert sha256_file(tmp_path / "page-copy.bin") == sha256_file(source)
    page_code = receiver.get_by_label("Verification code", exact=True).inner_text()

    out = tmp_path / "out"
    out.mkdir()
    cli = receive(web_relay.url, link, out, extra=["--yes"])
    processes.append(cli)
    assert cli.wait(CLI_TIMEOUT) == 0, cli.stderr
    assert sha256_file(out / "report.bin") == sha256_file(source)

    rows = sender.get_by_role("list", name="Receivers").get_by_role("listitem")
    expect(rows).to_have_count(2)
    assert row_code(sender, 1) == page_code
    assert row_code(sender, 2) == cli.wait_event("verification")["sas"]
    assert page_code != row_code(sender, 2)
    done = sender.locator("[data-part=done]")
    expect(done).to_contain_text("to 2 receivers", timeout=TRANSFER_TIMEOUT)
    for number in (1, 2):
        expect(rows.nth(number - 1)).to_contain_text("Done")
    # Used by all its receivers: the link is gone.
    expect(sender.get_by_label("Share link")).to_be_hidden()
    # The rows' states are messages like the rest: another language repaints them in place.
    sender.get_by_label(re.compile(r"\bLanguage\b")).select_option("de")
    states = sender.locator(".receiver-row .receiver-state")
    expect(states).to_have_text(["Fertig: Jede Datei wurde geprüft."] * 2)


@pytest.fixture
def short_lived_relay(site: Path) -> Iterator[RelayProcess]:
    """A relay whose default link lifetime is 3 s, and which allows up to 10 minutes."""
    process = RelayProcess(
        ["--site-dir", str(site), "--room-ttl", "3", "--min-room-ttl", "1", "--max-room-ttl", "600"]
    )
    process.wait_ready()
    yield process
    process.stop()


def test_the_page_offers_only_the_lifetimes_the_relay_allows(short_lived_relay, new_page):
    sender, _ = new_page(short_lived_relay.url)
    wait_until_ready(sender)
    expiry = sender.get_by_label("Link expires after")
    expect(expiry.locator("option")).to_have_text(["3 seconds", "10 minutes"], timeout=STEP_TIMEOUT)
    expect(expiry).to_have_value("3")  # the relay's default, chosen


def test_the_lifetime_chosen_on_the_page_is_the_one_the_relay_enforces(
    short_lived_relay, new_page, tmp_path
):
    source = random_file(tmp_path / "a.bin", 1000)
    sender, _ = new_page(short_lived_relay.url)
    sender.get_by_label("Choose files").set_input_files([source])
    wait_until_ready(sender)
    expiry = sender.get_by_label("Link expires after")
    expect(expiry.locator("option")).to_have_count(2, timeout=STEP_TIMEOUT)
    expiry.select_option(label="10 minutes")
    create_link(sender)
    expect(sender.locator("[data-part=hint]")).to_contain_text("expires in 10 min")

    # Back home, the relay's 3 s default: the link expires on the relay, and the page says so.
    again, _ = new_page(short_lived_relay.url)
    again.get_by_label("Choose files").set_input_files([source])
    wait_until_ready(again)
    expect(again.get_by_label("Link expires after")).to_have_value("3", timeout=STEP_TIMEOUT)
    create_link(again)
    # Durations as Intl writes them in English ("3.0 sec", "10 min").
    expect(again.locator("[data-part=hint]")).to_contain_text("expires in 3.0 sec")
    expect(again.get_by_role("alert")).to_contain_text("expired", timeout=TRANSFER_TIMEOUT)
    # The one that asked for 10 minutes still waits for its receiver.
    expect(sender.get_by_label("Share link")).to_be_visible()


ENGINES = pytest.mark.parametrize("engine", ["firefox", "webkit"])


def tab_row_code(tab: Tab, number: int) -> str:
    return wait_for(
        tab,
        """(label) => {
          const el = [...document.querySelectorAll("[aria-label]")].find(
            (e) => e.getAttribute("aria-label") === label);
          const text = el ? el.textContent : "";
          return /^[0-9A-F]{4}-[0-9A-F]{4}$/.test(text) ? text : null;
        }""",
        f"Verification code of receiver {number}",
        timeout=STEP_TIMEOUT / 1000,
        what=f"no verification code for receiver {number}",
    )


@ENGINES
def test_two_cli_receivers_of_a_page_link_each_get_their_own_row(
    engine, web_relay, open_tab, tmp_path, processes
):
    source = random_file(tmp_path / "data.bin", 3 * MiB + 1)
    tab = open_tab(engine, web_relay.url)
    fill(tab, "Receivers", "2")
    link, _ = create_link_in_tab(tab, [source])
    clis = []
    for number in (1, 2):
        out = tmp_path / f"out{number}"
        out.mkdir()
        cli = receive(web_relay.url, link, out, extra=["--yes"])
        processes.append(cli)
        # One at a time, so that row N is this CLI's.
        code = cli.wait_event("verification", timeout=CLI_TIMEOUT)["sas"]
        assert tab_row_code(tab, number) == code
        clis.append((cli, out))
    for cli, out in clis:
        assert cli.wait(CLI_TIMEOUT) == 0, cli.stderr
        assert sha256_file(out / "data.bin") == sha256_file(source)
    expect_text_in_tab(tab, "to 2 receivers", TRANSFER_TIMEOUT / 1000)


def no_traceback(tab: Tab) -> None:
    """Nothing of Python's insides reached the page or its console."""
    assert "Traceback" not in tab.call("() => document.body.innerText"), describe(tab)
    assert not [line for line in tab.console if "Traceback" in line], describe(tab)


@pytest.mark.parametrize("engine", ["chromium", "firefox", "webkit"])
def test_a_wrong_guess_ends_a_link_for_two_receivers_in_its_stopped_state_without_a_traceback(
    engine, web_relay, person, tmp_path
):
    sender = person(engine, web_relay.url)
    fill(sender, "Receivers", "2")
    _, code = create_text_link(sender, "the door code is 4711", short=True)
    wrong = code.split("-")[0] + "-able-able-able"

    guess = subprocess.run(
        [
            sys.executable,
            "-m",
            "hushdrop.cli.main",
            "receive",
            wrong,
            "--yes",
            "--relay",
            web_relay.url,
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=clean_env(),
        cwd=tmp_path,
        timeout=CLI_TIMEOUT,
    )

    assert guess.returncode == EXIT_WRONG_CODE, guess.stderr
    expect_text_in_tab(sender, "The receiver's code or password is wrong", TRANSFER_TIMEOUT / 1000)
    expect_text_in_tab(sender, "Stopped")
    # The page is back at rest: what ran for the link has ended (and said whatever it had to).
    wait_for(
        sender,
        "() => !document.querySelector('[data-part=cancel]:not([hidden])')",
        timeout=STEP_TIMEOUT / 1000,
        what="the Cancel button stayed",
    )
    no_traceback(sender)


def test_close_link_keeps_what_was_delivered_and_says_so(web_relay, new_page, tmp_path, processes):
    sender, _ = new_page(web_relay.url)
    sender.get_by_label("Text to send").fill("the door code is 4711")
    wait_until_ready(sender)
    choose_receivers(sender, 3)
    link, _ = create_link(sender)

    first = receive(web_relay.url, link, tmp_path, extra=["--yes"])
    processes.append(first)
    assert first.wait(CLI_TIMEOUT) == 0, first.stderr
    row = sender.locator(".receiver-row .receiver-state")
    expect(row).to_have_text("Done: they received the text.", timeout=STEP_TIMEOUT)
    status = sender.locator("[data-part=status]")
    expect(status).to_have_text(
        "1 of 3 receivers done. The link stays open for the others until you close it."
    )

    sender.get_by_role("button", name="Close link").click()

    expect(sender.locator("[data-part=done]")).to_have_text(
        "Sent a text of 21 B to 1 receiver. Each verified every file.", timeout=STEP_TIMEOUT
    )
    expect(status).to_have_text("You closed the link: nobody else can use it.")
    expect(sender.get_by_label("Share link")).to_be_hidden()
    later = receive(web_relay.url, link, tmp_path, extra=["--yes"])
    processes.append(later)
    assert later.wait(CLI_TIMEOUT) == EXIT_CONNECTION
    assert later.error()["message"].startswith("No transfer is waiting")


def test_cancel_after_a_receiver_has_it_says_that_they_keep_it(
    web_relay, new_page, tmp_path, processes
):
    sender, _ = new_page(web_relay.url)
    sender.get_by_label("Text to send").fill("the door code is 4711")
    wait_until_ready(sender)
    choose_receivers(sender, 2)
    link, _ = create_link(sender)
    first = receive(web_relay.url, link, tmp_path, extra=["--yes"])
    processes.append(first)
    assert first.wait(CLI_TIMEOUT) == 0, first.stderr
    expect(sender.locator(".receiver-row .receiver-state")).to_have_text(
        "Done: they received the text.", timeout=STEP_TIMEOUT
    )

    sender.get_by_role("button", name="Cancel").click()

    expect(sender.locator("[data-part=status]")).to_have_text(
        "You cancelled the link. 1 receiver already had everything and keeps it.",
        timeout=STEP_TIMEOUT,
    )
