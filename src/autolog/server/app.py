"""The ASGI application: routes, authentication, error mapping.

Every route but ``/healthz`` (liveness) needs a bearer token with the right scope, the OpenAPI
document included.
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

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.requests import ClientDisconnect

from .._version import __version__
from . import auth, ingest, media, query
from .db import Database
from .errors import AmbiguousPrefix, BadPageToken, NoSuchRun
from .guard import Guard
from .schemas import (
    MAX_POINTS_PER_BATCH,
    RUN_ID_PATTERN,
    ArtifactIn,
    BatchIn,
    BatchOut,
    FileList,
    FileOut,
    Filter,
    History,
    Key,
    ModelIn,
    Problem,
    Project,
    RunDetail,
    RunIn,
    RunPage,
    RunSummary,
    ServerInfo,
    Status,
    TokenCreated,
    TokenIn,
    TokenList,
)
from .settings import ServerConfig
from .storage import ArtifactStore, PathRejected, StorageConflict, TooLarge

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


class Context:
    """What routes share: the configuration, the database, the artifact store."""

    def __init__(self, config: ServerConfig):
        self.config = config
        self.db = Database(config.db, pool_size=config.pool_size)
        self.revision = self.db.migrate()
        self.store = ArtifactStore(config.artifacts)


def _context(request: Request) -> Context:
    context: Context = request.app.state.context
    return context


_bearer = HTTPBearer(auto_error=False,
                     description="a token made with `autolog server token create NAME`")


Bearer = Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]


def _scope(needed: str) -> Callable[..., dict[str, Any]]:
    def check(request: Request, credentials: Bearer) -> dict[str, Any]:
        context = _context(request)
        if not context.config.auth:
            return {"name": "anonymous", "scope": "admin"}
        if credentials is None:
            raise HTTPException(401, "missing bearer token: send 'Authorization: Bearer "
                                "<token>' (AUTOLOG_HTTP_TOKEN for the http backend)",
                                headers={"WWW-Authenticate": "Bearer"})
        token = auth.verify(context.db, credentials.credentials)
        if token is None:
            raise HTTPException(401, "unknown or revoked token",
                                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if not auth.allows(token["scope"], needed):
            raise HTTPException(403, f"token {token['name']!r} has scope {token['scope']!r}; "
                                f"this needs {needed!r}")
        return token

    return check


Read = Depends(_scope("read"))
Write = Depends(_scope("write"))
Admin = Depends(_scope("admin"))
Ctx = Annotated[Context, Depends(_context)]


def create_app(config: ServerConfig | None = None) -> FastAPI:
    """The server application; migrates the database schema before it returns."""
    config = config or ServerConfig()
    context = Context(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        context.db.dispose()

    app = FastAPI(title="autolog server", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=lifespan, responses=_ERRORS,
                  description="Runs recorded by autolog's http backend: ingestion and reading.")
    app.state.context = context
    _routes(app)
    _error_handlers(app)
    app.add_middleware(Guard, max_in_flight=config.max_in_flight,
                       max_body=config.max_request_bytes, max_upload=config.max_upload_bytes)
    return app


def app_from_environ() -> FastAPI:
    """The factory uvicorn's worker processes call (``--workers N``)."""
    return create_app(ServerConfig.from_environ())


def _routes(app: FastAPI) -> None:
    _health_routes(app)
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
                  limit: Annotated[int, Query(ge=1, le=1000)] = 50,
                  page_token: Annotated[str | None, Query(max_length=500)] = None
                  ) -> dict[str, Any]:
        """Runs, newest first, filtered by project, status and tags; paged."""
        rows, token_out = query.list_runs(context.db, project=project, status=status,
                                          tag_filters=[_tag_filter(t) for t in tag],
                                          limit=limit, page_token=page_token)
        return {"runs": rows, "next_page_token": token_out}

    @app.put("/api/v1/runs/{run_id}", tags=["ingest"], response_model=RunSummary)
    def put_run(run_id: RunIdPath, body: RunIn, context: Ctx, token: Any = Write
                ) -> dict[str, Any]:
        """Create the run, or update the fields given (idempotent)."""
        ingest.upsert_run(context.db, run_id, body)
        return query.get_run(context.db, run_id)

    @app.get("/api/v1/runs/{run}", tags=["runs"], response_model=RunDetail)
    def get_run(run: RunRefPath, context: Ctx, token: Any = Read) -> dict[str, Any]:
        """One run by id or unique id prefix: params, tags, last metrics, artifacts, models."""
        return query.get_run(context.db, run)

    @app.post("/api/v1/runs/{run_id}/batches", tags=["ingest"], response_model=BatchOut)
    def post_batch(run_id: RunIdPath, batch: BatchIn, context: Ctx, token: Any = Write
                   ) -> dict[str, Any]:
        """Params, tags and metric points; a batch whose key was stored before is skipped."""
        stored = ingest.store_batch(context.db, run_id, batch)
        return {"run_id": run_id, "stored": stored, "events": batch.events()}

    @app.get("/api/v1/runs/{run}/history", tags=["runs"], response_model=History)
    def get_history(run: RunRefPath, key: Annotated[Key, Query()], context: Ctx,
                    token: Any = Read,
                    max_points: Annotated[int | None, Query(ge=2, le=1_000_000)] = None
                    ) -> JSONResponse:
        """A metric's points by step; ``max_points`` downsamples (first, last, min/max)."""
        return JSONResponse(query.history(context.db, run, key, max_points))

    @app.post("/api/v1/runs/{run_id}/artifacts", tags=["ingest"], response_model=RunSummary)
    def post_artifact(run_id: RunIdPath, body: ArtifactIn, context: Ctx, token: Any = Write
                      ) -> dict[str, Any]:
        """Record that the run logged ``name`` (its files are uploaded under /files)."""
        ingest.record_artifact(context.db, run_id, body.paths())
        return query.get_run(context.db, run_id)

    @app.post("/api/v1/runs/{run_id}/models", tags=["ingest"], response_model=RunSummary)
    def post_model(run_id: RunIdPath, body: ModelIn, context: Ctx, token: Any = Write
                   ) -> dict[str, Any]:
        """Record a model's spec under its name (its files are uploaded under /files)."""
        ingest.record_model(context.db, run_id, body)
        return query.get_run(context.db, run_id)


