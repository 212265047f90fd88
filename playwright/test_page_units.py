"""The page's pure-Python parts under CPython (no browser): download planning and naming, the
streamed zip, numbers as shown, and share-link helpers. The same code runs in Pyodide."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from hushdrop.page.download import (
    DownloadPlan,
    content_disposition,
    make_writer,
    plan_download,
)
from hushdrop.page.errors import error_message
from hushdrop.page.humanize import RateMeter, files_summary
from hushdrop.page.links import check_site, qr_data_uri, site_url
from hushdrop.page.messages import Duration, Message, Rate, Size, t
from hushdrop.protocol.codes import parse_code
from hushdrop.protocol.errors import (
    CodeFormatError,
    PeerCancelledError,
    RelayError,
    UnsafePathError,
    WrongCodeError,
)
from hushdrop.protocol.manifest import DirEntry, FileEntry, Manifest

MiB = 1024 * 1024


class FileSink:
    """A download target that is a real file, like the browser's, and records how it ended."""

    def __init__(self, path: Path) -> None:
        self.handle = open(path, "wb")  # noqa: SIM115
        self.writes = 0
        self.largest = 0
        self.ended: str | None = None

    async def write(self, data: bytes) -> None:
        self.writes += 1
        self.largest = max(self.largest, len(data))
        self.handle.write(data)

    async def close(self) -> None:
        self.handle.close()
        self.ended = "closed"

    async def abort(self, message: str) -> None:
        self.handle.close()
        self.ended = f"aborted: {message}"


async def stream(plan: DownloadPlan, manifest: Manifest, sink: FileSink, contents) -> None:
    """Feed the writer like the receive loop does: per file start/data/complete, flush per
    message."""
    writer = make_writer(sink, plan, manifest)
    for index, chunks in enumerate(contents):
        writer.start(index)
        for chunk in chunks:
            await writer.write(index, chunk)
            await writer.flush()
        writer.complete(index)
        await writer.flush()
    await writer.finish()


def run(coroutine) -> None:
    # A thread of its own: the browser tests' Playwright keeps an event loop in the main thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coroutine).result()


def manifest_of(files: dict[str, bytes], dirs: tuple[str, ...] = ()) -> Manifest:
    entries = tuple(FileEntry(p, len(d), 0o640, 1_700_000_000) for p, d in files.items())
    return Manifest(entries, tuple(DirEntry(d, 0o750) for d in dirs))


def test_one_file_downloads_as_itself_with_its_size():
    plan = plan_download(manifest_of({"report.pdf": b"x" * 10}), "123456")
    assert (plan.name, plan.is_zip, plan.size) == ("report.pdf", False, 10)
    assert plan.headers() == {
        "Content-Type": "application/octet-stream",
        "Content-Disposition": "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf",
        "Content-Length": "10",
    }


def test_several_files_or_a_folder_become_one_zip():
    several = plan_download(manifest_of({"a.txt": b"", "b.txt": b""}), "654321")
    assert (several.name, several.is_zip, several.size) == ("hushdrop-654321.zip", True, None)
    folder = plan_download(manifest_of({"pics/a.jpg": b""}, ("pics", "pics/empty")), "111111")
    assert folder.name == "pics.zip"
    assert folder.dir_names == ("pics/", "pics/empty/")
    mixed = plan_download(manifest_of({"pics/a.jpg": b"", "b.txt": b""}, ("pics",)), "222222")
    assert mixed.name == "hushdrop-222222.zip"


def test_hostile_names_are_sanitised_by_the_core():
    plan = plan_download(manifest_of({"../../etc/passwd": b"", "C:\\x\\CON.txt": b""}), "1")
    assert plan.file_names == ("_/_/etc/passwd", "C_/x/_CON.txt")
    single = plan_download(manifest_of({"../.bashrc\u202e": b"x"}), "1")
    assert single.name == ".bashrc_"
    with pytest.raises(UnsafePathError):
        plan_download(manifest_of({"A.txt": b"", "a.txt": b""}), "1")


def test_content_disposition_keeps_unicode_names_exact():
    header = content_disposition('résumé "final"%.pdf')
    assert header == (
        'attachment; filename="r_sum_ _final__.pdf"; '
        "filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22%25.pdf"
    )


