"""Edits made in the UI, on the server: stored in its database (the local store journals them
instead, see ``autolog.edits``)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update

from .db import dialect_insert
from .ingest import tag_row
from .query import find_run_id, run_detail
from .tables import runs, tags

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from .db import Database
    from .schemas import RunEdit

__all__ = ["apply", "apply_in"]


def apply(db: Database, run: str, changes: RunEdit) -> dict[str, Any]:
    """Apply ``changes`` to a run (id or prefix) in one transaction; returns its detail."""
    with db.write() as conn:
        run_id = find_run_id(conn, run)
        apply_in(conn, run_id, changes.model_dump(exclude_unset=True))
        return run_detail(conn, run_id)


def apply_in(conn: Connection, run_id: str, changes: dict[str, Any]) -> None:
    values: dict[str, Any] = {}
    if changes.get("name") is not None:
        values["name"] = changes["name"]
    if "note" in changes:
        values["note"] = changes["note"] or None
    if changes.get("deleted") is not None:
        values["deleted"] = int(time.time() * 1000) if changes["deleted"] else None
    if values:
        conn.execute(update(runs).where(runs.c.id == run_id).values(**values))
    removed = [k for k in changes.get("remove_tags") or () if k not in (changes.get("tags") or {})]
    if removed:
        conn.execute(delete(tags).where(tags.c.run_id == run_id, tags.c.key.in_(removed)))
    if changes.get("tags"):
        seq = conn.execute(select(runs.c.seq).where(runs.c.id == run_id)).scalar_one()
        stmt = dialect_insert(conn, tags)
        stmt = stmt.on_conflict_do_update(index_elements=["run_id", "key"],
                                          set_={"value": stmt.excluded.value,
                                                "text": stmt.excluded.text})
        conn.execute(stmt, [tag_row(run_id, k, v, seq) for k, v in changes["tags"].items()])
