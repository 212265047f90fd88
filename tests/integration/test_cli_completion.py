"""Completion: the code prompt completes its words with TAB (a real CLI on a real terminal, a
pty), and `hushdrop completion bash|zsh|fish` scripts run in the real shells."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import termios
import time

import pytest

from .cli import TIMEOUT

EXIT_USAGE = 2
HUSHDROP = [sys.executable, "-m", "hushdrop.cli.main"]


class Terminal:
    """`hushdrop receive` without a code, on a pseudo-terminal we type into."""

    def __init__(self, args: list[str], stdout: int | None = None) -> None:
        """`stdout`: where standard output goes instead of the terminal (`-o -` into a pipe)."""
        self.master, slave = pty.openpty()
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUSHDROP_")}
        env["TERM"] = "xterm"
        self.proc = subprocess.Popen(
            [*HUSHDROP, *args],
            stdin=slave,
            stdout=slave if stdout is None else stdout,
            stderr=slave,
            env=env,
            start_new_session=True,
        )
        os.close(slave)
        self.screen = b""

    def read_until(self, text: bytes, timeout: float = 30) -> bytes:
        deadline = time.monotonic() + timeout
        while text not in self.screen and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    self.screen += os.read(self.master, 4096)
                except OSError:
                    break
        assert text in self.screen, self.screen
        return self.screen

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        os.close(self.master)


@pytest.fixture
def terminal():
    opened: list[Terminal] = []

    def open_terminal(*args: str, stdout: int | None = None) -> Terminal:
        opened.append(Terminal(list(args), stdout))
        return opened[-1]

    yield open_terminal
    for term in opened:
        term.close()


def test_tab_completes_a_code_word_at_the_prompt(terminal, tmp_path):
    term = terminal("receive", "--relay", "http://127.0.0.1:9", "-o", str(tmp_path))
    term.read_until(b"Code or link: ")
    term.type(b"123456-aban\t")
    term.read_until(b"123456-abandon-")
    term.type(b"abil\t")
    term.read_until(b"123456-abandon-ability-")
    term.type(b"\x15\x04")  # Ctrl-U, Ctrl-D: the line is gone, then end of input
    assert term.proc.wait(TIMEOUT) == EXIT_USAGE
    assert b"No code given" in term.read_until(b"No code given")


def test_tab_twice_lists_the_words_a_prefix_can_become(terminal, tmp_path):
    term = terminal("receive", "--relay", "http://127.0.0.1:9", "-o", str(tmp_path))
    term.read_until(b"Code or link: ")
    term.type(b"123456-fine-abs\t\t")
    screen = term.read_until(b"123456-fine-absurd-")
    for word in (b"absent", b"absorb", b"abstract", b"absurd"):
        assert b"123456-fine-" + word + b"-" in screen
    term.type(b"\x15\x04")
    assert term.proc.wait(TIMEOUT) == EXIT_USAGE


def test_the_prompt_completes_on_the_terminal_when_standard_output_is_a_pipe(terminal):
    # `hushdrop receive -o - > file`: the prompt and its completion stay on the terminal, and
    # nothing of them reaches standard output, which carries the received file.
    read_end, write_end = os.pipe()
    term = terminal("receive", "--relay", "http://127.0.0.1:9", "-o", "-", stdout=write_end)
    os.close(write_end)
    term.read_until(b"Code or link: ")
    term.type(b"123456-aban\t")
    term.read_until(b"123456-abandon-")
    term.type(b"\x15\x04")
    assert term.proc.wait(TIMEOUT) == EXIT_USAGE
    with os.fdopen(read_end, "rb") as stdout:
        assert stdout.read() == b""


def test_the_code_typed_at_the_prompt_is_used_and_never_needed_in_argv(terminal, relay, tmp_path):
    term = terminal("receive", "--relay", relay.url, "-o", str(tmp_path))
    term.read_until(b"Code or link: ")
    term.type(b"999999-abandon-ability-able\r")
    # The relay has no such room: the code was read from the prompt and used.
    term.read_until(b"Error:")
    assert term.proc.wait(TIMEOUT) != 0
    assert b"999999" not in " ".join(term.proc.args[2:]).encode()


def test_receive_with_json_on_a_terminal_asks_for_no_code(terminal, tmp_path):
    # --json is for scripts: it never prompts, even when run from a terminal (README).
    term = terminal("receive", "--json", "--relay", "http://127.0.0.1:9", "-o", str(tmp_path))
    assert term.proc.wait(TIMEOUT) == EXIT_USAGE
    screen = term.read_until(b"never prompts")
    assert b"Code or link" not in screen
    assert b'"event": "error"' in screen


def test_send_with_json_on_a_terminal_asks_for_no_password(terminal, tmp_path):
    (tmp_path / "a.txt").write_text("a")
    term = terminal(
        "send", "--json", "--password", "--relay", "http://127.0.0.1:9", str(tmp_path / "a.txt")
    )
    assert term.proc.wait(TIMEOUT) == 1
    screen = term.read_until(b"A password is needed")
    assert b"Password:" not in screen
    assert b"HUSHDROP_PASSWORD" in screen


def completion_script(shell: str) -> str:
    result = subprocess.run(
        [*HUSHDROP, "completion", shell], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def bash_complete(script, tmp_path, *words: str) -> list[str]:
    path = tmp_path / "hushdrop.bash"
    path.write_text(script)
    line = " ".join(f"'{w}'" for w in words)
    program = (
        f"source {path}; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; _hushdrop; "
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    result = subprocess.run(
        ["bash", "-c", program], capture_output=True, text=True, timeout=TIMEOUT, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_bash_completes_commands_options_and_folders(tmp_path):
    script = completion_script("bash")
    assert bash_complete(script, tmp_path, "hushdrop", "se") == ["send", "serve"]
    assert bash_complete(script, tmp_path, "hushdrop", "receive", "--ov") == ["--overwrite"]
    assert "--name" in bash_complete(script, tmp_path, "hushdrop", "send", "--")
    (tmp_path / "downloads").mkdir()
    (tmp_path / "data.txt").write_text("x")
    assert bash_complete(script, tmp_path, "hushdrop", "receive", "-o", "d") == ["downloads"]
    assert bash_complete(script, tmp_path, "hushdrop", "send", "da") == ["data.txt"]
    assert bash_complete(script, tmp_path, "hushdrop", "completion", "z") == ["zsh"]


def test_every_option_of_the_parser_is_in_the_scripts():
    from hushdrop.cli.completion import commands
    from hushdrop.cli.main import build_parser, delegated_parsers

    _, found = commands(build_parser(), delegated_parsers())
    assert "--idle-timeout" in [
        n for c in found if c.name == "serve" for o in c.options for n in o.names
    ]
    scripts = {shell: completion_script(shell) for shell in ("bash", "zsh", "fish")}
    for command in found:
        for option in command.options:
            for name in option.names:
                assert name in scripts["bash"] and name in scripts["zsh"]
                assert (f"-l {name[2:]}" if name.startswith("--") else f"-s {name[1:]}") in (
                    scripts["fish"]
                )


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed (make test-tools)")
def test_fish_completes_commands_options_and_shells(tmp_path):
    path = tmp_path / "hushdrop.fish"
    path.write_text(completion_script("fish"))

    def complete(line: str) -> list[str]:
        result = subprocess.run(
            ["fish", "--no-config", "-c", f"source {path}; complete -C '{line}'"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        assert result.returncode == 0, result.stderr
        return [entry.split("\t")[0] for entry in result.stdout.splitlines()]

    assert complete("hushdrop se") == ["send", "serve"]
    assert complete("hushdrop receive --ov") == ["--overwrite"]
    assert complete("hushdrop completion ") == ["bash", "fish", "zsh"]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed (make test-tools)")
def test_zsh_loads_the_script_and_registers_it_for_hushdrop(tmp_path):
    path = tmp_path / "_hushdrop"
    path.write_text(completion_script("zsh"))
    check = subprocess.run(["zsh", "-n", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    program = (
        f"autoload -U compinit; compinit -u -D; source {path}; "
        "print -r -- $_comps[hushdrop]; whence -w _hushdrop"
    )
    result = subprocess.run(
        ["zsh", "-f", "-c", program], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[0] == "_hushdrop"
    assert "_hushdrop: function" in result.stdout


class Shell:
    """An interactive shell on a pseudo-terminal, the completion script loaded: what TAB does
    there is what a user sees."""

    def __init__(self, command: list[str], setup: str, cwd) -> None:
        self.master, slave = pty.openpty()
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUSHDROP_")}
        env.update(TERM="dumb", HOME=str(cwd), PS1="$ ", PROMPT="$ ")
        self.proc = subprocess.Popen(
            command,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),  # a job-control shell's
        )
        os.close(slave)
        self.screen = b""
        self.type(setup + "; echo SET''UP\r")
        self.read_until(b"SETUP")

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def read_until(self, text: bytes, timeout: float = 30) -> bytes:
        return Terminal.read_until(self, text, timeout)  # type: ignore[arg-type]

    def complete(self, line: str, expected: bytes) -> bytes:
        """Type `line` and TAB; the screen once `expected` shows on it."""
        self.screen = b""
        self.type(line + "\t")
        try:
            return self.read_until(expected)
        finally:
            # Ctrl-U empties the line; a command run after it says the shell is ready again.
            self.type("\x15")
            self.type("echo READ''Y\r")
            self.read_until(b"READY")

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        os.close(self.master)


@pytest.fixture
def shell(tmp_path):
    opened: list[Shell] = []

    def start(name: str) -> Shell:
        script = tmp_path / f"hushdrop.{name}"
        script.write_text(completion_script(name))
        command, setup = {
            "bash": (["bash", "--norc", "--noprofile", "-i"], f"PS1='$ '; source {script}"),
            "zsh": (
                ["zsh", "-f", "-i"],
                f"PS1='$ '; autoload -U compinit; compinit -u -D; source {script}",
            ),
            "fish": (
                ["fish", "--no-config", "-i"],
                f"function fish_prompt; echo -n '$ '; end; source {script}",
            ),
        }[name]
        opened.append(Shell(command, setup, tmp_path))
        return opened[-1]

    yield start
    for opened_shell in opened:
        opened_shell.close()


SHELLS_HERE = [s for s in ("bash", "zsh", "fish") if shutil.which(s)]


@pytest.mark.parametrize("name", SHELLS_HERE)
def test_serves_options_complete_in_every_shell(shell, name):
    term = shell(name)
    assert b"--idle-timeout" in term.complete("hushdrop serve --idle-t", b"--idle-timeout")
    assert b"--log-format" in term.complete("hushdrop serve --log-f", b"--log-format")


@pytest.mark.parametrize("name", SHELLS_HERE)
def test_a_folder_with_spaces_completes_as_one_quoted_path(shell, name, tmp_path):
    (tmp_path / "sp ace dir").mkdir()
    (tmp_path / "sp ace file.txt").write_text("x")
    term = shell(name)
    # One candidate, quoted as the shell needs it, a folder ended by "/".
    screen = term.complete("hushdrop receive -o sp", b"dir/")
    assert rb"sp\ ace\ dir/" in screen or b"'sp ace dir/" in screen, screen


def test_descriptions_keep_their_punctuation_and_whole_words():
    zsh, fish = completion_script("zsh"), completion_script("fish")
    assert "http://host:port or https://host:port" in zsh
    assert "http://host:port or https://host:port" in fish
    assert "show program'\\''s version number and exit" in zsh
    assert "show program\\'s version number and exit" in fish
    assert "never offer or accept a direct connection…" in fish
