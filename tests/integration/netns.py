"""Network namespaces a test makes and removes itself (root and iproute2 needed)."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

AVAILABLE = os.geteuid() == 0 and shutil.which("ip") is not None
SKIP_REASON = "needs root and iproute2 to build network namespaces"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@dataclass
class Host:
    """A namespace joined to this host by one veth pair: the host's end is at `gateway`, where
    a relay started with ``--host gateway`` is reachable from inside."""

    namespace: str
    gateway: str


@contextlib.contextmanager
def host(*sysctls: str) -> Iterator[Host]:
    """A fresh namespace with the given ``name=value`` sysctls set inside it only (TCP buffer
    limits are per namespace, so a test can give one side a small machine's buffers)."""
    tag = secrets.token_hex(3)
    subnet = f"10.{200 + secrets.randbelow(50)}.{secrets.randbelow(250)}"
    namespace, outer, inner = f"hdh{tag}", f"hdo{tag}", f"hdi{tag}"
    try:
        ip("netns", "add", namespace)
        ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        ip("link", "set", inner, "netns", namespace)
        ip("addr", "add", f"{subnet}.1/30", "dev", outer)
        ip("link", "set", outer, "up")
        ip("-n", namespace, "addr", "add", f"{subnet}.2/30", "dev", inner)
        ip("-n", namespace, "link", "set", inner, "up")
        ip("-n", namespace, "link", "set", "lo", "up")
        for setting in sysctls:
            subprocess.run(
                ["ip", "netns", "exec", namespace, "sysctl", "-q", "-w", setting],
                check=True,
                capture_output=True,
                timeout=30,
            )
        yield Host(namespace, f"{subnet}.1")
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            ip("netns", "del", namespace)
        with contextlib.suppress(subprocess.CalledProcessError):
            ip("link", "del", outer)
