"""The deployments of README "Deployment" with a real page in Chromium: the site on a static host
apart from its relay, and the site and relay behind nginx (deploy/nginx/hushdrop.conf) and Caddy
(deploy/Caddyfile) over HTTPS.

The CLI on the other end trusts the test CA through SSL_CERT_FILE; Chromium trusts the test
certificate's key alone (`--ignore-certificate-errors-spki-list`; for Caddy, the key of the
certificate it made), in a browser of its own, so the page is a secure context with a valid
certificate as far as the page can tell.
"""

from __future__ import annotations

import ssl
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import PageLog, chromium_path
from pagetools import (
    CHROMIUM_FLAGS,
    STEP_TIMEOUT,
    accept_download,
    create_link,
    expect_received,
    expect_sent,
    random_file,
    same_verification_code,
    sha256_file,
    wait_until_ready,
)
from playwright.sync_api import Browser, expect

from tests.conftest import RelayProcess
from tests.deploy.proxies import Caddy, Nginx, free_port
from tests.deploy.static import StaticServer
from tests.deploy.tls import TestCA, spki_hash
from tests.integration.cli import receive, send

CLI_TIMEOUT = 240  # s


@pytest.fixture
def relay_process() -> Iterator[RelayProcess]:
    started: list[RelayProcess] = []

    def start(*args: str) -> RelayProcess:
        process = RelayProcess(list(args))
        started.append(process)
        process.wait_ready()
        return process

    yield start
    for process in started:
        process.stop()


def metrics(relay: RelayProcess) -> str:
    with urllib.request.urlopen(relay.url + "/metrics", timeout=10) as reply:
        return reply.read().decode()


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def test_a_site_on_a_static_host_works_with_its_relay_on_another_origin(
    relay_process, new_page, tmp_path: Path, processes
) -> None:
    import build_site  # web/build_site.py, on the path through conftest

    static_port = free_port()
    # The relay serves no site, and only the static host's pages may use it.
    relay = relay_process("--allowed-origins", f"http://127.0.0.1:{static_port}")
    site = build_site.build(tmp_path / "site", relay=relay.url)
    source = random_file(tmp_path / "src" / "plan.bin", 3 * 1024 * 1024 + 5)
    with StaticServer(site, static_port) as static:
        assert origin(static.url) != origin(relay.url)
        page, log = new_page(static.url + "/")
        policy = page.locator('meta[http-equiv="Content-Security-Policy"]')
        allowed = f"connect-src 'self' {relay.url} {relay.ws_url.removesuffix('/v1/ws')}"
        assert allowed in (policy.get_attribute("content") or "")
        link, _ = create_link(page, files=[source])
        assert link.startswith(static.url + "/#")
        out = tmp_path / "out"
        out.mkdir()
        # A link names the site; the relay behind it is given to the CLI with --relay.
        cli = receive(relay.url, link, out, extra=["--yes"])
        processes.append(cli)
        assert cli.wait(CLI_TIMEOUT) == 0, cli.stderr
        expect_sent(page, "1 file")
    assert not [m for m in log.console if "Content Security Policy" in m], log
    assert sha256_file(out / "plan.bin") == sha256_file(source)
    # Everything the page fetched came from the static host; only the WebSocket and the relay's
    # link options (GET /v1/info, PROTOCOL.md §3.2: no secret, no room) went elsewhere.
    fetched = [url for url in log.requests if url.startswith("http")]
    to_relay = [url for url in fetched if origin(url) == origin(relay.url)]
    assert to_relay == [f"{relay.url}/v1/info"], log.requests
    assert {origin(url) for url in fetched if url not in to_relay} == {origin(static.url)}

    # The same site copied to an origin the relay does not allow: its pages are turned away.
    with StaticServer(site) as copy:
        page, _ = new_page(copy.url + "/")
        page.get_by_label("Choose files").set_input_files([source])
        wait_until_ready(page)
        page.get_by_role("button", name="Create link").click()
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text("Could not reach the relay", timeout=STEP_TIMEOUT)
    assert "hushdrop_relay_rooms_created_total 1" in metrics(relay)


