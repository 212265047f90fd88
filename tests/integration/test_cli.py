"""Real `hushdrop send` / `hushdrop receive` processes through a real relay process on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from .cli import FlippingProxy, receive, send, sha256_file
from .proxy import CuttableProxy

EXIT_WRONG_CODE = 3
EXIT_CONNECTION = 4
EXIT_TAMPERED = 5


def random_file(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        remaining = size
        while remaining:
            block = os.urandom(min(remaining, 1 << 20))
            handle.write(block)
            remaining -= len(block)
    return path


def files_under(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): sha256_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def out(tmp_path: Path) -> Path:
    directory = tmp_path / "out"
    directory.mkdir()
    return directory


def test_100_mib_file_and_nested_directory_arrive_with_equal_sha256(relay, tmp_path, out):
    src = tmp_path / "src"
    random_file(src / "photos" / "big.bin", 100 << 20)
    random_file(src / "photos" / "2024" / "a.jpg", 12_345)
    (src / "photos" / "2024" / "notes.txt").write_text("hello\n")
    (src / "photos" / "empty").mkdir()
    random_file(src / "single.dat", 16_384)

    sender = send(relay.url, src / "photos", src / "single.dat")
    code = sender.wait_event("code")
    receiver = receive(relay.url, code["code"], out)
    assert receiver.wait() == 0, receiver.stderr
    assert sender.wait() == 0, sender.stderr

    expected = {"photos/" + k: v for k, v in files_under(src / "photos").items()}
    expected["single.dat"] = sha256_file(src / "single.dat")
    assert files_under(out) == expected
    assert (out / "photos" / "empty").is_dir()
    assert receiver.wait_event("verification")["sas"] == sender.wait_event("verification")["sas"]
    assert receiver.wait_event("done")["bytes"] == sender.wait_event("done")["bytes"]
    assert not list(out.rglob(".hushdrop-*"))


def test_link_with_password_works_and_marks_the_password(relay, tmp_path, out):
    src = random_file(tmp_path / "secret.pdf", 300_000)
    sender = send(relay.url, src, extra=["--password"], env={"HUSHDROP_PASSWORD": "hunter2 ü"})
    link = sender.wait_event("code")["link"]
    assert link.startswith(relay.url + "/#") and link.endswith(".pw")
    receiver = receive(relay.url, link, out, env={"HUSHDROP_PASSWORD": "hunter2 ü"})
    assert receiver.wait() == 0, receiver.stderr
    assert sender.wait() == 0, sender.stderr
    assert sha256_file(out / "secret.pdf") == sha256_file(src)


def test_wrong_code_fails_on_both_sides_writes_nothing_and_closes_the_room(relay, tmp_path, out):
    src = random_file(tmp_path / "a.bin", 1000)
    sender = send(relay.url, src)
    code = sender.wait_event("code")["code"]
    room, *words = code.split("-")
    wrong = "-".join([room, "zoo" if words[0] != "zoo" else "zero", *words[1:]])

    receiver = receive(relay.url, wrong, out)
    assert receiver.wait() == EXIT_WRONG_CODE
    assert sender.wait() == EXIT_WRONG_CODE
    assert "wrong" in receiver.error()["message"] and "intercept" in sender.error()["message"]
    assert list(out.iterdir()) == []

    retry = receive(relay.url, code, out)
    assert retry.wait() == EXIT_CONNECTION
    assert retry.error()["message"].startswith("No transfer is waiting")


def test_wrong_password_fails_on_both_sides(relay, tmp_path, out):
    src = random_file(tmp_path / "a.bin", 1000)
    sender = send(relay.url, src, extra=["--password"], env={"HUSHDROP_PASSWORD": "right"})
    code = sender.wait_event("code")["code"]
    receiver = receive(relay.url, code, out, env={"HUSHDROP_PASSWORD": "wrong"})
    assert receiver.wait() == EXIT_WRONG_CODE
    assert sender.wait() == EXIT_WRONG_CODE
    assert list(out.iterdir()) == []


def test_password_needed_but_none_available_is_a_clear_error(relay, tmp_path, out):
    src = random_file(tmp_path / "a.bin", 10)
    sender = send(relay.url, src, extra=["--password"], env={"HUSHDROP_PASSWORD": "pw"})
    code = sender.wait_event("code")["code"]
    receiver = receive(relay.url, code, out)
    assert receiver.wait() != 0
    assert "HUSHDROP_PASSWORD" in receiver.error()["message"]
    sender.wait()


def test_third_peer_is_refused(relay, tmp_path, out):
    # 16 MiB through a 4 MiB/s link: the pair is still transferring when the first receiver is
    # paused (a small file could be done by then, on a busy machine, and the room gone).
    src = random_file(tmp_path / "a.bin", 16 << 20)
    slow = CuttableProxy(relay.port, 4 << 20)
    try:
        sender = send(slow.url, src)
        code = sender.wait_event("code")["code"]
        first = receive(relay.url, code, out)
        first.wait_event("verification")
        os.kill(first.proc.pid, signal.SIGSTOP)  # hold the pair open while a third peer tries
        try:
            third = receive(relay.url, code, tmp_path)
            assert third.wait() == EXIT_CONNECTION
            assert "already has a receiver" in third.error()["message"]
        finally:
            os.kill(first.proc.pid, signal.SIGCONT)
        assert first.wait() == 0
        assert sender.wait() == 0
    finally:
        slow.close()


def test_existing_file_is_not_overwritten_unless_asked(relay, tmp_path, out):
    src = random_file(tmp_path / "a.bin", 5000)
    (out / "a.bin").write_bytes(b"precious")
    sender = send(relay.url, src)
    receiver = receive(relay.url, sender.wait_event("code")["code"], out)
    assert receiver.wait() != 0
    assert "Not overwriting" in receiver.error()["message"]
    assert sender.wait() != 0
    assert "declined" in sender.error()["message"]
    assert (out / "a.bin").read_bytes() == b"precious"

    sender = send(relay.url, src)
    code = sender.wait_event("code")["code"]
    receiver = receive(relay.url, code, out, extra=["--overwrite"])
    assert receiver.wait() == 0 and sender.wait() == 0
    assert sha256_file(out / "a.bin") == sha256_file(src)


def test_hostile_manifest_paths_are_neutralised(relay, tmp_path, out):
    absolute = f"/tmp/hushdrop-abs-{uuid.uuid4().hex}.txt"
    names = ["../../escape.txt", absolute, "a/../../b.txt", "CON.txt", "ok\x1b[31m.txt"]
    hostile = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("hostile_sender.py")), relay.url, *names],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        import json

        code = json.loads(hostile.stdout.readline())["code"]
        receiver = receive(relay.url, code, out)
        assert receiver.wait() == 0, receiver.stderr
    finally:
        hostile.kill()
        hostile.wait()
    saved = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert saved == sorted(
        ["_/_/escape.txt", absolute.lstrip("/"), "a/_/_/b.txt", "_CON.txt", "ok_[31m.txt"]
    )
    assert not Path(absolute).exists()
    assert (
        not (tmp_path / "escape.txt").exists() and not (out.parent.parent / "escape.txt").exists()
    )


def test_flipped_byte_between_client_and_relay_is_detected(relay, tmp_path, out):
    src = random_file(tmp_path / "data.bin", 20 << 20)
    proxy = FlippingProxy(relay.port, offset=6 * (1 << 20) + 4321, direction="to_client")
    try:
        sender = send(relay.url, src)
        code = sender.wait_event("code")["code"]
        receiver = receive(proxy.url, code, out)
        assert receiver.wait() == EXIT_TAMPERED, receiver.events
        assert proxy.flipped.is_set()
        assert "failed authentication" in receiver.error()["message"]
        assert sender.wait() != 0
        assert list(out.iterdir()) == []  # nothing under its name, no partial data left
    finally:
        proxy.close()


def test_unreachable_relay_is_a_clear_error(tmp_path):
    src = random_file(tmp_path / "a.bin", 10)
    with socket_port() as port:
        sender = send(f"http://127.0.0.1:{port}", src)
        assert sender.wait() == EXIT_CONNECTION
    assert "Could not reach the relay" in sender.error()["message"]


class socket_port:
    """A loopback port that is closed (nothing listens) for the duration of the block."""

    def __enter__(self) -> int:
        import socket

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        return self.port

    def __exit__(self, *exc) -> None:
        return None
