"""A folder whose file list exceeds one relay frame (PROTOCOL.md §6.2), with default settings:
real relay and CLI processes."""

from __future__ import annotations

from pathlib import Path

from .cli import receive, send

FILES = 20_000


def test_a_folder_of_20000_files_goes_through_a_default_relay(relay, tmp_path: Path):
    src = tmp_path / "many"
    for group in range(20):
        folder = src / f"group-{group:02d}-with-a-longer-folder-name"
        folder.mkdir(parents=True)
        for i in range(FILES // 20):
            (folder / f"file-{i:05d}-with-a-name-long-enough-to-matter.txt").write_text(f"{i}\n")
    sender = send(relay.url, src)
    out = tmp_path / "out"
    receiver = receive(relay.url, sender.wait_event("code")["code"], out)
    assert receiver.wait(600) == 0, receiver.stderr + str(receiver.events[-3:])
    assert sender.wait(60) == 0, sender.stderr
    received = sorted(p.relative_to(out / "many") for p in out.rglob("*.txt"))
    assert received == sorted(p.relative_to(src) for p in src.rglob("*.txt"))
    assert len(received) == FILES
    assert (
        out / "many" / "group-07-with-a-longer-folder-name" / "file-00123-with-a-name-long-"
        "enough-to-matter.txt"
    ).read_text() == "123\n"
