"""The index of a local store: the server's schema in an SQLite file beside the runs.

``autolog ui`` reads the local store through the same tables and queries as ``autolog server``
(``autolog.server.search``, ``.query``, ``.series``), so there is one read path. This module
keeps those tables in step with the run directories:

- Each run has a cursor in the index (table ``index_runs``): the journal's identity (device,
  inode) and two byte offsets, ``offset`` (summary: the run, params, tags, each metric's last/
  min/max/count, artifacts, models, edits) and ``points_offset`` (metric points and rollups).
  Media items (``media`` lines) are in the summary pass, in the server's ``media`` table.
  Re-opening the store reads only the bytes past the cursors; a journal replaced or truncated
  is indexed again from the start. The cursors live in the index, never in the run directories:
  deleting ``.index.sqlite`` loses nothing, the next start rebuilds it.
- Points lag behind summaries on purpose. The first open of a large store indexes every run's
  summary first (what the runs table needs; a few seconds for 10,000 runs), then fills points in
  the background, newest runs first; a history asked for before its run's points are in is
  filled on the spot. A live run gets both every poll.
- New runs are found by listing the store when its directory's mtime moves. A run directory
  listed before its journal holds a start line (the run was being created) is looked at every
  poll until it does: writing the journal does not move the store's mtime.
- Status is live: a run without an ``end`` event is RUNNING while its ``run.lock`` is held and
  CRASHED once it is free, checked at every poll.
- Lines are read with ``store.iter_journal``: a corrupt line is skipped, a torn last line waits.

Why not the replay code of ``autolog sync`` (``delivery.py``)? It delivers one run to one
backend, saving a cursor file in the run directory after every call and taking a lock per run:
right for delivery, wrong for a cache that must leave the store untouched and index 10,000 runs
in a few seconds. The index reads the same journal with the same reader in bulk instead.

One process indexes a store at a time (``.index.lock``, which names its holder: ``ui`` or
``cli``); another ``autolog ui`` on the same store reads the index that one keeps fresh, and
takes over if it exits. Runs whose journals grew after their end (edits, resumes) are named in
the store's ``.changed`` list (``journal.files.note_changed``), read at every refresh.

A one-shot reader (a CLI command: ``lazy=True``) loads only the cursors it needs: the live
runs', the changed runs', and the ids of the runs known (to see which directories are new), so
opening a store of 100,000 runs costs a directory listing and one small query.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from ..journal.files import JOURNAL, take_changed
from ..journal.reader import iter_journal, read_meta
from ..server import series
from ..server.db import Database
from ..server.tables import runs
from . import rows
from .deltas import Columns, point_columns, read_summary

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["INDEX_NAME", "Index"]

log = logging.getLogger("autolog.ui")

INDEX_NAME = ".index.sqlite"
LOCK_NAME = ".index.lock"
#: bumped when what the index derives from a journal changes: an older index is rebuilt
INDEX_VERSION = 3
FULL_SCAN_EVERY = 30.0  # seconds between checks of ended runs' journals (edits from elsewhere)
ENDED = ("FINISHED", "FAILED", "KILLED")
SMALL_STORE = 2000  # a lazy index checks every journal of a store this small (a few ms)
POINTS_CHUNK = 50_000  # points per transaction while filling histories (a short pause each)
SUMMARY_CHUNK = 1000  # runs per transaction on a first indexing
SCAN_CHUNK = 64  # runs per task of a worker process
PARALLEL_MIN = 256  # runs to read before worker processes pay off
BULK_MIN = 1000  # runs of a first build that pay for dropping and rebuilding the indexes

_CURSORS = """
CREATE TABLE IF NOT EXISTS index_runs (
    run_id TEXT PRIMARY KEY,
    identity TEXT NOT NULL,
    "offset" INTEGER NOT NULL,
    points_offset INTEGER NOT NULL,
    ended INTEGER NOT NULL,
    exact INTEGER NOT NULL
)"""
_INFO = "CREATE TABLE IF NOT EXISTS index_info (name TEXT PRIMARY KEY, value TEXT NOT NULL)"


@dataclass
class Cursor:
    run_id: str
    identity: str
    offset: int
    points_offset: int
    ended: bool
    seq: int = 0  # runs.seq
    #: the metric summaries hold every point (False: last values from meta.json, until the
    #: points pass has read them all)
    exact: bool = True


class Index:
    """The SQLite index of one local store, and the thread that keeps it fresh."""

    def __init__(self, root: Path, path: Path | None = None, *, lazy: bool = False,
                 kind: str = "ui"):
        self.root = Path(root)
        self.path = path or _index_path(self.root)
        self.db = _open(self.path)
        self.ready = threading.Event()
        self.lazy = lazy
        self.kind = kind  # written into the lock file while this process owns the index
        self._write = threading.RLock()
        #: the cursors loaded: all of them, or (lazy) the live runs' and those asked for
        self._cursors: dict[str, Cursor] = {}
        self._known: set[str] = set()  # every run id the index holds
        self._lock_fd = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_full = 0.0
        self._store_mtime = -1
        #: run directories listed before their journal held a start line (a run being created
        #: as the store was listed): looked at every poll until they do, since their journal's
        #: first write does not change the store's listing
        self._unborn: set[str] = set()
        self._starts: dict[str, int] = {}
        self._next_seq = 1
        if not lazy:  # a lazy index loads what it needs when it refreshes
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
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{self.kind} {os.getpid()}\n".encode(), 0)
        self._load_cursors()  # another process may have moved them on
        return True

    def holder(self) -> str | None:
        """What kind of process owns the index now (``ui``, ``cli``), or None."""
        if self._lock_fd >= 0:
            return self.kind
        lock = self.path.with_name(LOCK_NAME)
        if fcntl is None or not lock.exists():
            return None
        fd = os.open(lock, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return None  # free
        except OSError:
            return os.pread(fd, 100, 0).decode("ascii", "replace").split(" ")[0] or "ui"
        finally:
            os.close(fd)

    def acquire(self, wait: float) -> bool:
        """Own the index, waiting up to ``wait`` seconds for another one-shot owner (a CLI
        command) to finish; a long-lived owner (``autolog ui``) keeps it fresh: not waited for.
        """
        deadline = time.monotonic() + wait
        while not self.owner:
            if self.holder() == "ui" or time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def run_count(self) -> int:
        return len(self._known)

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
                # at most half of each interval: the API shares this process's GIL
                self.fill_points(deadline=began + interval * 0.5)
            except Exception:  # never let the thread die: log, retry next poll
                log.exception("autolog ui: indexing %s failed; retrying", self.root)
                self.ready.set()
            self._stop.wait(max(0.05, interval - (time.monotonic() - began)))

    # -- the summary pass --------------------------------------------------------------------

    def refresh(self, full: bool | None = None) -> int:
        """Index the runs whose journals changed; returns how many runs changed.

        ``full``: check every journal (True), only new and live runs (False), or decide by the
        time since the last full pass (None, the background thread's way: every 30 s).
        """
        if not self.owner:
            self._load_cursors()
            return 0
        with self._write:
            now = time.monotonic()
            if full is None:
                full = now - self._last_full > FULL_SCAN_EVERY
            if full:
                self._last_full = now
            if self.lazy and len(self._known) <= SMALL_STORE:
                full = True
            dirs = self._run_dirs(full)
            changed_ids = take_changed(self.root)
            if dirs is None:  # the store's listing did not change: the live and changed runs
                ids = {c.run_id for c in self._cursors.values() if not c.ended} | changed_ids \
                    | self._unborn
            else:
                self._forget_missing(dirs)
                if full and self.lazy:
                    self._load_cursors(every=True)
                live = {c.run_id for c in self._cursors.values() if not c.ended}
                ids = set(dirs) if full else \
                    (dirs - self._known) | (dirs & (changed_ids | live))
            self._need_cursors(ids)
            changed = self._index_runs([(run_id, self.root / run_id) for run_id in ids])
            self._unborn = {run_id for run_id in ids if run_id not in self._known}
            self._update_live_status()
            return changed

    def _run_dirs(self, full: bool) -> set[str] | None:
        """Every run directory's name, or None when the store's listing cannot have
        changed."""
        try:
            mtime = os.stat(self.root).st_mtime_ns
        except FileNotFoundError:
            return set()
        if not full and mtime == self._store_mtime:
            return None
        self._store_mtime = mtime
        with os.scandir(self.root) as entries:
            return {entry.name for entry in entries
                    if _RUN_ID.fullmatch(entry.name) and entry.is_dir()}

    def _forget_missing(self, dirs: set[str]) -> None:
        gone = [run_id for run_id in self._known if run_id not in dirs]
        if gone:
            with self.db.write() as conn:
                for run_id in gone:
                    rows.delete_run(conn, run_id)
                    self._cursors.pop(run_id, None)
                    self._known.discard(run_id)

    def _index_runs(self, work: list[tuple[str, Path]]) -> int:
        """Read the journals of ``work`` past their cursors and write what they add.

        Many runs at once from the main thread (the first start on a large store) are read by
        worker processes, in chunks, while this process writes the chunks already read: JSON
        parsing is most of the cost and it scales with the cores. A first build on an empty
        index also leaves the secondary indexes out until the rows are in.
        """
        items = [(run_id, str(path), self._cursors.get(run_id)) for run_id, path in work]
        chunks = [items[i:i + SCAN_CHUNK] for i in range(0, len(items), SCAN_CHUNK)]
        bulk = not self._known and len(items) >= BULK_MIN
        changed = 0
        with _without_indexes(self.db, bulk), _scanner(len(items)) as scan_map:
            pending: list[rows.Pending] = []
            for found in scan_map(scan_runs, chunks):
                pending += [p for p in found if p is not None]
                if len(pending) >= SUMMARY_CHUNK:
                    changed += len(pending)
                    self._write_summaries(pending)
                    pending = []
            if pending:
                changed += len(pending)
                self._write_summaries(pending)
        return changed

    def _write_summaries(self, pending: list[rows.Pending]) -> None:
        """New runs in bulk (one INSERT per table for all of them), others one by one."""
        fresh = [p for p in pending if p.fresh]
        with self.db.write() as conn:
            for item in fresh:
                if item.known:  # replaced or truncated: indexed again from the start
                    rows.delete_run(conn, item.cursor.run_id)
                item.cursor.seq = self._next_seq
                self._next_seq += 1
            rows.insert_new(conn, fresh, self.root)
            for item in pending:
                if not item.fresh:
                    rows.update_run(conn, item.cursor, item.summary)
            for item in pending:
                cursor = item.cursor
                cursor.offset = item.end
                cursor.ended = not item.summary.resumed and (cursor.ended or item.summary.ended)
                if item.fresh:
                    cursor.points_offset = 0
                if "start_time" in item.summary.run:
                    self._starts[cursor.run_id] = item.summary.run["start_time"]
                self._cursors[cursor.run_id] = cursor
                self._known.add(cursor.run_id)
            rows.save_cursors(conn, [p.cursor for p in pending])

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
            status, end = rows.live_status(self.root / run_id)
            if current.get(run_id) not in (None, status):
                changes[run_id] = {"status": status, "end_time": end}
        if changes:
            with self.db.write() as conn:
                for run_id, values in changes.items():
                    conn.execute(update(runs).where(runs.c.id == run_id).values(**values))

    # -- the points pass ---------------------------------------------------------------------

    def fill_points(self, deadline: float | None = None, run_ids: Iterable[str] = ()) -> int:
        """Index metric points up to each run's summary cursor: ``run_ids`` first, then live
        runs, then the newest; stop at ``deadline`` (monotonic). Returns runs filled."""
        if not self.owner:
            return 0
        with self._write:
            if self.lazy:
                self._load_cursors(lagging=True)
            run_ids = list(run_ids)
            self._need_cursors(run_ids)
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
            self._need_cursors(run_ids, again=True)
            if all(self._cursors[r].points_offset >= self._cursors[r].offset
                   for r in run_ids if r in self._cursors):
                return
            time.sleep(0.05)

    def _start_of(self, run_id: str) -> int:
        return self._starts.get(run_id, 0)

    def _fill_run(self, cursor: Cursor) -> None:
        journal = self.root / cursor.run_id / JOURNAL
        columns: Columns = {}
        points, end = 0, cursor.points_offset
        for line_end, record in iter_journal(journal, cursor.points_offset):
            if line_end > cursor.offset:
                break
            end = line_end
            if record.get("t") == "metrics":
                points += point_columns(record, columns)
            if points >= POINTS_CHUNK:
                self._write_points(cursor, columns, end)
                columns, points = {}, 0
        self._write_points(cursor, columns, end)

    def _write_points(self, cursor: Cursor, columns: Columns, end: int) -> None:
        """Store a chunk of points; for a run whose summary took meta.json's last values, also
        merge the chunk into its metric summaries (the last point, extremes, count)."""
        with self.db.write() as conn:
            if columns:
                before = rows.indexed_counts(conn, cursor.run_id) if cursor.points_offset else {}
                series.store_points(conn, cursor.run_id, columns, before)
                if not cursor.exact:
                    rows.merge_summaries(conn, cursor, columns)
            cursor.points_offset = end
            if not cursor.exact and end >= cursor.offset:  # every point read: exact now
                cursor.exact = True
                rows.drop_pointless_summaries(conn, cursor.run_id)
            rows.save_cursors(conn, [cursor])

    # -- edits -------------------------------------------------------------------------------

    def refresh_run(self, run_id: str, size: int) -> None:
        """Index one run now (after an edit appended to its journal) up to ``size`` bytes."""
        if self.owner:
            with self._write:
                self._need_cursors([run_id])
                found = scan(run_id, self.root / run_id, self._cursors.get(run_id))
                if found is not None:
                    self._write_summaries([found])
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            self._need_cursors([run_id], again=True)
            cursor = self._cursors.get(run_id)
            if cursor is not None and cursor.offset >= size:
                return
            time.sleep(0.05)

    # -- cursors -----------------------------------------------------------------------------

    def _load_cursors(self, *, every: bool = False, lagging: bool = False) -> None:
        """Read the cursors again: all of them, or (lazy) the live runs' (and, with
        ``lagging``, those whose points lag their summary) plus the ids of every run."""
        with self.db.read() as conn:
            self._next_seq = (conn.execute(select(func.max(runs.c.seq))).scalar() or 0) + 1
            if self.lazy and not every:
                raw: Any = conn.connection.driver_connection  # 100,000 ids: no Row objects
                self._known = {r[0] for r in raw.execute("SELECT run_id FROM index_runs")}
                where = 'i.ended = 0 OR i.points_offset < i."offset"' if lagging else \
                    "i.ended = 0"
                self._cursors = {}
                self._add_cursors(conn, where)
                return
            self._cursors = {}
            self._add_cursors(conn, "1 = 1")
            self._known = set(self._cursors)

    def _need_cursors(self, run_ids: Iterable[str], again: bool = False) -> None:
        """(Lazy) load the cursors of these runs, if the index has them; ``again``: even those
        loaded already (another process may have moved them on)."""
        missing = [r for r in run_ids if again or r not in self._cursors]
        if (not self.lazy and not again) or not missing:
            return
        with self.db.read() as conn:
            for i in range(0, len(missing), 500):
                chunk = missing[i:i + 500]
                marks = ", ".join("?" * len(chunk))
                self._add_cursors(conn, f"i.run_id IN ({marks})", tuple(chunk))

    def _add_cursors(self, conn: Any, where: str, args: tuple[Any, ...] = ()) -> None:
        found = conn.exec_driver_sql(
            'SELECT i.run_id, i.identity, i."offset", i.points_offset, i.ended, r.seq, '
            "i.exact, r.start_time FROM index_runs i JOIN runs r ON r.id = i.run_id "
            f"WHERE {where}", args).all()
        for r in found:
            self._cursors[r[0]] = Cursor(r[0], r[1], r[2], r[3], bool(r[4]), r[5], bool(r[6]))
            self._starts[r[0]] = r[7]
            self._known.add(r[0])


def scan_runs(items: list[tuple[str, str, Cursor | None]]) -> list[rows.Pending | None]:
    """:func:`scan` for each ``(run id, run directory, cursor)`` (a worker process's job)."""
    return [scan(run_id, Path(path), cursor) for run_id, path, cursor in items]


def scan(run_id: str, path: Path, known: Cursor | None) -> rows.Pending | None:
    """What the run's journal holds past ``known``, or None when nothing new is there."""
    journal = path / JOURNAL
    try:
        info = os.stat(journal)
    except FileNotFoundError:
        return None
    identity = f"{info.st_dev}:{info.st_ino}"
    reset = known is None or known.identity != identity or info.st_size < known.offset
    if not reset and known is not None and not known.exact and info.st_size > known.offset:
        # its summary took meta.json's last values; resumed (live again), its new metric
        # lines must count: indexed again from the start
        reset = (read_meta(path) or {}).get("status") not in ENDED
    cursor = Cursor(run_id, identity, 0, 0, False) if reset or known is None else known
    if not reset and info.st_size == cursor.offset:
        return None
    meta = read_meta(path) if reset else None
    if reset:
        cursor.exact = not _ended_with_metrics(meta)
    summary, end = read_summary(journal, cursor.offset, skip_metrics=not cursor.exact)
    if end == cursor.offset and not reset:
        return None  # only a line in progress
    if reset and "start_time" not in summary.run and meta is None:
        return None  # not a run (yet): no start line, no meta.json
    if reset and not cursor.exact:
        summary.add_last_values(meta["metrics"])  # type: ignore[index]
    return rows.Pending(cursor, summary, end, fresh=reset, known=known is not None, meta=meta)


def _ended_with_metrics(meta: dict[str, Any] | None) -> bool:
    """Did the run end and leave its last metric values in meta.json? Then its summary can skip
    the metric lines (most of a journal) and take those; the points pass completes it."""
    if not meta:
        return False
    return meta.get("status") in ENDED and isinstance(meta.get("metrics"), dict)


@contextmanager
def _scanner(count: int) -> Iterator[Callable[..., Iterable[Any]]]:
    """``map`` over worker processes for many runs read from the main thread, else in place.

    Workers are forked before any other thread exists (``autolog ui`` indexes before it
    serves); the background thread's later, smaller refreshes read in place.
    """
    workers = min(8, os.cpu_count() or 1)
    forkable = "fork" in multiprocessing.get_all_start_methods()
    if count < PARALLEL_MIN or workers < 2 or not forkable or \
            threading.current_thread() is not threading.main_thread() or \
            threading.active_count() > 1:
        yield map
        return
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        yield pool.map


@contextmanager
def _without_indexes(db: Database, active: bool) -> Iterator[None]:
    """Drop the secondary indexes for a bulk load and build them after (a sorted build is
    faster than keeping them up row by row). Should the process die between, :func:`_open`
    creates what is missing on the next start."""
    if not active:
        yield
        return
    with db.write() as conn:
        for table in rows.RUN_TABLES:
            for index in table.indexes:
                conn.exec_driver_sql(f"DROP INDEX IF EXISTS {index.name}")
    try:
        yield
    finally:
        _ensure_indexes(db)


def _ensure_indexes(db: Database) -> None:
    with db.write() as conn:
        for table in rows.RUN_TABLES:
            for index in table.indexes:
                index.create(conn, checkfirst=True)


_RUN_ID = re.compile(r"[0-9a-f]{32}")


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
        db = Database(f"sqlite:///{path}", durable=False)  # a cache: rebuilt if ever lost
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
            _ensure_indexes(db)
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


