"""The process's autolog state, in one object: what ``enable()`` set up and what is running.

Every piece of state that outlives a call lives here, not in module globals: the settings in
force, whether autolog is enabled, the patcher and what it patched, the post-import callbacks,
the plugin manager, the journal writer and the delivery workers, the open runs and each
thread's active-run stack, the training-call depth, and the places that already warned. The
modules that use a piece of state create it and keep it here; :meth:`Runtime.reset` (what
``autolog.testing.reset()`` calls) puts the process back as if autolog had just been imported.

This module is the bottom of the layering: it imports nothing from autolog at run time, and
undoes what it holds through the objects' own methods.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .capture.console import Console
    from .config import Settings
    from .delivery.worker import Deliveries
    from .journal.writer import JournalWriter
    from .patching import Patcher
    from .plugins import Plugins
    from .run import Run
    from .system import Monitor

__all__ = ["Runtime", "TrainingDepth", "random_hex", "runtime", "start_thread"]

#: signals whose Python handlers must run: autolog's threads leave them to the main thread
_MAIN_THREAD_SIGNALS = {signal.SIGINT, getattr(signal, "SIGTERM", signal.SIGINT)}


def start_thread(target: Callable[..., Any], name: str, *args: Any) -> threading.Thread:
    """Start a daemon thread for autolog's own work, with SIGINT and SIGTERM blocked in it.

    Python runs signal handlers on the main thread only. A process-directed signal that the
    kernel hands to another thread while the main thread waits (on a lock, a queue) only sets a
    flag, so the handler never runs: a ``multiprocessing`` worker blocked on its task queue then
    ignored ``Pool.terminate()``'s SIGTERM for ever. Blocked in autolog's threads (and in the
    threads they start: SDKs), these signals go to the main thread. The mask is set around
    ``start()``, so the new thread has it from its first instruction.
    """
    thread = threading.Thread(target=target, args=args, name=name, daemon=True)
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - Windows
        thread.start()
        return thread
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _MAIN_THREAD_SIGNALS)
    try:
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    return thread


def random_hex(nbytes: int) -> str:
    """``nbytes`` random bytes in hex, for run ids, names and file tokens.

    Drawn from a generator the system seeds once per process (again in a forked child: the pid
    says which process drew last), not from ``os.urandom``: its ``getrandom`` call lets go of
    the GIL, and while one of autolog's threads computes, the training thread then waits up to
    the 5 ms switch interval to get it back, four times per run. The generator is autolog's
    own, so a script's ``random.seed(0)`` does not make two runs' ids the same.
    """
    pid = os.getpid()
    ids = runtime.ids
    if ids is None or runtime.ids_pid != pid:
        import random

        ids = runtime.ids = random.Random()
        runtime.ids_pid = pid
    return f"{ids.getrandbits(nbytes * 8):0{nbytes * 2}x}"


class TrainingDepth:
    """How many autologged training calls are in progress: in this process (all threads: the
    inner fits of a search come from joblib threads too) and in the calling thread."""

    def __init__(self) -> None:
        self.depth = 0
        self._lock = threading.Lock()
        self._local = threading.local()

    @property
    def active(self) -> bool:
        return self.depth > 0

    def nested(self, own_run: bool) -> bool:
        """Is a training call starting now inside another one? Yes in a thread already in one;
        in another thread, yes unless that thread has an active run of its own (a search's
        joblib worker has none; a user's thread that started or activated a run trains on its
        own, since the active run is per thread)."""
        if getattr(self._local, "depth", 0):
            return True
        return self.depth > 0 and not own_run

    def __enter__(self) -> TrainingDepth:
        with self._lock:
            self.depth += 1
        self._local.depth = getattr(self._local, "depth", 0) + 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._local.depth -= 1
        with self._lock:
            self.depth -= 1


class Runtime:
    """What autolog holds in this process. One instance: :data:`runtime`."""

    def __init__(self) -> None:
        #: guards the fields below where two threads could set them up at once
        self.lock = threading.RLock()
        self.settings: Settings | None = None
        self.enabled = False
        self.patcher: Patcher | None = None
        self.patched_modules: set[str] = set()
        #: module name -> callbacks run when it is imported (see ``patching.on_import``)
        self.import_callbacks: dict[str, list[Any]] = {}
        self.plugins: Plugins | None = None
        self.writer: JournalWriter | None = None
        self.deliveries: Deliveries | None = None
        #: the hardware monitor (``system.Monitor``), once a run sampled or ``enable()`` warmed it
        self.monitor: Monitor | None = None
        #: runs started (or attached) and not ended, in this process, all threads, oldest first
        self.runs: list[Run] = []
        self.runs_lock = threading.RLock()
        #: ``stack``: this thread's active runs, innermost last (the active run is per thread)
        self.local = threading.local()
        self.training = TrainingDepth()
        self.warned: set[str] = set()
        self.warned_lock = threading.Lock()
        self.run_name_used = False
        self.exit_hooks_installed = False
        #: the console capture (stdout/stderr into the runs' console.log), once installed
        self.console: Console | None = None
        #: the entry point's command line and config captured as params (``args.*``, ``config.*``)
        self.cli_params: dict[str, Any] = {}
        #: ``random_hex``'s generator (a ``random.Random``) and the process that seeded it
        self.ids: Any = None
        self.ids_pid = 0

    def active_run(self) -> Run | None:
        """The innermost active run of the calling thread."""
        stack = self.stack()
        try:
            return stack[-1]
        except IndexError:
            return None

    def stack(self) -> list[Run]:
        """The calling thread's active-run stack (a run's end removes it from every stack)."""
        try:
            stack: list[Run] = self.local.stack
        except AttributeError:
            stack = self.local.stack = []
        return stack

    def reset(self) -> None:
        """End every run, revert every patch, stop the writer and the delivery workers, and
        forget settings, plugins and warnings (between tests; a fresh start)."""
        for run in reversed(list(self.runs)):
            run.end("FINISHED")
        with self.lock:
            self.enabled = False
            self.import_callbacks.clear()
            if self.patcher is not None:
                self.patcher.revert()
            self.patched_modules.clear()
            writer, deliveries = self.writer, self.deliveries
            self.writer = self.deliveries = None
        if writer is not None:
            writer.write_all()
        if deliveries is not None:
            deliveries.shutdown(5.0)
        if writer is not None:
            writer.stop()
        with self.lock:
            console, self.console = self.console, None
            monitor, self.monitor = self.monitor, None
        if console is not None:
            console.uninstall()
        if monitor is not None:
            monitor.close()
        with self.lock:
            self.settings = None
            self.plugins = None
            self.cli_params = {}
            self.run_name_used = False
            self.training = TrainingDepth()
        with self.warned_lock:
            self.warned.clear()
        self.local = threading.local()


runtime = Runtime()
