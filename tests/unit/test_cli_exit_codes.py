"""The CLI's exit statuses, a documented contract (README: "Exit codes")."""

from __future__ import annotations

from hushdrop.cli.main import EXIT_CONNECTION, _exit_code
from hushdrop.protocol.errors import StreamLostError


def test_a_stream_that_a_lost_connection_stopped_exits_as_a_connection_failure():
    assert _exit_code(StreamLostError()) == EXIT_CONNECTION == 4