def _media_routes(app: FastAPI) -> None:
    @app.post("/api/v1/runs/{run_id}/media", tags=["ingest"], response_model=media.MediaOut)
    def post_media(run_id: RunIdPath, body: media.MediaIn, context: Ctx, token: Any = Write
                   ) -> dict[str, Any]:
        """Record a media item (its files are uploaded under /files); the same ``path`` sent
        again replaces the record."""
        return media.record_media(context.db, run_id, body)

    @app.get("/api/v1/runs/{run}/media", tags=["runs"], response_model=media.MediaList)
    def get_media(run: RunRefPath, context: Ctx, token: Any = Read,
                  key: Annotated[Key | None, Query()] = None,
                  kind: Annotated[media.MediaKind | None, Query()] = None) -> dict[str, Any]:
        """The run's media by key and step: images over steps, histograms over steps, tables,
        texts, evaluation plots (each with its file under /files)."""
        return media.list_media(context.db, run, key, kind)


def _tag_filter(raw: str) -> tuple[str, str]:
    key, sep, value = raw.partition("=")
    if not sep or not key:
        raise HTTPException(400, f"tag filter {raw[:100]!r}: use key=value")
    return key, value


_BINARY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


def _file_routes(app: FastAPI) -> None:
    @app.get("/api/v1/runs/{run}/files", tags=["files"], response_model=FileList)
    def list_files(run: RunRefPath, context: Ctx, token: Any = Read) -> dict[str, Any]:
        """The run's stored artifact files."""
        return {"files": query.list_files(context.db, run)[1]}

    @app.put("/api/v1/runs/{run_id}/files/{path:path}", tags=["files"], response_model=FileOut,
             openapi_extra={"requestBody": {"required": True, "content": _BINARY}})
    async def put_file(run_id: RunIdPath, path: str, request: Request, context: Ctx,
                       token: Any = Write) -> dict[str, Any]:
        """Upload one artifact file, streamed; the same path again replaces it."""
        await run_in_threadpool(ingest.run_exists, context.db, run_id)
        try:
            size, digest = await context.store.save(run_id, path, request.stream(),
                                                     context.config.max_upload_bytes)
        except ClientDisconnect:
            raise HTTPException(400, "the client went away during the upload")
        return await run_in_threadpool(ingest.record_file, context.db, run_id, path, size,
                                       digest)

    @app.get("/api/v1/runs/{run}/files/{path:path}", tags=["files"], response_class=FileResponse,
             responses={200: {"content": _BINARY, "description": "the file"}})
    def get_file(run: RunRefPath, path: str, context: Ctx, token: Any = Read) -> FileResponse:
        """Download one artifact file."""
        run_id = query.list_files(context.db, run)[0]
        found = context.store.existing(run_id, path)
        if found is None:
            raise HTTPException(404, f"run {run_id} has no file {path[:200]!r}")
        # bytes to save, never a page to render: an uploaded .html or .svg cannot script
        # anything in a browser that opens the link
        return FileResponse(found, media_type="application/octet-stream", filename=found.name,
                            headers={"X-Content-Type-Options": "nosniff"})


def _token_routes(app: FastAPI) -> None:
    @app.get("/api/v1/tokens", tags=["tokens"], response_model=TokenList)
    def list_tokens(context: Ctx, token: Any = Admin) -> dict[str, Any]:
        """Every token's name, scope and dates (never the token)."""
        return {"tokens": auth.list_tokens(context.db)}

    @app.post("/api/v1/tokens", tags=["tokens"], response_model=TokenCreated, status_code=201)
    def create_token(body: TokenIn, context: Ctx, token: Any = Admin) -> dict[str, Any]:
        """A new token; the response is the only time it is shown."""
        try:
            secret, record = auth.create_token(context.db, body.name, body.scope)
        except ValueError as exc:
            raise HTTPException(409, str(exc))
        return {**record, "token": secret}

    @app.delete("/api/v1/tokens/{name}", tags=["tokens"], response_model=TokenList)
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
