"""Firefox and Chromium pages send to each other directly, over a WebRTC data channel between two
different engines (PROTOCOL.md §8.4): the relay's own /metrics say it carried no file data. When
WebRTC cannot connect, the relay carries the files instead.
"""

from __future__ import annotations

import enginetools
import pagetools
from pagetools import (
    BLOCK_ICE,
    CONTROL_BYTES,
    DIRECT,
    RELAYED,
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


def test_without_a_webrtc_path_chromium_sends_to_firefox_through_the_relay(
    web_relay, new_page, open_tab, tmp_path
):
    source = random_file(tmp_path / "relayed.bin", 8 * MiB)
    before = relayed_bytes(web_relay)
    sender, _ = new_page()
    sender.add_init_script(BLOCK_ICE)  # Chromium offers no candidate Firefox could reach
    sender.goto(web_relay.url)
    link, _ = pagetools.create_link(sender, files=[source])
    receiver = open_tab("firefox", link)

    download = enginetools.accept_download(receiver)

    assert sha256_file(download.path) == sha256_file(source)
    pagetools.expect_sent(sender, "1 file, 8.0 MiB")
    expect(sender.get_by_text(RELAYED)).to_be_visible()
    enginetools.expect_text(receiver, RELAYED)
    assert relayed_bytes(web_relay) - before > 8 * MiB
