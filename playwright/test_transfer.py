"""Page → page transfers in two browser contexts (two people) through a real relay process.

Every download goes through the service worker's streamed response, is saved with Playwright and
compared by SHA-256 with what was sent.
"""

from __future__ import annotations

import contextlib
import re
import zipfile
from pathlib import Path

from pagetools import (
    STEP_TIMEOUT,
    TRANSFER_TIMEOUT,
    WRONG_CODE,
    MiB,
    accept_download,
    create_link,
    expect_received,
    expect_sent,
    random_file,
    same_verification_code,
    sha256_file,
)
from playwright.sync_api import expect

from tests.integration.cli import receive
from tests.integration.test_cli import EXIT_CONNECTION

CLI_TIMEOUT = 240  # s


def zip_hashes(path: Path) -> dict[str, str]:
    import hashlib

    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        return {
            info.filename: hashlib.sha256(archive.read(info)).hexdigest()
            for info in archive.infolist()
            if not info.is_dir()
        }


def test_50_mib_file_page_to_page(web_relay, new_page, tmp_path):
    source = random_file(tmp_path / "random.bin", 50 * MiB)
    sender, sender_log = new_page(web_relay.url)
    link, _ = create_link(sender, files=[source])
    receiver, receiver_log = new_page(link)

    same_verification_code(sender, receiver)
    expect(receiver.get_by_text("random.bin", exact=True)).to_be_visible()
    download = accept_download(receiver, tmp_path / "saved.bin")

    assert download.suggested_filename == "random.bin"
    assert sha256_file(tmp_path / "saved.bin") == sha256_file(source)
    expect_sent(sender, "1 file, 50.0 MiB")
    expect_received(receiver, "1 file, 50.0 MiB")
    # The secret left the address bar once the page read it.
    assert "#" not in receiver.url
    assert not [line for line in sender_log.console + receiver_log.console if "pageerror" in line]


def test_password_protected_link(web_relay, new_page, tmp_path):
    source = random_file(tmp_path / "secret.pdf", 300_000)
    sender, _ = new_page(web_relay.url)
    link, _ = create_link(sender, files=[source], password="correct horse ü")
    assert link.endswith(".pw")
    receiver, _ = new_page(link)

    password = receiver.get_by_label("Password")
    expect(password).to_be_visible(timeout=STEP_TIMEOUT)
    password.fill("correct horse ü")
    password.press("Enter")

    same_verification_code(sender, receiver)
    accept_download(receiver, tmp_path / "saved.pdf")
    assert sha256_file(tmp_path / "saved.pdf") == sha256_file(source)
    expect_sent(sender, "1 file")


def test_wrong_password_alerts_both_pages_and_downloads_nothing(web_relay, new_page, tmp_path):
    source = random_file(tmp_path / "secret.txt", 10_000)
    sender, _ = new_page(web_relay.url)
    link, _ = create_link(sender, files=[source], password="right")
    receiver, _ = new_page(link)
    downloads = []
    receiver.on("download", lambda download: downloads.append(download))

    password = receiver.get_by_label("Password")
    expect(password).to_be_visible(timeout=STEP_TIMEOUT)
    password.fill("wrong")
    password.press("Enter")

    expect(receiver.get_by_role("alert")).to_contain_text(WRONG_CODE, timeout=STEP_TIMEOUT)
    expect(sender.get_by_role("alert")).to_contain_text(WRONG_CODE, timeout=STEP_TIMEOUT)
    expect(receiver.get_by_role("button", name="Download")).to_have_count(0)
    expect(receiver.get_by_label("Verification code")).to_be_hidden()
    assert downloads == []


