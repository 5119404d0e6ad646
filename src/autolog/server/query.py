"""Reading runs back: pages of runs, one run, a metric's history (downsampled on request).

Pages are keyset pages over ``(start_time, id)``, newest first: the ``next_page_token`` names
the last run of a page, so a page never repeats or skips a run when new runs arrive meanwhile.

Downsampling keeps the shape a chart needs: the first and the last point, and for each of
``(max_points - 2) / 2`` equal buckets of the points in between, the minimum and the maximum (in
their original order), so spikes survive. It streams over the points; memory is O(max_points).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, exists, func, or_, select

from .errors import AmbiguousPrefix, BadPageToken, NoSuchRun
from .schemas import metric_out
from .tables import artifacts, files, latest_metrics, metrics, models, params, runs, tags

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from .db import Database

__all__ = ["downsample", "get_run", "history", "list_files",
           "list_runs"]


Point = tuple[int, Any, int]  # step, stored value (None for NaN), timestamp


def list_runs(db: Database, *, project: str | None = None, status: str | None = None,
              tag_filters: Iterable[tuple[str, str]] = (), limit: int = 50,
              page_token: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    query = select(runs)
    if project is not None:
        query = query.where(runs.c.project == project)
    if status is not None:
        query = query.where(runs.c.status == status)
    for key, value in tag_filters:
        query = query.where(exists().where(tags.c.run_id == runs.c.id, tags.c.key == key,
                                           tags.c.value == value))
    if page_token:
        start, run_id = _decode_token(page_token)
        query = query.where(or_(runs.c.start_time < start,
                                and_(runs.c.start_time == start, runs.c.id < run_id)))
    query = query.order_by(runs.c.start_time.desc(), runs.c.id.desc()).limit(limit + 1)
    with db.read() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
        more = len(rows) > limit
        rows = rows[:limit]
        last = _latest(conn, [r["id"] for r in rows])
    summaries = [_summary(r, last.get(r["id"], {})) for r in rows]
    token = _encode_token(rows[-1]["start_time"], rows[-1]["id"]) if more and rows else None
    return summaries, token


def _encode_token(start: int, run_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([start, run_id]).encode()).decode().rstrip("=")


def _decode_token(token: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        start, run_id = json.loads(raw)
    except (ValueError, TypeError, binascii.Error):
        raise BadPageToken(f"page_token {token[:40]!r} is not one this server issued")
    if type(start) is not int or not isinstance(run_id, str) or not -2**63 <= start < 2**63:
        raise BadPageToken(f"page_token {token[:40]!r} is not one this server issued")
    return start, run_id


def _latest(conn: Connection, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    if not run_ids:
        return found
    query = (select(latest_metrics.c.run_id, latest_metrics.c.key, latest_metrics.c.value)
             .where(latest_metrics.c.run_id.in_(run_ids)).order_by(latest_metrics.c.key))
    for run_id, key, value in conn.execute(query):
        found.setdefault(run_id, {})[key] = metric_out(value)
    return found


def _summary(row: dict[str, Any], last: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "project": row["project"],
            "status": row["status"], "parent_id": row["parent_id"],
            "start_time": row["start_time"], "end_time": row["end_time"], "metrics": last}


def find_run_id(conn: Connection, id_or_prefix: str) -> str:
    """The full id of a run given by id or unique prefix (lower-case hex, checked by the API)."""
    prefix = id_or_prefix.lower()
    query = select(runs.c.id).where(runs.c.id.startswith(prefix, autoescape=True)).limit(2)
    found = [row[0] for row in conn.execute(query)]
    if prefix in found or len(found) == 1:
        return prefix if prefix in found else found[0]
    if not found:
        raise NoSuchRun(f"no run {id_or_prefix!r} on this server")
    raise AmbiguousPrefix(f"{id_or_prefix!r} matches several runs; give more of the id")


def get_run(db: Database, id_or_prefix: str) -> dict[str, Any]:
    """The ``autolog show --json`` shape of one run."""
    with db.read() as conn:
        run_id = find_run_id(conn, id_or_prefix)
        row = conn.execute(select(runs).where(runs.c.id == run_id)).mappings().one()
        detail = _summary(dict(row), _latest(conn, [run_id]).get(run_id, {}))
        detail["params"] = {k: json.loads(v) for k, v in conn.execute(
            select(params.c.key, params.c.value).where(params.c.run_id == run_id)
            .order_by(params.c.key))}
        detail["tags"] = {k: v for k, v in conn.execute(
            select(tags.c.key, tags.c.value).where(tags.c.run_id == run_id).order_by(tags.c.key))}
        detail["artifacts"] = list(conn.execute(
            select(artifacts.c.name).where(artifacts.c.run_id == run_id)
            .order_by(artifacts.c.id)).scalars())
        detail["models"] = {name: json.loads(spec) for name, spec in conn.execute(
            select(models.c.name, models.c.spec).where(models.c.run_id == run_id)
            .order_by(models.c.name))}
    return detail


def history(db: Database, id_or_prefix: str, key: str,
            max_points: int | None = None) -> dict[str, Any]:
    """One metric's points ordered by step (ties in logging order), downsampled if asked."""
    with db.read() as conn:
        run_id = find_run_id(conn, id_or_prefix)
        where = (metrics.c.run_id == run_id, metrics.c.key == key)
        total = conn.execute(select(func.count()).select_from(metrics).where(*where)).scalar_one()
        query = (select(metrics.c.step, metrics.c.value, metrics.c.timestamp).where(*where)
                 .order_by(metrics.c.step, metrics.c.id))
        rows: Iterator[Any] = iter(conn.execution_options(yield_per=10_000).execute(query))
        sampled = max_points is not None and total > max_points
        points = downsample(rows, total, max_points) if sampled else list(rows)  # type: ignore[arg-type]
    return {"run_id": run_id, "key": key, "total": total, "downsampled": sampled,
            "steps": [p[0] for p in points], "values": [metric_out(p[1]) for p in points],
            "timestamps": [p[2] for p in points]}


