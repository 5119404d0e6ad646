"""The runs table: a filter expression compiled to SQL, sorting by any column, offset pages.

One module serves ``autolog server`` (its database) and ``autolog ui`` (the SQLite index of the
local store): the same tables, the same SQL. A filter (``autolog.filters``) becomes one WHERE
clause: plain fields are columns of ``runs``; ``params.K``, ``metrics.K`` and ``tags.K`` are
``EXISTS`` sub-queries on their tables (so a run lacking the key never matches a comparison,
and ``not`` stays two-valued). Params compare as numbers through ``params.num`` (indexed with
the key) and as text through ``params.text``.

Sorting by a param, metric or tag joins that key's row once (left join: runs without it sort
last in either direction); ties break by start time, then id, so pages are stable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, exists, func, not_, or_, select, true

from .. import filters as f
from .models import latest_metrics, params, runs, tags
from .schemas import metric_out

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.sql import ColumnElement

    from .db import Database

__all__ = ["RunQuery", "compile_filter", "page_rows", "search"]

DEFAULT_SORT = f.SortKey(f.Field("start_time"), True)


@dataclass
class RunQuery:
    """What the runs table asks for (the query parameters of ``GET /api/v1/runs``)."""

    project: str | None = None
    filter: f.Node | None = None
    q: str | None = None
    sort: f.SortKey = DEFAULT_SORT
    parent: str | None = None
    all: bool = False
    deleted: bool = False
    status: str | None = None
    tags: list[tuple[str, str]] = field(default_factory=list)
    columns: list[f.Field] = field(default_factory=list)
    offset: int = 0
    limit: int = 100
    after: tuple[int, str] | None = None  # keyset page: (start_time, id) of the last run seen


# -- filters ----------------------------------------------------------------------------------


def compile_filter(node: f.Node) -> ColumnElement[bool]:
    if isinstance(node, f.And):
        return and_(*(compile_filter(item) for item in node.items))
    if isinstance(node, f.Or):
        return or_(*(compile_filter(item) for item in node.items))
    if isinstance(node, f.Not):
        return not_(compile_filter(node.item))
    return _compare(node)


def _compare(node: f.Compare) -> ColumnElement[bool]:
    kind = node.field.kind
    if kind in ("params", "metrics", "tags"):
        return _keyed(node)
    column = _plain_column(kind)
    if node.op == "exists":
        return column.is_not(None) if kind in ("end_time", "duration") else true()
    conditions = [_condition(node.field, column, op, value, numeric)
                  for op, value, numeric in _each(node)]
    found = or_(*conditions) if len(conditions) > 1 else conditions[0]
    # two-valued even where the column is NULL (a running run's end): NOT keeps its meaning
    return and_(column.is_not(None), found) if kind in ("end_time", "duration") else found


def _each(node: f.Compare) -> list[tuple[str, f.Value, bool]]:
    op = "=" if node.op == "in" else node.op
    return [(op, v, n) for v, n in zip(node.values, node.numeric, strict=True)]


def _plain_column(kind: str) -> Any:
    if kind == "duration":
        return runs.c.end_time - runs.c.start_time
    return runs.c[kind]


def _keyed(node: f.Compare) -> ColumnElement[bool]:
    table, key = _KEYED[node.field.kind], node.field.key
    where = [table.c.run_id == runs.c.id, table.c.key == key]
    if node.op != "exists":
        conditions = [_keyed_condition(node.field, table, op, value, numeric)
                      for op, value, numeric in _each(node)]
        where.append(or_(*conditions) if len(conditions) > 1 else conditions[0])
    return exists().where(*where)


_KEYED = {"params": params, "metrics": latest_metrics, "tags": tags}
_METRIC_COLUMN = {"last": "value", "min": "vmin", "max": "vmax"}


def _keyed_condition(fld: f.Field, table: Any, op: str, value: f.Value,
                     numeric: bool) -> ColumnElement[bool]:
    if fld.kind == "metrics":
        return _condition(fld, table.c[_METRIC_COLUMN[fld.agg]], op, value, numeric)
    if fld.kind == "params":
        column = table.c.num if numeric and op != "~" else table.c.text
        return _condition(fld, column, op, value, numeric and op != "~")
    return _condition(fld, table.c.value, op, value, False)


def _condition(fld: f.Field, column: Any, op: str, value: f.Value,
               numeric: bool) -> ColumnElement[bool]:
    operand = _operand(fld, value, numeric)
    if op == "~":
        return column.icontains(str(operand), autoescape=True)
    return _SQL_OPS[op](column, operand)


def _operand(fld: f.Field, value: f.Value, numeric: bool) -> Any:
    kind = fld.kind
    if kind in ("start_time", "end_time"):
        return f.time_value(value, numeric)
    if kind == "duration":
        seconds = f.duration_value(value, numeric)
        return None if seconds is None else seconds * 1000
    if kind == "status":
        return str(value).upper()
    if kind in ("metrics",) or (kind == "params" and numeric):
        return float(value)
    if numeric and isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


_SQL_OPS = {
    "=": lambda c, v: c == v,
    "!=": lambda c, v: c != v,
    "<": lambda c, v: c < v,
    "<=": lambda c, v: c <= v,
    ">": lambda c, v: c > v,
    ">=": lambda c, v: c >= v,
}


def _where(query: RunQuery) -> list[Any]:
    where: list[Any] = []
    if query.project is not None:
        where.append(runs.c.project == query.project)
    if query.parent is not None:
        where.append(runs.c.parent_id == query.parent)
    elif not query.all:
        where.append(runs.c.parent_id.is_(None))
    where.append(runs.c.deleted.is_not(None) if query.deleted else runs.c.deleted.is_(None))
    if query.status is not None:
        where.append(runs.c.status == query.status)
    for key, value in query.tags:
        where.append(exists().where(tags.c.run_id == runs.c.id, tags.c.key == key,
                                    tags.c.value == value))
    if query.filter is not None:
        where.append(compile_filter(query.filter))
    if query.q:
        where.append(or_(runs.c.name.icontains(query.q, autoescape=True),
                         runs.c.note.icontains(query.q, autoescape=True),
                         exists().where(tags.c.run_id == runs.c.id,
                                        tags.c.value.icontains(query.q, autoescape=True))))
    if query.after is not None:
        start, run_id = query.after
        where.append(or_(runs.c.start_time < start,
                         and_(runs.c.start_time == start, runs.c.id < run_id)))
    return where


# -- sorting ----------------------------------------------------------------------------------


def _sorted(stmt: Any, sort: f.SortKey) -> Any:
    fld = sort.field
    if fld.kind in ("params", "metrics", "tags"):
        table = _KEYED[fld.kind].alias("sort_key")
        stmt = stmt.outerjoin(table, and_(table.c.run_id == runs.c.id, table.c.key == fld.key))
        if fld.kind == "params":
            keys = [table.c.num, table.c.text]
        elif fld.kind == "metrics":
            keys = [table.c[_METRIC_COLUMN[fld.agg]]]
        else:
            keys = [table.c.value]
    else:
        keys = [_plain_column(fld.kind)]
    order = [(k.desc() if sort.descending else k.asc()).nulls_last() for k in keys]
    return stmt.order_by(*order, runs.c.start_time.desc(), runs.c.id.desc())


# -- the page ---------------------------------------------------------------------------------


def search(db: Database, query: RunQuery) -> dict[str, Any]:
    """``{"runs": [row], "total", "offset", "next_page_token"}`` for the runs table."""
    where = _where(query)
    stmt = _sorted(select(runs).where(*where), query.sort)
    stmt = stmt.offset(query.offset).limit(query.limit + 1)
    with db.read() as conn:
        found = [dict(r) for r in conn.execute(stmt).mappings()]
        more = len(found) > query.limit
        found = found[:query.limit]
        total = conn.execute(select(func.count()).select_from(runs).where(*where)).scalar_one()
        rows = page_rows(conn, found, query.columns)
    return {"runs": rows, "total": int(total), "offset": query.offset,
            "more": more}


def page_rows(conn: Connection, found: list[dict[str, Any]], columns: list[f.Field]
              ) -> list[dict[str, Any]]:
    """The RunRow of each run: tags, last metrics, children count, the asked-for values."""
    ids = [r["id"] for r in found]
    if not ids:
        return []
    by_id = {run_id: _row(r) for run_id, r in zip(ids, found, strict=True)}
    for run_id, key, value in conn.execute(select(tags.c.run_id, tags.c.key, tags.c.value)
                                           .where(tags.c.run_id.in_(ids))
                                           .order_by(tags.c.key)):
        by_id[run_id]["tags"][key] = value
    for run_id, key, value in conn.execute(
            select(latest_metrics.c.run_id, latest_metrics.c.key, latest_metrics.c.value)
            .where(latest_metrics.c.run_id.in_(ids)).order_by(latest_metrics.c.key)):
        by_id[run_id]["metrics"][key] = metric_out(value)
    for parent, count in conn.execute(select(runs.c.parent_id, func.count())
                                      .where(runs.c.parent_id.in_(ids), runs.c.deleted.is_(None))
                                      .group_by(runs.c.parent_id)):
        by_id[parent]["children"] = int(count)
    _values(conn, by_id, columns)
    return list(by_id.values())


def _row(r: dict[str, Any]) -> dict[str, Any]:
    return {"id": r["id"], "name": r["name"], "project": r["project"], "status": r["status"],
            "parent_id": r["parent_id"], "start_time": r["start_time"],
            "end_time": r["end_time"], "children": 0, "tags": {}, "note": r["note"],
            "deleted": r["deleted"] is not None, "metrics": {}, "values": {}}


def _values(conn: Connection, by_id: dict[str, dict[str, Any]], columns: list[f.Field]) -> None:
    """Fill each row's ``values`` with the requested param/metric/tag columns."""
    ids = list(by_id)
    wanted: dict[str, dict[str, list[str]]] = {"params": {}, "metrics": {}, "tags": {}}
    for col in columns:
        if col.kind in wanted and col.key is not None:
            wanted[col.kind].setdefault(col.key, []).append(str(col))
    if wanted["params"]:
        for run_id, key, value in conn.execute(
                select(params.c.run_id, params.c.key, params.c.value)
                .where(params.c.run_id.in_(ids), params.c.key.in_(list(wanted["params"])))):
            for name in wanted["params"][key]:
                by_id[run_id]["values"][name] = json.loads(value)
    if wanted["tags"]:
        for run_id, key, value in conn.execute(
                select(tags.c.run_id, tags.c.key, tags.c.value)
                .where(tags.c.run_id.in_(ids), tags.c.key.in_(list(wanted["tags"])))):
            for name in wanted["tags"][key]:
                by_id[run_id]["values"][name] = value
    if wanted["metrics"]:
        c = latest_metrics.c
        for run_id, key, last, low, high in conn.execute(
                select(c.run_id, c.key, c.value, c.vmin, c.vmax)
                .where(c.run_id.in_(ids), c.key.in_(list(wanted["metrics"])))):
            picked = {"last": last, "min": low, "max": high}
            for name in wanted["metrics"][key]:
                agg = f.parse_field(name).agg
                by_id[run_id]["values"][name] = metric_out(picked[agg])

