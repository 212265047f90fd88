"""The page itself: what shows before Python is ready, without JavaScript or WebAssembly, bad links,
the service worker's boundaries, and that nothing is fetched from any other origin.
"""

from __future__ import annotations

import re
import time
from urllib.parse import urljoin, urlsplit

from conftest import chromium_path
from pagetools import (
    CHROMIUM_FLAGS,
    PYTHON_READY_TIMEOUT,
    STEP_TIMEOUT,
    accept_download,
    create_link,
    expect_received,
    random_file,
    sha256_file,
    wait_until_ready,
)
from playwright.sync_api import Route, expect


def test_loading_state_and_file_selection_before_python_is_ready(web_relay, new_page, tmp_path):
    files = [random_file(tmp_path / "a.txt", 10), random_file(tmp_path / "b.bin", 2048)]
    page, _ = new_page()
    held: list[Route] = []
    # Hold back the Python runtime so the page stays in its loading state as long as needed.
    page.route("**/pyodide.asm.wasm", lambda route: held.append(route))
    page.goto(web_relay.url)

    expect(page.get_by_role("status").filter(has_text="Starting the secure engine")).to_be_visible()
    expect(page.get_by_role("button", name="Create link")).to_be_disabled()
    expect(page.get_by_role("button", name="Receive")).to_be_disabled()

    page.get_by_label("Choose files").set_input_files(files)
    expect(page.get_by_text("2 files, 2.0 KiB")).to_be_visible()
    page.get_by_role("button", name="Remove a.txt").click()
    expect(page.get_by_text("1 file, 2.0 KiB")).to_be_visible()

    # PyScript's worker asks for Pyodide's WebAssembly some time after the page showed: wait for
    # that request (held, so the engine is still starting).
    deadline = time.monotonic() + PYTHON_READY_TIMEOUT / 1000
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert len(held) == 1
    expect(page.get_by_text("Starting the secure engine")).to_be_visible()
    held[0].continue_()
    wait_until_ready(page)
    expect(page.get_by_role("button", name="Receive")).to_be_enabled()
    expect(page.get_by_text("Starting the secure engine")).to_be_hidden()


def test_without_javascript_the_page_says_why(web_relay, new_page):
    page, _ = new_page(web_relay.url, java_script_enabled=False)
    # Chromium's script switch does not make <noscript> render, so check the markup for it, and
    # that no endless "starting" spinner shows when scripts never run.
    html = page.request.get(web_relay.url).text()
    assert re.search(r"<noscript>\s*<p[^>]*>[^<]*needs\s+JavaScript", html)
    expect(page.get_by_text("Starting the secure engine")).to_be_hidden()


def test_without_webassembly_the_page_says_why(web_relay, new_page):
    page, _ = new_page()
    page.add_init_script("delete globalThis.WebAssembly;")
    page.goto(web_relay.url)
    expect(page.get_by_role("alert")).to_contain_text("WebAssembly")
    expect(page.get_by_role("button", name="Create link")).to_be_disabled()
    # Choosing files still works; only the engine is missing.
    expect(page.get_by_label("Choose files")).to_be_attached()


def test_a_damaged_link_explains_itself_on_the_home_page(web_relay, new_page):
    page, _ = new_page(f"{web_relay.url}/#123456-damaged")
    expect(page.get_by_role("alert")).to_contain_text(
        re.compile("link|code"), timeout=PYTHON_READY_TIMEOUT
    )
    expect(page.get_by_role("button", name="Create link")).to_be_visible()
    expect(page.get_by_label("Code")).to_be_visible()


def test_a_link_to_an_expired_room_says_so(web_relay, new_page):
    page, _ = new_page(f"{web_relay.url}/#000000-AAAAAAAAAAAAAAAAAAAAAA")
    expect(page.get_by_role("alert")).to_contain_text(
        "No transfer is waiting", timeout=PYTHON_READY_TIMEOUT
    )
    expect(page.get_by_role("button", name="Back to start")).to_be_visible()


