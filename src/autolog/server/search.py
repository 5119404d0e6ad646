"""The runs table: a filter expression compiled to SQL, sorting by any column, offset pages.

One module serves ``autolog server`` (its database) and ``autolog ui`` (the SQLite index of the
local store): the same tables, the same SQL. A filter (``autolog.filters``) becomes one WHERE
clause: plain fields are columns of ``runs``; ``params.K``, ``metrics.K`` and ``tags.K`` are
sub-queries on their tables (so a run lacking the key never matches a comparison, and ``not``
stays two-valued). Params compare as numbers through ``params.num`` and as text through
``params.text``; both are indexed with the key and the run's integer ``seq`` (covering).

What makes 100,000 runs fast: the count reads the filter's covering index and probes ``runs``
by integer key (no 32-character string compares); the page of a metric/param sort walks that
key's ``(key, value, run_seq)`` index in order and stops when the page is full, probing each
candidate's filters. Only when the walk does not fill the page within a bound (a very
selective filter, a deep page) is every match sorted, with a left join (runs without the key
last in either direction). Ties break by start time, then id, so pages are stable.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, exists, func, not_, or_, select, true

from .. import filters as f
from .tables import TEXT_PREFIX, latest_metrics, metric_out, params, runs, tags

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.sql import ColumnElement

    from .db import Database

__all__ = ["RunQuery", "compile_filter", "page_rows", "run_ids", "search"]

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


def compile_filter(node: f.Node, style: str = "in") -> ColumnElement[bool]:
    """The WHERE clause of a filter tree. ``style="in"``: keyed comparisons are ``runs.seq IN
    (SELECT run_seq ...)`` sets (best when every run is checked: a count, a full sort);
    ``"exists"``: correlated probes (best when few candidate runs are checked: an index walk).
    Both mean the same."""
    if isinstance(node, f.And):
        return and_(*(compile_filter(item, style) for item in node.items))
    if isinstance(node, f.Or):
        return or_(*(compile_filter(item, style) for item in node.items))
    if isinstance(node, f.Not):
        return not_(compile_filter(node.item, style))
    return _compare(node, style)


def _compare(node: f.Compare, style: str) -> ColumnElement[bool]:
    kind = node.field.kind
    if kind in ("params", "metrics", "tags"):
        return _keyed(node, style)
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


def _keyed(node: f.Compare, style: str) -> ColumnElement[bool]:
    table, key = _KEYED[node.field.kind], node.field.key
    where = [table.c.key == key]
    if node.op != "exists":
        conditions = [_keyed_condition(node.field, table, op, value, numeric)
                      for op, value, numeric in _each(node)]
        where.append(or_(*conditions) if len(conditions) > 1 else conditions[0])
    if style == "exists":
        return exists().where(table.c.run_id == runs.c.id, *where)
    return runs.c.seq.in_(select(table.c.run_seq).where(*where, table.c.run_seq.is_not(None)))


_KEYED = {"params": params, "metrics": latest_metrics, "tags": tags}
_METRIC_COLUMN = {"last": "value", "min": "vmin", "max": "vmax"}


def _keyed_condition(fld: f.Field, table: Any, op: str, value: f.Value,
                     numeric: bool) -> ColumnElement[bool]:
    if fld.kind == "metrics":
        return _condition(fld, table.c[_METRIC_COLUMN[fld.agg]], op, value, numeric)
    if fld.kind == "params" and numeric and op != "~":
        return _condition(fld, table.c.num, op, value, True)
    return _text(table, op, _operand(fld, value, numeric), json_value=fld.kind == "params")


def _text(table: Any, op: str, text: str, json_value: bool) -> ColumnElement[bool]:
    """A text comparison on a param or a tag. Their ``text`` column holds the first
    TEXT_PREFIX characters (an index entry must stay small): equality of a longer text also
    checks the whole value; ``~`` looks in the whole value; ``<``, ``>``... order by the
    prefix. A param's whole value is JSON text (``"adam"`` with its quotes)."""
    column, whole = table.c.text, table.c.value
    if op == "~":
        found = whole.icontains(text, autoescape=True)
        return or_(column.icontains(text, autoescape=True), found) if json_value else found
    if op in ("=", "!="):
        full = json.dumps(text) if json_value else text
        equal = column == text if len(text) < TEXT_PREFIX else and_(
            column == text[:TEXT_PREFIX], whole == full)
        return equal if op == "=" else not_(equal)
    return f.OPERATORS[op](column, text[:TEXT_PREFIX])


