"""Pipes: `hushdrop send -` streams standard input, `hushdrop receive -o -` writes standard
output; real CLI processes through a real relay (PROTOCOL.md §7.2)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .cli import TIMEOUT, CliProcess, FlippingProxy, receive, send, sha256_file
from .proxy import CuttableProxy
from .test_cli_resume import wait_progress

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CONNECTION = 4
EXIT_TAMPERED = 5
EXIT_INTERRUPTED = 130
MIB = 1 << 20


class Cli:
    """A `hushdrop` process with its standard streams as pipes, and its peak memory."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("HUSHDROP_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hushdrop.cli.main", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**clean, **(env or {})},
        )
        self.peak_rss = 0  # VmHWM, the kernel's high-water mark of resident memory, in bytes
        self.stderr = b""
        threading.Thread(target=self._watch_memory, daemon=True).start()
        self._stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_reader.start()

    def _watch_memory(self) -> None:
        status = Path(f"/proc/{self.proc.pid}/status")
        while self.proc.poll() is None:
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak_rss = max(self.peak_rss, int(line.split()[1]) * 1024)
            except (OSError, ValueError):
                return
            time.sleep(0.02)

    def _read_stderr(self) -> None:
        self.stderr = self.proc.stderr.read()

    def wait(self) -> int:
        try:
            return self.proc.wait(TIMEOUT)
        finally:
            self._stderr_reader.join(10)

    def output(self) -> bytes:
        """Everything the process writes to standard output, once it exited."""
        out = self.proc.stdout.read()
        self.wait()
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def read_code(sender: Cli) -> str:
    for line in sender.proc.stdout:
        event = json.loads(line)
        if event["event"] == "code":
            return event["code"]
    raise AssertionError(f"no code; stderr: {sender.stderr!r}")


