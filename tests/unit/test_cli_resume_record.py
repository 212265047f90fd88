"""The CLI receiver's resume record (PROTOCOL.md §8.3) keeps what a restart needs."""

from __future__ import annotations

import json
from pathlib import Path

from hushdrop.cli.resume_record import ResumeRecord
from hushdrop.protocol.keys import SessionKeys
from hushdrop.protocol.manifest import FileEntry, Manifest

KEYS = SessionKeys(b"c" * 32, b"d" * 32, b"e" * 32, "ABCD-EF01", b"r" * 32, b"k" * 32)


def saved_record(tmp_path: Path) -> ResumeRecord:
    record = ResumeRecord(
        tmp_path / ".hushdrop-0.resume",
        KEYS,
        Manifest((FileEntry("a.bin", 5),)),
        [Path("a.bin")],
        "0" * 16,
        "t",
    )
    record.save()
    return record


def test_a_restarted_receiver_keeps_the_key_of_direct_connections(tmp_path):
    keys = ResumeRecord.load(saved_record(tmp_path).path).keys
    assert (keys.data, keys.resume, keys.sas, keys.direct) == (
        KEYS.data,
        KEYS.resume,
        KEYS.sas,
        KEYS.direct,
    )
    assert keys.control_s2r == keys.control_r2s == b""  # fresh ones come with the resume


def test_a_record_without_that_key_still_resumes_through_the_relay(tmp_path):
    path = saved_record(tmp_path).path
    header, rest = path.read_text().split("\n", 1)
    document = json.loads(header)
    del document["direct"]  # as an older CLI wrote it
    path.write_text(json.dumps(document) + "\n" + rest)
    keys = ResumeRecord.load(path).keys
    assert keys.direct == b""
    assert keys.data == KEYS.data
