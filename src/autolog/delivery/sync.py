"""One bounded pass over the store: what ``autolog sync`` and the detached delivery process run.

:func:`plan` lists the (run, backend) pairs that have something left to deliver, oldest run
first (parents reach a backend before their children). :class:`Sync` delivers them with
:func:`.replay.deliver`, on a thread of its own, so that the caller keeps an overall deadline
and Ctrl-C: a call that never returns is abandoned, never waited for, and what was
acknowledged stays delivered (the cursor moves after each call).

Each backend has a circuit breaker: a permanent error (:class:`.BackendUnavailable`), a
connection error, or the same kind of error on two runs in a row stops the rest of that
backend's runs at once, with one cause for the summary, instead of one timeout per run.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ..journal.files import DELIVERY, JOURNAL
from ..journal.reader import lock_is_held, read_meta
from .contract import BackendUnavailable
from .cursor import Cursor, DeliveryBusy
from .replay import deliver

if TYPE_CHECKING:
    from .contract import Backend

__all__ = ["Breaker", "Job", "Result", "Summary", "Sync", "describe", "pending_by_name", "plan",
           "size", "size_text"]

#: a call making no progress for this long is reported (``Sync.on_wait``)
STALL_NOTICE = 5.0


class Job:
    """One run to deliver to one backend."""

    def __init__(self, run_dir: Path, backend: str, left: int):
        self.run_dir = run_dir
        self.backend = backend
        #: journal bytes not acknowledged yet (what the progress bar counts)
        self.left = left

    @property
    def run_id(self) -> str:
        return self.run_dir.name


class Result:
    def __init__(self, job: Job, status: str, delivered: int = 0, error: str | None = None):
        self.job = job
        #: done | up to date | busy | failed | skipped | stopped
        self.status = status
        self.delivered = delivered  # journal bytes acknowledged during this pass
        self.error = error

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"run": self.job.run_id, "backend": self.job.backend,
                                  "bytes": self.job.left, "delivered": self.delivered,
                                  "status": self.status}
        if self.error:
            out["error"] = self.error
        return out


def describe(exc: BaseException) -> str:
    """An exception as one short line for a summary."""
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Breaker:
    """Whether one backend is still worth trying in this pass, and why not."""

    def __init__(self) -> None:
        self.cause: str | None = None
        self.permanent = False
        self.last_kind: str | None = None

    @property
    def open(self) -> bool:
        return self.cause is not None

    def failed(self, exc: BaseException) -> None:
        kind = type(exc).__name__
        if isinstance(exc, BackendUnavailable):
            self.cause, self.permanent = str(exc), True
        elif isinstance(exc, (ConnectionError, TimeoutError)) or kind == self.last_kind:
            self.cause = describe(exc)
        self.last_kind = kind

    def succeeded(self) -> None:
        self.last_kind = None


class Summary:
    """What one pass delivered, what it left and why."""

    def __init__(self) -> None:
        self.results: list[Result] = []
        #: backend name -> why the rest of its runs were not delivered
        self.causes: dict[str, str] = {}
        self.permanent: set[str] = set()
        self.interrupted = False
        self.timed_out = False

    def left(self) -> list[Result]:
        return [r for r in self.results if r.status not in ("done", "up to date")]

    def delivered(self) -> list[Result]:
        return [r for r in self.results if r.status == "done"]

    def text(self) -> str:
        """One paragraph: what was delivered, what is left and why, what to run."""
        if not self.results:
            return "nothing to sync"
        done = self.delivered()
        parts = [f"delivered {_runs(len(done))} ({size_text(sum(r.delivered for r in done))})"
                 if done else "delivered nothing"]
        left = self.left()
        if not left:
            return parts[0] + "; nothing left"
        parts.append(f"{_runs(len(left))} left")
        text = ", ".join(parts)
        for backend, cause in self._causes(left).items():
            text += f"\n  {backend}: {cause}"
        return text + "\n" + self._next_step()

    def _causes(self, left: list[Result]) -> dict[str, str]:
        causes: dict[str, str] = {}
        for r in left:
            cause = self.causes.get(r.job.backend) or r.error or {
                "busy": "another process is delivering it",
                "stopped": "stopped before its turn"}.get(r.status, r.status)
            causes.setdefault(r.job.backend, cause)
        return causes

    def _next_step(self) -> str:
        if self.interrupted:
            return "interrupted; what was delivered stays delivered: run `autolog sync` to go on"
        if self.timed_out:
            return "the time limit (--timeout) ran out: run `autolog sync` again to go on"
        if self.permanent:
            return "fix the cause above, then run `autolog sync` again"
        return "run `autolog sync` again once the backend is back"


def _runs(n: int) -> str:
    return f"{n} run{'s' if n != 1 else ''}"


def size_text(n: float) -> str:
    """Journal bytes as a person reads them (decimal units: ``3.4 MB``)."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"  # pragma: no cover


