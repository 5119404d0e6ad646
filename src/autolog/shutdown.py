"""Flushing, and ending well: exit, SIGTERM.

- :func:`flush`: every buffer to the journal, then wait (bounded) for the delivery workers;
- at exit (``atexit``): active runs end (FINISHED, or FAILED/KILLED when the interpreter exits on
  an uncaught exception / KeyboardInterrupt), the journals are written, the backends get at most
  ``AUTOLOG_EXIT_TIMEOUT`` seconds, and what is left is reported for ``autolog sync``;
- SIGTERM, when no handler was installed: runs end KILLED, the bounded flush runs, then the
  default disposition is restored and the signal re-raised, so the process still dies of it.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import threading
import time
import weakref
from typing import Any

from ._runtime import runtime, start_thread
from .config import current
from .report import internal_error
from .run import status_for

__all__ = ["exit_hook_first", "flush", "install_exit_hooks", "shutdown"]

log = logging.getLogger("autolog")


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
    _end_all(status_for(exc))
    if runtime.writer is None:
        return
    timeout = current().exit_timeout
    for name, lines in shutdown(timeout).items():
        log.warning("autolog: %d journal line(s) were not delivered to %s before exit "
                    "(AUTOLOG_EXIT_TIMEOUT=%gs); run `autolog sync` to deliver them.",
                    lines, name, timeout)


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

    timeout = min(current().exit_timeout, 5.0)

    def end_and_flush() -> None:
        _end_all("KILLED")
        shutdown(timeout)

    worker = start_thread(end_and_flush, "autolog-sigterm")
    worker.join(timeout + 1.0)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
