"""Metric series: storing points with their summaries, and reading them back in buckets.

Storing. Each batch of points of a (run, key) updates, besides the point rows:

- ``latest_metrics``: the last point, the minimum and maximum (NaN never counts) and the count;
- ``metric_rollups``: the points in blocks of 16, 64, 256, 1024, 4096 and 16384 (by logging
  order), each block keeping its step range, minimum, maximum and last point. A block filled
  over several batches is merged by an upsert, so ingestion never reads rows back.

Reading. ``buckets=N`` asks for N equal step-range buckets, each giving its last point and its
minimum and maximum (the envelope: a spike never disappears). The range is read from the
coarsest rollup level that gives at least ``3 N / 4`` blocks (at most ``3 N``: levels grow by
4), else from level 1 or point by point when the range holds few points, so one million points
into 1,000 buckets cost 977 rows, not a million. A block lands in the bucket of its last step
and its minimum and maximum go with it, so no spike is lost; a bucket left without a block is
left out (N or a few fewer points come back). A zoom (``min_step``/``max_step``) counts the
blocks in range level by level, coarse to fine, so a narrow range is read from fine levels or
point by point.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, select

from .db import dialect_insert
from .tables import ROLLUP_SIZES, latest_metrics, metric_rollups, metrics

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["Column", "bucketed", "store_points", "update_latest"]

#: (steps, values, timestamps) of one key, values already as stored (None for NaN)
Column = tuple[Sequence[int], Sequence[float | None], Sequence[int]]

BLOCKS_PER_BUCKET = 0.75  # the coarsest level giving 3/4 of a block per bucket or more
RAW_FACTOR = 4  # else points one by one while there are at most 4 per bucket


def _insert(conn: Connection, table: Any) -> Any:
    return dialect_insert(conn, table)


def _least(current: Any, new: Any) -> Any:
    """The smaller of two nullable numbers, portable (SQLite's min() returns NULL on NULL)."""
    from sqlalchemy import case

    return case((current.is_(None), new), (new.is_(None), current), (new < current, new),
                else_=current)


def _greatest(current: Any, new: Any) -> Any:
    from sqlalchemy import case

    return case((current.is_(None), new), (new.is_(None), current), (new > current, new),
                else_=current)


def _extremes(values: Iterable[float | None]) -> tuple[float | None, float | None]:
    numbers = [v for v in values if v is not None]
    return (min(numbers), max(numbers)) if numbers else (None, None)


# -- storing ----------------------------------------------------------------------------------


def update_latest(conn: Connection, run_id: str, columns: Mapping[str, Column],
                  run_seq: int) -> dict[str, int]:
    """Merge the points into ``latest_metrics``; returns each key's point count before."""
    found = conn.execute(select(latest_metrics.c.key, latest_metrics.c.count).where(
        latest_metrics.c.run_id == run_id, latest_metrics.c.key.in_(list(columns)))).all()
    before = {key: count for key, count in found}
    rows = []
    for key, (steps, values, stamps) in columns.items():
        if not steps:
            continue
        low, high = _extremes(values)
        rows.append({"run_id": run_id, "key": key, "value": values[-1], "step": steps[-1],
                     "timestamp": stamps[-1], "vmin": low, "vmax": high,
                     "count": len(steps), "run_seq": run_seq})
    merge_latest(conn, rows)
    return before


def merge_latest(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Upsert ``latest_metrics`` rows: the new last point; extremes and counts merged."""
    if not rows:
        return
    stmt = _insert(conn, latest_metrics)
    old, new = latest_metrics.c, stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=["run_id", "key"],
        set_={"value": new.value, "step": new.step, "timestamp": new.timestamp,
              "vmin": _least(old.vmin, new.vmin), "vmax": _greatest(old.vmax, new.vmax),
              "count": old.count + new.count})
    conn.execute(stmt, rows)


def rollup_rows(run_id: str, key: str, first: int, column: Column) -> list[dict[str, Any]]:
    """The rollup blocks touched by points ``first, first + 1, ...`` (ordinals) of a series."""
    steps, values, stamps = column
    rows = []
    for level, size in enumerate(ROLLUP_SIZES, start=1):
        start = 0
        while start < len(steps):
            block = (first + start) // size
            end = min(len(steps), (block + 1) * size - first)
            low, high = _extremes(values[start:end])
            part = steps[start:end]
            rows.append({"run_id": run_id, "key": key, "level": level, "block": block,
                         "count": end - start, "step_min": min(part), "step_max": max(part),
                         "vmin": low, "vmax": high, "last_step": steps[end - 1],
                         "last_value": values[end - 1], "last_ts": stamps[end - 1]})
            start = end
    return rows


def upsert_rollups(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    stmt = _insert(conn, metric_rollups)
    old, new = metric_rollups.c, stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=["run_id", "key", "level", "block"],
        set_={"count": old.count + new.count,
              "step_min": _least(old.step_min, new.step_min),
              "step_max": _greatest(old.step_max, new.step_max),
              "vmin": _least(old.vmin, new.vmin), "vmax": _greatest(old.vmax, new.vmax),
              "last_step": new.last_step, "last_value": new.last_value,
              "last_ts": new.last_ts})
    conn.execute(stmt, rows)


def store_points(conn: Connection, run_id: str, columns: Mapping[str, Column],
                 before: dict[str, int]) -> None:
    """Insert the point rows and their rollups; ``before``: each key's count already stored."""
    rows: list[tuple[str, str, int, float | None, int]] = []
    rollups: list[dict[str, Any]] = []
    for key, column in columns.items():
        steps, values, stamps = column
        if not steps:
            continue
        rows.extend(zip([run_id] * len(steps), [key] * len(steps), steps, values, stamps,
                        strict=True))
        rollups.extend(rollup_rows(run_id, key, before.get(key, 0), column))
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        _copy_points(conn, rows)
    else:  # straight to the driver's executemany: no per-row dict or statement compile
        conn.exec_driver_sql(f"INSERT INTO {metrics.name} ({', '.join(_POINT_COLUMNS)}) "
                             "VALUES (?, ?, ?, ?, ?)", rows)
    upsert_rollups(conn, rollups)


_POINT_COLUMNS = ("run_id", "key", "step", "value", "timestamp")


def _copy_points(conn: Connection, rows: list[tuple[str, str, int, float | None, int]]) -> None:
    """PostgreSQL's COPY, in the same transaction: several times faster than INSERT."""
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy(
            f"COPY {metrics.name} ({', '.join(_POINT_COLUMNS)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


# -- reading ----------------------------------------------------------------------------------


def bucketed(conn: Connection, run_id: str, key: str, buckets: int | None,
             min_step: int | None, max_step: int | None) -> dict[str, Any] | None:
    """One series, in ``buckets`` buckets when it holds more points than that; None if the run
    has no such key."""
    total = conn.execute(select(latest_metrics.c.count).where(
        latest_metrics.c.run_id == run_id, latest_metrics.c.key == key)).scalar()
    if total is None:
        return None
    level, span = 0, None
    if buckets is not None:
        level, span = _level(conn, run_id, key, total, buckets, min_step, max_step)
    if level == 0:
        points = _points(conn, run_id, key, min_step, max_step)
        sampled = buckets is not None and len(points) > buckets
        rows = _bucket_points(points, buckets) if sampled else [
            (s, v, t, v, v) for s, v, t in points]
    else:
        sampled = True
        blocks = _blocks(conn, run_id, key, level, min_step, max_step, span)
        rows = _bucket_blocks(blocks, buckets or 1)
    return {"run_id": run_id, "key": key, "total": int(total), "downsampled": sampled,
            "steps": [r[0] for r in rows], "values": [_out(r[1]) for r in rows],
            "timestamps": [r[2] for r in rows], "min": [_out(r[3]) for r in rows],
            "max": [_out(r[4]) for r in rows]}


def _out(value: float | None) -> float | str | None:
    """NaN (stored NULL) -> null; infinities as the strings JSON can carry."""
    if value is None or value != value:
        return None
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _in_range(columns: Any, min_step: int | None, max_step: int | None,
              low: Any = None, high: Any = None) -> list[Any]:
    low = columns.step if low is None else low
    high = columns.step if high is None else high
    where = []
    if min_step is not None:
        where.append(high >= min_step)
    if max_step is not None:
        where.append(low <= max_step)
    return where


Span = tuple[int, int]  # the first and last block numbers a range touches at one level


def _level(conn: Connection, run_id: str, key: str, total: int, buckets: int,
           min_step: int | None, max_step: int | None) -> tuple[int, Span | None]:
    """The level to read (0: points one by one) and, for a range, the blocks it touches there.

    The coarsest level giving at least ``BLOCKS_PER_BUCKET`` blocks per bucket; else level 1
    when the points are many, else the points. A range is counted level by level, coarse to
    fine, each level only within the blocks the coarser one found (a primary-key range), so a
    narrow zoom or a live tail costs a few tiny index reads even on a long series.
    """
    if total <= buckets:
        return 0, None
    ranged = min_step is not None or max_step is not None
    c = metric_rollups.c
    blocks, span = 0.0, None
    for level in range(len(ROLLUP_SIZES), 0, -1):
        blocks = total / ROLLUP_SIZES[level - 1]
        if ranged:
            where = [c.run_id == run_id, c.key == key, c.level == level,
                     *_in_range(c, min_step, max_step, c.step_min, c.step_max)]
            if span is not None:
                factor = ROLLUP_SIZES[level] // ROLLUP_SIZES[level - 1]
                where.append(c.block.between(span[0] * factor, (span[1] + 1) * factor - 1))
            count, first, last = conn.execute(
                select(func.count(), func.min(c.block), func.max(c.block)).where(*where)).one()
            if not count:
                return 0, None
            blocks, span = count, (first, last)
        if blocks >= BLOCKS_PER_BUCKET * buckets:
            return level, span
    points_in_range = blocks * ROLLUP_SIZES[0]
    return (1, span) if points_in_range > RAW_FACTOR * buckets else (0, None)


def _points(conn: Connection, run_id: str, key: str, min_step: int | None,
            max_step: int | None) -> list[tuple[int, float | None, int]]:
    c = metrics.c
    query = (select(c.step, c.value, c.timestamp)
             .where(c.run_id == run_id, c.key == key, *_in_range(c, min_step, max_step))
             .order_by(c.step, c.id))
    return [tuple(row) for row in conn.execute(query)]


def _blocks(conn: Connection, run_id: str, key: str, level: int, min_step: int | None,
            max_step: int | None, span: Span | None) -> list[tuple[Any, ...]]:
    c = metric_rollups.c
    where = [c.run_id == run_id, c.key == key, c.level == level,
             *_in_range(c, min_step, max_step, c.step_min, c.step_max)]
    if span is not None:
        where.append(c.block.between(*span))
    query = (select(c.last_step, c.last_value, c.last_ts, c.vmin, c.vmax)
             .where(and_(*where)).order_by(c.block))
    return [tuple(row) for row in conn.execute(query)]


Row = tuple[int, Any, int, Any, Any]  # step, value, timestamp, min, max


def _bucket_points(points: list[tuple[int, float | None, int]], buckets: int | None
                   ) -> list[Row]:
    return _bucket_blocks([(s, v, t, v, v) for s, v, t in points], buckets or 1)


def _bucket_blocks(blocks: list[tuple[Any, ...]], buckets: int) -> list[Row]:
    """Merge rows ``(last step, last value, last ts, min, max)`` into equal step buckets."""
    if not blocks:
        return []
    low = min(b[0] for b in blocks)
    width = max(b[0] for b in blocks) - low + 1
    out: dict[int, list[Any]] = {}
    for step, value, ts, vmin, vmax in blocks:
        index = (step - low) * buckets // width
        bucket = out.get(index)
        if bucket is None:
            out[index] = [step, value, ts, vmin, vmax]
            continue
        if step >= bucket[0]:
            bucket[0], bucket[1], bucket[2] = step, value, ts
        if vmin is not None and (bucket[3] is None or vmin < bucket[3]):
            bucket[3] = vmin
        if vmax is not None and (bucket[4] is None or vmax > bucket[4]):
            bucket[4] = vmax
    return [tuple(out[i]) for i in sorted(out)]
