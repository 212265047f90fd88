"""Reconnecting sessions (PROTOCOL.md §8): the stream resumes from what the receiver verified."""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest
from hushdrop.protocol import events as ev
from hushdrop.protocol.constants import MSG_DATA, MSG_SEALED
from hushdrop.protocol.errors import TamperedError
from hushdrop.protocol.keys import SessionKeys
from hushdrop.protocol.padding import stream_padding
from hushdrop.protocol.receiver import ReceiverSession

from .pair import Pair

CHUNK = 16384


class Link:
    """A tamper hook that loses everything in both directions once `cut` is set."""

    def __init__(self, cut_after_data: int | None = None) -> None:
        self.cut = False
        self.cut_after_data = cut_after_data
        self.data_seen = 0
        self.data_bytes = 0

    def __call__(self, direction: str, message: bytes) -> list[bytes]:
        if self.cut:
            return []
        if message[0] == MSG_DATA:
            self.data_seen += 1
            self.data_bytes += len(message) - 1
            if self.cut_after_data is not None and self.data_seen > self.cut_after_data:
                self.cut = True
                return []
        return [message]


def reconnect(pair: Pair, link: Link) -> None:
    assert pair.sender.connection_lost()
    assert pair.receiver.connection_lost()
    link.cut = False
    link.cut_after_data = None
    pair.sender.resume()
    pair.receiver.resume()


def run(coro):
    return asyncio.run(coro)


def assert_intact(pair: Pair, outcome, files: dict[str, bytes]) -> None:
    assert outcome.sender_error is None and outcome.receiver_error is None
    assert pair.sender.finished
    assert [outcome.received.get(i, b"") for i in range(len(files))] == list(files.values())
    assert sorted(outcome.completed) == list(range(len(files)))


FILES = {
    "a.bin": os.urandom(3 * 1024 * 1024 + 5),
    "odd.bin": os.urandom(CHUNK * 40 + CHUNK - 4),  # the digest straddles the last two chunks
    "empty": b"",
    "b.bin": os.urandom(2 * 1024 * 1024),
}


@pytest.mark.parametrize("cut_after", [0, 1, 3, 4, 5])
def test_a_lost_connection_resumes_without_resending_verified_data(cut_after):
    async def scenario():
        link = Link(cut_after)
        pair = Pair(FILES, tamper=link)
        outcome = await pair.run()
        assert link.cut and not pair.sender.finished
        verified = pair.receiver.bytes_done
        reconnect(pair, link)
        before = link.data_bytes
        outcome = await pair.proceed()
        assert_intact(pair, outcome, FILES)
        resumed = [e for e in outcome.receiver_events if isinstance(e, ev.Resumed)]
        assert resumed == [ev.Resumed(verified)]
        # Only what was not verified travels again (plus headers, tags, the hashes and the
        # stream padding, §7.1).
        total = sum(len(d) for d in FILES.values())
        padding = stream_padding(pair.sender.manifest)
        assert link.data_bytes - before < (total - verified + padding) * 1.01 + 4096

    run(scenario())


def test_connection_lost_again_during_the_resume_handshake():
    async def scenario():
        link = Link(2)
        pair = Pair(FILES, tamper=link)
        await pair.run()
        reconnect(pair, link)
        pair.sender.data_to_send()  # the sender's RESUME is lost on the way
        assert pair.sender.connection_lost() and pair.receiver.connection_lost()
        pair.sender.resume()
        pair.receiver.resume()
        assert_intact(pair, await pair.proceed(), FILES)

    run(scenario())


def test_several_reconnections_in_one_transfer():
    async def scenario():
        link = Link(1)
        pair = Pair(FILES, tamper=link)
        outcome = await pair.run()
        reconnections = 0
        while not pair.sender.finished:
            reconnect(pair, link)
            link.cut_after_data = link.data_seen + 2
            outcome = await pair.proceed()
            reconnections += 1
        assert reconnections >= 3
        assert_intact(pair, outcome, FILES)

    run(scenario())


