"""Direct TCP connections between two CLIs (PROTOCOL.md §8.5), on a network the test builds.

Two network namespaces, one per CLI, hang off one bridge; the relay listens on the bridge's
own address, so both reach it. The relay's `bytes_relayed_total` says what went through it.
Blocking the direct path means a route in each namespace that drops the other's address: the
relay stays reachable, the peers no longer reach each other.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.integration.cli import TIMEOUT, CliProcess, receive, send, sha256_file
from tests.integration.netns import AVAILABLE, SKIP_REASON, ip

if TYPE_CHECKING:
    from tests.conftest import RelayFactory

MIB = 1024 * 1024
# The relay forwards the key exchange, the manifest, the hints and SWITCH in any case.
CONTROL_ONLY = 64 * 1024

pytestmark = pytest.mark.skipif(not AVAILABLE, reason=SKIP_REASON)


@dataclass
class Lan:
    """Two namespaces on one bridge: `sender` and `receiver` with their addresses; the host
    (the relay) at `gateway`."""

    sender: str
    receiver: str
    sender_address: str
    receiver_address: str
    gateway: str

    def cut(self, kind: str = "blackhole") -> None:
        """No route between the two peers any more (the relay stays reachable)."""
        ip("-n", self.sender, "route", "add", kind, f"{self.receiver_address}/32")
        ip("-n", self.receiver, "route", "add", kind, f"{self.sender_address}/32")

    def mend(self, kind: str = "blackhole") -> None:
        """The path between the two peers works again."""
        ip("-n", self.sender, "route", "del", kind, f"{self.receiver_address}/32")
        ip("-n", self.receiver, "route", "del", kind, f"{self.sender_address}/32")


@pytest.fixture
def lan() -> Iterator[Lan]:
    tag = secrets.token_hex(3)
    subnet = f"10.{200 + secrets.randbelow(50)}.{secrets.randbelow(250)}"
    bridge, namespaces, host_ends = f"hdbr{tag}", [f"hds{tag}", f"hdr{tag}"], []
    try:
        ip("link", "add", bridge, "type", "bridge")
        ip("addr", "add", f"{subnet}.1/24", "dev", bridge)
        ip("link", "set", bridge, "up")
        for number, namespace in enumerate(namespaces, start=2):
            host_end, inner_end = f"hdv{tag}{number}", f"hdi{tag}{number}"
            ip("netns", "add", namespace)
            ip("link", "add", host_end, "type", "veth", "peer", "name", inner_end)
            host_ends.append(host_end)
            ip("link", "set", inner_end, "netns", namespace)
            ip("link", "set", host_end, "master", bridge, "up")
            ip("-n", namespace, "addr", "add", f"{subnet}.{number}/24", "dev", inner_end)
            ip("-n", namespace, "link", "set", inner_end, "up")
            ip("-n", namespace, "link", "set", "lo", "up")
        yield Lan(namespaces[0], namespaces[1], f"{subnet}.2", f"{subnet}.3", f"{subnet}.1")
    finally:
        for namespace in namespaces:
            with contextlib.suppress(subprocess.CalledProcessError):
                ip("netns", "del", namespace)
        for link in [*host_ends, bridge]:
            with contextlib.suppress(subprocess.CalledProcessError):
                ip("link", "del", link)


def relayed(relay_url: str) -> int:
    with urllib.request.urlopen(relay_url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    match = re.search(r"^hushdrop_relay_bytes_relayed_total (\d+)$", text, re.M)
    assert match, text
    return int(match.group(1))


def transfer(
    relay_url: str, lan: Lan, source: Path, out: Path, *, sender_extra=(), receiver_extra=()
) -> tuple[CliProcess, CliProcess]:
    sender = send(relay_url, source, extra=list(sender_extra), direct=True, netns=lan.sender)
    code = sender.wait_event("code")["code"]
    receiver = receive(
        relay_url, code, out, extra=list(receiver_extra), direct=True, netns=lan.receiver
    )
    return sender, receiver


def finish(*processes: CliProcess) -> None:
    try:
        for process in processes:
            assert process.wait(TIMEOUT) == 0, (process.events, process.stderr)
    finally:
        for process in processes:
            process.stop()


def routes(process: CliProcess) -> list[str]:
    return [event["route"] for event in process.events if event.get("event") == "route"]


def done(process: CliProcess) -> dict:
    return process.wait_event("done")


@pytest.fixture
def lan_relay(lan: Lan, relay_factory: RelayFactory) -> str:
    return relay_factory("--host", lan.gateway).url


def test_two_clis_that_reach_each_other_move_the_data_off_the_relay(
    lan: Lan, lan_relay: str, tmp_path: Path
) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(os.urandom(24 * MIB))
    before = relayed(lan_relay)
    sender, receiver = transfer(lan_relay, lan, source, tmp_path / "out")
    finish(sender, receiver)
    assert sha256_file(tmp_path / "out" / "data.bin") == sha256_file(source)
    assert routes(sender) == routes(receiver) == ["direct"]
    assert done(sender)["route"] == done(receiver)["route"] == "direct"
    assert relayed(lan_relay) - before < CONTROL_ONLY


def test_with_no_path_between_the_clis_the_relay_carries_the_file(
    lan: Lan, lan_relay: str, tmp_path: Path
) -> None:
    lan.cut("unreachable")
    source = tmp_path / "data.bin"
    source.write_bytes(os.urandom(8 * MIB))
    before = relayed(lan_relay)
    sender, receiver = transfer(lan_relay, lan, source, tmp_path / "out")
    finish(sender, receiver)
    assert sha256_file(tmp_path / "out" / "data.bin") == sha256_file(source)
    assert done(sender)["route"] == done(receiver)["route"] == "relay"
    assert routes(sender) == ["relay"]
    assert routes(receiver) == []  # it never moved
    assert relayed(lan_relay) - before >= 8 * MIB


def test_no_direct_keeps_everything_on_the_relay(lan: Lan, lan_relay: str, tmp_path: Path) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(os.urandom(8 * MIB))
    before = relayed(lan_relay)
    sender, receiver = transfer(
        lan_relay, lan, source, tmp_path / "out", receiver_extra=["--no-direct"]
    )
    finish(sender, receiver)
    assert sha256_file(tmp_path / "out" / "data.bin") == sha256_file(source)
    assert routes(receiver) == []
    assert done(sender)["route"] == done(receiver)["route"] == "relay"
    assert relayed(lan_relay) - before >= 8 * MIB


def test_a_sender_with_no_direct_offers_nothing(lan: Lan, lan_relay: str, tmp_path: Path) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(os.urandom(MIB))
    sender, receiver = transfer(
        lan_relay, lan, source, tmp_path / "out", sender_extra=["--no-direct"]
    )
    finish(sender, receiver)
    assert routes(sender) == routes(receiver) == []
    assert done(receiver)["route"] == "relay"


def test_a_direct_link_cut_mid_transfer_finishes_through_the_relay(
    lan: Lan, lan_relay: str, tmp_path: Path
) -> None:
    _slow_links(lan)  # so that the cut lands mid-way
    source = tmp_path / "data.bin"
    source.write_bytes(os.urandom(96 * MIB))
    sender, receiver = transfer(lan_relay, lan, source, tmp_path / "out")
    try:
        receiver.wait_event("route", timeout=60)
        _wait_progress(receiver, 8 * MIB)
        lan.cut("blackhole")  # packets vanish: no reset, no error, just silence
    except BaseException:
        sender.stop()
        receiver.stop()
        raise
    finish(sender, receiver)
    assert sha256_file(tmp_path / "out" / "data.bin") == sha256_file(source)
    assert routes(sender) == routes(receiver) == ["direct", "relay"]
    assert done(receiver)["route"] == "relay"
    assert any(event.get("event") == "resumed" for event in receiver.events)


def test_after_its_direct_link_failed_the_relay_carries_the_rest_at_once(
    lan: Lan, lan_relay: str, tmp_path: Path
) -> None:
    # The sender offers again after the resume through the relay; the receiver, whose path
    # failed in this run, refuses at once (§8.5), so no attempt holds the data back. The path
    # is mended before that offer: an attempt would now succeed and move the transfer back.
    _slow_links(lan)  # so that the cut lands mid-way
    source = tmp_path / "data.bin"
    source.write_bytes(os.urandom(96 * MIB))
    sender, receiver = transfer(lan_relay, lan, source, tmp_path / "out")
    try:
        receiver.wait_event("route", timeout=60)
        _wait_progress(receiver, 8 * MIB)
        lan.cut("blackhole")  # silence: each side's TCP gives the connection up by itself
        _wait_route(sender, "relay")
        lan.mend("blackhole")
        before = relayed(lan_relay)
        resumed = sender.wait_event("resumed", timeout=60)
    except BaseException:
        sender.stop()
        receiver.stop()
        raise
    finish(sender, receiver)
    assert sha256_file(tmp_path / "out" / "data.bin") == sha256_file(source)
    assert routes(sender) == routes(receiver) == ["direct", "relay"]
    assert done(sender)["route"] == done(receiver)["route"] == "relay"
    # Everything from the resume point on went through the relay.
    assert relayed(lan_relay) - before >= 96 * MIB - resumed["bytes"]


def test_a_stream_whose_direct_link_goes_silent_finishes_through_the_relay_intact(
    lan: Lan, lan_relay: str, tmp_path: Path
) -> None:
    # Standard input cannot be read again: the sender keeps what the receiver has not verified
    # yet and sends it again through the relay from the receiver's position (§7.2).
    _slow_links(lan)  # so that the cut lands mid-way
    sender = send(lan_relay, Path("-"), direct=True, netns=lan.sender, stdin=subprocess.PIPE)
    digest = hashlib.sha256()
    feeder = threading.Thread(target=_feed, args=(sender, 96, digest), daemon=True)
    feeder.start()
    out = tmp_path / "out"
    receiver = receive(
        lan_relay, sender.wait_event("code")["code"], out, direct=True, netns=lan.receiver
    )
    try:
        receiver.wait_event("route", timeout=60)
        _wait_progress(receiver, 8 * MIB)
        lan.cut("blackhole")  # packets vanish: no reset, no error, just silence
    except BaseException:
        sender.stop()
        receiver.stop()
        raise
    finish(sender, receiver)
    feeder.join(10)
    assert sha256_file(out / "stdin") == digest.hexdigest()
    assert routes(sender) == routes(receiver) == ["direct", "relay"]
    assert any(event.get("event") == "resumed" for event in receiver.events)


def _feed(sender: CliProcess, mebibytes: int, digest) -> None:
    """A producer: `mebibytes` MiB of random bytes into the sender's standard input."""
    with contextlib.suppress(BrokenPipeError):
        for _ in range(mebibytes):
            block = os.urandom(MIB)
            digest.update(block)
            sender.proc.stdin.write(block)
        sender.proc.stdin.close()


