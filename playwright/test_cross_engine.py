"""Firefox and Chromium pages send to each other directly, over a WebRTC data channel between two
different engines (PROTOCOL.md §8.4): the relay's own /metrics say it carried no file data.
"""

from __future__ import annotations

import enginetools
import pagetools
from pagetools import (
    CONTROL_BYTES,
    DIRECT,
    MiB,
    random_file,
    relayed_bytes,
    sha256_file,
)
from playwright.sync_api import expect


def test_firefox_sends_directly_to_chromium(web_relay, new_page, open_tab, tmp_path):
    source = random_file(tmp_path / "from firefox.bin", 24 * MiB)
    before = relayed_bytes(web_relay)
    sender = open_tab("firefox", web_relay.url)
    link, _ = enginetools.create_link(sender, [source])
    receiver, log = new_page(link)
    assert enginetools.verification_code(sender) == pagetools.verification_code(receiver)

    pagetools.accept_download(receiver, tmp_path / "saved.bin")

    assert sha256_file(tmp_path / "saved.bin") == sha256_file(source), log
    enginetools.expect_sent(sender, "1 file, 24.0 MiB")
    pagetools.expect_received(receiver, "1 file, 24.0 MiB")
    enginetools.expect_text(sender, DIRECT)
    expect(receiver.get_by_text(DIRECT)).to_be_visible()
    assert relayed_bytes(web_relay) - before < CONTROL_BYTES


def test_chromium_sends_directly_to_firefox(web_relay, new_page, open_tab, tmp_path):
    source = random_file(tmp_path / "from chromium.bin", 24 * MiB)
    before = relayed_bytes(web_relay)
    sender, _ = new_page(web_relay.url)
    link, _ = pagetools.create_link(sender, files=[source])
    receiver = open_tab("firefox", link)
    assert enginetools.verification_code(receiver) == pagetools.verification_code(sender)

    download = enginetools.accept_download(receiver)

    assert download.suggested_filename == "from chromium.bin"
    assert sha256_file(download.path) == sha256_file(source)
    pagetools.expect_sent(sender, "1 file, 24.0 MiB")
    enginetools.expect_received(receiver, "1 file, 24.0 MiB")
    expect(sender.get_by_text(DIRECT)).to_be_visible()
    enginetools.expect_text(receiver, DIRECT)
    assert relayed_bytes(web_relay) - before < CONTROL_BYTES
