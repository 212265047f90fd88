"""A text travels in the data stream like a file (PROTOCOL.md §6.1.1, §10): through a real relay
process, a text alone costs exactly the relayed bytes of one file of the same size, a text with
files those of one more file; a text cut off mid-way resumes and is printed once. Real CLI and
relay processes."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from hushdrop.protocol.constants import MAX_TEXT_BYTES

from .cli import receive, send, sha256_file
from .proxy import CuttableProxy
from .test_metrics import scrape, value

MTIME = 1_700_000_000  # the same mtime digits in every manifest compared
# A receiver's network this slow takes seconds over a 1 MiB text, so a test acts in its middle.
SLOW = 128 << 10


def send_text(relay_url: str, text: str | None, *files: Path):
    """`hushdrop send` of `files` and `text` (None: no text), read from standard input (`--text
    -`: a 1 MiB text does not fit in one command-line argument)."""
    if text is None:
        return send(relay_url, *files)
    sender = send(relay_url, *files, extra=["--text", "-"], stdin=subprocess.PIPE)
    sender.proc.stdin.write(text.encode())
    sender.proc.stdin.close()
    return sender


def relayed(relay, before: float, at_least: int) -> int:
    """Bytes the relay forwarded since `before` (it counts a message once it forwarded it)."""
    deadline = time.monotonic() + 10
    while True:
        total = value(scrape(relay), "bytes_relayed_total") - before
        if total >= at_least or time.monotonic() > deadline:
            return int(total)
        time.sleep(0.05)


def relayed_bytes_of(relay, tmp_path: Path, text: str | None, sizes: list[int]) -> int:
    """Relayed bytes (both directions) of one transfer of `text` (None: none) and files of
    `sizes` (named f0.bin, f1.bin, … so the manifests differ only in what is compared)."""
    source = tmp_path / f"src-{len(os.listdir(tmp_path))}"
    source.mkdir()
    files = []
    for number, size in enumerate(sizes):
        path = source / f"f{number}.bin"
        path.write_bytes(os.urandom(size))
        os.utime(path, (MTIME, MTIME))
        files.append(path)
    before = value(scrape(relay), "bytes_relayed_total")
    sender = send_text(relay.url, text, *files)
    out = source.with_name(source.name + "-out")
    receiver = receive(relay.url, sender.wait_event("code")["code"], out)
    assert receiver.wait() == 0, receiver.stderr
    assert sender.wait() == 0, sender.stderr
    if text is not None:
        assert receiver.wait_event("text")["text"] == text
    for path in files:
        assert sha256_file(out / path.name) == sha256_file(path)
    return relayed(relay, before, sum(sizes) + len((text or "").encode()))


@pytest.mark.parametrize("size", [1, 4711, 100_000, MAX_TEXT_BYTES])
def test_a_text_alone_costs_the_relayed_bytes_of_one_file_of_its_size(relay, tmp_path, size):
    text = "x" * size
    as_text = relayed_bytes_of(relay, tmp_path, text, [])
    as_file = relayed_bytes_of(relay, tmp_path, None, [size])
    assert as_text == as_file
    assert as_text > size  # the text did go through the relay, as the file did


def test_a_text_with_files_costs_the_relayed_bytes_of_one_more_file(relay, tmp_path):
    with_text = relayed_bytes_of(relay, tmp_path, "t" * 3000, [5000, 20_000])
    as_files = relayed_bytes_of(relay, tmp_path, None, [3000, 5000, 20_000])
    assert with_text == as_files


def test_a_text_cut_off_on_its_way_resumes_and_is_printed_once(relay, tmp_path):
    text = "Grüße " * (MAX_TEXT_BYTES // 8)  # 1 MiB: seconds on the slow link
    network = CuttableProxy(relay.port, SLOW)  # the receiver's network
    try:
        sender = send_text(relay.url, text)
        receiver = receive(network.url, sender.wait_event("code")["code"], tmp_path / "out")
        receiver.wait_event("offer")
        network.cut()  # while the text is still on its way (it takes ~8 s at this speed)
        assert receiver.wait() == 0, receiver.stderr + str(receiver.events[-5:])
        assert sender.wait() == 0, sender.stderr
    finally:
        network.close()
    names = [e["event"] for e in receiver.events]
    assert "reconnecting" in names and "resumed" in names, names
    assert [e["text"] for e in receiver.events if e["event"] == "text"] == [text]
    assert network.connections >= 2


def test_a_restarted_receiver_that_had_not_printed_the_text_prints_it_once(relay, tmp_path):
    text = "Grüße " * (MAX_TEXT_BYTES // 8)
    src = tmp_path / "note.bin"
    src.write_bytes(os.urandom(200_000))
    out = tmp_path / "out"
    sender = send_text(relay.url, text, src)
    code = sender.wait_event("code")["code"]
    network = CuttableProxy(relay.port, SLOW)
    try:
        receiver = receive(network.url, code, out)
        deadline = time.monotonic() + 60
        while not list(out.glob(".hushdrop-*.resume")) and time.monotonic() < deadline:
            time.sleep(0.02)  # accepted: the record is there, the text still on its way
        receiver.proc.kill()  # a crash: no goodbye, the record stays
        receiver.wait()
    finally:
        network.close()
    assert "text" not in [e["event"] for e in receiver.events]
    (record,) = out.glob(".hushdrop-*.resume")
    assert text.encode() not in record.read_bytes()  # a text is never written to disk

    again = receive(relay.url, code, out)
    assert again.wait() == 0, again.stderr + str(again.events[-5:])
    assert sender.wait() == 0, sender.stderr
    assert [e["text"] for e in again.events if e["event"] == "text"] == [text]
    assert sha256_file(out / "note.bin") == sha256_file(src)
    assert not list(out.glob(".hushdrop-*"))


def test_a_restarted_receiver_that_printed_the_text_does_not_print_it_again(relay, tmp_path):
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(24 << 20))
    out = tmp_path / "out"
    sender = send(relay.url, src, extra=["--text", "read me first"])
    code = sender.wait_event("code")["code"]
    network = CuttableProxy(relay.port, 4 << 20)
    try:
        receiver = receive(network.url, code, out)
        assert receiver.wait_event("text")["text"] == "read me first"
        receiver.wait_event("progress")  # the file is under way
        receiver.proc.kill()
        receiver.wait()
    finally:
        network.close()

    again = receive(relay.url, code, out)
    assert again.wait() == 0, again.stderr + str(again.events[-5:])
    assert sender.wait() == 0, sender.stderr
    assert "text" not in [e["event"] for e in again.events]
    assert sha256_file(out / "big.bin") == sha256_file(src)


def test_a_text_with_a_file_reaches_every_receiver_of_a_link(relay, tmp_path):
    src = tmp_path / "a.bin"
    src.write_bytes(os.urandom(70_000))
    sender = send(relay.url, src, extra=["--text", "for both of you", "--receivers", "2"])
    code = sender.wait_event("code")["code"]
    receivers = [receive(relay.url, code, tmp_path / f"out{n}") for n in (1, 2)]
    for number, receiver in enumerate(receivers, 1):
        assert receiver.wait() == 0, receiver.stderr
        assert receiver.wait_event("text")["text"] == "for both of you"
        assert sha256_file(tmp_path / f"out{number}" / "a.bin") == sha256_file(src)
    assert sender.wait() == 0, sender.stderr
