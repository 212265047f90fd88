"""The wheel `python -m build` makes, installed into a fresh virtual environment with no
checkout, runs `hushdrop serve` with the page, the relay and the CLI.

The wheel is built from a copy of the sources (nothing is written into the checkout) with a
freshly built site. The fresh environment installs with `--no-index`: the project's pinned
runtime dependencies are fetched as wheels first (`pip download`, which pip's cache usually
answers), as someone installing from a wheelhouse would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.integration.cli import sha256_file

SOURCES = ["pyproject.toml", "setup.py", "README.md", "relay", "web/hushdrop"]


def run(command: list[str | Path], **options) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=600, **options
    )
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without our settings and without the checkout on the import path."""
    skip = ("HUSHDROP_", "PYTHONPATH", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p
    )
    return {**env, **extra}


def runtime_requirements(folder: Path) -> tuple[list[str], Path]:
    """The pinned runtime dependencies, and the lock's versions as pip constraints."""
    text = (REPO_ROOT / "pyproject.toml").read_text()
    block = re.search(r"^dependencies = \[(.*?)\]", text, re.M | re.S)
    assert block
    pins = re.findall(r'"([^"]+==[^"]+)"', block.group(1))
    lock = (REPO_ROOT / "requirements.lock").read_text()
    constraints = folder / "constraints.txt"
    constraints.write_text("\n".join(re.findall(r"^([A-Za-z0-9_.-]+==\S+)", lock, re.M)) + "\n")
    return pins, constraints


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, built_site: Path) -> Path:
    """A fresh virtual environment with the wheel installed; returns its bin folder."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    for name in SOURCES:
        if (REPO_ROOT / name).is_dir():
            shutil.copytree(
                REPO_ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, source / name)
    run(
        [sys.executable, "-m", "build", "--outdir", work / "dist", source],
        env=clean_env(HUSHDROP_WHEEL_SITE=str(built_site)),
    )
    (wheel,) = (work / "dist").glob("hushdrop-*-py3-none-any.whl")

    pins, constraints = runtime_requirements(work)
    wheels = work / "wheelhouse"
    run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
         "-d", wheels, "-c", constraints, *pins])  # fmt: skip
    venv = work / "venv"
    run([sys.executable, "-m", "venv", venv], env=clean_env())
    run([venv / "bin" / "pip", "install", "--quiet", "--no-index", "--find-links", wheels, wheel],
        env=clean_env(), cwd=work)  # fmt: skip
    return venv / "bin"


class Serve:
    """`hushdrop serve --port 0` from the installed package, in a folder with no sources."""

    def __init__(self, bin_dir: Path, cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [bin_dir / "hushdrop", "serve", "--port", "0"],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=clean_env(PYTHONUNBUFFERED="1"),
        )
        assert self.proc.stdout is not None
        self.banner = [self.proc.stdout.readline(), self.proc.stdout.readline()]
        match = re.search(r"listening on (http://\S+)", self.banner[0])
        assert match, self.banner
        self.url = match.group(1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def serve(installed: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    server = Serve(installed, tmp_path_factory.mktemp("elsewhere"))
    yield server
    server.stop()


def test_the_installed_package_runs_from_the_environment_not_the_checkout(
    installed: Path, tmp_path: Path
) -> None:
    where = run(
        [installed / "python", "-c",
         "import hushdrop, hushdrop_relay; print(hushdrop.__file__, hushdrop_relay.__file__)"],
        cwd=tmp_path, env=clean_env(),
    ).stdout  # fmt: skip
    assert str(REPO_ROOT) not in where
    assert where.count(str(installed.parent / "lib")) == 2


def test_hushdrop_serve_serves_the_page_from_the_package(serve: Serve, installed: Path) -> None:
    assert "hushdrop_relay/site" in serve.banner[1], serve.banner
    with urllib.request.urlopen(serve.url + "/", timeout=20) as reply:
        page = reply.read().decode()
    assert '<code class="site-fingerprint">' in page
    # The page and every file it needs are the build's, as the packaged manifest says.
    result = subprocess.run(
        [installed / "hushdrop", "verify-site", serve.url],
        capture_output=True, text=True, timeout=120, env=clean_env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_cli_transfer_through_the_installed_relay(
    serve: Serve, installed: Path, tmp_path: Path
) -> None:
    source = tmp_path / "notes.bin"
    source.write_bytes(os.urandom(300_000))
    env = clean_env()
    sender = subprocess.Popen(
        [installed / "hushdrop", "send", source, "--relay", serve.url, "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        text=True, env=env,
    )  # fmt: skip
    try:
        assert sender.stdout is not None
        deadline = time.monotonic() + 60
        code = None
        while code is None and time.monotonic() < deadline:
            event = json.loads(sender.stdout.readline() or "{}")
            assert event, sender.stderr.read() if sender.stderr else ""
            code = event.get("code") if event.get("event") == "code" else None
        assert code
        received = subprocess.run(
            [installed / "hushdrop", "receive", "-o", tmp_path / "out", "--relay", serve.url,
             "--json"],
            capture_output=True, text=True, timeout=120, env={**env, "HUSHDROP_CODE": code},
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert received.returncode == 0, received.stdout + received.stderr
        assert sender.wait(60) == 0
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait()
    assert sha256_file(tmp_path / "out" / "notes.bin") == sha256_file(source)