def _condition(fld: f.Field, column: Any, op: str, value: f.Value,
               numeric: bool) -> ColumnElement[bool]:
    operand = _operand(fld, value, numeric)
    if op == "~":
        return column.icontains(str(operand), autoescape=True)
    return f.OPERATORS[op](column, operand)


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


def _where(query: RunQuery, style: str = "in") -> list[Any]:
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
        where.append(_keyed(f.Compare(f.Field("tags", key), "=", (value,), (False,)), "in"))
    if query.filter is not None:
        where.append(compile_filter(query.filter, style))
    if query.q:
        where.append(or_(runs.c.name.icontains(query.q, autoescape=True),
                         runs.c.note.icontains(query.q, autoescape=True),
                         runs.c.id.in_(select(tags.c.run_id).where(
                             tags.c.value.icontains(query.q, autoescape=True)))))
    if query.after is not None:
        start, run_id = query.after
        where.append(or_(runs.c.start_time < start,
                         and_(runs.c.start_time == start, runs.c.id < run_id)))
    return where


# -- sorting ----------------------------------------------------------------------------------
#
# A keyed sort (a metric or a param) reads the key's covering index in order instead of sorting:
# the runs it names are checked against the scope and the filter one by one, and the page ends
# the walk. A run's place is set by "groups": runs with a metric value, then runs without (or
# NaN); for a param, numbers, then texts, then runs without it. Each group is read in its own
# order; the runs lacking the key come last in either direction, newest first.


@dataclass
class _Group:
    """One stretch of a keyed sort: the rows of ``table`` for the key meeting ``where``, in
    ``column`` order."""

    table: Any
    column: Any
    where: list[Any]


def _groups(sort: f.SortKey) -> list[_Group] | None:
    fld = sort.field
    if fld.kind == "metrics":
        column = latest_metrics.c[_METRIC_COLUMN[fld.agg]]
        return [_Group(latest_metrics, column, [latest_metrics.c.key == fld.key,
                                                column.is_not(None)])]
    if fld.kind == "params":
        c = params.c
        return [_Group(params, c.num, [c.key == fld.key, c.num.is_not(None)]),
                _Group(params, c.text, [c.key == fld.key, c.num.is_(None)])]
    return None


def _in_group(group: _Group) -> ColumnElement[bool]:
    return runs.c.seq.in_(select(group.table.c.run_seq).where(*group.where))


def _walk(conn: Connection, query: RunQuery, group: _Group, offset: int, limit: int,
          cap: int | None) -> list[int] | None:
    """Up to ``limit`` run seqs of ``group`` from ``offset``, walking its index in order.

    With ``cap``, only the first ``cap`` index entries are read and each one's filters probed
    (cheap when the page fills early); None when that did not fill the page. Without, a join
    from the index walks as far as it must with the filters as sets (read once): for a deep
    page or a narrow filter.
    """
    column = group.column
    if cap is None:
        stmt = select(runs.c.seq).select_from(
            group.table.join(runs, runs.c.seq == group.table.c.run_seq)).where(
            *group.where, *_where(query, "in"))
        value = column
    else:
        walk = (select(group.table.c.run_seq.label("seq"), column.label("sort_value"))
                .where(*group.where, group.table.c.run_seq.is_not(None))
                .order_by(column.desc() if query.sort.descending else column.asc())
                .limit(cap).subquery("walk"))
        stmt = select(runs.c.seq).select_from(walk.join(runs, runs.c.seq == walk.c.seq)) \
            .where(*_where(query, "exists"))
        value = walk.c.sort_value
    stmt = stmt.order_by(value.desc() if query.sort.descending else value.asc(),
                         runs.c.start_time.desc(), runs.c.id.desc()).offset(offset).limit(limit)
    found = list(conn.execute(stmt).scalars())
    if cap is not None and len(found) < limit:
        return None
    return found


