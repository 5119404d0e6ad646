"""The ASGI application: the JSON API's routes, the pages (``web``), error mapping.

Every API route but ``/healthz`` (liveness) needs a credential with the right scope (``access``:
a bearer token, or the browser's session cookie), the OpenAPI document included; the pages
themselves are public. ``autolog ui`` builds the same application around its own context.
Routes doing database work are plain functions (FastAPI runs them on its thread pool); the
upload route is async and streams the body to disk. Errors the code raises on purpose map to
4xx statuses here; a database that is locked, unreachable or out of connections is a 503 with
``Retry-After``, which clients retry. There is no in-process state that correctness depends on:
several processes on one PostgreSQL database serve the same API.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import Field
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.requests import ClientDisconnect

from .._version import __version__
from . import auth, ingest, media, previews, query, search, series, table, web
from .access import Admin, Context, Ctx, Read, ServerOnly, Write
from .admission import KnownTokens
from .errors import AmbiguousPrefix, BadPageToken, NoSuchRun
from .guard import Guard
from .schemas import (
    KEY_BOUNDS,
    MAX_POINTS_PER_BATCH,
    RUN_ID_PATTERN,
    X_MAX_BYTES,
    X_MAX_PART_BYTES,
    ArtifactIn,
    BatchIn,
    BatchOut,
    FileList,
    FileOut,
    Filter,
    History,
    HistoryList,
    Int64,
    Key,
    KeyList,
    ModelIn,
    Problem,
    Project,
    ProjectList,
    RunDetail,
    RunEdit,
    RunIn,
    RunPage,
    RunSummary,
    ServerInfo,
    Session,
    Status,
    TokenCreated,
    TokenIn,
    TokenList,
)
from .settings import ServerConfig
from .storage import PathRejected, StorageConflict, TooLarge

__all__ = ["app_from_environ", "create_app"]

log = logging.getLogger("autolog.server")

RUN_PREFIX = r"^[0-9a-fA-F]{1,32}$"
RunIdPath = Annotated[str, Path(pattern=RUN_ID_PATTERN, description="the run id (32 hex)")]
RunRefPath = Annotated[str, Path(pattern=RUN_PREFIX, description="run id or unique prefix")]

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "description": text} for code, text in (
        (400, "bad request"), (401, "missing, unknown or revoked token"),
        (403, "the token's scope does not allow this"), (404, "no such run or file"),
        (409, "conflicts with what is stored"),
        (413, "body too large"), (422, "invalid input"),
        (503, "overloaded or database unavailable; retry after Retry-After seconds"))
}


def create_app(config: ServerConfig | None = None, context: Any = None) -> FastAPI:
    """The server application; migrates the database schema before it returns.

    ``context`` replaces the server's own (``autolog ui`` serves its local store this way).
    """
    config = config or ServerConfig()
    context = context if context is not None else Context(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        context.close()

    app = FastAPI(title="autolog server", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=lifespan, responses=_ERRORS,
                  description="Runs recorded by autolog's http backend: ingestion and reading.")
    app.state.context = context
    _exact_openapi(app)
    _routes(app)
    app.state.unserved = _unserved(app, context)
    web.add_pages(app, config)
    _error_handlers(app)
    tokens = KnownTokens(context.token_digests) if config.auth else None
    app.add_middleware(Guard, max_in_flight=config.max_in_flight,
                       max_body=config.max_request_bytes, max_upload=config.max_upload_bytes,
                       tokens=tokens, cookie_name=context.cookie_name,
                       protected=_protected(app),
                       body_timeout=config.body_timeout, header_timeout=config.header_timeout,
                       max_anonymous=config.max_anonymous,
                       max_anonymous_per_client=config.max_anonymous_per_client)
    app.add_middleware(web.SecurityHeaders)  # outermost: the Guard's own answers get them too
    return app


def _exact_openapi(app: FastAPI) -> None:
    """The OpenAPI document, tidied where FastAPI and pydantic write something looser than
    what the server accepts (:func:`_tidy`); ``autolog ui``'s leaves out the operations only
    ``autolog server`` serves (ingestion, tokens: ``ServerOnly``)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = _tidy(generate())
            _drop_unserved(app, document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _unserved(app: FastAPI, context: Any) -> list[APIRoute]:
    """The routes this mode never serves: ``autolog server``'s own (``ServerOnly``) under
    ``autolog ui``. They answer 403 saying so, and neither the OpenAPI document nor a 405's
    ``Allow`` lists them."""
    if getattr(context, "mode", "server") == "server":
        return []
    return [route for route in app.routes
            if isinstance(route, APIRoute) and ServerOnly in route.dependencies]


def _drop_unserved(app: FastAPI, document: dict[str, Any]) -> None:
    paths = document.get("paths", {})
    for route in app.state.unserved:
        operations = paths.get(route.path_format, {})
        for method in route.methods or ():
            operations.pop(method.lower(), None)
        if not operations:
            paths.pop(route.path_format, None)


_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def _tidy(node: Any) -> Any:
    """- Integral bounds as integers: FastAPI's models hold them as floats (2**63 - 1 would
      read back as 2**63, 1000000 as 1000000.0).
    - A mapping whose keys have a pattern: pydantic writes ``patternProperties``, which leaves
      keys that miss the pattern unconstrained; the server refuses them, so the pattern goes
      into ``propertyNames`` and the values' schema into ``additionalProperties``."""
    if isinstance(node, dict):
        if node.get("type") == "integer":
            for name in _BOUNDS:
                if isinstance(node.get(name), float) and node[name].is_integer():
                    node[name] = int(node[name])
        patterns = node.get("patternProperties")
        if isinstance(patterns, dict) and len(patterns) == 1 and "additionalProperties" not in node:
            (pattern, values), = patterns.items()
            del node["patternProperties"]
            node["additionalProperties"] = values
            node["propertyNames"] = {**node.get("propertyNames", {}), "pattern": pattern}
        for value in node.values():
            _tidy(value)
    elif isinstance(node, list):
        for value in node:
            _tidy(value)
    return node


def _protected(app: FastAPI) -> Callable[[str, str], bool]:
    """Whether a (method, path) is one of the routes that need a credential: the API's (every
    one but ``/healthz``) and the OpenAPI document. Anything else (pages, sign-in, an unknown
    path) is left to the app, as an unauthenticated request."""
    routes = [(route.path_regex, route.methods or set()) for route in app.routes
              if isinstance(route, APIRoute)
              and (route.path.startswith("/api/") or route.path == "/openapi.json")]

    def protected(method: str, path: str) -> bool:
        return any(method in methods and regex.match(path) for regex, methods in routes)

    return protected


def app_from_environ() -> FastAPI:
    """The factory uvicorn's worker processes call (``--workers N``)."""
    return create_app(ServerConfig.from_environ())


def _routes(app: FastAPI) -> None:
    _health_routes(app)
    _ui_routes(app)
    _run_routes(app)
    _file_routes(app)
    _media_routes(app)
    _token_routes(app)


def _health_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["service"], responses={200: {"description": "alive"}})
    def healthz() -> dict[str, str]:
        """Liveness for load balancers; public, and says nothing about the data."""
        return {"status": "ok"}

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(token: Any = Read) -> dict[str, Any]:
        """The OpenAPI document; a read token, like the data, since it maps the service."""
        return app.openapi()

    @app.get("/api/v1/info", tags=["service"], response_model=ServerInfo)
    def info(context: Ctx, token: Any = Read) -> dict[str, Any]:
        """Version, schema revision and limits (a client reads the limits before uploading)."""
        config = context.config
        return {"version": __version__, "schema_revision": context.revision,
                "database": context.db.url.get_backend_name(),
                "max_request_bytes": config.max_request_bytes,
                "max_upload_bytes": config.max_upload_bytes,
                "max_points_per_batch": MAX_POINTS_PER_BATCH}


