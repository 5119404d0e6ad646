"""The pages: the single-page app's bundle, the login form, and the headers every response gets.

- ``/assets/...``: the bundle's hashed files, cached for a year (``immutable``).
- Every other GET path outside ``/api/`` answers the app's ``index.html`` (``no-cache``): the
  app routes ``/p/<project>``, ``/r/<run id>``, ``/compare``... in the browser. When the bundle
  is not built, a short page says so.
- ``GET /login`` is a plain form (no script); ``POST /login`` takes a token and sets the session
  cookie (``HttpOnly``, ``SameSite=Strict``); ``POST /logout`` clears it.
- ``autolog ui`` puts its token in the URL it opens: the first page request with ``?token=``
  sets the cookie and redirects to the same URL without it, so it leaves the address bar.
- :class:`SecurityHeaders` adds a strict Content-Security-Policy (no inline script or style, no
  other host), ``nosniff`` and ``no-referrer`` to every response that does not set its own.
"""

from __future__ import annotations

import html
import mimetypes
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.routing import Match

if TYPE_CHECKING:
    from .settings import ServerConfig

__all__ = ["CSP", "SecurityHeaders", "add_pages", "allowed_methods", "static_dir"]

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
_HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY")]
IMMUTABLE = "public, max-age=31536000, immutable"
SERVER_COOKIE_AGE = 7 * 24 * 3600
FALLBACK = "/{path:path}"  # the app's index.html for every page path

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def static_dir(config: ServerConfig) -> Path:
    """Where the built app lives: the configured folder, else the package's ``ui/static``."""
    if config.static_dir:
        return Path(config.static_dir)
    return Path(__file__).resolve().parent.parent / "ui" / "static"


class SecurityHeaders:
    """Adds the security headers to every HTTP response that does not set them itself."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in _HEADERS if h[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def add_pages(app: FastAPI, config: ServerConfig) -> None:
    """The login pages, then the static files and the app's fallback (registered last)."""
    _login_routes(app)
    root = static_dir(config)

    @app.api_route(FALLBACK, methods=["GET", "HEAD"], include_in_schema=False)
    def page(path: str, request: Request) -> Response:
        if path == "api" or path.startswith("api/"):
            allowed = allowed_methods(request)
            if allowed:  # an endpoint of the API, with another method
                return JSONResponse({"detail": "Method Not Allowed"}, 405,
                                    headers={"Allow": ", ".join(allowed)})
            return JSONResponse({"detail": f"no endpoint /{path[:200]}"}, 404)
        exchanged = _token_exchange(request)
        if exchanged is not None:
            return exchanged
        if path.startswith("assets/"):
            found = _inside(root, path)
            if found is None:
                return Response("not found", 404, media_type="text/plain")
            return FileResponse(found, media_type=_type(found),
                                headers={"Cache-Control": IMMUTABLE})
        found = _inside(root, path) if path and "/" not in path else None
        if found is not None and found.name != "index.html":
            return FileResponse(found, media_type=_type(found),
                                headers={"Cache-Control": "no-cache"})
        return _index(root)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path (RFC 9110's ``Allow``); the
    pages' fallback counts only outside ``/api/``, and routes this mode does not serve
    (``app.state.unserved``) not at all."""
    found: set[str] = set()
    api = request.url.path[len(request.scope.get("root_path", "")):].startswith("/api/")
    unserved = {id(route) for route in getattr(request.app.state, "unserved", ())}
    for route in request.app.router.routes:
        if not isinstance(route, APIRoute) or (api and route.path == FALLBACK) or \
                id(route) in unserved:
            continue
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match != Match.NONE:
            found |= route.methods or set()
    return sorted(found)


def _inside(root: Path, path: str) -> Path | None:
    """The regular file ``path`` names under ``root``, never one outside it or a dotfile."""
    parts = path.split("/")
    if any(p in ("", ".", "..") or p.startswith(".") or "\\" in p or "\x00" in p
           for p in parts):
        return None
    try:
        base = root.resolve()
        found = base.joinpath(*parts).resolve()
    except (OSError, ValueError):
        return None
    return found if found.is_relative_to(base) and found.is_file() else None


def _type(path: Path) -> str:
    kinds = {".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
             ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".woff2": "font/woff2",
             ".json": "application/json", ".map": "application/json"}
    return kinds.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or \
        "application/octet-stream"


def _index(root: Path) -> Response:
    index = root / "index.html"
    if index.is_file():
        return FileResponse(index, media_type="text/html; charset=utf-8",
                            headers={"Cache-Control": "no-cache"})
    return HTMLResponse(_page("autolog", "<p>The UI bundle is not built: this install has no "
                              f"<code>{html.escape(str(index))}</code>. The JSON API under "
                              "<code>/api/v1</code> works; build the UI with <code>npm ci "
                              "&amp;&amp; npm run build</code> in <code>ui/</code>.</p>"),
                        headers={"Cache-Control": "no-cache"})


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>"
            f"{html.escape(title)}</title><meta name=\"viewport\" content=\"width=device-width"
            f"\"></head><body><h1>{html.escape(title)}</h1>{body}</body></html>")


# -- the session cookie -----------------------------------------------------------------------


def _set_cookie(response: Response, request: Request, secret: str) -> None:
    context = request.app.state.context
    response.set_cookie(context.cookie_name, secret, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https",
                        max_age=None if context.mode == "local" else SERVER_COOKIE_AGE)


def _token_exchange(request: Request) -> Response | None:
    """``autolog ui``'s ``?token=``: set the cookie, then the same URL without the token."""
    context = request.app.state.context
    secret = request.query_params.get("token")
    if secret is None or context.mode != "local":
        return None
    if context.authenticate(secret) is None:
        return HTMLResponse(_page("autolog: wrong token", "<p>This link's token is not the one "
                                  "this <code>autolog ui</code> printed: open the URL it "
                                  "printed when it started.</p>"), 401)
    rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
    target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
    response = RedirectResponse(target, 303, headers={"Cache-Control": "no-store"})
    _set_cookie(response, request, secret)
    return response


_FORM = """<form method="post" action="/login"><p><label>Token <input name="token"
type="password" autocomplete="current-password" autofocus required size="50"></label>
<button type="submit">Sign in</button></p></form><p>A read token shows runs; a write token
can also rename, tag and delete them. Tokens are made with <code>autolog server token create
NAME --scope read</code>.</p>"""


def _login_routes(app: FastAPI) -> None:
    @app.get("/login", include_in_schema=False)
    def login_form(request: Request) -> Response:
        hint = ""
        if request.app.state.context.mode == "local":
            hint = ("<p>Open the URL <code>autolog ui</code> printed when it started (it holds "
                    "the token), or paste that token here.</p>")
        return HTMLResponse(_page("autolog: sign in", hint + _FORM),
                            headers={"Cache-Control": "no-store"})

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        body = (await request.body()).decode("utf-8", "replace")
        secret = (parse_qs(body).get("token") or [""])[0].strip()
        context = request.app.state.context
        token = await run_in_threadpool(context.authenticate, secret) if secret else None
        if token is None:
            error = "<p role=\"alert\"><strong>That token is unknown or revoked.</strong></p>"
            return HTMLResponse(_page("autolog: sign in", error + _FORM), 401,
                                headers={"Cache-Control": "no-store"})
        response = RedirectResponse("/", 303)
        _set_cookie(response, request, secret)
        return response

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request) -> Response:
        response = RedirectResponse("/login", 303)
        response.delete_cookie(request.app.state.context.cookie_name, path="/", httponly=True,
                               samesite="strict")
        return response
