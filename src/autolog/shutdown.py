"""Flushing, and ending well: exit, SIGTERM.

- :func:`flush`: every buffer to the journal, then wait (bounded) for the delivery workers;
- at exit (``atexit``): active runs end (FINISHED, or FAILED/KILLED when the interpreter exits on
  an uncaught exception / KeyboardInterrupt) and the journals are written. Then, by default,
  what the backends have not received is handed to a detached delivery process
  (:mod:`.delivery.handoff`) and the process exits at once; where that process would be killed
  with the job (:func:`.exitmode.must_wait`) or with ``AUTOLOG_EXIT_MODE=wait``, the backends
  get at most ``AUTOLOG_EXIT_TIMEOUT`` seconds. What is left is reported with its cause and
  what to run;
- SIGTERM, when no handler was installed: runs end KILLED, what is left is handed over as at
  exit (or, where the exit waits, the bounded flush runs, at most 5 s), then the default
  disposition is restored and the signal re-raised, so the process still dies of it.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import logging
import os
import signal
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._runtime import runtime, start_thread
from .config import Settings, current
from .exitmode import must_wait
from .patching import revert_all
from .report import internal_error
from .run import status_for

if TYPE_CHECKING:
    from .delivery.worker import Pending

__all__ = ["exit_hook_first", "flush", "install_exit_hooks", "shutdown"]

log = logging.getLogger("autolog")

#: at exit, how long the workers that have delivered a run may finish what they are doing
#: before the rest is handed over
GRACE = 0.1
#: at exit, the most the patches' revert waits for the runtime's lock
LET_GO_WAIT = 0.5


def flush(timeout: float | None = None) -> bool:
    """Write every buffer to the journal, then wait up to ``timeout`` seconds (default
    ``AUTOLOG_EXIT_TIMEOUT``) for the remote backends. True when all have it."""
    writer, deliveries = runtime.writer, runtime.deliveries
    if writer is None:
        return True
    writer.write_all()
    if deliveries is None:
        return True
    wait = current().exit_timeout if timeout is None else timeout
    return deliveries.wait(time.monotonic() + wait)


def shutdown(timeout: float) -> dict[str, int]:
    """The bounded flush at exit; stops the writer and the workers. Undelivered journal lines
    per backend."""
    writer, deliveries = runtime.writer, runtime.deliveries
    if writer is not None:
        writer.write_all()
    left = deliveries.shutdown(timeout) if deliveries is not None else {}
    if writer is not None:
        writer.stop()
    return left


def install_exit_hooks() -> None:
    """The ``atexit`` hook and, on the main thread with no handler installed, SIGTERM's."""
    with runtime.lock:
        if runtime.exit_hooks_installed:
            return
        runtime.exit_hooks_installed = True
    _finalizers_run_after_us()
    atexit.register(_at_exit)
    import signal

    if threading.current_thread() is threading.main_thread():
        try:
            if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
                signal.signal(signal.SIGTERM, _on_sigterm)
        except (ValueError, OSError, AttributeError):
            pass


def _before_fork() -> None:
    """SIGTERM blocked in the forking thread until the child is set up (and in the parent,
    until the fork returns); a SIGTERM that arrives meanwhile stays pending.

    A forked child runs Python-level signal handlers at its first bytecode, which is in the
    at-fork hooks, before the journal writer's hook gave the child a tail of its own. A SIGTERM
    sent that early (``Pool.terminate()`` right after the pool started a worker, on a loaded
    machine) ran the inherited handler there: autolog's flushed the parent's tail from the
    child, so the parent's points were journaled twice, and when the next hook replaced the
    handler the signal was dropped and the worker never died.
    """
    try:
        runtime.local.fork_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    except (ValueError, OSError, AttributeError):
        pass


def _after_fork_in_parent() -> None:
    _restore_mask()


def _after_fork_in_child() -> None:
    """In a forked child, after the journal writer's hook (registered first, so run first):
    SIGTERM back to its default if autolog's handler is the one set, then unblocked (a SIGTERM
    that arrived meanwhile ends the child now, or runs the user's own handler).

    The child never ends its parent's runs, and its points are safe in its own journal tail
    whatever kills it, so it has nothing to do on SIGTERM. A Python-level SIGTERM handler in
    ``multiprocessing`` workers also makes ``Pool.terminate()`` (what ``with Pool():`` ends
    with) hang now and then, a worker never dying (see docs/reliability.md).
    """
    try:
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except (ValueError, OSError, AttributeError):
        pass
    _restore_mask()


