"""A TCP proxy whose connections a test can cut at will, like a flaky network, and whose speed
can be capped, so that a test can act in the middle of a transfer on any machine."""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class CuttableProxy:
    """Forwards 127.0.0.1:`port` to `target_host`:`target_port`; `cut()` drops every open
    connection."""

    def __init__(
        self, target_port: int, rate: float | None = None, target_host: str = "127.0.0.1"
    ) -> None:
        self.target_port = target_port
        self.target_host = target_host
        self.rate = rate  # bytes per second per direction and connection, or None
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self._server.close()
        self.cut()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection((self.target_host, self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
                self.connections += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(src, dst, self.rate), daemon=True).start()


def _pipe(src: socket.socket, dst: socket.socket, rate: float | None) -> None:
    started, moved = time.monotonic(), 0
    try:
        while data := src.recv(1 << 16):
            dst.sendall(data)
            moved += len(data)
            if rate is not None:
                time.sleep(max(0.0, started + moved / rate - time.monotonic()))
    except OSError:
        pass
    finally:
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
