"""The CLI on a real terminal (a pseudo-terminal the test types into): standard input typed by
hand, passwords asked on the terminal while standard input carries the data, and what a
received file may do to the terminal it is written to."""

from __future__ import annotations

import json

import pytest

from .cli import TIMEOUT, CliProcess
from .test_cli_completion import Terminal


@pytest.fixture
def terminal():
    opened: list[Terminal] = []

    def open_terminal(*args: str, stdout: int | None = None) -> Terminal:
        opened.append(Terminal(list(args), stdout))
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
