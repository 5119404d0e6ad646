"""Writing a run's indexed rows: new runs in bulk, known runs by upsert, cursors, status.

Kept apart from :mod:`.index` (which decides what to read and when): these functions take an
open write transaction and the summaries :mod:`.deltas` read.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select, update

from ..journal.files import JOURNAL
from ..journal.reader import lock_is_held
from ..server import series
from ..server.ingest import param_row, tag_row
from ..server.media import media_row, store_media
from ..server.tables import (
    TEXT_PREFIX,
    artifacts,
    latest_metrics,
    media,
    metric_rollups,
    metrics,
    models,
    params,
    runs,
    tags,
)
from .deltas import Columns, MetricSummary, Summary

if TYPE_CHECKING:
    from .index import Cursor

__all__ = ["RUN_TABLES", "Pending", "delete_run", "indexed_counts", "insert_new", "live_status",
           "merge_summaries", "drop_pointless_summaries", "save_cursors", "update_run"]

RUN_TABLES = (runs, params, tags, latest_metrics, metrics, metric_rollups, artifacts, models,
              media)


@dataclass
class Pending:
    """A run's summary read from its journal, waiting to be written."""

    cursor: Cursor
    summary: Summary
    end: int
    fresh: bool  # indexed from the start (new, replaced or truncated)
    known: bool  # the index has rows for it already
    meta: dict[str, Any] | None


def insert_new(conn: Any, fresh: list[Pending], root: Path) -> None:
    """Every table's rows for runs indexed from the start, one executemany per table."""
    now = int(time.time() * 1000)
    rows: dict[str, list[tuple[Any, ...]]] = {
        "runs": [], "params": [], "tags": [], "latest_metrics": [], "artifacts": [],
        "models": []}
    media_rows: list[dict[str, Any]] = []
    for item in fresh:
        run_id, seq, s = item.cursor.run_id, item.cursor.seq, item.summary
        rows["runs"].append(_run_row(item, root, now))
        for key, value in s.params.items():
            row = param_row(run_id, key, value, seq)
            rows["params"].append((run_id, key, row["value"], row["num"], row["text"], seq))
        rows["tags"] += [(run_id, k, v, v[:TEXT_PREFIX], seq) for k, v in s.tags.items()]
        rows["latest_metrics"] += [(run_id, key, m.last, m.step, m.timestamp, m.vmin, m.vmax,
                                    m.count, seq) for key, m in s.metrics.items()]
        rows["artifacts"] += [(run_id, name, now) for name in dict.fromkeys(s.artifacts)]
        rows["models"] += [(run_id, name, json.dumps(spec), now)
                           for name, spec in s.models.items()]
        media_rows += [media_row(run_id, item) for item in s.media]
    _insert(conn, "runs", "id, seq, name, project, status, parent_id, start_time, end_time, "
            "created, note, deleted", rows["runs"])
    _insert(conn, "params", "run_id, key, value, num, text, run_seq", rows["params"])
    _insert(conn, "tags", "run_id, key, value, text, run_seq", rows["tags"])
    _insert(conn, "latest_metrics", "run_id, key, value, step, timestamp, vmin, vmax, count, "
            "run_seq", rows["latest_metrics"])
    _insert(conn, "artifacts", "run_id, name, created", rows["artifacts"],
            "ON CONFLICT DO NOTHING")
    _insert(conn, "models", "run_id, name, spec, updated", rows["models"])
    store_media(conn, media_rows)  # the server's own code: the same rows on both read paths


def _run_row(item: Pending, root: Path, now: int) -> tuple[Any, ...]:
    run_id, s = item.cursor.run_id, item.summary
    row: dict[str, Any] = {"name": "", "project": "default", "parent_id": None,
                           "start_time": 0, "end_time": None, "note": None, "deleted": None,
                           "status": "RUNNING"}
    if item.meta is not None:
        meta = item.meta
        row.update(name=str(meta.get("name", "")), project=str(meta.get("project")
                                                               or "default"),
                   parent_id=meta.get("parent"), start_time=int(meta.get("start_time", 0)))
    row.update(s.run)
    if not s.ended:
        row["status"], row["end_time"] = live_status(root / run_id)
    return (run_id, item.cursor.seq, row["name"], row["project"], row["status"],
            row["parent_id"], row["start_time"], row["end_time"], now, row["note"],
            row["deleted"])


