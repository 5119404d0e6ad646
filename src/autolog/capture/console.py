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

The journal writer thread drains each run's deque (:meth:`ConsoleLog.write`, a ``RunWriter``
sidecar): it splits lines, collapses carriage returns, timestamps and appends them to
``artifacts/console.log``, and trims the file to the last lines allowed. The run's end writes
the rest and records the file as an artifact with two tags: ``autolog.console.lines`` and
``autolog.console.dropped_lines``.
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._runtime import runtime
from ..journal.files import ARTIFACTS
from ..report import internal_error

if TYPE_CHECKING:
    from ..run import Run
    from .relay import Relay

__all__ = ["CONSOLE_LOG", "Console", "ConsoleLog", "attach", "capture_descriptors", "console"]

log = logging.getLogger("autolog")

CONSOLE_LOG = "console.log"
BACKLOG = 10_000  # chunks written while no run is active, handed to the next run
MAX_LINE = 64 * 1024  # characters of one line kept (a longer one is cut, and says so)
Chunk = tuple[float, str, "str | bytes"]  # time, stream ("stdout" / "stderr"), what was written


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
                    self._undo.append(_twin(stream, name, self) or _tee(stream, name, self))

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


class _TeeBuffer:
    """The binary layer under a captured stream's twin text layer: each block of bytes goes to
    the console's sink, then to the stream's own buffer (its ``flush`` is that buffer's)."""

    closed = False  # read by the text layer at every write: a plain attribute, not a property

    def __init__(self, buffer: Any, name: str, console: Console):
        self._write = buffer.write
        self.flush = buffer.flush
        self._name = name
        self._console = console

    def write(self, data: bytes) -> int:
        self._console.sink((time.time(), self._name, data))
        return int(self._write(data))

    def readable(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        pass  # the stream's own buffer stays open: it is the stream's, not ours


def _twin(stream: Any, name: str, console: Console) -> Callable[[], None] | None:
    """Route ``stream``'s writes through a twin text layer over a :class:`_TeeBuffer`; the
    function that undoes it, or None for a stream with no binary buffer under it."""
    import io

    buffer = getattr(stream, "buffer", None)
    if not isinstance(stream, io.TextIOWrapper) or buffer is None or "write" in vars(stream):
        return None
    stream.flush()
    tee: Any = _TeeBuffer(buffer, name, console)
    twin = io.TextIOWrapper(tee, encoding=stream.encoding, errors=stream.errors,
                            line_buffering=stream.line_buffering,
                            write_through=stream.write_through)
    console.encodings[name] = stream.encoding
    setattr(stream, "write", twin.write)  # noqa: B010 - on the object, not its class
    setattr(stream, "flush", twin.flush)  # noqa: B010

    def undo() -> None:
        if vars(stream).get("write") == twin.write:
            del stream.write, stream.flush
        with contextlib.suppress(OSError, ValueError):  # the stream may be closed by now
            twin.flush()
            twin.detach()

    return undo


def _tee(stream: Any, name: str, console: Console) -> Callable[[], None]:
    """Wrap ``stream.write`` on the object; the function that puts the original back."""
    original = stream.write
    now = time.time

    def write(text: str) -> int:
        written = original(text)
        console.sink((now(), name, text))
        return written

    try:
        stream.write = write
    except (AttributeError, TypeError):  # a stream object that takes no attributes
        return lambda: None

    def undo() -> None:
        if stream.__dict__.get("write") is write:
            del stream.write

    return undo


def console() -> Console:
    """The process's :class:`Console`, created on first use."""
    with runtime.lock:
        if runtime.console is None:
            runtime.console = Console()
        return runtime.console


def capture_descriptors() -> None:
    """Capture at the file-descriptor level from now on (``autolog run`` calls it at start)."""
    console().install_descriptors()


# -- one run's console.log ---------------------------------------------------------------------


class ConsoleLog:
    """One run's ``console.log``: chunks in, timestamped lines out (on the writer thread)."""

    def __init__(self, path: Path, max_lines: int):
        self.path = path
        self.max_lines = max_lines
        self.chunks: deque[Chunk] = deque()
        self.lines = 0  # lines in the file
        self.dropped = 0  # lines trimmed away
        self._pending: dict[str, tuple[float, str]] = {}  # stream -> (last time, unfinished)
        self.encodings: dict[str, str] = {}
        self._decoders: dict[str, Callable[[bytes], str]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def write(self) -> None:
        """Drain the chunks into the file (the journal writer calls it at every flush; it never
        raises: a console that cannot be written must not hold up the journal)."""
        with self._lock:
            if self._closed:
                return
            chunks = self.chunks
            if not chunks:
                return
            lines = self._lines([chunks.popleft() for _ in range(len(chunks))])
            try:
                self._append(lines)
            except OSError as exc:
                self._closed = True
                log.warning("autolog: console.log of %s cannot be written (%s); the console is "
                            "no longer captured for this run", self.path.parent.parent.name, exc)

    def finish(self) -> tuple[int, int]:
        """Write what is left, unfinished lines included; ``(lines kept, lines dropped)``."""
        with self._lock:
            if self._closed:
                return self.lines, self.dropped
            chunks = self.chunks
            lines = self._lines([chunks.popleft() for _ in range(len(chunks))])
            lines += [_line(stamp, stream, _visible(text))
                      for stream, (stamp, text) in self._pending.items() if _visible(text)]
            self._pending = {}
            self._append(lines)
            if self.lines > self.max_lines:
                self._trim(self.max_lines)
            self._closed = True
            return self.lines, self.dropped

    def _lines(self, chunks: list[Chunk]) -> list[str]:
        out: list[str] = []
        pending = self._pending
        for stamp, stream, data in chunks:
            text = data if isinstance(data, str) else self._decode(stream, data)
            parts = (pending.get(stream, (stamp, ""))[1] + text).split("\n")
            for part in parts[:-1]:
                out.append(_line(stamp, stream, _visible(part)))
            tail = _collapse(parts[-1])
            if len(tail) > MAX_LINE:  # a stream that never ends its line: cut it here
                out.append(_line(stamp, stream, _visible(tail)))
                tail = ""
            pending[stream] = (stamp, tail)
        return out

    def _decode(self, stream: str, data: bytes) -> str:
        decode = self._decoders.get(stream)
        if decode is None:
            encoding = self.encodings.get(stream) or "utf-8"
            try:
                decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
            except LookupError:
                decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            decode = self._decoders[stream] = decoder.decode
        return decode(data)

    def _append(self, lines: list[str]) -> None:
        if not lines:
            return
        with open(self.path, "a", encoding="utf-8", errors="backslashreplace") as f:
            f.write("".join(lines))
        self.lines += len(lines)
        if self.lines > self.max_lines + max(self.max_lines // 2, 1):
            self._trim(self.max_lines)

    def _trim(self, keep: int) -> None:
        """Keep the last ``keep`` lines (rewritten atomically)."""
        with open(self.path, encoding="utf-8", errors="replace") as f:
            last = deque(f, maxlen=keep)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text("".join(last), encoding="utf-8", errors="backslashreplace")
        os.replace(tmp, self.path)
        self.dropped += self.lines - len(last)
        self.lines = len(last)


def _collapse(text: str) -> str:
    """An unfinished line after carriage returns: what is left after the last one (kept, so the
    next chunk overwrites it), without holding every intermediate progress-bar state."""
    if "\r" not in text:
        return text
    visible = _visible(text)
    return visible + "\r" if text.endswith("\r") else visible


def _visible(text: str) -> str:
    """What a terminal shows of a line: the last non-empty part between carriage returns."""
    if "\r" in text:
        parts = [p for p in text.split("\r") if p]
        text = parts[-1] if parts else ""
    if len(text) > MAX_LINE:
        text = f"{text[:MAX_LINE]}... [{len(text) - MAX_LINE} more characters]"
    return text


def _line(stamp: float, stream: str, text: str) -> str:
    seconds = time.gmtime(stamp)
    when = time.strftime("%Y-%m-%dT%H:%M:%S", seconds) + f".{int(stamp % 1 * 1000):03d}Z"
    return f"{when} {text}\n" if stream == "stdout" else f"{when} [{stream}] {text}\n"


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
