"""Real `hushdrop send` / `hushdrop receive` processes through a malicious relay.

Each test is one attack by the relay (malicious_relay.py). What must hold, whatever it does
(PROTOCOL.md §10): the attack is detected and reported with a clear error, no file is saved under
its final name unless its SHA-256 verified (`.part` leftovers are fine), nobody waits forever, and
a relay that substitutes keys changes the verification code.

The transfers carry one 5 MiB file: six DATA messages of 1 MiB of stream (§7). What the policies
count: sender → receiver are HELLO, PAKE_B, SEALED(MANIFEST), then the DATA; receiver → sender
are PAKE_A, CONFIRM, SEALED(ACCEPT), SEALED(CREDIT) after 4 MiB, SEALED(COMPLETE). On a
resumed connection (§8.2) each side first sends RESUME; then come SEALED(RESUME_AT) from the
receiver and SEALED(RESUMED) from the sender, and the DATA again.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hushdrop.cli.main import EXIT_CONNECTION, EXIT_TAMPERED, EXIT_WRONG_CODE
from hushdrop.protocol.constants import (
    ABORT_CANCELLED,
    ABORT_CONFIRMATION_FAILED,
    ABORT_MALFORMED,
    MSG_DATA,
    MSG_RESUME,
    MSG_SEALED,
    PROTOCOL_VERSION,
    RESUME_NONCE_SIZE,
    SEALED_PAD,
    SIDE_RECEIVER,
)
from hushdrop.protocol.framing import encode_abort

from .cli import CliProcess, receive, send, sha256_file
from .malicious_relay import (
    Chain,
    Cut,
    Drop,
    Duplicate,
    FlipBit,
    Inject,
    Insert,
    MaliciousRelay,
    Reflect,
    Replay,
    Substitute,
    Swap,
)

pytestmark = pytest.mark.timeout(90)

FILE_SIZE = 5 << 20
WAIT = 30  # seconds a CLI gets to finish; the longest case sits out a 3 s resume window
RESUME_WINDOW = 3
SHORT_WINDOW = {"HUSHDROP_RESUME_WINDOW": str(RESUME_WINDOW)}
HELLO_SID_OFFSET = 3  # type, version, flags, then sid_S (§4)
GCM_TAG = 16


class Peers:
    """The CLI processes of one test; whatever still runs at the end is killed."""

    def __init__(self, src: Path, out: Path) -> None:
        self.src = src
        self.out = out
        self.started: list[CliProcess] = []

    def send(self, relay: MaliciousRelay, env: dict[str, str] | None = None) -> CliProcess:
        self.started.append(send(relay.url, self.src, env=env))
        return self.started[-1]

    def receive(
        self, relay: MaliciousRelay, code: str, env: dict[str, str] | None = None
    ) -> CliProcess:
        self.started.append(receive(relay.url, code, self.out, env=env))
        return self.started[-1]

    def transfer(
        self, relay: MaliciousRelay, env: dict[str, str] | None = None
    ) -> tuple[CliProcess, CliProcess]:
        sender = self.send(relay, env)
        return sender, self.receive(relay, code_of(sender), env)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    path = tmp_path / "src" / "data.bin"
    path.parent.mkdir()
    path.write_bytes(os.urandom(FILE_SIZE))
    return path


@pytest.fixture
def out(tmp_path: Path) -> Path:
    directory = tmp_path / "out"
    directory.mkdir()
    return directory


@pytest.fixture
def peers(src: Path, out: Path) -> Iterator[Peers]:
    running = Peers(src, out)
    yield running
    for process in running.started:
        process.stop()


@pytest.fixture
def relay_with() -> Iterator[Callable[..., MaliciousRelay]]:
    """Start a MaliciousRelay with the given policies and options; closed at teardown."""
    started: list[MaliciousRelay] = []

    def start(**options: object) -> MaliciousRelay:
        relay = MaliciousRelay(**options)  # type: ignore[arg-type]
        relay.start()
        started.append(relay)
        return relay

    yield start
    for relay in started:
        relay.close()


def code_of(sender: CliProcess) -> str:
    return sender.wait_event("code")["code"]


def exit_status(process: CliProcess) -> int:
    """Wait for `process` to end; a hang fails the test with what it printed."""
    try:
        return process.wait(WAIT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running after {WAIT} s: {process.events}\n{process.stderr}")


def failure(process: CliProcess, expected_exit: int | None = None) -> str:
    """Wait for `process` to fail (with `expected_exit`, if given); return its error message."""
    status = exit_status(process)
    assert status != 0, process.events
    if expected_exit is not None:
        assert status == expected_exit, process.events
    return process.error()["message"]


def assert_only_verified_files(out: Path, src: Path) -> None:
    """Nothing but `.part` leftovers, or files whose SHA-256 is the original's."""
    for path in out.rglob("*"):
        if path.is_file() and path.suffix != ".part":
            assert sha256_file(path) == sha256_file(src), f"{path} saved unverified"


