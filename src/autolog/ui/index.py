"""The index of a local store: the server's schema in an SQLite file beside the runs.

``autolog ui`` reads the local store through the same tables and queries as ``autolog server``
(``autolog.server.search``, ``.query``, ``.series``), so there is one read path. This module
keeps those tables in step with the run directories:

- Each run has a cursor in the index (table ``index_runs``): the journal's identity (device,
  inode) and two byte offsets, ``offset`` (summary: the run, params, tags, each metric's last/
  min/max/count, artifacts, models, edits) and ``points_offset`` (metric points and rollups).
  Re-opening the store reads only the bytes past the cursors; a journal replaced or truncated
  is indexed again from the start. The cursors live in the index, never in the run directories:
  deleting ``.index.sqlite`` loses nothing, the next start rebuilds it.
- Points lag behind summaries on purpose. The first open of a large store indexes every run's
  summary first (what the runs table needs; a few seconds for 10,000 runs), then fills points in
  the background, newest runs first; a history asked for before its run's points are in is
  filled on the spot. A live run gets both every poll.
- Status is live: a run without an ``end`` event is RUNNING while its ``run.lock`` is held and
  CRASHED once it is free, checked at every poll.
- Lines are read with ``store.iter_journal``: a corrupt line is skipped, a torn last line waits.

Why not the replay code of ``autolog sync`` (``delivery.py``)? It delivers one run to one
backend, saving a cursor file in the run directory after every call and taking a lock per run:
right for delivery, wrong for a cache that must leave the store untouched and index 10,000 runs
in a few seconds. The index reads the same journal with the same reader in bulk instead.

One process indexes a store at a time (``.index.lock``); another ``autolog ui`` on the same
store reads the index that one keeps fresh, and takes over if it exits.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from .. import store
from ..server import series
from ..server.db import Database
from ..server.ingest import param_row
from ..server.models import (
    artifacts,
    latest_metrics,
    metric_rollups,
    metrics,
    models,
    params,
    runs,
    tags,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["INDEX_NAME", "Index"]

log = logging.getLogger("autolog.ui")

INDEX_NAME = ".index.sqlite"
LOCK_NAME = ".index.lock"
#: bumped when what the index derives from a journal changes: an older index is rebuilt
INDEX_VERSION = 1
FULL_SCAN_EVERY = 30.0  # seconds between checks of ended runs' journals (edits from elsewhere)
POINTS_CHUNK = 200_000  # points per transaction while filling histories
SUMMARY_CHUNK = 500  # runs per transaction on a first indexing

_CURSORS = """
CREATE TABLE IF NOT EXISTS index_runs (
    run_id TEXT PRIMARY KEY,
    identity TEXT NOT NULL,
    "offset" INTEGER NOT NULL,
    points_offset INTEGER NOT NULL,
    ended INTEGER NOT NULL
)"""
_INFO = "CREATE TABLE IF NOT EXISTS index_info (name TEXT PRIMARY KEY, value TEXT NOT NULL)"
_RUN_TABLES = (runs, params, tags, latest_metrics, metrics, metric_rollups, artifacts, models)


@dataclass
class Cursor:
    run_id: str
    identity: str
    offset: int
    points_offset: int
    ended: bool
    seq: int = 0  # runs.seq


@dataclass
class _Delta:
    """What a stretch of one run's journal changes in the summary tables."""

    run: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    untagged: set[str] = field(default_factory=set)
    metrics: dict[str, tuple[list[int], list[float | None], list[int]]] = \
        field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)
    models: dict[str, Any] = field(default_factory=dict)
    ended: bool = False

    def apply(self, record: dict[str, Any]) -> None:
        kind = record.get("t")
        handler = _HANDLERS.get(kind)  # type: ignore[arg-type]
        if handler is not None:
            try:
                handler(self, record)
            except (KeyError, TypeError, ValueError, AttributeError):
                pass  # a line of the right type but the wrong shape: skipped like bad JSON


def _start(delta: _Delta, r: dict[str, Any]) -> None:
    delta.run.update(name=str(r.get("name", "")), project=str(r.get("project") or "default"),
                     parent_id=r.get("parent"), start_time=int(r.get("time", 0)))


