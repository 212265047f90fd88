"""Integration tests of the relay's observability: ``/metrics`` in Prometheus text format and
structured (JSON) logs, with and without identifiers, against real relay processes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tests.integration.cli import receive, send
from tests.integration.test_relay import (
    WAIT,
    client,
    closed_with,
    create,
    http_get,
    join_reply,
    pair,
    recv_json,
    run,
)

if TYPE_CHECKING:
    from tests.conftest import RelayFactory, RelayProcess

PREFIX = "hushdrop_relay_"
EXIT_WRONG_CODE = 3
# name{label="value",...} value — the subset of the text format the relay emits.
_SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$"
)
_LABEL = re.compile(r'(?P<key>[a-zA-Z_][a-zA-Z0-9_]*)="(?P<value>(?:[^"\\]|\\.)*)"')
_ROOM_NUMBER = re.compile(r"\b\d{6}\b")
_ADDRESS = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b|[0-9a-fA-F]*:[0-9a-fA-F]*:")

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse_metrics(text: str) -> tuple[Samples, dict[str, str]]:
    """Parse Prometheus text exposition: (samples by (name, sorted labels), TYPE by name).

    Fails the test on any line that is neither a comment nor ``name{labels} value``.
    """
    samples: Samples = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 4 and parts[1] == "TYPE":
                types[parts[2]] = parts[3]
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a Prometheus sample line: {line!r}"
        raw_labels = match["labels"] or ""
        labels = tuple(sorted((m["key"], m["value"]) for m in _LABEL.finditer(raw_labels)))
        # Every character of the label block must belong to a well-formed label.
        rebuilt = ",".join(f'{k}="{v}"' for k, v in sorted(labels))
        assert len(rebuilt) == len(raw_labels.rstrip(",")), f"malformed labels: {line!r}"
        key = (match["name"], labels)
        assert key not in samples, f"duplicate sample: {line!r}"
        samples[key] = float(match["value"])
    return samples, types


def scrape(relay: RelayProcess) -> Samples:
    status, headers, body = http_get(relay, "/metrics")
    assert status == 200
    assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples, _ = parse_metrics(body.decode())
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(PREFIX + name, tuple(sorted(labels.items())))]


async def wait_for_metrics(
    relay: RelayProcess, check: Callable[[Samples], bool], what: str, timeout: float = WAIT
) -> Samples:
    """Scrape until ``check`` holds (the relay updates its counters asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = await asyncio.to_thread(scrape, relay)
        if check(samples):
            return samples
        assert time.monotonic() < deadline, f"never reached: {what}"
        await asyncio.sleep(0.05)


# /metrics ------------------------------------------------------------------------------


def test_metrics_format_and_names(relay: RelayProcess) -> None:
    status, headers, body = http_get(relay, "/metrics")
    assert status == 200
    assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert headers["cache-control"] == "no-store"
    assert headers["x-content-type-options"] == "nosniff"
    samples, types = parse_metrics(body.decode())
    assert samples
    for name, _ in samples:
        assert name.startswith(PREFIX), name
        assert name in types, f"{name} has no TYPE line"
    for name, kind in types.items():
        assert kind == ("counter" if name.endswith("_total") else "gauge"), name
    expected = {
        "rooms_open",
        "peers_connected",
        "bytes_relayed_total",
        "pairs_closed_normally_total",
        "rooms_created_total",
        "resumes_total",
        "links_spliced_total",
        "errors_total",
        "limit_rejections_total",
    }
    assert {name.removeprefix(PREFIX) for name in types} == expected
    assert value(samples, "rooms_open", state="waiting") == 0
    assert value(samples, "rooms_open", state="paired") == 0
    # HEAD answers the same headers without a body.
    status, headers, body = http_get(relay, "/metrics", method="HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0


def test_counters_follow_a_real_transfer(relay: RelayProcess) -> None:
    async def main() -> None:
        before = await asyncio.to_thread(scrape, relay)
        creator, joiner, room = await pair(relay)
        during = await asyncio.to_thread(scrape, relay)
        assert value(during, "rooms_open", state="paired") == 1
        assert value(during, "rooms_open", state="waiting") == 0
        assert value(during, "peers_connected") == 2

        sent = 0
        for size in (1, 1000, 300_000):
            await creator.send(bytes(size))
            assert len(await asyncio.wait_for(joiner.recv(), WAIT)) == size
            sent += size
        await joiner.send(b"COMPLETE")  # the receiver's last word, as in a real transfer
        assert await asyncio.wait_for(creator.recv(), WAIT) == b"COMPLETE"
        sent += len(b"COMPLETE")
        await creator.close()
        assert (await recv_json(joiner))["op"] == "peer-gone"
        assert await closed_with(joiner) == 1000

        closed = value(before, "pairs_closed_normally_total") + 1
        after = await wait_for_metrics(
            relay,
            lambda s: (
                value(s, "pairs_closed_normally_total") >= closed
                and value(s, "peers_connected") == 0
            ),
            "the pair counted and both peers gone",
        )
        assert value(after, "pairs_closed_normally_total") == closed
        assert value(after, "bytes_relayed_total") >= value(before, "bytes_relayed_total") + sent
        assert value(after, "rooms_created_total") == value(before, "rooms_created_total") + 1
        assert value(after, "rooms_open", state="paired") == 0

        # No label value (nor anything else) carries a room number or an address.
        text = http_get(relay, "/metrics")[2].decode()
        assert room not in text
        samples, _ = parse_metrics(text)
        for _, labels in samples:
            for _, label_value in labels:
                assert not _ROOM_NUMBER.search(label_value), label_value
                assert not _ADDRESS.search(label_value), label_value

    run(main)


def test_one_way_or_failed_rooms_are_not_pairs_closed_normally(
    relay_factory: RelayFactory,
) -> None:
    relay = relay_factory("--room-byte-limit", "1000")

    async def main() -> None:
        # Data one way only, then a normal close: the peers did not both take part.
        creator, joiner, _ = await pair(relay)
        await creator.send(b"hello")
        await asyncio.wait_for(joiner.recv(), WAIT)
        await creator.close()
        await recv_json(joiner)
        await closed_with(joiner)
        # Data both ways, then the byte limit: an error, not a normal close.
        creator, joiner, _ = await pair(relay)
        await creator.send(bytes(10))
        await asyncio.wait_for(joiner.recv(), WAIT)
        await joiner.send(bytes(10))
        await asyncio.wait_for(creator.recv(), WAIT)
        await creator.send(bytes(2000))
        assert (await recv_json(joiner))["code"] == "byte-limit"
        await closed_with(joiner)
        await closed_with(creator)
        # Bad joins are counted by kind.
        reply, _ = await join_reply(relay, "000000")
        assert reply["code"] == "no-such-room"

        samples = await wait_for_metrics(
            relay,
            lambda s: (
                value(s, "errors_total", kind="byte-limit") == 1
                and value(s, "rooms_open", state="paired") == 0
            ),
            "both rooms closed",
        )
        assert value(samples, "pairs_closed_normally_total") == 0
        assert value(samples, "errors_total", kind="no-such-room") == 1
        assert value(samples, "rooms_created_total") == 2
        assert value(samples, "bytes_relayed_total") == 25

    run(main)


def test_declined_and_wrong_code_transfers_are_not_counted_as_completed(
    relay: RelayProcess, tmp_path: Path
) -> None:
    """The relay cannot read how a session ended (COMPLETE, DECLINE and CANCEL are sealed and
    padded alike), so no metric of it may claim to count finished transfers: it counts what
    it sees, peers that both closed normally, whatever they said before."""
    src = tmp_path / "a.bin"
    src.write_bytes(os.urandom(5000))
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()

    # One finished transfer.
    sender = send(relay.url, src)
    receiver = receive(relay.url, sender.wait_event("code")["code"], out)
    assert receiver.wait() == 0 and sender.wait() == 0, receiver.stderr + sender.stderr
    # A wrong code: key confirmation fails on both sides.
    sender = send(relay.url, src)
    room, first, *rest = sender.wait_event("code")["code"].split("-")
    wrong = "-".join([room, "zoo" if first != "zoo" else "zero", *rest])
    receiver = receive(relay.url, wrong, elsewhere)
    assert receiver.wait() == EXIT_WRONG_CODE and sender.wait() == EXIT_WRONG_CODE
    # A declined offer: the receiver will not overwrite the a.bin it already has.
    sender = send(relay.url, src)
    receiver = receive(relay.url, sender.wait_event("code")["code"], out)
    assert receiver.wait() != 0 and sender.wait() != 0
    assert "declined" in sender.error()["message"]

    samples = run(
        lambda: wait_for_metrics(
            relay,
            lambda s: (
                value(s, "rooms_created_total") == 3
                and value(s, "peers_connected") == 0
                and value(s, "rooms_open", state="paired") == 0
            ),
            "all three rooms closed",
        )
    )
    claims = {name: v for (name, _), v in samples.items() if "complet" in name}
    assert claims == {}, f"the relay claims finished transfers it cannot see: {claims}"
    # What it counts instead, exactly as documented: all three, alike.
    assert value(samples, "pairs_closed_normally_total") == 3


def test_metrics_can_be_disabled_by_flag_or_environment(relay_factory: RelayFactory) -> None:
    for relay in (
        relay_factory("--no-metrics"),
        relay_factory(env={"HUSHDROP_METRICS": "0"}),
    ):
        status, _, _ = http_get(relay, "/metrics")
        assert status == 404
        assert http_get(relay, "/healthz")[0] == 200
    # The flag wins over the environment.
    relay = relay_factory("--metrics", env={"HUSHDROP_METRICS": "off"})
    assert http_get(relay, "/metrics")[0] == 200


# Logs ----------------------------------------------------------------------------------


async def _traffic(relay: RelayProcess) -> list[str]:
    """A paired transfer, a refused join and a bad request; return the room numbers used."""
    creator, joiner, room = await pair(relay)
    await creator.send(b"secret payload")
    await asyncio.wait_for(joiner.recv(), WAIT)
    await joiner.send(b"ack")
    await asyncio.wait_for(creator.recv(), WAIT)
    await join_reply(relay, room)  # room-full
    await creator.close()
    await recv_json(joiner)
    await closed_with(joiner)
    async with client(relay) as ws:
        await ws.send("garbage")
        await closed_with(ws)
    waiting, other = await create(relay)
    await waiting.close()
    return [room, other]


def _json_lines(text: str) -> list[dict[str, object]]:
    records = []
    for line in text.splitlines():
        record = json.loads(line)  # every line is one JSON object
        assert isinstance(record, dict), line
        assert {"ts", "level", "event"} <= record.keys(), line
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(record["ts"]))
        records.append(record)
    return records


def test_json_logs_hold_no_identifiers_by_default(relay_factory: RelayFactory) -> None:
    relay = relay_factory("--log-format", "json", "--log-level", "DEBUG")
    rooms = run(lambda: _traffic(relay))
    assert relay.stop() == 0
    stderr = relay.stderr()
    records = _json_lines(stderr)
    events = [record["event"] for record in records]
    assert "room paired" in events and "relay stopped" in events
    closed = [r for r in records if r["event"] == "room closed" and r.get("reason") == "peer-gone"]
    assert closed and closed[0]["closed_normally"] is True
    for room in rooms:
        assert room not in stderr
    assert "127.0.0.1" not in stderr
    assert "secret payload" not in stderr
    assert all("room" not in record and "client" not in record for record in records)


def test_log_identifiers_switch_adds_room_numbers_and_addresses(
    relay_factory: RelayFactory,
) -> None:
    relay = relay_factory(env={"HUSHDROP_LOG_FORMAT": "json", "HUSHDROP_LOG_IDENTIFIERS": "1"})
    rooms = run(lambda: _traffic(relay))
    assert relay.stop() == 0
    records = _json_lines(relay.stderr())
    created = [r for r in records if r["event"] == "room created"]
    assert {r["room"] for r in created} == set(rooms)
    assert {r["client"] for r in created} == {"127.0.0.1"}
    paired = [r for r in records if r["event"] == "room paired"]
    assert paired and paired[0]["room"] == rooms[0] and paired[0]["client"] == "127.0.0.1"

    # Text format, by flag: the same fields as key=value.
    relay = relay_factory("--log-identifiers")
    rooms = run(lambda: _traffic(relay))
    assert relay.stop() == 0
    stderr = relay.stderr()
    assert f"room created room={rooms[0]} client=127.0.0.1" in stderr
    assert "room closed" in stderr and "reason=peer-gone" in stderr
