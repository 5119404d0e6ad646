"""``autolog diff RUN RUN [RUN...]``: what differs between runs. Status and duration; the params
and tags that differ (``--all``: every one); each metric's last value side by side, the best one
highlighted when the metric's name says which way is better (``*`` when not in colour)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..headlines import better, direction, headline
from . import common
from .render import Cell, Column, Table, number, print_table, run_duration, status_cell, when

__all__ = ["cmd_diff", "configure", "compare"]

CONTEXT_KEPT = ("autolog.git.commit", "autolog.git.dirty", "autolog.source.argv")
MISSING = "-"


def configure(sub: Any) -> None:
    diff = sub.add_parser(
        "diff", help="compare runs: params and tags that differ, metrics side by side",
        description="Compare two or more runs: status and duration, the params and tags that "
        "differ, and each metric's last value side by side with the best one highlighted "
        "(lower is better for losses and errors, higher for accuracies and scores).")
    diff.add_argument("runs", nargs="+", metavar="RUN",
                      help="two or more runs (id, unique id prefix or unique name)")
    diff.add_argument("--all", "-a", action="store_true",
                      help="every param and tag, the same or not; system metrics too")
    common.store_args(diff, server=True)
    diff.set_defaults(func=cmd_diff)


def cmd_diff(args: argparse.Namespace) -> int:
    if len(args.runs) < 2:
        raise common.UsageError("diff: give two runs or more")
    runs = _load(args)
    result = compare(runs, everything=args.all)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    _print(result)
    return 0


def _load(args: argparse.Namespace) -> list[dict[str, Any]]:
    if args.server:
        from ..backends.http import ServerClient
        from .listing import resolve_remote

        with ServerClient(args.server, args.token) as client:
            return [client.get_run(resolve_remote(client, ref)) for ref in args.runs]
    from .show import detail

    with common.open_store(args) as store:
        ids = [store.resolve(ref, deleted=None) for ref in args.runs]
        return [detail(store.record(run_id)) for run_id in ids]


def compare(runs: list[dict[str, Any]], everything: bool = False) -> dict[str, Any]:
    """The comparison as data (what ``--json`` prints)."""
    params = _keyed([r.get("params") or {} for r in runs], everything)
    tags = _keyed([_user_tags(r.get("tags") or {}, everything) for r in runs], everything)
    metric_maps = [{k: v for k, v in (r.get("metrics") or {}).items()
                    if everything or not k.startswith("system/")} for r in runs]
    keys = set().union(*metric_maps)
    ordered = headline(keys)
    ordered += sorted(keys - set(ordered))
    metrics = {}
    for key in ordered:
        values = [m.get(key) for m in metric_maps]
        best = better(key, values)
        metrics[key] = {"values": values, "direction": direction(key),
                        "best": [i for i, v in enumerate(values) if best is not None and
                                 v == best] if len(set(values)) > 1 else []}
    return {"runs": [_head(r) for r in runs], "params": params, "tags": tags,
            "params_same": _same_count(runs, "params"), "metrics": metrics}


def _head(run: dict[str, Any]) -> dict[str, Any]:
    start, end = run.get("start_time"), run.get("end_time")
    return {"id": run["id"], "name": run["name"], "project": run["project"],
            "status": run["status"], "start_time": start, "end_time": end,
            "duration_s": (end - start) / 1000 if start and end else None,
            "parent_id": run.get("parent_id")}


def _user_tags(tags: dict[str, str], everything: bool) -> dict[str, str]:
    return {k: v for k, v in tags.items()
            if everything or not k.startswith("autolog.") or k in CONTEXT_KEPT}


def _keyed(maps: list[dict[str, Any]], everything: bool) -> dict[str, list[Any]]:
    """``key -> [value in each run]`` (None where a run lacks it), only keys that differ unless
    ``everything``."""
    keys = sorted(set().union(*maps))
    out = {}
    for key in keys:
        values = [m.get(key) for m in maps]
        if everything or any(v != values[0] or (key in m) != (key in maps[0])
                             for v, m in zip(values, maps, strict=True)):
            out[key] = values
    return out


def _same_count(runs: list[dict[str, Any]], what: str) -> int:
    maps = [r.get(what) or {} for r in runs]
    common_keys = set(maps[0]).intersection(*maps[1:])
    return sum(1 for k in common_keys if all(m[k] == maps[0][k] for m in maps))


# -- output -----------------------------------------------------------------------------------


def _print(result: dict[str, Any]) -> None:
    runs = result["runs"]
    labels = [f"{r['name']} ({r['id'][:8]})" for r in runs]
    columns = [Column("", min_width=8)] + [Column(label, flexible=True, min_width=10,
                                                  upper=False) for label in labels]
    head = Table(columns, title=None)
    head.rows.append(["status", *(status_cell(r["status"]) for r in runs)])
    head.rows.append(["started", *(when(r["start_time"]) for r in runs)])
    head.rows.append(["duration", *(run_duration(r) for r in runs)])
    if len({r["project"] for r in runs}) > 1:
        head.rows.append(["project", *(r["project"] for r in runs)])
    print_table(head)
    same = result["params_same"]
    _section("params", result["params"], columns,
             f"{same} param{'s are' if same != 1 else ' is'} the same in every run" if same
             else "")
    _section("tags", result["tags"], columns, "")
    _metrics(result["metrics"], columns)


def _section(title: str, values: dict[str, list[Any]], columns: list[Column], same: str
             ) -> None:
    print()
    if not values:
        print(f"{title}: no differences" + (f" ({same})" if same else ""))
        return
    table = Table([Column(title, min_width=8), *columns[1:]])
    for key, row in values.items():
        table.rows.append([key, *(MISSING if v is None else _text(v) for v in row)])
    print_table(table)
    if same:
        print(f"({same})")


def _metrics(metrics: dict[str, dict[str, Any]], columns: list[Column]) -> None:
    print()
    if not metrics:
        print("metrics: none")
        return
    table = Table([Column("metrics", min_width=8), Column("better"),
                   *(Column(c.header, min_width=c.min_width, align="right", upper=False)
                     for c in columns[1:])])
    for key, found in metrics.items():
        way = {"min": "lower", "max": "higher"}.get(found["direction"] or "", "")
        cells: list[Any] = [key, way]
        for i, value in enumerate(found["values"]):
            text = MISSING if value is None else number(value, key)
            cells.append(Cell(text, "bold green", " *") if i in found["best"] else text)
        table.rows.append(cells)
    print_table(table)
    if any(found["best"] for found in metrics.values()):
        print("(the best value of each metric is in bold green, or marked * without colour)")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else number(value)
