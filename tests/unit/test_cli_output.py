"""The CLI's progress reports (cli/output.py): at most one per interval, and never a last value
left unshown because it came too soon after the one before (a slow stream's last step)."""

from __future__ import annotations

import asyncio
import io
import json

from hushdrop.cli import output
from hushdrop.cli.output import Reporter


def events(out: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def progress(out: io.StringIO) -> list[int]:
    return [e["bytes"] for e in events(out) if e["event"] == "progress"]


def test_a_value_that_came_too_soon_is_shown_when_the_interval_is_over(monkeypatch):
    monkeypatch.setattr(output, "PROGRESS_INTERVAL", 0.2)

    async def scenario() -> list[int]:
        out = io.StringIO()
        reporter = Reporter(True, out, io.StringIO())
        reporter.start_progress(None, "Sent")
        await asyncio.sleep(0.25)
        reporter.progress(29, None)  # shown at once: the interval since the start is over
        reporter.progress(42, None)  # too soon: held back
        reporter.progress(57, None)  # too soon as well; replaces 42
        assert progress(out) == [29]
        await asyncio.sleep(0.4)  # nothing more is reported, yet 57 appears
        return progress(out)

    assert asyncio.run(scenario()) == [29, 57]


def test_nothing_is_shown_after_the_end(monkeypatch):
    monkeypatch.setattr(output, "PROGRESS_INTERVAL", 0.2)

    async def scenario() -> list[dict]:
        out = io.StringIO()
        reporter = Reporter(True, out, io.StringIO())
        reporter.start_progress(100, "Sent")
        reporter.progress(50, 100)  # too soon after the start: held back…
        reporter.done(1, 100)  # …and the transfer ended first
        await asyncio.sleep(0.4)
        return events(out)

    assert [e["event"] for e in asyncio.run(scenario())] == ["done"]


def test_plain_lines_show_the_last_value_too(monkeypatch):
    monkeypatch.setattr(output, "PLAIN_PROGRESS_INTERVAL", 0.2)

    async def scenario() -> str:
        err = io.StringIO()
        reporter = Reporter(False, io.StringIO(), err)  # not a terminal: lines, no bar
        reporter.start_progress(None, "Sent")
        reporter.progress(2048, None)
        await asyncio.sleep(0.4)
        return err.getvalue()

    assert "Sent 2.0 KiB" in asyncio.run(scenario())
