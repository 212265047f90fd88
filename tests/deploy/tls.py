"""A throwaway certificate authority for the deployment tests, made with the `openssl` command.

`TestCA(folder)` writes `ca.pem` (the root clients trust, e.g. through ``SSL_CERT_FILE``) and a
leaf `cert.pem`/`key.pem` for 127.0.0.1 and localhost signed by it, as a real deployment has a
chain from a public CA. `spki_hash` is what Chromium's ``--ignore-certificate-errors-spki-list``
takes to trust one key and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
from pathlib import Path


def _openssl(*args: str, cwd: Path) -> bytes:
    return subprocess.run(
        ["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60
    ).stdout


class TestCA:
    """A CA and one server certificate for 127.0.0.1/localhost, as PEM files in ``folder``."""

    __test__ = False  # not a test class, despite its name

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.ca = folder / "ca.pem"
        self.cert = folder / "cert.pem"
        self.key = folder / "key.pem"
        ca_key = folder / "ca-key.pem"
        _openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", ca_key.name, "-out", self.ca.name, "-days", "2",
            "-subj", "/CN=Hushdrop test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            cwd=folder,
        )  # fmt: skip
        _openssl(
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", self.key.name, "-out", "leaf.csr", "-subj", "/CN=localhost",
            cwd=folder,
        )  # fmt: skip
        (folder / "leaf.ext").write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth\n"
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        )
        _openssl(
            "x509", "-req", "-in", "leaf.csr", "-CA", self.ca.name, "-CAkey", ca_key.name,
            "-CAcreateserial", "-days", "2", "-extfile", "leaf.ext", "-out", self.cert.name,
            cwd=folder,
        )  # fmt: skip
        self.spki_hash = spki_hash(self.cert)


def spki_hash(cert: Path) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)) of a PEM certificate, as Chromium pins keys."""
    der = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-pubkey", "-noout"],
        check=True,
        capture_output=True,
        timeout=30,
    ).stdout
    spki = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "DER"],
        input=der,
        check=True,
        capture_output=True,
        timeout=30,
    ).stdout
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()
