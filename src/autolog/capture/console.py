"""Console capture: what the process writes to stdout and stderr, copied into each active run as
``console.log`` (one timestamped line per line, progress bars collapsed to their last state,
the last ``AUTOLOG_CONSOLE_MAX_LINES`` lines kept).

Two ways in, one way out:

- Python level (the default): ``sys.stdout`` and ``sys.stderr`` keep their identity (handlers
  that hold them, like ``logging``'s, are covered too), but their ``write`` and ``flush`` become
  those of a twin text layer, with the same encoding and buffering, over a tee: when the text
  layer hands its bytes down (at each line on a terminal, by blocks on a pipe) the tee appends
  ``(time, stream, bytes)`` to a deque and passes them to the stream's own buffer. So the
  terminal receives the same bytes at the same points, the caller's thread pays one small
  Python call a line (not one per ``write``: ``print(a, b, c)`` writes six times), and decoding
  happens on the writer thread. A stream without a binary buffer under it (a ``StringIO``, a
  notebook's) gets its ``write`` wrapped instead;
- file descriptors (under ``autolog run``, :func:`capture_descriptors`): fd 1 and 2 are pointed
  at a pseudo-terminal (when they were a terminal, so programs still see one) or a pipe, and a
  relay thread copies every byte to the original descriptor before feeding it to the same deque:
  output of C extensions and of child processes is caught too.

The journal writer thread drains each run's deque (:class:`.console_log.ConsoleLog`, a
``RunWriter`` sidecar): it splits lines, collapses carriage returns, timestamps and appends them
to ``artifacts/console.log``, and trims the file to the last lines allowed. How the Python
streams are tapped is :mod:`.streams`; the descriptors, :mod:`.relay`. The run's end writes
the rest and records the file as an artifact with two tags: ``autolog.console.lines`` and
``autolog.console.dropped_lines``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from .._runtime import runtime
from ..journal.files import ARTIFACTS
from ..report import internal_error
from .console_log import Chunk, ConsoleLog
from .streams import tee, twin

if TYPE_CHECKING:
    from ..run import Run
    from .relay import Relay

__all__ = ["CONSOLE_LOG", "Console", "ConsoleLog", "attach", "capture_descriptors", "console"]

CONSOLE_LOG = "console.log"
BACKLOG = 10_000  # chunks written while no run is active, handed to the next run


class Console:
    """The process's console capture (one, in the runtime): where written text goes."""

    def __init__(self) -> None:
        self.backlog: deque[Chunk] = deque(maxlen=BACKLOG)
        #: what a write appends to: the one run's deque, a fan-out to several, or the backlog
        self.sink: Callable[[Chunk], None] = self.backlog.append
        self.logs: tuple[ConsoleLog, ...] = ()
        self.mode: str | None = None  # None, "python" or "descriptors"
        #: how the bytes of each stream are decoded (the stream's encoding)
        self.encodings: dict[str, str] = {}
        self._lock = threading.Lock()
        self._undo: list[Callable[[], None]] = []
        self.relays: list[Relay] = []

    # -- where text comes from ---------------------------------------------------------------

    def install_python(self) -> None:
        """Capture what goes through the current ``sys.stdout`` and ``sys.stderr`` objects."""
        with self._lock:
            if self.mode is not None:
                return
            self.mode = "python"
            for name in ("stdout", "stderr"):
                stream = getattr(sys, name)
                if stream is not None:
                    self._undo.append(twin(stream, name, self) or tee(stream, name, self))

    def install_descriptors(self) -> None:
        """Relay fd 1 and 2 through a pseudo-terminal or a pipe (``autolog run``)."""
        from .relay import relay_descriptors

        with self._lock:
            if self.mode is not None:
                return
            self.mode = "descriptors"
            self.relays = relay_descriptors(self.feed)

    def feed(self, stream: str, data: bytes) -> None:
        """Bytes read from a descriptor by a relay thread."""
        if data:
            self.sink((time.time(), stream, data))

    def uninstall(self) -> None:
        with self._lock:
            undo, self._undo = self._undo, []
            relays, self.relays = self.relays, []
            self.mode = None
        for action in reversed(undo):
            action()
        for relay in relays:
            relay.stop()

    def settle(self) -> None:
        """Wait (briefly) until what was written so far has been read by the relays."""
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name, None)
            try:
                if stream is not None:
                    stream.flush()
            except (OSError, ValueError):
                pass
        for relay in list(self.relays):
            relay.settle()

    # -- where text goes -----------------------------------------------------------------------

    def attach(self, log: ConsoleLog) -> None:
        """``log`` receives what is written from now on, and the backlog before it."""
        with self._lock:
            backlog = list(self.backlog)
            self.backlog.clear()
            log.chunks.extend(backlog)
            log.encodings = self.encodings
            self.logs = (*self.logs, log)
            self._route()

    def detach(self, log: ConsoleLog) -> None:
        with self._lock:
            self.logs = tuple(other for other in self.logs if other is not log)
            self._route()

    def _route(self) -> None:
        logs = self.logs
        if not logs:
            self.sink = self.backlog.append
        elif len(logs) == 1:
            self.sink = logs[0].chunks.append
        else:
            appends = tuple(log.chunks.append for log in logs)

            def fan_out(chunk: Chunk) -> None:
                for append in appends:
                    append(chunk)

            self.sink = fan_out

    def after_fork_in_child(self) -> None:
        """A forked child's writes are not its parent's runs' console."""
        self._lock = threading.Lock()
        self.logs = ()
        self.backlog = deque(maxlen=BACKLOG)
        self.sink = self.backlog.append


def console() -> Console:
    """The process's :class:`Console`, created on first use."""
    with runtime.lock:
        if runtime.console is None:
            runtime.console = Console()
        return runtime.console


def capture_descriptors() -> None:
    """Capture at the file-descriptor level from now on (``autolog run`` calls it at start)."""
    console().install_descriptors()


# -- runs ----------------------------------------------------------------------------------------


def attach(run: Run, max_lines: int) -> None:
    """Capture the console into ``run`` until it ends (the Python-level capture is installed
    the first time, unless ``autolog run`` captures the descriptors)."""
    if run.path is None or run._journal is None:
        return
    capture = console()
    capture.install_python()
    log = ConsoleLog(run.path / ARTIFACTS / CONSOLE_LOG, max_lines)
    run._journal.sidecars.append(log.write)
    capture.attach(log)
    run._on_end.append(lambda: _finish(run, capture, log))


def _finish(run: Run, capture: Console, log: ConsoleLog) -> None:
    capture.settle()
    capture.detach(log)
    try:
        lines, dropped = log.finish()
    except OSError as exc:
        internal_error("writing console.log", exc)
        return
    if lines or dropped:
        run.record_artifact(CONSOLE_LOG)
        run.set_tags({"autolog.console.lines": lines, "autolog.console.dropped_lines": dropped})


def _after_fork_in_child() -> None:
    if runtime.console is not None:
        runtime.console.after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
