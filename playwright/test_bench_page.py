"""bench/page.py runs end to end and reports every figure its JSON promises, on a tiny file.

Only the report's shape is checked, never a speed: the machines are shared and noisy, and the
bench is where speed is looked at (bench/README.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

BENCH = REPO_ROOT / "bench" / "page.py"
TINY = ["--size", "1MiB", "--skip-load", "--skip-direct", "--skip-memory"]


def test_page_bench_reports_hushdrop_and_the_reference_client_side_by_side(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(BENCH), *TINY, "--json", "--tmpdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    report = json.loads(run.stdout)
    for part in ("throughput", "reference_js"):
        figures = report[part]
        assert figures["mib_s"] > 0
        assert {"sender main thread", "receiver main thread", "relay"} <= set(
            figures["cpu_ms_per_mib"]
        )
        for side in ("sender", "receiver"):
            tasks = figures["long_tasks"][side]
            assert tasks["error"] is None  # the Long Tasks API observed this page
            assert tasks["count"] >= 0 and tasks["longest_ms"] >= 0
        assert figures["peak_mb"] > 0 and "above_idle_mb" in figures
    assert report["single"]["receive_mib_s"] > 0 and report["single"]["send_mib_s"] > 0
    reference_single = report["reference_js"]["single"]
    assert reference_single["receive_mib_s"] > 0 and reference_single["send_mib_s"] > 0