def test_a_session_before_acceptance_does_not_resume():
    async def scenario():
        pair = Pair({"a": b"x"})
        assert not pair.sender.connection_lost()
        assert not pair.receiver.connection_lost()

    run(scenario())


def test_an_impostor_without_the_resume_secret_is_detected():
    async def scenario():
        link = Link(1)
        pair = Pair(FILES, tamper=link)
        await pair.run()
        assert pair.receiver.connection_lost()
        # The impostor ran its own session: same protocol, different keys.
        other = Pair(FILES, tamper=Link(1))
        await other.run()
        assert other.sender.connection_lost()
        pair.receiver.resume()
        other.sender.resume()
        for message in other.sender.data_to_send():
            await pair.receiver.receive(message)
        resume, resume_at = pair.receiver.data_to_send()
        await other.sender.receive(resume)
        with pytest.raises(TamperedError, match="Someone other than"):
            await other.sender.receive(resume_at)

    run(scenario())


def test_a_message_of_the_old_connection_does_not_authenticate_on_the_new_one():
    async def scenario():
        old: list[bytes] = []
        link = Link(2)

        def record(direction, message):
            if direction == "r2s" and message[0] == MSG_SEALED:
                old.append(message)
            return link(direction, message)

        pair = Pair(FILES, tamper=record)
        await pair.run()
        reconnect(pair, link)
        for message in pair.receiver.data_to_send():
            await pair.sender.receive(message)  # the receiver's RESUME
        for message in pair.sender.data_to_send():
            await pair.receiver.receive(message)
        with pytest.raises(TamperedError):
            await pair.sender.receive(old[0])

    run(scenario())


def test_a_restarted_receiver_resumes_from_its_partial_file():
    async def scenario():
        link = Link(5)
        pair = Pair(FILES, tamper=link)
        outcome = await pair.run()
        saved = len(outcome.completed)
        keys: SessionKeys = pair.receiver.keys
        partial = outcome.received.get(saved, b"")[:-1000]  # the last write was cut short
        assert partial
        restarted = ReceiverSession.restore(
            pair.backend,
            pair.receiver._handshake._code,
            SessionKeys(b"", b"", keys.data, keys.sas, keys.resume),
            pair.receiver.manifest,
            saved,
            (len(partial), hashlib.sha256(partial)),
        )
        pair.receiver = restarted
        assert pair.sender.connection_lost()
        link.cut, link.cut_after_data = False, None
        pair.sender.resume()
        restarted.resume()
        outcome.received[saved] = partial
        assert_intact(pair, await pair.proceed(), FILES)

    run(scenario())


def test_a_file_changed_before_resuming_fails_its_hash():
    async def scenario():
        files = {"a.bin": os.urandom(4 * 1024 * 1024)}
        link = Link(2)
        pair = Pair(files, tamper=link)
        await pair.run()
        reconnect(pair, link)
        pair.files[0] = b"\0" * 100 + pair.files[0][100:]  # edited where the receiver has it
        outcome = await pair.proceed()
        assert isinstance(outcome.receiver_error, TamperedError)
        assert "wrong SHA-256" in str(outcome.receiver_error)
        assert outcome.completed == []

    run(scenario())