# -- what is left ---------------------------------------------------------------------------


def size(run_dir: Path) -> int:
    try:
        return (run_dir / JOURNAL).stat().st_size
    except OSError:
        return 0


def plan(run_dirs: Iterable[Path], keys: Mapping[str, str | None], to: str | None = None,
         *, finished_only: bool = False) -> list[Job]:
    """The (run, backend) pairs with something left, in the order given.

    ``keys`` maps each backend name to its destination's cursor key (None when the backend
    could not be made: then any cursor of that name that says done counts). Without ``to``
    each run goes to the backends it was recorded with that ``keys`` names; with ``to``, to
    that one. ``finished_only`` leaves out runs a live process is still running (it delivers
    them itself).
    """
    jobs = []
    for run_dir in run_dirs:
        meta = read_meta(run_dir) or {}
        names = [to] if to else [b for b in meta.get("backends", ()) if b != "local"]
        names = [n for n in names if n in keys]
        if not names or (finished_only and lock_is_held(run_dir, meta)):
            continue
        for name in names:
            left = _left(run_dir, name, keys[name])
            if left is not None:
                jobs.append(Job(run_dir, name, left))
    return jobs


def _left(run_dir: Path, name: str, key: str | None) -> int | None:
    """Journal bytes ``key`` has not acknowledged, None when its delivery is done (edits
    appended after a run's end are left to deliver too)."""
    if key is not None:
        cursor = Cursor(run_dir, key)
        left = max(0, size(run_dir) - cursor.offset)
        return None if cursor.done and not left else left
    cursors = pending_by_name(run_dir).get(name)
    return None if cursors is None else cursors


def pending_by_name(run_dir: Path) -> dict[str, int]:
    """Backend name -> journal bytes left, for the run's own backends, whatever their
    destination: a backend counts as delivered when one of its cursors says done and has
    every byte (an edit appended after the end is pending)."""
    meta = read_meta(run_dir) or {}
    total = size(run_dir)
    left: dict[str, int] = {}
    for name in meta.get("backends", ()):
        if name == "local":
            continue
        cursors = [Cursor(run_dir, p.stem) for p in _cursor_files(run_dir, name)]
        offset = max((c.offset for c in cursors), default=0)
        if any(c.done for c in cursors) and offset >= total:
            continue
        left[name] = max(0, total - offset)
    return left


def _cursor_files(run_dir: Path, name: str) -> list[Path]:
    folder = run_dir / DELIVERY
    if not folder.is_dir():
        return []
    return [p for p in folder.glob("*.json")
            if p.stem == name or p.stem.startswith(name + "-")]


# -- one pass -------------------------------------------------------------------------------


class _Stopped(Exception):
    """Raised from the progress callback to end a pass between two acknowledged calls."""


