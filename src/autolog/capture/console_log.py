"""One run's ``console.log``: captured chunks in, timestamped lines out, on the journal writer's
thread (a ``RunWriter`` sidecar).

Lines are split per stream, carriage returns collapsed (a progress bar redrawn a thousand times
is one line, in its last state), each line prefixed with its UTC time to the millisecond and
stderr's marked ``[stderr]``; the file is trimmed to its last ``max_lines`` lines, counting the
lines dropped.
"""

from __future__ import annotations

import codecs
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

__all__ = ["MAX_LINE", "Chunk", "ConsoleLog"]

log = logging.getLogger("autolog")

MAX_LINE = 64 * 1024  # characters of one line kept (a longer one is cut, and says so)
Chunk = tuple[float, str, "str | bytes"]  # time, stream ("stdout" / "stderr"), what was written


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