def test_a_receiver_restarted_from_its_record_goes_direct_again(
    lan: Lan, lan_relay: str, tmp_path: Path
) -> None:
    _slow_links(lan)  # so that the receiver is killed mid-way
    source = tmp_path / "data.bin"
    source.write_bytes(os.urandom(96 * MIB))
    out = tmp_path / "out"
    before = relayed(lan_relay)
    sender, first = transfer(lan_relay, lan, source, out)
    try:
        first.wait_event("route", timeout=60)
        _wait_progress(first, 8 * MIB)
        first.proc.kill()  # a crash: the resume record and the .part stay (§8.3)
        first.wait()
        code = sender.wait_event("code")["code"]
        restarted = receive(lan_relay, code, out, direct=True, netns=lan.receiver)
    except BaseException:
        sender.stop()
        first.stop()
        raise
    finish(sender, restarted)
    assert sha256_file(out / "data.bin") == sha256_file(source)
    assert any(event.get("event") == "resumed" for event in restarted.events)
    assert routes(restarted) == ["direct"]
    assert done(restarted)["route"] == done(sender)["route"] == "direct"
    assert routes(sender) == ["direct", "relay", "direct"]
    # Both receivers' data went direct: the relay carried the two handshakes and hints only.
    assert relayed(lan_relay) - before < 2 * CONTROL_ONLY


