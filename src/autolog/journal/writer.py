"""Writing journals: each run's buffer, and the one writer thread that drains them all.

A run's logging calls append tuples to its :class:`RunWriter`'s ``deque`` and return: no I/O, no
JSON, no lock. The :class:`JournalWriter`'s thread wakes every ``AUTOLOG_FLUSH_INTERVAL`` (or
when a buffer passes the high-water mark), encodes what is buffered and appends it to the run's
journal with one ``write(2)``, then calls ``notify`` (the delivery workers read the journal from
their own cursors; this module knows nothing of them).
"""

from __future__ import annotations

import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .._runtime import runtime
from ..report import internal_error
from .codec import dumps_line, encode_events
from .files import JOURNAL, LOCK, META, FileLock, atomic_write

__all__ = ["HARD_LIMIT", "HIGH_WATER", "Journal", "JournalWriter", "RunWriter", "ends_with_newline",
           "write_meta"]

HIGH_WATER = 20_000  # buffered events that wake the writer early
HARD_LIMIT = 4 * HIGH_WATER  # beyond this the logging thread writes the buffer itself
CHILD_FLUSH_INTERVAL = 0.2  # forked workers may be terminated without warning: flush often
DRAIN_TIMEOUT = 2.0  # how long a run's end waits for the writer thread before writing itself

#: ``notify(run_dir, backends)``: the run's journal has new lines for these backends
Notify = Callable[[Path, tuple[str, ...]], None]


def write_meta(run_dir: Path, meta: dict[str, Any]) -> None:
    """Replace the run's ``meta.json`` (atomically)."""
    atomic_write(run_dir / META, dumps_line(meta))


