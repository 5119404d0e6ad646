"""A media item on its way to the journal: prepared on the caller's thread, written on the
writer's.

``Run.log_image`` & co. validate and copy what they are given (:class:`Prepared`) and append a
:class:`MediaEvent` to the run's buffer. The journal writer resolves the event on its own
thread: :meth:`MediaEvent.resolve` writes the file(s) under ``artifacts/media/`` (PNG encoding,
histogram binning and table conversion happen there) and returns the journal record, which is
written after the files exist.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["KINDS", "MEDIA_DIR", "ArtifactEvent", "MediaError", "MediaEvent", "Prepared", "Writer",
           "key_dir"]

log = logging.getLogger("autolog")

MEDIA_DIR = "media"
KINDS = ("image", "histogram", "table", "text", "plot")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.=+-]+")
MAX_SEGMENT = 100

#: ``write(stem)`` writes the item's files as ``stem.<ext>``; it returns the files written
#: (``{"path": file}``, plus ``"image"`` for a plot's drawing) and the record's ``meta``
Writer = Callable[[Path], tuple[dict[str, Path], dict[str, Any]]]


class MediaError(ValueError):
    """What was given cannot be logged as this kind of media (the message says why)."""


class Prepared:
    """What the caller's thread made of a media value: the writer, the bytes it holds (a big
    one wakes the journal writer early), and a note to warn about while it is still logged."""

    __slots__ = ("nbytes", "note", "suffix", "write")

    def __init__(self, write: Writer, suffix: str, nbytes: int = 0, note: str | None = None):
        self.write = write
        self.suffix = suffix  # of the main file, which names the item
        self.nbytes = nbytes
        self.note = note


def key_dir(key: str) -> str:
    """The directory a key's files go in: each ``/``-separated part made file-system safe."""
    parts = [_UNSAFE.sub("_", part)[:MAX_SEGMENT] for part in key.split("/") if part]
    return "/".join("_" if part in (".", "..") else part for part in parts) or "_"


class MediaEvent:
    """One media item in a run's buffer; the journal writer calls :meth:`resolve`."""

    __slots__ = ("artifacts", "key", "kind", "prepared", "step", "time")

    def __init__(self, artifacts: Path, kind: str, key: str, step: int, time: int,
                 prepared: Prepared):
        self.artifacts = artifacts
        self.kind = kind
        self.key = key
        self.step = step
        self.time = time
        self.prepared = prepared

    def resolve(self) -> dict[str, Any] | None:
        """Write the files; the journal record, or None when writing failed (logged)."""
        try:
            stem = self._stem()
            files, meta = self.prepared.write(stem)
        except Exception as exc:  # a full disk, an encoder failure: the rest of the run goes on
            log.warning("autolog: %s %r (step %d) could not be written and was skipped: %s: %s",
                        self.kind, self.key, self.step, type(exc).__name__, exc)
            return None
        record: dict[str, Any] = {"t": "media", "kind": self.kind, "key": self.key,
                                  "step": self.step, "time": self.time}
        for name, path in files.items():
            record[name] = path.relative_to(self.artifacts).as_posix()
        record["meta"] = meta
        return record

    def _stem(self) -> Path:
        """``artifacts/media/<kind>/<key>/<step>``, with ``-<n>`` when a step is logged again.
        The main file's name is reserved by creating it exclusively, so two processes logging
        into one run never share a name."""
        folder = self.artifacts / MEDIA_DIR / self.kind / key_dir(self.key)
        folder.mkdir(parents=True, exist_ok=True)
        suffix = self.prepared.suffix
        for n in range(10_000):
            name = str(self.step) if n == 0 else f"{self.step}-{n}"
            try:
                os.close(os.open(folder / f"{name}{suffix}", os.O_CREAT | os.O_EXCL, 0o644))
            except FileExistsError:
                continue
            return folder / name
        raise OSError(f"no free file name for step {self.step} in {folder}")


class ArtifactEvent:
    """An artifact file drawn on the journal writer's thread, queued with the media:
    ``produce()`` returns its bytes there (an integration's chart: raster work that would
    otherwise hold the interpreter on the training thread). :meth:`resolve` writes the file and
    returns the artifact record ``Run.record_artifact`` writes."""

    __slots__ = ("name", "produce", "target")

    def __init__(self, target: Path, name: str, produce: Callable[[], bytes]):
        self.target = target
        self.name = name
        self.produce = produce

    def resolve(self) -> dict[str, Any] | None:
        """Write the file; the journal record, or None when that failed (logged)."""
        try:
            content = self.produce()
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self.target.write_bytes(content)
        except Exception as exc:  # a full disk, a drawing failure: the rest of the run goes on
            log.warning("autolog: the artifact %r could not be written and was skipped: %s: %s",
                        self.name, type(exc).__name__, exc)
            return None
        return {"t": "artifact", "path": self.name, "files": [self.name]}
