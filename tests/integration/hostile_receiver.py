"""A receiver process that answers an offer with a hostile reason, built from the real core.

Usage: python hostile_receiver.py RELAY_URL CODE (decline|cancel) REASON — joins with CODE, and
when the offer arrives declines it (or accepts, then cancels at the first data) giving REASON,
which may hold terminal escape sequences. Prints {"event": "sent"} once it has.
"""

from __future__ import annotations

import asyncio
import json
import sys

from hushdrop.crypto.pyca import PycaBackend
from hushdrop.protocol.codes import parse_code
from hushdrop.protocol.events import FileData, Offered
from hushdrop.protocol.receiver import ReceiverSession
from hushdrop.transport.relay_client import RelayConnection


async def main(relay: str, code_text: str, how: str, reason: str) -> None:
    code = parse_code(code_text)
    session = ReceiverSession(PycaBackend(), code)
    connection = await RelayConnection.open(relay)
    await connection.join_room(code.room)
    done = False
    while not done:
        for event in await session.receive(await connection.receive()):
            if isinstance(event, Offered) and how == "decline":
                await session.decline(reason)
                done = True
            elif isinstance(event, Offered):
                await session.accept()
            elif isinstance(event, FileData) and not done:
                await session.cancel(reason)
                done = True
        await connection.send_all(session.data_to_send())
    print(json.dumps({"event": "sent"}), flush=True)
    await asyncio.sleep(1)  # let the relay deliver before the connection closes
    await connection.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