def _run_routes(app: FastAPI) -> None:
    @app.get("/api/v1/runs", tags=["runs"], response_model=RunPage)
    def list_runs(context: Ctx, token: Any = Read,
                  project: Annotated[Project | None, Query()] = None,
                  status: Annotated[Status | None, Query()] = None,
                  tag: Annotated[list[Filter], Query(description="key=value; repeat to require "
                                                  "several tags")] = [],  # noqa: B006
                  filter: Annotated[Filter | None, Query(description="a filter expression "
                                                         "(docs/server.md)")] = None,
                  q: Annotated[Filter | None, Query(description="text in the name, a tag "
                                                    "value or the note")] = None,
                  sort: Annotated[Filter | None, Query(description="[-]column")] = None,
                  parent: Annotated[str | None, Query(pattern=RUN_ID_PATTERN)] = None,
                  all: bool = False,
                  deleted: bool = False,
                  columns: Annotated[Filter | None, Query(description="comma-separated "
                                                          "columns")] = None,
                  offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                  page_token: Annotated[str | None, Query(max_length=500)] = None
                  ) -> JSONResponse:
        """The runs table: filtered, searched, sorted by any column, in offset pages.

        Top-level runs by default (``parent=`` for a run's children, ``all=true`` for every
        run); ``total`` counts the matching runs over all pages.
        """
        request = search.RunQuery(
            project=project, status=status, tags=[table.tag_filter(t) for t in tag],
            filter=table.parsed(filter), q=q or None, sort=table.sort(sort), parent=parent, all=all,
            deleted=deleted, columns=table.columns(columns), offset=offset, limit=limit,
            after=query.decode_token(page_token) if page_token else None)
        page = search.search(context.db, request)
        keyset = request.sort == search.DEFAULT_SORT and page["more"] and page["runs"]
        last = page["runs"][-1] if keyset else None
        return JSONResponse({
            "runs": page["runs"], "total": page["total"], "offset": offset,
            "next_page_token": query.encode_token(last["start_time"], last["id"])
            if last else None})

    @app.put("/api/v1/runs/{run}", tags=["ingest"], response_model=RunSummary,
             dependencies=[ServerOnly])
    def put_run(run: RunIdPath, body: RunIn, context: Ctx, token: Any = Write
                ) -> dict[str, Any]:
        """Create the run, or update the fields given (idempotent)."""
        ingest.upsert_run(context.db, run, body)
        return query.get_run(context.db, run)

    @app.get("/api/v1/runs/{run}", tags=["runs"], response_model=RunDetail)
    def get_run(run: RunRefPath, context: Ctx, token: Any = Read) -> dict[str, Any]:
        """One run by id or unique id prefix: params, tags, last metrics, artifacts, models."""
        with context.db.read() as conn:
            run_id = query.find_run_id(conn, run)
        context.before_history([run_id])  # the local index completes its metric summaries
        return query.get_run(context.db, run_id)

    @app.post("/api/v1/runs/{run}/batches", tags=["ingest"], response_model=BatchOut,
              dependencies=[ServerOnly])
    def post_batch(run: RunIdPath, batch: BatchIn, context: Ctx, token: Any = Write
                   ) -> dict[str, Any]:
        """Params, tags and metric points; a batch whose key was stored before is skipped."""
        stored = ingest.store_batch(context.db, run, batch)
        return {"run_id": run, "stored": stored, "events": batch.events()}

    @app.get("/api/v1/runs/{run}/history", tags=["runs"], response_model=History)
    def get_history(run: RunRefPath, key: Annotated[Key, Query(**KEY_BOUNDS)], context: Ctx,
                    token: Any = Read,
                    max_points: Annotated[int | None, Query(ge=2, le=1_000_000)] = None,
                    buckets: Annotated[int | None, Query(ge=2, le=10_000)] = None,
                    min_step: Annotated[Int64 | None, Query()] = None,
                    max_step: Annotated[Int64 | None, Query()] = None) -> JSONResponse:
        """A metric's points by step. ``buckets=N``: N equal step buckets, each with its last
        point and its min/max; ``min_step``/``max_step`` bound the range (a zoom, or the
        points after the last one a chart has). ``max_points``: the older downsampling
        (first, last, min/max points)."""
        with context.db.read() as conn:
            run_id = query.find_run_id(conn, run)
        context.before_history([run_id])
        if buckets is None and min_step is None and max_step is None:
            return JSONResponse(query.history(context.db, run_id, key, max_points))
        with context.db.read() as conn:
            found = series.bucketed(conn, run_id, key, buckets, min_step, max_step)
        return JSONResponse(found or table.empty_history(run_id, key))

    @app.patch("/api/v1/runs/{run}", tags=["runs"], response_model=RunDetail)
    def edit_run(run: RunRefPath, body: RunEdit, context: Ctx, token: Any = Write
                 ) -> JSONResponse:
        """Rename, tag, untag, annotate, delete (soft) or restore a run."""
        return JSONResponse(context.edit(run, body))

    @app.post("/api/v1/runs/{run}/artifacts", tags=["ingest"], response_model=RunSummary,
              dependencies=[ServerOnly])
    def post_artifact(run: RunIdPath, body: ArtifactIn, context: Ctx, token: Any = Write
                      ) -> dict[str, Any]:
        """Record that the run logged ``name`` (its files are uploaded under /files)."""
        ingest.record_artifact(context.db, run, body.paths())
        return query.get_run(context.db, run)

    @app.post("/api/v1/runs/{run}/models", tags=["ingest"], response_model=RunSummary,
              dependencies=[ServerOnly])
    def post_model(run: RunIdPath, body: ModelIn, context: Ctx, token: Any = Write
                   ) -> dict[str, Any]:
        """Record a model's spec under its name (its files are uploaded under /files)."""
        ingest.record_model(context.db, run, body)
        return query.get_run(context.db, run)


