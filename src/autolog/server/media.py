"""Media a run logged (images, histograms, tables, texts, evaluation plots): recorded here, their
files stored with the run's artifacts (uploaded under ``/files``).

One row per media item, keyed by the file it names, so a retried delivery stores it once. Rows
are listed by key and step, which is what an image slider or a histogram-over-steps view reads;
:func:`list_keys` sums them up per key (what a page lays out before it loads any item).

The same code stores the items on both read paths: the server's ``POST .../media`` and the index
of a local store (``autolog ui``), which reads them from the journal's ``media`` lines
(:func:`media_in` checks a line as the endpoint checks a body).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, model_validator
from sqlalchemy import func, select

from .db import dialect_insert
from .ingest import require_run
from .query import find_run_id
from .schemas import X_MAX_BYTES, ArtifactName, BodyInt64, Key, Millis, _clean_key, _Strict
from .tables import media

if TYPE_CHECKING:
    from .db import Database

__all__ = ["MAX_META_BYTES", "MediaIn", "MediaKeyList", "MediaList", "MediaOut", "list_keys",
           "list_media", "media_in", "media_row", "record_media", "store_media"]

MAX_META_BYTES = 64 * 1024
MediaKind = Literal["image", "histogram", "table", "text", "plot"]


class MediaIn(_Strict):
    """A media item, as the journal's ``media`` event describes it (``docs/format.md``)."""

    kind: MediaKind
    key: Key
    step: BodyInt64
    time: Millis
    path: ArtifactName
    image: ArtifactName | None = None
    meta: dict[str, Any] = Field(default_factory=dict,
                                 description=f"at most {MAX_META_BYTES} bytes as JSON",
                                 json_schema_extra={X_MAX_BYTES: MAX_META_BYTES})

    @model_validator(mode="after")
    def _json_safe(self) -> MediaIn:
        try:
            text = json.dumps(self.meta, allow_nan=False)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"meta must be plain JSON without NaN or infinities ({exc})")
        _clean_key(text[:1000])
        if len(text.encode("utf-8")) > MAX_META_BYTES:
            raise ValueError(f"meta must be at most {MAX_META_BYTES} bytes of JSON")
        return self


class MediaOut(BaseModel):
    kind: str
    key: str
    step: int
    time: int
    path: str
    image: str | None
    meta: dict[str, Any]


class MediaList(BaseModel):
    run_id: str
    media: list[MediaOut]


class MediaKey(BaseModel):
    key: str
    kind: str
    count: int
    first_step: int
    last_step: int
    last_time: int


class MediaKeyList(BaseModel):
    run_id: str
    keys: list[MediaKey]


_FIELDS = tuple(MediaIn.model_fields)
_UPDATED = ("key", "kind", "step", "timestamp", "image", "meta")


def media_in(record: dict[str, Any]) -> MediaIn:
    """A journal ``media`` line as the endpoint's body (its other fields left out); raises
    ``ValueError`` (pydantic's ``ValidationError``) when it is not a valid item."""
    return MediaIn.model_validate({name: record[name] for name in _FIELDS if name in record})


def media_row(run_id: str, body: MediaIn) -> dict[str, Any]:
    return {"run_id": run_id, "key": body.key, "kind": body.kind, "step": body.step,
            "timestamp": body.time, "path": body.path, "image": body.image,
            "meta": json.dumps(body.meta, allow_nan=False)}


def store_media(conn: Any, rows: list[dict[str, Any]]) -> None:
    """Insert the rows; an item whose file is recorded already is replaced (a retry, or the
    same journal line read again)."""
    if not rows:
        return
    stmt = dialect_insert(conn, media)
    stmt = stmt.on_conflict_do_update(index_elements=["run_id", "path"],
                                      set_={c: stmt.excluded[c] for c in _UPDATED})
    conn.execute(stmt, rows) if len(rows) > 1 else conn.execute(stmt.values(rows[0]))


def record_media(db: Database, run_id: str, body: MediaIn) -> dict[str, Any]:
    row = media_row(run_id, body)
    with db.write() as conn:
        require_run(conn, run_id)
        store_media(conn, [row])
    return _out(row)


def list_media(db: Database, id_or_prefix: str, key: str | None = None,
               kind: str | None = None) -> dict[str, Any]:
    """The run's media, by key, then step, then logging order."""
    with db.read() as conn:
        run_id = find_run_id(conn, id_or_prefix)
        query = select(media).where(media.c.run_id == run_id)
        if key is not None:
            query = query.where(media.c.key == key)
        if kind is not None:
            query = query.where(media.c.kind == kind)
        rows = conn.execute(query.order_by(media.c.key, media.c.step, media.c.id)).mappings()
        return {"run_id": run_id, "media": [_out(dict(r)) for r in rows]}


def list_keys(db: Database, id_or_prefix: str) -> dict[str, Any]:
    """Each key of the run's media: its kind, how many items, the first and last step."""
    c = media.c
    with db.read() as conn:
        run_id = find_run_id(conn, id_or_prefix)
        rows = conn.execute(
            select(c.key, c.kind, func.count(), func.min(c.step), func.max(c.step),
                   func.max(c.timestamp))
            .where(c.run_id == run_id).group_by(c.key, c.kind).order_by(c.key, c.kind)).all()
    return {"run_id": run_id, "keys": [
        {"key": r[0], "kind": r[1], "count": r[2], "first_step": r[3], "last_step": r[4],
         "last_time": r[5]} for r in rows]}


def _out(row: dict[str, Any]) -> dict[str, Any]:
    return {"kind": row["kind"], "key": row["key"], "step": row["step"],
            "time": row["timestamp"], "path": row["path"], "image": row["image"],
            "meta": json.loads(row["meta"])}