def feed(proc: subprocess.Popen, size: int, digest: hashlib._Hash) -> threading.Thread:
    """Write `size` pseudo-random bytes into `proc`'s standard input, then close it."""

    def run() -> None:
        block = os.urandom(MIB)
        try:
            for index in range(size // MIB):
                piece = bytes([index % 256]) + block[1:]
                digest.update(piece)
                proc.stdin.write(piece)
            proc.stdin.close()
        except BrokenPipeError:
            pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def drain(proc: subprocess.Popen) -> tuple[hashlib._Hash, list[int]]:
    """Read `proc`'s standard output to its end on a thread: (its SHA-256, [its length])."""
    digest, length = hashlib.sha256(), [0]

    def run() -> None:
        while block := proc.stdout.read(MIB):
            digest.update(block)
            length[0] += len(block)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    drain.threads.append(thread)
    return digest, length


drain.threads = []


@pytest.fixture
def processes():
    started: list[Cli] = []
    yield started
    for cli in started:
        cli.stop()


def pipe_transfer(relay, processes, size: int, route: list[str]) -> tuple[Cli, Cli]:
    """`size` bytes from a pipe into `send -`, out of `receive -o -` into a pipe: checked
    intact; returns both processes, ended."""
    sender = Cli(["send", "-", *route, "--relay", relay.url, "--json"])
    processes.append(sender)
    sent = hashlib.sha256()
    feeder = feed(sender.proc, size, sent)
    code = read_code(sender)
    receiver = Cli(
        ["receive", "-o", "-", "--yes", *route, "--relay", relay.url], {"HUSHDROP_CODE": code}
    )
    processes.append(receiver)
    received, length = drain(receiver.proc)
    assert receiver.wait() == 0, (receiver.stderr, sender.wait(), sender.stderr)
    assert sender.wait() == 0, sender.stderr
    feeder.join(10)
    drain.threads[-1].join(10)
    assert length[0] == size
    assert received.hexdigest() == sent.hexdigest()
    return sender, receiver


@pytest.mark.parametrize("route", [[], ["--no-direct"]], ids=["direct", "relay"])
def test_64_mib_through_pipes_on_both_ends_arrive_intact_in_bounded_memory(relay, processes, route):
    small = pipe_transfer(relay, processes, MIB, route)
    large = pipe_transfer(relay, processes, 64 * MIB, route)
    print(
        f"{route}: peak RSS (1 MiB, 64 MiB): sender "
        f"{small[0].peak_rss / MIB:.1f}, {large[0].peak_rss / MIB:.1f} MiB; receiver "
        f"{small[1].peak_rss / MIB:.1f}, {large[1].peak_rss / MIB:.1f} MiB"
    )
    # Neither side holds the stream: 64 times the data costs each side far less than the data
    # (at most its credit window and buffers, ~16 MiB, above the same CLI moving 1 MiB).
    for before, after in zip(small, large, strict=True):
        assert after.peak_rss - before.peak_rss < 24 * MIB, (before.peak_rss, after.peak_rss)
    assert b"Done" in large[1].stderr


def test_standard_input_saved_into_a_folder_gets_the_name_given(relay, tmp_path, processes):
    out = tmp_path / "out"
    sender = Cli(["send", "-", "--name", "notes.txt", "--relay", relay.url, "--json"])
    processes.append(sender)
    sender.proc.stdin.write(b"hello from a pipe\n" * 1000)
    sender.proc.stdin.close()
    receiver = receive(relay.url, read_code(sender), out)
    assert receiver.wait() == 0, receiver.stderr
    assert sender.wait() == 0, sender.stderr
    assert (out / "notes.txt").read_bytes() == b"hello from a pipe\n" * 1000
    assert receiver.wait_event("done")["bytes"] == 18_000
    assert not list(out.glob(".hushdrop-*"))


def test_an_empty_standard_input_arrives_as_an_empty_file(relay, processes):
    sender = Cli(["send", "-", "--relay", relay.url, "--json"])
    processes.append(sender)
    sender.proc.stdin.close()
    code = read_code(sender)
    receiver = Cli(["receive", "-o", "-", "--yes", "--relay", relay.url], {"HUSHDROP_CODE": code})
    processes.append(receiver)
    assert receiver.output() == b""
    assert receiver.proc.returncode == 0, receiver.stderr
    assert sender.wait() == 0


def test_standard_output_refuses_several_files_and_the_sender_is_told_why(
    relay, tmp_path, processes
):
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(name)
    sender = send(relay.url, tmp_path / "a.txt", tmp_path / "b.txt")
    code = sender.wait_event("code")["code"]
    receiver = Cli(["receive", "-o", "-", "--yes", "--relay", relay.url], {"HUSHDROP_CODE": code})
    processes.append(receiver)
    assert receiver.output() == b""
    assert receiver.proc.returncode == EXIT_USAGE
    assert b"standard output" in receiver.stderr and b"-o DIR" in receiver.stderr
    assert sender.wait() != 0
    assert "standard output, which takes a single file" in sender.error()["message"]


def test_a_tampered_stream_to_standard_output_exits_non_zero_with_a_clear_error(relay, processes):
    proxy = FlippingProxy(relay.port, offset=6 * MIB + 4321, direction="to_client")
    try:
        # All data through the relay (and the proxy): no direct connection between the CLIs.
        sender = Cli(["send", "-", "--no-direct", "--relay", relay.url, "--json"])
        processes.append(sender)
        feed(sender.proc, 20 * MIB, hashlib.sha256())
        code = read_code(sender)
        receiver = Cli(
            ["receive", "-o", "-", "--yes", "--no-direct", "--relay", proxy.url],
            {"HUSHDROP_CODE": code},
        )
        processes.append(receiver)
        _, length = drain(receiver.proc)
        assert receiver.wait() == EXIT_TAMPERED
        assert proxy.flipped.is_set()
        drain.threads[-1].join(10)
        assert length[0] < 20 * MIB
        message = receiver.stderr.decode()
        assert "failed authentication" in message
        assert "already written to standard output are incomplete" in message
        assert sender.wait() != 0
    finally:
        proxy.close()


def test_a_stream_sent_with_other_paths_is_a_usage_error(relay, tmp_path):
    (tmp_path / "a").write_text("a")
    result = subprocess.run(
        [sys.executable, "-m", "hushdrop.cli.main", "send", "-", str(tmp_path / "a")],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=TIMEOUT,
    )
    assert result.returncode == EXIT_USAGE
    assert b"standard input" in result.stderr


def test_json_output_and_standard_output_together_are_a_usage_error(relay):
    result = subprocess.run(
        [sys.executable, "-m", "hushdrop.cli.main", "receive", "-o", "-", "--json"],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "HUSHDROP_CODE": "123456-abandon-ability-able"},
        timeout=TIMEOUT,
    )
    assert result.returncode == EXIT_USAGE
    assert b"standard output" in result.stdout + result.stderr


