"""The CLI receiver's resume record (PROTOCOL.md §8.3) keeps what a restart needs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hushdrop.cli.resume_record import ResumeRecord
from hushdrop.protocol.keys import SessionKeys
from hushdrop.protocol.manifest import FileEntry, Manifest
from hushdrop.protocol.paths import sanitize_path

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


def test_a_record_naming_a_file_outside_the_output_folder_is_not_used(tmp_path):
    # A sender that planted a record of its own (now impossible: the names are reserved, see
    # test_a_sender_cannot_name_a_file_like_a_receivers_own) must not steer files elsewhere.
    path = saved_record(tmp_path).path
    header, rest = path.read_text().split("\n", 1)
    document = json.loads(header)
    document["targets"] = ["../ESCAPED.txt"]
    path.write_text(json.dumps(document) + "\n" + rest)
    assert ResumeRecord.load(path) is None


def test_a_record_whose_targets_are_the_manifests_safe_paths_is_used(tmp_path):
    assert ResumeRecord.load(saved_record(tmp_path).path).targets == [Path("a.bin")]


@pytest.mark.parametrize(
    "name", [".hushdrop-0123456789abcdef.resume", ".hushdrop-x-0.part", ".HUSHDROP-x.resume"]
)
def test_a_sender_cannot_name_a_file_like_a_receivers_own(name):
    # Temporary files and resume records are the receiver's (PROTOCOL.md §9).
    assert sanitize_path(f"folder/{name}") == ("folder", "_" + name)