def _restore_mask() -> None:
    mask = getattr(runtime.local, "fork_mask", None)
    if mask is not None:
        runtime.local.fork_mask = None
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


if hasattr(os, "register_at_fork") and hasattr(signal, "pthread_sigmask"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)


def _finalizers_run_after_us() -> None:
    """Have ``weakref.finalize`` register its ``atexit`` hook now, before ours.

    The exit flush may import modules for the first time (a backend's SDK or model flavour on
    its worker: ``mlflow.sklearn`` pulled in skops, which imports torch). Such modules create
    ``weakref.finalize`` objects, which are run by one ``atexit`` hook that ``weakref``
    registers with the first finalize of the process. Registered while ``atexit`` runs, that
    hook is never called, and the finalizers fire at interpreter teardown, when module globals
    are None (``Exception ignored in: <finalize object ...> torch/library.py ... TypeError:
    'NoneType' object is not callable``). Registered before ours, it runs after the flush.
    """
    weakref.finalize(_finalizers_run_after_us, _nothing).detach()


def _nothing() -> None:
    pass


def exit_hook_first() -> None:
    """Make autolog's exit flush run before the ``atexit`` hooks registered so far.

    ``atexit`` runs hooks in reverse order of registration; a backend whose SDK registers its
    own teardown (W&B waits for its service there) calls this after starting the SDK, so the
    flush delivers before the SDK shuts down.
    """
    if runtime.exit_hooks_installed:
        atexit.unregister(_at_exit)
        atexit.register(_at_exit)


def _end_all(status: str) -> None:
    pid = os.getpid()
    for run in reversed(list(runtime.runs)):
        if run.owner_pid == pid:  # a forked child never ends its parent's runs
            try:
                run.end(status)
            except Exception as exc:
                internal_error("ending runs at exit", exc)


def _at_exit() -> None:
    exc = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    try:
        with _collector_paused():
            _end_all(status_for(exc))
            if runtime.writer is None:
                return
            runtime.writer.write_all()
        settings = current()
        why_wait = must_wait(settings.exit_mode)
        if why_wait is None and _detach(settings):
            return
        _wait(settings, why_wait)
    finally:
        _let_go()


def _let_go() -> None:
    """Put the frameworks' classes back as they were, once the runs have ended at exit.

    The patched classes, autolog's wrappers, its runtime (plugins, runs) and the patcher (which
    holds every patched class) are one graph, which otherwise stays alive through the
    interpreter's teardown collections, walked again by each: 14,700 more objects in the last
    one after a scikit-learn fit, 10 to 15 ms (``docs/performance.md``). Training started by a
    later ``atexit`` hook goes unrecorded, as it would after ``disable()``."""
    if not runtime.lock.acquire(timeout=LET_GO_WAIT):
        return  # another thread holds it (patching a module it imports): the patches stay
    try:
        runtime.enabled = False
        revert_all()
    except Exception as exc:
        internal_error("reverting the patches at exit", exc)
    finally:
        runtime.lock.release()


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while the runs end and the journals get their last
    pass at exit. What that pass allocates (Pillow imported to draw the evaluation plots, a
    model written) tripped a full collection of the training's heap, 70 ms after a small
    scikit-learn fit, and the interpreter's shutdown collects everything once more anyway."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _detach(settings: Settings) -> bool:
    """Hand what is left to a detached delivery process; False when that failed (then the
    exit waits instead)."""
    writer, deliveries = runtime.writer, runtime.deliveries
    if writer is not None:
        writer.write_all()
    if deliveries is None:
        return True
    deliveries.wait(time.monotonic() + GRACE, warm_only=True)
    left = deliveries.pending()
    handed = [p for p in left if not p.permanent]
    try:
        pids = _hand_over(handed, settings) if handed else {}
    except Exception as exc:  # could not start it: deliver as before
        log.warning("autolog: could not start the delivery process (%s); waiting for the "
                    "backends instead", exc)
        return False
    deliveries.stop()
    if writer is not None:
        writer.stop()
    for pending in left:
        _say_detached(pending, pids.get(pending.name), settings)
    return True


