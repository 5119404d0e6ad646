"""``autolog export``: runs as a table for pandas, a spreadsheet or another tool.

One row per run (id, name, project, status, parent, times, then ``params.*``, ``tags.*`` and
each metric's last value as ``metrics.*``), or with ``--history`` one row per metric point
(run, key, step, value, timestamp). CSV and JSON Lines to stdout or ``-o FILE``; Parquet (typed
columns, times as UTC timestamps) through pyarrow. Runs are selected with the same options as
``autolog runs`` (every run, child runs included, unless a filter says otherwise); the rows come
from the store's index, the histories from the journals themselves.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from . import common

__all__ = ["cmd_export", "configure"]

FIXED = ("id", "name", "project", "status", "parent_id", "start_time", "end_time",
         "duration_s")
HISTORY = ("run_id", "run_name", "key", "step", "value", "timestamp")
CHUNK = 500  # runs per query while reading the index


def configure(sub: Any) -> None:
    export = sub.add_parser(
        "export", help="runs as CSV, JSON Lines or Parquet: one row per run or per point",
        description="Export runs: one row per run (params, tags, last metric values) or, with "
        "--history, one row per metric point. Every run (child runs included) unless "
        "--filter, --status, --project, --parent or --top-level narrow it.",
        epilog="examples: autolog export --format csv -o runs.csv;  autolog export --filter "
        "'params.model = xgb' --history --format parquet -o points.parquet")
    export.add_argument("--format", "-F", choices=("csv", "jsonl", "parquet"), default="csv",
                        help="csv (default), jsonl (one JSON object a line) or parquet "
                        "(pyarrow: pip install 'autolog-ml[parquet]')")
    export.add_argument("--history", action="store_true",
                        help="one row per metric point instead of one per run")
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    export.add_argument("--filter", "-f", metavar="EXPR", help="runs matching EXPR (as in "
                        "'autolog runs')")
    export.add_argument("--status", type=common.status_name, metavar="STATUS",
                        help="only runs with this status")
    export.add_argument("--project", help="only this project")
    export.add_argument("--parent", metavar="RUN", help="only the child runs of RUN")
    export.add_argument("--top-level", action="store_true", help="leave child runs out")
    export.add_argument("--no-system", action="store_true",
                        help="leave system metrics (system/*) out")
    common.store_args(export, output=False)
    export.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    query = common.query_filter(args.filter)
    if args.format == "parquet":
        _pyarrow()  # before any work: the message says what to install
        if not args.output and sys.stdout.isatty():
            raise common.UsageError("--format parquet writes binary data: give -o FILE (or "
                                    "redirect stdout to a file)")
    with common.open_store(args) as store:
        ids = _select(store, args, query)
        rows: Any
        if args.history:
            columns, rows = list(HISTORY), _points(store, ids, args.no_system)
        else:
            records = list(_runs(store.db, ids, args.no_system))
            columns, rows = _columns(records), records
        count = _write(args, columns, rows)
    where = args.output or "stdout"
    runs = f"{len(ids):,} run{'' if len(ids) == 1 else 's'}"
    what = f"{count:,} point{'' if count == 1 else 's'} of {runs}" if args.history else runs
    print(f"autolog: exported {what} to {where}", file=sys.stderr)
    return 0


def _select(store: Any, args: argparse.Namespace, node: Any) -> list[str]:
    from ..server import search

    if store.empty:
        return []
    parent = store.resolve(args.parent, deleted=None) if args.parent else None
    request = search.RunQuery(project=args.project, filter=node, parent=parent,
                              all=not args.top_level, status=args.status)
    return search.run_ids(store.db, request)


# -- rows -------------------------------------------------------------------------------------


def _runs(db: Any, ids: list[str], no_system: bool) -> Iterator[dict[str, Any]]:
    """Each run as ``{fixed fields, "params": {}, "tags": {}, "metrics": {}}``, in ``ids``'
    order, read from the index in chunks."""
    from sqlalchemy import select

    from ..journal.codec import float_from_json
    from ..server.tables import latest_metrics, metric_out, params, runs, tags

    for i in range(0, len(ids), CHUNK):
        chunk = ids[i:i + CHUNK]
        with db.read() as conn:
            found = {r["id"]: {**_fixed(r), "params": {}, "tags": {}, "metrics": {}}
                     for r in conn.execute(select(runs).where(runs.c.id.in_(chunk)))
                     .mappings()}
            for run_id, key, value in conn.execute(
                    select(params.c.run_id, params.c.key, params.c.value)
                    .where(params.c.run_id.in_(chunk))):
                found[run_id]["params"][key] = json.loads(value)
            for run_id, key, value in conn.execute(
                    select(tags.c.run_id, tags.c.key, tags.c.value)
                    .where(tags.c.run_id.in_(chunk))):
                found[run_id]["tags"][key] = value
            for run_id, key, value in conn.execute(
                    select(latest_metrics.c.run_id, latest_metrics.c.key,
                           latest_metrics.c.value).where(latest_metrics.c.run_id.in_(chunk))):
                if not (no_system and key.startswith("system/")):
                    found[run_id]["metrics"][key] = float_from_json(metric_out(value))
        yield from (found[run_id] for run_id in chunk if run_id in found)


def _fixed(row: Any) -> dict[str, Any]:
    start, end = row["start_time"], row["end_time"]
    return {"id": row["id"], "name": row["name"], "project": row["project"],
            "status": row["status"], "parent_id": row["parent_id"], "start_time": start,
            "end_time": end, "duration_s": (end - start) / 1000 if start and end else None}


def _columns(records: list[dict[str, Any]]) -> list[str]:
    keys: dict[str, set[str]] = {"params": set(), "tags": set(), "metrics": set()}
    for record in records:
        for group, found in keys.items():
            found.update(record[group])
    return [*FIXED, *(f"{group}.{key}" for group in ("params", "tags", "metrics")
                      for key in sorted(keys[group]))]


def _points(store: Any, ids: list[str], no_system: bool) -> Iterator[dict[str, Any]]:
    """One dict per metric point, run by run, from the journals (oldest run first)."""
    for run_id in reversed(ids):
        record = store.record(run_id)
        for key in record.metric_keys:
            if no_system and key.startswith("system/"):
                continue
            for step, value, timestamp in record.history(key):
                yield {"run_id": run_id, "run_name": record.name, "key": key, "step": step,
                       "value": value, "timestamp": timestamp}


def _flat(record: dict[str, Any]) -> dict[str, Any]:
    """A run's record with ``params``/``tags``/``metrics`` spread into prefixed columns."""
    if "params" not in record:
        return record
    out = {k: v for k, v in record.items() if k not in ("params", "tags", "metrics")}
    for group in ("params", "tags", "metrics"):
        out.update({f"{group}.{k}": v for k, v in record[group].items()})
    return out