def _ui_routes(app: FastAPI) -> None:
    @app.get("/api/v1/session", tags=["ui"], response_model=Session)
    def session(context: Ctx, token: Any = Read) -> dict[str, Any]:
        """Who is signed in, whether they can edit, and the CSRF token for cookie writes."""
        return {"mode": context.mode, "user": token["name"],
                "can_write": auth.allows(token["scope"], "write"), "csrf": token["csrf"],
                "version": __version__}

    @app.get("/api/v1/projects", tags=["ui"], response_model=ProjectList)
    def projects(context: Ctx, token: Any = Read) -> dict[str, Any]:
        """Every project: its runs (not deleted) and its latest start."""
        return {"projects": query.projects(context.db)}

    @app.get("/api/v1/keys", tags=["ui"], response_model=KeyList)
    def keys(context: Ctx, token: Any = Read,
             project: Annotated[Project | None, Query()] = None,
             parent: Annotated[str | None, Query(pattern=RUN_ID_PATTERN)] = None
             ) -> dict[str, Any]:
        """The distinct param, metric and tag keys of a project's runs, for pickers; the runs
        table's default columns (drawn from ``parent``'s children when it is given)."""
        return query.keys(context.db, project, parent)

    @app.get("/api/v1/histories", tags=["ui"], response_model=HistoryList)
    def histories(context: Ctx, token: Any = Read,
                  run: Annotated[list[Annotated[str, Field(pattern=RUN_PREFIX)]],
                                 Query(max_length=50)] = [],  # noqa: B006
                  key: Annotated[list[Key], Query(max_length=20)] = [],  # noqa: B006
                  buckets: Annotated[int | None, Query(ge=2, le=10_000)] = None,
                  min_step: Annotated[Int64 | None, Query()] = None,
                  max_step: Annotated[Int64 | None, Query()] = None) -> JSONResponse:
        """Several runs' histories of several keys in one request (a compare view); pairs
        that do not exist are left out."""
        with context.db.read() as conn:
            run_ids = list(dict.fromkeys(query.find_run_id(conn, r) for r in run))
        context.before_history(run_ids)
        out = []
        with context.db.read() as conn:
            for run_id in run_ids:
                for name in dict.fromkeys(key):
                    found = series.bucketed(conn, run_id, name, buckets, min_step, max_step)
                    if found is not None:
                        out.append(found)
        return JSONResponse({"series": out})


