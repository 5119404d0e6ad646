"""Editing recorded runs: ``rename``, ``tag``, ``note``, ``rm`` (soft), ``restore`` and ``gc``.

Every edit is a line appended to the run's journal (``autolog.journal.edits``), as the web UI
writes them: the journal stays the source of truth, ``autolog ui`` and the index see the edit,
and ``autolog sync`` carries it to MLflow, W&B and ``autolog server``. ``rm`` only marks runs
deleted (they leave listings; ``restore`` brings them back); ``gc`` removes deleted runs' files
for good.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from . import common

__all__ = ["configure"]

LISTED = 10  # runs named in a confirmation before "... and N more"


def configure(sub: Any) -> None:
    rename = sub.add_parser("rename", help="rename a run", description="Rename a run.")
    rename.add_argument("run", metavar="RUN", help="run id, unique id prefix or unique name")
    rename.add_argument("name", metavar="NAME", help="its new name")
    rename.set_defaults(func=cmd_rename)

    tag = sub.add_parser("tag", help="set or remove a run's tags",
                         description="Set tags (KEY=VALUE) on a run, or remove them (--rm).",
                         epilog="example: autolog tag sweep-3 team=vision baseline=yes "
                         "--rm draft")
    tag.add_argument("run", metavar="RUN", help="run id, unique id prefix or unique name")
    tag.add_argument("tags", nargs="*", metavar="KEY=VALUE", help="tags to set")
    tag.add_argument("--rm", action="append", default=[], metavar="KEY",
                     help="remove the tag KEY (repeat for several)")
    tag.set_defaults(func=cmd_tag)

    note = sub.add_parser("note", help="set a run's note (free text)",
                          description="Set the free-text note of a run ('' removes it).")
    note.add_argument("run", metavar="RUN", help="run id, unique id prefix or unique name")
    note.add_argument("text", metavar="TEXT", help="the note ('' to remove it)")
    note.set_defaults(func=cmd_note)

    rm = sub.add_parser("rm", help="delete runs (restorable until 'autolog gc')",
                        description="Mark runs deleted, with their child runs: they leave "
                        "listings and exports; 'autolog restore' brings them back, 'autolog gc' "
                        "removes their files for good. Asks first on a terminal.")
    rm.add_argument("runs", nargs="+", metavar="RUN", help="runs to delete")
    rm.add_argument("--yes", "-y", action="store_true", help="do not ask (needed when stdin is "
                    "not a terminal)")
    rm.set_defaults(func=cmd_rm)

    restore = sub.add_parser("restore", help="bring deleted runs back",
                             description="Restore deleted runs (and their deleted child runs).")
    restore.add_argument("runs", nargs="+", metavar="RUN", help="runs to restore")
    restore.set_defaults(func=cmd_restore)

    gc = sub.add_parser("gc", help="remove deleted runs' files for good",
                        description="Remove the files of deleted runs ('autolog rm') for good "
                        "and say how much space that freed. Runs whose backends have not "
                        "received everything yet are kept unless --force (run 'autolog sync' "
                        "first). Asks first on a terminal.")
    gc.add_argument("--yes", "-y", action="store_true", help="do not ask")
    gc.add_argument("--force", action="store_true",
                    help="also runs not yet delivered to their backends")
    gc.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    gc.set_defaults(func=cmd_gc)

    for parser in (rename, tag, note, rm, restore, gc):
        common.store_args(parser, output=False)


# -- one run's edits --------------------------------------------------------------------------


def _edit(args: argparse.Namespace, ref: str, events: list[dict[str, Any]],
          deleted: bool | None = False) -> tuple[str, str]:
    """Append ``events`` to the run ``ref`` names; returns its id and (former) name."""
    from ..journal.edits import append_events

    with common.open_store(args) as store:
        run_id = store.resolve(ref, deleted=deleted)
        name = store.record(run_id).name
        if events:
            append_events(store.root / run_id, events)
            store.reindex([run_id])
    return run_id, name


def cmd_rename(args: argparse.Namespace) -> int:
    from ..journal.edits import edit_events

    name = args.name.strip()
    if not name or "\n" in name:
        raise common.UsageError("rename: give a new name (one line, not empty)")
    run_id, old = _edit(args, args.run, edit_events(name=name), deleted=None)
    print(f"renamed {run_id[:8]}: {old} -> {name}")
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    from ..journal.edits import edit_events

    tags = dict(_pair(raw) for raw in args.tags)
    if not tags and not args.rm:
        raise common.UsageError("tag: give KEY=VALUE tags to set, or --rm KEY")
    run_id, name = _edit(args, args.run, edit_events(tags=tags, remove_tags=args.rm),
                         deleted=None)
    done = [f"{k}={v}" for k, v in tags.items()] + [f"-{k}" for k in args.rm if k not in tags]
    print(f"tagged {run_id[:8]} ({name}): {' '.join(done)}")
    return 0


def _pair(raw: str) -> tuple[str, str]:
    key, sep, value = raw.partition("=")
    key = key.strip()
    if not sep or not key or "\n" in key:
        raise common.UsageError(f"tag: {raw!r} is not KEY=VALUE")
    return key, value


def cmd_note(args: argparse.Namespace) -> int:
    from ..journal.edits import edit_events

    run_id, name = _edit(args, args.run, edit_events(note=args.text), deleted=None)
    print(f"{'noted' if args.text else 'note removed from'} {run_id[:8]} ({name})")
    return 0


# -- delete, restore --------------------------------------------------------------------------


def cmd_rm(args: argparse.Namespace) -> int:
    from ..journal.edits import append_events, edit_events

    with common.open_store(args) as store:
        named = list(dict.fromkeys(store.resolve(ref) for ref in args.runs))
        rows = _rows(store, named)
        children = [r for r in _children(store, named) if not r["deleted"]]
        targets = [r for r in rows if not r["deleted"]] + children
        if not targets:
            print("nothing to delete: " + ("that run is" if len(rows) == 1 else
                                           "those runs are") + " deleted already")
            return 0
        question = _question("Delete", [r for r in rows if not r["deleted"]], len(children))
        if not common.confirm(question + " (`autolog restore` brings them back)?", args.yes):
            print("nothing deleted")
            return 1
        for row in targets:
            append_events(store.root / row["id"], edit_events(deleted=True))
        store.reindex([r["id"] for r in targets])
    print(f"deleted {_count(len(targets))} (`autolog restore RUN` brings one back, "
          "`autolog gc` removes them for good)")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from ..journal.edits import append_events, edit_events

    with common.open_store(args) as store:
        named = list(dict.fromkeys(store.resolve(ref, deleted=True) for ref in args.runs))
        rows = _rows(store, named)
        targets = [r for r in rows if r["deleted"]] + \
            [r for r in _children(store, named) if r["deleted"]]
        for row in targets:
            append_events(store.root / row["id"], edit_events(deleted=False))
        store.reindex([r["id"] for r in targets])
    if not targets:
        print("nothing to restore: not deleted")
    else:
        print(f"restored {_count(len(targets))}: "
              + ", ".join(r["name"] for r in targets[:LISTED])
              + (f" ... and {len(targets) - LISTED} more" if len(targets) > LISTED else ""))
    return 0


def _rows(store: Any, ids: list[str]) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from ..server.tables import runs

    query = select(runs.c.id, runs.c.name, runs.c.deleted, runs.c.parent_id, runs.c.status) \
        .where(runs.c.id.in_(ids))
    with store.db.read() as conn:
        found = {r["id"]: {**r, "deleted": r["deleted"] is not None}
                 for r in conn.execute(query).mappings()}
    return [found[i] for i in ids if i in found]


def _children(store: Any, ids: list[str]) -> list[dict[str, Any]]:
    """Every descendant of the runs ``ids`` (children, their children...)."""
    from sqlalchemy import select

    from ..server.tables import runs

    found: list[dict[str, Any]] = []
    level = list(ids)
    while level:
        query = select(runs.c.id, runs.c.name, runs.c.deleted, runs.c.parent_id,
                       runs.c.status).where(runs.c.parent_id.in_(level))
        with store.db.read() as conn:
            rows = [{**r, "deleted": r["deleted"] is not None}
                    for r in conn.execute(query).mappings()]
        found += rows
        level = [r["id"] for r in rows]
    return found


def _question(verb: str, rows: list[dict[str, Any]], children: int) -> str:
    names = ", ".join(f"{r['name']} ({r['id'][:8]})" for r in rows[:LISTED])
    if len(rows) > LISTED:
        names += f" ... and {len(rows) - LISTED} more"
    what = _count(len(rows)) + (f": {names}" if names else "")
    if children:
        what += f", with {children} child run{'s' if children != 1 else ''}"
    return f"{verb} {what}"


def _count(n: int) -> str:
    return f"{n} run{'s' if n != 1 else ''}"


# -- gc ---------------------------------------------------------------------------------------


def cmd_gc(args: argparse.Namespace) -> int:
    with common.open_store(args) as store:
        doomed = [] if store.empty else _deleted(store)
        live, undelivered, removable = _sort_out(store.root, doomed, args.force)
        for row in live:
            print(f"kept {row['name']} ({row['id'][:8]}): a process is still running it",
                  file=sys.stderr)
        if undelivered:
            print(f"kept {_count(len(undelivered))} whose backends have not received "
                  "everything (its deletion included): run `autolog sync` first, or gc --force",
                  file=sys.stderr)
        if not removable:
            print("nothing to remove" + ("" if doomed else ": no deleted runs "
                                         "(`autolog rm RUN` deletes one)"))
            return 0
        size = sum(_size(store.root / r["id"]) for r in removable)
        question = f"Remove {_count(len(removable))} for good ({_bytes(size)})"
        if args.dry_run:
            print(f"would remove {_count(len(removable))}, {_bytes(size)}:")
            for row in removable:
                print(f"  {row['id'][:8]}  {row['name']}")
            return 0
        if not common.confirm(question + "? This cannot be undone", args.yes):
            print("nothing removed")
            return 1
        for row in removable:
            shutil.rmtree(store.root / row["id"], ignore_errors=True)
        store.index.refresh(full=False)  # the index forgets them
    print(f"removed {_count(len(removable))}: {_bytes(size)} freed")
    return 0


def _deleted(store: Any) -> list[dict[str, Any]]:
    """Deleted runs, and the runs below them (a child of a deleted run goes with it)."""
    from sqlalchemy import select

    from ..server.tables import runs

    query = select(runs.c.id, runs.c.name, runs.c.deleted, runs.c.parent_id, runs.c.status) \
        .where(runs.c.deleted.is_not(None))
    with store.db.read() as conn:
        rows = [{**r, "deleted": True} for r in conn.execute(query).mappings()]
    seen = {r["id"] for r in rows}
    rows += [r for r in _children(store, list(seen)) if r["id"] not in seen]
    return list({r["id"]: r for r in rows}.values())


def _sort_out(root: Path, rows: list[dict[str, Any]], force: bool
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(still running, not yet delivered, removable)."""
    from ..journal.reader import lock_is_held, read_meta

    live, undelivered, removable = [], [], []
    for row in rows:
        path = root / row["id"]
        meta = read_meta(path) or {}
        if lock_is_held(path, meta):
            live.append(row)
        elif not force and not _delivered(path, [b for b in meta.get("backends", ())
                                                 if b != "local"]):
            undelivered.append(row)
        else:
            removable.append(row)
    return live, undelivered, removable


def _delivered(path: Path, backends: list[str]) -> bool:
    """Has each remote backend the run was recorded for acknowledged its whole journal? (Read
    from the delivery cursors: ``delivery/<backend>-<destination>.json``.)"""
    from ..journal.files import DELIVERY, JOURNAL, read_json

    try:
        size = (path / JOURNAL).stat().st_size
    except OSError:
        return True
    for name in backends:
        cursors = (path / DELIVERY).glob(f"{name}*.json")
        if not any(read_json(c).get("offset", 0) >= size for c in cursors):
            return False
    return True


def _size(path: Path) -> int:
    total = 0
    for directory, _, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(directory, name)).st_size
            except OSError:
                pass
    return total


def _bytes(size: int) -> str:
    from .render import bytes_text

    return bytes_text(size)
