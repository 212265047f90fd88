"""Debian's caddy and nginx run in front of a relay by the tests, on ports chosen at run time.

Each proxy runs the configuration in `deploy/` as shipped, changed only where a test must differ
from a real server (its address and ports, the certificate, the relay's port), each change
checked to apply. Everything it writes goes to a temporary folder; the process is stopped at the
end of the `with` block.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

from tests.conftest import REPO_ROOT
from tests.deploy.process import ServerProcess
from tests.deploy.tls import TestCA

DEPLOY = REPO_ROOT / "deploy"
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def replaced(text: str, old: str, new: str) -> str:
    assert old in text, f"deploy/ no longer has {old!r}: update the test"
    return text.replace(old, new)


def program(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    assert path, f"Debian's {name} is not installed: run `make test` (it installs it)"
    return path


class Proxy(ServerProcess):
    """A proxy process; `url` is its https address, `ca` the root certificate it chains to."""

    url: str
    ca: Path

    def __init__(self, command: list[str], folder: Path, env: dict[str, str] | None = None):
        self.log = folder / "proxy.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                cwd=folder,
            )

    def logs(self) -> str:
        """Everything the proxy wrote: its output, and its log files (nginx's error logs)."""
        files = [self.log, *sorted((self.log.parent / "logs").glob("*.log"))]
        return "".join(f.read_text(errors="replace") for f in files if f.exists())

    def wait_listening(self, port: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"proxy exited:\n{self.logs()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"proxy never listened on {port}:\n{self.logs()}")

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


class Nginx(Proxy):
    """deploy/nginx/hushdrop.conf in a private nginx (`-p prefix -c conf -g 'daemon off;'`)."""

    def __init__(self, folder: Path, relay_port: int, ca: TestCA) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        site = (DEPLOY / "nginx" / "hushdrop.conf").read_text()
        site = replaced(site, "listen 443 ssl http2;", f"listen 127.0.0.1:{self.port} ssl http2;")
        site = replaced(site, "    listen [::]:443 ssl http2;\n", "")
        site = replaced(
            site, "/etc/letsencrypt/live/hushdrop.example.org/fullchain.pem", str(ca.cert)
        )
        site = replaced(site, "/etc/letsencrypt/live/hushdrop.example.org/privkey.pem", str(ca.key))
        site = replaced(site, "http://127.0.0.1:8780", f"http://127.0.0.1:{relay_port}")
        site = replaced(site, "/var/log/nginx/error.log", str(folder / "logs" / "site-error.log"))
        (folder / "hushdrop.conf").write_text(site)
        for sub in ("logs", "tmp"):
            (folder / sub).mkdir(exist_ok=True)
        (folder / "nginx.conf").write_text(
            f"""
pid {folder}/nginx.pid;
error_log {folder}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {folder}/tmp/body;
    proxy_temp_path {folder}/tmp/proxy;
    fastcgi_temp_path {folder}/tmp/fastcgi;
    uwsgi_temp_path {folder}/tmp/uwsgi;
    scgi_temp_path {folder}/tmp/scgi;
    include {folder}/hushdrop.conf;
}}
"""
        )
        command = [program("nginx"), "-p", f"{folder}/", "-c", f"{folder}/nginx.conf"]
        command += ["-g", "daemon off;"]
        super().__init__(command, folder)
        self.url = f"https://127.0.0.1:{self.port}"
        self.ca = ca.ca
        self.wait_listening(self.port)


class Caddy(Proxy):
    """deploy/Caddyfile in a private caddy (`caddy run --config`), with `tls internal`.

    Caddy's data (its local CA) goes to the folder through XDG_DATA_HOME; `ca` is the root
    certificate it made there.
    """

    def __init__(self, folder: Path, relay_port: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        http_port = free_port()
        site = (DEPLOY / "Caddyfile").read_text()
        site = replaced(site, "127.0.0.1:8780", f"127.0.0.1:{relay_port}")
        site = replaced(
            site,
            "hushdrop.example.org {\n",
            f"https://127.0.0.1:{self.port} {{\n\ttls internal\n",
        )
        # Into the file's own global options block, which must stay the first and only one.
        site = replaced(
            site,
            "{\n\t# Like the relay",
            "{\n\tadmin off\n\tskip_install_trust\n"
            f"\thttp_port {http_port}\n\thttps_port {self.port}\n"
            f"\tstorage file_system {folder / 'data'}\n\t# Like the relay",
        )
        (folder / "Caddyfile").write_text(site)
        env = {"XDG_DATA_HOME": str(folder / "xdg-data"), "XDG_CONFIG_HOME": str(folder / "xdg")}
        command = [program("caddy"), "run", "--config", str(folder / "Caddyfile")]
        super().__init__([*command, "--adapter", "caddyfile"], folder, env)
        self.url = f"https://127.0.0.1:{self.port}"
        self.ca = folder / "data" / "pki" / "authorities" / "local" / "root.crt"
        deadline = time.monotonic() + START_TIMEOUT
        while not self.ca.is_file():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"caddy made no root certificate:\n{self.logs()}")
            time.sleep(0.1)
        self.wait_listening(self.port)
