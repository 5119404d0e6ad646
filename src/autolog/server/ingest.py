"""Writing runs: create/update a run, store a batch once, record artifacts and models.

Every write is one transaction. A batch first inserts its idempotency key into ``batches``
(``ON CONFLICT DO NOTHING``); when that inserts nothing, the batch was stored before, by this
process or another one on the same database, and the rest is skipped. Params and tags are
upserts (the last value wins, as in the journal); metric points are one multi-row insert;
``latest_metrics`` keeps each key's last point so listing runs never scans histories.
"""

from __future__ import annotations

import json
import math
import time
from json.encoder import encode_basestring_ascii as _encode_string
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from ..filters import number_of, text_of
from . import series
from .db import dialect_insert
from .errors import NoSuchRun
from .tables import (
    TEXT_PREFIX,
    artifacts,
    batches,
    files,
    metric_in,
    models,
    param_in,
    params,
    runs,
    tags,
)

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection

    from .db import Database
    from .schemas import BatchIn, ModelIn, RunIn

__all__ = ["record_artifact", "record_file", "record_model", "require_run",
           "store_batch", "upsert_run"]


def param_row(run_id: str, key: str, value: Any, run_seq: int) -> dict[str, Any]:
    """A ``params`` row: the JSON value, and the number and text that filters compare."""
    return {"run_id": run_id, "key": key, "value": json_scalar(value), "num": number_of(value),
            "text": text_of(value)[:TEXT_PREFIX], "run_seq": run_seq}


def json_scalar(value: Any) -> str:
    """``json.dumps`` of a param value, several times faster for the usual scalars (indexing a
    store writes every param of every run)."""
    kind = type(value)
    if kind is str:
        return _encode_string(value)
    if kind is bool:
        return "true" if value else "false"
    if value is None:
        return "null"
    if kind is int or (kind is float and math.isfinite(value)):
        return repr(value)
    return json.dumps(value)


def tag_row(run_id: str, key: str, value: str, run_seq: int) -> dict[str, Any]:
    """A ``tags`` row: the value, and its first characters that filters compare."""
    return {"run_id": run_id, "key": key, "value": value, "text": value[:TEXT_PREFIX],
            "run_seq": run_seq}


def next_seq(conn: Connection) -> Any:
    """The ``runs.seq`` of a new run: PostgreSQL's identity numbers it; on SQLite (one writer
    at a time) it is the largest so far plus one."""
    if conn.dialect.name == "postgresql":
        return None
    return select(func.coalesce(func.max(runs.c.seq), 0) + 1).scalar_subquery()


def _now() -> int:
    return int(time.time() * 1000)


_insert = dialect_insert  # (from .db)


def _upsert(conn: Connection, table: Table, rows: list[dict[str, Any]], keys: list[str],
            update: list[str]) -> None:
    stmt = _insert(conn, table)
    stmt = stmt.on_conflict_do_update(index_elements=keys,
                                      set_={c: stmt.excluded[c] for c in update})
    conn.execute(stmt, rows) if len(rows) > 1 else conn.execute(stmt.values(rows[0]))


def upsert_run(db: Database, run_id: str, body: RunIn) -> None:
    given = body.model_dump(exclude_unset=True, exclude_none=True)
    if given.get("status") == "RUNNING" and "end_time" not in given:
        given["end_time"] = None  # reopened (a resumed run): no end until its next one
    now = _now()
    row = {"id": run_id, "name": "", "project": "default", "status": "RUNNING",
           "parent_id": None, "start_time": now, "end_time": None, "created": now, **given}
    with db.write() as conn:
        seq = next_seq(conn)
        stmt = _insert(conn, runs).values(row if seq is None else {**row, "seq": seq})
        if given:
            stmt = stmt.on_conflict_do_update(index_elements=["id"],
                                              set_={k: stmt.excluded[k] for k in given})
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=["id"])
        conn.execute(stmt)


def require_run(conn: Connection, run_id: str) -> int:
    """The run's ``seq``; NoSuchRun when it was never created."""
    found = conn.execute(select(runs.c.seq).where(runs.c.id == run_id)).first()
    if found is None:
        raise NoSuchRun(f"no run {run_id} on this server; create it first (PUT /api/v1/runs/"
                        f"{run_id})")
    return int(found[0])


def run_exists(db: Database, run_id: str) -> None:
    with db.read() as conn:
        require_run(conn, run_id)


def store_batch(db: Database, run_id: str, batch: BatchIn) -> bool:
    """Store ``batch`` unless its idempotency key was stored before; True if stored now."""
    with db.write() as conn:
        seq = require_run(conn, run_id)
        key = {"run_id": run_id, "offset_start": batch.start, "offset_end": batch.end,
               "part": batch.part}
        claimed = conn.execute(
            _insert(conn, batches).values(**key, events=batch.events(), received=_now())
            .on_conflict_do_nothing(index_elements=list(key)).returning(batches.c.id)).first()
        if claimed is None:  # stored before (rowcount is not reliable across drivers)
            return False
        if batch.params:
            _upsert(conn, params, [param_row(run_id, k, param_in(v), seq)
                                   for k, v in batch.params.items()], ["run_id", "key"],
                    ["value", "num", "text"])
        if batch.tags:
            _upsert(conn, tags, [tag_row(run_id, k, v, seq) for k, v in batch.tags.items()],
                    ["run_id", "key"], ["value", "text"])
        if batch.metrics:
            _store_metrics(conn, run_id, seq, batch)
    return True


def _store_metrics(conn: Connection, run_id: str, seq: int, batch: BatchIn) -> None:
    columns = {key: (column.steps, [metric_in(v) for v in column.values], column.timestamps)
               for key, column in batch.metrics.items() if column.steps}
    if columns:
        before = series.update_latest(conn, run_id, columns, seq)
        series.store_points(conn, run_id, columns, before)


def record_file(db: Database, run_id: str, path: str, size: int, sha256: str) -> dict[str, Any]:
    row = {"run_id": run_id, "path": path, "size": size, "sha256": sha256, "updated": _now()}
    with db.write() as conn:
        _upsert(conn, files, [row], ["run_id", "path"], ["size", "sha256", "updated"])
    return row


def record_artifact(db: Database, run_id: str, paths: list[str]) -> None:
    """Add ``paths`` to the run's artifact list (in logging order, each once)."""
    with db.write() as conn:
        require_run(conn, run_id)
        _add_artifacts(conn, run_id, paths)


def _add_artifacts(conn: Connection, run_id: str, paths: list[str]) -> None:
    if not paths:
        return
    now = _now()
    rows = [{"run_id": run_id, "name": p, "created": now} for p in dict.fromkeys(paths)]
    stmt = _insert(conn, artifacts).on_conflict_do_nothing(index_elements=["run_id", "name"])
    for row in rows:  # one by one: ids then follow the logging order on every database
        conn.execute(stmt.values(row))


def record_model(db: Database, run_id: str, body: ModelIn) -> None:
    text = json.dumps(body.spec, allow_nan=False)
    with db.write() as conn:
        require_run(conn, run_id)
        _upsert(conn, models, [{"run_id": run_id, "name": body.name, "spec": text,
                                "updated": _now()}], ["run_id", "name"], ["spec", "updated"])
        _add_artifacts(conn, run_id, body.paths())
