"""One protocol, two runtimes: the page and the `hushdrop` CLI (real processes) transfer both ways.

The page runs the core under Pyodide with WebCrypto, the CLI under CPython with pyca; the links and
codes each prints are what the other accepts.
"""

from __future__ import annotations

import hashlib
import subprocess
import threading
import zipfile

from pagetools import (
    PYTHON_READY_TIMEOUT,
    STEP_TIMEOUT,
    TRANSFER_TIMEOUT,
    MiB,
    accept_download,
    create_link,
    expect_received,
    expect_sent,
    random_file,
    sha256_file,
)
from playwright.sync_api import expect

from tests.integration.cli import CliProcess, FlippingProxy, receive, send

CLI_TIMEOUT = 240  # s


def test_a_page_shared_by_its_link_refuses_the_short_code(web_relay, new_page, tmp_path, processes):
    # The typed code has 33 bits, the link 128: until the person asks for the short code the
    # sender accepts only the link (PROTOCOL.md §2), so the typed code is not a weaker way in.
    source = random_file(tmp_path / "secret.pdf", 1000)
    sender, _ = new_page(web_relay.url)
    create_link(sender, files=[source])
    unshown = sender.locator("code.code").text_content()  # in the page, never shown
    out = tmp_path / "out"
    out.mkdir()
    cli = receive(web_relay.url, unshown, out, extra=["--yes"])
    processes.append(cli)
    assert cli.wait(CLI_TIMEOUT) == 3, cli.stderr
    assert "only its link" in cli.error()["message"]
    expect(sender.get_by_role("alert")).to_contain_text("short code", timeout=STEP_TIMEOUT)
    assert list(out.iterdir()) == []


def test_page_sends_to_the_cli(web_relay, new_page, tmp_path, processes):
    sources = [
        random_file(tmp_path / "src" / "video.bin", 20 * MiB + 3),
        random_file(tmp_path / "src" / "readme.txt", 777),
    ]
    sender, _ = new_page(web_relay.url)
    _, code = create_link(sender, files=sources, short_code=True)
    out = tmp_path / "out"
    out.mkdir()

    # As a user runs it, direct connections on: the page's WebRTC offer is declined.
    cli = receive(web_relay.url, code, out, extra=["--yes"], direct=True)
    processes.append(cli)
    assert cli.wait(CLI_TIMEOUT) == 0, cli.stderr
    assert cli.wait_event("done")["route"] == "relay"

    for source in sources:
        assert sha256_file(out / source.name) == sha256_file(source)
    expect_sent(sender, "2 files")
    page_sas = sender.get_by_label("Verification code").inner_text()
    assert cli.wait_event("verification")["sas"] == page_sas


def test_page_link_with_password_works_in_the_cli(web_relay, new_page, tmp_path, processes):
    source = random_file(tmp_path / "tax.pdf", 100_000)
    sender, _ = new_page(web_relay.url)
    link, _ = create_link(sender, files=[source], password="s3cret")
    out = tmp_path / "out"
    out.mkdir()

    cli = receive(web_relay.url, link, out, extra=["--yes"], env={"HUSHDROP_PASSWORD": "s3cret"})
    processes.append(cli)
    assert cli.wait(CLI_TIMEOUT) == 0, cli.stderr
    assert sha256_file(out / "tax.pdf") == sha256_file(source)
    expect_sent(sender, "1 file")


def test_cli_sends_to_the_page(web_relay, new_page, tmp_path, processes):
    source = random_file(tmp_path / "archive.tar", 30 * MiB + 11)
    # As a user runs it: the CLI offers direct TCP hints (PROTOCOL.md §8.5); the page answers
    # that it makes no such connections, and the relay carries the file.
    cli = send(web_relay.url, source, direct=True)
    processes.append(cli)
    link = cli.wait_event("code")["link"]
    assert link.startswith(f"{web_relay.url}/#")

    receiver, _ = new_page(link)
    download = accept_download(receiver, tmp_path / "saved.tar")

    assert download.suggested_filename == "archive.tar"
    assert sha256_file(tmp_path / "saved.tar") == sha256_file(source)
    expect_received(receiver, "1 file, 30.0 MiB")
    assert cli.wait(CLI_TIMEOUT) == 0, cli.stderr
    assert (
        cli.wait_event("verification")["sas"]
        == receiver.get_by_label("Verification code").inner_text()
    )
    assert [e["route"] for e in cli.events if e["event"] == "route"] == ["relay"]
    assert cli.wait_event("done")["route"] == "relay"


