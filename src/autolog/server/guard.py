"""ASGI middleware in front of every route: admission, load shedding, body limits and timeouts.

Every request is sorted by its credential before it gets any work done (``admission``):

- **Authenticated** (the bearer token or session cookie is an active token; any request with
  ``--no-auth``): one of ``max_in_flight`` slots; past that, 503 with ``Retry-After`` at once,
  before any work, so an overloaded server degrades into clients backing off instead of a
  growing queue of timeouts. Bodies up to ``max_body`` (uploads: ``max_upload``), each part of
  which must arrive within ``body_timeout`` seconds of the last (else 408).
- **Unauthenticated, to a route that needs a credential** (``protected``: the API's routes,
  ``/openapi.json``): 401 at once, without reading the body or touching a slot (the route
  would refuse it anyway, before its body: FastAPI reads the body first).
- **Unauthenticated, to a public path** (the pages, sign-in): a small pool of its own,
  ``max_anonymous`` at once per process and ``max_anonymous_per_client`` per client address
  (more: 503, or 429 for one address), a body of at most 64 KiB that must arrive whole within
  ``header_timeout`` seconds. So slow or numerous unauthenticated clients only ever wait on
  each other.
- ``/healthz``: never shed (busy is not dead), with the unauthenticated body limits.

A request refused before its body (401, 429, 503, 415) has a small body (at most
``ANONYMOUS_BODY``) read and dropped first, for at most ``DRAIN_S`` seconds, so the connection
stays usable and the client reads the answer: closing a socket with request bytes still
arriving makes the kernel reset it, and a reset can destroy the answer before the client reads
it. A larger or slower body gets the answer and ``Connection: close`` at once.

A body larger than its limit: 413 at once when ``Content-Length`` says so, otherwise as soon as
the streamed bytes pass it. ``Content-Encoding: gzip`` request bodies are inflated as they
stream and the limit applies to the inflated size, so a small "zip bomb" is refused after
``limit`` bytes, not after filling memory; other encodings get 415.

Errors found while the route reads the body are raised as ``HTTPException``; FastAPI passes
those through its body parsing unchanged, so they reach the client as 408/413/400, never 500.
Slow request *heads* never reach this middleware: ``connections`` closes them.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException

from .admission import MISSING_TOKEN, UNKNOWN_TOKEN, ClientCounts, KnownTokens, credential

__all__ = ["ANONYMOUS_BODY", "Guard"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

ANONYMOUS_BODY = 64 * 1024  # the sign-in form is a few hundred bytes
DRAIN_S = 1.0  # a refused request's small body is read and dropped within this
_CLOSE = {"Connection": "close"}


@dataclass(frozen=True)
class Body:
    """How a request's body may arrive: at most ``limit`` bytes (inflated), each part within
    ``idle`` seconds of the last, and all of it by ``deadline`` (loop time) when given."""

    limit: int
    idle: float
    deadline: float | None = None


class Guard:
    def __init__(self, app: Any, *, max_in_flight: int, max_body: int, max_upload: int,
                 tokens: KnownTokens | None, cookie_name: str,
                 protected: Callable[[str, str], bool], body_timeout: float = 30.0,
                 header_timeout: float = 10.0, max_anonymous: int = 16,
                 max_anonymous_per_client: int = 4, retry_after: int = 1):
        self.app = app
        self.max_in_flight = max_in_flight
        self.max_body = max_body
        self.max_upload = max_upload
        self.tokens = tokens  # None: authentication is off (--no-auth)
        self.cookie_name = cookie_name
        self.protected = protected  # (method, path): a route that needs a credential
        self.body_timeout = body_timeout
        self.header_timeout = header_timeout
        self.anonymous = ClientCounts(max_anonymous_per_client, max_anonymous)
        self.retry_after = retry_after
        self.in_flight = 0  # only touched on the event loop thread: no lock needed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = _route_path(scope)
        headers = _headers(scope)
        if path == "/healthz":
            await self._pass(scope, receive, send, headers, self._anonymous_body())
            return
        secret, _ = credential(headers, self.cookie_name)
        if self.tokens is None or (secret and await self.tokens.knows(secret)):
            await self._authenticated(scope, receive, send, headers, path)
        elif self.protected(scope["method"], path):
            await _refuse(receive, send, headers, 401,
                          UNKNOWN_TOKEN if secret else MISSING_TOKEN,
                          [(b"www-authenticate", b'Bearer error="invalid_token"' if secret
                            else b"Bearer")])
        else:
            await self._anonymous(scope, receive, send, headers)

    async def _authenticated(self, scope: Scope, receive: Receive, send: Send,
                             headers: dict[bytes, bytes], path: str) -> None:
        if self.in_flight >= self.max_in_flight:
            await self._busy(receive, send, headers, f"the server is busy "
                             f"({self.in_flight} requests in flight)")
            return
        upload = scope["method"] == "PUT" and "/files/" in path
        body = Body(self.max_upload if upload else self.max_body, self.body_timeout)
        self.in_flight += 1
        try:
            await self._pass(scope, receive, send, headers, body, gzip_ok=not upload)
        finally:
            self.in_flight -= 1

    async def _anonymous(self, scope: Scope, receive: Receive, send: Send,
                         headers: dict[bytes, bytes]) -> None:
        client = (scope.get("client") or ("unknown", 0))[0]
        refused = self.anonymous.take(client)
        if refused == "client":
            await _refuse(receive, send, headers, 429,
                          f"too many unauthenticated requests from {client} at once (at most "
                          f"{self.anonymous.per_client}); sign in, or retry after "
                          f"{self.retry_after} s",
                          [(b"retry-after", str(self.retry_after).encode())])
            return
        if refused == "total":
            await self._busy(receive, send, headers, "the server is busy with "
                             f"unauthenticated requests ({self.anonymous.in_progress})")
            return
        try:
            await self._pass(scope, receive, send, headers, self._anonymous_body())
        finally:
            self.anonymous.give_back(client)

    def _anonymous_body(self) -> Body:
        deadline = asyncio.get_running_loop().time() + self.header_timeout
        return Body(ANONYMOUS_BODY, self.header_timeout, deadline)

    async def _busy(self, receive: Receive, send: Send, headers: dict[bytes, bytes],
                    why: str) -> None:
        await _refuse(receive, send, headers, 503, f"{why}; retry after {self.retry_after} s",
                      [(b"retry-after", str(self.retry_after).encode())])

    async def _pass(self, scope: Scope, receive: Receive, send: Send,
                    headers: dict[bytes, bytes], body: Body, gzip_ok: bool = True) -> None:
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                await _reply(send, 400, "Content-Length is not a number", close=True)
                return
            if int(length) > body.limit:
                await _reply(send, 413, f"the request body is larger than the limit of "
                             f"{body.limit} bytes", close=True)
                return
        encoding = headers.get(b"content-encoding", b"identity").strip().lower()
        if encoding not in (b"identity", b"gzip", b"") or (not gzip_ok and encoding == b"gzip"):
            await _refuse(receive, send, headers, 415, f"Content-Encoding "
                          f"{encoding.decode('latin-1')!r} is not accepted here (gzip for JSON "
                          "bodies, none for uploads)")
            return
        reader = _BodyReader(receive, body, encoding == b"gzip")
        await self.app(scope, reader.receive, reader.watch(send))


class _BodyReader:
    """``receive`` with the body inflated (gzip), counted against its limit and timed out.

    Past the body's end, ``receive`` is passed through untimed (a response waiting for the
    client to disconnect). A timeout after the response has started reads as a disconnect."""

    def __init__(self, receive: Receive, body: Body, gzip: bool):
        self.inner = receive
        self.body = body
        self.inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip else None
        self.seen = 0
        self.done = False
        self.responding = False

    def watch(self, send: Send) -> Send:
        async def watched(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.responding = True
            await send(message)

        return watched

    async def receive(self) -> Message:
        if self.done:
            return await self.inner()
        message = await self._next()
        if message["type"] != "http.request":
            return message
        data = message.get("body", b"")
        more = message.get("more_body", False)
        if self.inflate is not None:
            data = _inflate(self.inflate, data, self.body.limit - self.seen, more)
        self.seen += len(data)
        if self.seen > self.body.limit:
            raise HTTPException(413, f"the request body is larger than the limit of "
                                     f"{self.body.limit} bytes", headers=_CLOSE)
        self.done = not more
        return {**message, "body": data}

    async def _next(self) -> Message:
        wait = self.body.idle
        if self.body.deadline is not None:
            wait = min(wait, self.body.deadline - asyncio.get_running_loop().time())
        try:
            return await asyncio.wait_for(self.inner(), max(wait, 0.0))
        except asyncio.TimeoutError:
            if self.responding:
                return {"type": "http.disconnect"}
            if self.body.deadline is not None:
                detail = (f"the request did not arrive whole within {self.body.idle:g} s "
                          "(unauthenticated requests must)")
            else:
                detail = f"no part of the request body arrived for {self.body.idle:g} s"
            raise HTTPException(408, detail, headers=_CLOSE) from None


def _inflate(inflate: Any, data: bytes, room: int, more: bool) -> bytes:
    try:
        body: bytes = inflate.decompress(data, room + 1)
        if inflate.unconsumed_tail:
            raise HTTPException(413, "the inflated request body is larger than the limit",
                                headers=_CLOSE)
        if not more:
            body += inflate.flush()
            if not inflate.eof:
                raise HTTPException(400, "the gzip request body is truncated")
    except zlib.error as exc:
        raise HTTPException(400, f"the request body is not valid gzip: {exc}", headers=_CLOSE)
    return body


def _route_path(scope: Scope) -> str:
    """The path without the proxy's prefix (``--root-path``), whichever way the server set it."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