def test_signaling_is_sealed_and_a_switch_resumes_on_the_new_connection():
    async def scenario():
        files = {"a.bin": os.urandom(3 * 1024 * 1024)}
        pair = Pair(files)
        sender, receiver = pair.sender, pair.receiver
        await sender.start()
        while not any(isinstance(e, ev.Verified) for e in pair.outcome.sender_events):
            assert await pair._step()

        async def deliver(source, target) -> list:
            events = []
            for message in source.data_to_send():
                assert b"fingerprint" not in message  # sealed: the relay never sees the SDP
                events += await target.receive(message)
            return events

        assert isinstance((await deliver(sender, receiver))[0], ev.Offered)
        offer = b'{"type": "offer", "sdp": "v=0 fingerprint:sha-256 AB:CD"}'
        await sender.send_signal(offer)  # while the receiver still decides
        assert await deliver(sender, receiver) == [ev.DirectSignal(offer)]
        answer = b'{"type": "answer", "sdp": "v=0 fingerprint:sha-256 EF:01"}'
        await receiver.send_signal(answer)
        assert await deliver(receiver, sender) == [ev.DirectSignal(answer)]
        await receiver.accept()
        assert await deliver(receiver, sender) == [ev.Accepted()]
        # The sender moves before any DATA: the receiver is told, both resume elsewhere.
        await sender.switch_direct()
        assert await deliver(sender, receiver) == [ev.SwitchDirect()]
        assert sender.connection_lost() and receiver.connection_lost()
        sender.resume()
        receiver.resume()
        outcome = await pair.proceed()
        assert_intact(pair, outcome, files)
        assert ev.Resumed(0) in outcome.receiver_events

    run(scenario())


def test_a_switch_in_the_middle_of_the_stream_restarts_it_from_the_verified_byte():
    async def scenario():
        files = {"a.bin": os.urandom(6 * 1024 * 1024 + 7)}
        pair = Pair(files)
        sender, receiver = pair.sender, pair.receiver
        await sender.start()
        while len(pair.outcome.received.get(0, b"")) < 2 * 1024 * 1024:
            assert await pair._step()
        assert sender.can_switch
        await sender.switch_direct()
        request = sender.next_read()  # more data read after SWITCH...
        if request is not None:
            _, offset, length = request
            await sender.send_plaintext(files["a.bin"][offset : offset + length])
        queued = sender.data_to_send()
        for message in queued:
            events = await receiver.receive(message)
            for event in events:
                await pair._on_receiver_event(event)
            if ev.SwitchDirect() in events:
                break  # the receiver reads nothing after SWITCH on this connection
        assert queued[-1][0] == MSG_SEALED  # ...goes on the new connection, not behind SWITCH
        verified = len(pair.outcome.received[0])
        assert sender.connection_lost() and receiver.connection_lost()
        sender.resume()
        receiver.resume()
        outcome = await pair.proceed()
        assert_intact(pair, outcome, files)
        assert ev.Resumed(verified) in outcome.receiver_events
        assert ev.Resumed(verified) in outcome.sender_events

    run(scenario())


def test_a_sender_that_is_not_sending_cannot_switch():
    pair = Pair({"a.bin": b"x"})
    assert not pair.sender.can_switch
    assert not pair.receiver.can_switch


def test_sealed_messages_leave_in_counter_order_when_encryption_finishes_out_of_order():
    async def scenario():
        pair = Pair({"a.bin": b"x" * 100})
        sender, receiver = pair.sender, pair.receiver
        await sender.start()
        while not any(isinstance(e, ev.Verified) for e in pair.outcome.sender_events):
            assert await pair._step()
        for message in sender.data_to_send():  # the manifest
            await receiver.receive(message)
        backend_seal = pair.backend.seal
        calls = 0

        async def slow_first_seal(*args):
            nonlocal calls
            calls += 1
            if calls == 1:  # like WebCrypto: the first encryption finishes last
                await asyncio.sleep(0.05)
            return await backend_seal(*args)

        pair.backend.seal = slow_first_seal
        first, second = b'{"type": "first"}', b'{"type": "second"}'
        pending = asyncio.ensure_future(sender.send_signal(first))
        await asyncio.sleep(0)
        await sender.send_signal(second)
        assert sender.data_to_send() == []  # the second waits for the first
        await pending
        events = []
        for message in sender.data_to_send():
            events += await receiver.receive(message)
        assert events == [ev.DirectSignal(first), ev.DirectSignal(second)]

    run(scenario())