def assert_not_saved(peers: Peers) -> None:
    assert not (peers.out / peers.src.name).exists()
    assert_only_verified_files(peers.out, peers.src)


def wrong_code(code: str) -> str:
    room, *words = code.split("-")
    return "-".join([room, "zoo" if words[0] != "zoo" else "zero", *words[1:]])


# Altered messages ----------------------------------------------------------------------------


def test_flipped_bit_in_a_data_message_is_detected(relay_with, peers):
    relay = relay_with(s2r=FlipBit(nth=2, kind=MSG_DATA))
    sender, receiver = peers.transfer(relay)
    message = failure(receiver, EXIT_TAMPERED)
    assert "failed authentication" in message and "altered" in message
    assert "failed authentication" in failure(sender)  # the receiver said why it stopped
    assert relay.s2r.fired
    assert_not_saved(peers)


def test_flipped_bit_in_the_key_exchange_fails_key_confirmation(relay_with, peers):
    relay = relay_with(s2r=FlipBit(nth=1, offset=HELLO_SID_OFFSET + 5))
    sender, receiver = peers.transfer(relay)
    assert "intercept" in failure(receiver, EXIT_WRONG_CODE)
    assert "intercept" in failure(sender, EXIT_WRONG_CODE)
    assert relay.s2r.fired
    assert list(peers.out.iterdir()) == []


def test_flipped_bit_in_a_control_message_from_the_receiver_is_detected(relay_with, peers):
    relay = relay_with(r2s=FlipBit(nth=1, kind=MSG_SEALED))  # ACCEPT
    sender, receiver = peers.transfer(relay)
    assert "failed authentication" in failure(sender, EXIT_TAMPERED)
    assert "failed authentication" in failure(receiver)
    assert relay.r2s.fired
    assert_not_saved(peers)


# Lost, repeated and reordered messages -------------------------------------------------------


def test_dropped_data_message_is_detected(relay_with, peers):
    relay = relay_with(s2r=Drop(nth=2, kind=MSG_DATA))
    sender, receiver = peers.transfer(relay)
    assert "failed authentication" in failure(receiver, EXIT_TAMPERED)
    failure(sender)
    assert relay.s2r.fired
    assert_not_saved(peers)


def test_duplicated_data_message_is_detected(relay_with, peers):
    relay = relay_with(s2r=Duplicate(nth=2, kind=MSG_DATA))
    sender, receiver = peers.transfer(relay)
    assert "failed authentication" in failure(receiver, EXIT_TAMPERED)
    failure(sender)
    assert relay.s2r.fired
    assert_not_saved(peers)


def test_reordered_data_messages_are_detected(relay_with, peers):
    relay = relay_with(s2r=Swap(nth=2, kind=MSG_DATA))
    sender, receiver = peers.transfer(relay)
    assert "failed authentication" in failure(receiver, EXIT_TAMPERED)
    failure(sender)
    assert relay.s2r.fired
    assert_not_saved(peers)


