"""The ``http`` backend: runs sent to an ``autolog server``; and :class:`ServerClient` to read them.

``AUTOLOG_BACKEND=http`` with ``AUTOLOG_HTTP_URL`` (``http://host:5005``) and
``AUTOLOG_HTTP_TOKEN`` (a ``write`` token from ``autolog server token create``). Like every
backend it runs on its own delivery worker, never on the training thread, from the run's
journal:

- one ``requests.Session`` (keep-alive) per backend; JSON bodies over 1 KiB gzip-compressed;
- a failed request is retried inside the call a few times (exponential backoff with jitter, or
  the server's ``Retry-After``), bounded to about ten seconds; then the call raises and the
  delivery worker retries later from the same journal position, so nothing is lost while the
  server is down, and ``autolog sync`` finishes what a finished process left;
- each batch carries its journal byte range (plus a part number when a large batch is split)
  as an idempotency key: the server stores a retried batch once, even when the retry comes from
  ``autolog sync`` in another process;
- artifacts and models are uploaded file by file, streamed; the same path uploaded again
  replaces the file, so a retried upload is harmless. A file larger than the server accepts is
  skipped with one warning, so it cannot hold up the rest of the run. Media (images,
  histograms, tables, texts, plots) are uploaded the same way and recorded
  (``POST .../media``), for the UI;
- a refused token (401), a read-only one (403) and a URL whose path leads nowhere (404 where
  the API must answer) are permanent: they raise :class:`BackendUnavailable` with the fix, so
  delivery says it once and stops trying (the journal keeps everything for ``autolog sync``);
  a server that is down or overloaded is temporary: retried later.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from .._version import __version__
from ..errors import AutologError, ConfigError
from ..hookspecs import hookimpl
from ..journal.codec import float_from_json, float_to_json
from ._files import import_sdk
from .base import Backend, BackendUnavailable, Batch, Media, Metric, RunRef

if TYPE_CHECKING:
    import requests

    from ..config import Settings

__all__ = ["HttpBackend", "ServerAuthError", "ServerBusy", "ServerClient", "ServerError",
           "ServerNotFound", "ServerRejected", "ServerUnreachable", "WrongServerUrl"]

log = logging.getLogger("autolog")

API = "/api/v1"
PART_POINTS = 20_000  # metric points per request: a large batch is sent in parts
GZIP_OVER = 1024  # bytes of JSON above which a body is compressed
RETRYABLE = (429, 502, 503, 504)


class ServerUnreachable(AutologError, ConnectionError):
    """No answer from the server: it is down, or AUTOLOG_HTTP_URL is wrong."""


class ServerBusy(AutologError, ConnectionError):
    """The server answered 429 / 503 (overloaded, database unavailable) and kept doing so."""


class ServerAuthError(AutologError, BackendUnavailable, PermissionError):
    """The server refused the token (401) or its scope (403): permanent until the token is
    fixed."""


class ServerRejected(AutologError, ValueError):
    """The server refused the request as invalid (a 4xx); retrying the same data will not help."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class ServerError(AutologError, RuntimeError):
    """The server failed (a 5xx that is not an overload); the worker retries later."""


class ServerNotFound(AutologError, LookupError):
    """The server has no such run or file (404)."""


class WrongServerUrl(AutologError, BackendUnavailable, LookupError):
    """A route the server always has answered 404: AUTOLOG_HTTP_URL's path is wrong."""


@hookimpl
def autolog_register_backends(register: Callable[[type[Backend]], None]) -> None:
    register(HttpBackend)


def _check_url(url: str | None, variable: str) -> str:
    if not url:
        raise ConfigError(f"the http backend needs {variable}, the autolog server's URL "
                          "(e.g. http://127.0.0.1:5005)")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{variable}={url!r} must start with http:// or https://")
    return url.rstrip("/")


