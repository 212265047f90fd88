"""Interrupted CLI transfers resume (PROTOCOL.md §8): cut connections, a restarted relay, a
restarted receiver. Real relay and CLI processes; every file is checked by SHA-256."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from .cli import receive, send, sha256_file
from .proxy import CuttableProxy
from .test_cli import EXIT_CONNECTION, EXIT_TAMPERED, random_file

SIZE = 64 << 20
# The receiver's (or sender's) network runs at this speed, so every transfer here takes about
# four seconds and the test acts in its middle however fast or busy the machine is.
RATE = 16 << 20


@pytest.fixture
def out(tmp_path: Path) -> Path:
    directory = tmp_path / "out"
    directory.mkdir()
    return directory


def wait_progress(process, at_least: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [e["bytes"] for e in process.events if e.get("event") == "progress"]
        if done and done[-1] >= at_least:
            return
        time.sleep(0.02)
    raise AssertionError(f"no progress past {at_least}: {process.events[-3:]}")


def assert_resumed_intact(sender, receiver, src: Path, target: Path) -> None:
    assert receiver.wait() == 0, receiver.stderr + str(receiver.events[-5:])
    assert sender.wait() == 0, sender.stderr + str(sender.events[-5:])
    assert sha256_file(target) == sha256_file(src)
    for process in (sender, receiver):
        names = [e["event"] for e in process.events]
        assert "reconnecting" in names and "resumed" in names, names
    resumed = receiver.wait_event("resumed")["bytes"]
    assert 0 < resumed < src.stat().st_size  # continued from the middle, not from zero


@pytest.mark.parametrize("flaky", ["receiver", "sender"])
def test_a_cut_connection_resumes_where_it_stopped(relay, tmp_path, out, flaky):
    src = random_file(tmp_path / "big.bin", SIZE)
    proxy = CuttableProxy(relay.port, RATE)  # the flaky side's network
    via = {side: proxy.url if side == flaky else relay.url for side in ("sender", "receiver")}
    try:
        sender = send(via["sender"], src)
        code = sender.wait_event("code")["code"]
        receiver = receive(via["receiver"], code, out)
        wait_progress(receiver, SIZE // 4)
        proxy.cut()
        assert_resumed_intact(sender, receiver, src, out / "big.bin")
        assert proxy.connections >= 2  # it came back through a new connection
    finally:
        proxy.close()


def test_a_file_changed_on_the_senders_disk_before_a_resume_is_refused(relay, tmp_path, out):
    """The resumed file is stitched from two reads of it (§7.3): the whole file's SHA-256 in the
    resumed ciphertext's trailer shows that its first part, which the receiver kept, changed."""
    src = random_file(tmp_path / "big.bin", SIZE)
    proxy = CuttableProxy(relay.port, RATE)  # the receiver's network
    try:
        sender = send(relay.url, src)
        code = sender.wait_event("code")["code"]
        receiver = receive(proxy.url, code, out)
        wait_progress(receiver, SIZE // 4)
        with open(src, "r+b") as handle:  # edited where the receiver already has it
            first = handle.read(1)
            handle.seek(0)
            handle.write(bytes([first[0] ^ 0xFF]))
        proxy.cut()
        assert receiver.wait() == EXIT_TAMPERED, receiver.stderr + str(receiver.events[-5:])
        assert "wrong SHA-256" in receiver.error()["message"]
        assert sender.wait() != 0
        assert "resumed" in [e["event"] for e in receiver.events]
        assert not list(out.iterdir())  # neither the file nor anything temporary stays
    finally:
        proxy.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_relay_restarted_mid_transfer_loses_nothing(relay_factory, tmp_path, out):
    port = str(free_port())
    relay = relay_factory("--port", port)
    network = CuttableProxy(relay.port, RATE)  # the receiver's slow link to the relay
    src = random_file(tmp_path / "big.bin", SIZE)
    try:
        sender = send(relay.url, src)
        code = sender.wait_event("code")["code"]
        receiver = receive(network.url, code, out)
        wait_progress(receiver, SIZE // 4)
        relay.stop()
        time.sleep(1.5)  # both sides notice and start retrying against nothing
        relay_factory("--port", port)
        assert_resumed_intact(sender, receiver, src, out / "big.bin")
    finally:
        network.close()


def test_a_restarted_receiver_resumes_from_its_part_file(relay, tmp_path, out):
    src = tmp_path / "src"
    random_file(src / "first.bin", 3 << 20)
    random_file(src / "second.bin", SIZE)
    sender = send(relay.url, src)
    code = sender.wait_event("code")["code"]
    network = CuttableProxy(relay.port, RATE)
    try:
        receiver = receive(network.url, code, out)
        wait_progress(receiver, SIZE // 3)
        receiver.proc.kill()  # a crash: no goodbye, the record and the .part stay
        receiver.wait()
    finally:
        network.close()
    assert list(out.glob(".hushdrop-*.resume"))
    assert (out / "src" / "first.bin").exists()
    (part,) = (out / "src").glob(".hushdrop-*-1.part")
    kept = part.stat().st_size
    assert 0 < kept < SIZE

    again = receive(relay.url, code, out)
    assert again.wait() == 0, again.stderr + str(again.events[-5:])
    assert sender.wait() == 0, sender.stderr
    for name in ("first.bin", "second.bin"):
        assert sha256_file(out / "src" / name) == sha256_file(src / name)
    assert again.wait_event("resumed")["bytes"] >= (3 << 20) + kept
    assert again.wait_event("verification")["sas"] == sender.wait_event("verification")["sas"]
    assert not list(out.rglob(".hushdrop-*"))


def test_a_sender_that_never_comes_back_ends_the_transfer_after_the_resume_window(
    relay, tmp_path, out
):
    src = random_file(tmp_path / "big.bin", SIZE)
    network = CuttableProxy(relay.port, RATE)
    try:
        sender = send(network.url, src)
        code = sender.wait_event("code")["code"]
        receiver = receive(relay.url, code, out, env={"HUSHDROP_RESUME_WINDOW": "2"})
        wait_progress(receiver, SIZE // 4)
        sender.proc.kill()
        assert receiver.wait() == EXIT_CONNECTION
    finally:
        network.close()
    assert "did not come back" in receiver.error()["message"]
    assert "reconnecting" in [e["event"] for e in receiver.events]
    assert list(out.iterdir()) == []  # no partial data that nobody could resume


def test_a_transfer_that_ends_unfinished_removes_the_output_folders_it_created(relay, tmp_path):
    # README: a failure removes "the empty folders it created" — its resume record included.
    src = random_file(tmp_path / "big.bin", SIZE)
    network = CuttableProxy(relay.port, RATE)
    created = tmp_path / "new" / "sub"
    try:
        sender = send(network.url, src)
        code = sender.wait_event("code")["code"]
        receiver = receive(relay.url, code, created, env={"HUSHDROP_RESUME_WINDOW": "1"})
        wait_progress(receiver, SIZE // 4)
        sender.proc.kill()
        assert receiver.wait() == EXIT_CONNECTION
    finally:
        network.close()
    assert sorted(tmp_path.iterdir()) == [tmp_path / "big.bin"]


def test_a_relay_that_never_comes_back_is_blamed_not_the_other_side(relay, tmp_path, out):
    src = random_file(tmp_path / "big.bin", SIZE)
    network = CuttableProxy(relay.port, RATE)  # the receiver's slow link to the relay
    window = {"HUSHDROP_RESUME_WINDOW": "3"}
    try:
        sender = send(relay.url, src, env=window)
        code = sender.wait_event("code")["code"]
        receiver = receive(network.url, code, out, env=window)
        wait_progress(receiver, SIZE // 4)
        relay.stop()
        for side in (sender, receiver):
            assert side.wait() == EXIT_CONNECTION
            message = side.error()["message"]
            assert "the relay could not be reached again within 3 seconds" in message, message
            assert "did not come back" not in message
    finally:
        network.close()


def test_a_relay_name_that_cannot_be_found_is_said_in_words(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    sender = send("http://no-such-relay.invalid:8780", tmp_path / "a.txt")
    assert sender.wait() == EXIT_CONNECTION
    message = sender.error()["message"]
    assert "its name could not be found" in message and "Errno" not in message, message