def test_several_files_arrive_as_one_zip(web_relay, new_page, tmp_path):
    sources = [
        random_file(tmp_path / "src" / "photo.jpg", 3 * MiB + 17),
        random_file(tmp_path / "src" / "notes ü.txt", 1234),
        random_file(tmp_path / "src" / "empty.dat", 0),
    ]
    sender, _ = new_page(web_relay.url)
    link, _ = create_link(sender, files=sources)
    receiver, _ = new_page(link)

    expect(receiver.get_by_text("3 files", exact=False).first).to_be_visible(timeout=STEP_TIMEOUT)
    download = accept_download(receiver, tmp_path / "saved.zip")

    room = link.split("#")[1][:6]
    assert download.suggested_filename == f"hushdrop-{room}.zip"
    assert zip_hashes(tmp_path / "saved.zip") == {p.name: sha256_file(p) for p in sources}
    expect_sent(sender, "3 files")
    expect_received(receiver, "3 files")


def test_folder_arrives_as_a_zip_with_its_relative_paths(web_relay, new_page, tmp_path):
    folder = tmp_path / "holiday"
    files = [
        random_file(folder / "a.bin", 2 * MiB),
        random_file(folder / "day 1" / "b.txt", 100),
        random_file(folder / "day 1" / "deeper" / "c.dat", 70_000),
    ]
    sender, _ = new_page(web_relay.url)
    link, _ = create_link(sender, folder=folder)
    receiver, _ = new_page(link)

    download = accept_download(receiver, tmp_path / "saved.zip")

    assert download.suggested_filename == "holiday.zip"
    expected = {f"holiday/{p.relative_to(folder).as_posix()}": sha256_file(p) for p in files}
    assert zip_hashes(tmp_path / "saved.zip") == expected
    with zipfile.ZipFile(tmp_path / "saved.zip") as archive:
        dirs = {info.filename for info in archive.infolist() if info.is_dir()}
    assert {"holiday/", "holiday/day 1/", "holiday/day 1/deeper/"} <= dirs
    expect_sent(sender, "3 files")


def test_typed_code_on_the_home_page(web_relay, new_page, tmp_path):
    source = random_file(tmp_path / "report.pdf", 2 * MiB + 5)
    sender, _ = new_page(web_relay.url)
    _, code = create_link(sender, files=[source], short_code=True)
    assert re.fullmatch(r"\d{6}(-[a-z]+){3}", code)
    receiver, _ = new_page(web_relay.url)

    field = receiver.get_by_label("Code")
    field.fill("not a code")
    receiver.get_by_role("button", name="Receive").click()
    expect(receiver.get_by_role("alert")).to_contain_text("6-digit", timeout=STEP_TIMEOUT)

    # Upper case and spaces instead of dashes still work (PROTOCOL.md §2).
    field.fill(code.upper().replace("-", " "))
    field.press("Enter")
    same_verification_code(sender, receiver)
    expect(receiver.get_by_role("alert")).to_have_count(0)  # the earlier error was cleared
    accept_download(receiver, tmp_path / "saved.pdf")
    assert sha256_file(tmp_path / "saved.pdf") == sha256_file(source)
    expect_sent(sender, "1 file")


def test_receiver_closing_the_tab_alerts_the_sender(web_relay, new_page, tmp_path):
    source = random_file(tmp_path / "big.bin", 200 * MiB)
    sender, _ = new_page(web_relay.url)
    link, _ = create_link(sender, files=[source])
    receiver, _ = new_page(link)
    button = receiver.get_by_role("button", name="Download")
    expect(button).to_be_visible(timeout=STEP_TIMEOUT)
    with receiver.expect_download(timeout=STEP_TIMEOUT) as info:
        button.click()
    # Some data moved (at least 1 MiB), then the receiver's tab goes away.
    expect(sender.get_by_text(re.compile(r"^[1-9][\d.]* MiB of 200\.0 MiB"))).to_be_visible(
        timeout=STEP_TIMEOUT
    )
    receiver.close()

    # A tab busy with the transfer may close without a goodbye: then the sender first waits
    # (resume window) for a lost connection to come back.
    expect(sender.get_by_role("alert")).to_contain_text(
        re.compile("receiver closed the page|receiver did not come back"), timeout=STEP_TIMEOUT
    )
    expect(sender.get_by_text("Sent 1 file")).to_have_count(0)
    # The half-done download is failed by the service worker, not left "in progress".
    assert info.value.failure() is not None


