"""Delivery in the training process: one worker thread per backend, and :class:`Deliveries`,
the set of workers the journal writer notifies.

A worker replays each notified run's journal from its cursor (:func:`.replay.deliver`). A
backend that raises is retried with exponential backoff and jitter; one worker per backend keeps
a slow or failing backend from delaying the others, the journal, or the training thread.

The workers of backends that load a tracker's SDK (``Backend.loads_sdk``) start delivering
``AUTOLOG_DELIVERY_DELAY`` seconds after the process's first run starts, or at the first wait
for them (``flush()``, an exit that waits): a short script never loads the SDK (imports that
took the GIL from its training: 100 ms and more of the script for MLflow) and leaves what it
logged to the detached delivery process at exit.

The delivery code itself (:mod:`.replay`, :mod:`.cursor`, :mod:`.sync`, :mod:`.contract`, and
the exit's :mod:`.handoff`) is loaded when the first backend is configured: a process that
records to the local store only never loads it (``enable()``'s cost is mostly imports).
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .._runtime import runtime, start_thread

if TYPE_CHECKING:
    from .contract import Backend, BackendUnavailable

__all__ = ["Deliveries", "Pending", "Worker"]

log = logging.getLogger("autolog")

MAX_BACKOFF = 30.0


class Worker:
    """One backend's delivery thread in the training process."""

    def __init__(self, backend: Backend, start_at: float = 0.0):
        self.backend = backend
        #: ``time.monotonic()`` before which nothing is delivered unless waited for
        self._start_at = start_at
        self.last_error: BaseException | None = None
        self.unavailable: BackendUnavailable | None = None
        self._pending: dict[Path, int] = {}  # run dir -> notifications seen
        self._started: set[str] = set()
        self._cond = threading.Condition()
        self._busy = False
        self._stopped = False
        self._failures = 0
        self._retry_at = 0.0
        #: a run delivered by this worker: its backend answers (its SDK imported, reached)
        self.warm = False
        self._warned: set[str] = set()
        self._thread = start_thread(self._loop, f"autolog-{backend.name}")

    def notify(self, run_dir: Path) -> None:
        with self._cond:
            self._pending[run_dir] = self._pending.get(run_dir, 0) + 1
            if self.unavailable is None:  # given up on: the journal keeps it for `autolog sync`
                self._cond.notify_all()

    def hurry(self) -> None:
        """Deliver now, without waiting out the delivery delay."""
        with self._cond:
            if self._start_at:
                self._start_at = 0.0
                self._cond.notify_all()

    def wait_idle(self, deadline: float) -> bool:
        self.hurry()
        with self._cond:
            while self._pending or self._busy:
                left = deadline - time.monotonic()
                if left <= 0 or self._stopped or self.unavailable is not None:
                    return False  # given up on: nothing to wait for
                if not self._busy and self._retry_at > deadline:
                    return False  # failing, and its next try comes after the deadline
                self._cond.wait(min(left, 0.1))
            return True

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def undelivered(self) -> int:
        from .replay import pending_lines

        return sum(pending_lines(run_dir, self.backend.cursor_key())
                   for run_dir in self.pending_runs())

    def pending_runs(self) -> list[Path]:
        """The runs this worker was told about and has not delivered completely."""
        with self._cond:
            return list(self._pending)

    def cause(self) -> str | None:
        """Why the backend does not have everything, when delivery failed (else None: it
        was only slow)."""
        from .sync import describe

        if self.unavailable is not None:
            return str(self.unavailable)
        error = self.last_error
        return describe(error) if error is not None and self._failures else None

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    wait = max(self._retry_at, self._start_at) - time.monotonic()
                    if self._pending and wait <= 0 and self.unavailable is None:
                        break
                    self._cond.wait(wait if self._pending and self.unavailable is None
                                    else None)
                if self._stopped:
                    break
                work = dict(self._pending)
                self._busy = True
            ok = self._deliver_all(work)
            with self._cond:
                self._busy = False
                if not ok:
                    self._retry_at = time.monotonic() + self._backoff()
                self._cond.notify_all()
        self._close()

    def _deliver_all(self, work: dict[Path, int]) -> bool:
        from .contract import BackendUnavailable
        from .cursor import DeliveryBusy
        from .replay import deliver

        for run_dir, seen in work.items():
            try:
                deliver(self.backend, run_dir, started=self._started)
            except DeliveryBusy:
                pass  # `autolog sync` has it; the next notification picks up after it
            except BackendUnavailable as exc:
                self._give_up(exc)
                return True
            except Exception as exc:
                self._failed(exc)
                return False
            self.warm = True
            with self._cond:
                if self._pending.get(run_dir) == seen:
                    del self._pending[run_dir]
        self._failures = 0
        return True

    def _failed(self, exc: BaseException) -> None:
        self.last_error = exc
        self._failures += 1
        kind = type(exc).__name__
        if kind not in self._warned:
            self._warned.add(kind)
            log.warning("autolog: the %s backend failed (%s: %s); retrying with backoff. "
                        "Nothing is lost: the local journal keeps every event and "
                        "`autolog sync` delivers what is left.", self.backend.name, kind, exc)

    def _give_up(self, exc: BackendUnavailable) -> None:
        """A permanent misconfiguration: said once, never retried, nothing waited for at exit
        (the runs it was given stay pending, for the exit message and ``autolog sync``).

        Said before it is marked: a flush waiting on this worker returns once it is, and what
        the caller then reads (a log, a test's capture) already has the cause."""
        text = str(exc)
        if "autolog sync" not in text:
            text += (" The runs stay in the local journal: once this is fixed, `autolog sync` "
                     "delivers them.")
        log.warning("autolog: %s backend off for this process: %s", self.backend.name, text)
        self.unavailable = self.last_error = exc

    def _backoff(self) -> float:
        return min(MAX_BACKOFF, 0.25 * 2 ** self._failures) * random.uniform(0.5, 1.5)

    def _close(self) -> None:
        try:
            self.backend.close()
        except Exception as exc:
            log.warning("autolog: closing the %s backend failed: %s", self.backend.name, exc)


