"""Slow, unauthenticated clients on real sockets: the lock-out attack of issue 15, item 13.

:class:`SlowClients` opens connections to a live server that each start a request and never
finish it: a request head followed by part of its body (no credential, a made-up bearer token,
a made-up session cookie, a sign-in form), or only part of a request head. A background thread
sends one more byte on each every half second, as a slowloris does, so that a server timing out
only *idle* connections is not enough. :func:`timed` measures what authenticated clients get
meanwhile.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["SlowClients", "timed"]

KINDS = ("no-credential", "made-up-bearer", "made-up-cookie", "sign-in-form", "partial-head")


def _head(kind: str, run_id: str, cookie_name: str) -> bytes:
    if kind == "partial-head":
        return b"GET /api/v1/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
    if kind == "sign-in-form":
        return (b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n"
                b"Content-Length: 100000\r\n\r\ntoken=")
    credential = {"no-credential": "",
                  "made-up-bearer": f"Authorization: Bearer alg_{os.urandom(32).hex()[:43]}\r\n",
                  "made-up-cookie": f"Cookie: {cookie_name}={os.urandom(24).hex()}\r\n"}[kind]
    return (f"POST /api/v1/runs/{run_id}/batches HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"{credential}Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
            '{"start": 0, "end": 1, "params": {"a": "').encode()


class SlowClients:
    """``count`` slow connections to ``port``, the kinds in turn; ``close()`` ends them."""

    def __init__(self, port: int, count: int = 100, *, cookie_name: str = "autolog_session",
                 run_id: str = "0" * 32):
        self.port = port
        self.socks: list[socket.socket] = []
        self.stop = threading.Event()
        for i in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(_head(KINDS[i % len(KINDS)], run_id, cookie_name))
            self.socks.append(sock)
        self.trickler = threading.Thread(target=self._trickle, daemon=True)
        self.trickler.start()

    def _trickle(self) -> None:
        while not self.stop.wait(0.5):
            for sock in self.socks:
                try:
                    sock.sendall(b"x")
                except OSError:  # the server closed it: that is its defence working
                    pass

    def closed_by_server(self) -> int:
        """How many of the connections the server has closed (read EOF or reset) by now."""
        closed = 0
        for sock in self.socks:
            sock.setblocking(False)
            try:
                while True:
                    data = sock.recv(65536)
                    if not data:
                        closed += 1
                        break
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
        return closed

    def close(self) -> None:
        self.stop.set()
        self.trickler.join(5)
        for sock in self.socks:
            sock.close()

    def __enter__(self) -> SlowClients:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    """``call()``'s result and how long it took, in seconds."""
    began = time.monotonic()
    result = call()
    return result, time.monotonic() - began
