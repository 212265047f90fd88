"""`hushdrop serve --tls-cert --tls-key` serves HTTPS and WSS itself."""

from __future__ import annotations

import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.conftest import RelayFactory
from tests.deploy.tls import TestCA
from tests.integration.cli import receive, send, sha256_file


def test_banner_prints_the_https_address_and_cli_to_cli_works_over_wss(
    relay_factory: RelayFactory, test_ca: TestCA, tmp_path: Path
) -> None:
    relay = relay_factory(
        "--tls-cert", str(test_ca.cert), "--tls-key", str(test_ca.key),
        env={"SSL_CERT_FILE": str(test_ca.ca)},
    )  # fmt: skip
    assert relay.url.startswith("https://127.0.0.1:")
    assert f"Hushdrop relay listening on {relay.url}" in relay.stdout()

    source = tmp_path / "report.bin"
    source.write_bytes(b"over tls " * 50_000)
    trust = {"SSL_CERT_FILE": str(test_ca.ca)}
    sender = send(relay.url, source, env=trust)
    code = sender.wait_event("code")["code"]
    receiver = receive(relay.url, code, tmp_path / "out", env=trust)
    assert receiver.wait() == 0, receiver.stderr
    assert sender.wait() == 0, sender.stderr
    assert sha256_file(tmp_path / "out" / "report.bin") == sha256_file(source)


def test_environment_variables_turn_tls_on(relay_factory: RelayFactory, test_ca: TestCA) -> None:
    relay = relay_factory(
        env={
            "HUSHDROP_TLS_CERT": str(test_ca.cert),
            "HUSHDROP_TLS_KEY": str(test_ca.key),
            "SSL_CERT_FILE": str(test_ca.ca),
        }
    )
    context = ssl.create_default_context(cafile=str(test_ca.ca))
    with urllib.request.urlopen(relay.url + "/healthz", context=context, timeout=10) as reply:
        assert reply.read() == b"ok"


def test_a_client_that_does_not_trust_the_certificate_is_refused(
    relay_factory: RelayFactory, test_ca: TestCA, tmp_path: Path
) -> None:
    relay = relay_factory(
        "--tls-cert", str(test_ca.cert), "--tls-key", str(test_ca.key),
        env={"SSL_CERT_FILE": str(test_ca.ca)},
    )  # fmt: skip
    source = tmp_path / "a.txt"
    source.write_text("x")
    sender = send(relay.url, source)  # the system's CAs only
    assert sender.wait() == 4
    assert sender.error()["kind"] == "relay"


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hushdrop.cli.main", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_a_certificate_without_its_key_is_a_usage_error(test_ca: TestCA) -> None:
    result = _serve("--tls-cert", str(test_ca.cert))
    assert result.returncode == 2
    assert "give both files or neither" in result.stderr


def test_a_key_that_does_not_match_stops_the_relay_at_start(
    test_ca: TestCA, tmp_path: Path
) -> None:
    other = TestCA(tmp_path / "other")
    result = _serve("--tls-cert", str(test_ca.cert), "--tls-key", str(other.key))
    assert result.returncode == 1
    assert "cannot use the certificate" in result.stderr


def test_a_missing_certificate_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    result = _serve("--tls-cert", str(missing), "--tls-key", str(missing))
    assert result.returncode == 1
    assert f"cannot read {missing}" in result.stderr