def test_replayed_data_message_is_detected(relay_with, peers):
    relay = relay_with(s2r=Replay(nth=1, after=3, kind=MSG_DATA))
    sender, receiver = peers.transfer(relay)
    assert "failed authentication" in failure(receiver, EXIT_TAMPERED)
    failure(sender)
    assert relay.s2r.fired
    assert_not_saved(peers)


def test_replayed_control_message_is_detected(relay_with, peers):
    # ACCEPT again right after the CREDIT: the sender's next expected counter does not fit.
    relay = relay_with(r2s=Replay(nth=1, after=2, kind=MSG_SEALED))
    sender, receiver = peers.transfer(relay)
    assert "failed authentication" in failure(sender, EXIT_TAMPERED)
    assert relay.r2s.fired
    # The sender had already sent every byte, so the receiver may have verified and saved the
    # file before the sender's CANCEL reached it; a final name still means a verified file.
    exit_status(receiver)
    assert_only_verified_files(peers.out, peers.src)


def test_dropped_completion_is_never_reported_as_success(relay_with, peers):
    # The receiver verified and saved the file, but its COMPLETE never reaches the sender, which
    # must not claim success: it waits for the receiver to resume, then gives up.
    relay = relay_with(r2s=Drop(nth=3, kind=MSG_SEALED))  # ACCEPT, CREDIT, COMPLETE
    sender, receiver = peers.transfer(relay, SHORT_WINDOW)
    assert exit_status(receiver) == 0, receiver.events
    assert sha256_file(peers.out / peers.src.name) == sha256_file(peers.src)
    assert "did not come back" in failure(sender, EXIT_CONNECTION)
    assert not any(e.get("event") == "done" for e in sender.events)
    assert relay.r2s.fired


# Swapped directions ----------------------------------------------------------------------------


def test_manifest_sent_back_to_the_sender_is_detected_on_both_sides(relay_with, peers):
    relay = relay_with(s2r=Reflect(nth=1, kind=MSG_SEALED))
    sender, receiver = peers.transfer(relay)
    assert "failed authentication" in failure(sender, EXIT_TAMPERED)
    assert "failed authentication" in failure(receiver, EXIT_TAMPERED)
    assert relay.s2r.fired
    assert list(peers.out.iterdir()) == []


def test_sender_paired_with_its_own_hello_stops_the_key_exchange(relay_with, peers):
    relay = relay_with(s2r=Reflect(nth=1))
    sender, receiver = peers.transfer(relay)
    assert "unexpected message" in failure(sender)
    assert "malformed" in failure(receiver)  # the sender's ABORT said why
    assert relay.s2r.fired
    assert list(peers.out.iterdir()) == []


# Truncated connections ---------------------------------------------------------------------


def test_cut_during_the_key_exchange_fails_at_once_without_resuming(relay_with, peers):
    relay = relay_with(s2r=Cut(messages=1))  # right after HELLO
    sender, receiver = peers.transfer(relay, SHORT_WINDOW)
    assert "connection" in failure(receiver, EXIT_CONNECTION).lower()
    assert "connection" in failure(sender, EXIT_CONNECTION).lower()
    assert relay.s2r.fired and relay.resume_requests == []
    assert list(peers.out.iterdir()) == []


def test_cut_with_resume_refused_fails_clearly_after_the_resume_window(relay_with, peers):
    relay = relay_with(s2r=Cut(size=(5 << 19) + 12_345, kind=MSG_DATA), resume="refuse")
    sender, receiver = peers.transfer(relay, SHORT_WINDOW)
    assert "did not come back" in failure(receiver, EXIT_CONNECTION)
    assert "did not come back" in failure(sender, EXIT_CONNECTION)
    assert time.monotonic() - relay.s2r.fired_at >= RESUME_WINDOW
    # Both tried to resume (§8.1); the relay turned every attempt away.
    assert {side for _, side in relay.resume_requests} == {"sender", "receiver"}
    assert_not_saved(peers)


