"""Constants and helpers shared by the browser tests (imported by name: pytest puts this folder on
sys.path; the folder has no __init__.py so it never shadows the `playwright` package).

The helpers drive index.html the way a person does — through labels, roles and button names — so
they double as a check that the page is accessible by those names.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.request
from pathlib import Path

from playwright.sync_api import Download, Page, expect

# Report the service worker's own requests too (Chromium only), so a test can check that nothing
# the page or its worker fetches goes to another origin. Read by the Playwright driver when it
# starts, which is after test modules (and this one) are imported.
os.environ.setdefault("PW_EXPERIMENTAL_SERVICE_WORKER_NETWORK_EVENTS", "1")

# Headless Debian Chromium on these machines; the last two let WebRTC connect on loopback.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--allow-loopback-in-peer-connection",
]
PYTHON_READY_TIMEOUT = 90_000  # ms; a cold Pyodide start on a loaded 2-core machine
STEP_TIMEOUT = 60_000  # ms; one protocol step (pairing, key confirmation, an offer)
TRANSFER_TIMEOUT = 240_000  # ms; a whole transfer of the sizes used here, on a slow machine
MiB = 1024 * 1024

# Page script that leaves WebRTC no path: relay candidates only, and there is no TURN server.
BLOCK_ICE = """
const Original = window.RTCPeerConnection;
window.RTCPeerConnection = function (config) {
  return new Original({ ...(config || {}), iceTransportPolicy: "relay" });
};
window.RTCPeerConnection.prototype = Original.prototype;
"""

WRONG_CODE = re.compile("code or password is wrong", re.IGNORECASE)

# What the pages say about the route the file data takes.
DIRECT = "Direct connection"
RELAYED = "Relayed through the server"
# What the relay forwards besides file data: handshake, manifest, signaling, credits.
CONTROL_BYTES = 256 * 1024


def relayed_bytes(relay) -> int:
    """The relay's count of bytes it forwarded (its /metrics), both directions, all rooms."""
    with urllib.request.urlopen(relay.url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    match = re.search(r"^hushdrop_relay_bytes_relayed_total (\d+)$", text, re.MULTILINE)
    assert match, text
    return int(match.group(1))


def random_file(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        remaining = size
        while remaining:
            block = os.urandom(min(remaining, MiB))
            handle.write(block)
            remaining -= len(block)
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(MiB):
            digest.update(block)
    return digest.hexdigest()


def wait_until_ready(page: Page) -> None:
    """Python has started: the buttons that need it are enabled ("Receive"; "Create link" also
    needs files)."""
    expect(page.locator("#receive-button")).to_be_enabled(timeout=PYTHON_READY_TIMEOUT)


def create_link(
    page: Page,
    files: list[Path] | None = None,
    folder: Path | None = None,
    password: str | None = None,
    short_code: bool = False,
) -> tuple[str, str]:
    """Select files (or a folder), create the link; return (share link, typed code). The typed
    code works only once shown (`short_code`), as a person asks for it; else it is ""."""
    if files:
        page.get_by_label("Choose files").set_input_files(files)
    if folder is not None:
        page.get_by_label("Choose a folder").set_input_files(folder)
    if password:
        page.get_by_label("Password").fill(password)
    wait_until_ready(page)
    page.get_by_role("button", name="Create link").click()
    link = page.get_by_label("Share link")
    expect(link).to_have_value(re.compile(r"#\d{6}-"), timeout=STEP_TIMEOUT)
    if not short_code:
        expect(page.locator("code.code")).to_be_hidden()
        return link.input_value(), ""
    page.get_by_role("button", name="Show a short code").click()
    code = page.locator("code.code")
    expect(code).to_be_visible()
    return link.input_value(), code.inner_text()


def accept_download(page: Page, target: Path) -> Download:
    """Click Download once the offer shows, wait for the browser download, save it to `target`."""
    button = page.get_by_role("button", name="Download")
    expect(button).to_be_visible(timeout=PYTHON_READY_TIMEOUT)
    with page.expect_download(timeout=STEP_TIMEOUT) as info:
        button.click()
    download = info.value
    download.save_as(target)  # waits until the browser finished (or failed) the download
    assert download.failure() is None, download.failure()
    return download


def expect_sent(page: Page, summary: str) -> None:
    done = page.locator("[data-part=done]")  # the heading says it too, once done
    expect(done).to_contain_text(f"Sent {summary}", timeout=TRANSFER_TIMEOUT)
    expect(done).to_be_visible()


def expect_received(page: Page, summary: str) -> None:
    done = page.locator("[data-part=done]")  # the heading says it too, once done
    expect(done).to_contain_text(f"Received {summary}", timeout=TRANSFER_TIMEOUT)
    expect(done).to_be_visible()


def verification_code(page: Page) -> str:
    """The verification code the page shows, once it shows one (`FD79-FDBB`). It may wait for
    the other page's cold start too (a link just opened), not only for one protocol step."""
    shown = page.get_by_label("Verification code")
    expect(shown).to_have_text(
        re.compile(r"^[0-9A-F]{4}-[0-9A-F]{4}$"), timeout=PYTHON_READY_TIMEOUT + STEP_TIMEOUT
    )
    return shown.inner_text()


def same_verification_code(sender: Page, receiver: Page) -> None:
    """Both pages show one verification code, formatted like `FD79-FDBB`."""
    expect(receiver.get_by_label("Verification code")).to_have_text(verification_code(sender))
