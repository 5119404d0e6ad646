"""Where the CLI reads runs: the local store, found the way git finds a repository, its index,
and runs named by id, unique id prefix or unique name.

Finding the store, first match wins:

1. ``--dir DIR``;
2. ``AUTOLOG_DIR``, when it is set (an explicit choice wins over a search);
3. ``autolog-runs`` in the current directory, then in each parent directory up to ``/``.

A store that is not there is an error naming where it looked, never an empty table. Where new
runs are *written* does not change: ``AUTOLOG_DIR``, else ``./autolog-runs`` of the training
process's working directory (a search there could write into an unrelated project's store).
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..journal.reader import RunRecord
    from ..ui.index import Index

__all__ = ["STORE_NAME", "LocalStore", "RunNotFound", "StoreNotFound", "find_store"]

STORE_NAME = "autolog-runs"
INDEX_WAIT = 300.0  # seconds to wait for another CLI command indexing the same store
_HEX = re.compile(r"[0-9a-f]+")
_RUN_ID = re.compile(r"[0-9a-f]{32}")


class StoreNotFound(LookupError):
    """No local store where the CLI looked."""


class RunNotFound(LookupError):
    """No run, or several, answer to the name given."""


def find_store(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The local store to read: ``explicit`` (``--dir``), else ``AUTOLOG_DIR``, else the
    nearest ``autolog-runs`` from the current directory up."""
    if explicit is not None:
        return _existing(Path(explicit), "--dir")
    env = os.environ.get("AUTOLOG_DIR", "").strip()
    if env:
        return _existing(Path(env), "AUTOLOG_DIR")
    here = Path.cwd()
    for directory in (here, *here.parents):
        candidate = directory / STORE_NAME
        if candidate.is_dir():
            return candidate
    parents = len(here.parents)
    raise StoreNotFound(
        f"no run store found: looked for {STORE_NAME}/ in {here}"
        + (f" and its {parents} parent director{'y' if parents == 1 else 'ies'}" if parents
           else "")
        + ". Point at one with --dir DIR or AUTOLOG_DIR=DIR (runs are written to "
        "AUTOLOG_DIR, else ./autolog-runs of the directory the training ran in); "
        "`autolog demo` records a few.")


def _existing(path: Path, source: str) -> Path:
    path = path.expanduser().absolute()
    if path.is_dir():
        return path
    what = "is not a directory" if path.exists() else "does not exist"
    raise StoreNotFound(f"no run store at {path} (from {source}): it {what}. Runs are written "
                        "to AUTOLOG_DIR, else ./autolog-runs of the directory the training "
                        "ran in.")


class LocalStore:
    """One command's view of a local store: its index (opened and brought up to date on first
    use) and run names resolved through it. Use as a context manager."""

    def __init__(self, root: Path):
        self.root = root
        self._index: Index | None = None

    def __enter__(self) -> LocalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._index is not None:
            self._index.stop()
            self._index = None

    @property
    def empty(self) -> bool:
        """No run here (and no index made before): nothing to read, and no reason to write
        an index into what may not be a store at all."""
        if self._index is not None or (self.root / ".index.sqlite").exists():
            return False
        with os.scandir(self.root) as entries:
            return not any(_RUN_ID.fullmatch(e.name) and e.is_dir() for e in entries)

    @property
    def index(self) -> Index:
        """The store's index, with what changed since it was last read (new runs, live runs,
        edited or resumed ones) indexed now."""
        if self._index is None:
            from ..ui.index import Index

            index = Index(self.root, lazy=True, kind="cli")
            began = time.monotonic()
            if not index.acquire(wait=1.0) and index.holder() != "ui":
                print("autolog: another autolog command is indexing this store; waiting for "
                      "it...", file=sys.stderr, flush=True)
                index.acquire(wait=INDEX_WAIT)
            changed = index.refresh(full=False)
            if changed > 1000 or time.monotonic() - began > 5:
                print(f"autolog: indexed {changed:,} runs of {self.root} in "
                      f"{time.monotonic() - began:.0f}s (once; later commands read the index)",
                      file=sys.stderr)
            self._index = index
        return self._index

    @property
    def db(self) -> Any:
        return self.index.db

    def reindex(self, run_ids: list[str]) -> None:
        """Index these runs now (after this command appended to their journals)."""
        if self._index is None:
            return  # the next command's refresh reads the `.changed` list
        index = self._index
        for run_id in run_ids:
            journal = self.root / run_id / "events.jsonl"
            if index.owner and journal.exists():
                index.refresh_run(run_id, journal.stat().st_size)

    def record(self, run_id: str) -> RunRecord:
        from ..journal.reader import load_run

        return load_run(self.root / run_id)

    # -- naming runs ---------------------------------------------------------------------------

    def resolve(self, ref: str, *, deleted: bool | None = False) -> str:
        """The id of the run ``ref`` names: an id, a unique id prefix or a unique name.

        ``deleted``: which runs win when several share the name or prefix: live ones (False),
        deleted ones (True, for ``restore``), none (None: any).
        """
        found = self.candidates(ref)
        exact = [c for c in found if c["id"] == ref.lower()]
        if exact:
            return str(exact[0]["id"])
        if len(found) > 1 and deleted is not None:
            preferred = [c for c in found if c["deleted"] is deleted]
            found = preferred or found
        if len(found) == 1:
            return str(found[0]["id"])
        if not found:
            raise RunNotFound(f"no run {ref!r} in {self.root}: not a run id, a unique id prefix "
                              "or a run name (`autolog runs --all` lists them)")
        raise RunNotFound(ambiguous(ref, found))

    def candidates(self, ref: str) -> list[dict[str, Any]]:
        """Runs whose id starts with ``ref`` (lower-case hex) or whose name is ``ref``."""
        from sqlalchemy import or_, select

        from ..server.tables import runs

        if not ref:
            raise RunNotFound("a run id, id prefix or name is needed, not ''")
        if self.empty:
            return []
        conditions = [runs.c.name == ref]
        if _HEX.fullmatch(ref.lower()):
            conditions.append(runs.c.id.startswith(ref.lower(), autoescape=True))
        query = (select(runs.c.id, runs.c.name, runs.c.status, runs.c.start_time,
                        runs.c.deleted, runs.c.parent_id)
                 .where(or_(*conditions)).order_by(runs.c.start_time.desc()).limit(51))
        with self.db.read() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        for row in rows:
            row["deleted"] = row["deleted"] is not None
        return rows


def ambiguous(ref: str, found: list[dict[str, Any]]) -> str:
    """The error for a name or prefix several runs answer to, listing them."""
    from .render import when

    shown = found[:10]
    lines = [f"{ref!r} names {len(found) if len(found) <= 50 else 'more than 50'} runs; give "
             "more of the id:"]
    for row in shown:
        extra = " (deleted)" if row["deleted"] else ""
        lines.append(f"  {row['id'][:12]}  {row['name']}  {row['status']}  "
                     f"{when(row['start_time'])}{extra}")
    if len(found) > len(shown):
        lines.append(f"  ... and {len(found) - len(shown)} more")
    return "\n".join(lines)
