"""The reference client's CLI peer: the CLI's data-phase work, speaking the reference's wire.

The reference page (reference.js) skips the key exchange, so the real CLI cannot be its peer.
This process stands in for it with the CLI's own parts: the relay connection
(`hushdrop.transport.relay_client.RelayConnection`, same WebSocket settings), the pyca backend
and `hushdrop.crypto.chunked` for Cobblestone-256, `hashlib` SHA-256, the CLI's allocator
tuning, and on receiving a file written in place and fsynced before COMPLETE. What it leaves out
is what the CLI's protocol state machine does on top (CPace, resume bookkeeping, a temporary name
and rename). See bench/README.md, "Reference client".

    python bench/reference/peer.py receive ROOM OUT_FILE    # the room is the reference sender's
    python bench/reference/peer.py send FILE                # prints {"room": ...}, then sends

The test ISK (128 hex digits) comes in HUSHDROP_BENCH_ISK, never in argv. Prints one JSON line
at the end: {"bytes": N, "seconds": S} for the data phase.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import struct
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hushdrop.cli.allocator import tune_allocator
from hushdrop.crypto.chunked import HEADER_SIZE, ChunkDecryptor, ChunkEncryptor, ciphertext_size
from hushdrop.crypto.pyca import PycaBackend
from hushdrop.protocol import constants as c
from hushdrop.protocol.padding import padme, sealed_length
from hushdrop.protocol.session import file_context
from hushdrop.transport.relay_client import RelayConnection

READ_SIZE = c.DATA_FRAME_SIZE


def session_keys(isk: bytes) -> dict[str, bytes]:
    """The §5.3 key schedule from the test ISK (HKDF-SHA-256 with the schedule's salt)."""

    def derive(label: bytes) -> bytes:
        return HKDF(hashes.SHA256(), 32, c.KEY_SCHEDULE_SALT, label).derive(isk)

    return {
        "s2r": derive(c.LABEL_CONTROL_S2R),
        "r2s": derive(c.LABEL_CONTROL_R2S),
        "data": derive(c.LABEL_DATA),
    }


class Sealed:
    """§6 SEALED messages, one counter per direction."""

    def __init__(self, send_key: bytes, receive_key: bytes) -> None:
        self._send, self._receive = AESGCM(send_key), AESGCM(receive_key)
        self._sent = self._received = 0

    def seal(self, kind: int, body: bytes) -> bytes:
        inner = bytearray(sealed_length(5 + len(body)))
        inner[:5] = struct.pack(">BI", kind, len(body))
        inner[5 : 5 + len(body)] = body
        nonce = bytes(4) + self._sent.to_bytes(8, "big")
        self._sent += 1
        return bytes([c.MSG_SEALED]) + self._send.encrypt(
            nonce, bytes(inner), bytes([c.MSG_SEALED])
        )

    def open(self, message: bytes) -> tuple[int, bytes]:
        if message[:1] != bytes([c.MSG_SEALED]):
            raise RuntimeError(f"expected a SEALED message, got type {message[:1].hex()}")
        nonce = bytes(4) + self._received.to_bytes(8, "big")
        self._received += 1
        inner = self._receive.decrypt(nonce, message[1:], bytes([c.MSG_SEALED]))
        kind, length = struct.unpack(">BI", inner[:5])
        return kind, inner[5 : 5 + length]


async def receive(relay: str, room: str, out: Path, keys: dict[str, bytes]) -> dict:
    backend = PycaBackend()
    sealed = Sealed(keys["r2s"], keys["s2r"])
    connection = await RelayConnection.open(relay)
    await connection.join_room(room)  # returns once paired
    kind, body = sealed.open(await connection.receive())
    if kind != c.KIND_MANIFEST:
        raise RuntimeError(f"expected the manifest, got kind {kind}")
    size = json.loads(body)["files"][0]["size"]
    plaintext = padme(size + c.FILE_DIGEST_SIZE)
    stream_left = ciphertext_size(plaintext)  # header, chunks and tags
    start = time.perf_counter()
    await connection.send(sealed.seal(c.KIND_ACCEPT, struct.pack(">Q", c.INITIAL_CREDIT)))
    header = bytearray()
    decryptor = None
    digest = hashlib.sha256()
    written = consumed = credited = 0
    tail = bytearray()  # the plaintext past the file: its SHA-256 and the stream padding
    with out.open("wb") as target:

        def take(plain: bytes | bytearray) -> None:
            nonlocal written
            view = memoryview(plain)
            keep = min(len(view), size - written)
            if keep:
                digest.update(view[:keep])
                target.write(view[:keep])
                written += keep
            tail.extend(view[keep:])

        while stream_left:
            message = await connection.receive()
            if message[:1] != bytes([c.MSG_DATA]):
                raise RuntimeError(f"expected DATA, got type {message[:1].hex()}")
            data = memoryview(message)[1:]
            stream_left -= len(data)
            consumed += len(data)
            if decryptor is None:
                need = HEADER_SIZE - len(header)
                header += data[:need]
                data = data[need:]
                if len(header) == HEADER_SIZE:
                    decryptor = await ChunkDecryptor.create(
                        backend, keys["data"], file_context(0), bytes(header)
                    )
            if decryptor is not None and len(data):
                take(await decryptor.update(data))
            if consumed - credited >= c.CREDIT_BATCH:
                body = struct.pack(">QQ", consumed - credited, written)
                credited = consumed
                await connection.send(sealed.seal(c.KIND_CREDIT, body))
        take(await decryptor.finalize())
        if bytes(tail[: c.FILE_DIGEST_SIZE]) != digest.digest() or any(tail[c.FILE_DIGEST_SIZE :]):
            raise RuntimeError("the file's SHA-256 or the stream padding is wrong")
        target.flush()
        os.fsync(target.fileno())
    await connection.send(sealed.seal(c.KIND_COMPLETE, b""))
    seconds = time.perf_counter() - start
    await connection.close()
    return {"bytes": size, "seconds": seconds}


async def send(relay: str, path: Path, keys: dict[str, bytes]) -> dict:
    backend = PycaBackend()
    sealed = Sealed(keys["s2r"], keys["r2s"])
    connection = await RelayConnection.open(relay)
    room, _ = await connection.create_room()
    print(json.dumps({"room": room}), flush=True)
    await connection.wait_paired()
    size = path.stat().st_size
    stat = path.stat()
    manifest = {
        "version": 1,
        "files": [{"path": path.name, "size": size, "mode": 0o644, "mtime": int(stat.st_mtime)}],
        "dirs": [],
    }
    await connection.send(sealed.seal(c.KIND_MANIFEST, json.dumps(manifest).encode()))
    kind, body = sealed.open(await connection.receive())
    if kind != c.KIND_ACCEPT:
        raise RuntimeError(f"expected ACCEPT, got kind {kind}")
    start = time.perf_counter()
    credit = struct.unpack(">Q", body[:8])[0]
    sent = 0
    encryptor = await ChunkEncryptor.create(backend, keys["data"], file_context(0))
    stream = bytearray(encryptor.header)
    digest = hashlib.sha256()
    padding = padme(size + c.FILE_DIGEST_SIZE) - size - c.FILE_DIGEST_SIZE

    async def flush(final: bool) -> None:
        nonlocal sent, credit, stream
        while len(stream) >= c.DATA_FRAME_SIZE or (final and stream):
            frame = bytes([c.MSG_DATA]) + stream[: c.DATA_FRAME_SIZE]
            while sent + len(frame) - 1 > credit:
                kind, body = sealed.open(await connection.receive())
                if kind != c.KIND_CREDIT:
                    raise RuntimeError(f"expected CREDIT, got kind {kind}")
                credit += struct.unpack(">Q", body[:8])[0]
            await connection.send(frame)
            sent += len(frame) - 1
            del stream[: c.DATA_FRAME_SIZE]

    with path.open("rb") as source:
        while block := source.read(READ_SIZE):
            pending = encryptor.start_update(block)
            digest.update(block)
            stream += await pending
            await flush(False)
    stream += await encryptor.update(digest.digest() + bytes(padding))
    stream += await encryptor.finalize()
    await flush(True)
    while True:
        kind, _ = sealed.open(await connection.receive())
        if kind == c.KIND_COMPLETE:
            break
        if kind != c.KIND_CREDIT:
            raise RuntimeError(f"expected COMPLETE, got kind {kind}")
    seconds = time.perf_counter() - start
    await connection.close()
    return {"bytes": size, "seconds": seconds}


def main(argv: list[str]) -> int:
    tune_allocator()  # as the CLI does
    relay = os.environ["HUSHDROP_BENCH_RELAY"]
    keys = session_keys(bytes.fromhex(os.environ["HUSHDROP_BENCH_ISK"]))
    if argv[:1] == ["receive"] and len(argv) == 3:
        result = asyncio.run(receive(relay, argv[1], Path(argv[2]), keys))
    elif argv[:1] == ["send"] and len(argv) == 2:
        result = asyncio.run(send(relay, Path(argv[1]), keys))
    else:
        sys.exit(__doc__)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