def _headers(scope: Scope) -> dict[bytes, bytes]:
    """The request's headers by lower-case name; the first of repeated ones, as Starlette."""
    found: dict[bytes, bytes] = {}
    for name, value in scope.get("headers", ()):
        found.setdefault(name.lower(), value)
    return found


def _has_body(headers: dict[bytes, bytes]) -> bool:
    return headers.get(b"content-length", b"0") not in (b"0", b"") or \
        b"transfer-encoding" in headers


async def _refuse(receive: Receive, send: Send, headers: dict[bytes, bytes], status: int,
                  detail: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    """Answer ``status`` without handing the request on: after reading and dropping its body
    when that is small and arrives within ``DRAIN_S`` seconds, else closing the connection."""
    drained = not _has_body(headers) or await _drained(receive, headers)
    await _reply(send, status, detail, extra, close=not drained)


async def _drained(receive: Receive, headers: dict[bytes, bytes]) -> bool:
    """Whether the whole body was read (and dropped): at most ``ANONYMOUS_BODY`` bytes, all
    within ``DRAIN_S`` seconds."""
    length = headers.get(b"content-length", b"")
    if length.isdigit() and int(length) > ANONYMOUS_BODY:
        return False
    seen = 0
    deadline = asyncio.get_running_loop().time() + DRAIN_S
    while True:
        left = deadline - asyncio.get_running_loop().time()
        try:
            message = await asyncio.wait_for(receive(), max(left, 0.0))
        except asyncio.TimeoutError:
            return False
        if message["type"] != "http.request":
            return False  # the client went away
        seen += len(message.get("body", b""))
        if seen > ANONYMOUS_BODY:
            return False
        if not message.get("more_body", False):
            return True


async def _reply(send: Send, status: int, detail: str,
                 headers: list[tuple[bytes, bytes]] | None = None, *, close: bool) -> None:
    """A JSON error answered here; ``close`` when the request's body is left unread."""
    body = json.dumps({"detail": detail}).encode()
    extra = [(b"connection", b"close")] if close else []
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            *extra, *(headers or [])]})
    await send({"type": "http.response.body", "body": body})
