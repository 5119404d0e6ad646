"""Reading runs back: one run, projects, keys, a metric's history (downsampled on request).

The runs table itself is :mod:`.search`. Its default order also has keyset pages over
``(start_time, id)``, newest first: the ``next_page_token`` names the last run of a page, so a
page never repeats or skips a run when new runs arrive meanwhile.

Downsampling keeps the shape a chart needs: the first and the last point, and for each of
``(max_points - 2) / 2`` equal buckets of the points in between, the minimum and the maximum (in
their original order), so spikes survive. It streams over the points; memory is O(max_points).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, literal, select, text

from ..headlines import headline
from .errors import AmbiguousPrefix, BadPageToken, NoSuchRun
from .search import page_rows
from .tables import (
    artifacts,
    files,
    latest_metrics,
    metric_out,
    metrics,
    models,
    params,
    runs,
    tags,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from .db import Database

__all__ = ["decode_token", "downsample", "encode_token", "get_run", "history", "keys",
           "list_files", "projects", "run_detail"]


Point = tuple[int, Any, int]  # step, stored value (None for NaN), timestamp


def encode_token(start: int, run_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([start, run_id]).encode()).decode().rstrip("=")


def decode_token(token: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        start, run_id = json.loads(raw)
    except (ValueError, TypeError, binascii.Error):
        raise BadPageToken(f"page_token {token[:40]!r} is not one this server issued")
    if type(start) is not int or not isinstance(run_id, str) or not -2**63 <= start < 2**63:
        raise BadPageToken(f"page_token {token[:40]!r} is not one this server issued")
    return start, run_id


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
    """The ``autolog show --json`` shape of one run, plus the UI's fields and metric summary."""
    with db.read() as conn:
        run_id = find_run_id(conn, id_or_prefix)
        return run_detail(conn, run_id)


def run_detail(conn: Connection, run_id: str) -> dict[str, Any]:
    row = conn.execute(select(runs).where(runs.c.id == run_id)).mappings().one()
    detail = page_rows(conn, [dict(row)], [])[0]
    detail["params"] = {k: json.loads(v) for k, v in conn.execute(
        select(params.c.key, params.c.value).where(params.c.run_id == run_id)
        .order_by(params.c.key))}
    detail["artifacts"] = list(conn.execute(
        select(artifacts.c.name).where(artifacts.c.run_id == run_id)
        .order_by(artifacts.c.id)).scalars())
    detail["models"] = {name: json.loads(spec) for name, spec in conn.execute(
        select(models.c.name, models.c.spec).where(models.c.run_id == run_id)
        .order_by(models.c.name))}
    c = latest_metrics.c
    detail["metric_summary"] = {
        key: {"last": metric_out(last), "min": _extreme(low), "max": _extreme(high),
              "step": step, "count": count}
        for key, last, low, high, step, count in conn.execute(
            select(c.key, c.value, c.vmin, c.vmax, c.step, c.count)
            .where(c.run_id == run_id).order_by(c.key))}
    return detail


def _extreme(value: float | None) -> Any:
    return None if value is None else metric_out(value)


def projects(db: Database) -> list[dict[str, Any]]:
    """Every project with its (non-deleted) runs and latest start, most recent first."""
    query = (select(runs.c.project, func.count(), func.max(runs.c.start_time))
             .where(runs.c.deleted.is_(None)).group_by(runs.c.project)
             .order_by(func.max(runs.c.start_time).desc(), runs.c.project))
    with db.read() as conn:
        return [{"name": name, "runs": int(count), "last_start": last}
                for name, count, last in conn.execute(query)]


def keys(db: Database, project: str | None, parent: str | None = None) -> dict[str, list[str]]:
    """The distinct param, metric and tag keys of a project's non-deleted runs, sorted, and the
    runs table's default columns (:func:`default_columns`; of ``parent``'s children when the
    table lists them).

    Distinct keys come from a loose index scan (a recursive query hopping from one key to the
    next through the ``(key, ...)`` index), so it costs one index probe per key rather than a
    scan of every row; each key is then kept if one non-deleted run of the project has it.
    """
    out: dict[str, list[str]] = {}
    with db.read() as conn:
        for name, table in (("params", params), ("metrics", latest_metrics), ("tags", tags)):
            candidates = conn.execute(text(_DISTINCT_KEYS.format(table=table.name))).scalars()
            out[name] = [key for key in candidates if _used(conn, table, key, project)]
        out["columns"] = default_columns(conn, project, parent)
    return out


#: how many of the newest runs the default columns are drawn from, and how many there are
DEFAULT_COLUMNS_SAMPLE, DEFAULT_COLUMNS = 100, 4


def default_columns(conn: Connection, project: str | None, parent: str | None = None
                    ) -> list[str]:
    """What the runs table shows before any column is picked: the last value of the headline
    metrics (:mod:`autolog.headlines`, as ``autolog runs`` picks them) of the project's newest
    top-level runs.

    Drawn from the newest :data:`DEFAULT_COLUMNS_SAMPLE` runs that are neither deleted nor
    children (``parent``'s children instead when it is given, as the table then lists them; a
    sample, so the cost is the same for ten runs or a million): the keys at least
    half of them have first, so that the columns are mostly filled in, each group in headline
    order (validation and test quality first; times, learning rates and epochs only when
    nothing else was logged; hardware, per-fold and rank metrics never). At most
    :data:`DEFAULT_COLUMNS`, as ``metrics.KEY`` column names.
    """
    newest = select(runs.c.id).where(runs.c.deleted.is_(None), runs.c.parent_id == parent
                                     if parent is not None else runs.c.parent_id.is_(None))
    if project is not None:
        newest = newest.where(runs.c.project == project)
    sample = newest.order_by(runs.c.start_time.desc(), runs.c.id.desc()) \
        .limit(DEFAULT_COLUMNS_SAMPLE).subquery()
    query = select(latest_metrics.c.key, func.count()) \
        .select_from(latest_metrics.join(sample, sample.c.id == latest_metrics.c.run_id)) \
        .where(~latest_metrics.c.key.startswith("system/", autoescape=True)) \
        .group_by(latest_metrics.c.key)
    counts: dict[str, int] = {key: int(count) for key, count in conn.execute(query)}
    if not counts:
        return []
    sampled = conn.execute(select(func.count()).select_from(sample)).scalar_one()
    # a stable sort: the keys half the runs have first, headline order within each part
    chosen = sorted(headline(counts), key=lambda key: 2 * counts[key] < sampled)
    return [f"metrics.{key}" for key in chosen[:DEFAULT_COLUMNS]]


_DISTINCT_KEYS = """
WITH RECURSIVE k(key) AS (
    SELECT min(key) FROM {table}
    UNION ALL
    SELECT (SELECT min(key) FROM {table} WHERE key > k.key) FROM k WHERE k.key IS NOT NULL
)
SELECT key FROM k WHERE key IS NOT NULL
"""


def _used(conn: Connection, table: Any, key: str, project: str | None) -> bool:
    where = [table.c.key == key, runs.c.deleted.is_(None)]
    if project is not None:
        where.append(runs.c.project == project)
    query = select(literal(1)).select_from(table.join(runs, runs.c.id == table.c.run_id)) \
        .where(*where).limit(1)
    return conn.execute(query).first() is not None


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
    values = [metric_out(p[1]) for p in points]
    return {"run_id": run_id, "key": key, "total": total, "downsampled": sampled,
            "steps": [p[0] for p in points], "values": values,
            "timestamps": [p[2] for p in points], "min": values, "max": values}


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