def _media_routes(app: FastAPI) -> None:
    @app.post("/api/v1/runs/{run}/media", tags=["ingest"], response_model=media.MediaOut,
              dependencies=[ServerOnly])
    def post_media(run: RunIdPath, body: media.MediaIn, context: Ctx, token: Any = Write
                   ) -> dict[str, Any]:
        """Record a media item (its files are uploaded under /files); the same ``path`` sent
        again replaces the record."""
        return media.record_media(context.db, run, body)

    @app.get("/api/v1/runs/{run}/media", tags=["runs"], response_model=media.MediaList)
    def get_media(run: RunRefPath, context: Ctx, token: Any = Read,
                  key: Annotated[Key | None, Query()] = None,
                  kind: Annotated[media.MediaKind | None, Query()] = None) -> dict[str, Any]:
        """The run's media by key and step: images over steps, histograms over steps, tables,
        texts, evaluation plots (each with its file under /files)."""
        return media.list_media(context.db, run, key, kind)

    @app.get("/api/v1/runs/{run}/media/keys", tags=["runs"], response_model=media.MediaKeyList)
    def get_media_keys(run: RunRefPath, context: Ctx, token: Any = Read) -> dict[str, Any]:
        """Each media key of the run: its kind, its number of items, first and last step
        (what a page lays out before it asks for any key's items)."""
        return media.list_keys(context.db, run)


