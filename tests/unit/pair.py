"""An in-memory sender/receiver pair driving the real sessions, with a hook to tamper in between."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hushdrop.crypto.pyca import PycaBackend
from hushdrop.protocol import events as ev
from hushdrop.protocol.codes import Code, SenderSecrets, new_sender_secrets, parse_code
from hushdrop.protocol.manifest import FileEntry, Manifest
from hushdrop.protocol.receiver import ReceiverSession
from hushdrop.protocol.sender import SenderSession

# (direction, message) -> messages to deliver instead; direction is "s2r" or "r2s"
Tamper = Callable[[str, bytes], list[bytes]]
# (file index, offset, length) -> the bytes the sender's driver reads
Read = Callable[[int, int, int], bytes | None]  # None: the read waits (a quiet stream)


def manifest_for(files: dict[str, bytes]) -> Manifest:
    return Manifest(tuple(FileEntry(path, len(data)) for path, data in files.items()))


@dataclass
class Outcome:
    received: dict[int, bytes] = field(default_factory=dict)
    completed: list[int] = field(default_factory=list)
    sender_events: list[object] = field(default_factory=list)
    receiver_events: list[object] = field(default_factory=list)
    sender_error: Exception | None = None
    receiver_error: Exception | None = None


class Pair:
    def __init__(
        self,
        files: dict[str, bytes],
        *,
        sender_password: str = "",
        receiver_password: str | None = None,
        code: Callable[[SenderSecrets], Code] | None = None,
        tamper: Tamper | None = None,
        manifest: Manifest | None = None,
        accept_typed: bool = True,
        read: Read | None = None,
        text: str | None = None,
    ) -> None:
        self.backend = PycaBackend()
        self.files = list(files.values())
        self.read = read or (
            lambda index, offset, length: self.files[index][offset : offset + length]
        )
        self.secrets = new_sender_secrets(
            "123456", self.backend.random_bytes, bool(sender_password)
        )
        self.sender = SenderSession(
            self.backend,
            self.secrets,
            manifest or manifest_for(files),
            sender_password,
            text=text,
            accept_typed=accept_typed,
        )
        receiver_code = code(self.secrets) if code else parse_code(self.secrets.typed)
        self.receiver = ReceiverSession(self.backend, receiver_code, receiver_password)
        self.tamper = tamper or (lambda direction, message: [message])
        self.password_on_prompt = sender_password
        self.outcome = Outcome()

    async def run(self, max_rounds: int = 100_000) -> Outcome:
        await self.sender.start()
        return await self.proceed(max_rounds)

    async def proceed(self, max_rounds: int = 100_000) -> Outcome:
        """Exchange messages until the transfer ends or stalls (e.g. a simulated lost link)."""
        out = self.outcome
        for _ in range(max_rounds):
            progressed = await self._step()
            if not progressed or out.sender_error or out.receiver_error or self.sender.finished:
                break
        return out

    async def _step(self) -> bool:
        out = self.outcome
        progressed = False
        for message in self.sender.data_to_send():
            progressed = True
            for delivered in self.tamper("s2r", message):
                try:
                    events = await self.receiver.receive(delivered)
                except Exception as exc:  # the test inspects it
                    out.receiver_error = exc
                    await self._deliver_to_sender()
                    return False
                for event in events:
                    await self._on_receiver_event(event)
        if await self._deliver_to_sender():
            progressed = True
        request = self.sender.next_read()
        if request is not None and out.sender_error is None:
            index, offset, length = request
            data = self.read(index, offset, length)
            if data is not None:  # None: the input is waiting (a quiet stream)
                await self.sender.send_plaintext(data)
                progressed = True
        return progressed

    async def _deliver_to_sender(self) -> bool:
        out = self.outcome
        messages = self.receiver.data_to_send()
        for message in messages:
            for delivered in self.tamper("r2s", message):
                try:
                    out.sender_events += await self.sender.receive(delivered)
                except Exception as exc:
                    out.sender_error = exc
                    for final in self.sender.data_to_send():
                        try:
                            await self.receiver.receive(final)
                        except Exception as receiver_exc:
                            out.receiver_error = out.receiver_error or receiver_exc
                    return True
        return bool(messages)

    async def _on_receiver_event(self, event: object) -> None:
        out = self.outcome
        out.receiver_events.append(event)
        if isinstance(event, ev.PasswordRequired):
            await self.receiver.provide_password(self.password_on_prompt)
        elif isinstance(event, ev.Offered):
            for follow_up in await self.receiver.accept():
                await self._on_receiver_event(follow_up)
        elif isinstance(event, ev.FileData):
            out.received.setdefault(event.index, b"")
            out.received[event.index] += event.data
        elif isinstance(event, ev.FileCompleted):
            out.completed.append(event.index)
        elif isinstance(event, ev.Completed):
            await self.receiver.finish()
