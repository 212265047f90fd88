"""Page → page over a direct WebRTC data channel (PROTOCOL.md §8.4), with the relay as fallback.

The relay's own /metrics counters tell whether file data went through it.
"""

from __future__ import annotations

import re

from pagetools import (
    BLOCK_ICE,
    CONTROL_BYTES,
    DIRECT,
    RELAYED,
    STEP_TIMEOUT,
    MiB,
    accept_download,
    create_link,
    expect_received,
    expect_sent,
    random_file,
    relayed_bytes,
    sha256_file,
)
from playwright.sync_api import expect


def assert_saved_intact(info, target, source) -> None:
    """The download (from `expect_download`) finished, and its bytes are `source`'s."""
    download = info.value
    download.save_as(target)
    assert download.failure() is None, download.failure()
    assert sha256_file(target) == sha256_file(source)


def open_pages(web_relay, new_page, source, init_script: str | None = None):
    sender, _ = new_page()
    if init_script:
        sender.add_init_script(init_script)
    sender.goto(web_relay.url)
    link, _ = create_link(sender, files=[source])
    receiver, _ = new_page()
    if init_script:
        receiver.add_init_script(init_script)
    receiver.goto(link)
    return sender, receiver


def test_two_pages_send_directly_and_the_relay_carries_no_file_data(web_relay, new_page, tmp_path):
    source = random_file(tmp_path / "direct.bin", 24 * MiB)
    before = relayed_bytes(web_relay)
    sender, receiver = open_pages(web_relay, new_page, source)
    accept_download(receiver, tmp_path / "saved.bin")

    assert sha256_file(tmp_path / "saved.bin") == sha256_file(source)
    expect_sent(sender, "1 file, 24.0 MiB")
    expect_received(receiver, "1 file, 24.0 MiB")
    for page in (sender, receiver):
        expect(page.get_by_text(DIRECT)).to_be_visible()
    assert relayed_bytes(web_relay) - before < CONTROL_BYTES


def test_with_webrtc_blocked_the_transfer_goes_through_the_relay(web_relay, new_page, tmp_path):
    source = random_file(tmp_path / "relayed.bin", 8 * MiB)
    before = relayed_bytes(web_relay)
    sender, receiver = open_pages(web_relay, new_page, source, BLOCK_ICE)
    accept_download(receiver, tmp_path / "saved.bin")

    assert sha256_file(tmp_path / "saved.bin") == sha256_file(source)
    expect_sent(sender, "1 file, 8.0 MiB")
    for page in (sender, receiver):
        expect(page.get_by_text(RELAYED)).to_be_visible()
    assert relayed_bytes(web_relay) - before > 8 * MiB


def test_a_direct_channel_closed_midway_finishes_through_the_relay(web_relay, new_page, tmp_path):
    source = random_file(tmp_path / "big.bin", 120 * MiB)
    sender, receiver = open_pages(web_relay, new_page, source)
    button = receiver.get_by_role("button", name="Download")
    expect(button).to_be_visible(timeout=STEP_TIMEOUT)
    with receiver.expect_download(timeout=STEP_TIMEOUT) as info:
        button.click()
        expect(sender.get_by_text(DIRECT)).to_be_visible(timeout=STEP_TIMEOUT)
        expect(receiver.get_by_text(re.compile(r"^[1-9][\d.]* MiB of 120\.0 MiB"))).to_be_visible(
            timeout=STEP_TIMEOUT
        )
        before = relayed_bytes(web_relay)
        sender.evaluate("window.hushdrop.directConnection.close()")
        for page in (sender, receiver):
            expect(page.get_by_text(RELAYED)).to_be_visible(timeout=STEP_TIMEOUT)
    assert_saved_intact(info, tmp_path / "saved.bin", source)
    expect_sent(sender, "1 file, 120.0 MiB")
    assert relayed_bytes(web_relay) - before > MiB  # the rest came through the relay


# The sender applies the receiver's answer only when the test says so: the direct connection
# opens after the data started through the relay.
HOLD_ANSWER = """
const apply = RTCPeerConnection.prototype.setRemoteDescription;
let release;
const held = new Promise((resolve) => { release = resolve; });
window.releaseAnswer = () => release();
RTCPeerConnection.prototype.setRemoteDescription = async function (description) {
  if (description && description.type === "answer") await held;
  return apply.call(this, description);
};
"""


def test_a_direct_connection_that_opens_late_takes_over_midway(web_relay, new_page, tmp_path):
    source = random_file(tmp_path / "late.bin", 120 * MiB)
    sender, _ = new_page()
    sender.add_init_script(HOLD_ANSWER)
    sender.goto(web_relay.url)
    link, _ = create_link(sender, files=[source])
    receiver, _ = new_page(link)
    before = relayed_bytes(web_relay)
    button = receiver.get_by_role("button", name="Download")
    expect(button).to_be_visible(timeout=STEP_TIMEOUT)
    with receiver.expect_download(timeout=STEP_TIMEOUT) as info:
        button.click()
        # No waiting for the direct connection: the data starts through the relay at once.
        expect(receiver.get_by_text(RELAYED)).to_be_visible(timeout=STEP_TIMEOUT)
        expect(receiver.get_by_text(re.compile(r"^[1-9][\d.]* MiB of 120\.0 MiB"))).to_be_visible(
            timeout=STEP_TIMEOUT
        )
        sender.evaluate("window.releaseAnswer()")
        for page in (sender, receiver):
            expect(page.get_by_text(DIRECT)).to_be_visible(timeout=STEP_TIMEOUT)
            # Moving to the direct connection lost nothing: no "Reconnected" for it.
            expect(page.get_by_text("Reconnected")).to_have_count(0)
    assert_saved_intact(info, tmp_path / "saved.bin", source)
    expect_sent(sender, "1 file, 120.0 MiB")
    relayed = relayed_bytes(web_relay) - before
    assert MiB < relayed < 100 * MiB  # a start through the relay; the rest went direct


# The sender's data channel refuses a `send` the way Chromium does when its 16 MiB send queue
# is full (a slow path between two machines), once the transfer is well under way.
REFUSE_A_SEND = """
const send = RTCDataChannel.prototype.send;
let sent = 0;
RTCDataChannel.prototype.send = function (data) {
  if (data.byteLength > 1024 && ++sent === 60) {
    throw new DOMException(
      "Failed to execute 'send' on 'RTCDataChannel': RTCDataChannel send queue is full",
      "OperationError");
  }
  return send.call(this, data);
};
"""


def test_a_data_channel_error_falls_back_to_the_relay(web_relay, new_page, tmp_path):
    source = random_file(tmp_path / "refused.bin", 60 * MiB)
    sender, _ = new_page()
    sender.add_init_script(REFUSE_A_SEND)
    sender.goto(web_relay.url)
    link, _ = create_link(sender, files=[source])
    receiver, _ = new_page(link)
    before = relayed_bytes(web_relay)
    accept_download(receiver, tmp_path / "saved.bin")
    assert sha256_file(tmp_path / "saved.bin") == sha256_file(source)
    expect_sent(sender, "1 file, 60.0 MiB")
    for page in (sender, receiver):
        expect(page.get_by_text(RELAYED)).to_be_visible()
    assert relayed_bytes(web_relay) - before > 10 * MiB  # the rest came through the relay