_BINARY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
_UPLOAD_BODY = ("the file's bytes (an empty file too: a request with no content and no "
                "Content-Type has no body)")
# storage.check_path's rules as a pattern: relative, `/`-separated parts that are not empty,
# `.` or `..`, hold no backslash or control character and do not start with `.upload-`; the
# route checks them itself (400 naming the rule), the document states them
_PART = r"(?!\.\.?(?:/|$))(?!\.upload-)[^/\\\x00-\x1f\x7f]{1,255}"
ArtifactPath = Annotated[str, Path(
    description="a relative artifact path: parts of 1-255 characters and at most 255 bytes of "
    "UTF-8 each, at most 1000 characters and 1000 bytes in all",
    json_schema_extra={"pattern": f"^{_PART}(?:/{_PART})*$", "maxLength": 1000,
                       X_MAX_BYTES: 1000, X_MAX_PART_BYTES: 255})]


def _has_content(request: Request) -> bool:
    """Whether the request carries a body (RFC 9112 6.3): a Transfer-Encoding, a non-zero
    Content-Length, or a Content-Type saying what its (perhaps empty) content is."""
    headers = request.headers
    return ("transfer-encoding" in headers or headers.get("content-length", "0") != "0"
            or "content-type" in headers)


def _file_routes(app: FastAPI) -> None:
    @app.get("/api/v1/runs/{run}/files", tags=["files"], response_model=FileList)
    def list_files(run: RunRefPath, context: Ctx, token: Any = Read) -> dict[str, Any]:
        """The run's stored artifact files."""
        return {"files": context.list_files(run)[1]}

    @app.put("/api/v1/runs/{run}/files/{path:path}", tags=["files"], response_model=FileOut,
             openapi_extra={"requestBody": {"required": True, "content": _BINARY,
                                            "description": _UPLOAD_BODY}},
             dependencies=[ServerOnly])
    async def put_file(run: RunIdPath, path: ArtifactPath, request: Request, context: Ctx,
                       token: Any = Write) -> dict[str, Any]:
        """Upload one artifact file, streamed; the same path again replaces it."""
        if not _has_content(request):
            raise RequestValidationError([{"type": "missing", "loc": ("body",),
                                           "msg": f"Field required: {_UPLOAD_BODY}"}])
        await run_in_threadpool(ingest.run_exists, context.db, run)
        try:
            size, digest = await context.store.save(run, path, request.stream(),
                                                     context.config.max_upload_bytes)
        except ClientDisconnect:
            raise HTTPException(400, "the client went away during the upload")
        return await run_in_threadpool(ingest.record_file, context.db, run, path, size, digest)

    @app.get("/api/v1/runs/{run}/files/{path:path}", tags=["files"], response_class=FileResponse,
             responses={200: {"content": {**_BINARY, **previews.CONTENT},
                              "description": "the file"},
                        415: {"model": Problem, "description": "no safe preview for this type"}})
    def get_file(run: RunRefPath, path: ArtifactPath, context: Ctx, token: Any = Read,
                 preview: bool = False,
                 offset: Annotated[Int64 | None, Query(description="a text file's preview: "
                                                       "its whole lines from this byte "
                                                       "(negative: from the end)")] = None
                 ) -> Response:
        """Download one artifact file; ``preview=1`` shows images and text inline, safely;
        ``offset`` follows a growing text file (``console.log``) by its lines."""
        with context.db.read() as conn:  # not the file list: a page may ask for many files
            run_id = query.find_run_id(conn, run)
        found = context.find_file(run_id, path)
        if found is None:
            raise HTTPException(404, f"run {run_id} has no file {path[:200]!r}")
        # an offset is a text preview by itself: a query parameter that only went with another
        # would be a rule the OpenAPI document cannot state (issue 15, item 14)
        if preview or offset is not None:
            return previews.preview(found, offset)
        # bytes to save, never a page to render: an uploaded .html or .svg cannot script
        # anything in a browser that opens the link
        return FileResponse(found, media_type="application/octet-stream", filename=found.name,
                            headers={"X-Content-Type-Options": "nosniff",
                                     "Content-Security-Policy": "sandbox"})