def downsample(points: Iterator[Point], total: int, max_points: int) -> list[Point]:
    """At most ``max_points`` (>= 2) of ``total`` points: first, last, min/max per bucket."""
    first = next(points)
    buckets = (max_points - 2) // 2
    inner = total - 2
    out: list[Point] = [first]
    if buckets == 0:  # room for the ends only
        *_, last = points
        return [first, last]
    current = -1
    low: tuple[int, Point] | None = None
    high: tuple[int, Point] | None = None
    for index, point in enumerate(points):
        if index == inner:  # the last point
            _flush(out, low, high)
            out.append(point)
            return out
        bucket = index * buckets // inner
        if bucket != current:
            _flush(out, low, high)
            current, low, high = bucket, (index, point), (index, point)
            continue
        if _beats(point[1], low[1][1], lower=True):  # type: ignore[index]
            low = (index, point)
        if _beats(point[1], high[1][1], lower=False):  # type: ignore[index]
            high = (index, point)
    _flush(out, low, high)
    return out


def _beats(new: float | None, current: float | None, *, lower: bool) -> bool:
    """Is ``new`` a new minimum (``lower``) or maximum? None (NaN) never beats a number, and
    any number beats it, so a bucket keeps a NaN only when it holds nothing else."""
    if new is None:
        return False
    if current is None:
        return True
    return new < current if lower else new > current


def _flush(out: list[Point], low: tuple[int, Point] | None,
           high: tuple[int, Point] | None) -> None:
    if low is None or high is None:
        return
    if low[0] == high[0]:
        out.append(low[1])
    else:
        out.extend(p for _, p in sorted((low, high), key=lambda item: item[0]))


def list_files(db: Database, id_or_prefix: str) -> tuple[str, list[dict[str, Any]]]:
    with db.read() as conn:
        run_id = find_run_id(conn, id_or_prefix)
        rows = conn.execute(select(files.c.path, files.c.size, files.c.sha256, files.c.updated)
                            .where(files.c.run_id == run_id).order_by(files.c.path)).mappings()
        return run_id, [dict(r) for r in rows]