def _slow_links(lan: Lan) -> None:
    """tbf, 80 Mbit/s each way out of each namespace: a transfer takes long enough to be
    interrupted mid-way."""
    for namespace in (lan.sender, lan.receiver):
        device = _device(namespace)
        tbf = ["tbf", "rate", "80mbit", "burst", "64kb", "latency", "100ms"]
        subprocess.run(
            ["ip", "netns", "exec", namespace, "tc", "qdisc", "add", "dev", device, "root", *tbf],
            check=True,
            capture_output=True,
        )


def _device(namespace: str) -> str:
    links = subprocess.run(
        ["ip", "-n", namespace, "-o", "link", "show"], check=True, capture_output=True, text=True
    ).stdout
    return next(
        line.split(":")[1].strip().split("@")[0] for line in links.splitlines() if "hdi" in line
    )


def _wait_route(process: CliProcess, route: str, timeout: float = 60) -> None:
    """Until the process reported that its data now goes `route` (a wait, not an assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if route in routes(process):
            return
        time.sleep(0.05)
    raise AssertionError(f"no route {route!r}: {process.events[-5:]}")


def _wait_progress(process: CliProcess, at_least: int, timeout: float = 60) -> None:
    """Until the receiver reported `at_least` bytes (a wait, not a timed assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(
            e.get("event") == "progress" and e["bytes"] >= at_least for e in list(process.events)
        ):
            return
        time.sleep(0.05)
    raise AssertionError(f"no progress to {at_least} bytes: {process.events[-5:]}")


def test_each_receiver_of_a_link_gets_its_own_direct_connection(
    lan: Lan, lan_relay: str, tmp_path: Path
) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(os.urandom(16 * MIB))
    before = relayed(lan_relay)
    sender = send(lan_relay, source, extra=["--receivers", "2"], direct=True, netns=lan.sender)
    link = sender.wait_event("code")["link"]
    receivers = [
        receive(lan_relay, link, tmp_path / f"out{n}", direct=True, netns=lan.receiver)
        for n in (1, 2)
    ]
    finish(*receivers, sender)
    for n, receiver in enumerate(receivers, start=1):
        assert sha256_file(tmp_path / f"out{n}" / "data.bin") == sha256_file(source)
        assert done(receiver)["route"] == "direct"
    moves = sorted((e["receiver"], e["route"]) for e in sender.events if e["event"] == "route")
    assert moves == [(1, "direct"), (2, "direct")]
    assert relayed(lan_relay) - before < 2 * CONTROL_ONLY
