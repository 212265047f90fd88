"""The page in Firefox and in WebKit (Safari's engine), driven through WebDriver: the crypto
self-test, page → CLI, CLI → page and page → page, each against a real relay and real CLI
processes. Every download is the browser's own, checked by SHA-256.
"""

from __future__ import annotations

import hashlib
import re
import zipfile

import pytest
from enginetools import (
    READY_S,
    Tab,
    accept_download,
    create_link,
    expect_received,
    expect_sent,
    expect_text,
    shows_button,
    verification_code,
    wait_for,
    wait_for_offer,
    wait_until_ready,
)
from pagetools import DIRECT, RELAYED, MiB, random_file, sha256_file

from tests.integration.cli import CliProcess, receive, send
from tests.integration.proxy import CuttableProxy

CLI_TIMEOUT = 240  # s
SLOW_RATE = 0.4 * MiB  # bytes/s: 16 MiB take 40 s
ENGINES = pytest.mark.parametrize("engine", ["firefox", "webkit"])
# The route two pages of one engine take: MiniBrowser ships with WebRTC turned off, so WebKit pages
# go through the relay (the page checks for RTCPeerConnection, and falls back without asking).
ROUTE = {"firefox": DIRECT, "webkit": RELAYED}


# Known-answer failures that come from the engine, not from Hushdrop, until the WebCrypto backend
# works around them (web/hushdrop/crypto/webcrypto.py `x25519`):
# - Firefox refuses X25519 public keys whose top bit is set; RFC 7748 §5 says to mask it.
# - WebKitGTK refuses a PKCS #8 X25519 private key whose first byte is zero; clamping ignores
#   that byte's three low bits, so setting one gives the same result.
def self_test_results(tab: Tab) -> tuple[str, list[str]]:
    return wait_for(
        tab,
        """() => document.body.dataset.selftest && [
          document.getElementById("summary").textContent,
          [...document.querySelectorAll("#results tr")]
            .filter((row) => row.textContent.includes("FAIL"))
            .map((row) => [...row.cells].map((cell) => cell.textContent).join(" ")),
        ]""",
        timeout=READY_S,
        what="the self-test never finished",
    )


@ENGINES
def test_all_known_answer_vectors_pass_with_webcrypto(engine, web_relay, open_tab):
    tab = open_tab(engine, f"{web_relay.url}/selftest.html")
    summary, failures = self_test_results(tab)
    passed, failed = map(int, re.findall(r"\d+", summary))
    assert passed + failed >= 150, f"too few known-answer tests ran: {summary}"
    assert failures == [] and failed == 0, failures


@ENGINES
def test_pyscript_runs_the_engine_in_a_worker_and_the_page_loads_no_python(
    engine, web_relay, open_tab
):
    tab = open_tab(engine, web_relay.url)
    wait_until_ready(tab)
    # PyScript's worker for index.html's <script type="py" worker name="engine"> ran engine.py.
    assert tab.call(
        """async () => {
          const script = document.querySelector('script[type="py"][worker][name="engine"]');
          return (await script.xworker.ready) instanceof Worker;
        }"""
    )
    fetched = tab.call("() => performance.getEntriesByType('resource').map((e) => e.name)")
    assert any("/vendor/pyscript/" in url for url in fetched), fetched
    runtime = ("pyodide.mjs", "pyodide.asm.", "python_stdlib.zip", "pyodide-lock.json", "/py/")
    assert not [url for url in fetched if any(part in url for part in runtime)], fetched
    assert tab.call("() => typeof globalThis.loadPyodide") == "undefined"


@ENGINES
def test_page_sends_to_the_cli(engine, web_relay, open_tab, tmp_path, processes):
    sources = [
        random_file(tmp_path / "src" / "video.bin", 12 * MiB + 3),
        random_file(tmp_path / "src" / "readme.txt", 777),
    ]
    sender = open_tab(engine, web_relay.url)
    _, code = create_link(sender, sources, short_code=True)
    out = tmp_path / "out"
    out.mkdir()

    cli = receive(web_relay.url, code, out, extra=["--yes"])
    processes.append(cli)
    assert cli.wait(CLI_TIMEOUT) == 0, cli.stderr

    for source in sources:
        assert sha256_file(out / source.name) == sha256_file(source)
    expect_sent(sender, "2 files")
    assert cli.wait_event("verification")["sas"] == verification_code(sender)


@ENGINES
def test_cli_sends_to_the_page_for_longer_than_a_worker_may_idle(
    engine, web_relay, open_tab, tmp_path, processes
):
    """The download streams through the page's service worker, which browsers stop when it has no
    event for 30 s (Firefox then ends the download early, as if complete). The CLI sends through
    a slow network, so the download lasts longer than that: the page's keep-alive must hold."""
    source = random_file(tmp_path / "archive.tar", 16 * MiB + 11)
    slow = CuttableProxy(web_relay.port, rate=SLOW_RATE)
    try:
        cli = send(slow.url, source)
        processes.append(cli)
        link = cli.wait_event("code")["link"].replace(slow.url, web_relay.url)

        receiver = open_tab(engine, link)
        download = accept_download(receiver)

        assert download.suggested_filename == "archive.tar"
        assert sha256_file(download.path) == sha256_file(source)
        expect_received(receiver, "1 file, 16.0 MiB")
        assert cli.wait(CLI_TIMEOUT) == 0, cli.stderr
        assert cli.wait_event("verification")["sas"] == verification_code(receiver)
    finally:
        slow.close()


@ENGINES
def test_page_to_page_several_files_arrive_as_one_zip(engine, web_relay, open_tab, tmp_path):
    sources = [
        random_file(tmp_path / "src" / "photo.jpg", 10 * MiB + 17),
        random_file(tmp_path / "src" / "notes ü.txt", 1234),
    ]
    sender = open_tab(engine, web_relay.url)
    link, _ = create_link(sender, sources)
    receiver = open_tab(engine, link)
    assert verification_code(receiver) == verification_code(sender)
    wait_for_offer(receiver)
    # No showSaveFilePicker in these engines: only the streamed download is offered.
    assert not shows_button(receiver, "Save as…")

    download = accept_download(receiver)

    room = link.split("#")[1][:6]
    assert download.suggested_filename == f"hushdrop-{room}.zip"
    with zipfile.ZipFile(download.path) as archive:
        assert archive.testzip() is None
        received = {n: hashlib.sha256(archive.read(n)).hexdigest() for n in archive.namelist()}
    assert received == {source.name: sha256_file(source) for source in sources}
    expect_sent(sender, "2 files")
    for tab in (sender, receiver):
        expect_text(tab, ROUTE[engine])


@ENGINES
def test_cli_streams_standard_input_to_the_page(engine, web_relay, open_tab, tmp_path, processes):
    """`… | hushdrop send -`: a size known only at the end (PROTOCOL.md §7.2); the download
    has no Content-Length. (Chromium: test_interop, which also watches the progress.)"""
    source = random_file(tmp_path / "archive.tar", 3 * MiB + 5)
    with open(source, "rb") as stdin:
        cli = CliProcess(
            ["send", "-", "--name", "archive.tar", "--relay", web_relay.url], stdin=stdin
        )
    processes.append(cli)
    receiver = open_tab(engine, cli.wait_event("code")["link"])
    wait_for_offer(receiver)
    expect_text(receiver, "size unknown")
    download = accept_download(receiver)

    assert download.suggested_filename == "archive.tar"
    assert sha256_file(download.path) == sha256_file(source)
    expect_received(receiver, "1 file, 3.0 MiB")
    assert cli.wait(CLI_TIMEOUT) == 0, cli.stderr
