"""Reading runs back from the local store: the journal, a run's summary, the list of runs.

A reader tolerates what a killed writer leaves: a torn last line is not read (and never loses
the lines before it), a line that is not JSON is skipped. A run whose ``run.lock`` is free and
whose journal has no end event reads back CRASHED. Before reading a journal, a reader takes over
the tails of processes that are gone (:func:`~.tail.recover`), so the points a killed process
had logged but not yet journaled are read too.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from .codec import decode_line, float_from_json
from .files import ARTIFACTS, JOURNAL, LOCK, META, is_locked, read_json
from .tail import recover

__all__ = ["MediaRecord", "RunHeader", "RunRecord", "find_run", "iter_journal", "list_runs",
           "load_run", "lock_is_held", "read_meta", "start_record"]


def read_meta(run_dir: Path) -> dict[str, Any] | None:
    return read_json(run_dir / META) or None


def lock_is_held(run_dir: Path, meta: dict[str, Any] | None) -> bool:
    """Is a live process still running this run?"""
    held = is_locked(run_dir / LOCK)
    return _pid_alive(meta) if held is None else held


def _pid_alive(meta: dict[str, Any] | None) -> bool:  # pragma: no cover - Windows
    import socket

    if not meta or meta.get("host") != socket.gethostname():
        return True
    import psutil

    return psutil.pid_exists(int(meta.get("pid", -1)))


# --- reading ----------------------------------------------------------------------------------


def iter_journal(path: Path, offset: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(end_offset, record)`` for each complete line from ``offset``.

    A last line without its newline (a write in progress, or torn by a kill) is not yielded; a
    line that is not valid JSON is skipped and the lines after it are read, and a torn line
    continued by a later append yields the whole records it holds (:func:`~.codec.decode_line`;
    all but the last of a line carry the line's start offset, so a cursor saved between them
    goes back to the line).
    """
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except FileNotFoundError:
        return
    with f:
        f.seek(offset)
        pos = offset
        for line in f:
            if not line.endswith(b"\n"):
                return
            start, pos = pos, pos + len(line)
            if line.isspace():
                continue
            records = decode_line(line)
            for i, record in enumerate(records, 1):
                yield (pos if i == len(records) else start), record


def start_record(run_dir: Path, from_meta: bool = False) -> dict[str, Any] | None:
    """The run's start event: the first line of its journal.

    With ``from_meta``, a run whose first flush is still to come (a parent delivered after its
    child ended) is described from its ``meta.json``, which is written when the run is created.
    """
    for _, record in iter_journal(run_dir / JOURNAL):
        return record if record.get("t") == "start" else None
    meta = read_meta(run_dir) if from_meta else None
    if not meta or not meta.get("id"):
        return None
    return {"t": "start", "id": meta["id"], "name": meta.get("name"),
            "project": meta.get("project"), "parent": meta.get("parent"),
            "time": meta.get("start_time", 0)}


class MediaRecord(NamedTuple):
    """One media item of a run (a ``media`` event): an image, a histogram, a table, a text or
    an evaluation plot. ``path`` (and ``image``, a plot's drawing) name files under the run's
    ``artifacts/``."""

    kind: str
    key: str
    step: int
    timestamp: int
    path: str
    meta: dict[str, Any]
    image: str | None = None

    @classmethod
    def from_event(cls, record: dict[str, Any]) -> MediaRecord:
        return cls(record["kind"], record["key"], int(record["step"]), int(record["time"]),
                   record["path"], record.get("meta") or {}, record.get("image"))


class RunHeader:
    """Who a run is, from its ``meta.json`` or its start event: id, name, project, parent, start
    time, and its directory. What :class:`RunRecord` (reading) and a backend's ``RunRef``
    (delivery) share."""

    def __init__(self, path: Path, record: dict[str, Any]):
        self.path = path
        self.id: str = record["id"]
        self.name: str = record.get("name", "")
        self.project: str = record.get("project", "default")
        self.parent_id: str | None = record.get("parent")
        self.start_time: int = record.get("start_time", record.get("time", 0))

    @property
    def artifacts_dir(self) -> Path:
        return self.path / ARTIFACTS