def test_cli_sends_a_folder_to_the_page_as_a_zip(web_relay, new_page, tmp_path, processes):
    folder = tmp_path / "project"
    files = [
        random_file(folder / "src" / "main.c", 4321),
        random_file(folder / "data.bin", 3 * MiB),
    ]
    (folder / "build").mkdir()  # empty: must survive as a directory entry
    cli = send(web_relay.url, folder)
    processes.append(cli)
    code = cli.wait_event("code")["code"]

    receiver, _ = new_page(web_relay.url)
    receiver.get_by_label("Code").fill(code)
    receiver.get_by_role("button", name="Receive").click()
    expect(receiver.get_by_text("2 files").first).to_be_visible(timeout=STEP_TIMEOUT)
    download = accept_download(receiver, tmp_path / "saved.zip")

    assert download.suggested_filename == "project.zip"
    with zipfile.ZipFile(tmp_path / "saved.zip") as archive:
        names = {info.filename for info in archive.infolist()}
        hashes = {
            name: hashlib.sha256(archive.read(name)).hexdigest()
            for name in names
            if not name.endswith("/")
        }
    assert "project/build/" in names
    assert hashes == {f"project/{p.relative_to(folder).as_posix()}": sha256_file(p) for p in files}
    assert cli.wait(CLI_TIMEOUT) == 0, cli.stderr


def test_tampered_data_fails_the_download_and_alerts(web_relay, new_page, tmp_path, processes):
    """A byte flipped between relay and page: authentication fails mid-file, the page errors the
    download stream (the browser marks it failed) and says why; the CLI sender is told."""
    source = random_file(tmp_path / "data.bin", 30 * MiB)
    # Past every static file the page loads through the proxy (each on its own connection), so
    # only the WebSocket's data is touched.
    proxy = FlippingProxy(web_relay.port, offset=12 * MiB + 4321, direction="to_client")
    try:
        cli = send(web_relay.url, source)
        processes.append(cli)
        fragment = cli.wait_event("code")["link"].split("#", 1)[1]
        receiver, _ = new_page(f"{proxy.url}/#{fragment}")
        button = receiver.get_by_role("button", name="Download")
        expect(button).to_be_visible(timeout=PYTHON_READY_TIMEOUT)
        with receiver.expect_download(timeout=STEP_TIMEOUT) as info:
            button.click()

        expect(receiver.get_by_role("alert")).to_contain_text(
            "failed authentication", timeout=TRANSFER_TIMEOUT
        )
        assert proxy.flipped.is_set()
        assert info.value.failure() is not None
        assert cli.wait(CLI_TIMEOUT) != 0
    finally:
        proxy.close()


def test_cli_streams_standard_input_to_the_page(web_relay, new_page, tmp_path, processes):
    # `… | hushdrop send -`: a file whose size nobody knows until it ends (PROTOCOL.md §7.2).
    source = random_file(tmp_path / "archive.tar", 6 * MiB + 11)
    data = source.read_bytes()
    cli = CliProcess(
        ["send", "-", "--name", "archive.tar", "--relay", web_relay.url], stdin=subprocess.PIPE
    )
    processes.append(cli)
    half, rest = 4 * MiB, threading.Event()

    def feed() -> None:  # a pipe blocks its writer until the sender reads (after Download)
        cli.proc.stdin.write(data[:half])
        cli.proc.stdin.flush()
        rest.wait(TRANSFER_TIMEOUT / 1000)
        cli.proc.stdin.write(data[half:])
        cli.proc.stdin.close()

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    link = cli.wait_event("code")["link"]

    receiver, _ = new_page(link)
    expect(receiver.locator("[data-part=offer-list]")).to_contain_text(
        "size unknown", timeout=PYTHON_READY_TIMEOUT
    )
    button = receiver.get_by_role("button", name="Download")
    with receiver.expect_download(timeout=STEP_TIMEOUT) as info:
        button.click()
    # While the pipe holds back the rest: bytes and speed, no total, an indeterminate bar.
    progress = receiver.locator("[data-part=progress-text]:visible")
    expect(progress).to_contain_text("MiB so far", timeout=TRANSFER_TIMEOUT)
    expect(progress).not_to_contain_text(" of ")
    assert receiver.locator("progress[data-part=progress]:visible").get_attribute("value") is None
    rest.set()

    download = info.value
    download.save_as(tmp_path / "saved.tar")
    assert download.failure() is None, download.failure()
    assert download.suggested_filename == "archive.tar"
    assert sha256_file(tmp_path / "saved.tar") == sha256_file(source)
    expect_received(receiver, "1 file, 6.0 MiB")
    assert cli.wait(CLI_TIMEOUT) == 0, cli.stderr
    assert cli.wait_event("done")["bytes"] == len(data)