def update_run(conn: Any, cursor: Cursor, s: Summary) -> None:
    """Apply what a known run's journal added since its cursor."""
    run_id, seq = cursor.run_id, cursor.seq
    if s.run:
        conn.execute(update(runs).where(runs.c.id == run_id).values(**s.run))
    if s.params:
        _upsert(conn, params, [param_row(run_id, k, v, seq) for k, v in s.params.items()],
                ["run_id", "key"], ["value", "num", "text"])
    if s.untagged:
        conn.execute(delete(tags).where(tags.c.run_id == run_id,
                                        tags.c.key.in_(list(s.untagged))))
    if s.tags:
        _upsert(conn, tags, [tag_row(run_id, k, v, seq) for k, v in s.tags.items()],
                ["run_id", "key"], ["value", "text"])
    if s.metrics:
        series.merge_latest(conn, [
            {"run_id": run_id, "key": key, "value": m.last, "step": m.step,
             "timestamp": m.timestamp, "vmin": m.vmin, "vmax": m.vmax, "count": m.count,
             "run_seq": seq} for key, m in s.metrics.items() if m.count])
    now = int(time.time() * 1000)
    _insert(conn, "artifacts", "run_id, name, created",
            [(run_id, name, now) for name in dict.fromkeys(s.artifacts)],
            "ON CONFLICT DO NOTHING")
    if s.models:
        _upsert(conn, models, [{"run_id": run_id, "name": k, "spec": json.dumps(v),
                                "updated": now} for k, v in s.models.items()],
                ["run_id", "name"], ["spec", "updated"])
    store_media(conn, [media_row(run_id, item) for item in s.media])


def _insert(conn: Any, table: str, columns: str, rows: list[tuple[Any, ...]],
            conflict: str = "") -> None:
    if rows:
        marks = ", ".join("?" * len(columns.split(",")))
        conn.exec_driver_sql(f"INSERT INTO {table} ({columns}) VALUES ({marks}) {conflict}",
                             rows)


def _upsert(conn: Any, table: Any, rows: list[dict[str, Any]], keys: list[str],
            update_columns: list[str]) -> None:
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    stmt = sqlite_insert(table)
    stmt = stmt.on_conflict_do_update(index_elements=keys,
                                      set_={c: stmt.excluded[c] for c in update_columns})
    conn.execute(stmt, rows)

def save_cursors(conn: Any, cursors: list[Cursor]) -> None:
    conn.exec_driver_sql(
        'INSERT INTO index_runs (run_id, identity, "offset", points_offset, ended, exact) '
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id) DO UPDATE SET "
        'identity = excluded.identity, "offset" = excluded."offset", '
        "points_offset = excluded.points_offset, ended = excluded.ended, exact = excluded.exact",
        [(c.run_id, c.identity, c.offset, c.points_offset, int(c.ended), int(c.exact))
         for c in cursors])


def merge_summaries(conn: Any, cursor: Cursor, columns: Columns) -> None:
    """Merge a chunk of points into the run's metric summaries (last point, extremes, count)."""
    merged = []
    for key, (steps, values, stamps) in columns.items():
        if not steps:
            continue
        summary = MetricSummary()
        summary.add(steps, values, stamps)
        merged.append({"run_id": cursor.run_id, "key": key, "value": summary.last,
                       "step": summary.step, "timestamp": summary.timestamp,
                       "vmin": summary.vmin, "vmax": summary.vmax, "count": summary.count,
                       "run_seq": cursor.seq})
    series.merge_latest(conn, merged)


def drop_pointless_summaries(conn: Any, run_id: str) -> None:
    """Metric summaries meta.json named but no journal line held (a journal cut short)."""
    conn.execute(delete(latest_metrics).where(latest_metrics.c.run_id == run_id,
                                              latest_metrics.c.count == 0))


def delete_run(conn: Any, run_id: str) -> None:
    for table in RUN_TABLES:
        column = table.c.id if table is runs else table.c.run_id
        conn.execute(delete(table).where(column == run_id))
    conn.exec_driver_sql("DELETE FROM index_runs WHERE run_id = ?", (run_id,))


def indexed_counts(conn: Any, run_id: str) -> dict[str, int]:
    """Points of each key already in the index (from the finest rollup level)."""
    size = series.ROLLUP_SIZES[0]
    c = metric_rollups.c
    return dict(conn.execute(select(c.key, func.max(c.block * size + c.count))
                             .where(c.run_id == run_id, c.level == 1).group_by(c.key)).all())


def live_status(run_dir: Path) -> tuple[str, int | None]:
    """RUNNING while the lock is held; else CRASHED, ended when its journal was last written
    (the end ``autolog sync`` gives every backend for such a run)."""
    if lock_is_held(run_dir, None):
        return "RUNNING", None
    try:
        return "CRASHED", int((run_dir / JOURNAL).stat().st_mtime * 1000)
    except OSError:
        return "CRASHED", None
