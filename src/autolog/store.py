"""The local run format: writing the journal, and reading runs back.

A run is a directory ``<AUTOLOG_DIR>/<run id>/`` holding (see ``docs/format.md``):

- ``events.jsonl``: the journal, one JSON object per line, appended only; the source of truth;
- ``meta.json``: a summary rewritten at start and end, so listing runs needs no journal scan;
- ``artifacts/``: files logged with the run (models under ``artifacts/<name>/``);
- ``run.lock``: held (``flock``) by the process that runs it; free with no end event = CRASHED;
- ``delivery/``: one cursor per remote backend (see :mod:`autolog.delivery`).

Non-finite floats are written as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` so every
line is strict JSON; metric values come back as floats.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

try:  # POSIX; elsewhere liveness falls back to the pid in meta.json
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "FORMAT_VERSION",
    "Journal",
    "RunLock",
    "RunRecord",
    "encode_events",
    "find_run",
    "iter_journal",
    "list_runs",
    "load_run",
]

FORMAT_VERSION = 1
JOURNAL = "events.jsonl"
META = "meta.json"
LOCK = "run.lock"
ARTIFACTS = "artifacts"
DELIVERY = "delivery"

_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode


# --- writing ----------------------------------------------------------------------------------


def _finite(value: Any) -> Any:
    """Replace non-finite floats, at any depth, by their string names."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def dumps_line(record: dict[str, Any]) -> str:
    try:
        return _dumps(record)
    except ValueError:  # a NaN or infinity somewhere: the rare path
        return _dumps(_finite(record))


def encode_events(events: Iterable[tuple[Any, ...]]) -> tuple[bytes, dict[str, float]]:
    """Turn buffered events into journal lines; also return each metric's last value.

    Metric events are 4-tuples ``(key, value, step, timestamp_ms)``; consecutive ones share one
    columnar ``metrics`` line. Other events are ``(kind, record)`` pairs written as ``record``.
    """
    lines: list[str] = []
    last: dict[str, float] = {}
    columns: dict[str, tuple[list[int], list[float], list[int]]] = {}
    for event in events:
        if len(event) == 4:
            key, value, step, ts = event
            col = columns.get(key)
            if col is None:
                col = columns[key] = ([], [], [])
            col[0].append(step)
            col[1].append(value)
            col[2].append(ts)
            continue
        if columns:
            lines.append(_metrics_line(columns, last))
            columns = {}
        lines.append(dumps_line(event[1]))
    if columns:
        lines.append(_metrics_line(columns, last))
    if not lines:
        return b"", last
    return ("\n".join(lines) + "\n").encode("utf-8"), last


def _metrics_line(columns: dict[str, Any], last: dict[str, float]) -> str:
    for key, col in columns.items():
        last[key] = col[1][-1]
    return dumps_line({"t": "metrics", "d": columns})


class Journal:
    """The append-only journal file of one run, as written by this process."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / JOURNAL
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if os.fstat(self._fd).st_size and not _ends_with_newline(self.path):
            os.write(self._fd, b"\n")  # a torn line left by a killed writer stays on its own

    def write(self, data: bytes) -> None:
        # One write per flush: with O_APPEND a forked child's writes never interleave with ours.
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def write_meta(run_dir: Path, meta: dict[str, Any]) -> None:
    """Replace ``meta.json`` atomically (a reader sees the old or the new one, never half)."""
    tmp = run_dir / f".{META}.{os.getpid()}.tmp"
    tmp.write_text(dumps_line(meta), encoding="utf-8")
    os.replace(tmp, run_dir / META)


def read_meta(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((run_dir / META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class RunLock:
    """Held by the process running a run; a free lock and no end event means it crashed."""

    def __init__(self, run_dir: Path):
        self._fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                pass  # another process holds it (an attached rank or a re-used id): fine

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def lock_is_held(run_dir: Path, meta: dict[str, Any] | None) -> bool:
    """Is a live process still running this run?"""
    if fcntl is None:  # pragma: no cover - Windows: best effort from the pid
        return _pid_alive(meta)
    try:
        fd = os.open(run_dir / LOCK, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing drops the shared lock we may have taken
    return False


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
    line that is not valid JSON is skipped and the lines after it are read.
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
            pos += len(line)
            stripped = line.strip()
            if not stripped:
                continue
            try:
                record = json.loads(stripped)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield pos, record


def metric_value(raw: Any) -> float:
    return _NONFINITE[raw] if isinstance(raw, str) else float(raw)


class RunRecord:
    """A run read back from the local store. Journal-derived fields load on first use."""

    def __init__(self, path: Path, meta: dict[str, Any]):
        self.path = path
        self.id: str = meta["id"]
        self._name: str = meta.get("name", "")
        self.project: str = meta.get("project", "default")
        self.parent_id: str | None = meta.get("parent")
        self.start_time: int = meta.get("start_time", 0)
        self.end_time: int | None = meta.get("end_time")
        self._status: str | None = meta.get("status")
        self._meta = meta
        self._loaded = False
        self._params: dict[str, Any] = {}
        self._tags: dict[str, str] = {}
        self._history: dict[str, list[tuple[int, float, int]]] = {}
        self._artifacts: list[str] = []
        self._models: dict[str, dict[str, Any]] = {}
        self._note: str | None = None
        self._deleted = False

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

    def artifact_path(self, name: str) -> Path:
        return self.path / ARTIFACTS / name

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for _, record in iter_journal(self.path / JOURNAL):
            try:
                self._apply(record)
            except (KeyError, TypeError, ValueError, AttributeError):
                pass  # valid JSON of the wrong shape: skipped like a line that does not parse

    def _add_artifacts(self, names: Iterable[str]) -> None:
        for name in names:
            if name not in self._artifacts:
                self._artifacts.append(name)

    def _apply(self, record: dict[str, Any]) -> None:
        kind = record.get("t")
        if kind == "metrics":
            for key, (steps, values, stamps) in record["d"].items():
                points = self._history.setdefault(key, [])
                points.extend(zip(steps, map(metric_value, values), stamps, strict=False))
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
        elif kind == "end":
            self._status = record["status"]
            self.end_time = record["time"]
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
    for _, record in iter_journal(run_dir / JOURNAL):
        if record.get("t") == "start":
            return {**record, "start_time": record.get("time", 0)}
        break
    return None


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