def _metrics(delta: _Delta, r: dict[str, Any]) -> None:
    for key, (steps, values, stamps) in r["d"].items():
        column = delta.metrics.get(key)
        if column is None:
            column = delta.metrics[key] = ([], [], [])
        n = min(len(steps), len(values), len(stamps))
        column[0].extend(int(s) for s in steps[:n])
        column[1].extend(_stored(v) for v in values[:n])
        column[2].extend(int(t) for t in stamps[:n])


def _stored(raw: Any) -> float | None:
    value = store.metric_value(raw)
    return None if value != value else value


def _tags(delta: _Delta, r: dict[str, Any]) -> None:
    for key, value in r["d"].items():
        delta.tags[str(key)] = str(value)
        delta.untagged.discard(str(key))


def _untag(delta: _Delta, r: dict[str, Any]) -> None:
    for key in r["keys"]:
        delta.tags.pop(key, None)
        delta.untagged.add(key)


def _artifact(delta: _Delta, r: dict[str, Any]) -> None:
    delta.artifacts.extend(r.get("files") or [r["path"]])


def _model(delta: _Delta, r: dict[str, Any]) -> None:
    spec = r["spec"]
    delta.models[str(r["name"])] = spec
    delta.artifacts.extend(f"{spec['path']}/{name}" for name in spec.get("files", ()))


def _end(delta: _Delta, r: dict[str, Any]) -> None:
    delta.run.update(status=str(r["status"]), end_time=int(r["time"]))
    delta.ended = True


_HANDLERS = {
    "start": _start,
    "params": lambda d, r: d.params.update(r["d"]),
    "tags": _tags,
    "metrics": _metrics,
    "artifact": _artifact,
    "model": _model,
    "end": _end,
    "rename": lambda d, r: d.run.update(name=str(r["name"])),
    "untag": _untag,
    "note": lambda d, r: d.run.update(note=r.get("text") or None),
    "delete": lambda d, r: d.run.update(deleted=int(r.get("time") or time.time() * 1000)),
    "restore": lambda d, r: d.run.update(deleted=None),
}