@pytest.fixture
def trusting_browser(browser: Browser, tmp_path_factory: pytest.TempPathFactory):
    """A Chromium that trusts the test CA's server key, and nothing else beyond the system's."""
    ca = TestCA(tmp_path_factory.mktemp("ca"))
    instance = browser.browser_type.launch(
        executable_path=chromium_path(),
        args=[*CHROMIUM_FLAGS, f"--ignore-certificate-errors-spki-list={ca.spki_hash}"],
    )
    yield instance, ca
    instance.close()


def test_page_sends_to_the_cli_over_https_through_nginx(
    trusting_browser, site: Path, relay_process, tmp_path: Path, processes
) -> None:
    browser, ca = trusting_browser
    relay = relay_process("--site-dir", str(site), "--trust-proxy-header", "X-Forwarded-For")
    source = random_file(tmp_path / "src" / "report.bin", 2 * 1024 * 1024 + 1)
    with Nginx(tmp_path / "nginx", relay.port, ca) as nginx:
        context = browser.new_context(accept_downloads=True, locale="en-US")
        try:
            page = context.new_page()
            log = PageLog(page)
            page.goto(nginx.url + "/")
            assert page.evaluate("window.isSecureContext")
            link, _ = create_link(page, files=[source])
            assert link.startswith(nginx.url + "/#")
            out = tmp_path / "out"
            out.mkdir()
            cli = receive(nginx.url, link, out, extra=["--yes"], env={"SSL_CERT_FILE": str(ca.ca)})
            processes.append(cli)
            assert cli.wait(CLI_TIMEOUT) == 0, cli.stderr
            expect_sent(page, "1 file")
        finally:
            context.close()
    assert sha256_file(out / "report.bin") == sha256_file(source)
    assert not log.failed, log


@pytest.fixture(scope="module")
def behind_caddy(browser: Browser, site: Path, tmp_path_factory: pytest.TempPathFactory):
    """deploy/Caddyfile (`tls internal`) in front of a relay, and a Chromium that trusts the
    key of the certificate Caddy made for itself."""
    relay = RelayProcess(["--site-dir", str(site), "--trust-proxy-header", "X-Forwarded-For"])
    try:
        relay.wait_ready()
        with Caddy(tmp_path_factory.mktemp("caddy"), relay.port) as caddy:
            leaf = tmp_path_factory.mktemp("leaf") / "leaf.pem"
            leaf.write_text(ssl.get_server_certificate(("127.0.0.1", caddy.port)))
            trusting = browser.browser_type.launch(
                executable_path=chromium_path(),
                args=[*CHROMIUM_FLAGS, f"--ignore-certificate-errors-spki-list={spki_hash(leaf)}"],
            )
            try:
                yield caddy, trusting
            finally:
                trusting.close()
    finally:
        relay.stop()


@pytest.fixture
def caddy_page(behind_caddy):
    caddy, trusting = behind_caddy
    contexts = []

    def open_page(url: str):
        context = trusting.new_context(accept_downloads=True, locale="en-US")
        contexts.append(context)
        page = context.new_page()
        page.goto(url)
        assert page.evaluate("window.isSecureContext")
        return page

    yield caddy, open_page
    for context in contexts:
        context.close()


def test_cli_sends_to_the_page_over_https_through_caddy(caddy_page, tmp_path: Path, processes):
    caddy, open_page = caddy_page
    source = random_file(tmp_path / "photos.tar", 4 * 1024 * 1024 + 7)
    cli = send(caddy.url, source, env={"SSL_CERT_FILE": str(caddy.ca)})
    processes.append(cli)
    link = cli.wait_event("code")["link"]
    assert link.startswith(caddy.url + "/#")
    receiver = open_page(link)
    download = accept_download(receiver, tmp_path / "saved.tar")
    assert download.suggested_filename == "photos.tar"
    assert sha256_file(tmp_path / "saved.tar") == sha256_file(source)
    expect_received(receiver, "1 file")
    assert cli.wait(CLI_TIMEOUT) == 0, cli.stderr


def test_page_to_page_over_https_through_caddy(caddy_page, tmp_path: Path):
    caddy, open_page = caddy_page
    source = random_file(tmp_path / "slides.pdf", 2 * 1024 * 1024 + 3)
    sender = open_page(caddy.url + "/")
    link, _ = create_link(sender, files=[source])
    receiver = open_page(link)
    same_verification_code(sender, receiver)
    accept_download(receiver, tmp_path / "saved.pdf")
    assert sha256_file(tmp_path / "saved.pdf") == sha256_file(source)
    expect_sent(sender, "1 file")
