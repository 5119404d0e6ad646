"""Writing journals: each run's tail and journal, and the one writer thread that drains them.

A run's metric points go into its :class:`~.tail.Tail` (a ring in a shared file mapping: no
system call, no JSON, no lock, and on disk as far as a killed process is concerned). Every
other event (start, params, tags, artifacts, models, end) is rare and is written through: one
``write(2)`` of one line on the caller's thread, so it is in the journal when the call returns.
Media items (images, histograms, tables...) are checked and copied on the caller's thread and
queued: their files are encoded and written by the writer thread, then their line appended.
The :class:`JournalWriter`'s thread wakes every ``AUTOLOG_FLUSH_INTERVAL`` (or when a ring
passes the high-water mark), turns the points consumed from each ring into one columnar line,
appends it, then calls ``notify`` (the delivery workers read the journal from their own
cursors; this module knows nothing of them).
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

from .._runtime import runtime, start_thread
from ..report import internal_error
from ..values import read_metric
from .codec import encode_line, encode_record, metrics_record
from .files import JOURNAL, LOCK, META, FileLock, atomic_write, tell_launcher
from .tail import RING, Tail, recover

__all__ = ["CHECK_EVERY", "HARD_LIMIT", "HIGH_WATER", "Journal", "JournalWriter", "RunWriter",
           "ends_with_newline", "write_meta"]

HIGH_WATER = 16_384  # unconsumed points in a ring that wake the writer early
HARD_LIMIT = 40_960  # beyond this the logging thread consumes its ring itself
CHECK_EVERY = 1024  # the hot path checks the ring's fill every this many points (a power of 2)
CHILD_FLUSH_INTERVAL = 0.2  # forked workers may be terminated without warning: flush often
# Each logging thread checks at least every CHECK_EVERY points and waits for the ring to drain
# past HARD_LIMIT: the headroom left covers this many threads logging at full speed at once.
assert (RING - HARD_LIMIT) // CHECK_EVERY >= 16
DRAIN_TIMEOUT = 2.0  # how long a run's end waits for the writer thread before writing itself

#: ``notify(run_dir, backends)``: the run's journal has new lines for these backends
Notify = Callable[[Path, tuple[str, ...]], None]


def write_meta(run_dir: Path, meta: dict[str, Any]) -> None:
    """Replace the run's ``meta.json`` (atomically)."""
    atomic_write(run_dir / META, encode_line(meta))


