"""ASGI middleware in front of every route: load shedding, body size limits, gzip bodies.

- More than ``max_in_flight`` requests at once in this process: 503 with ``Retry-After``
  at once, before any work, so an overloaded server degrades into clients backing off instead
  of a growing queue of timeouts (``/healthz`` excepted: busy is not dead).
- A body larger than the limit (uploads have their own, larger one): 413 at once when
  ``Content-Length`` says so, otherwise as soon as the streamed bytes pass it.
- ``Content-Encoding: gzip`` request bodies are inflated as they stream, and the limit applies
  to the inflated size, so a small "zip bomb" is refused after ``limit`` bytes, not after
  filling memory. Other encodings get 415.

Errors found while the route reads the body are raised as ``HTTPException``; FastAPI passes
those through its body parsing unchanged, so they reach the client as 413/400, never 500.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import HTTPException

__all__ = ["Guard"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class Guard:
    def __init__(self, app: Any, *, max_in_flight: int, max_body: int, max_upload: int,
                 retry_after: int = 1):
        self.app = app
        self.max_in_flight = max_in_flight
        self.max_body = max_body
        self.max_upload = max_upload
        self.retry_after = retry_after
        self.in_flight = 0  # only touched on the event loop thread: no lock needed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight and scope.get("path") != "/healthz":
            await _reply(send, 503, f"the server is busy ({self.in_flight} requests in flight); "
                         f"retry after {self.retry_after} s",
                         [(b"retry-after", str(self.retry_after).encode())])
            return
        self.in_flight += 1
        try:
            await self._guarded(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.lower(): v for k, v in scope.get("headers", ())}
        upload = scope["method"] == "PUT" and "/files/" in scope.get("path", "")
        limit = self.max_upload if upload else self.max_body
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                await _reply(send, 400, "Content-Length is not a number")
                return
            if int(length) > limit:
                await _reply(send, 413, f"the request body is larger than the limit of "
                             f"{limit} bytes")
                return
        encoding = headers.get(b"content-encoding", b"identity").strip().lower()
        if encoding not in (b"identity", b"gzip", b"") or (upload and encoding == b"gzip"):
            await _reply(send, 415, f"Content-Encoding {encoding.decode('latin-1')!r} is not "
                         "accepted here (gzip for JSON bodies, none for uploads)")
            return
        await self.app(scope, _limited(receive, limit, encoding == b"gzip"), send)


def _limited(receive: Receive, limit: int, gzip: bool) -> Receive:
    """``receive`` with the body inflated (gzip) and counted against ``limit``."""
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip else None
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] != "http.request":
            return message
        body = message.get("body", b"")
        more = message.get("more_body", False)
        if inflate is not None:
            body = _inflate(inflate, body, limit - seen, more)
        seen += len(body)
        if seen > limit:
            raise HTTPException(413, f"the request body is larger than the limit of {limit} "
                                     "bytes")
        return {**message, "body": body}

    return wrapped


def _inflate(inflate: Any, data: bytes, room: int, more: bool) -> bytes:
    try:
        body: bytes = inflate.decompress(data, room + 1)
        if inflate.unconsumed_tail:
            raise HTTPException(413, "the inflated request body is larger than the limit")
        if not more:
            body += inflate.flush()
            if not inflate.eof:
                raise HTTPException(400, "the gzip request body is truncated")
    except zlib.error as exc:
        raise HTTPException(400, f"the request body is not valid gzip: {exc}")
    return body


async def _reply(send: Send, status: int, detail: str,
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})
