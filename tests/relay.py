"""A TCP relay on 127.0.0.1 the test controls: it passes traffic to a real server, or accepts
connections and answers nothing (a server that hangs), from a given request on.

``Relay(target_port)`` forwards everything; ``hang()`` holds every byte from now on (clients
wait for an answer that does not come) until ``release()``; ``hang_after(n)`` lets ``n`` more
counted requests through (by default the http backend's batch uploads) and holds from the next.
With no target (``Relay(None)``) it is a server that accepts and never answers.
"""

from __future__ import annotations

import select
import socket
import threading
import time

__all__ = ["Relay"]


class Relay:
    def __init__(self, target_port: int | None, counting: bytes = b"/batches HTTP/1.1\r\n"):
        self.target_port = target_port
        self.counting = counting
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests = 0  # counted requests seen from clients
        self._allowed: float = float("inf")  # counted requests that may pass before it hangs
        self._hold_all = False
        self.holding = False  # bytes are held now
        self._lock = threading.Lock()
        self._closed = False
        self._sockets: list[socket.socket] = [self._listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def hang(self) -> None:
        with self._lock:
            self._hold_all = True

    def hang_after(self, requests: int) -> None:
        with self._lock:
            self._hold_all, self.holding = False, False
            self._allowed = self.requests + requests

    def release(self) -> None:
        with self._lock:
            self._hold_all, self.holding = False, False
            self._allowed = float("inf")

    @property
    def hung(self) -> bool:
        return self._hold_all or self.requests > self._allowed

    def wait_hung(self, timeout: float) -> bool:
        """Wait until a client's bytes are being held."""
        deadline = time.monotonic() + timeout
        while not self.holding and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.holding

    def close(self) -> None:
        self._closed = True
        for sock in list(self._sockets):
            try:
                sock.close()
            except OSError:
                pass

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._sockets.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = None
        if self.target_port is not None:
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self._sockets.append(upstream)
        held: list[bytes] = []  # client bytes not forwarded yet
        try:
            while not self._closed:
                ends = [client] + ([upstream] if upstream is not None else [])
                readable, _, _ = select.select(ends, [], [], 0.05)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        self._count(data)
                        held.append(data)
                    elif upstream is not None:
                        client.sendall(data)
                held = self._forward(held, upstream)
        except OSError:
            return
        finally:
            client.close()
            if upstream is not None:
                upstream.close()

    def _count(self, data: bytes) -> None:
        with self._lock:
            self.requests += data.count(self.counting)

    def _forward(self, held: list[bytes], upstream: socket.socket | None) -> list[bytes]:
        """Pass the held bytes on while the relay is not hanging."""
        if upstream is None or not held or self.hung:
            self.holding = self.holding or bool(held)
            return held
        upstream.sendall(b"".join(held))
        return []
