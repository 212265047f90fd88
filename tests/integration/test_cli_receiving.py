"""What `hushdrop receive` guarantees about the receiver's disk and terminal (PROTOCOL.md §9):
real relay and CLI processes, and hostile peers built from the project's own sessions."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from hushdrop.cli.resume_record import code_tag
from hushdrop.protocol.codes import parse_code

from .cli import CliProcess, receive, send, sha256_file
from .disks import tmpfs
from .proxy import CuttableProxy
from .test_cli import files_under, random_file
from .test_cli_resume import RATE, SIZE, wait_progress

EXIT_ERROR = 1
EXIT_USAGE = 2
HERE = Path(__file__).parent
ESCAPES = "\x1b[2J\x1b[31m\x1b]0;pwned\x07\x9b1m\u202e"


@pytest.fixture
def out(tmp_path: Path) -> Path:
    directory = tmp_path / "out"
    directory.mkdir()
    return directory


def leftovers(root: Path) -> list[str]:
    """Temporary files or resume records of Hushdrop under `root`."""
    return sorted(p.name for p in root.rglob(".hushdrop-*"))


class Hostile:
    """A hostile sender process (hostile_sender.py) offering `spec`."""

    def __init__(self, relay_url: str, spec: dict | list[str]) -> None:
        args = [json.dumps(spec)] if isinstance(spec, dict) else spec
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "hostile_sender.py"), relay_url, *args],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.code = json.loads(self.proc.stdout.readline())["code"]

    def lines(self) -> list[dict]:
        self.proc.wait(60)
        return [json.loads(line) for line in self.proc.stdout if line.strip()]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def assert_no_terminal_codes(text: str) -> None:
    for bad in ("\x1b", "\x07", "\x9b", "\u202e", "\r"):
        assert bad not in text, repr(text)


# Never destroy what the receiver did not create ---------------------------------------------


def test_an_existing_part_file_of_the_same_name_is_never_touched(relay, tmp_path, out):
    src = random_file(tmp_path / "report.pdf", 200_000)
    (out / "report.pdf.part").write_bytes(b"the user's own file")
    sender = send(relay.url, src)
    receiver = receive(relay.url, sender.wait_event("code")["code"], out)
    assert receiver.wait() == 0, receiver.stderr
    assert sender.wait() == 0, sender.stderr
    assert (out / "report.pdf.part").read_bytes() == b"the user's own file"
    assert sha256_file(out / "report.pdf") == sha256_file(src)
    assert leftovers(out) == []


def test_a_file_and_a_file_named_like_its_part_both_arrive(relay, tmp_path, out):
    src = tmp_path / "pair"
    random_file(src / "a", 70_000)
    random_file(src / "a.part", 50_000)
    sender = send(relay.url, src / "a.part", src / "a")  # in this order
    receiver = receive(relay.url, sender.wait_event("code")["code"], out)
    assert receiver.wait() == 0, receiver.stderr
    assert sender.wait() == 0, sender.stderr
    assert files_under(out) == files_under(src)


def test_names_of_255_bytes_arrive_and_longer_ones_are_shortened_to_fit(relay, tmp_path, out):
    exact = "é" * 100 + "x" * 51 + ".bin"  # 255 bytes of UTF-8
    too_long = "y" * 300 + ".txt"
    assert len(exact.encode()) == 255
    hostile = Hostile(relay.url, [exact, too_long])
    try:
        receiver = receive(relay.url, hostile.code, out)
        assert receiver.wait() == 0, receiver.stderr
    finally:
        hostile.stop()
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([exact, "y" * 255])
    assert (out / exact).read_bytes() == f"content of {exact}\n".encode()


def test_a_restarted_receiver_finds_its_hidden_temporary_file(relay, tmp_path, out):
    src = random_file(tmp_path / "big.bin", SIZE)
    sender = send(relay.url, src)
    code = sender.wait_event("code")["code"]
    network = CuttableProxy(relay.port, RATE)
    try:
        receiver = receive(network.url, code, out)
        wait_progress(receiver, SIZE // 3)
        receiver.proc.kill()
        receiver.wait()
    finally:
        network.close()
    (temporary,) = out.glob(".hushdrop-*.part")
    assert len(temporary.name) < 50 and 0 < temporary.stat().st_size < SIZE
    (record,) = out.glob(".hushdrop-*.resume")
    assert sorted(p.name for p in out.iterdir()) == sorted([temporary.name, record.name])
    # Both are named after the transfer's random name, nothing a reader could search the
    # code from (a typed code has only ~33 bits).
    transfer = temporary.name.split("-")[1]
    assert record.name == f".hushdrop-{transfer}.resume"
    assert code_tag(parse_code(code))[:16] not in record.name
    again = receive(relay.url, code, out)
    assert again.wait() == 0, again.stderr
    assert sender.wait() == 0, sender.stderr
    assert sha256_file(out / "big.bin") == sha256_file(src)
    assert leftovers(out) == []


# Permissions -------------------------------------------------------------------------------


def test_received_files_and_folders_take_the_receivers_umask(relay, tmp_path, out):
    src = tmp_path / "tools"
    random_file(src / "run.sh", 100)
    random_file(src / "secret.txt", 100)
    random_file(src / "open" / "world.txt", 100)
    os.chmod(src / "run.sh", 0o777)
    os.chmod(src / "secret.txt", 0o666)
    os.chmod(src / "open", 0o777)
    sender = send(relay.url, src)
    receiver = receive(relay.url, sender.wait_event("code")["code"], out, umask=0o027)
    assert receiver.wait() == 0, receiver.stderr
    assert sender.wait() == 0, sender.stderr

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(out / "tools" / "run.sh") == 0o750  # executable: it stays executable
    assert mode(out / "tools" / "secret.txt") == 0o640
    assert mode(out / "tools" / "open" / "world.txt") == 0o640
    assert mode(out / "tools") == 0o750 and mode(out / "tools" / "open") == 0o750


# Local errors: a message, not a traceback; checked before the code is used --------------


def assert_clean_local_error(process: CliProcess, *words: str) -> None:
    assert process.wait() == EXIT_ERROR, process.stderr
    if process.events:
        error = process.error()
        assert error["kind"] == "local", error
        message = error["message"]
    else:
        lines = process.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), process.stderr
        message = lines[0]
    assert "Traceback" not in process.stderr
    for word in words:
        assert word in message, message


def assert_code_still_works(relay, sender: CliProcess, code: str, tmp_path: Path) -> None:
    """The failed receiver never used the code: a corrected one still gets the files."""
    good = tmp_path / "good"
    receiver = receive(relay.url, code, good)
    assert receiver.wait() == 0, receiver.stderr
    assert sender.wait() == 0, sender.stderr
    assert files_under(good)


@pytest.mark.parametrize("json_mode", [True, False])
def test_an_output_path_that_is_a_file_fails_before_the_code_is_used(relay, tmp_path, json_mode):
    src = random_file(tmp_path / "a.bin", 1000)
    target = tmp_path / "not-a-folder"
    target.write_text("keep me")
    sender = send(relay.url, src)
    code = sender.wait_event("code")["code"]
    receiver = receive(relay.url, code, target, json_mode=json_mode, extra=["--yes"])
    assert_clean_local_error(receiver, "not a folder")
    assert target.read_text() == "keep me"
    assert_code_still_works(relay, sender, code, tmp_path)


def test_a_missing_parent_that_cannot_be_created_is_a_clear_error(relay, tmp_path):
    src = random_file(tmp_path / "a.bin", 1000)
    (tmp_path / "file").write_text("x")
    sender = send(relay.url, src)
    code = sender.wait_event("code")["code"]
    receiver = receive(relay.url, code, tmp_path / "file" / "sub" / "dir")
    assert_clean_local_error(receiver, "Cannot create the folder", "is not a folder")
    assert_code_still_works(relay, sender, code, tmp_path)


def test_a_read_only_file_system_fails_before_the_code_is_used(relay, tmp_path):
    src = random_file(tmp_path / "a.bin", 1000)
    sender = send(relay.url, src)
    code = sender.wait_event("code")["code"]
    with tmpfs(1 << 20, read_only=True) as disk:
        receiver = receive(relay.url, code, disk / "new")
        assert_clean_local_error(receiver, "read-only")
    assert_code_still_works(relay, sender, code, tmp_path)


def test_a_folder_without_write_permission_fails_before_the_code_is_used(relay, tmp_path):
    src = random_file(tmp_path / "a.bin", 1000)
    sender = send(relay.url, src)
    code = sender.wait_event("code")["code"]
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o555)
    receiver = receive(relay.url, code, locked, obey_permissions=True)
    assert_clean_local_error(receiver, "permission denied")
    assert list(locked.iterdir()) == []
    assert_code_still_works(relay, sender, code, tmp_path)


def test_a_full_disk_tells_the_sender_why_and_leaves_nothing_behind(relay, tmp_path):
    src = tmp_path / "src"
    random_file(src / "small.bin", 100_000)
    random_file(src / "big.bin", 30 << 20)
    network = CuttableProxy(relay.port, RATE)  # ~2 s for the test to act in
    with tmpfs(40 << 20) as disk:
        # Room for the offer when it is checked; then another program fills the disk.
        sender = send(relay.url, src / "small.bin", src / "big.bin")
        code = sender.wait_event("code")["code"]
        receiver = receive(network.url, code, disk / "new" / "out")
        receiver.wait_event("offer")
        random_file(disk / "other-program.dat", 20 << 20)
        assert_clean_local_error(receiver, "Could not save", "the disk is full")
        network.close()
        assert sender.wait() != 0
        assert (
            "The receiver could not save the files: the disk is full" in (sender.error()["message"])
        )
        assert str(disk) not in sender.error()["message"]  # no receiver paths leak
        assert leftovers(disk) == []
        assert sorted(p.relative_to(disk).as_posix() for p in disk.rglob("*")) == sorted(
            ["new", "new/out", "new/out/small.bin", "other-program.dat"]
        )  # the verified file stays; the partial one and its temporary file are gone


def test_an_offer_larger_than_the_free_space_is_declined_before_anything_is_written(relay):
    with tmpfs(4 << 20) as disk:
        hostile = Hostile(relay.url, {"files": [{"path": "huge.bin", "size": 1 << 50}]})
        try:
            receiver = receive(relay.url, hostile.code, disk / "new" / "folder")
            assert_clean_local_error(receiver, "Not enough disk space")
            (said,) = hostile.lines()
        finally:
            hostile.stop()
        assert "not have enough free disk space" in said["message"]
        assert list(disk.iterdir()) == []


# Peer text is untrusted ---------------------------------------------------------------------


def test_a_senders_cancel_reason_cannot_drive_the_receivers_terminal(relay, out):
    names = [{"path": f"evil{ESCAPES}.txt", "size": 1 << 20}]
    hostile = Hostile(relay.url, {"files": names, "cancel": f"{ESCAPES}Gone fishing."})
    try:
        receiver = receive(relay.url, hostile.code, out, json_mode=False, extra=["--yes"])
        assert receiver.wait() != 0
    finally:
        hostile.stop()
    assert "Gone fishing." in receiver.stderr and "evil" in receiver.stderr
    assert_no_terminal_codes(receiver.stderr)
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("how", ["decline", "cancel"])
def test_a_receivers_reason_cannot_drive_the_senders_terminal(relay, tmp_path, how):
    src = random_file(tmp_path / "a.bin", 4 << 20)
    sender = send(relay.url, src, json_mode=False)
    code = sender.wait_line("Code: ")
    subprocess.run(
        [sys.executable, str(HERE / "hostile_receiver.py"), relay.url, code, how, ESCAPES + "no"],
        check=True,
        timeout=60,
        capture_output=True,
    )
    assert sender.wait() != 0
    assert_no_terminal_codes(sender.stderr)
    assert "no" in sender.stderr.splitlines()[-1]


def test_nfc_and_nfd_spellings_of_one_name_are_a_collision(relay, out):
    nfc = unicodedata.normalize("NFC", "café.txt")
    nfd = unicodedata.normalize("NFD", "café.txt")
    assert nfc != nfd
    hostile = Hostile(relay.url, [nfc, nfd])
    try:
        receiver = receive(relay.url, hostile.code, out)
        assert receiver.wait() == EXIT_ERROR
    finally:
        hostile.stop()
    assert receiver.error()["kind"] == "unsafe-path"
    assert list(out.iterdir()) == []


def test_windows_device_names_are_neutralised_on_disk(relay, out):
    hostile = Hostile(relay.url, ["CONIN$", "con .txt", "clock$.log", "Nul..."])
    try:
        receiver = receive(relay.url, hostile.code, out)
        assert receiver.wait() == 0, receiver.stderr
    finally:
        hostile.stop()
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["_CONIN$", "_con .txt", "_clock$.log", "_Nul"]
    )


def test_a_symbolic_link_where_a_folder_goes_is_refused_and_the_sender_told_why(
    relay, tmp_path, out
):
    src = tmp_path / "src"
    random_file(src / "link" / "file.txt", 1000)
    outside = tmp_path / "outside"
    outside.mkdir()
    (out / "link").symlink_to(outside)
    sender = send(relay.url, src / "link")
    receiver = receive(relay.url, sender.wait_event("code")["code"], out)
    assert receiver.wait() != 0 and sender.wait() != 0
    assert receiver.error()["kind"] == "unsafe-path"
    assert "symbolic link" in receiver.error()["message"]
    told = sender.error()
    assert "symbolic link" in told["message"] and str(out) not in told["message"], told
    assert list(outside.iterdir()) == []


def test_a_sender_cannot_plant_a_resume_record_or_temporary_file(relay, out):
    # Such a record would be trusted by a later `receive` in this folder (PROTOCOL.md §8.3, §9):
    # the names are the receiver's own, so a sender's files get a `_` in front.
    names = [".hushdrop-0123456789abcdef.resume", ".hushdrop-0123456789abcdef-0.part"]
    hostile = Hostile(relay.url, names)
    try:
        receiver = receive(relay.url, hostile.code, out)
        assert receiver.wait() == 0, receiver.stderr
    finally:
        hostile.stop()
    assert sorted(p.name for p in out.iterdir()) == sorted("_" + name for name in names)


# The command line as people expect it ---------------------------------------------------


def test_without_a_terminal_receive_does_not_accept_silently(relay, tmp_path, out):
    src = random_file(tmp_path / "a.bin", 1000)
    sender = send(relay.url, src)
    code = sender.wait_event("code")["code"]
    receiver = receive(relay.url, code, out, json_mode=False)
    assert receiver.wait() == EXIT_USAGE
    assert "--yes" in receiver.stderr and "Traceback" not in receiver.stderr
    assert list(out.iterdir()) == []
    assert_code_still_works(relay, sender, code, tmp_path)


def test_plain_mode_without_a_terminal_logs_progress_without_carriage_returns(relay, tmp_path, out):
    src = random_file(tmp_path / "a.bin", 5 << 20)
    sender = send(relay.url, src, json_mode=False)
    code = sender.wait_line("Code: ")
    receiver = receive(relay.url, code, out, json_mode=False, extra=["--yes"])
    assert receiver.wait() == 0, receiver.stderr
    assert sender.wait() == 0, sender.stderr
    for process in (sender, receiver):
        assert "Done: 1 file" in process.stderr
        assert "\r" not in process.stderr and "\x1b" not in process.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["receive", "--yes", "123-no"], ["code"]),
        (
            ["receive", "--yes", "--relay", "relay.example:8780", "123456-fine-glance-present"],
            ["http://", "https://"],
        ),
        (["send", "--relay", "relay.example:8780", "README.md"], ["http://", "https://"]),
        (["send", "--ttl", "-5", "README.md"], ["--ttl"]),
    ],
)
def test_usage_errors_exit_2_with_a_clear_message(args, words):
    process = CliProcess(args, json_mode=False, cwd=HERE.parent.parent)
    assert process.wait() == EXIT_USAGE, process.stderr
    assert "Traceback" not in process.stderr
    for word in words:
        assert word in process.stderr


def test_the_wrong_code_message_fits_each_side(relay, tmp_path, out):
    src = random_file(tmp_path / "a.bin", 1000)
    sender = send(relay.url, src)
    room, *words = sender.wait_event("code")["code"].split("-")
    wrong = "-".join([room, "zoo" if words[0] != "zoo" else "zero", *words[1:]])
    receiver = receive(relay.url, wrong, out)
    receiver.wait()
    sender.wait()
    assert "ask the sender" in receiver.error()["message"]
    assert "ask the sender" not in sender.error()["message"]
    assert "new code" in sender.error()["message"]


def test_a_ttl_outside_the_relays_range_says_what_was_used(relay_factory, tmp_path):
    relay = relay_factory("--max-room-ttl", "600", "--room-ttl", "300")
    src = random_file(tmp_path / "a.bin", 10)
    sender = send(relay.url, src, extra=["--ttl", "90000"])
    assert sender.wait_event("code")["expires_in"] == 600
    notices = [e["message"] for e in sender.events if e["event"] == "status"]
    assert any("90000" in n and "600" in n for n in notices), notices
    sender.stop()


def test_help_explains_every_argument_and_its_default():
    def help_text(*command: str) -> str:
        return " ".join(
            subprocess.run(
                [sys.executable, "-m", "hushdrop.cli.main", *command, "--help"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
        )

    send_help, receive_help = help_text("send"), help_text("receive")
    assert "a file or folder to send" in send_help
    assert "default: the relay's" in send_help and "--ttl SECONDS" in send_help
    assert "default: the current folder" in receive_help
    assert "default: refuse" in receive_help
    for text in (send_help, receive_help):
        assert "http://" in text and "--json" in text