def test_sender_leaving_fails_the_download(web_relay, new_page, tmp_path):
    source = random_file(tmp_path / "big.bin", 200 * MiB)
    sender, _ = new_page(web_relay.url)
    link, _ = create_link(sender, files=[source])
    receiver, _ = new_page(link)
    button = receiver.get_by_role("button", name="Download")
    expect(button).to_be_visible(timeout=STEP_TIMEOUT)
    with receiver.expect_download(timeout=STEP_TIMEOUT) as info:
        button.click()
    expect(receiver.get_by_text(re.compile(r"^[1-9][\d.]* MiB of 200\.0 MiB"))).to_be_visible(
        timeout=STEP_TIMEOUT
    )
    sender.close()

    expect(receiver.get_by_role("alert")).to_contain_text(
        re.compile("sender closed the page|sender did not come back"), timeout=STEP_TIMEOUT
    )
    # The browser marks the download failed: nothing is saved under its final name.
    assert info.value.failure() is not None


def test_sender_cancel_tells_the_receiver(web_relay, new_page, tmp_path):
    source = random_file(tmp_path / "file.bin", 1000)
    sender, _ = new_page(web_relay.url)
    link, _ = create_link(sender, files=[source])
    receiver, _ = new_page(link)
    expect(receiver.get_by_role("button", name="Download")).to_be_visible(timeout=STEP_TIMEOUT)

    sender.get_by_role("button", name="Cancel").click()

    expect(sender.get_by_role("status").filter(has_text="cancelled")).to_be_visible()
    expect(receiver.get_by_role("alert")).to_contain_text(
        "sender cancelled", timeout=TRANSFER_TIMEOUT
    )
    # Back to the start, with the selection kept for another try.
    sender.get_by_role("button", name="Send more files").click()
    expect(sender.get_by_text("file.bin")).to_be_visible()


def test_typed_code_when_the_sender_set_a_password(web_relay, new_page, tmp_path):
    """A typed code does not say a password is needed: the session asks (PasswordRequired)."""
    source = random_file(tmp_path / "plan.txt", 4096)
    sender, _ = new_page(web_relay.url)
    _, code = create_link(sender, files=[source], password="pw-123", short_code=True)
    receiver, _ = new_page(web_relay.url)
    receiver.get_by_label("Code").fill(code)
    receiver.get_by_role("button", name="Receive").click()

    password = receiver.get_by_label("Password")
    expect(password).to_be_visible(timeout=STEP_TIMEOUT)
    password.fill("pw-123")
    password.press("Enter")
    same_verification_code(sender, receiver)
    accept_download(receiver, tmp_path / "saved.txt")
    assert sha256_file(tmp_path / "saved.txt") == sha256_file(source)
    expect_sent(sender, "1 file")


def test_receiver_declines(web_relay, new_page, tmp_path):
    source = random_file(tmp_path / "offer.bin", 100)
    sender, _ = new_page(web_relay.url)
    link, _ = create_link(sender, files=[source])
    receiver, _ = new_page(link)
    decline = receiver.get_by_role("button", name="Decline")
    expect(decline).to_be_visible(timeout=STEP_TIMEOUT)
    decline.click()

    expect(receiver.get_by_text("You declined the files")).to_be_visible()
    expect(sender.get_by_role("alert")).to_contain_text("declined", timeout=STEP_TIMEOUT)


def test_dropped_files_join_the_selection(web_relay, new_page):
    page, _ = new_page(web_relay.url)
    transfer = page.evaluate_handle(
        """() => {
            const data = new DataTransfer();
            data.items.add(new File(["hello"], "dropped.txt"));
            data.items.add(new File(["world!"], "second.txt"));
            return data;
        }"""
    )
    page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})
    expect(page.get_by_text("2 files, 11 B")).to_be_visible()
    expect(page.get_by_text("dropped.txt")).to_be_visible()
    # The same name dropped again is kept apart rather than colliding at the receiver.
    page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})
    expect(page.get_by_text("dropped (2).txt")).to_be_visible()


