"""The hot path's other end: the writer thread, per-backend delivery workers, flush, exit and fork.

A run's logging calls append tuples to the run's ``deque`` (:class:`Sink.buffer`) and return. The
writer thread wakes every ``AUTOLOG_FLUSH_INTERVAL`` (or when a buffer passes the high-water mark),
encodes what is buffered and appends it to the run's journal, then tells each remote backend's
worker that the run has new lines. Workers read the journal from their own cursor
(:mod:`autolog.delivery`), so what a backend has not taken yet waits on disk, not in memory, and a
slow or failing backend never holds up the journal, the other backends, or the training thread.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import store
from .errors import internal_error

if TYPE_CHECKING:
    from .backends.base import Backend
    from .config import Settings

__all__ = ["HIGH_WATER", "Pipeline", "Sink", "get_pipeline"]

HIGH_WATER = 20_000  # buffered events that wake the writer early
HARD_LIMIT = 4 * HIGH_WATER  # beyond this the logging thread writes the buffer itself
CHILD_FLUSH_INTERVAL = 0.2  # forked workers may be terminated without warning: flush often


class Sink:
    """What the pipeline keeps for one run this process writes: buffer, journal, summary."""

    def __init__(self, run_dir: Path, meta: dict[str, Any], backends: tuple[str, ...],
                 owned: bool = True):
        self.run_dir = run_dir
        self.meta = meta
        self.backends = backends
        self.buffer: deque[tuple[Any, ...]] = deque()
        self.lock = threading.Lock()  # one drain-and-write at a time keeps lines in order
        self.journal: store.Journal | None = store.Journal(run_dir)
        self.run_lock = store.RunLock(run_dir) if owned else None
        self.last_metrics: dict[str, float] = {}
        self.writer: int | None = None  # the thread writing now (a signal handler checks it)
        self.ended = False
        # False for a run another process started (an attached DDP worker, a forked child):
        # that process writes the end event and meta.json.
        self.owned = owned

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
        buffer = self.buffer
        events = [buffer.popleft() for _ in range(len(buffer))]
        if not events:
            return False
        data, last = store.encode_events(events)
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
        if end is None or not self.owned:
            self.journal.close()
            self.journal = None
            return
        self.meta.update(status=end["status"], end_time=end["time"], metrics=self.last_metrics)
        store.write_meta(self.run_dir, self.meta)
        self.journal.close()
        self.journal = None
        if self.run_lock is not None:
            self.run_lock.release()
            self.run_lock = None


class Pipeline:
    """Process-wide: owns the writer thread and one worker per remote backend."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._sinks: dict[str, Sink] = {}
        self._sinks_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._in_child = False
        self._workers: dict[str, Any] = {}  # backend name -> delivery.Worker
        self._retired: list[Any] = []  # workers of destinations reconfigured away
        self._writer: threading.Thread | None = None
        # (thread, action) to run once that thread's current write is done
        self._deferred: list[tuple[int, Callable[[], None]]] = []
        self._interval = settings.flush_interval
        self._start_writer()

    # -- runs --------------------------------------------------------------------------------

    def open(self, run_dir: Path, meta: dict[str, Any], backends: tuple[str, ...],
             owned: bool = True) -> Sink:
        sink = Sink(run_dir, meta, backends, owned)
        with self._sinks_lock:
            self._sinks[meta["id"]] = sink
        return sink

    def pressure(self, sink: Sink) -> None:
        """Called by the logging thread when a buffer is past the high-water mark."""
        self._wake.set()
        if len(sink.buffer) > HARD_LIMIT or self._writer is None:
            self._write_sink(sink)  # keep memory flat when the writer cannot keep up

    def end(self, sink: Sink, end: dict[str, Any] | None) -> None:
        """Write an ended run's last events now, so a reader sees them at once."""
        try:
            sink.finish(end)
        except Exception as exc:
            internal_error("writing the journal", exc)
        self._notify(sink)
        with self._sinks_lock:
            self._sinks.pop(sink.meta["id"], None)
        self._run_deferred()

    def configure_backends(self, backends: dict[str, Backend]) -> None:
        """Start a delivery worker for each backend destination not served yet.

        A backend whose destination changed (another tracking URI) gets a new worker for the
        runs started from now on; the old worker finishes the runs it was given.
        """
        from .delivery import Worker

        if self._in_child or not backends:
            return
        # SDKs start thread pools; concurrent.futures registers its exit hook on first import,
        # which Python refuses once shutdown began: import it now so the exit flush can deliver.
        import concurrent.futures.thread  # noqa: F401

        for name, backend in backends.items():
            current = self._workers.get(name)
            if current is not None and current.backend.cursor_key() == backend.cursor_key():
                continue
            if current is not None:
                self._retired.append(current)
            self._workers[name] = Worker(backend, self.settings)

    def _all_workers(self) -> list[Any]:
        return [*self._workers.values(), *self._retired]

    # -- writing -----------------------------------------------------------------------------

    def _start_writer(self) -> None:
        self._writer = threading.Thread(target=self._loop, name="autolog-writer", daemon=True)
        self._writer.start()

    def _loop(self) -> None:
        while not self._stopping:
            self._wake.wait(self._interval)
            self._wake.clear()
            self.write_all()

    def write_all(self) -> None:
        with self._sinks_lock:
            sinks = list(self._sinks.values())
        for sink in sinks:
            self._write_sink(sink)

    def _write_sink(self, sink: Sink) -> None:
        try:
            wrote = sink.write()
        except Exception as exc:  # disk full, permissions: keep the training run alive
            internal_error("writing the journal", exc)
            return
        if wrote:
            self._notify(sink)
        self._run_deferred()

    def defer_if_writing(self, action: Callable[[], None]) -> bool:
        """For a signal handler: if this thread is in the middle of a journal write, run
        ``action`` as soon as the write is done (and return True) instead of now."""
        me = threading.get_ident()
        if any(sink.writer == me for sink in list(self._sinks.values())):
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

    def _notify(self, sink: Sink) -> None:
        for name in sink.backends:
            worker = self._workers.get(name)
            if worker is not None:
                worker.notify(sink.run_dir)

    # -- flush and exit ----------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Write every buffer to the journal, then wait up to ``timeout`` for delivery."""
        self.write_all()
        deadline = time.monotonic() + (self.settings.exit_timeout if timeout is None else timeout)
        return all(w.wait_idle(deadline) for w in self._all_workers())

    def shutdown(self, timeout: float) -> dict[str, int]:
        """Flush at exit, bounded by ``timeout``; returns undelivered lines per backend."""
        self.flush(timeout)
        self._stopping = True
        self._wake.set()
        left: dict[str, int] = {}
        for worker in self._all_workers():
            worker.stop()
            remaining = worker.undelivered()
            if remaining:
                left[worker.backend.name] = left.get(worker.backend.name, 0) + remaining
        return left

    def after_fork_in_child(self) -> None:
        """A forked child logs to the same journals; the parent keeps delivering them."""
        self._in_child = True
        self._interval = min(self._interval, CHILD_FLUSH_INTERVAL)
        self._workers = {}
        self._retired = []
        self._deferred = []
        self._sinks_lock = threading.Lock()
        self._wake = threading.Event()
        for sink in self._sinks.values():
            sink.buffer.clear()  # the parent writes what it had buffered
            sink.lock = threading.Lock()
            sink.owned = False
            sink.run_lock = None  # the inherited descriptor keeps the lock held for us
        self._start_writer()
        _flush_before_multiprocessing_exit(self)


def _flush_before_multiprocessing_exit(pipeline: Pipeline) -> None:
    """multiprocessing children leave through ``os._exit``: atexit never runs there.

    A ``Finalize`` registered now would be cleared by ``Process._bootstrap``; an after-fork
    callback runs after that clearing and registers it then.
    """
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        util.register_after_fork(pipeline, _register_finalizer)


def _register_finalizer(pipeline: Pipeline) -> None:
    from multiprocessing import util

    util.Finalize(pipeline, pipeline.write_all, exitpriority=100)


_pipeline: Pipeline | None = None
_pipeline_lock = threading.Lock()


def get_pipeline(settings_factory: Callable[[], Settings]) -> Pipeline:
    global _pipeline
    if _pipeline is None:
        with _pipeline_lock:
            if _pipeline is None:
                _pipeline = Pipeline(settings_factory())
    return _pipeline


def current() -> Pipeline | None:
    return _pipeline


def _after_fork_in_child() -> None:
    global _pipeline_lock
    _pipeline_lock = threading.Lock()
    if _pipeline is not None:
        _pipeline.after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
