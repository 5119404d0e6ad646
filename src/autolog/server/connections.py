"""Connections that do not send a request head in time are closed: uvicorn's HTTP protocol with
a head deadline.

uvicorn closes a connection that stays *idle* after a response (``timeout_keep_alive``), but a
client that connects and sends a request head a byte at a time, or stops half-way, is held as
long as it likes: before its head is complete no request exists, so no ASGI middleware can see
it. :func:`protocol` returns uvicorn's own protocol class (h11, or httptools when installed, as
uvicorn's ``auto`` picks) with two additions:

- a connection has ``header_timeout`` seconds to deliver a whole request head, counted from
  when it connected or from its previous response, however it trickles: then it is closed;
- at most ``waiting_per_client`` connections from one address may be waiting for their head at
  once; past that, the one that has waited longest is closed. A real client sends its head the
  moment it connects, so the connections closed are the ones stalling (or idle keep-alive ones,
  which clients reopen anyway).

A request whose head has arrived is the :class:`~autolog.server.guard.Guard`'s: body timeouts
and who gets a slot are decided there. This relies on two attributes both of uvicorn's
protocols have had since long before the oldest release supported here (``cycle``: the request
being served; ``on_response_complete``), and on nothing else of their insides.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["WAITING_PER_CLIENT", "protocol"]

WAITING_PER_CLIENT = 64


class _HeadDeadline:
    """Mixed in before uvicorn's protocol class (``transport``, ``client``, ``connections``,
    ``cycle`` and ``loop`` are uvicorn's)."""

    transport: asyncio.Transport
    client: tuple[str, int] | None
    connections: set[Any]
    loop: asyncio.AbstractEventLoop

    def __init__(self, *args: Any, header_timeout: float = 10.0,
                 waiting_per_client: int = WAITING_PER_CLIENT, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self.waiting_per_client = waiting_per_client
        self.waiting_since: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._served: Any = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._await_head()
        self._evict_oldest_waiting()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # type: ignore[misc]
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._follow()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)  # type: ignore[misc]

    def _follow(self) -> None:
        """Stop the clock when a new request's head has arrived; start it when the connection
        waits for the next one."""
        cycle = getattr(self, "cycle", None)
        if cycle is not None and cycle is not self._served and not cycle.response_complete:
            self._served = cycle
            self._stop_waiting()
        elif self.waiting_since is None and (cycle is None or cycle.response_complete):
            self._await_head()

    def _await_head(self) -> None:
        if self.transport.is_closing():
            return
        self.waiting_since = time.monotonic()
        self._timer = self.loop.call_later(self.header_timeout, self._too_slow)

    def _stop_waiting(self) -> None:
        self.waiting_since = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _too_slow(self) -> None:
        self._timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def _evict_oldest_waiting(self) -> None:
        if self.client is None:
            return
        host = self.client[0]
        waiting = [c for c in self.connections if isinstance(c, _HeadDeadline)
                   and c.waiting_since is not None and c.client is not None
                   and c.client[0] == host]
        if len(waiting) > self.waiting_per_client:
            oldest = min(waiting, key=lambda c: c.waiting_since or 0.0)
            oldest._stop_waiting()
            oldest.transport.close()


class H11(_HeadDeadline, H11Protocol):
    """uvicorn's h11 protocol with the head deadline."""


def _httptools() -> type | None:
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # httptools is not installed: uvicorn uses h11 too
        return None
    return HttpToolsProtocol


_HTTPTOOLS = _httptools()
if _HTTPTOOLS is not None:
    class HttpTools(_HeadDeadline, _HTTPTOOLS):  # type: ignore[misc, valid-type]
        """uvicorn's httptools protocol with the head deadline."""


def protocol(header_timeout: float, waiting_per_client: int = WAITING_PER_CLIENT) -> Any:
    """What to pass as uvicorn's ``http=``: the protocol uvicorn's ``auto`` would pick, with the
    head deadline (a ``functools.partial`` of a module-level class: picklable for workers)."""
    cls = HttpTools if _HTTPTOOLS is not None else H11
    return functools.partial(cls, header_timeout=header_timeout,
                             waiting_per_client=waiting_per_client)