# -- writing ----------------------------------------------------------------------------------


def _write(args: argparse.Namespace, columns: list[str], rows: Any) -> int:
    if args.format == "parquet":
        return _parquet(args.output, columns, rows)
    with _text_output(args.output) as out:
        if args.format == "jsonl":
            return _jsonl(out, rows)
        return _csv(out, columns, rows)


@contextmanager
def _text_output(path: str | None) -> Iterator[IO[str]]:
    if path is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    with open(path, "w", encoding="utf-8", newline="") as out:
        yield out


def _csv(out: IO[str], columns: list[str], rows: Any) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    for row in rows:
        flat = _flat(row)
        writer.writerow([_csv_value(flat[c], c) if c in flat else "" for c in columns])
        count += 1
    return count


def _csv_value(value: Any, column: str) -> str:
    """Strings as they are; other params as JSON (``true``, ``null``, ``[1, 2]``); floats in
    full precision (``repr``: ``nan`` and ``inf`` for the non-finite); missing: empty."""
    if value is None:
        return "null" if column.startswith("params.") else ""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return repr(value)
    return json.dumps(value)


def _jsonl(out: IO[str], rows: Any) -> int:
    from ..journal.codec import dumps_line

    count = 0
    for row in rows:
        out.write(dumps_line(row) + "\n")  # NaN and infinities as "NaN", "Infinity"
        count += 1
    return count


def _pyarrow() -> Any:
    try:
        import pyarrow
    except ModuleNotFoundError:
        raise ModuleNotFoundError("--format parquet needs pyarrow", name="pyarrow") from None
    return pyarrow


def _parquet(path: str | None, columns: list[str], rows: Any) -> int:
    pa = _pyarrow()
    import pyarrow.parquet as pq

    flat = [_flat(r) for r in rows]
    arrays = [_arrow_column(pa, c, [r.get(c) for r in flat]) for c in columns]
    table = pa.table(dict(zip(columns, arrays, strict=True)))
    if path is None:
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        sys.stdout.buffer.write(buffer.getvalue())
        sys.stdout.buffer.flush()
    else:
        pq.write_table(table, path)
    return len(flat)


def _arrow_column(pa: Any, name: str, values: list[Any]) -> Any:
    """A typed column: times as UTC timestamps, metrics as doubles, params as numbers, booleans
    or text (JSON text for a column mixing kinds), the rest as text."""
    if name in ("start_time", "end_time", "timestamp"):
        return pa.array(values, pa.timestamp("ms", tz="UTC"))
    if name in ("step",):
        return pa.array(values, pa.int64())
    if name in ("duration_s", "value") or name.startswith("metrics."):
        return pa.array(values, pa.float64())
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return pa.array(values, pa.bool_())
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pa.array(values, pa.int64())
    if present and all(isinstance(v, int | float) and not isinstance(v, bool)
                       for v in present):
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    return pa.array([None if v is None else v if isinstance(v, str) else json.dumps(v)
                     for v in values], pa.string())