class Sync:
    """Delivers jobs to backends made on demand by ``make_backend(name)``."""

    def __init__(self, make_backend: Callable[[str], Backend]):
        self.make_backend = make_backend
        self.backends: dict[str, Backend] = {}
        self.breakers: dict[str, Breaker] = {}
        #: called with (job, acknowledged bytes so far) after each acknowledged call
        self.on_progress: Callable[[Job, int], None] = lambda job, done: None
        #: called with each job's result
        self.on_result: Callable[[Result], None] = lambda result: None
        #: called (from the waiting thread) with the job and seconds without progress
        self.on_wait: Callable[[Job, float], None] = lambda job, seconds: None
        self._stop = threading.Event()
        self._lock = threading.Lock()  # the pass thread's results against the caller's end
        self._current: Job | None = None
        self._moved = time.monotonic()

    def keys(self, names: Iterable[str]) -> dict[str, str | None]:
        """Each backend's cursor key; None for one that could not be made (its breaker is
        open with the reason)."""
        out: dict[str, str | None] = {}
        for name in dict.fromkeys(names):
            backend = self._backend(name)
            out[name] = None if backend is None else backend.cursor_key()
        return out

    def breaker(self, name: str) -> Breaker:
        return self.breakers.setdefault(name, Breaker())

    def run(self, jobs: list[Job], deadline: float | None = None) -> Summary:
        """Deliver ``jobs`` until done, ``deadline`` (``time.monotonic``) or Ctrl-C."""
        summary = Summary()
        self._stop = threading.Event()
        thread = threading.Thread(target=self._pass, args=(jobs, summary),
                                  name="autolog-sync", daemon=True)
        thread.start()
        interrupted = threading.Event()
        with _ctrl_c_sets(interrupted):
            try:
                self._wait(thread, deadline, interrupted)
            except KeyboardInterrupt:  # a handler of the caller's own raised it
                interrupted.set()
        # a Ctrl-C as the pass ended on its own interrupted nothing
        summary.interrupted = interrupted.is_set() and thread.is_alive()
        if thread.is_alive():  # abandoned mid-call: the cursor says what was acknowledged
            self._stop.set()
            summary.timed_out = not summary.interrupted
            thread.join(0.2)
        with self._lock:
            self._stop.set()
            self._abandoned(summary)
            self._finish(jobs, summary)
        return summary

    def close(self) -> None:
        for backend in self.backends.values():
            try:
                backend.close()
            except Exception:
                pass

    def _wait(self, thread: threading.Thread, deadline: float | None,
              interrupted: threading.Event) -> None:
        noticed = 0.0
        while thread.is_alive() and not interrupted.is_set():
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return
            thread.join(0.1 if deadline is None else max(0.0, min(0.1, deadline - now)))
            stalled = time.monotonic() - self._moved
            job = self._current
            if job is not None and stalled >= STALL_NOTICE and stalled - noticed >= STALL_NOTICE:
                noticed = stalled
                self.on_wait(job, stalled)
            elif stalled < noticed:
                noticed = 0.0

    def _pass(self, jobs: list[Job], summary: Summary) -> None:
        for job in jobs:
            if self._stop.is_set():
                return
            result = self._one(job, summary)
            with self._lock:
                if self._stop.is_set():  # the caller has given up and counted it as left
                    return
                summary.results.append(result)
            self.on_result(result)

    def _one(self, job: Job, summary: Summary) -> Result:
        breaker = self.breaker(job.backend)
        backend = None if breaker.open else self._backend(job.backend)
        if backend is None:
            return Result(job, "skipped", error=breaker.cause)
        result = Result(job, "done" if job.left else "up to date")
        start = Cursor(job.run_dir, backend.cursor_key()).offset
        self._current, self._moved = job, time.monotonic()

        def progress(offset: int) -> None:
            self._moved = time.monotonic()
            result.delivered = offset - start
            self.on_progress(job, result.delivered)
            if self._stop.is_set():
                raise _Stopped

        try:
            deliver(backend, job.run_dir, progress=progress)
        except _Stopped:
            result.status = "stopped"
        except DeliveryBusy:
            result.status = "busy"
        except Exception as exc:
            self._failed(job.backend, exc, summary)
            result.status, result.error = "failed", describe(exc)
        else:
            breaker.succeeded()
        finally:
            self._current = None
        return result

    def _backend(self, name: str) -> Backend | None:
        if name not in self.backends and self.breaker(name).open:
            return None
        if name not in self.backends:
            try:
                self.backends[name] = self.make_backend(name)
            except Exception as exc:  # an unknown name, a missing URL: nothing to try
                self.breaker(name).failed(BackendUnavailable(str(exc)))
                return None
        return self.backends[name]

    def _failed(self, name: str, exc: BaseException, summary: Summary) -> None:
        breaker = self.breaker(name)
        breaker.failed(exc)
        if breaker.open:
            summary.causes.setdefault(name, breaker.cause or describe(exc))
            if breaker.permanent:
                summary.permanent.add(name)

    def _abandoned(self, summary: Summary) -> None:
        job = self._current
        if job is not None and summary.timed_out:
            waited = time.monotonic() - self._moved
            summary.causes.setdefault(job.backend, f"{job.backend} had not answered for "
                                                   f"{waited:.0f} s when the time ran out")

    def _finish(self, jobs: list[Job], summary: Summary) -> None:
        """Jobs not reached are left; the causes of every open breaker are named."""
        reached = {id(r.job) for r in summary.results}
        for job in jobs:
            if id(job) not in reached:
                summary.results.append(Result(job, "stopped"))
        for name, breaker in self.breakers.items():
            if breaker.open:
                summary.causes.setdefault(name, breaker.cause or "")
                if breaker.permanent:
                    summary.permanent.add(name)


@contextmanager
def _ctrl_c_sets(event: threading.Event) -> Iterator[None]:
    """Ctrl-C sets ``event`` while this lasts, where SIGINT has Python's default handler and
    this is the main thread. The default handler raises KeyboardInterrupt wherever the main
    thread is, and inside a weakref callback or a ``__del__`` Python prints it and goes on:
    the Ctrl-C would be lost (it was for ``autolog ui``: 2 starts in 65 on Python 3.10)."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: event.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