def test_streamed_zip_holds_every_file_directory_and_mode(tmp_path):
    files = {
        "top/a.bin": os.urandom(3 * MiB + 5),
        "top/sub/ü.txt": "grüße".encode(),
        "top/empty.dat": b"",
    }
    manifest = manifest_of(files, ("top", "top/sub", "top/nothing-here"))
    plan = plan_download(manifest, "123456")
    sink = FileSink(tmp_path / "out.zip")
    chunks = [[data[i : i + MiB] for i in range(0, len(data), MiB)] for data in files.values()]
    run(stream(plan, manifest, sink, chunks))

    assert sink.ended == "closed"
    assert sink.largest <= MiB + 1024  # one message's worth at a time, never the whole file
    with zipfile.ZipFile(tmp_path / "out.zip") as archive:
        assert archive.testzip() is None
        infos = {info.filename: info for info in archive.infolist()}
        for name, data in files.items():
            assert archive.read(name) == data
            assert infos[name].external_attr >> 16 == 0o100640
            assert infos[name].compress_type == zipfile.ZIP_STORED
        assert {"top/", "top/sub/", "top/nothing-here/"} <= set(infos)
        assert infos["top/nothing-here/"].external_attr >> 16 == 0o40750
    if shutil.which("unzip"):  # Info-ZIP reads it too (data descriptors, UTF-8 names)
        result = subprocess.run(["unzip", "-t", str(tmp_path / "out.zip")], capture_output=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_a_member_over_4_gib_limits_uses_zip64(tmp_path):
    """zipfile switches a member to ZIP64 by itself because its size is announced up front; over
    an unseekable stream it could not fix the header afterwards."""
    size = 2**32 + 3 * MiB  # past the 32-bit size field
    block = bytes(MiB)
    manifest = Manifest((FileEntry("big.img", size), FileEntry("small.txt", 3)), ())
    plan = plan_download(manifest, "1")
    path = tmp_path / "big.zip"
    tail = bytes(size % MiB)
    chunks = [[block] * (size // MiB) + ([tail] if tail else []), [b"abc"]]
    try:
        run(stream(plan, manifest, FileSink(path), chunks))
        _check_big_zip(path, size, chunks)
    finally:
        path.unlink(missing_ok=True)  # 4 GiB: not left behind for pytest's kept temp dirs


def _check_big_zip(path: Path, size: int, chunks: list[list[bytes]]) -> None:
    with zipfile.ZipFile(path) as archive:
        big = archive.getinfo("big.img")
        assert big.file_size == size
        assert archive.read("small.txt") == b"abc"
        digest = hashlib.sha256()
        with archive.open(big) as member:  # reads to the end: the CRC is checked
            while data := member.read(16 * MiB):
                digest.update(data)
    expected = hashlib.sha256()
    for piece in chunks[0]:
        expected.update(piece)
    assert digest.hexdigest() == expected.hexdigest()


def test_numbers_go_to_the_page_as_typed_message_arguments():
    # The page (i18n.js) formats them for its language; test_i18n checks how they read.
    summary = files_summary(3, 50 * MiB)
    assert summary == t("files.summary", count=3, size=Size(50 * MiB))
    nested = t("send.done.timed", summary=summary, time=Duration(2.5), rate=Rate(MiB))
    assert nested.to_json() == {
        "$message": "send.done.timed",
        "args": {
            "summary": {
                "$message": "files.summary",
                "args": {"count": 3, "size": {"$size": 50 * MiB}},
            },
            "time": {"$duration": 2.5},
            "rate": {"$rate": MiB},
        },
    }
    with pytest.raises(TypeError):
        t("files.summary", count=None)


def test_errors_with_a_stable_kind_get_their_own_message():
    assert error_message(WrongCodeError(sender=True), sender=True) == t("error.wrong-code.sender")
    assert error_message(WrongCodeError(), sender=False) == t("error.wrong-code.receiver")
    cancelled = PeerCancelledError("The sender cancelled the transfer.")
    assert error_message(cancelled, sender=False) == t("error.sender-cancelled")
    reason = PeerCancelledError("The receiver could not save the files: the disk is full.")
    assert error_message(reason, sender=True).key == "error.peer-cancelled"
    unreachable = RelayError("Could not reach the relay at https://r.test.", "unreachable")
    assert error_message(unreachable, sender=True).key == "error.relay.unreachable"
    expired = RelayError("Nobody joined this transfer before its code expired.", "expired")
    assert error_message(expired, sender=True) == t("error.relay.expired")
    # The rest: the core's own sentence, through error.detail.
    other = CodeFormatError("A code starts with 6 digits.")
    assert error_message(other, sender=False) == Message(
        "error.detail", {"detail": "A code starts with 6 digits."}
    )


def test_rate_meter_repaints_at_most_four_times_a_second():
    now = [0.0]
    meter = RateMeter(100 * MiB, clock=lambda: now[0])
    paints = 0
    for step in range(1, 100):
        now[0] = step * 0.01  # 99 messages in one second
        paints += meter.due(step * MiB)
    assert paints <= 4  # every 0.25 s
    assert meter.due(100 * MiB)  # the end always repaints, once
    assert not meter.due(100 * MiB)
    now[0] = 1.0
    assert meter.text(100 * MiB) == t("progress.line", done=Size(100 * MiB), total=Size(100 * MiB))
    meter2 = RateMeter(10 * MiB, clock=lambda: now[0])
    now[0] = 2.0
    meter2.due(2 * MiB)
    assert meter2.text(2 * MiB) == t(
        "progress.line-rate",
        done=Size(2 * MiB),
        total=Size(10 * MiB),
        rate=Rate(2 * MiB),
        left=Duration(4.0),
    )


def test_rate_meter_says_when_a_held_back_update_may_be_shown():
    # Data that stops right after a throttled update (a pipe waiting for its writer) must still
    # reach the screen: the page repaints when the interval is over.
    now = [10.0]
    meter = RateMeter(None, clock=lambda: now[0])
    assert meter.due(0)
    assert meter.held_back(0) is None  # on screen
    now[0] = 10.1
    assert not meter.due(3 * MiB)
    assert meter.held_back(3 * MiB) == pytest.approx(0.15)
    now[0] = 10.3
    assert meter.held_back(3 * MiB) == 0.0
    assert meter.due(3 * MiB)
    assert meter.held_back(3 * MiB) is None


def test_links_and_sites():
    assert site_url("https://example.org", "/") == "https://example.org/"
    assert site_url("https://example.org", "/drop/index.html") == "https://example.org/drop/"
    check_site(
        parse_code("https://example.org/#123456-AAAAAAAAAAAAAAAAAAAAAA"), "https://example.org"
    )
    check_site(parse_code("123456-abandon-ability-able"), "https://example.org")
    with pytest.raises(CodeFormatError):
        check_site(parse_code("https://evil.test/#123456-AAAAAAAAAAAAAAAAAAAAAA"), "https://a.b")
    assert qr_data_uri("https://example.org/#1").startswith("data:image/svg+xml")
