"""The relay's resume slots (PROTOCOL.md §3, §8) and its failed-join limit, on a real process."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

from .test_relay import WAIT, client, closed_with, recv_json, run

if TYPE_CHECKING:
    from tests.conftest import RelayFactory, RelayProcess

SLOT = "A" * 21 + "w"


async def resume(relay: RelayProcess, side: str, slot: str = SLOT):
    ws = await client(relay)
    await ws.send(json.dumps({"op": "resume", "id": slot, "side": side}))
    return ws


def test_a_sender_and_a_receiver_resuming_the_same_session_are_paired(relay: RelayProcess):
    async def scenario():
        sender = await resume(relay, "sender")
        receiver = await resume(relay, "receiver")
        assert (await recv_json(sender))["op"] == "paired"
        assert (await recv_json(receiver))["op"] == "paired"
        await sender.send(b"\x05to receiver")
        assert await asyncio.wait_for(receiver.recv(), WAIT) == b"\x05to receiver"
        await receiver.send(b"\x05to sender")
        assert await asyncio.wait_for(sender.recv(), WAIT) == b"\x05to sender"
        await sender.close()
        assert (await recv_json(receiver))["op"] == "peer-gone"

    run(scenario)


def test_a_session_can_resume_again_after_its_resumed_pair_ended(relay: RelayProcess):
    async def scenario():
        for _ in range(3):
            sender = await resume(relay, "sender")
            receiver = await resume(relay, "receiver")
            assert (await recv_json(sender))["op"] == "paired"
            assert (await recv_json(receiver))["op"] == "paired"
            await receiver.close()
            await closed_with(sender)

    run(scenario)


def test_a_newer_connection_of_the_same_side_replaces_the_waiting_one(relay: RelayProcess):
    async def scenario():
        stale = await resume(relay, "sender")
        await asyncio.sleep(0.2)
        fresh = await resume(relay, "sender")
        reply = await recv_json(stale)
        assert reply["op"] == "error" and reply["code"] == "replaced"
        await closed_with(stale)
        receiver = await resume(relay, "receiver")
        assert (await recv_json(fresh))["op"] == "paired"
        assert (await recv_json(receiver))["op"] == "paired"

    run(scenario)


def test_a_third_connection_to_a_paired_slot_is_refused(relay: RelayProcess):
    async def scenario():
        await resume(relay, "sender")
        await resume(relay, "receiver")
        await asyncio.sleep(0.2)
        third = await resume(relay, "receiver")
        reply = await recv_json(third)
        assert reply["op"] == "error" and reply["code"] == "room-full"

    run(scenario)


def test_resume_slots_and_rooms_do_not_mix(relay: RelayProcess):
    async def scenario():
        ws = await client(relay)
        await ws.send(json.dumps({"op": "create"}))
        room = (await recv_json(ws))["room"]
        other = await client(relay)
        await other.send(json.dumps({"op": "resume", "id": room, "side": "receiver"}))
        reply = await recv_json(other)
        assert reply["op"] == "error" and reply["code"] == "bad-request"

    run(scenario)


def test_a_resume_request_must_name_a_valid_id_and_side(relay: RelayProcess):
    async def scenario():
        for request in (
            {"op": "resume", "id": "short", "side": "sender"},
            {"op": "resume", "id": SLOT, "side": "relay"},
            {"op": "resume", "id": 42, "side": "sender"},
        ):
            ws = await client(relay)
            await ws.send(json.dumps(request))
            reply = await recv_json(ws)
            assert reply["op"] == "error" and reply["code"] == "bad-request", request

    run(scenario)


def test_a_resume_slot_nobody_joins_expires(relay_factory: RelayFactory):
    relay = relay_factory("--resume-timeout", "1")

    async def scenario():
        ws = await resume(relay, "receiver")
        reply = await recv_json(ws, timeout=WAIT)
        assert reply["op"] == "error" and reply["code"] == "expired"

    run(scenario)


def test_repeated_joins_of_rooms_that_do_not_exist_are_slowed_down(relay_factory: RelayFactory):
    relay = relay_factory("--failed-joins-per-ip-per-minute", "3")

    async def join(room: str) -> dict:
        ws = await client(relay)
        await ws.send(json.dumps({"op": "join", "room": room}))
        return await recv_json(ws)

    async def scenario():
        for guess in ("000001", "000002", "000003"):
            assert (await join(guess))["code"] == "no-such-room"
        refused = await join("000004")
        assert refused["code"] == "limit"
        assert "do not exist" in refused["message"]
        # Creating rooms, and the rooms of other people, are not affected.
        ws = await client(relay)
        await ws.send(json.dumps({"op": "create"}))
        assert (await recv_json(ws))["op"] == "created"

    run(scenario)