class Transport:
    """Requests to one server, with retries bounded inside each call."""

    def __init__(self, url: str, token: str | None, *, attempts: int = 3,
                 backoff: float = 0.5, max_wait: float = 10.0,
                 timeout: tuple[float, float] = (5.0, 60.0)):
        import_sdk("requests", "http", "server")  # a dependency: missing only in a broken env
        import requests
        from requests.adapters import HTTPAdapter

        self.url = url
        self.attempts = attempts
        self.backoff = backoff
        self.max_wait = max_wait
        self.timeout = timeout
        self.session = requests.Session()
        self.session.mount("http://", HTTPAdapter(pool_connections=2, pool_maxsize=4))
        self.session.mount("https://", HTTPAdapter(pool_connections=2, pool_maxsize=4))
        self.session.headers["User-Agent"] = f"autolog/{__version__}"
        self.has_token = bool(token)
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        self.session.close()

    def json(self, method: str, path: str, body: Any = None,
             params: dict[str, Any] | None = None) -> Any:
        """Send ``body`` as (gzip-compressed) JSON; return the decoded JSON answer."""
        headers: dict[str, str] = {}
        data: bytes | None = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
            if len(data) > GZIP_OVER:
                data = gzip.compress(data, compresslevel=5)
                headers["Content-Encoding"] = "gzip"
        payload = data
        response = self.request(method, path, lambda: payload, headers=headers, params=params)
        return response.json()

    def request(self, method: str, path: str, body: Callable[[], Any] | None = None,
                headers: dict[str, str] | None = None, params: dict[str, Any] | None = None,
                stream: bool = False) -> requests.Response:
        """One call: retried on network errors, 429 and 5xx overloads, then raised."""
        import requests

        url = self.url + path
        for attempt in range(self.attempts):
            wait = self.backoff * 2 ** attempt
            data = body() if body is not None else None
            try:
                response = self.session.request(method, url, data=data, headers=headers,
                                                params=params, timeout=self.timeout,
                                                stream=stream)
            except requests.RequestException as exc:
                error: Exception = ServerUnreachable(
                    f"cannot reach the autolog server at {self.url} ({type(exc).__name__}: "
                    f"{_short(exc)}); is it running, and is AUTOLOG_HTTP_URL right?")
            else:
                if response.status_code < 400:
                    return response
                error = self._error(response)
                if response.status_code not in RETRYABLE:
                    raise error
                wait = _retry_after(response, wait)
            finally:
                close = getattr(data, "close", None)
                if close is not None:
                    close()  # a file being uploaded
            if attempt + 1 < self.attempts:
                time.sleep(min(wait, self.max_wait) * random.uniform(0.75, 1.25))
        raise error

    def _error(self, response: requests.Response) -> Exception:
        status = response.status_code
        detail = _detail(response)
        where = f"the autolog server at {self.url}"
        if status == 401:
            hint = ("set AUTOLOG_HTTP_TOKEN to a token from `autolog server token create`"
                    if not self.has_token else "check AUTOLOG_HTTP_TOKEN (revoked or mistyped?)")
            return ServerAuthError(f"{where} refused the token (401: {detail}); {hint}")
        if status == 403:
            hint = ("the token is read-only: the http backend needs a 'write' token "
                    "(`autolog server token create NAME --scope write`)"
                    if "scope 'read'" in detail else "the token's scope does not allow this")
            return ServerAuthError(f"{where} refused the token's scope (403: {detail}); {hint}")
        if status == 404:
            return ServerNotFound(detail)
        if status in RETRYABLE:
            return ServerBusy(f"{where} is overloaded or its database is unavailable "
                              f"({status}: {detail}); retrying later")
        if status >= 500:
            return ServerError(f"{where} failed ({status}: {detail})")
        return ServerRejected(f"{where} rejected the request ({status}: {detail})", status)