class RunRecord(RunHeader):
    """A run read back from the local store. Journal-derived fields load on first use."""

    def __init__(self, path: Path, meta: dict[str, Any]):
        super().__init__(path, meta)
        self.end_time: int | None = meta.get("end_time")
        self._status: str | None = meta.get("status")
        self._meta = meta
        self._loaded = False
        self._params: dict[str, Any] = {}
        self._tags: dict[str, str] = {}
        self._history: dict[str, list[tuple[int, float, int]]] = {}
        self._artifacts: dict[str, None] = {}  # in first-logged order, each name once
        self._models: dict[str, dict[str, Any]] = {}
        self._note: str | None = None
        self._deleted = False
        self._media: list[MediaRecord] = []

    def __repr__(self) -> str:
        return f"<RunRecord {self.id} {self.name!r} {self.status}>"

    @property
    def name(self) -> str:
        """The run's name, renamed or not (a ``rename`` edit in the journal wins)."""
        self._load()
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._name = value

    @property
    def note(self) -> str | None:
        """The free-text note edited in the UI, if any."""
        self._load()
        return self._note

    @property
    def deleted(self) -> bool:
        """Soft-deleted in the UI (restorable); the run's files are all still there."""
        self._load()
        return self._deleted

    @property
    def status(self) -> str:
        if self._status in (None, "RUNNING"):
            return "RUNNING" if lock_is_held(self.path, self._meta) else "CRASHED"
        return self._status

    @property
    def params(self) -> dict[str, Any]:
        self._load()
        return self._params

    @property
    def tags(self) -> dict[str, str]:
        self._load()
        return self._tags

    @property
    def metrics(self) -> dict[str, float]:
        """Each metric's last logged value."""
        self._load()
        return {key: points[-1][1] for key, points in self._history.items()}

    def history(self, key: str) -> list[tuple[int, float, int]]:
        """``(step, value, timestamp_ms)`` of ``key``, in logging order."""
        self._load()
        return list(self._history.get(key, ()))

    @property
    def metric_keys(self) -> list[str]:
        self._load()
        return list(self._history)

    @property
    def artifacts(self) -> list[str]:
        """Logged artifacts, as paths relative to the run's ``artifacts/`` directory."""
        self._load()
        return list(self._artifacts)

    @property
    def models(self) -> dict[str, dict[str, Any]]:
        """Logged models: name -> spec (flavor, format, framework version, path)."""
        self._load()
        return dict(self._models)

    @property
    def media(self) -> list[MediaRecord]:
        """Logged media in logging order (``log_image``, ``log_histogram``, evaluation plots...)."""
        self._load()
        return list(self._media)

    def media_for(self, key: str, kind: str | None = None) -> list[MediaRecord]:
        """The media logged under ``key`` (of one ``kind``), in logging order."""
        return [m for m in self.media if m.key == key and (kind is None or m.kind == kind)]

    def artifact_path(self, name: str) -> Path:
        return self.artifacts_dir / name

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        try:
            recover(self.path)
        except OSError:  # a read-only store: what the journal holds is read
            pass
        for _, record in iter_journal(self.path / JOURNAL):
            try:
                self._apply(record)
            except (KeyError, TypeError, ValueError, AttributeError):
                pass  # valid JSON of the wrong shape: skipped like a line that does not parse

    def _add_artifacts(self, names: Iterable[str]) -> None:
        self._artifacts.update(dict.fromkeys(names))

    def _apply(self, record: dict[str, Any]) -> None:
        kind = record.get("t")
        if kind == "metrics":
            for key, (steps, values, stamps) in record["d"].items():
                points = self._history.setdefault(key, [])
                points.extend(zip(steps, map(float_from_json, values), stamps, strict=False))
        elif kind == "params":
            self._params.update(record["d"])
        elif kind == "tags":
            self._tags.update(record["d"])
        elif kind == "artifact":
            self._add_artifacts(record.get("files") or [record["path"]])
        elif kind == "model":
            spec = record["spec"]
            self._models[record["name"]] = spec
            self._add_artifacts(f"{spec['path']}/{name}" for name in spec.get("files", ()))
        elif kind == "media":
            self._media.append(MediaRecord.from_event(record))
        elif kind == "end":
            self._status = record["status"]
            self.end_time = record["time"]
        elif kind == "resume":  # reopened after its end: running until its next end
            self._status = None
            self.end_time = None
        elif kind == "start":
            self._name = record.get("name", self._name)
        elif kind == "rename":
            self._name = str(record.get("name", self._name))
        elif kind == "untag":
            for key in record.get("keys") or ():
                self._tags.pop(key, None)
        elif kind == "note":
            self._note = record.get("text") or None
        elif kind in ("delete", "restore"):
            self._deleted = kind == "delete"


def load_run(run_dir: Path) -> RunRecord:
    meta = read_meta(run_dir) or _meta_from_journal(run_dir)
    if meta is None:
        raise LookupError(f"{run_dir} is not an autolog run (no meta.json, no start event)")
    record = RunRecord(run_dir, meta)
    return record


def _meta_from_journal(run_dir: Path) -> dict[str, Any] | None:
    start = start_record(run_dir)
    return None if start is None else {**start, "start_time": start.get("time", 0)}


def list_runs(root: Path, project: str | None = None) -> list[RunRecord]:
    """Every run under ``root``, newest first."""
    runs = []
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return []
    for entry in entries:
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        try:
            run = load_run(Path(entry.path))
        except LookupError:
            continue
        if project is None or run.project == project:
            runs.append(run)
    runs.sort(key=lambda r: (r.start_time, r.id), reverse=True)
    return runs


def find_run(root: Path, id_or_prefix: str) -> Path:
    """The run directory for a full id or a unique id prefix."""
    if not id_or_prefix or not all(c in "0123456789abcdef" for c in id_or_prefix.lower()):
        raise LookupError(f"{id_or_prefix!r} is not a run id (32 hex characters, or a prefix)")
    exact = root / id_or_prefix.lower()
    if (exact / JOURNAL).exists() or (exact / META).exists():
        return exact
    try:
        matches = [e.path for e in os.scandir(root) if e.name.startswith(id_or_prefix.lower())]
    except FileNotFoundError:
        matches = []
    if not matches:
        raise LookupError(f"no run {id_or_prefix!r} in {root}")
    if len(matches) > 1:
        raise LookupError(f"{id_or_prefix!r} matches {len(matches)} runs in {root}; "
                          "give more of the id")
    return Path(matches[0])
