"""``autolog runs``: find runs. The same query as the web UI's runs table (the filter grammar of
``autolog.filters``, sorting by any column, a count of all matches), computed in SQL over the
local store's index (``autolog.ui.index``) or by an ``autolog server`` (``--server URL``)."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import Any

from ..headlines import headline
from . import common
from .render import Cell, Column, Table, print_table, run_duration, status_cell, when

__all__ = ["cmd_runs", "configure"]

DEFAULT_LIMIT = 20
NO_LIMIT = 10**9
METRICS_SHOWN = 3


def configure(sub: Any) -> None:
    runs = sub.add_parser(
        "runs", help="list runs: filter, sort, pick columns (newest first)",
        description="List runs, newest first: top-level runs with a count of their child runs "
        "(search candidates), each with its headline metrics.",
        epilog='examples: autolog runs --filter "metrics.acc > 0.9 and params.model = xgb" '
        "--sort -metrics.val_acc;  autolog runs --status FAILED;  autolog runs --parent "
        "sweep-3 --columns params.C,metrics.mean_test_score")
    runs.add_argument("--filter", "-f", metavar="EXPR",
                      help="runs matching EXPR, e.g. 'metrics.acc > 0.9 and status = FINISHED' "
                      "(fields: status, name, project, start_time, end_time, duration, "
                      "params.K, metrics.K[:min|:max], tags.K; see docs/cli.md)")
    runs.add_argument("--sort", "-s", metavar="[-]KEY",
                      help="order by KEY, highest first with a leading '-' "
                      "(-metrics.val_acc, params.lr, duration); default: newest first")
    runs.add_argument("--limit", "-n", type=int, default=DEFAULT_LIMIT,
                      help=f"at most N runs (default {DEFAULT_LIMIT}; 0: all)")
    runs.add_argument("--all", "-a", action="store_true",
                      help="child runs too (search candidates, folds), not only top-level runs")
    runs.add_argument("--parent", metavar="RUN", help="the child runs of RUN")
    runs.add_argument("--status", type=common.status_name, metavar="STATUS",
                      help="only runs with this status: RUNNING, FINISHED, FAILED, KILLED, "
                      "CRASHED")
    runs.add_argument("--project", help="only this project")
    runs.add_argument("--columns", "-c", metavar="KEYS",
                      help="comma list of params.K, metrics.K[:min|:max], tags.K to show "
                      "instead of the METRICS column")
    runs.add_argument("--deleted", action="store_true",
                      help="deleted runs instead ('autolog restore RUN' brings one back)")
    common.store_args(runs, server=True, output=False)
    shape = runs.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="a JSON list of runs")
    shape.add_argument("--csv", action="store_true", help="CSV: one row per run")
    runs.set_defaults(func=cmd_runs)


def cmd_runs(args: argparse.Namespace) -> int:
    query = _query(args)
    if args.limit < 0:
        raise common.UsageError("--limit: give 0 (all) or more")
    page = _remote_page(args, query) if args.server else _local_page(args, query)
    rows, total = page["runs"], page["total"]
    if args.json:
        print(json.dumps(rows, indent=2))
    elif args.csv:
        _csv(rows, query["columns"])
    elif rows:
        print_table(_table(rows, query, args))
    elif "store" in page:
        print(f"no runs in {page['store']} yet (`autolog demo` records a few)",
              file=sys.stderr)
    else:
        print(_nothing(args), file=sys.stderr)
    _footer(args, len(rows), total, rows)
    return 0


def _query(args: argparse.Namespace) -> dict[str, Any]:
    """What the command line asks for, checked before any store is opened."""
    return {"filter": common.query_filter(args.filter), "sort": common.sort_key(args.sort),
            "columns": common.columns(args.columns), "raw_filter": args.filter}


# -- the local store --------------------------------------------------------------------------


def _local_page(args: argparse.Namespace, query: dict[str, Any]) -> dict[str, Any]:
    from ..server import search

    with common.open_store(args) as store:
        if store.empty:
            return {"runs": [], "total": 0, "store": store.root}
        parent = store.resolve(args.parent, deleted=None) if args.parent else None
        if _needs_points(query):
            store.index.fill_points()  # metrics.K:min/:max read every point once
        request = search.RunQuery(
            project=args.project, filter=query["filter"], sort=query["sort"] or
            search.DEFAULT_SORT, parent=parent, all=args.all, deleted=args.deleted,
            status=args.status, columns=query["columns"], limit=args.limit or NO_LIMIT)
        return search.search(store.db, request)


def _needs_points(query: dict[str, Any]) -> bool:
    fields = [c for c in query["columns"]]
    if query["sort"] is not None:
        fields.append(query["sort"].field)
    return any(f.kind == "metrics" and f.agg != "last" for f in fields) or \
        ":min" in (query["raw_filter"] or "") or ":max" in (query["raw_filter"] or "")


# -- a server ---------------------------------------------------------------------------------


def _remote_page(args: argparse.Namespace, query: dict[str, Any]) -> dict[str, Any]:
    from ..backends.http import ServerClient

    with ServerClient(args.server, args.token) as client:
        parent = resolve_remote(client, args.parent) if args.parent else None
        wanted = args.limit or NO_LIMIT
        found: list[dict[str, Any]] = []
        total = 0
        while len(found) < wanted:
            page = client.search(filter=args.filter, sort=args.sort, columns=args.columns,
                                 parent=parent, all=args.all, deleted=args.deleted,
                                 status=args.status, project=args.project, offset=len(found),
                                 limit=min(1000, wanted - len(found)))
            found += page["runs"]
            total = page["total"]
            if not page["runs"] or len(found) >= total:
                break
        return {"runs": found, "total": total}


def resolve_remote(client: Any, ref: str) -> str:
    """A run id on a server from an id, a unique id prefix or a unique name."""
    from .store import RunNotFound, ambiguous

    by_name = client.search(filter=f"name = {json.dumps(ref)}", all=True, limit=11)["runs"]
    by_id: list[dict[str, Any]] = []
    try:
        by_id = [client.get_run(ref)] if all(c in "0123456789abcdef" for c in ref.lower()) \
            else []
    except (LookupError, ValueError):
        pass
    found = list({r["id"]: r for r in by_id + by_name}.values())
    if len(found) == 1:
        return str(found[0]["id"])
    if not found:
        raise RunNotFound(f"no run {ref!r} on {client.url}: not a run id, a unique id prefix "
                          "or a run name")
    raise RunNotFound(ambiguous(ref, [{**r, "deleted": bool(r.get("deleted"))} for r in found]))


# -- output -----------------------------------------------------------------------------------


def _table(rows: list[dict[str, Any]], query: dict[str, Any], args: argparse.Namespace) -> Table:
    projects = {r["project"] for r in rows}
    show_project = len(projects) > 1 and not args.project
    show_children = any(r.get("children") for r in rows)
    columns = [Column("id"), Column("name", flexible=True, min_width=8)]
    if show_project:
        columns.append(Column("project", flexible=True, min_width=7, optional=True))
    columns += [Column("status"), Column("start", optional=True),
                Column("duration", align="right", optional=True)]
    if show_children:
        columns.append(Column("runs", align="right"))
    picked = [str(c) for c in query["columns"]]
    columns += [Column(name, align="right", upper=False) for name in picked] if picked else \
        [Column("metrics", flexible=True, min_width=20)]
    first = _mentioned_metrics(query)
    table = Table(columns)
    for row in rows:
        cells: list[Any] = [row["id"][:8], row["name"]]
        if show_project:
            cells.append(row["project"])
        cells += [status_cell(row["status"]), when(row["start_time"]), run_duration(row)]
        if show_children:
            cells.append(f"+{row['children']}" if row.get("children") else "")
        if picked:
            cells += [_value(row["values"].get(name), name) for name in picked]
        else:
            cells.append(metrics_text(row["metrics"], first))
        table.rows.append(cells)
    return table


def _mentioned_metrics(query: dict[str, Any]) -> list[str]:
    """Metric keys the sort names (shown first in the METRICS column)."""
    sort = query["sort"]
    return [sort.field.key] if sort is not None and sort.field.kind == "metrics" else []


def metrics_text(metrics: dict[str, Any], first: list[str] = (),  # type: ignore[assignment]
                 count: int = METRICS_SHOWN) -> str:
    from .render import number

    keys = headline(metrics, first)[:count]
    return "  ".join(f"{key}={number(_float(metrics[key]), key)}" for key in keys)


def _value(value: Any, name: str) -> Cell | str:
    from .render import number

    if value is None:
        return ""
    if name.startswith("metrics."):
        return number(_float(value), name)
    return value if isinstance(value, str) else number(value, name)


def _float(value: Any) -> Any:
    """A metric value from the query layer (NaN and infinities arrive as their names)."""
    from ..journal.codec import float_from_json

    return float_from_json(value) if isinstance(value, str) else value


def _csv(rows: list[dict[str, Any]], picked: list[Any]) -> None:
    names = [str(c) for c in picked]
    metric_keys = [] if names else sorted({k for r in rows for k in r["metrics"]})
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["id", "name", "project", "status", "parent_id", "start_time", "end_time",
                     "children", *names, *(f"metrics.{k}" for k in metric_keys)])
    for row in rows:
        writer.writerow([row["id"], row["name"], row["project"], row["status"],
                         row["parent_id"] or "", row["start_time"], row["end_time"] or "",
                         row.get("children", 0),
                         *(_csv_value(row["values"].get(n)) for n in names),
                         *(_csv_value(row["metrics"].get(k)) for k in metric_keys)])


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else value


def _nothing(args: argparse.Namespace) -> str:
    scope = " deleted" if args.deleted else ""
    if args.filter or args.status or args.project or args.parent:
        return f"no{scope} runs match"
    return f"no{scope} runs yet" + ("" if args.deleted else
                                    " (`autolog demo` records a few; `autolog runs --all` "
                                    "shows child runs too)" if not args.all else "")


def _footer(args: argparse.Namespace, shown: int, total: int, rows: list[dict[str, Any]]
            ) -> None:
    out = sys.stderr if args.json or args.csv else sys.stdout
    notes = []
    if shown < total:
        notes.append(f"showing {shown:,} of {total:,} runs — use --limit N for more "
                     "(--limit 0: all)")
    hidden = sum(r.get("children") or 0 for r in rows)
    if hidden and not args.all and not args.parent and not args.json and not args.csv:
        notes.append(f"{hidden:,} child runs not listed: --all lists them, --parent RUN "
                     "those of one run")
    for note in notes:
        print(note, file=out)
