"""`hushdrop send --receivers N` (PROTOCOL.md §3.1) with real CLI processes and a real relay:
every receiver gets the files through its own key exchange, and a failed guess ends the link."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import cli
from .cli import sha256_file
from .proxy import CuttableProxy
from .test_cli import EXIT_CONNECTION, EXIT_WRONG_CODE, files_under, random_file
from .test_cli_resume import RATE, SIZE, wait_progress

_started: list[cli.CliProcess] = []


def send(*args, **kwargs) -> cli.CliProcess:
    _started.append(process := cli.send(*args, **kwargs))
    return process


def receive(*args, **kwargs) -> cli.CliProcess:
    _started.append(process := cli.receive(*args, **kwargs))
    return process


@pytest.fixture(autouse=True)
def _stop_processes() -> Iterator[None]:
    """Whatever a test leaves running (a paused receiver when it failed) is stopped."""
    yield
    while _started:
        process = _started.pop()
        if process.proc.poll() is None:  # still ours: a paused one must wake up to die
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.proc.pid, signal.SIGCONT)
        process.stop()


def test_three_receivers_each_get_the_files_intact_with_their_own_verification_code(
    relay, tmp_path
):
    src = tmp_path / "src"
    random_file(src / "album" / "big.bin", 20 << 20)
    random_file(src / "album" / "small.jpg", 12_345)
    sender = send(relay.url, src / "album", extra=["--receivers", "3"])
    code = sender.wait_event("code")
    assert code["receivers"] == 3
    outs = [tmp_path / f"out{n}" for n in (1, 2, 3)]
    receivers = []
    for out in outs:
        out.mkdir()
        receivers.append(receive(relay.url, code["code"], out))
    for receiver in receivers:
        assert receiver.wait() == 0, receiver.stderr
    assert sender.wait() == 0, sender.stderr

    expected = {"album/" + k: v for k, v in files_under(src / "album").items()}
    for out in outs:
        assert files_under(out) == expected
        assert not list(out.rglob(".hushdrop-*"))
    shown = {e["receiver"]: e["sas"] for e in sender.events if e["event"] == "verification"}
    assert sorted(shown) == [1, 2, 3]
    assert len(set(shown.values())) == 3  # a key exchange of its own for each receiver
    assert {r.wait_event("verification")["sas"] for r in receivers} == set(shown.values())
    done = [e for e in sender.events if e["event"] == "done"]
    assert sorted(e["receiver"] for e in done) == [1, 2, 3]


def test_a_receiver_beyond_the_links_count_is_told_it_was_used_by_all(relay, tmp_path):
    src = random_file(tmp_path / "a.bin", 8 << 20)
    sender = send(relay.url, src, extra=["--receivers", "2"])
    code = sender.wait_event("code")["code"]
    held = []
    for n in (1, 2):
        out = tmp_path / f"out{n}"
        out.mkdir()
        receiver = receive(relay.url, code, out)
        receiver.wait_event("verification")
        os.kill(receiver.proc.pid, signal.SIGSTOP)  # keep the link's sender running
        held.append(receiver)
    try:
        late = receive(relay.url, code, tmp_path)
        assert late.wait() == EXIT_CONNECTION
        assert late.error()["message"] == "This link has been used by all its receivers."
    finally:
        for receiver in held:
            os.kill(receiver.proc.pid, signal.SIGCONT)
    for receiver in held:
        assert receiver.wait() == 0, receiver.stderr
    assert sender.wait() == 0, sender.stderr
    assert sha256_file(tmp_path / "out1" / "a.bin") == sha256_file(src)


def test_a_wrong_code_ends_the_link_for_every_receiver(relay, tmp_path):
    src = random_file(tmp_path / "a.bin", 64 << 20)
    sender = send(relay.url, src, extra=["--receivers", "3"])
    code = sender.wait_event("code")["code"]
    room, *words = code.split("-")
    wrong = "-".join([room, "zoo" if words[0] != "zoo" else "zero", *words[1:]])

    first_out = tmp_path / "first"
    first_out.mkdir()
    # If the sender's goodbye is cut short, the paused receiver treats it as a lost connection:
    # a short resume window keeps that from taking the default ten minutes.
    first = receive(relay.url, code, first_out, env={"HUSHDROP_RESUME_WINDOW": "5"})
    first.wait_event("verification")
    # Confirmed on both sides, so the sender can tell it why in a sealed CANCEL (an ABORT
    # before confirmation carries no words, §5.4).
    assert sender.wait_event("verification")["receiver"] == 1
    os.kill(first.proc.pid, signal.SIGSTOP)  # mid-transfer when the guess comes
    try:
        guess = receive(relay.url, wrong, tmp_path / "guess")
        assert guess.wait() == EXIT_WRONG_CODE
        assert sender.wait() == EXIT_WRONG_CODE
    finally:
        os.kill(first.proc.pid, signal.SIGCONT)
    assert "intercept" in sender.error()["message"]
    assert first.wait() != 0
    # Told why in a sealed CANCEL; when the sender's words are stuck behind the data still in
    # flight to the paused receiver, it learns at least that the sender left.
    ended = first.error()
    assert "wrong code" in ended["message"] or ended["kind"] == "peer-gone", ended
    assert not (first_out / "a.bin").exists()
    assert not list(first_out.rglob(".hushdrop-*"))

    later = receive(relay.url, code, tmp_path)
    assert later.wait() == EXIT_CONNECTION
    assert later.error()["message"].startswith("No transfer is waiting")


def test_receivers_out_of_range_is_a_usage_error(relay, tmp_path: Path):
    src = random_file(tmp_path / "a.bin", 10)
    sender = send(relay.url, src, extra=["--receivers", "11"])
    assert sender.wait() == 2
    assert "1 to 10" in sender.stderr


def test_one_receivers_lost_connection_resumes_on_its_own(relay, tmp_path):
    """Each receiver's session resumes with its own resume ID (§8); the others carry on."""
    src = random_file(tmp_path / "big.bin", SIZE)
    proxy = CuttableProxy(relay.port, RATE)  # the flaky receiver's network
    try:
        sender = send(relay.url, src, extra=["--receivers", "2"])
        code = sender.wait_event("code")["code"]
        steady_out, flaky_out = tmp_path / "steady", tmp_path / "flaky"
        steady_out.mkdir()
        flaky_out.mkdir()
        steady = receive(relay.url, code, steady_out)
        steady.wait_event("verification")
        flaky = receive(proxy.url, code, flaky_out)
        wait_progress(flaky, SIZE // 4)
        proxy.cut()
        assert flaky.wait() == 0, flaky.stderr
        assert steady.wait() == 0, steady.stderr
        assert sender.wait() == 0, sender.stderr
        assert 0 < flaky.wait_event("resumed")["bytes"] < SIZE
        assert "reconnecting" not in [e["event"] for e in steady.events]
        for out in (steady_out, flaky_out):
            assert sha256_file(out / "big.bin") == sha256_file(src)
        resumed = [e for e in sender.events if e["event"] == "resumed"]
        assert [e["receiver"] for e in resumed] == [2]
    finally:
        proxy.close()


class TerminalReceive:
    """`hushdrop receive` on a terminal of its own (a pseudo-terminal), as a person runs it:
    it shows the offer and asks "Accept? [y/N]"; what it writes is read from the terminal."""

    def __init__(self, relay_url: str, code: str, cwd: Path) -> None:
        self.master, child = pty.openpty()
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUSHDROP_")}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hushdrop.cli.main",
                "receive",
                "--no-direct",
                *("--relay", relay_url),
            ],
            stdin=child,
            stdout=child,
            stderr=child,
            env={**env, "HUSHDROP_CODE": code},
            cwd=cwd,
        )
        os.close(child)
        self.output = ""

    def read_until(self, text: str, timeout: float = 60) -> str:
        """What it wrote, once it wrote `text` or exited."""
        deadline = time.monotonic() + timeout
        while text not in self.output and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # EIO: it exited and closed the terminal
                break
            if not chunk:
                break
            self.output += chunk.decode(errors="replace")
        return self.output

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        os.close(self.master)


