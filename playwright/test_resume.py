"""A page → page transfer survives a lost connection (PROTOCOL.md §8): the receiving page's
network is cut mid-transfer, both pages reconnect through the relay and the download completes
with the right SHA-256, without the user doing anything."""

from __future__ import annotations

import re

from pagetools import (
    BLOCK_ICE,
    STEP_TIMEOUT,
    MiB,
    create_link,
    expect_received,
    expect_sent,
    random_file,
    sha256_file,
)
from playwright.sync_api import expect

from tests.integration.proxy import CuttableProxy


def test_a_cut_connection_resumes_and_the_download_completes(web_relay, new_page, tmp_path):
    source = random_file(tmp_path / "big.bin", 120 * MiB)
    proxy = CuttableProxy(web_relay.port, rate=24 * MiB)  # the cut lands mid-transfer
    try:
        # Both pages stay on the relay (no direct connection), whose connection will drop.
        sender, _ = new_page()
        sender.add_init_script(BLOCK_ICE)
        sender.goto(web_relay.url)
        link, _ = create_link(sender, files=[source])
        # The receiver reaches the site and relay through a network that will drop.
        receiver, _ = new_page()
        receiver.add_init_script(BLOCK_ICE)
        receiver.goto(link.replace(web_relay.url, proxy.url))
        button = receiver.get_by_role("button", name="Download")
        expect(button).to_be_visible(timeout=STEP_TIMEOUT)
        with receiver.expect_download(timeout=STEP_TIMEOUT) as info:
            button.click()
            expect(
                receiver.get_by_text(re.compile(r"^[1-9][\d.]* MiB of 120\.0 MiB"))
            ).to_be_visible(timeout=STEP_TIMEOUT)
            proxy.cut()
            expect(sender.get_by_text("Reconnected")).to_be_visible(timeout=STEP_TIMEOUT)
        download = info.value
        download.save_as(tmp_path / "saved.bin")
        assert download.failure() is None, download.failure()
        assert sha256_file(tmp_path / "saved.bin") == sha256_file(source)
        expect_sent(sender, "1 file, 120.0 MiB")
        expect_received(receiver, "1 file, 120.0 MiB")
        assert proxy.connections >= 2  # it really came back through a new connection
    finally:
        proxy.close()
