"""deploy/hushdrop.service: hardened, and every variable it documents is one the relay reads.

The unit is never started here (no systemd in tests); `systemd-analyze verify` checks its syntax
when the machine has it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hushdrop_relay.config import _OPTIONS

from tests.conftest import REPO_ROOT

UNIT = REPO_ROOT / "deploy" / "hushdrop.service"


def settings() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def test_the_unit_is_hardened() -> None:
    unit = settings()
    for key, value in {
        "DynamicUser": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter": "@system-service",
    }.items():
        assert value in unit.get(key, []), key


def test_every_documented_variable_is_a_relay_setting() -> None:
    known = {option.var for option in _OPTIONS}
    documented = set(re.findall(r"Environment=(HUSHDROP_[A-Z_]+)=", UNIT.read_text()))
    assert documented - known == set()
    # The ones a deployment most needs are there.
    assert {"HUSHDROP_HOST", "HUSHDROP_TRUST_PROXY_HEADER", "HUSHDROP_TLS_CERT"} <= documented


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_verify_finds_nothing_wrong(tmp_path: Path) -> None:
    hushdrop = Path(sys.executable).with_name("hushdrop")
    text = UNIT.read_text().replace("/opt/hushdrop/bin/hushdrop", str(hushdrop))
    (tmp_path / "hushdrop.service").write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "hushdrop.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "hushdrop.service" not in result.stderr, result.stderr
