"""Media a run logged (images, histograms, tables, texts, evaluation plots): recorded here, their
files stored with the run's artifacts (uploaded under ``/files``).

One row per media item, keyed by the file it names, so a retried delivery stores it once. Rows
are listed by key and step, which is what an image slider or a histogram-over-steps view reads.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, model_validator
from sqlalchemy import select

from .ingest import _insert, require_run
from .query import find_run_id
from .schemas import ArtifactName, Int64, Key, Millis, _clean_key, _Strict
from .tables import media

if TYPE_CHECKING:
    from .db import Database

__all__ = ["MAX_META_BYTES", "MediaIn", "MediaList", "MediaOut", "list_media", "record_media"]

MAX_META_BYTES = 64 * 1024
MediaKind = Literal["image", "histogram", "table", "text", "plot"]


class MediaIn(_Strict):
    """A media item, as the journal's ``media`` event describes it (``docs/format.md``)."""

    kind: MediaKind
    key: Key
    step: Int64
    time: Millis
    path: ArtifactName
    image: ArtifactName | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

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


def record_media(db: Database, run_id: str, body: MediaIn) -> dict[str, Any]:
    row = {"run_id": run_id, "key": body.key, "kind": body.kind, "step": body.step,
           "timestamp": body.time, "path": body.path, "image": body.image,
           "meta": json.dumps(body.meta, allow_nan=False)}
    with db.write() as conn:
        require_run(conn, run_id)
        stmt = _insert(conn, media).values(row)
        conn.execute(stmt.on_conflict_do_update(
            index_elements=["run_id", "path"],
            set_={c: stmt.excluded[c] for c in ("key", "kind", "step", "timestamp", "image",
                                                 "meta")}))
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


def _out(row: dict[str, Any]) -> dict[str, Any]:
    return {"kind": row["kind"], "key": row["key"], "step": row["step"],
            "time": row["timestamp"], "path": row["path"], "image": row["image"],
            "meta": json.loads(row["meta"])}
