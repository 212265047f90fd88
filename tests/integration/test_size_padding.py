"""What the relay can count (PROTOCOL.md §7.1, §10): files whose sizes fall in one PADMÉ bucket
cost exactly the same relayed bytes, through a real relay process and real CLI processes."""

from __future__ import annotations

import os
import time
from pathlib import Path

from hushdrop.protocol.constants import FILE_DIGEST_SIZE
from hushdrop.protocol.padding import padme

from .cli import receive, send, sha256_file
from .test_metrics import scrape, value


def relayed_bytes_of_one_transfer(relay, tmp_path: Path, size: int) -> int:
    """Bytes the relay forwarded (both directions) for one transfer of a file of `size`."""
    src = tmp_path / f"src-{size}" / "file.bin"
    src.parent.mkdir()
    src.write_bytes(os.urandom(size))
    os.utime(src, (1_700_000_000, 1_700_000_000))  # the same mtime digits in both manifests
    before = value(scrape(relay), "bytes_relayed_total")
    sender = send(relay.url, src)
    out = tmp_path / f"out-{size}"
    receiver = receive(relay.url, sender.wait_event("code")["code"], out)
    assert receiver.wait() == 0, receiver.stderr
    assert sender.wait() == 0, sender.stderr
    assert sha256_file(out / "file.bin") == sha256_file(src)
    deadline = time.monotonic() + 10
    while True:  # the relay counts a message once it forwarded it
        relayed = value(scrape(relay), "bytes_relayed_total") - before
        if relayed >= size or time.monotonic() > deadline:
            return int(relayed)
        time.sleep(0.05)


def test_files_in_one_size_bucket_cost_the_same_relayed_bytes(relay, tmp_path):
    small, large = 5_000_000, 5_100_000
    assert padme(small + FILE_DIGEST_SIZE) == padme(large + FILE_DIGEST_SIZE)
    first = relayed_bytes_of_one_transfer(relay, tmp_path, small)
    second = relayed_bytes_of_one_transfer(relay, tmp_path, large)
    assert first == second
    assert first >= large  # and the data did go through the relay


def test_files_in_different_buckets_differ(relay, tmp_path):
    # The relay still learns the bucket: the size to within its ≤ 12% (PADMÉ).
    small, large = 1_000_000, 2_000_000
    assert relayed_bytes_of_one_transfer(relay, tmp_path, small) < relayed_bytes_of_one_transfer(
        relay, tmp_path, large
    )
