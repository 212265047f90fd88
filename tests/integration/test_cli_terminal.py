"""The CLI on a real terminal (a pseudo-terminal the test types into): standard input typed by
hand, passwords asked on the terminal while standard input carries the data, and what a
received file may do to the terminal it is written to."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios

import pytest

from .cli import TIMEOUT, CliProcess
from .test_cli_completion import Terminal

EXIT_INTERRUPTED = 130


class PipedTerminal(Terminal):
    """A process whose standard input is a pipe the test writes, run from a terminal (its
    controlling terminal, /dev/tty, where standard output and error go too)."""

    def __init__(self, args: list[str]) -> None:
        self.master, slave = pty.openpty()
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUSHDROP_")}
        env["TERM"] = "xterm"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hushdrop.cli.main", *args],
            stdin=subprocess.PIPE,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
            # the new session's controlling terminal: the pty, as a shell's would be
            preexec_fn=lambda: fcntl.ioctl(2, termios.TIOCSCTTY, 0),
        )
        os.close(slave)
        self.screen = b""


class WideTerminal(Terminal):
    """A terminal 120 columns wide (a new pty has none, and nothing draws a bar in 0)."""

    def __init__(self, args: list[str], stdout: int | None = None) -> None:
        real_openpty = pty.openpty

        def sized_openpty() -> tuple[int, int]:
            master, slave = real_openpty()
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
            return master, slave

        pty.openpty = sized_openpty
        try:
            super().__init__(args, stdout)
        finally:
            pty.openpty = real_openpty


@pytest.fixture
def terminal():
    opened: list[Terminal] = []

    def open_terminal(*args: str, stdout: int | None = None) -> Terminal:
        opened.append(WideTerminal(list(args), stdout))
        return opened[-1]

    yield open_terminal
    for term in opened:
        term.close()


def code_from(screen: bytes) -> str:
    """The code of a `send --json` whose output is the terminal."""
    for line in screen.decode(errors="replace").splitlines():
        if '"event": "code"' in line:
            return json.loads(line[line.index("{") :])["code"]
    raise AssertionError(screen)


def receive_to_pipe(relay, code: str) -> CliProcess:
    return CliProcess(
        ["receive", "-o", "-", "--yes", "--relay", relay.url],
        {"HUSHDROP_CODE": code},
        json_mode=False,
    )


def test_one_ctrl_d_ends_standard_input_typed_at_a_terminal(terminal, relay):
    sender = terminal("send", "-", "--no-direct", "--json", "--relay", relay.url)
    code = code_from(sender.read_until(b'"receivers"'))
    receiver = receive_to_pipe(relay, code)
    try:
        sender.read_until(b"Ctrl-D")
        sender.type(b"typed by hand\n\x04")  # one Ctrl-D, as the message says
        assert sender.proc.wait(TIMEOUT) == 0, sender.screen
        assert receiver.wait() == 0, receiver.stderr
        assert receiver.stdout == "typed by hand\n"
    finally:
        receiver.stop()


def typed_code(screen: bytes) -> str:
    found = re.search(rb"Code: (\d+(?:-[a-z]+)+)", screen)
    assert found, screen
    return found.group(1).decode()


def test_send_of_standard_input_asks_for_the_password_on_the_terminal(relay):
    # `tar c dir | hushdrop send - --password` in a terminal: standard input is the data, so
    # the password is asked on the terminal itself (/dev/tty).
    sender = PipedTerminal(["send", "-", "--password", "--no-direct", "--relay", relay.url])
    receiver = None
    try:
        sender.proc.stdin.write(b"piped data\n")
        sender.proc.stdin.close()
        sender.read_until(b"Password: ")
        sender.type(b"correct horse\r")
        sender.read_until(b"Password again: ")
        sender.type(b"correct horse\r")
        code = typed_code(sender.read_until(b"Link: "))
        receiver = CliProcess(
            ["receive", "-o", "-", "--yes", "--password", "--relay", relay.url],
            {"HUSHDROP_CODE": code, "HUSHDROP_PASSWORD": "correct horse"},
            json_mode=False,
        )
        assert receiver.wait() == 0, receiver.stderr
        assert receiver.stdout == "piped data\n"
        assert sender.proc.wait(TIMEOUT) == 0, sender.screen
        assert b"correct horse" not in sender.screen  # not echoed
    finally:
        sender.close()
        if receiver is not None:
            receiver.stop()


def test_a_file_received_onto_a_terminal_cannot_act_on_it(terminal, relay, tmp_path):
    # A hostile sender's file, `receive -o -` on a terminal: its bytes would set the window's
    # title and clear the screen. Shown made printable instead, like a received text.
    hostile = tmp_path / "esc.bin"
    hostile.write_bytes(b"hi\x1b]0;PWNED\x07\x1b[2J\r\nthere\x9b6n\xff\n")
    sender = CliProcess(["send", str(hostile), "--relay", relay.url])
    try:
        code = sender.wait_event("code")["code"]
        receiver = terminal(
            "receive", code, "-o", "-", "--yes", "--no-direct", "--relay", relay.url
        )
        screen = receiver.read_until(b"Done:")
        assert receiver.proc.wait(TIMEOUT) == 0, screen
        assert b"\x1b]0;" not in screen and b"\x1b[2J" not in screen and b"\x07" not in screen
        assert b"\x9b" not in screen  # the one-byte CSI, not UTF-8: replaced
        assert b"%|" not in screen  # no progress bar drawn over the file's lines
        assert "hi\ufffd]0;PWNED\ufffd[2J\r\nthere\ufffd6n\ufffd".encode() in screen
        assert sender.wait() == 0
    finally:
        sender.stop()


def test_ctrl_c_at_the_code_prompt_says_so_on_a_line_of_its_own(terminal, tmp_path):
    term = terminal("receive", "--relay", "http://127.0.0.1:9", "-o", str(tmp_path))
    term.read_until(b"Code or link: ")
    term.proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    assert term.proc.wait(TIMEOUT) == EXIT_INTERRUPTED
    screen = term.read_until(b"Interrupted")
    assert re.search(rb"Code or link: \r?\n\S*Error", screen), screen


def test_the_progress_bar_counts_in_the_same_units_as_the_other_lines(terminal, relay, tmp_path):
    data = tmp_path / "five.bin"
    data.write_bytes(os.urandom(5 << 20))
    sender = CliProcess(["send", str(data), "--relay", relay.url])
    try:
        code = sender.wait_event("code")["code"]
        out = tmp_path / "out"
        receiver = terminal(
            "receive", code, "-o", str(out), "--yes", "--no-direct", "--relay", relay.url
        )
        screen = receiver.read_until(b"Done:")
        assert receiver.proc.wait(TIMEOUT) == 0, screen
        assert b"5.0 MiB/5.0 MiB" in screen  # the bar's, as the Done line says it
        assert b"MB" not in screen and b"kB" not in screen  # not tqdm's decimal units
        assert sender.wait() == 0
    finally:
        sender.stop()


def test_receive_with_the_code_piped_in_asks_for_the_password_on_the_terminal(relay, tmp_path):
    (tmp_path / "a.txt").write_text("secret")
    sender = CliProcess(
        ["send", str(tmp_path / "a.txt"), "--password", "--relay", relay.url],
        {"HUSHDROP_PASSWORD": "correct horse"},
    )
    receiver = PipedTerminal(
        ["receive", "-o", str(tmp_path / "out"), "--yes", "--no-direct", "--relay", relay.url]
    )
    try:
        code = sender.wait_event("code")["code"]
        receiver.proc.stdin.write(code.encode() + b"\n")  # `echo CODE | hushdrop receive`
        receiver.proc.stdin.close()
        receiver.read_until(b"Password: ")
        receiver.type(b"correct horse\r")
        assert receiver.proc.wait(TIMEOUT) == 0, receiver.screen
        assert (tmp_path / "out" / "a.txt").read_text() == "secret"
        assert sender.wait() == 0
    finally:
        receiver.close()
        sender.stop()