def test_without_a_service_worker_small_downloads_still_work(web_relay, new_page, tmp_path):
    """Some private windows refuse service workers: the page then assembles the download in
    memory (only for transfers small enough) and says so."""
    source = random_file(tmp_path / "small.bin", 3 * MiB)
    sender, _ = new_page(web_relay.url)
    link, _ = create_link(sender, files=[source])
    receiver, _ = new_page(link, service_workers="block")
    expect(receiver.get_by_text("put together in memory")).to_be_visible(timeout=STEP_TIMEOUT)
    download = accept_download(receiver, tmp_path / "saved.bin")
    assert download.suggested_filename == "small.bin"
    assert sha256_file(tmp_path / "saved.bin") == sha256_file(source)
    expect_sent(sender, "1 file")


def test_a_single_empty_file_page_to_page(web_relay, new_page, tmp_path):
    source = tmp_path / "empty.txt"
    source.write_bytes(b"")
    sender, _ = new_page(web_relay.url)
    link, _ = create_link(sender, files=[source])
    receiver, _ = new_page(link)
    accept_download(receiver, tmp_path / "saved.txt")
    assert (tmp_path / "saved.txt").read_bytes() == b""
    expect_received(receiver, "1 file, 0 B")
    expect_sent(sender, "1 file, 0 B")
    expect(sender.get_by_role("alert")).to_have_count(0)  # no "receiver closed the page"
    expect(sender.get_by_text(re.compile("connection lost", re.IGNORECASE))).to_have_count(0)


def test_a_sender_that_vanishes_shows_the_receiver_a_countdown(web_relay, new_page, tmp_path):
    source = random_file(tmp_path / "big.bin", 200 * MiB)
    sender, _ = new_page(web_relay.url)
    link, _ = create_link(sender, files=[source])
    receiver, _ = new_page(link)
    button = receiver.get_by_role("button", name="Download")
    expect(button).to_be_visible(timeout=STEP_TIMEOUT)
    with receiver.expect_download(timeout=STEP_TIMEOUT):
        button.click()
    expect(receiver.get_by_text(re.compile(r"^[1-9][\d.]* MiB of 200\.0 MiB"))).to_be_visible(
        timeout=STEP_TIMEOUT
    )
    # The sender's tab crashes: no goodbye, so the receiver waits for it to come back.
    with contextlib.suppress(Exception):
        sender.goto("chrome://crash", timeout=5000)
    countdown = re.compile(r"waiting for the sender to come back \(\d:\d\d left\)")
    expect(receiver.get_by_text(countdown)).to_be_visible(timeout=STEP_TIMEOUT)
    # No frozen speed or time left while nothing moves; the tab title says what is going on.
    expect(receiver.get_by_text(re.compile(r"MiB of 200\.0 MiB · paused$"))).to_be_visible()
    assert receiver.title() == "Reconnecting — Hushdrop"
    expect(receiver.get_by_role("alert")).to_contain_text("did not come back", timeout=STEP_TIMEOUT)
    expect(receiver.get_by_role("heading", name="Receiving stopped")).to_be_visible()
    assert receiver.title() == "Stopped — Hushdrop"


def test_a_page_going_away_closes_its_relay_connection_with_a_goodbye(
    web_relay, new_page, tmp_path, processes
):
    source = random_file(tmp_path / "a.bin", 1000)
    sender, log = new_page(web_relay.url)
    link, _ = create_link(sender, files=[source])

    # What the browser fires as the tab goes away (the page stays here, to be looked at): the
    # page closes its connection with a code a script may send, so the link is gone at once.
    sender.evaluate("() => window.dispatchEvent(new PageTransitionEvent('pagehide'))")
    expect(sender.get_by_role("alert")).not_to_be_empty(timeout=STEP_TIMEOUT)

    cli = receive(web_relay.url, link, tmp_path, extra=["--yes"])
    processes.append(cli)
    assert cli.wait(CLI_TIMEOUT) == EXIT_CONNECTION, cli.stderr
    assert cli.error()["message"].startswith("No transfer is waiting")
    assert "InvalidAccessError" not in str(log)