def _hand_over(pending: list[Pending], settings: Settings) -> dict[str, int | None]:
    """Queue each store's runs and start its delivery process; backend name -> pid (None:
    one was running already)."""
    from .delivery.handoff import Handoff  # loaded with the first backend (Deliveries)

    stores: dict[Path, dict[str, str]] = {}
    runs: dict[Path, list[str]] = {}
    for p in pending:
        for run_dir in p.runs:
            stores.setdefault(run_dir.parent, {})[p.name] = p.key
            runs.setdefault(run_dir.parent, []).append(run_dir.name)
    env = _delivery_env(settings)
    pids: dict[str, int | None] = {}
    for store, backends in stores.items():
        handoff = Handoff(store, backends)
        handoff.enqueue(runs[store])
        pid = handoff.start(settings.detach_timeout, env)
        pids.update(dict.fromkeys(backends, pid))
    return pids


def _delivery_env(settings: Settings) -> dict[str, str]:
    """The delivery process's environment: this one's, with the settings in force (those
    ``enable()`` was given too), and autolog off for anything it might run."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONSTARTUP", "PYTHONINSPECT")}
    env.update(settings.environ())
    env.update(AUTOLOG_DISABLE="1", AUTOLOG_SYSTEM_METRICS="0", AUTOLOG_STRICT="0")
    return env


def _say_detached(pending: Pending, pid: int | None, settings: Settings) -> None:
    runs = _runs(len(pending.runs))
    if pending.permanent:
        log.warning("autolog: %s not delivered to %s: %s\nThey stay in the local journal: "
                    "once this is fixed, run `autolog sync`.", runs, pending.name, pending.cause)
        return
    who = f"a delivery process (pid {pid})" if pid else "the delivery process already running"
    level = logging.WARNING if pending.cause else logging.INFO
    cause = f" ({pending.cause})" if pending.cause else ""
    log.log(level, "autolog: %s has not received %s yet%s; %s goes on in the background for up "
            "to %gs (AUTOLOG_DETACH_TIMEOUT). `autolog sync --status` shows where it stands.",
            pending.name, runs, cause, who, settings.detach_timeout)


def _wait(settings: Settings, why: str | None) -> None:
    """Deliver for at most AUTOLOG_EXIT_TIMEOUT, then say what is left, why, what to run."""
    writer, deliveries = runtime.writer, runtime.deliveries
    timeout = settings.exit_timeout
    if writer is not None:
        writer.write_all()
    left: list[Pending] = []
    if deliveries is not None:
        deliveries.wait(time.monotonic() + timeout)
        left = deliveries.pending()
        deliveries.stop()
    if writer is not None:
        writer.stop()
    for pending in left:
        cause = pending.cause or (f"it was still delivering when AUTOLOG_EXIT_TIMEOUT={timeout:g}s "
                                  "ran out")
        where = f" (the exit waited: {why})" if why else ""
        log.warning("autolog: %d journal line(s) of %s were not delivered to %s before exit%s: "
                    "%s.\nNothing is lost: they stay in the local journal; run `autolog sync` to "
                    "deliver them.", pending.lines(), _runs(len(pending.runs)), pending.name,
                    where, cause.rstrip("."))


def _runs(n: int) -> str:
    return f"{n} run{'s' if n != 1 else ''}"


def _on_sigterm(signum: int, frame: Any) -> None:
    """End the runs KILLED, flush (bounded), then die of SIGTERM as if we were not here.

    A handler runs on the main thread between two bytecodes of whatever it was doing, which may
    hold one of autolog's locks. If it was writing a journal, termination waits until that
    write is done (the events it drained would be lost otherwise); in every other case the work
    is done on a fresh thread joined with a timeout, so a lock held by the interrupted code can
    delay the exit, never block it.
    """
    writer = runtime.writer
    if writer is not None and writer.defer_if_writing(_terminate):
        return
    _terminate()


def _terminate() -> None:
    import signal

    settings = current()
    timeout = min(settings.exit_timeout, 5.0)

    def end_and_flush() -> None:
        _end_all("KILLED")
        why_wait = must_wait(settings.exit_mode)
        if why_wait is not None or not _detach(settings):
            shutdown(timeout)

    worker = start_thread(end_and_flush, "autolog-sigterm")
    worker.join(timeout + 1.0)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