def test_service_worker_controls_the_page_and_refuses_unknown_downloads(web_relay, new_page):
    page, _ = new_page(web_relay.url)
    wait_until_ready(page)
    assert page.evaluate("navigator.serviceWorker.ready.then((r) => r.active.state)") in (
        "activating",
        "activated",
    )
    # Under the worker's control, the site still loads as before.
    page.reload()
    wait_until_ready(page)
    assert page.evaluate("navigator.serviceWorker.controller !== null")
    response = page.request.get(f"{web_relay.url}/config.json")
    assert response.ok
    # An unknown (or already used) download id: the worker refuses it rather than passing it on.
    expired = page.goto(f"{web_relay.url}/__hushdrop__/download/{'0' * 32}")
    assert expired is not None and expired.status == 404
    assert "expired" in page.content()


def test_no_request_goes_to_another_origin(web_relay, new_page, tmp_path):
    """Every request of both pages and their service workers, through a whole transfer."""
    origin = urlsplit(web_relay.url)
    seen: list[str] = []

    def watch(page) -> None:
        page.context.on("request", lambda request: seen.append(request.url))
        page.on("websocket", lambda ws: seen.append(ws.url))

    source = random_file(tmp_path / "doc.odt", 3 * 1024 * 1024)
    sender, _ = new_page()
    watch(sender)
    sender.goto(web_relay.url)
    link, _ = create_link(sender, files=[source])
    receiver, _ = new_page()
    watch(receiver)
    receiver.goto(link)
    accept_download(receiver, tmp_path / "saved.odt")
    assert sha256_file(tmp_path / "saved.odt") == sha256_file(source)
    expect_received(receiver, "1 file")

    assert any("/__hushdrop__/download/" in url for url in seen), seen
    assert any(url.startswith(("ws://", "wss://")) for url in seen), seen
    foreign = []
    for url in seen:
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob"):
            continue
        if parts.scheme not in ("http", "ws") or parts.netloc != origin.netloc:
            foreign.append(url)
    assert foreign == [], foreign
    assert len(seen) > 10  # the page, its runtime, config, Python bundle, worker, download…


def test_share_link_has_qr_code_and_copy_button(web_relay, new_page, tmp_path):
    source = random_file(tmp_path / "x.txt", 5)
    page, _ = new_page(web_relay.url)
    link, code = create_link(page, files=[source], short_code=True)
    assert re.fullmatch(re.escape(web_relay.url) + r"/#\d{6}-[A-Za-z0-9_-]{22}", link)
    qr = page.get_by_role("img", name="QR code of the share link")
    expect(qr).to_have_attribute("src", re.compile(r"^data:image/svg\+xml"))
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible(timeout=STEP_TIMEOUT)
    assert page.evaluate("navigator.clipboard.readText()") == link
    assert code.split("-")[0] == link.split("#")[1][:6]


def test_plain_http_from_another_address_says_to_use_https(browser, web_relay):
    # Opened as http://<a LAN name>:port, as a phone on the same network would: not a secure
    # context, so no WebCrypto and no service worker. The page must say what to do.
    port = web_relay.url.rsplit(":", 1)[1]
    lan = browser.browser_type.launch(
        executable_path=chromium_path(),
        args=[*CHROMIUM_FLAGS, "--host-resolver-rules=MAP hushdrop-lan.test 127.0.0.1"],
    )
    try:
        page = lan.new_page()
        page.goto(f"http://hushdrop-lan.test:{port}/")
        assert page.evaluate("window.isSecureContext") is False
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text("HTTPS", timeout=STEP_TIMEOUT)
        expect(alert).to_contain_text("--tls-cert")
        page.wait_for_timeout(3000)  # the engine's own failure must not replace the reason
        expect(alert).to_contain_text("Open this page over HTTPS")
        expect(page.get_by_role("button", name="Create link")).to_be_disabled()
    finally:
        lan.close()


