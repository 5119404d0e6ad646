"""The process's autolog state, in one object: what ``enable()`` set up and what is running.

Every piece of state that outlives a call lives here, not in module globals: the settings in
force, whether autolog is enabled, the patcher and what it patched, the post-import callbacks,
the plugin manager, the journal writer and the delivery workers, the active-run stack, the
training-call depth, and the places that already warned. The modules that use a piece of state
create it and keep it here; :meth:`Runtime.reset` (what ``autolog.testing.reset()`` calls) puts
the process back as if autolog had just been imported.

This module is the bottom of the layering: it imports nothing from autolog at run time, and
undoes what it holds through the objects' own methods.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .capture.console import Console
    from .config import Settings
    from .delivery.worker import Deliveries
    from .journal.writer import JournalWriter
    from .patching import Patcher
    from .plugins import Plugins
    from .run import Run

__all__ = ["Runtime", "TrainingDepth", "runtime"]


class TrainingDepth:
    """How many autologged training calls are in progress in this process (all threads: the
    inner fits of a search come from joblib threads too)."""

    def __init__(self) -> None:
        self.depth = 0
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return self.depth > 0

    def __enter__(self) -> TrainingDepth:
        with self._lock:
            self.depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
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
        #: the ``FunctionWrapper`` subclass that marks autolog's patches (made with the first)
        self.patch_type: type | None = None
        self.plugins: Plugins | None = None
        self.writer: JournalWriter | None = None
        self.deliveries: Deliveries | None = None
        #: runs started (or attached) and not ended, innermost last
        self.runs: list[Run] = []
        self.runs_lock = threading.RLock()
        self.training = TrainingDepth()
        self.warned: set[str] = set()
        self.warned_lock = threading.Lock()
        self.run_name_used = False
        self.exit_hooks_installed = False
        #: the console capture (stdout/stderr into the runs' console.log), once installed
        self.console: Console | None = None
        #: the entry point's command line and config captured as params (``args.*``, ``config.*``)
        self.cli_params: dict[str, Any] = {}

    def active_run(self) -> Run | None:
        with self.runs_lock:
            return self.runs[-1] if self.runs else None

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
        if console is not None:
            console.uninstall()
        with self.lock:
            self.settings = None
            self.plugins = None
            self.cli_params = {}
            self.run_name_used = False
            self.training = TrainingDepth()
        with self.warned_lock:
            self.warned.clear()


runtime = Runtime()