def _token_routes(app: FastAPI) -> None:
    @app.get("/api/v1/tokens", tags=["tokens"], response_model=TokenList,
             dependencies=[ServerOnly])
    def list_tokens(context: Ctx, token: Any = Admin) -> dict[str, Any]:
        """Every token's name, scope and dates (never the token)."""
        return {"tokens": auth.list_tokens(context.db)}

    @app.post("/api/v1/tokens", tags=["tokens"], response_model=TokenCreated, status_code=201,
              dependencies=[ServerOnly])
    def create_token(body: TokenIn, context: Ctx, token: Any = Admin) -> dict[str, Any]:
        """A new token; the response is the only time it is shown."""
        try:
            secret, record = auth.create_token(context.db, body.name, body.scope)
        except ValueError as exc:
            raise HTTPException(409, str(exc))
        return {**record, "token": secret}

    @app.delete("/api/v1/tokens/{name}", tags=["tokens"], response_model=TokenList,
                dependencies=[ServerOnly])
    def revoke_token(name: Annotated[str, Path(max_length=100)], context: Ctx,
                     token: Any = Admin) -> dict[str, Any]:
        """Revoke the active token(s) with this name; they are refused from now on."""
        try:
            auth.revoke_token(context.db, name)
        except LookupError as exc:
            raise HTTPException(404, str(exc))
        return {"tokens": [t for t in auth.list_tokens(context.db) if t["name"] == name]}


class AsciiJSONResponse(JSONResponse):
    """JSON with non-ASCII escaped: safe for any string a client sent, lone surrogates too."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False,
                          separators=(",", ":")).encode("ascii")


def _error_handlers(app: FastAPI) -> None:
    def reply(status: int, headers: dict[str, str] | None = None) -> Any:
        async def handler(request: Request, exc: Exception) -> JSONResponse:
            return AsciiJSONResponse({"detail": str(exc)}, status, headers=headers)
        return handler

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        # FastAPI's own handler echoes the input back, which fails on a lone surrogate;
        # the location and the message say what was wrong without it.
        errors = [{k: e[k] for k in ("type", "loc", "msg") if k in e}
                  for e in exc.errors()]  # type: ignore[attr-defined]
        return AsciiJSONResponse({"detail": jsonable_encoder(errors)}, 422)

    app.add_exception_handler(RequestValidationError, invalid)

    async def not_allowed(request: Request, exc: Exception) -> JSONResponse:
        # Starlette names only the first route that matched the path; Allow lists them all.
        # Under /api/ only the pages' fallback matched: no endpoint is there (a client whose
        # URL holds the API path twice must read 404, not "try GET")
        allowed = web.allowed_methods(request)
        if not allowed:
            return AsciiJSONResponse({"detail": f"no endpoint {request.url.path[:200]}"}, 404)
        return AsciiJSONResponse({"detail": "Method Not Allowed"}, 405,
                                 headers={"Allow": ", ".join(allowed)})

    app.add_exception_handler(405, not_allowed)
    app.add_exception_handler(NoSuchRun, reply(404))
    app.add_exception_handler(AmbiguousPrefix, reply(400))
    app.add_exception_handler(BadPageToken, reply(400))
    app.add_exception_handler(PathRejected, reply(400))
    app.add_exception_handler(StorageConflict, reply(409))
    app.add_exception_handler(TooLarge, reply(413))

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", str(exc).splitlines()[0] if str(exc) else exc)
        return JSONResponse({"detail": "the database is busy or unavailable; retry later"}, 503,
                            headers={"Retry-After": "2"})

    app.add_exception_handler(OperationalError, unavailable)
    app.add_exception_handler(PoolTimeout, unavailable)