def _wrong_url(url: str, transport: Transport, detail: str) -> str:
    """The message for a URL whose API routes answer 404, with the URL that would work."""
    parts = urlsplit(url)
    root = f"{parts.scheme}://{parts.netloc}"
    path = parts.path.rstrip("/")
    fix = ""
    if path.endswith(API):
        fix = f"; the URL path should be {url[:-len(API)] or root} (without {API}: autolog adds it)"
    elif path and _is_autolog_server(transport, root):
        fix = f"; the URL path should be {root} (the server answers there)"
    elif not path:
        fix = "; is it an autolog server (`autolog server`)?"
    return (f"AUTOLOG_HTTP_URL={url} leads nowhere: the server answered 404 ({detail}) where "
            f"the autolog API must answer{fix}. Nothing is lost: the local journal keeps "
            "every run; once the URL is fixed, `autolog sync` delivers them.")


def _is_autolog_server(transport: Transport, root: str) -> bool:
    try:
        answer = transport.session.get(root + "/healthz", timeout=transport.timeout)
        return bool(answer.ok and answer.json().get("status") == "ok")
    except Exception:
        return False


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "..."


def _detail(response: requests.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    text = detail if isinstance(detail, str) else json.dumps(detail)
    return text[:500]


def _retry_after(response: requests.Response, default: float) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return default


# -- the backend ----------------------------------------------------------------------------------


class HttpBackend(Backend):
    """Sends runs to ``autolog server`` (see ``docs/backends/http.md``)."""

    name = "http"
    distributions = ()  # built in: autolog itself speaks to the server
    loads_sdk = False

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.url = _check_url(settings.http_url, "AUTOLOG_HTTP_URL")
        self._transport: Transport | None = None
        self._max_upload: int | None = None
        self._skipped: set[str] = set()

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            self._transport = Transport(self.url, self.settings.http_token)
        return self._transport

    def cursor_key(self) -> str:
        return "http-" + hashlib.sha256(self.url.encode("utf-8")).hexdigest()[:12]

    def start_run(self, run: RunRef) -> None:
        if run.state.get("url") == self.url:
            return  # created before: sending the start's name again would undo a rename
        self._create(run)

    def _create(self, run: RunRef) -> None:
        try:
            self.transport.json("PUT", f"{API}/runs/{run.id}", {
                "name": _text(run.name)[:MAX_NAME], "project": _text(run.project)[:MAX_PROJECT],
                "parent_id": run.parent_id, "start_time": run.start_time})
        except ServerNotFound as exc:  # this route always exists on an autolog server
            raise WrongServerUrl(_wrong_url(self.url, self.transport, str(exc))) from None
        run.state["url"] = self.url

    def log_batch(self, run: RunRef, batch: Batch) -> None:
        start, end = batch.journal_range
        for part, body in enumerate(_parts(self._within_limits(run, batch))):
            body.update(start=start, end=end, part=part)
            try:
                self.transport.json("POST", f"{API}/runs/{run.id}/batches", body)
            except ServerNotFound:  # the server lost the run (a new database): create it again
                self._create(run)
                self.transport.json("POST", f"{API}/runs/{run.id}/batches", body)

    def end_run(self, run: RunRef, status: str, end_time: int) -> None:
        self.transport.json("PUT", f"{API}/runs/{run.id}",
                            {"status": status, "end_time": end_time})

    def log_artifact(self, run: RunRef, local_path: Path, name: str) -> None:
        files = self._upload_tree(run, local_path, name)
        if files is None:  # gone, or too large for the server: said once, not listed
            return
        listed = files if local_path.is_dir() else []  # as the journal's artifact record
        try:
            self.transport.json("POST", f"{API}/runs/{run.id}/artifacts",
                                {"name": name, "files": listed})
        except ServerRejected as exc:
            self._skip(run, name, str(exc))

    def log_model(self, run: RunRef, local_path: Path, name: str, spec: dict[str, Any]) -> None:
        self._upload_tree(run, local_path, spec.get("path", name))
        try:
            self.transport.json("POST", f"{API}/runs/{run.id}/models",
                                {"name": name, "spec": spec})
        except ServerRejected as exc:
            self._skip(run, name, str(exc))

    # -- edits -------------------------------------------------------------------------------

    def rename_run(self, run: RunRef, name: str) -> None:
        self._edit(run, {"name": _text(name)[:MAX_NAME]})

    def delete_tags(self, run: RunRef, keys: list[str]) -> None:
        self._edit(run, {"remove_tags": [k for k in keys if _key_problem(k) is None]})

    def set_note(self, run: RunRef, text: str) -> None:
        self._edit(run, {"note": _text(text)})

    def delete_run(self, run: RunRef) -> None:
        self._edit(run, {"deleted": True})

    def restore_run(self, run: RunRef) -> None:
        self._edit(run, {"deleted": False})

    def resume_run(self, run: RunRef) -> None:
        self.transport.json("PUT", f"{API}/runs/{run.id}", {"status": "RUNNING"})

    def _edit(self, run: RunRef, body: dict[str, Any]) -> None:
        try:
            self.transport.json("PATCH", f"{API}/runs/{run.id}", body)
        except ServerRejected as exc:  # a server without edits (405), or a value it refuses
            self._skip(run, f"edit {sorted(body)}", str(exc), "edit")

    # -- media -----------------------------------------------------------------------------

    def log_media(self, run: RunRef, media: Media) -> None:
        """Upload the item's files, then record it; a server without media (an older
        version) lists the files as artifacts instead."""
        for name, path in media.files():
            if not path.is_file():
                self._skip(run, name, f"{path} is gone from the local run", "media")
                return
            if not self._upload(run, path, name):
                return
        body = {"kind": media.kind, "key": _text(media.key), "step": media.step,
                "time": media.timestamp, "path": media.name, "image": media.image_name,
                "meta": media.meta}
        try:
            self.transport.json("POST", f"{API}/runs/{run.id}/media", body)
        except ServerRejected as exc:
            self._skip(run, media.name, str(exc), "media")
        except ServerNotFound:
            for name, _ in media.files():
                self.transport.json("POST", f"{API}/runs/{run.id}/artifacts", {"name": name})

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    # -- files ------------------------------------------------------------------------------

    def _upload_tree(self, run: RunRef, local_path: Path, name: str) -> list[str] | None:
        """Upload a file, or every file under a directory; the remote paths, or None when the
        local copy is gone."""
        if local_path.is_dir():
            files = [(p, f"{name}/{p.relative_to(local_path).as_posix()}")
                     for p in sorted(local_path.rglob("*")) if p.is_file()]
        elif local_path.is_file():
            files = [(local_path, name)]
        else:
            self._skip(run, name, f"{local_path} is gone from the local run")
            return None
        uploaded = sorted(remote for path, remote in files if self._upload(run, path, remote))
        return uploaded if uploaded or not files else None

    def _upload(self, run: RunRef, path: Path, remote: str) -> bool:
        size = path.stat().st_size
        if size > self._upload_limit():
            self._skip(run, remote, f"{size} bytes is over the server's upload limit")
            return False
        try:
            self.transport.request(
                "PUT", f"{API}/runs/{run.id}/files/{quote(remote, safe='/')}",
                lambda: open(path, "rb"),  # noqa: SIM115 - closed by request()
                headers={"Content-Type": "application/octet-stream"})
        except ServerRejected as exc:  # a path or size the server will never take: said once
            self._skip(run, remote, str(exc))
            return False
        return True

    def _upload_limit(self) -> int:
        if self._max_upload is None:
            try:
                info = self.transport.json("GET", f"{API}/info")
                self._max_upload = int(info["max_upload_bytes"])
            except (ServerRejected, ServerNotFound, KeyError, TypeError, ValueError):
                self._max_upload = 2**63  # a server without /info: let it say 413 itself
        return self._max_upload

    def _skip(self, run: RunRef, name: str, why: str, what: str = "artifact") -> None:
        key = f"{run.id}/{what}/{name}"
        if key not in self._skipped:
            self._skipped.add(key)
            shown = name if len(name) <= 80 else name[:77] + "..."
            log.warning("autolog: the http backend skipped %s %r of run %s: %s (it stays in the "
                        "local run)", what, shown, run.id, why)

    def _within_limits(self, run: RunRef, batch: Batch) -> Batch:
        """The batch without what the server would refuse (said once per key), so one bad
        key never holds up the rest of the run."""
        clean = Batch(batch.journal_range[0])
        clean.journal_range = batch.journal_range
        for kind, source, target in (("param", batch.params, clean.params),
                                     ("tag", batch.tags, clean.tags)):
            for key, value in source.items():
                problem = _key_problem(key)
                if problem:
                    self._skip(run, key, problem, kind)
                else:
                    target[key] = _text(value) if isinstance(value, str) else value
        key_problems = {key: _key_problem(key) for key in {m.key for m in batch.metrics}}
        for m in batch.metrics:
            problem = key_problems[m.key] or _point_problem(m)
            if problem:
                self._skip(run, m.key, problem, "metric")
            else:
                clean.metrics.append(m)
        return clean


def _parts(batch: Batch) -> Iterator[dict[str, Any]]:
    """The batch as request bodies of at most PART_POINTS points; params and tags in the
    first. The split depends only on the batch, so a retry sends the same parts."""
    points = batch.metrics
    count = max(1, math.ceil(len(points) / PART_POINTS))
    for part in range(count):
        body: dict[str, Any] = {"metrics": _columns(points[part * PART_POINTS:
                                                           (part + 1) * PART_POINTS])}
        if part == 0:
            body["params"] = {k: _param(v) for k, v in batch.params.items()}
            body["tags"] = batch.tags
        yield body


def _columns(points: list[Metric]) -> dict[str, dict[str, list[Any]]]:
    columns: dict[str, dict[str, list[Any]]] = {}
    for m in points:
        column = columns.get(m.key)
        if column is None:
            column = columns[m.key] = {"steps": [], "values": [], "timestamps": []}
        column["steps"].append(m.step)
        column["values"].append(float_to_json(m.value))
        column["timestamps"].append(m.timestamp)
    return columns


def _param(value: Any) -> Any:
    return float_to_json(value) if isinstance(value, float) else value


MAX_KEY, MAX_KEY_BYTES, MAX_NAME, MAX_PROJECT = 500, 1000, 1000, 255
INT64 = 2**63 - 1


def _key_problem(key: str) -> str | None:
    """Why the server would refuse ``key`` (a param, tag or metric name), or None."""
    if len(key) > MAX_KEY:
        return f"names are limited to {MAX_KEY} characters"
    if "\x00" in key:
        return "names may not contain NUL characters"
    try:
        if len(key.encode("utf-8")) > MAX_KEY_BYTES:
            return f"names are limited to {MAX_KEY_BYTES} bytes of UTF-8"
    except UnicodeEncodeError:
        return "the name is not valid Unicode text"
    return None


def _point_problem(m: Metric) -> str | None:
    if not -INT64 - 1 <= m.step <= INT64:
        return f"step {m.step} does not fit 64 bits"
    if not 0 <= m.timestamp <= INT64:
        return f"timestamp {m.timestamp} is out of range"
    return None


def _text(value: str) -> str:
    """Text the server stores: NUL replaced, lone surrogates replaced."""
    value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


# -- reading back ---------------------------------------------------------------------------------


class ServerClient:
    """Read runs from an ``autolog server`` (``autolog runs --server URL``).

    Answers have the JSON shapes of ``autolog runs --json`` and ``autolog show --json``; metric
    values come back as floats (NaN and infinities included).
    """

    def __init__(self, url: str | None = None, token: str | None = None):
        url = url if url is not None else os.environ.get("AUTOLOG_HTTP_URL")
        token = token if token is not None else os.environ.get("AUTOLOG_HTTP_TOKEN")
        self.url = _check_url(url, "the server URL (--server or AUTOLOG_HTTP_URL)")
        self.transport = Transport(self.url, token or None, attempts=2)

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> ServerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, path: str, **params: Any) -> Any:
        try:
            return self.transport.json("GET", API + path, params=params)
        except ServerNotFound as exc:
            raise LookupError(str(exc)) from None

    def list_runs(self, project: str | None = None, limit: int | None = None,
                  status: str | None = None, tags: dict[str, str] | None = None
                  ) -> list[dict[str, Any]]:
        """Runs newest first, like ``autolog runs --json`` (``limit`` None: all of them)."""
        rows: list[dict[str, Any]] = []
        token = None
        filters = {"project": project, "status": status,
                   "tag": [f"{k}={v}" for k, v in (tags or {}).items()] or None}
        while limit is None or len(rows) < limit:
            page_size = 1000 if limit is None else min(1000, limit - len(rows))
            page = self._get("/runs", limit=page_size, page_token=token, all="true", **filters)
            rows.extend(_with_floats(_only(row, SUMMARY_KEYS)) for row in page["runs"])
            token = page["next_page_token"]
            if not token:
                break
        return rows

    def search(self, **query: Any) -> dict[str, Any]:
        """One page of the runs table, as the UI reads it (``GET /api/v1/runs``: ``filter``,
        ``sort``, ``columns``, ``parent``, ``all``, ``status``, ``project``, ``offset``,
        ``limit`` up to 1000): ``{"runs": [...], "total": N, ...}``."""
        params = {key: "true" if value is True else value for key, value in query.items()
                  if value is not None and value is not False}
        return dict(self._get("/runs", **params))

    def get_run(self, run_id_or_prefix: str) -> dict[str, Any]:
        """One run, like ``autolog show --json``."""
        return _with_floats(_only(self._get(f"/runs/{quote(run_id_or_prefix, safe='')}"),
                                  DETAIL_KEYS))

    def history(self, run_id: str, key: str,
                max_points: int | None = None) -> list[tuple[int, float, int]]:
        """``(step, value, timestamp_ms)`` of one metric, by step; downsampled if asked."""
        data = self._get(f"/runs/{quote(run_id, safe='')}/history", key=key,
                         max_points=max_points)
        return list(zip(data["steps"], map(float_from_json, data["values"]), data["timestamps"],
                        strict=True))

    def media(self, run_id: str, key: str | None = None,
              kind: str | None = None) -> list[dict[str, Any]]:
        """The run's media records (kind, key, step, time, path, image, meta), by key and
        step; ``download(run_id, record["path"])`` reads a file."""
        found = self._get(f"/runs/{quote(run_id, safe='')}/media", key=key, kind=kind)
        return list(found["media"])

    def files(self, run_id: str) -> list[dict[str, Any]]:
        return list(self._get(f"/runs/{quote(run_id, safe='')}/files")["files"])

    def download(self, run_id: str, path: str) -> bytes:
        """The content of one artifact file."""
        try:
            response = self.transport.request(
                "GET", f"{API}/runs/{quote(run_id, safe='')}/files/{quote(path, safe='/')}")
        except ServerNotFound as exc:
            raise LookupError(str(exc)) from None
        return response.content


#: the keys of ``autolog runs --json`` and ``autolog show --json`` (the server adds the UI's)
SUMMARY_KEYS = ("id", "name", "project", "status", "parent_id", "start_time", "end_time",
                "metrics")
DETAIL_KEYS = (*SUMMARY_KEYS, "params", "tags", "artifacts", "models", "note", "deleted")


def _only(row: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: row[key] for key in keys if key in row}


def _with_floats(row: dict[str, Any]) -> dict[str, Any]:
    row["metrics"] = {k: float_from_json(v) for k, v in row.get("metrics", {}).items()}
    return row