def test_create_link_needs_files_and_headings_say_how_it_ended(web_relay, new_page, tmp_path):
    name = "x" * 200 + ".bin"  # one long word: the offer must wrap it, not overflow the card
    source = random_file(tmp_path / name, 1000)
    sender, _ = new_page(web_relay.url)
    wait_until_ready(sender)
    create = sender.get_by_role("button", name="Create link")
    expect(create).to_be_disabled()
    link, _ = create_link(sender, files=[source])
    receiver, _ = new_page(link)
    offer = receiver.get_by_role("list", name="Incoming files")
    expect(offer).to_contain_text(name[:50], timeout=PYTHON_READY_TIMEOUT)
    card = receiver.locator(".card.transfer")
    assert card.evaluate("c => c.scrollWidth <= c.clientWidth"), "the offer overflows the card"
    accept_download(receiver, tmp_path / "saved.bin")
    expect(receiver.get_by_role("heading", name="Received 1 file", exact=False)).to_be_visible(
        timeout=STEP_TIMEOUT
    )
    expect(sender.get_by_role("heading", name="Sent 1 file", exact=False)).to_be_visible(
        timeout=STEP_TIMEOUT
    )


def test_a_sender_who_reloads_is_told_the_transfer_was_interrupted(web_relay, new_page, tmp_path):
    source = random_file(tmp_path / "report.pdf", 1000)
    sender, _ = new_page(web_relay.url)
    create_link(sender, files=[source])
    sender.reload()
    alert = sender.get_by_role("alert")
    expect(alert).to_contain_text("Sending 1 file", timeout=STEP_TIMEOUT)
    expect(alert).to_contain_text("was interrupted")
    sender.reload()  # said once, not on every later load
    wait_until_ready(sender)
    expect(sender.get_by_role("alert")).to_have_count(0)


# What only Pyodide itself (and our Python) would fetch: none of it on the page's main thread.
PYTHON_RUNTIME = ("pyodide.mjs", "pyodide.asm.", "python_stdlib.zip", "pyodide-lock.json", "/py/")
ENGINE_SCRIPT = 'document.querySelector(\'script[type="py"][worker][name="engine"]\')'


def test_the_page_itself_loads_no_python_runtime(web_relay, new_page):
    """Issue 15: Pyodide and the Python engine live in the engine's worker; the page's main
    thread keeps the interface (and PyScript, which starts that worker)."""
    page, log = new_page(web_relay.url)
    wait_until_ready(page)
    fetched = page.evaluate("performance.getEntriesByType('resource').map((entry) => entry.name)")
    assert any("/vendor/pyscript/" in url for url in fetched), fetched
    assert not [url for url in fetched if any(part in url for part in PYTHON_RUNTIME)], fetched
    assert page.evaluate("typeof globalThis.loadPyodide") == "undefined"
    assert page.evaluate("typeof globalThis.pyodide") == "undefined"
    assert page.evaluate("typeof globalThis.hushdropCrypto") == "undefined", log


def test_pyscript_starts_the_engine_in_its_worker_with_the_vendored_pyodide(web_relay, new_page):
    """The engine's worker is PyScript's, for index.html's `<script type="py" worker
    name="engine">`, configured by our pyscript.json: its interpreter is the Pyodide the site
    serves, and PyScript imported engine-worker.js there."""
    page, log = new_page(web_relay.url)
    wait_until_ready(page)
    # PyScript's promise for that worker: it ran engine.py to its end (the engine started).
    ready = f"{ENGINE_SCRIPT}.xworker.ready.then((worker) => worker instanceof Worker)"
    assert page.evaluate(ready)
    config_url = page.evaluate(f"new URL({ENGINE_SCRIPT}.getAttribute('config'), location).href")
    config = page.request.get(config_url).json()
    interpreter = urljoin(config_url, config["interpreter"])
    assert interpreter.startswith(f"{web_relay.url}/vendor/pyodide/"), interpreter

    assert len(page.workers) == 1, [worker.url for worker in page.workers]
    worker = page.workers[0]
    assert worker.url.startswith("blob:"), worker.url  # PyScript's bootstrap, not a file of ours
    fetched = worker.evaluate("performance.getEntriesByType('resource').map((entry) => entry.name)")
    for name in ("pyodide.mjs", "pyodide.asm.wasm", "python_stdlib.zip"):
        assert urljoin(interpreter, name) in fetched, (name, fetched)
    assert worker.evaluate("Symbol.for('polyscript.js_modules') in globalThis")
    assert worker.evaluate(
        "globalThis[Symbol.for('polyscript.js_modules')].has('hushdrop_engine')"
    ), log
    assert worker.evaluate("typeof globalThis.hushdrop.listen") == "function"
