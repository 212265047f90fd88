"""The CLI's exit statuses, a documented contract (README: "Exit codes")."""

from __future__ import annotations

import json

from hushdrop.cli import main as cli_main
from hushdrop.cli.main import EXIT_CONNECTION, _exit_code
from hushdrop.protocol.errors import StreamLostError


def test_a_stream_that_a_lost_connection_stopped_exits_as_a_connection_failure():
    assert _exit_code(StreamLostError()) == EXIT_CONNECTION == 4


def _failing_transfer(args, reporter):
    raise RuntimeError("an invariant broke")


def test_an_internal_error_is_one_clear_line_and_exit_1_not_a_traceback(monkeypatch, capsys):
    monkeypatch.delenv("HUSHDROP_DEBUG", raising=False)
    monkeypatch.setattr(cli_main, "_run_transfer", _failing_transfer)
    assert cli_main.main(["receive", "--yes", "123456-able-able-able"]) == 1
    err = capsys.readouterr().err
    assert "internal error (RuntimeError: an invariant broke)" in err
    assert "please report it" in err
    assert "Traceback" not in err


def test_an_internal_errors_traceback_is_shown_with_hushdrop_debug(monkeypatch, capsys):
    monkeypatch.setenv("HUSHDROP_DEBUG", "1")
    monkeypatch.setattr(cli_main, "_run_transfer", _failing_transfer)
    assert cli_main.main(["receive", "--yes", "123456-able-able-able"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "an invariant broke" in err


def test_an_internal_error_in_json_mode_is_an_error_event_of_kind_error(monkeypatch, capsys):
    monkeypatch.delenv("HUSHDROP_DEBUG", raising=False)
    monkeypatch.setattr(cli_main, "_run_transfer", _failing_transfer)
    assert cli_main.main(["receive", "--json", "--yes", "123456-able-able-able"]) == 1
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    assert events[-1]["event"] == "error" and events[-1]["kind"] == "error"