def test_cut_with_resume_served_delivers_the_file_intact(relay_with, peers):
    relay = relay_with(s2r=Cut(messages=3, kind=MSG_DATA))
    sender, receiver = peers.transfer(relay, SHORT_WINDOW)
    assert exit_status(receiver) == 0, receiver.events
    assert exit_status(sender) == 0, sender.events
    assert relay.s2r.fired
    assert {side for _, side in relay.resume_requests} == {"sender", "receiver"}
    assert len({resume_id for resume_id, _ in relay.resume_requests}) == 1
    assert sha256_file(peers.out / peers.src.name) == sha256_file(peers.src)
    assert not list(peers.out.glob("*.part"))
    assert receiver.wait_event("verification") == sender.wait_event("verification")


def test_control_message_replayed_after_a_resume_is_detected(relay_with, peers):
    # The old MANIFEST right after the new connection's RESUMED: a resumed connection has
    # control keys of its own (§8.2), so nothing from the earlier one authenticates.
    relay = relay_with(
        s2r=Chain(Cut(messages=3, kind=MSG_DATA), Replay(nth=1, after=2, kind=MSG_SEALED))
    )
    sender, receiver = peers.transfer(relay, SHORT_WINDOW)
    assert "failed authentication" in failure(receiver, EXIT_TAMPERED)
    assert "failed authentication" in failure(sender)
    assert relay.s2r.fired and relay.resume_requests
    assert_not_saved(peers)


@pytest.mark.parametrize(
    ("direction", "after", "reason"),
    [
        ("s2r", 2, ABORT_CANCELLED),  # the receiver, mid-stream: "the sender cancelled"
        ("r2s", 1, ABORT_CONFIRMATION_FAILED),  # the sender, after ACCEPT: "wrong code"
        ("s2r", 4, ABORT_MALFORMED),
    ],
)
def test_forged_abort_after_key_confirmation_is_ignored(
    relay_with, peers, direction, after, reason
):
    # ABORT is not authenticated: once the peer sealed a message with the session's keys it
    # would say CANCEL, so a later ABORT can only be the relay's (§5.4).
    kind = MSG_DATA if direction == "s2r" else MSG_SEALED
    relay = relay_with(**{direction: Insert(nth=after, forged=encode_abort(reason), kind=kind)})
    sender, receiver = peers.transfer(relay)
    assert exit_status(receiver) == 0, receiver.events
    assert exit_status(sender) == 0, sender.events
    assert getattr(relay, direction).fired
    assert sha256_file(peers.out / peers.src.name) == sha256_file(peers.src)


def test_file_data_held_back_and_replayed_after_a_resume_is_detected(relay_with, peers):
    # The relay keeps the whole file's ciphertext from the first connection, the file changes
    # on the sender's disk, and after the resume the old ciphertext replaces the new: a resumed
    # connection has a data key of its own (§8.2), so the receiver never saves the old version.
    def change_file() -> None:
        peers.src.write_bytes(os.urandom(FILE_SIZE))

    relay = relay_with(s2r=Substitute(messages=6, kind=MSG_DATA, between=change_file))
    sender, receiver = peers.transfer(relay, SHORT_WINDOW)
    assert "failed authentication" in failure(receiver, EXIT_TAMPERED)
    failure(sender)
    assert relay.s2r.fired and relay.resume_requests
    assert_not_saved(peers)


def test_sender_resumed_with_itself_is_detected(relay_with, peers):
    # Swapped directions on the new connection: the sender gets its own RESUME back (and not
    # the receiver's), as if the relay had paired it with another sender.
    relay = relay_with(
        s2r=Chain(Cut(messages=3, kind=MSG_DATA), Reflect(nth=1, kind=MSG_RESUME)),
        r2s=Drop(nth=1, kind=MSG_RESUME),
    )
    sender, receiver = peers.transfer(relay, SHORT_WINDOW)
    assert "to another sender" in failure(sender)
    # The sender's ABORT is not authenticated, and after key confirmation only sealed messages
    # count (§5.4): the receiver waits for its resume window, then stops.
    assert "did not come back" in failure(receiver, EXIT_CONNECTION)
    assert relay.s2r.fired
    assert_not_saved(peers)