def _grouped(conn: Connection, query: RunQuery, groups: list[_Group], where: list[Any],
             total: int) -> list[int]:
    """The page of a keyed sort: each group in turn, then the runs lacking the key.

    The first group is tried with one probing walk first, as long as the matches' share of all
    runs says the page needs (twice over, at most WALK_CAP entries); when that does not fill
    it, the full walk goes group by group.
    """
    want = query.limit + 1
    runs_at_most = conn.execute(select(func.max(runs.c.seq))).scalar() or 1
    cap = 2 * (query.offset + want) * max(1, runs_at_most // max(total, 1)) + 64
    if cap <= WALK_CAP:
        first = _walk(conn, query, groups[0], query.offset, want, cap)
        if first is not None:
            return first
    found: list[int] = []
    offset = query.offset
    for group in groups:
        rows = _walk(conn, query, group, offset, want - len(found), None)
        found.extend(rows or ())
        if len(found) == want:
            return found
        offset = 0 if rows else offset - _count(conn, [*where, _in_group(group)])
    missing = [*where, *(not_(_in_group(g)) for g in groups)]
    stmt = (select(runs.c.seq).where(*missing)
            .order_by(runs.c.start_time.desc(), runs.c.id.desc())
            .offset(max(0, offset)).limit(want - len(found)))
    return found + list(conn.execute(stmt).scalars())


WALK_CAP = 8_000  # index entries a probing walk may read (about 5 us each) before the full walk


def _plain(conn: Connection, query: RunQuery, where: list[Any]) -> list[int]:
    """The page of a sort by a plain column or a tag: every match sorted (tags with a left
    join, runs without the tag last). Start time is never NULL: its order reads
    ``ix_runs_list`` backwards and stops at the page."""
    fld = query.sort.field
    descending = query.sort.descending
    stmt = select(runs.c.seq).where(*where)
    if fld.kind == "start_time":
        ends = [runs.c.start_time.desc(), runs.c.id.desc()] if descending else \
            [runs.c.start_time.asc(), runs.c.id.asc()]
        return _page_of(conn, stmt.order_by(*ends), query)
    if fld.kind == "tags":
        table = tags.alias("sort_key")
        stmt = stmt.outerjoin(table, and_(table.c.run_id == runs.c.id, table.c.key == fld.key))
        key = table.c.value
    else:
        key = _plain_column(fld.kind)
    order = (key.desc() if descending else key.asc()).nulls_last()
    return _page_of(conn, stmt.order_by(order, runs.c.start_time.desc(), runs.c.id.desc()),
                    query)


def _page_of(conn: Connection, stmt: Any, query: RunQuery) -> list[int]:
    return list(conn.execute(stmt.offset(query.offset).limit(query.limit + 1)).scalars())


def _count(conn: Connection, where: list[Any]) -> int:
    return int(conn.execute(select(func.count()).select_from(runs).where(*where)).scalar_one())


def _total(conn: Connection, query: RunQuery, where: list[Any]) -> int:
    """The matching runs. When the filter is a conjunction holding a comparison on a param or
    a metric, that comparison's covering index drives a join to ``runs`` (one integer probe per
    candidate), which SQLite runs faster than the same test as a set."""
    driver = _driver(query.filter)
    if driver is None:
        return _count(conn, where)
    table = _KEYED[driver.field.kind]
    rest = dataclasses.replace(query, filter=_without(query.filter, driver))
    conditions = [table.c.key == driver.field.key]
    if driver.op != "exists":
        parts = [_keyed_condition(driver.field, table, op, value, numeric)
                 for op, value, numeric in _each(driver)]
        conditions.append(or_(*parts) if len(parts) > 1 else parts[0])
    stmt = (select(func.count()).select_from(table.join(runs, runs.c.seq == table.c.run_seq))
            .where(*conditions, *_where(rest)))
    return int(conn.execute(stmt).scalar_one())


def _driver(node: f.Node | None) -> f.Compare | None:
    items = node.items if isinstance(node, f.And) else (node,) if node is not None else ()
    for item in items:
        if isinstance(item, f.Compare) and item.field.kind in ("params", "metrics"):
            return item
    return None


def _without(node: f.Node | None, item: f.Compare) -> f.Node | None:
    if not isinstance(node, f.And):
        return None
    rest = tuple(i for i in node.items if i is not item)
    return rest[0] if len(rest) == 1 else f.And(rest)


# -- the page ---------------------------------------------------------------------------------


def search(db: Database, query: RunQuery) -> dict[str, Any]:
    """``{"runs": [row], "total", "offset", "more"}`` for the runs table.

    Two statements: the count (filters as sets, so it reads covering indexes and probes runs by
    their integer key) and the page (an index walk when the sort is a metric or a param and the
    page fills early, else a full sort).
    """
    where = _where(query)
    with db.read() as conn:
        total = _total(conn, query, where)
        seqs: list[int] = []
        if total > query.offset:
            groups = _groups(query.sort)
            seqs = _grouped(conn, query, groups, where, total) if groups else \
                _plain(conn, query, where)
        more = len(seqs) > query.limit
        rows = page_rows(conn, _fetch(conn, seqs[:query.limit]), query.columns)
    return {"runs": rows, "total": total, "offset": query.offset, "more": more}


def run_ids(db: Database, query: RunQuery) -> list[str]:
    """The id of every run the query matches, newest first, without paging (an export)."""
    stmt = (select(runs.c.id).where(*_where(query))
            .order_by(runs.c.start_time.desc(), runs.c.id.desc()))
    with db.read() as conn:
        return list(conn.execute(stmt).scalars())


def _fetch(conn: Connection, seqs: list[int]) -> list[dict[str, Any]]:
    """The runs rows of a page, in the page's order (the sort only carried their keys)."""
    if not seqs:
        return []
    by_seq = {r["seq"]: dict(r) for r in conn.execute(select(runs).where(runs.c.seq.in_(seqs)))
              .mappings()}
    return [by_seq[s] for s in seqs if s in by_seq]


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
    wanted: dict[str, dict[str, list[tuple[str, str]]]] = {"params": {}, "metrics": {},
                                                          "tags": {}}
    for col in columns:
        if col.kind in wanted and col.key is not None:
            wanted[col.kind].setdefault(col.key, []).append((str(col), col.agg))
    if wanted["params"]:
        for run_id, key, value in conn.execute(
                select(params.c.run_id, params.c.key, params.c.value)
                .where(params.c.run_id.in_(ids), params.c.key.in_(list(wanted["params"])))):
            for name, _ in wanted["params"][key]:
                by_id[run_id]["values"][name] = json.loads(value)
    if wanted["tags"]:
        for run_id, key, value in conn.execute(
                select(tags.c.run_id, tags.c.key, tags.c.value)
                .where(tags.c.run_id.in_(ids), tags.c.key.in_(list(wanted["tags"])))):
            for name, _ in wanted["tags"][key]:
                by_id[run_id]["values"][name] = value
    if wanted["metrics"]:
        c = latest_metrics.c
        for run_id, key, last, low, high in conn.execute(
                select(c.run_id, c.key, c.value, c.vmin, c.vmax)
                .where(c.run_id.in_(ids), c.key.in_(list(wanted["metrics"])))):
            picked = {"last": last, "min": low, "max": high}
            for name, agg in wanted["metrics"][key]:
                by_id[run_id]["values"][name] = metric_out(picked[agg])