@pytest.mark.parametrize("what", ["text", "file"])
def test_a_receiver_at_its_accept_prompt_is_told_at_once_when_a_failed_guess_closes_the_link(
    relay, tmp_path, what
):
    text = "the door code is 4711"
    if what == "text":
        sender = send(relay.url, extra=["--text", text, "--receivers", "2"])
    else:
        source = random_file(tmp_path / "a.bin", 5000)
        sender = send(relay.url, source, extra=["--receivers", "2"])
    code = sender.wait_event("code")["code"]
    room, *words = code.split("-")
    wrong = "-".join([room, "zoo" if words[0] != "zoo" else "zero", *words[1:]])
    out = tmp_path / "out"
    out.mkdir()
    first = TerminalReceive(relay.url, code, out)
    try:
        assert "Accept? [y/N]" in first.read_until("Accept? [y/N]"), first.output

        guess = receive(relay.url, wrong, tmp_path / "guess")
        assert guess.wait() == EXIT_WRONG_CODE
        assert sender.wait() == EXIT_WRONG_CODE

        # Nobody answers: the sender's reason ends the question, and nothing is delivered.
        said = first.read_until("new link")
        assert first.proc.wait(timeout=60) == 1, said
    finally:
        first.stop()
    assert "wrong code" in said and "closed it for every receiver" in said, said
    assert text not in said
    assert list(out.iterdir()) == []


def test_ctrl_c_once_a_receiver_has_it_closes_the_link_and_keeps_what_was_delivered(
    relay, tmp_path
):
    src = random_file(tmp_path / "a.bin", 300_000)
    sender = send(relay.url, src, extra=["--receivers", "3"])
    code = sender.wait_event("code")["code"]
    out = tmp_path / "out"
    out.mkdir()
    first = receive(relay.url, code, out)
    assert first.wait() == 0, first.stderr
    assert [e["receiver"] for e in sender.events if e["event"] == "done"] == [1]

    sender.proc.send_signal(signal.SIGINT)

    assert sender.wait() == 0, sender.stderr
    said = [e["message"] for e in sender.events if e["event"] == "status"]
    assert said[-1] == "Closed the link: sent to 1 receiver; nobody else can use it.", said
    assert sha256_file(out / "a.bin") == sha256_file(src)
    later = receive(relay.url, code, tmp_path)
    assert later.wait() == EXIT_CONNECTION
    assert later.error()["message"].startswith("No transfer is waiting")