# Third parties ---------------------------------------------------------------------------------


def test_third_party_let_into_the_room_cannot_speak_for_the_sender(relay_with, peers):
    relay = relay_with(s2r=Inject(after=1, kind=MSG_DATA), admit_third_party=True)
    sender, receiver = peers.transfer(relay)
    room = code_of(sender).split("-")[0]
    relay.wait_until(lambda: relay.pairings == 1)
    forged = bytes([MSG_SEALED]) + os.urandom(SEALED_PAD + GCM_TAG)
    assert relay.third_party({"op": "join", "room": room}, send=[forged])["op"] == "paired"
    assert "failed authentication" in failure(receiver, EXIT_TAMPERED)
    failure(sender)
    assert relay.s2r.fired
    assert_not_saved(peers)


def test_third_party_resuming_with_the_session_id_is_detected(relay_with, peers):
    # The relay sees resume IDs (§8.1): it holds the real peers back and offers the sender a
    # third party claiming to be the receiver, which has no resume secret.
    relay = relay_with(s2r=Cut(messages=3, kind=MSG_DATA), resume="hold")
    sender, receiver = peers.transfer(relay, SHORT_WINDOW)
    relay.wait_until(lambda: relay.resume_id("sender") or sender.proc.poll() is not None)
    resume_id = relay.resume_id("sender")
    assert resume_id is not None, sender.events
    forged = [
        bytes([MSG_RESUME, PROTOCOL_VERSION, SIDE_RECEIVER]) + os.urandom(RESUME_NONCE_SIZE),
        bytes([MSG_SEALED]) + os.urandom(SEALED_PAD + GCM_TAG),
    ]
    request = {"op": "resume", "id": resume_id, "side": "receiver"}
    assert relay.third_party(request, send=forged)["op"] == "paired"
    assert "tried to resume" in failure(sender, EXIT_TAMPERED)
    failure(receiver)  # its real partner never came back
    assert_not_saved(peers)


# Key substitution --------------------------------------------------------------------------


def test_man_in_the_middle_with_the_code_shows_different_verification_codes(relay_with, peers):
    relay = relay_with()
    sender = peers.send(relay)
    code = code_of(sender)
    interceptor = relay.intercept(code)  # the code leaked to whoever runs the relay
    receiver = peers.receive(relay, code)
    assert exit_status(sender) == 0, sender.events
    assert exit_status(receiver) == 0, receiver.events
    sender_sas = sender.wait_event("verification")["sas"]
    receiver_sas = receiver.wait_event("verification")["sas"]
    # Each peer ran a key exchange with the interceptor, which read and re-sent the file: the
    # transfer "succeeded", and only comparing the verification codes out of band reveals it.
    assert sender_sas != receiver_sas
    assert (interceptor.sas_with_sender, interceptor.sas_with_receiver) == (
        sender_sas,
        receiver_sas,
    )
    assert sha256_file(peers.out / peers.src.name) == sha256_file(peers.src)


def test_man_in_the_middle_without_the_code_fails_key_confirmation(relay_with, peers):
    relay = relay_with()
    sender = peers.send(relay)
    code = code_of(sender)
    interceptor = relay.intercept(wrong_code(code))
    receiver = peers.receive(relay, code)
    assert "intercept" in failure(sender, EXIT_WRONG_CODE)
    assert "intercept" in failure(receiver, EXIT_WRONG_CODE)
    assert interceptor.sas_with_sender is None and interceptor.sas_with_receiver is None
    assert not any(e.get("event") == "verification" for e in sender.events + receiver.events)
    assert list(peers.out.iterdir()) == []
