"""`hushdrop send --text` and `hushdrop receive` printing the text: real CLI processes through a
real relay process on loopback."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

from hushdrop.protocol.constants import MAX_TEXT_BYTES

from .cli import TIMEOUT, receive, send

EXIT_USAGE = 2


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUSHDROP_")}
    return {**env, **extra}


def hushdrop(*args: str) -> list[str]:
    return [sys.executable, "-m", "hushdrop.cli.main", *args]


def send_stdin(relay_url: str, data: bytes, *extra: str) -> tuple[subprocess.Popen, str]:
    """`hushdrop send --text - --json` fed `data` on standard input; returns it and its code."""
    proc = subprocess.Popen(
        hushdrop("send", "--text", "-", "--relay", relay_url, "--json", *extra),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    proc.stdin.write(data)
    proc.stdin.close()
    line = proc.stdout.readline()
    event = json.loads(line)
    assert event["event"] == "code", (event, proc.stderr.read())
    return proc, event["code"]


def receive_piped(relay_url: str, code: str, cwd: Path) -> subprocess.CompletedProcess:
    """`hushdrop receive --yes` with standard output to a pipe, in `cwd`, without -o."""
    return subprocess.run(
        hushdrop("receive", "--yes", "--relay", relay_url),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=clean_env(HUSHDROP_CODE=code),
        cwd=cwd,
        timeout=TIMEOUT,
    )


def test_text_from_the_command_line_arrives_on_piped_stdout_exactly(relay, tmp_path):
    text = "Grüße aus Köln 👋\nzweite Zeile\n  indented, no final newline"
    sender = send(relay.url, extra=["--text", text])
    code = sender.wait_event("code")["code"]
    received = receive_piped(relay.url, code, tmp_path)
    assert received.returncode == 0, received.stderr
    assert received.stdout == text.encode("utf-8")
    assert sender.wait() == 0, sender.stderr
    assert sender.wait_event("done")["text_bytes"] == len(text.encode("utf-8"))


def test_a_received_text_writes_no_file_and_needs_no_output_folder(relay, tmp_path):
    sender = send(relay.url, extra=["--text", "just words"])
    code = sender.wait_event("code")["code"]
    received = receive_piped(relay.url, code, tmp_path)
    assert received.returncode == 0, received.stderr
    assert list(tmp_path.iterdir()) == []  # no file, no temporary file, no resume record
    assert "a text of 10 B" in received.stderr.decode()
    assert sender.wait() == 0


def test_text_from_stdin_keeps_every_byte_including_control_characters(relay, tmp_path):
    data = "line one\r\nline two\ttab\x1b[31mred\x1b[0m\x00nul\u202eend".encode()
    sender, code = send_stdin(relay.url, data)
    received = receive_piped(relay.url, code, tmp_path)
    assert received.returncode == 0, received.stderr
    assert received.stdout == data
    assert sender.wait(TIMEOUT) == 0


def test_the_largest_text_goes_through(relay, tmp_path):
    data = os.urandom(MAX_TEXT_BYTES // 2).hex().encode()  # exactly MAX_TEXT_BYTES, ASCII
    sender, code = send_stdin(relay.url, data)
    received = receive_piped(relay.url, code, tmp_path)
    assert received.returncode == 0, received.stderr
    assert received.stdout == data
    assert sender.wait(TIMEOUT) == 0


def test_json_receiver_sees_the_text_size_in_the_offer_and_the_text_in_an_event(relay, tmp_path):
    text = 'quotes " and \\ backslashes\nand a newline'
    sender = send(relay.url, extra=["--text", text])
    code = sender.wait_event("code")["code"]
    receiver = receive(relay.url, code, tmp_path / "out")
    assert receiver.wait() == 0, receiver.stderr
    offer = receiver.wait_event("offer")
    assert offer["text_bytes"] == len(text.encode()) and offer["files"] == []
    event = receiver.wait_event("text")
    assert event["text"] == text and event["bytes"] == len(text.encode())
    assert not (tmp_path / "out").exists()  # a text alone does not create the folder
    assert sender.wait() == 0


def test_a_text_travels_with_files(relay, tmp_path):
    (tmp_path / "a.txt").write_bytes(b"file body")
    out = tmp_path / "out"
    sender = send(relay.url, tmp_path / "a.txt", extra=["--text", "read a.txt first"])
    code = sender.wait_event("code")["code"]
    receiver = receive(relay.url, code, out)
    assert receiver.wait() == 0, receiver.stderr
    assert receiver.wait_event("text")["text"] == "read a.txt first"
    assert (out / "a.txt").read_bytes() == b"file body"
    assert sender.wait() == 0


def test_hostile_control_characters_are_made_printable_on_a_terminal(relay, tmp_path):
    hostile = "hello\x1b]0;owned\x07\x1b[2J\x1b[31mred\u202eevil\r\nnext\tline"
    sender = send(relay.url, extra=["--text", hostile])
    code = sender.wait_event("code")["code"]
    main, terminal = pty.openpty()
    proc = subprocess.Popen(
        hushdrop("receive", "--yes", "--relay", relay.url),
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=subprocess.PIPE,
        env=clean_env(HUSHDROP_CODE=code),
        cwd=tmp_path,
    )
    os.close(terminal)
    shown = bytearray()
    try:
        while True:
            ready, _, _ = select.select([main], [], [], TIMEOUT)
            assert ready, "the receiver printed nothing"
            try:
                block = os.read(main, 65536)
            except OSError:  # EIO: the receiver closed its end
                break
            if not block:
                break
            shown += block
        assert proc.wait(TIMEOUT) == 0, proc.stderr.read()
    finally:
        os.close(main)
        if proc.poll() is None:
            proc.kill()
    # The terminal turns "\n" into "\r\n"; nothing else the sender sent may act on it.
    text = shown.decode("utf-8").replace("\r\n", "\n")
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert text == "hello\ufffd]0;owned\ufffd[2J\ufffd[31mred\ufffdevil\nnext\tline\n"
    assert sender.wait() == 0


def test_a_text_over_the_limit_is_refused_before_a_code_is_made(relay):
    proc = subprocess.run(
        hushdrop("send", "--text", "-", "--relay", relay.url),
        input=b"x" * (MAX_TEXT_BYTES + 1),
        capture_output=True,
        env=clean_env(),
        timeout=TIMEOUT,
    )
    assert proc.returncode == EXIT_USAGE
    assert proc.stdout == b""  # no code
    assert "more than 1 MiB" in proc.stderr.decode() and "as a file" in proc.stderr.decode()


def test_a_text_that_is_not_utf8_is_refused_before_a_code_is_made(relay):
    proc = subprocess.run(
        hushdrop("send", "--text", "-", "--relay", relay.url, "--json"),
        input=b"caf\xe9",
        capture_output=True,
        env=clean_env(),
        timeout=TIMEOUT,
    )
    assert proc.returncode == EXIT_USAGE
    event = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    assert event["event"] == "error" and "not UTF-8" in event["message"]


def test_send_without_paths_or_text_says_what_to_give(relay):
    proc = subprocess.run(
        hushdrop("send", "--relay", relay.url),
        capture_output=True,
        env=clean_env(),
        timeout=TIMEOUT,
    )
    assert proc.returncode == EXIT_USAGE
    assert "or a text with --text" in proc.stderr.decode()


def test_help_warns_that_a_text_on_the_command_line_is_visible_to_others():
    proc = subprocess.run(hushdrop("send", "--help"), capture_output=True, timeout=TIMEOUT)
    help_text = " ".join(proc.stdout.decode().split())
    assert "process list" in help_text and "'-' reads it from standard input" in help_text


def test_a_transfer_of_files_alone_mentions_no_text(relay, tmp_path):
    (tmp_path / "a.txt").write_bytes(b"file body")
    sender = send(relay.url, tmp_path / "a.txt")
    code = sender.wait_event("code")["code"]
    receiver = receive(relay.url, code, tmp_path / "out", json_mode=False, extra=["--yes"])
    assert receiver.wait() == 0, receiver.stderr
    assert sender.wait() == 0, sender.stderr
    assert "Done: 1 file" in receiver.stderr and "text" not in receiver.stderr
    assert "text_bytes" not in sender.wait_event("done")
    assert receiver.stdout == ""


def test_an_empty_or_blank_text_is_refused_before_a_code_is_made(relay):
    for given in (["--text", ""], ["--text", " \n\t"]):
        proc = subprocess.run(
            hushdrop("send", *given, "--relay", relay.url),
            capture_output=True,
            env=clean_env(),
            timeout=TIMEOUT,
        )
        assert proc.returncode == EXIT_USAGE, given
        assert proc.stdout == b""  # no code
        assert "The text to send is empty" in proc.stderr.decode()
    piped = subprocess.run(
        hushdrop("send", "--text", "-", "--relay", relay.url),
        input=b"\n\n",
        capture_output=True,
        env=clean_env(),
        timeout=TIMEOUT,
    )
    assert piped.returncode == EXIT_USAGE
    assert "The text to send is empty" in piped.stderr.decode()


def test_a_text_alone_reports_no_byte_progress_and_no_negative_time(relay, tmp_path):
    sender = send(relay.url, extra=["--text", "just words"])
    code = sender.wait_event("code")["code"]
    received = receive_piped(relay.url, code, tmp_path)
    assert received.returncode == 0, received.stderr
    assert "Transferred" not in received.stderr.decode()  # no "0 B of 0 B, 0 B/s"
    json_sender = send(relay.url, extra=["--text", "more words"])
    out = tmp_path / "json"
    out.mkdir()
    json_receiver = receive(relay.url, json_sender.wait_event("code")["code"], out)
    assert json_receiver.wait() == 0
    assert str(json_receiver.wait_event("done")["seconds"]) == "0.0"  # not -0.0
    assert sender.wait() == 0 and json_sender.wait() == 0


def test_a_short_code_lifetime_is_said_in_seconds(relay):
    proc = subprocess.Popen(
        hushdrop("send", "--text", "hi", "--ttl", "30", "--relay", relay.url),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    try:
        said = b""
        while b"expires in" not in said:
            line = proc.stderr.readline()
            assert line, said
            said += line
        assert b"(the code expires in 30 s)" in said, said
    finally:
        proc.kill()
        proc.wait()
