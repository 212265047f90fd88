"""A sender process that offers a hostile manifest, built from the real core.

Usage: python hostile_sender.py RELAY_URL PATH... — each PATH is sent under its literal name (for
example '../../escape.txt' or '/tmp/abs.txt') with a few bytes of content. Prints the code as JSON.

Or: python hostile_sender.py RELAY_URL SPEC, SPEC a JSON object: `{"files": [{"path": …,
"size": …, "mode": …}], "cancel": REASON}` — files of the given sizes (content: repeated bytes;
the offer may claim more than is ever sent) and modes; with `cancel`, the transfer is cancelled
with that reason as soon as the receiver accepts.
"""

from __future__ import annotations

import asyncio
import json
import sys

from hushdrop.crypto.pyca import PycaBackend
from hushdrop.protocol.codes import new_sender_secrets
from hushdrop.protocol.events import Accepted, Completed
from hushdrop.protocol.manifest import FileEntry, Manifest
from hushdrop.protocol.sender import SenderSession
from hushdrop.transport.relay_client import RelayConnection


def plan(args: list[str]) -> tuple[Manifest, list[bytes] | None, str | None]:
    if len(args) == 1 and args[0].startswith("{"):
        spec = json.loads(args[0])
        entries = tuple(
            FileEntry(f["path"], f.get("size", 16), f.get("mode", 0o644)) for f in spec["files"]
        )
        return Manifest(entries), None, spec.get("cancel")
    contents = [f"content of {name}\n".encode() for name in args]
    entries = tuple(FileEntry(n, len(c)) for n, c in zip(args, contents, strict=True))
    return Manifest(entries), contents, None


def read(manifest: Manifest, contents: list[bytes] | None, index: int, offset: int, length: int):
    if contents is not None:
        return contents[index][offset : offset + length]
    return bytes([65 + index % 26]) * min(length, manifest.files[index].size - offset)


async def main(relay: str, args: list[str]) -> None:
    manifest, contents, cancel = plan(args)
    backend = PycaBackend()
    connection = await RelayConnection.open(relay)
    room, _ = await connection.create_room()
    secrets = new_sender_secrets(room, backend.random_bytes, False)
    print(json.dumps({"event": "code", "code": secrets.typed}), flush=True)
    await connection.wait_paired()
    session = SenderSession(backend, secrets, manifest)
    await session.start()
    await connection.send_all(session.data_to_send())
    while not session.finished:
        while (request := session.next_read()) is not None:
            await session.send_plaintext(read(manifest, contents, *request))
            await connection.send_all(session.data_to_send())
        try:
            events = await session.receive(await connection.receive())
        except Exception as exc:  # the receiver declined or cancelled: say so, and stop
            print(json.dumps({"event": "error", "message": str(exc)}), flush=True)
            break
        if cancel is not None and any(isinstance(e, Accepted) for e in events):
            await session.cancel(cancel)
            await connection.send_all(session.data_to_send())
            print(json.dumps({"event": "cancelled"}), flush=True)
            break
        await connection.send_all(session.data_to_send())
        if any(isinstance(e, Completed) for e in events):
            print(json.dumps({"event": "done"}), flush=True)
    await connection.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2:]))
