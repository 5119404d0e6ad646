"""Capturing what goes through Python's ``sys.stdout`` and ``sys.stderr`` objects, on the objects
themselves (so handlers holding them are covered too).

:func:`twin` gives a stream's ``write`` and ``flush`` to a twin text layer, with the stream's
encoding and buffering, over a tee (:class:`_TeeBuffer`): the terminal gets the same bytes at the
same points, and the caller's thread pays one small call each time the text layer hands bytes
down (a line on a terminal, a block on a pipe; every write when unbuffered). :func:`tee` wraps
``write`` itself, for streams with no binary buffer under them (a ``StringIO``, a notebook's).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["Sink", "tee", "twin"]


class Sink(Protocol):
    """Where captured text goes (the console capture): ``sink((time, stream, data))``."""

    sink: Callable[[tuple[float, str, Any]], None]
    encodings: dict[str, str]


class _TeeBuffer:
    """The binary layer under a captured stream's twin text layer: each block of bytes goes to
    the console's sink, then to the stream's own buffer (its ``flush`` is that buffer's)."""

    closed = False  # read by the text layer at every write: a plain attribute, not a property

    def __init__(self, buffer: Any, name: str, console: Sink):
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


def twin(stream: Any, name: str, console: Sink) -> Callable[[], None] | None:
    """Route ``stream``'s writes through a twin text layer over a :class:`_TeeBuffer`; the
    function that undoes it, or None for a stream with no binary buffer under it."""
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
        try:
            twin.flush()
            twin.detach()
        except (OSError, ValueError):  # the stream is closed by now: the twin must not flush it
            tee.closed = True  # again when it is collected (an "Exception ignored" on 3.13)

    return undo


def tee(stream: Any, name: str, console: Sink) -> Callable[[], None]:
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
