"""A side that stops reading (a paused program, a laptop whose lid closed) and is dropped by the
relay's stall timeout is a lost connection on both sides (PROTOCOL.md §8.1): the transfer
resumes when it runs again, or fails on both sides once the resume window is over. Real relay
and CLI processes; the receiver is paused with SIGSTOP.

The receiver runs in a network namespace of its own whose TCP receive buffers may grow to 1 MiB
(a phone's, not this host's 32 MiB): otherwise its kernel could take in the whole credit window
for the paused program, the relay's writes would never block, and whether it noticed the stall
would depend on how far the buffers had grown."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from . import netns
from .cli import receive, send, sha256_file
from .proxy import CuttableProxy
from .test_cli import EXIT_CONNECTION, random_file
from .test_cli_resume import RATE, SIZE, assert_resumed_intact, wait_progress

STALL_TIMEOUT = "2"
RESUME_WINDOW = "3"
# The relay notices the paused receiver only once the data in flight has filled the buffers
# towards it, then waits the stall timeout: seconds, on a busy machine many of them.
NOTICE = 60
SMALL_BUFFERS = "net.ipv4.tcp_rmem=4096 131072 1048576"

pytestmark = pytest.mark.skipif(not netns.AVAILABLE, reason=netns.SKIP_REASON)


@pytest.fixture
def phone():
    """Where the receiver runs: a namespace with small TCP receive buffers."""
    with netns.host(SMALL_BUFFERS) as host:
        yield host


@pytest.fixture
def out(tmp_path: Path) -> Path:
    directory = tmp_path / "out"
    directory.mkdir()
    return directory


@pytest.fixture
def stalling_relay(relay_factory, phone):
    return relay_factory("--host", phone.gateway, "--stall-timeout", STALL_TIMEOUT)


@pytest.fixture
def slow_network(stalling_relay, phone):
    """The sender's link to the relay, slow enough that the test pauses the receiver mid-way."""
    proxy = CuttableProxy(stalling_relay.port, RATE, target_host=phone.gateway)
    yield proxy
    proxy.close()


def pause(process) -> None:
    os.kill(process.proc.pid, signal.SIGSTOP)


def run_again(process) -> None:
    if process.proc.poll() is None:
        os.kill(process.proc.pid, signal.SIGCONT)


def start_transfer(relay, network, phone, src: Path, out: Path, env=None):
    sender = send(network.url, src, env=env)
    code = sender.wait_event("code")["code"]
    receiver = receive(relay.url, code, out, env=env, netns=phone.namespace)
    wait_progress(receiver, SIZE // 4)
    return sender, receiver, code


def test_a_receiver_paused_past_the_stall_timeout_resumes_when_it_runs_again(
    stalling_relay, slow_network, phone, tmp_path, out
):
    src = random_file(tmp_path / "big.bin", SIZE)
    sender, receiver, _ = start_transfer(stalling_relay, slow_network, phone, src, out)
    try:
        pause(receiver)
        sender.wait_event("reconnecting", timeout=NOTICE)  # the relay closed the room: stall
        assert sender.proc.poll() is None
        run_again(receiver)
        assert_resumed_intact(sender, receiver, src, out / "big.bin")
    finally:
        run_again(receiver)
        sender.stop()
        receiver.stop()
    assert "reason=stall" in stalling_relay.logs()
    assert not list(out.glob(".hushdrop-*"))


def test_a_receiver_paused_past_the_resume_window_fails_on_both_sides(
    stalling_relay, slow_network, phone, tmp_path, out
):
    src = random_file(tmp_path / "big.bin", SIZE)
    window = {"HUSHDROP_RESUME_WINDOW": RESUME_WINDOW}
    sender, receiver, _ = start_transfer(stalling_relay, slow_network, phone, src, out, env=window)
    try:
        pause(receiver)
        assert sender.wait(NOTICE) == EXIT_CONNECTION
        # The sender waited its resume window for the receiver, then said why it stopped.
        assert "reconnecting" in [e["event"] for e in sender.events]
        message = sender.error()["message"]
        assert "stopped taking data" in message, message
        assert f"did not come back within {RESUME_WINDOW} seconds" in message, message

        # The receiver runs again after the sender gave up: it tries for its own resume
        # window, then fails with a message of its own and keeps nothing nobody could resume.
        run_again(receiver)
        assert receiver.wait(NOTICE) == EXIT_CONNECTION
    finally:
        run_again(receiver)
        sender.stop()
        receiver.stop()
    assert "reconnecting" in [e["event"] for e in receiver.events]
    message = receiver.error()["message"]
    assert f"sender did not come back within {RESUME_WINDOW} seconds" in message, message
    assert list(out.iterdir()) == []


def test_a_receiver_killed_while_paused_continues_when_run_again(
    stalling_relay, slow_network, phone, tmp_path, out
):
    src = random_file(tmp_path / "big.bin", SIZE)
    sender, receiver, code = start_transfer(stalling_relay, slow_network, phone, src, out)
    try:
        pause(receiver)
        sender.wait_event("reconnecting", timeout=NOTICE)
        receiver.proc.kill()  # never runs again: no goodbye, its record and .part stay
        receiver.wait()
        assert list(out.glob(".hushdrop-*.resume"))

        again = receive(stalling_relay.url, code, out, netns=phone.namespace)
        assert again.wait() == 0, again.stderr + str(again.events[-5:])
        assert sender.wait() == 0, sender.stderr + str(sender.events[-5:])
    finally:
        sender.stop()
        receiver.stop()
    assert sha256_file(out / "big.bin") == sha256_file(src)
    assert 0 < again.wait_event("resumed")["bytes"] < SIZE
    assert not list(out.glob(".hushdrop-*"))