class Index:
    """The SQLite index of one local store, and the thread that keeps it fresh."""

    def __init__(self, root: Path, path: Path | None = None):
        self.root = Path(root)
        self.path = path or _index_path(self.root)
        self.db = _open(self.path)
        self.ready = threading.Event()
        self._write = threading.RLock()
        self._cursors: dict[str, Cursor] = {}
        self._lock_fd = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_full = 0.0
        self._store_mtime = -1
        self._starts: dict[str, int] = {}
        self._next_seq = 1
        self._load_cursors()

    # -- ownership --------------------------------------------------------------------------

    @property
    def owner(self) -> bool:
        """Does this process keep the index fresh (the others read it)?"""
        if self._lock_fd >= 0:
            return True
        fd = os.open(self.path.with_name(LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
        self._lock_fd = fd
        self._load_cursors()  # another process may have moved them on
        return True

    # -- the background thread ---------------------------------------------------------------

    def start(self, interval: float = 1.0) -> None:
        """Index what changed, then follow the store from a daemon thread."""
        self._thread = threading.Thread(target=self._follow, args=(interval,),
                                        name="autolog-index", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        self.db.dispose()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def _follow(self, interval: float) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                self.refresh()
                self.ready.set()
                self.fill_points(deadline=began + interval * 0.8)
            except Exception:  # never let the thread die: log, retry next poll
                log.exception("autolog ui: indexing %s failed; retrying", self.root)
                self.ready.set()
            self._stop.wait(max(0.05, interval - (time.monotonic() - began)))

    # -- the summary pass --------------------------------------------------------------------

    def refresh(self, full: bool = False) -> int:
        """Index the runs whose journals changed; returns how many runs changed."""
        if not self.owner:
            self._load_cursors()
            return 0
        with self._write:
            now = time.monotonic()
            full = full or now - self._last_full > FULL_SCAN_EVERY
            if full:
                self._last_full = now
            dirs = self._run_dirs(full)
            if dirs is None:  # the store did not change: only the live runs can have
                dirs = {c.run_id: self.root / c.run_id for c in self._cursors.values()
                        if not c.ended}
            else:
                self._forget_missing(dirs)
            work = [(run_id, path) for run_id, path in dirs.items()
                    if full or run_id not in self._cursors or not self._cursors[run_id].ended]
            changed = self._index_runs(work)
            self._update_live_status()
            return changed

    def _run_dirs(self, full: bool) -> dict[str, Path] | None:
        """Every run directory, or None when the store's listing cannot have changed."""
        try:
            mtime = os.stat(self.root).st_mtime_ns
        except FileNotFoundError:
            return {}
        if not full and mtime == self._store_mtime:
            return None
        self._store_mtime = mtime
        found = {}
        for entry in os.scandir(self.root):
            if entry.name.startswith(".") or not _is_run_id(entry.name):
                continue
            if entry.is_dir():
                found[entry.name] = Path(entry.path)
        return found

    def _forget_missing(self, dirs: dict[str, Path]) -> None:
        gone = [run_id for run_id in self._cursors if run_id not in dirs]
        if gone:
            with self.db.write() as conn:
                for run_id in gone:
                    _delete_run(conn, run_id)
                    del self._cursors[run_id]

    def _index_runs(self, work: list[tuple[str, Path]]) -> int:
        changed = 0
        pending: list[tuple[Cursor, _Delta, int, dict[str, Any] | None]] = []
        for run_id, path in work:
            found = self._read_summary(run_id, path)
            if found is None:
                continue
            pending.append(found)
            changed += 1
            if len(pending) >= SUMMARY_CHUNK:
                self._write_summaries(pending)
                pending = []
        if pending:
            self._write_summaries(pending)
        return changed

    def _read_summary(self, run_id: str, path: Path
                      ) -> tuple[Cursor, _Delta, int, dict[str, Any] | None] | None:
        journal = path / store.JOURNAL
        try:
            info = os.stat(journal)
        except FileNotFoundError:
            return None
        identity = f"{info.st_dev}:{info.st_ino}"
        cursor = self._cursors.get(run_id)
        reset = cursor is None or cursor.identity != identity or info.st_size < cursor.offset
        if reset:
            cursor = Cursor(run_id, identity, 0, 0, False)
        assert cursor is not None
        if not reset and info.st_size == cursor.offset:
            return None
        delta = _Delta()
        end = cursor.offset
        for line_end, record in store.iter_journal(journal, cursor.offset):
            delta.apply(record)
            end = line_end
        if end == cursor.offset and not reset:
            return None  # only a line in progress
        meta = store.read_meta(path) if reset and "start_time" not in delta.run else None
        if reset and "start_time" not in delta.run and meta is None:
            return None  # not a run (yet): no start line, no meta.json
        return cursor, delta, end, {"reset": reset, "meta": meta}

    def _write_summaries(self, pending: list[tuple[Cursor, _Delta, int, Any]]) -> None:
        with self.db.write() as conn:
            for cursor, delta, end, how in pending:
                if how["reset"]:
                    _delete_run(conn, cursor.run_id)
                    cursor.seq = self._next_seq
                    self._next_seq += 1
                _write_delta(conn, cursor, delta, how["reset"], how["meta"], self.root)
                cursor.offset = end
                cursor.ended = cursor.ended or delta.ended
                if "start_time" in delta.run:
                    self._starts[cursor.run_id] = delta.run["start_time"]
                if how["reset"]:
                    cursor.points_offset = 0
                _save_cursor(conn, cursor)
                self._cursors[cursor.run_id] = cursor

    def _update_live_status(self) -> None:
        """RUNNING while the run's lock is held, CRASHED once it is free (no end event)."""
        live = [c.run_id for c in self._cursors.values() if not c.ended]
        if not live:
            return
        with self.db.read() as conn:
            current = dict(conn.execute(select(runs.c.id, runs.c.status)
                                        .where(runs.c.id.in_(live))).all())
        changes = {}
        for run_id in live:
            held = store.lock_is_held(self.root / run_id, None)
            status = "RUNNING" if held else "CRASHED"
            if current.get(run_id) not in (None, status):
                changes[run_id] = status
        if changes:
            with self.db.write() as conn:
                for run_id, status in changes.items():
                    conn.execute(update(runs).where(runs.c.id == run_id).values(status=status))

    # -- the points pass ---------------------------------------------------------------------

    def fill_points(self, deadline: float | None = None, run_ids: Iterable[str] = ()) -> int:
        """Index metric points up to each run's summary cursor: ``run_ids`` first, then live
        runs, then the newest; stop at ``deadline`` (monotonic). Returns runs filled."""
        if not self.owner:
            return 0
        with self._write:
            todo = [r for r in run_ids if r in self._cursors]
            lagging = [c for c in self._cursors.values() if c.points_offset < c.offset]
            lagging.sort(key=lambda c: (c.ended, -self._start_of(c.run_id)))
            done = 0
            for run_id in dict.fromkeys([*todo, *(c.run_id for c in lagging)]):
                cursor = self._cursors[run_id]
                if cursor.points_offset >= cursor.offset:
                    continue
                if self._stop.is_set():
                    break
                if deadline is not None and time.monotonic() > deadline and run_id not in todo:
                    break
                self._fill_run(cursor)
                done += 1
            return done

    def ensure_points(self, run_ids: list[str]) -> None:
        """Make the runs' histories complete up to their summaries (before reading them)."""
        if self.owner:
            self.fill_points(run_ids=run_ids, deadline=0)
            return
        deadline = time.monotonic() + 10  # the owning process fills them; wait for it
        while time.monotonic() < deadline:
            self._load_cursors()
            if all(self._cursors[r].points_offset >= self._cursors[r].offset
                   for r in run_ids if r in self._cursors):
                return
            time.sleep(0.05)

    def _start_of(self, run_id: str) -> int:
        return self._starts.get(run_id, 0)

    def _fill_run(self, cursor: Cursor) -> None:
        journal = self.root / cursor.run_id / store.JOURNAL
        columns: dict[str, tuple[list[int], list[float | None], list[int]]] = {}
        points, end = 0, cursor.points_offset
        for line_end, record in store.iter_journal(journal, cursor.points_offset):
            if line_end > cursor.offset:
                break
            end = line_end
            if record.get("t") == "metrics":
                delta = _Delta(metrics=columns)
                delta.apply(record)
                points += sum(len(c[0]) for c in record.get("d", {}).values()
                              if isinstance(c, list) and c)
            if points >= POINTS_CHUNK:
                self._write_points(cursor, columns, end)
                columns, points = {}, 0
        self._write_points(cursor, columns, end)

    def _write_points(self, cursor: Cursor, columns: dict[str, Any], end: int) -> None:
        with self.db.write() as conn:
            if columns:
                before = _indexed_counts(conn, cursor.run_id) if cursor.points_offset else {}
                series.store_points(conn, cursor.run_id, columns, before)
            cursor.points_offset = end
            _save_cursor(conn, cursor)

    # -- edits -------------------------------------------------------------------------------

    def refresh_run(self, run_id: str, size: int) -> None:
        """Index one run now (after an edit appended to its journal) up to ``size`` bytes."""
        if self.owner:
            with self._write:
                found = self._read_summary(run_id, self.root / run_id)
                if found is not None:
                    self._write_summaries([found])
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            self._load_cursors()
            cursor = self._cursors.get(run_id)
            if cursor is not None and cursor.offset >= size:
                return
            time.sleep(0.05)

    # -- cursors -----------------------------------------------------------------------------

    def _load_cursors(self) -> None:
        with self.db.read() as conn:
            rows = conn.exec_driver_sql(
                'SELECT i.run_id, i.identity, i."offset", i.points_offset, i.ended, r.seq, '
                "r.start_time FROM index_runs i JOIN runs r ON r.id = i.run_id").all()
            self._next_seq = (conn.execute(select(func.max(runs.c.seq))).scalar() or 0) + 1
        self._cursors = {r[0]: Cursor(r[0], r[1], r[2], r[3], bool(r[4]), r[5]) for r in rows}
        self._starts = {r[0]: r[6] for r in rows}


def _is_run_id(name: str) -> bool:
    return len(name) == 32 and all(c in "0123456789abcdef" for c in name)


def _index_path(root: Path) -> Path:
    """``<store>/.index.sqlite``, or a per-store file in the user's cache when the store is
    read-only."""
    if os.access(root, os.W_OK):
        return root / INDEX_NAME
    import hashlib

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "autolog"
    cache.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return cache / f"index-{digest}.sqlite"


def _open(path: Path) -> Database:
    """The index database, migrated; an index that cannot be (corrupt, from a newer autolog,
    from an older indexer) is deleted and built again: it is only a cache."""
    for attempt in (1, 2):
        db = Database(f"sqlite:///{path}")
        try:
            db.migrate()
            with db.write() as conn:
                conn.exec_driver_sql(_CURSORS)
                conn.exec_driver_sql(_INFO)
                version = conn.exec_driver_sql(
                    "SELECT value FROM index_info WHERE name = 'version'").scalar()
                if version is None:
                    conn.exec_driver_sql("INSERT INTO index_info VALUES ('version', ?)",
                                         (str(INDEX_VERSION),))
                elif version != str(INDEX_VERSION):
                    raise _Stale(f"index version {version}")
            return db
        except Exception as exc:
            db.dispose()
            if attempt == 2:
                raise
            log.warning("autolog ui: rebuilding the index %s (%s)", path, exc)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
    raise AssertionError("unreachable")


class _Stale(Exception):
    pass


def _save_cursor(conn: Any, cursor: Cursor) -> None:
    conn.exec_driver_sql(
        'INSERT INTO index_runs (run_id, identity, "offset", points_offset, ended) '
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id) DO UPDATE SET identity = excluded.identity,"
        ' "offset" = excluded."offset", points_offset = excluded.points_offset, '
        "ended = excluded.ended",
        (cursor.run_id, cursor.identity, cursor.offset, cursor.points_offset,
         int(cursor.ended)))


def _delete_run(conn: Any, run_id: str) -> None:
    for table in _RUN_TABLES:
        column = table.c.id if table is runs else table.c.run_id
        conn.execute(delete(table).where(column == run_id))
    conn.exec_driver_sql("DELETE FROM index_runs WHERE run_id = ?", (run_id,))


def _indexed_counts(conn: Any, run_id: str) -> dict[str, int]:
    """Points of each key already in the index (from the finest rollup level)."""
    size = series.ROLLUP_SIZES[0]
    c = metric_rollups.c
    return dict(conn.execute(select(c.key, func.max(c.block * size + c.count))
                             .where(c.run_id == run_id, c.level == 1).group_by(c.key)).all())


def _write_delta(conn: Any, cursor: Cursor, delta: _Delta, fresh: bool,
                 meta: dict[str, Any] | None, root: Path) -> None:
    run_id, seq = cursor.run_id, cursor.seq
    _write_run(conn, cursor, delta, fresh, meta, root)
    if delta.params:
        _upsert(conn, params, [param_row(run_id, k, v, seq) for k, v in delta.params.items()],
                ["run_id", "key"], ["value", "num", "text"])
    if delta.untagged and not fresh:
        conn.execute(delete(tags).where(tags.c.run_id == run_id,
                                        tags.c.key.in_(list(delta.untagged))))
    if delta.tags:
        _upsert(conn, tags, [{"run_id": run_id, "key": k, "value": v, "run_seq": seq}
                             for k, v in delta.tags.items()], ["run_id", "key"], ["value"])
    if delta.metrics:
        series.update_latest(conn, run_id, delta.metrics, seq)
    if delta.artifacts:
        now = int(time.time() * 1000)
        conn.exec_driver_sql("INSERT INTO artifacts (run_id, name, created) VALUES (?, ?, ?) "
                             "ON CONFLICT DO NOTHING",
                             [(run_id, name, now) for name in dict.fromkeys(delta.artifacts)])
    if delta.models:
        _upsert(conn, models, [{"run_id": run_id, "name": k, "spec": json.dumps(v),
                                "updated": int(time.time() * 1000)}
                               for k, v in delta.models.items()],
                ["run_id", "name"], ["spec", "updated"])


def _write_run(conn: Any, cursor: Cursor, delta: _Delta, fresh: bool,
               meta: dict[str, Any] | None, root: Path) -> None:
    run_id = cursor.run_id
    if fresh:
        row = {"id": run_id, "seq": cursor.seq, "name": "", "project": "default",
               "parent_id": None,
               "start_time": 0, "end_time": None, "note": None, "deleted": None,
               "created": int(time.time() * 1000), "status": "RUNNING"}
        if meta is not None:
            row.update(name=str(meta.get("name", "")), project=str(meta.get("project")
                                                                   or "default"),
                       parent_id=meta.get("parent"), start_time=int(meta.get("start_time", 0)))
        row.update(delta.run)
        if not delta.ended:
            row["status"] = "RUNNING" if store.lock_is_held(root / run_id, None) else "CRASHED"
        conn.execute(insert(runs).values(row))
    elif delta.run:
        conn.execute(update(runs).where(runs.c.id == run_id).values(**delta.run))


def _upsert(conn: Any, table: Any, rows: list[dict[str, Any]], keys: list[str],
            update_columns: list[str]) -> None:
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    stmt = sqlite_insert(table)
    stmt = stmt.on_conflict_do_update(index_elements=keys,
                                      set_={c: stmt.excluded[c] for c in update_columns})
    conn.execute(stmt, rows)