class Journal:
    """The append-only journal file of one run, as written by this process."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / JOURNAL
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if os.fstat(self._fd).st_size and not ends_with_newline(self.path):
            os.write(self._fd, b"\n")  # a torn line left by a killed writer stays on its own

    def write(self, data: bytes) -> None:
        # Whole lines in one write: with O_APPEND a forked child's lines never interleave.
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
    """One run this process writes: its tail, its journal, its lock, its last metrics."""

    def __init__(self, run_dir: Path, meta: dict[str, Any], backends: tuple[str, ...],
                 writes_end: bool = True):
        self.run_dir = run_dir
        self.meta = meta
        self.backends = backends
        self.lock = threading.Lock()  # one consume-and-write at a time keeps points in order
        self._lines = threading.Lock()  # one line at a time on the descriptor
        self.journal: Journal | None = Journal(run_dir)
        self.tail = Tail(run_dir)
        self.run_lock: FileLock | None = None
        if writes_end:  # held while this process runs the run; its end releases it
            self.run_lock = FileLock(run_dir / LOCK)
            self.run_lock.acquire()  # held elsewhere (an attached rank, a re-used id): fine
        self.last_metrics: dict[str, float] = {}
        #: called on every drain, before the events: files written beside the journal by the
        #: writer thread (the console capture's ``console.log``)
        self.sidecars: list[Callable[[], None]] = []
        #: media items queued by the logging calls (``resolve()`` writes their files and
        #: returns their journal record): written by the next drain, on the writer thread
        self.media: deque[Any] = deque()
        #: ``(key, step, TensorValue, timestamp_ms)`` of metrics logged as tensors: read by the
        #: writer thread (on a GPU, reading on the training thread waits for the device)
        self.tensors: deque[tuple[Any, ...]] = deque()
        #: ``(metrics, step, timestamp_ms)``: whole dicts an integration handed over
        #: (:meth:`~autolog.run.Run.hand_over_metrics`), checked and read by the writer thread
        self.handed: deque[tuple[Any, int, int]] = deque()
        #: the threads in the middle of a journal write (a signal handler checks it): two locks
        #: guard the journal, and one thread's event write can fall between another's lines
        self.writers: set[int] = set()
        self.ended = False
        # False for a run another process started (an attached DDP worker, a forked child):
        # that process writes the end event and meta.json.
        self.writes_end = writes_end

    @contextmanager
    def _writing(self, lock: Any) -> Iterator[None]:
        # marked before the lock is taken: a signal handled anywhere from here to the release
        # waits for this write to end, never for a lock this thread holds
        me = threading.get_ident()
        outer = me not in self.writers
        try:
            self.writers.add(me)
            with lock:
                yield
        finally:
            if outer:
                self.writers.discard(me)

    def write(self) -> bool:
        """Consume the ring into the journal. Returns True if anything was written."""
        with self._writing(self.lock):
            return self._write_locked(final=False)

    @property
    def deferred(self) -> int:
        """Media items queued and not yet written."""
        return len(self.media)

    def _write_locked(self, final: bool) -> bool:
        if self.journal is None:
            return False
        for sidecar in self.sidecars:
            sidecar()
        # an integration's per-step dicts first: its epoch-level calls, in the ring, come after
        wrote = self._write_handed()
        wrote = self._write_points(final) or wrote
        wrote = self._write_tensors() or wrote
        return self._write_media() or wrote

    def _write_points(self, final: bool) -> bool:
        tail = self.tail
        if tail.pid != os.getpid():
            return False  # a forked child before its at-fork hook: the parent's tail, not ours
        points, seq = tail.consume(final)
        if seq == tail.consumed:
            return False
        wrote = False
        if points:
            record, last = metrics_record(points)
            record.update(tail=tail.token, seq=seq)
            self._write_line(encode_line(record))
            self.last_metrics.update(last)
            wrote = True
        tail.mark(seq)
        return wrote

    def _write_tensors(self) -> bool:
        """Read the metrics logged as tensors and write them as one line (not through the tail:
        a point whose value is not read yet cannot be in a slot)."""
        queue = self.tensors
        if not queue:
            return False
        points = []
        for _ in range(len(queue)):
            key, step, tensor, ts = queue.popleft()
            value = tensor.resolve()
            if value is not None:
                points.append((key, step, value, ts))
        return self._write_metrics(points)

    def _write_handed(self) -> bool:
        """Check and read the metric dicts handed over, and write them as one line."""
        queue = self.handed
        if not queue:
            return False
        points = []
        for _ in range(len(queue)):
            metrics, step, ts = queue.popleft()
            for key, value in metrics.items():
                if type(value) is not float or type(key) is not str or not key:
                    try:
                        key, value = read_metric(key, value, metrics)
                    except Exception:  # its warning made an error (-W error): skipped
                        continue
                    if key is None:
                        continue
                points.append((key, step, value, ts))
        return self._write_metrics(points)

    def _write_metrics(self, points: list[tuple[Any, ...]]) -> bool:
        """``(key, step, value, timestamp_ms)`` points read on this thread, not through the ring,
        as one line."""
        if not points:
            return False
        record, last = metrics_record(points)
        self._write_line(encode_line(record))
        self.last_metrics.update(last)
        return True

    def _write_media(self) -> bool:
        """Write the files of the media queued so far, then their lines (one item, one line:
        an item whose files cannot be written costs only itself)."""
        media, wrote = self.media, False
        for _ in range(len(media)):
            record = media.popleft().resolve()
            if record is not None:
                self._write_line(encode_line(record))
                wrote = True
        return wrote

    def _write_line(self, data: bytes) -> None:
        with self._lines:
            if self.journal is not None:
                self.journal.write(data)

    def write_event(self, record: dict[str, Any]) -> str | None:
        """Write one event through to the journal now (caller's thread). Returns what had to
        be changed to encode it (see :func:`~.codec.encode_record`), or None."""
        data, changed = encode_record(record)
        with self._writing(self._lines):
            if self.journal is None:
                raise RunEnded
            self.journal.write(data)
        return changed

    def finish(self, end: dict[str, Any] | None) -> None:
        """Write what is left (the forked children's tails, the end event), the final
        meta.json, and let go."""
        with self._writing(self.lock):
            self._finish_locked(end)

    def _finish_locked(self, end: dict[str, Any] | None) -> None:
        self._write_locked(final=True)
        self.ended = True
        if self.journal is None:
            return
        recover(self.run_dir, own=self.tail.token)  # children that left through os._exit
        if end is not None and self.writes_end:
            self._write_line(encode_line(end))
            self.meta.update(status=end["status"], end_time=end["time"],
                             metrics=self.last_metrics)
            write_meta(self.run_dir, self.meta)
            tell_launcher(self.run_dir, ended=True)
        with self._lines:
            self.journal.close()
            self.journal = None
        self.tail.close(remove=True)
        if self.run_lock is not None:
            self.run_lock.release()
            self.run_lock = None

    def recover_children(self) -> None:
        """Append the points of forked children that are gone (``os._exit``, killed)."""
        # a SIGTERM waits for it: ending the run takes this lock, and the handler's thread
        # would wait for the interrupted one
        with self._writing(self.lock):
            if self.journal is not None:
                recover(self.run_dir, own=self.tail.token)

    def forked(self) -> None:
        """In a forked child: a tail of its own; the parent consumes what it had written,
        writes the media it had queued and ends the run."""
        self.media = deque()
        self.tensors = deque()
        self.handed = deque()
        self.sidecars = []
        self.lock = threading.Lock()
        self._lines = threading.Lock()
        self.writers = set()  # a parent's thread may have been writing: no thread here is
        self.tail.reopen()
        self.writes_end = False
        self.run_lock = None  # the inherited descriptor keeps the lock held for us


class RunEnded(Exception):
    """A write-through event reached a run whose journal is closed."""


class JournalWriter:
    """Process-wide: owns the writer thread that drains every run's ring."""

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
        #: this process forked: its children's tails are taken over once they are gone
        self.forked = False
        self._start()

    # -- runs --------------------------------------------------------------------------------

    def open(self, run_dir: Path, meta: dict[str, Any], backends: tuple[str, ...],
             writes_end: bool = True) -> RunWriter:
        run = RunWriter(run_dir, meta, backends, writes_end)
        with self._runs_lock:
            self._runs[meta["id"]] = run
        return run

    def pressure(self, run: RunWriter, pending: int = 0) -> None:
        """Called by the logging thread when its ring is past the high-water mark (``pending``
        points not yet journaled), or when it queued a large media item."""
        self._wake.set()
        if pending > HARD_LIMIT or self._thread is None:
            self._write(run)  # the ring must not overflow when the writer cannot keep up

    def write_event(self, run: RunWriter, record: dict[str, Any]) -> str | None:
        """Write one event through to ``run``'s journal (see :meth:`RunWriter.write_event`)."""
        try:
            changed = run.write_event(record)
        finally:
            self._run_deferred()
        self.notify(run.run_dir, run.backends)
        return changed

    def end(self, run: RunWriter, end: dict[str, Any] | None) -> None:
        """Write an ended run's last events now, so a reader sees them at once; a run with
        media still to write (PNGs to encode, plots to draw) is finished by the writer thread
        instead, so the training thread does not wait for that (``write_all``, which reading
        back, ``flush`` and exit call, finishes it at once). Its points are in its tail, its
        other events in its journal already. Metrics logged as tensors still queued are read by
        the writer thread while the caller waits (at most ``DRAIN_TIMEOUT``), never on the
        training thread, where reading a GPU tensor waits for the device."""
        if run.deferred and self._thread is not None and self._thread.is_alive():
            with self._runs_lock:
                self._ending.append((run, end))
            self._wake.set()
            return
        if run.tensors or run.handed:
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
        self._thread = start_thread(self._loop, "autolog-writer")

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
            if self.forked:
                self._recover(run)

    def _recover(self, run: RunWriter) -> None:
        try:
            run.recover_children()
        except Exception as exc:
            internal_error("taking over a forked child's journal tail", exc)
        finally:
            self._run_deferred()

    def _write(self, run: RunWriter) -> None:
        try:
            wrote = run.write()
        except Exception as exc:  # disk full, permissions: keep the training run alive
            internal_error("writing the journal", exc)
            return
        finally:
            self._run_deferred()  # a SIGTERM that waited for this write, however it went
        if wrote:
            self.notify(run.run_dir, run.backends)

    def stop(self) -> None:
        """Stop the thread (after a last :meth:`write_all` by the caller)."""
        self._stopping = True
        self._wake.set()

    def defer_if_writing(self, action: Callable[[], None]) -> bool:
        """For a signal handler: if this thread is in the middle of a journal write, run
        ``action`` as soon as the write is done (and return True) instead of now."""
        me = threading.get_ident()
        if any(me in run.writers for run in list(self._runs.values())):
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
        self.forked = False
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


def _after_fork_in_parent() -> None:
    if runtime.writer is not None:
        runtime.writer.forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child,
                        after_in_parent=_after_fork_in_parent)
