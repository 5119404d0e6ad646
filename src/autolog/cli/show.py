"""``autolog show RUN``: one run on one screen: what it is, its params, its user tags, its last
metric values (system metrics and the context tags counted, listed with ``--all``), models,
artifacts and media."""

from __future__ import annotations

import argparse
import json
from typing import Any

from . import common
from .render import number, run_duration, when

__all__ = ["cmd_show", "configure", "detail", "summary"]

ARTIFACTS_SHOWN = 10
CONTEXT_KEPT = ("autolog.git.commit", "autolog.git.dirty", "autolog.source.argv")


def configure(sub: Any) -> None:
    show = sub.add_parser("show", help="one run: params, tags, last metrics, artifacts",
                          description="One run: params, tags, last metric values, models, "
                          "artifacts and media.")
    show.add_argument("run", help="run id, unique id prefix or unique run name")
    show.add_argument("--all", "-a", action="store_true",
                      help="also system metrics, every context tag and every artifact")
    common.store_args(show, server=True)
    show.set_defaults(func=cmd_show)


def summary(record: Any) -> dict[str, Any]:
    """The JSON shape of a run in ``autolog runs --json``'s older form (the server's too)."""
    return {"id": record.id, "name": record.name, "project": record.project,
            "status": record.status, "parent_id": record.parent_id,
            "start_time": record.start_time, "end_time": record.end_time,
            "metrics": record.metrics}


def detail(record: Any) -> dict[str, Any]:
    """The JSON shape of ``autolog show --json``."""
    return {**summary(record), "params": record.params, "tags": record.tags,
            "artifacts": record.artifacts, "models": record.models, "note": record.note,
            "deleted": record.deleted}


def cmd_show(args: argparse.Namespace) -> int:
    media: list[dict[str, Any]] = []
    if args.server:
        from ..backends.http import ServerClient
        from .listing import resolve_remote

        with ServerClient(args.server, args.token) as client:
            data = client.get_run(resolve_remote(client, args.run))
    else:
        with common.open_store(args) as store:
            record = store.record(store.resolve(args.run, deleted=None))
        data = detail(record)
        media = [{"key": m.key, "kind": m.kind, "step": m.step} for m in record.media]
    if args.json:
        print(json.dumps(data, indent=2, default=str))
        return 0
    _print_run(data, media, args.all)
    return 0


def _print_run(data: dict[str, Any], media: list[dict[str, Any]], everything: bool) -> None:
    head = [("run", data["id"]), ("name", data["name"]), ("project", data["project"]),
            ("status", data["status"] + (" (deleted: `autolog restore` brings it back)"
                                         if data.get("deleted") else "")),
            ("started", when(data.get("start_time"))), ("duration", run_duration(data))]
    if data.get("parent_id"):
        head.append(("parent", data["parent_id"]))
    if data.get("note"):
        head.append(("note", data["note"]))
    for label, value in head:
        print(f"{label:<9}{value}")
    _section("params", data.get("params") or {}, lambda k, v: str(v))
    tags = data.get("tags") or {}
    shown_tags = tags if everything else {k: v for k, v in tags.items()
                                          if not k.startswith("autolog.") or k in CONTEXT_KEPT}
    _section("tags", shown_tags, lambda k, v: v,
             hidden=len(tags) - len(shown_tags), what="context tags")
    metrics = data.get("metrics") or {}
    shown_metrics = metrics if everything else {k: v for k, v in metrics.items()
                                                if not k.startswith("system/")}
    _section("metrics", shown_metrics, lambda k, v: number(v, k),
             hidden=len(metrics) - len(shown_metrics), what="system metrics")
    if data.get("models"):
        print("\nmodels:")
        for name, spec in data["models"].items():
            print(f"  {name}  {spec.get('flavor', '')} {spec.get('format', '')}".rstrip())
    _artifacts(data.get("artifacts") or [], everything)
    _print_media(media)


def _section(title: str, items: dict[str, Any], show: Any, hidden: int = 0,
             what: str = "") -> None:
    if not items and not hidden:
        return
    print(f"\n{title}:")
    width = max((len(k) for k in items), default=0)
    for key, value in sorted(items.items()):
        print(f"  {key:<{width}}  {show(key, value)}")
    if hidden:
        print(f"  ({hidden} {what} not shown: --all)")


def _artifacts(names: list[str], everything: bool) -> None:
    if not names:
        return
    print("\nartifacts:")
    shown = names if everything else names[:ARTIFACTS_SHOWN]
    for name in shown:
        print(f"  {name}")
    if len(names) > len(shown):
        print(f"  ... and {len(names) - len(shown)} more (--all)")


def _print_media(media: list[dict[str, Any]]) -> None:
    """One line per key: its kind, how many items, the steps they span."""
    by_key: dict[tuple[str, str], list[int]] = {}
    for item in media:
        by_key.setdefault((item["key"], item["kind"]), []).append(item["step"])
    if by_key:
        print("\nmedia:")
        width = max(len(key) for key, _ in by_key)
        for (key, kind), steps in by_key.items():
            span = f"step {steps[0]}" if len(steps) == 1 else \
                f"{len(steps)} items, steps {min(steps)}-{max(steps)}"
            print(f"  {key:<{width}}  {kind:<9}  {span}")
