"""The relay gives memory back once forwarding winds down (hushdrop_relay.forward.HeapRelease)."""

from __future__ import annotations

import asyncio

from hushdrop_relay import forward


def test_memory_is_released_once_after_a_burst_of_pairs_ended(monkeypatch):
    monkeypatch.setattr(forward, "RELEASE_DELAY", 0.05)
    calls: list[int] = []

    async def scenario():
        heap = forward.HeapRelease()
        heap.trim = calls.append
        for _ in range(4):
            heap.pair_started()
        heap.pair_ended()  # 3 of 4 still forward: their buffers are in use
        await asyncio.sleep(0.1)
        assert calls == []
        heap.pair_ended()
        heap.pair_ended()  # half gone: one release for the burst
        heap.pair_ended()
        await asyncio.sleep(0.1)
        assert calls == [0]

    asyncio.run(scenario())


def test_a_relay_without_glibc_does_nothing():
    heap = forward.HeapRelease()
    heap.trim = None
    heap.pair_started()
    heap.pair_ended()  # no event loop needed: nothing is scheduled