def test_a_sent_file_and_its_sha256_match_when_piped_from_a_file(relay, tmp_path, processes):
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(3 * MIB + 17))
    with open(source, "rb") as stdin:
        sender = subprocess.Popen(
            [sys.executable, "-m", "hushdrop.cli.main", "send", "-", "--relay", relay.url],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    try:
        code = next(line for line in sender.stdout if line.startswith("Code: "))[6:].strip()
        out = tmp_path / "out"
        receiver = receive(relay.url, code, out)
        assert receiver.wait() == 0, receiver.stderr
        assert sender.wait(TIMEOUT) == 0
        assert sha256_file(out / "stdin") == sha256_file(source)
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait(10)


def test_a_stream_whose_relay_connection_breaks_resumes_and_arrives_intact(
    relay, tmp_path, processes
):
    # Standard input cannot be read again: the sender keeps what the receiver has not
    # verified yet (about a credit window) and resumes from the receiver's position (§7.2).
    network = CuttableProxy(relay.port, 16 * MIB)  # the receiver's link, slow enough to cut
    try:
        sender = Cli(["send", "-", "--no-direct", "--relay", relay.url, "--json"])
        processes.append(sender)
        sent = hashlib.sha256()
        feed(sender.proc, 64 * MIB, sent)
        code = read_code(sender)
        out = tmp_path / "out"
        receiver = receive(network.url, code, out)
        wait_progress(receiver, 16 * MIB)
        network.cut()
        assert receiver.wait() == 0, (receiver.events, receiver.stderr)
        assert sender.wait() == 0, sender.stderr
        assert any(event.get("event") == "resumed" for event in receiver.events)
        assert sha256_file(out / "stdin") == sent.hexdigest()
    finally:
        network.close()


def test_a_quiet_producer_outlives_the_relays_idle_timeout_and_its_lines_arrive_as_written(
    relay_factory, processes
):
    # `tail -f` or a slow dump: the first line reaches the receiver's output while the
    # producer is still running, and a pause three times the relay's idle timeout does not
    # end the transfer (the sender keeps the connection alive, §7.2).
    short = relay_factory("--idle-timeout", "3")
    sender = Cli(["send", "-", "--no-direct", "--relay", short.url, "--json"])
    processes.append(sender)
    sender.proc.stdin.write(b"the first line\n")
    sender.proc.stdin.flush()
    code = read_code(sender)
    receiver = Cli(
        ["receive", "-o", "-", "--yes", "--no-direct", "--relay", short.url],
        {"HUSHDROP_CODE": code},
    )
    processes.append(receiver)
    first: list[bytes] = []
    reader = threading.Thread(target=lambda: first.append(receiver.proc.stdout.readline()))
    reader.start()
    reader.join(TIMEOUT)  # a generous bound: it arrives as soon as the sender's input idles
    assert first == [b"the first line\n"], (receiver.proc.poll(), receiver.stderr)
    time.sleep(9)  # the producer is quiet for three idle timeouts
    assert sender.proc.poll() is None and receiver.proc.poll() is None
    sender.proc.stdin.write(b"the last line\n")
    sender.proc.stdin.close()
    assert receiver.output() == b"the last line\n", receiver.stderr
    assert receiver.wait() == 0 and sender.wait() == 0, (receiver.stderr, sender.stderr)


def test_a_trickling_producers_first_line_arrives_while_it_keeps_writing(relay, processes):
    # A line every 0.1 s never leaves the sender's input idle for a whole flush delay; its
    # lines still reach the receiver's output as they come, not when a 1 MiB message fills.
    sender = Cli(["send", "-", "--no-direct", "--relay", relay.url, "--json"])
    processes.append(sender)
    code = read_code(sender)
    receiver = Cli(
        ["receive", "-o", "-", "--yes", "--no-direct", "--relay", relay.url],
        {"HUSHDROP_CODE": code},
    )
    processes.append(receiver)
    first: list[bytes] = []
    reader = threading.Thread(target=lambda: first.append(receiver.proc.stdout.readline()))
    reader.start()
    lines = 0
    deadline = time.monotonic() + TIMEOUT  # a generous bound, not a measurement
    while reader.is_alive() and time.monotonic() < deadline:
        sender.proc.stdin.write(b"line %06d\n" % lines)
        sender.proc.stdin.flush()
        lines += 1
        time.sleep(0.1)
    assert first == [b"line 000000\n"], (receiver.proc.poll(), receiver.stderr)
    sender.proc.stdin.close()
    rest = receiver.output()
    assert first[0] + rest == b"".join(b"line %06d\n" % n for n in range(lines))
    assert receiver.wait() == 0 and sender.wait() == 0, (receiver.stderr, sender.stderr)


ACCEPTED = "The receiver accepted; sending…"


def idle_producer(relay, env: dict[str, str] | None = None) -> CliProcess:
    """`send -` whose producer wrote a little and then went quiet: its pipe stays open."""
    sender = send(relay.url, Path("-"), env=env, stdin=subprocess.PIPE)
    sender.proc.stdin.write(b"the first line of a long log\n")
    sender.proc.stdin.flush()
    return sender


def wait_accepted(sender: CliProcess) -> None:
    """Until the receiver accepted: the sender then waits for more from its producer."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if any(e.get("message") == ACCEPTED for e in list(sender.events)):
            return
        time.sleep(0.05)
    raise AssertionError(f"not accepted: {sender.events}; stderr: {sender.stderr}")


def stopped_by_the_test(sender: CliProcess) -> int:
    """The sender's exit status; its (idle) standard input is closed only after it ended."""
    try:
        return sender.wait()
    finally:
        sender.proc.stdin.close()
        sender.stop()


def test_a_receiver_that_cancels_ends_a_sender_waiting_on_standard_input(relay, tmp_path):
    sender = idle_producer(relay)
    out = tmp_path / "out"
    out.mkdir()
    receiver = receive(relay.url, sender.wait_event("code")["code"], out)
    try:
        wait_accepted(sender)
        receiver.proc.send_signal(signal.SIGINT)
        assert receiver.wait() == EXIT_INTERRUPTED
    finally:
        receiver.stop()
    assert stopped_by_the_test(sender) == EXIT_ERROR
    assert sender.error() == {
        "event": "error",
        "kind": "cancelled",
        "message": "The receiver cancelled the transfer.",
    }
    assert list(out.iterdir()) == []


def test_a_sender_waiting_on_standard_input_shows_what_the_receiver_has_so_far(relay, tmp_path):
    # `tail -f log | hushdrop send -`: the sender's progress counts the first line as soon as
    # the receiver has it, not after 4 MiB more of the log (§7.4).
    sender = idle_producer(relay)
    out = tmp_path / "out"
    out.mkdir()
    receiver = receive(relay.url, sender.wait_event("code")["code"], out)
    first_line = len(b"the first line of a long log\n")
    try:
        wait_progress(sender, first_line)
        assert sender.proc.poll() is None  # still waiting for its producer
        sender.proc.stdin.write(b"and one more\n")
        sender.proc.stdin.flush()
        wait_progress(sender, first_line + len(b"and one more\n"))
        sender.proc.stdin.close()
        assert receiver.wait() == 0 and sender.wait() == 0, (receiver.stderr, sender.stderr)
    finally:
        sender.stop()
        receiver.stop()
    saved = (out / "stdin").read_bytes()
    assert saved == b"the first line of a long log\nand one more\n"


def test_a_receiver_that_goes_away_ends_a_sender_waiting_on_standard_input(relay, tmp_path):
    sender = idle_producer(relay, {"HUSHDROP_RESUME_WINDOW": "2"})
    receiver = receive(relay.url, sender.wait_event("code")["code"], tmp_path / "out")
    try:
        wait_accepted(sender)
        receiver.proc.kill()  # no CANCEL: the relay reports the receiver's connection gone
    finally:
        receiver.stop()
    assert stopped_by_the_test(sender) == EXIT_CONNECTION
    assert "the receiver did not come back within 2 seconds" in sender.error()["message"]


def test_ctrl_c_stops_a_sender_waiting_on_standard_input_and_tells_the_receiver(relay, tmp_path):
    sender = idle_producer(relay)
    receiver = receive(relay.url, sender.wait_event("code")["code"], tmp_path / "out")
    try:
        wait_accepted(sender)
        sender.proc.send_signal(signal.SIGINT)
        assert stopped_by_the_test(sender) == EXIT_INTERRUPTED
        assert sender.error()["kind"] == "interrupted"
        assert receiver.wait() == EXIT_ERROR
    finally:
        receiver.stop()
    assert receiver.error()["message"] == "The sender cancelled the transfer."


def with_standard_output_closed(args: list[str], env: dict[str, str] | None = None):
    """`hushdrop ARGS >&-`, as a shell runs it: standard output closed, not redirected."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HUSHDROP_")}
    return subprocess.Popen(
        ["sh", "-c", 'exec "$@" >&-', "sh", sys.executable, "-m", "hushdrop.cli.main", *args],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**clean, **(env or {})},
    )


def test_standard_output_closed_with_o_dash_is_a_usage_error_without_a_traceback(relay):
    receiver = with_standard_output_closed(
        ["receive", "-o", "-", "--yes", "--relay", relay.url], {"HUSHDROP_CODE": "123456-a-b-c"}
    )
    _, stderr = receiver.communicate(timeout=TIMEOUT)
    assert receiver.returncode == EXIT_USAGE
    assert b"standard output, but it is closed" in stderr
    assert b"Traceback" not in stderr


def test_a_sender_whose_standard_output_is_closed_shows_its_code_on_standard_error(relay, tmp_path):
    (tmp_path / "a.txt").write_text("a")
    sender = with_standard_output_closed(
        ["send", "--no-direct", "--relay", relay.url, str(tmp_path / "a.txt")]
    )
    try:
        lines = [sender.stderr.readline()]
        while lines[-1] and b"Waiting for" not in lines[-1]:  # said right after the code
            lines.append(sender.stderr.readline())
        codes = [line.split()[1].decode() for line in lines if line.startswith(b"Code: ")]
        assert codes, lines
        code = codes[0]
        receiver = receive(relay.url, code, tmp_path / "out")
        assert receiver.wait() == 0, receiver.stderr
        assert (tmp_path / "out" / "a.txt").read_text() == "a"
        assert sender.wait(TIMEOUT) == 0
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait(10)


def test_standard_output_shows_the_senders_file_name_in_the_offer(relay, tmp_path):
    (tmp_path / "notes.txt").write_text("n")
    sender = send(relay.url, tmp_path / "notes.txt")
    try:
        code = sender.wait_event("code")["code"]
        receiver = CliProcess(
            ["receive", "-o", "-", "--yes", "--no-direct", "--relay", relay.url],
            {"HUSHDROP_CODE": code},
            json_mode=False,
        )
        assert receiver.wait() == 0, receiver.stderr
        assert "notes.txt (to standard output)" in receiver.stderr
        assert receiver.stdout == "n"
    finally:
        sender.stop()