class Pending:
    """The runs one backend destination has not received completely, and why."""

    def __init__(self, worker: Worker, runs: list[Path]):
        self.name = worker.backend.name
        self.key = worker.backend.cursor_key()
        self.runs = runs
        self.cause = worker.cause()
        #: a permanent misconfiguration: nothing to hand over, the fix is the user's
        self.permanent = worker.unavailable is not None

    def lines(self) -> int:
        from .replay import pending_lines

        return sum(pending_lines(run_dir, self.key) for run_dir in self.runs)


class Deliveries:
    """The delivery workers of this process, one per backend destination."""

    def __init__(self) -> None:
        self._start_at: float | None = None  # set by the first configure()
        self._workers: dict[str, Worker] = {}  # backend name -> its worker
        self._retired: list[Worker] = []  # workers of destinations reconfigured away
        self._lock = threading.Lock()
        self._in_child = False

    def configure(self, backends: dict[str, Backend], delay: float = 0.0) -> None:
        """Start a worker for each backend destination not served yet; none delivers before
        ``delay`` seconds after the first call (the process's first run).

        A backend whose destination changed (another tracking URI) gets a new worker for the
        runs started from now on; the old worker finishes the runs it was given.
        """
        if self._in_child or not backends:
            return
        # SDKs start thread pools; concurrent.futures registers its exit hook on first import,
        # which Python refuses once shutdown began: import it now so the exit flush can deliver.
        # The delivery code and the exit's hand-over are loaded now too, not first at exit (a
        # SIGTERM's exit runs while the main thread may hold an import lock).
        import concurrent.futures.thread  # noqa: F401

        from . import contract, cursor, handoff, replay, sync  # noqa: F401

        with self._lock:
            if self._start_at is None:
                self._start_at = time.monotonic() + delay if delay > 0 else 0.0
            for name, backend in backends.items():
                current = self._workers.get(name)
                if current is not None and \
                        current.backend.cursor_key() == backend.cursor_key():
                    continue
                if current is not None:
                    self._retired.append(current)
                self._workers[name] = Worker(backend,
                                             self._start_at if backend.loads_sdk else 0.0)

    def notify(self, run_dir: Path, backends: tuple[str, ...]) -> None:
        """The journal of ``run_dir`` has new lines for these backends."""
        for name in backends:
            worker = self._workers.get(name)
            if worker is not None:
                worker.notify(run_dir)

    def _all(self) -> list[Worker]:
        with self._lock:
            return [*self._workers.values(), *self._retired]

    def wait(self, deadline: float, warm_only: bool = False) -> bool:
        """Wait until every worker is idle, or ``deadline`` (``time.monotonic``) passes.
        ``warm_only``: only the workers that have delivered a run (the exit's grace: one still
        on its first delivery is importing its SDK or failing to reach its backend, and would
        rarely finish within it). Waited for, the workers deliver at once
        (``AUTOLOG_DELIVERY_DELAY`` no longer holds them back); each is waited for, whatever
        the one before answered."""
        workers = [worker for worker in self._all() if worker.warm or not warm_only]
        if not warm_only:
            with self._lock:
                self._start_at = 0.0  # and the workers started from now on
        for worker in workers:
            worker.hurry()
        return all([worker.wait_idle(deadline) for worker in workers])

    def shutdown(self, timeout: float) -> dict[str, int]:
        """Wait up to ``timeout`` seconds, stop the workers; undelivered lines per backend."""
        self.wait(time.monotonic() + timeout)
        left: dict[str, int] = {}
        for worker in self._all():
            worker.stop()
            remaining = worker.undelivered()
            if remaining:
                left[worker.backend.name] = left.get(worker.backend.name, 0) + remaining
        return left

    def pending(self) -> list[Pending]:
        """What each backend destination has not received completely, and why."""
        found = []
        for worker in self._all():
            runs = worker.pending_runs()
            if runs:
                found.append(Pending(worker, runs))
        return found

    def stop(self) -> None:
        """Stop every worker after its current call, without waiting for it."""
        for worker in self._all():
            worker.stop()

    def after_fork_in_child(self) -> None:
        """A forked child delivers nothing: the parent delivers the shared journals."""
        self._in_child = True
        self._workers, self._retired = {}, []
        self._lock = threading.Lock()


def _after_fork_in_child() -> None:
    if runtime.deliveries is not None:
        runtime.deliveries.after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
