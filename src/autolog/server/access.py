"""Who may do what: the mode's context, bearer tokens and session cookies, scopes, CSRF.

A request carries a credential as ``Authorization: Bearer <token>`` (API clients, the http
backend) or as the session cookie the login flow set (browsers). Both are checked by the
context's ``authenticate`` (the server's tokens, or ``autolog ui``'s one token). A request that
changes something with the cookie must also send ``X-CSRF-Token``: a value derived from the
secret, so every server process agrees on it without shared state, and no other site can know
it (the cookie is HttpOnly and SameSite=Strict on top).
"""

from __future__ import annotations

import hashlib
import hmac
import pathlib
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from . import auth, edits, query
from .admission import MISSING_TOKEN, UNKNOWN_TOKEN
from .db import Database
from .schemas import RunEdit
from .settings import ServerConfig
from .storage import ArtifactStore

__all__ = ["COOKIE", "Admin", "Context", "Ctx", "Read", "ServerOnly", "Write", "csrf_token"]


class Context:
    """What routes share: the configuration, the database, the artifact files, and how this
    mode authenticates and edits. ``autolog ui`` passes its own (``autolog.ui.local``)."""

    mode = "server"

    def __init__(self, config: ServerConfig):
        self.config = config
        self.db = Database(config.db, pool_size=config.pool_size)
        self.revision = self.db.migrate()
        self.store = ArtifactStore(config.artifacts)
        self.cookie_name = COOKIE

    def authenticate(self, secret: str) -> dict[str, Any] | None:
        """The token record (name, scope) of a bearer token or session cookie, or None."""
        return auth.verify(self.db, secret)

    def token_digests(self) -> set[str]:
        """The SHA-256 digests of the active tokens (what the door admits; blocking)."""
        return auth.active_digests(self.db)

    def edit(self, run: str, changes: RunEdit) -> dict[str, Any]:
        return edits.apply(self.db, run, changes)

    def before_history(self, run_ids: list[str]) -> None:
        """Called before histories are read (the local index fills points on demand)."""

    def list_files(self, run: str) -> tuple[str, list[dict[str, Any]]]:
        """The run's full id and its stored files."""
        return query.list_files(self.db, run)

    def find_file(self, run_id: str, path: str) -> pathlib.Path | None:
        """The file stored for ``path`` of the run, never one outside its directory."""
        return self.store.existing(run_id, path)

    def close(self) -> None:
        self.db.dispose()


COOKIE = "autolog_session"


def context_of(request: Request) -> Context:
    context: Context = request.app.state.context
    return context


_bearer = HTTPBearer(auto_error=False,
                     description="a token made with `autolog server token create NAME`")


Bearer = Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def csrf_token(secret: str) -> str:
    """The CSRF token that goes with a session: derived from its secret, so every server
    process agrees without shared state, and unknowable without the (HttpOnly) cookie."""
    return hashlib.sha256(b"autolog-csrf\0" + secret.encode("utf-8", "surrogatepass")
                          ).hexdigest()[:40]


def _principal(request: Request, credentials: HTTPAuthorizationCredentials | None
               ) -> dict[str, Any]:
    context = context_of(request)
    if not context.config.auth:
        return {"name": "anonymous", "scope": "admin", "csrf": ""}
    if credentials is not None:
        secret, via = credentials.credentials, "bearer"
    else:
        secret, via = request.cookies.get(context.cookie_name, ""), "cookie"
    if not secret:
        raise HTTPException(401, MISSING_TOKEN, headers={"WWW-Authenticate": "Bearer"})
    token = context.authenticate(secret)
    if token is None:
        raise HTTPException(401, UNKNOWN_TOKEN,
                            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    csrf = csrf_token(secret)
    if via == "cookie" and request.method not in _SAFE_METHODS:
        sent = request.headers.get("x-csrf-token", "")
        if not hmac.compare_digest(sent.encode("utf-8", "replace"), csrf.encode()):
            raise HTTPException(403, "missing or wrong X-CSRF-Token header (take it from "
                                "GET /api/v1/session)")
    return {**token, "csrf": csrf}


def _scope(needed: str) -> Callable[..., dict[str, Any]]:
    def check(request: Request, credentials: Bearer) -> dict[str, Any]:
        token = _principal(request, credentials)
        if not auth.allows(token["scope"], needed):
            raise HTTPException(403, f"token {token['name']!r} has scope {token['scope']!r}; "
                                f"this needs {needed!r}")
        return token

    return check


def _server_only(request: Request) -> None:
    if context_of(request).mode != "server":
        raise HTTPException(403, "autolog ui serves the local store, which only autolog "
                            "itself writes: log runs with autolog (or use autolog server)")


ServerOnly = Depends(_server_only)
Read = Depends(_scope("read"))
Write = Depends(_scope("write"))
Admin = Depends(_scope("admin"))
Ctx = Annotated[Context, Depends(context_of)]


