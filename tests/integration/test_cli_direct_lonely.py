"""Direct connections where there is no address to offer: two CLIs in a network namespace of
their own with only loopback, the relay beside them (PROTOCOL.md §8.5)."""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import RelayProcess
from .cli import receive, send

NO_DIRECT = "The receiver makes no direct connection."


@pytest.fixture
def loopback_only(tmp_path: Path, monkeypatch) -> Iterator[tuple[str, str]]:
    """(namespace, relay URL): a namespace with only `lo`, and a relay running inside it."""
    namespace = f"hdlo{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        subprocess.run(["ip", "-n", namespace, "link", "set", "lo", "up"], check=True)
        inside = tmp_path / "python-in-namespace"
        inside.write_text(f'#!/bin/sh\nexec ip netns exec {namespace} {sys.executable} "$@"\n')
        inside.chmod(0o755)
        with monkeypatch.context() as patch:  # the relay's interpreter runs in the namespace
            patch.setattr(sys, "executable", str(inside))
            relay = RelayProcess([])
        try:
            # Its banner comes once it listens (its health check would ask from outside).
            assert relay._url_found.wait(60), relay.logs()
            yield namespace, relay.url
        finally:
            relay.stop()
    finally:
        subprocess.run(["ip", "netns", "del", namespace], check=False)


def test_with_no_address_on_either_side_the_receiver_declines_the_direct_connection_at_once(
    loopback_only, tmp_path
):
    # Neither side has an address the other could reach: the receiver answers the sender's
    # (empty) hints with "no direct connection" at once, so the sender does not hold the data
    # for its connection timeout waiting for connections that cannot come.
    namespace, relay_url = loopback_only
    (tmp_path / "a.txt").write_text("hi")
    sender = send(relay_url, tmp_path / "a.txt", direct=True, netns=namespace)
    try:
        code = sender.wait_event("code")["code"]
        receiver = receive(relay_url, code, tmp_path / "out", direct=True, netns=namespace)
        assert receiver.wait() == 0, receiver.stderr
        assert sender.wait() == 0, sender.stderr
    finally:
        sender.stop()
    statuses = [e["message"] for e in sender.events if e["event"] == "status"]
    assert NO_DIRECT in statuses, sender.events
    assert [e["route"] for e in sender.events if e["event"] == "route"] == ["relay"]
    assert (tmp_path / "out" / "a.txt").read_text() == "hi"
