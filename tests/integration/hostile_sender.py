"""A sender process that offers a hostile manifest, built from the real core.

Usage: python hostile_sender.py RELAY_URL PATH... — each PATH is sent under its literal name (for
example '../../escape.txt' or '/tmp/abs.txt') with a few bytes of content. Prints the code as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys

from hushdrop.crypto.pyca import PycaBackend
from hushdrop.protocol.codes import new_sender_secrets
from hushdrop.protocol.events import Completed
from hushdrop.protocol.manifest import FileEntry, Manifest
from hushdrop.protocol.sender import SenderSession
from hushdrop.transport.relay_client import RelayConnection


async def main(relay: str, names: list[str]) -> None:
    contents = [f"content of {name}\n".encode() for name in names]
    manifest = Manifest(tuple(FileEntry(n, len(c)) for n, c in zip(names, contents, strict=True)))
    backend = PycaBackend()
    connection = await RelayConnection.open(relay)
    room, _ = await connection.create_room()
    secrets = new_sender_secrets(room, backend.random_bytes, False)
    print(json.dumps({"event": "code", "code": secrets.typed}), flush=True)
    await connection.wait_paired()
    session = SenderSession(backend, secrets, manifest)
    session.start()
    await connection.send_all(session.data_to_send())
    while not session.finished:
        while (request := session.next_read()) is not None:
            index, offset, length = request
            await session.send_plaintext(contents[index][offset : offset + length])
            await connection.send_all(session.data_to_send())
        events = await session.receive(await connection.receive())
        await connection.send_all(session.data_to_send())
        if any(isinstance(e, Completed) for e in events):
            print(json.dumps({"event": "done"}), flush=True)
    await connection.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2:]))