class Journal:
    """The append-only journal file of one run, as written by this process."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / JOURNAL
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if os.fstat(self._fd).st_size and not ends_with_newline(self.path):
            os.write(self._fd, b"\n")  # a torn line left by a killed writer stays on its own

    def write(self, data: bytes) -> None:
        # One write per flush: with O_APPEND a forked child's writes never interleave with ours.
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def ends_with_newline(path: Path) -> bool:
    """Does the (non-empty) file end with a newline? A torn last line does not."""
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


class RunWriter:
    """One run this process writes: its buffer, its journal, its lock, its last metrics."""

    def __init__(self, run_dir: Path, meta: dict[str, Any], backends: tuple[str, ...],
                 writes_end: bool = True):
        self.run_dir = run_dir
        self.meta = meta
        self.backends = backends
        self.buffer: deque[tuple[Any, ...]] = deque()
        self.lock = threading.Lock()  # one drain-and-write at a time keeps lines in order
        self.journal: Journal | None = Journal(run_dir)
        self.run_lock: FileLock | None = None
        if writes_end:  # held while this process runs the run; its end releases it
            self.run_lock = FileLock(run_dir / LOCK)
            self.run_lock.acquire()  # held elsewhere (an attached rank, a re-used id): fine
        self.last_metrics: dict[str, float] = {}
        #: called on every drain, before the events: files written beside the journal by the
        #: writer thread (the console capture's ``console.log``)
        self.sidecars: list[Callable[[], None]] = []
        #: deferred events (media) appended since the last drain: their files are written by
        #: the drain, so a run ending with some is finished by the writer thread
        self.deferred = 0
        self.writer: int | None = None  # the thread writing now (a signal handler checks it)
        self.ended = False
        # False for a run another process started (an attached DDP worker, a forked child):
        # that process writes the end event and meta.json.
        self.writes_end = writes_end

    @contextmanager
    def _writing(self) -> Iterator[None]:
        with self.lock:
            self.writer = threading.get_ident()
            try:
                yield
            finally:
                self.writer = None

    def write(self) -> bool:
        """Drain the buffer into the journal. Returns True if anything was written."""
        with self._writing():
            return self._write_locked()

    def _write_locked(self) -> bool:
        if self.journal is None:
            return False
        for sidecar in self.sidecars:
            sidecar()
        buffer = self.buffer
        self.deferred = 0
        events = [buffer.popleft() for _ in range(len(buffer))]
        if not events:
            return False
        data, last = encode_events(events)
        self.journal.write(data)
        self.last_metrics.update(last)
        return True

    def finish(self, end: dict[str, Any] | None) -> None:
        """Write what is left (the end event included), the final meta.json, and let go."""
        with self._writing():
            self._finish_locked(end)

    def _finish_locked(self, end: dict[str, Any] | None) -> None:
        self._write_locked()
        self.ended = True
        if self.journal is None:
            return
        if end is not None and self.writes_end:
            self.meta.update(status=end["status"], end_time=end["time"],
                             metrics=self.last_metrics)
            write_meta(self.run_dir, self.meta)
        self.journal.close()
        self.journal = None
        if self.run_lock is not None:
            self.run_lock.release()
            self.run_lock = None

    def forked(self) -> None:
        """In a forked child: the parent writes what it had buffered and ends the run."""
        self.buffer.clear()
        self.sidecars = []
        self.lock = threading.Lock()
        self.writes_end = False
        self.run_lock = None  # the inherited descriptor keeps the lock held for us


class JournalWriter:
    """Process-wide: owns the writer thread that drains every run's buffer."""

    def __init__(self, interval: float, notify: Notify):
        self.notify = notify
        self._runs: dict[str, RunWriter] = {}
        #: runs ended with media still to write: finished on the writer thread (or by the next
        #: write_all on any thread: reading back, flush, exit)
        self._ending: list[tuple[RunWriter, dict[str, Any] | None]] = []
        self._runs_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        # (thread, action) to run once that thread's current write is done
        self._deferred: list[tuple[int, Callable[[], None]]] = []
        # set once the writer thread has written everything buffered before they were added
        self._drains: list[threading.Event] = []
        self._interval = interval
        self._start()

    # -- runs --------------------------------------------------------------------------------

    def open(self, run_dir: Path, meta: dict[str, Any], backends: tuple[str, ...],
             writes_end: bool = True) -> RunWriter:
        run = RunWriter(run_dir, meta, backends, writes_end)
        with self._runs_lock:
            self._runs[meta["id"]] = run
        return run

    def pressure(self, run: RunWriter) -> None:
        """Called by the logging thread when a buffer is past the high-water mark."""
        self._wake.set()
        if len(run.buffer) > HARD_LIMIT or self._thread is None:
            self._write(run)  # keep memory flat when the writer cannot keep up

    def end(self, run: RunWriter, end: dict[str, Any] | None) -> None:
        """Write an ended run's last events now, so a reader sees them at once.

        What is buffered is written by the writer thread while the caller waits (at most
        ``DRAIN_TIMEOUT``): a metric logged as a tensor is read there, never on the training
        thread, where reading a GPU tensor waits for the device. The rest (the end) is written
        here. A run with media still to write (PNGs to encode, plots to draw) is finished by the
        writer thread instead, so the training thread does not wait for that (``write_all``,
        which reading back, ``flush`` and exit call, finishes it at once)."""
        if run.deferred and self._thread is not None and self._thread.is_alive():
            with self._runs_lock:
                self._ending.append((run, end))
            self._wake.set()
            return
        self._drain()
        self._finish(run, end)

    def _finish(self, run: RunWriter, end: dict[str, Any] | None) -> None:
        try:
            run.finish(end)
        except Exception as exc:
            internal_error("writing the journal", exc)
        self.notify(run.run_dir, run.backends)
        with self._runs_lock:
            self._runs.pop(run.meta["id"], None)
        self._run_deferred()

    # -- writing -----------------------------------------------------------------------------

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="autolog-writer", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        thread = self._thread
        if self._stopping or thread is None or not thread.is_alive() \
                or thread is threading.current_thread():
            return
        done = threading.Event()
        self._drains.append(done)
        self._wake.set()
        done.wait(DRAIN_TIMEOUT)

    def _loop(self) -> None:
        while not self._stopping:
            self._wake.wait(self._interval)
            self._wake.clear()
            drains, self._drains = self._drains, []
            self.write_all()
            for done in drains:
                done.set()

    def write_all(self) -> None:
        with self._runs_lock:
            ending, self._ending = self._ending, []
        for run, end in ending:
            self._finish(run, end)
        with self._runs_lock:
            runs = list(self._runs.values())
        for run in runs:
            self._write(run)

    def _write(self, run: RunWriter) -> None:
        try:
            wrote = run.write()
        except Exception as exc:  # disk full, permissions: keep the training run alive
            internal_error("writing the journal", exc)
            return
        if wrote:
            self.notify(run.run_dir, run.backends)
        self._run_deferred()

    def stop(self) -> None:
        """Stop the thread (after a last :meth:`write_all` by the caller)."""
        self._stopping = True
        self._wake.set()

    def defer_if_writing(self, action: Callable[[], None]) -> bool:
        """For a signal handler: if this thread is in the middle of a journal write, run
        ``action`` as soon as the write is done (and return True) instead of now."""
        me = threading.get_ident()
        if any(run.writer == me for run in list(self._runs.values())):
            self._deferred.append((me, action))
            return True
        return False

    def _run_deferred(self) -> None:
        if not self._deferred:
            return
        me = threading.get_ident()
        mine = [action for thread, action in self._deferred if thread == me]
        self._deferred = [(t, a) for t, a in self._deferred if t != me]
        for action in mine:
            action()

    def after_fork_in_child(self) -> None:
        """A forked child logs to the same journals; the parent keeps delivering them."""
        self._interval = min(self._interval, CHILD_FLUSH_INTERVAL)
        self._deferred = []
        self._ending = []  # the parent finishes those
        self._drains = []
        self._runs_lock = threading.Lock()
        self._wake = threading.Event()
        for run in self._runs.values():
            run.forked()
        self._start()
        _flush_before_multiprocessing_exit(self)


def _flush_before_multiprocessing_exit(writer: JournalWriter) -> None:
    """multiprocessing children leave through ``os._exit``: atexit never runs there.

    A ``Finalize`` registered now would be cleared by ``Process._bootstrap``; an after-fork
    callback runs after that clearing and registers it then.
    """
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        util.register_after_fork(writer, _register_finalizer)


def _register_finalizer(writer: JournalWriter) -> None:
    from multiprocessing import util

    util.Finalize(writer, writer.write_all, exitpriority=100)


def _after_fork_in_child() -> None:
    if runtime.writer is not None:
        runtime.writer.after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
