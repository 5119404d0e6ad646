"""Who gets a request slot: the credential a request carries, checked before any work.

The :class:`~autolog.server.guard.Guard` asks :class:`KnownTokens` whether a request's
credential (``Authorization: Bearer``, else the session cookie: :func:`credential`, the same
rule the routes apply) belongs to an active token before it gives the request one of the
expensive slots, so unauthenticated clients cannot hold them.

:class:`KnownTokens` keeps the SHA-256 digests of the active tokens in memory and reloads them
from the database (one small query) when its copy is older than ``ttl`` seconds, and when a
credential it does not hold arrives: that request waits for a reload that began after it
arrived. Reloads run one at a time, at most one every ``spacing`` seconds, however many
requests wait for one. So, with any number of server processes on one database:

- a token created by another process (or ``autolog server token create``) gets in at once,
  since its first request waits for a reload that sees it (a few milliseconds);
- a revoked token stops getting slots within ``ttl`` seconds in every process; and this copy
  only decides *admission*: every route still checks its credential against the database
  itself, so a revoked token is refused by every process at once, as before;
- however many made-up credentials arrive, they cost at most one query per ``spacing``
  seconds per process, never one per request, and hold no slot while they wait.

:class:`ClientCounts` counts what each client address has in progress (unauthenticated
requests).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping

from starlette.requests import cookie_parser

__all__ = ["MISSING_TOKEN", "UNKNOWN_TOKEN", "ClientCounts", "KnownTokens", "credential",
           "digest"]

log = logging.getLogger("autolog.server")

MISSING_TOKEN = ("missing bearer token: send 'Authorization: Bearer <token>' "
                 "(AUTOLOG_HTTP_TOKEN for the http backend)")
UNKNOWN_TOKEN = "unknown or revoked token"


def digest(secret: str) -> str:
    """A credential's SHA-256, as the tokens table stores it."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def credential(headers: Mapping[bytes, bytes], cookie_name: str) -> tuple[str, str]:
    """``(secret, via)`` from raw request headers: a bearer token wins over the session cookie
    (as FastAPI's ``HTTPBearer`` and ``access._principal`` decide); ``("", "none")`` if none."""
    scheme, _, secret = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
    if scheme.lower() == "bearer" and secret:
        return secret, "bearer"
    raw = headers.get(b"cookie", b"").decode("latin-1")
    cookie = cookie_parser(raw).get(cookie_name, "") if cookie_name in raw else ""
    return (cookie, "cookie") if cookie else ("", "none")


class KnownTokens:
    """The active tokens' digests, reloaded by ``load`` (blocking, run on a worker thread)."""

    def __init__(self, load: Callable[[], Iterable[str]], *, ttl: float = 5.0,
                 spacing: float = 0.05):
        self.load = load
        self.ttl = ttl
        self.spacing = spacing
        self.digests: frozenset[str] = frozenset()
        self.loaded_at = float("-inf")  # when the last reload that succeeded began
        self.failed_at = float("-inf")  # when the last reload that failed began
        self.started_at = float("-inf")  # when the last reload began
        self._task: asyncio.Task[None] | None = None

    async def knows(self, secret: str) -> bool:
        """Whether ``secret`` is an active token: from a copy at most ``ttl`` seconds old when
        it is in the copy, else from a reload that began after this call."""
        if not secret or len(secret) > 200:
            return False
        found = digest(secret)
        now = time.monotonic()
        if found not in self.digests or now - self.loaded_at > self.ttl:
            await self._reloaded_since(now)
        return found in self.digests

    async def _reloaded_since(self, moment: float) -> None:
        """Wait for a reload that began after ``moment``; one at a time, however many wait,
        and at most one every ``spacing`` seconds. A failed one ends the wait (the last copy
        stands)."""
        loop = asyncio.get_running_loop()
        while self.loaded_at < moment and self.failed_at < moment:
            task = self._task
            if task is None or task.done() or task.get_loop() is not loop:
                task = self._task = loop.create_task(self._reload())
            await asyncio.shield(task)

    async def _reload(self) -> None:
        await asyncio.sleep(max(0.0, self.started_at + self.spacing - time.monotonic()))
        began = self.started_at = time.monotonic()
        try:
            digests = frozenset(await asyncio.get_running_loop().run_in_executor(None,
                                                                                  self.load))
        except Exception as exc:  # the database is down: keep the last copy
            log.warning("could not reload the active tokens: %s",
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            self.failed_at = began
            return
        self.digests = digests
        self.loaded_at = began


class ClientCounts:
    """Requests in progress per client address; ``take`` refuses past ``per_client`` for one
    address or ``total`` for all."""

    def __init__(self, per_client: int, total: int):
        self.per_client = per_client
        self.total = total
        self.counts: dict[str, int] = {}
        self.in_progress = 0

    def take(self, client: str) -> str | None:
        """None when admitted (call :meth:`give_back` after), else which limit was hit."""
        if self.counts.get(client, 0) >= self.per_client:
            return "client"
        if self.in_progress >= self.total:
            return "total"
        self.counts[client] = self.counts.get(client, 0) + 1
        self.in_progress += 1
        return None

    def give_back(self, client: str) -> None:
        self.in_progress -= 1
        left = self.counts[client] - 1
        if left:
            self.counts[client] = left
        else:
            del self.counts[client]
