"""What a stretch of a run's journal changes in the index, read with ``store.iter_journal``.

Two readings of the same lines, for the index's two passes (see :mod:`.index`):

- :class:`Summary`: the run row, params, tags (and removed ones), each metric's count, last
  point and extremes, artifacts, models, media items (checked as the server checks them),
  edits. Metric lines are reduced to their aggregates with ``min``/``max`` over the raw lists
  (a fast path: no per-point conversion), so indexing 10,000 runs costs little more than
  parsing their JSON.
- :func:`point_columns`: every metric point, as columns, for the history tables.

A line of a known type but the wrong shape is skipped, like a line that does not parse.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..journal.codec import RECORD_START, decode_line, float_from_json
from ..server.media import MediaIn, media_in

__all__ = ["Columns", "MetricSummary", "Summary", "point_columns", "read_summary"]

#: key -> (steps, values, timestamps); values as stored (None for NaN)
Columns = dict[str, tuple[list[int], list[float | None], list[int]]]


@dataclass
class MetricSummary:
    count: int = 0
    last: float | None = None
    step: int = 0
    timestamp: int = 0
    vmin: float | None = None
    vmax: float | None = None

    def add(self, steps: list[Any], values: list[Any], stamps: list[Any]) -> None:
        n = min(len(steps), len(values), len(stamps))
        if n == 0:
            return
        if n < len(values):
            values = values[:n]
        low, high = _extremes(values)
        if low is not None and (self.vmin is None or low < self.vmin):
            self.vmin = low
        if high is not None and (self.vmax is None or high > self.vmax):
            self.vmax = high
        self.count += n
        self.last = _stored(values[n - 1])
        self.step, self.timestamp = int(steps[n - 1]), int(stamps[n - 1])


def _extremes(values: list[Any]) -> tuple[float | None, float | None]:
    try:  # numbers only (the usual case): C-speed min and max
        return float(min(values)), float(max(values))
    except TypeError:  # "NaN", "Infinity" or "-Infinity" among them
        numbers = [v for v in map(_stored, values) if v is not None]
        return (min(numbers), max(numbers)) if numbers else (None, None)


def _stored(raw: Any) -> float | None:
    """A journal value (a number or "NaN"/"Infinity"/"-Infinity"), or an already stored one
    (None for NaN), as stored."""
    if raw is None:
        return None
    value = float_from_json(raw)
    return None if math.isnan(value) else value


@dataclass
class Summary:
    """What a stretch of one run's journal changes in the summary tables."""

    run: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    untagged: set[str] = field(default_factory=set)
    metrics: dict[str, MetricSummary] = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)
    models: dict[str, Any] = field(default_factory=dict)
    media: list[MediaIn] = field(default_factory=list)  # checked as the server checks them
    ended: bool = False
    #: a ``resume`` line came after the last ``end`` read: the run is live again
    resumed: bool = False

    def add_last_values(self, last: dict[str, Any]) -> None:
        """Metric summaries from meta.json's last values alone (no count, no extremes yet)."""
        for key, raw in last.items():
            try:
                self.metrics[str(key)] = MetricSummary(last=_stored(raw))
            except (KeyError, TypeError, ValueError):
                continue

    def apply(self, record: dict[str, Any]) -> None:
        handler = _HANDLERS.get(record.get("t"))  # type: ignore[arg-type]
        if handler is not None:
            try:
                handler(self, record)
            except (KeyError, TypeError, ValueError, AttributeError, IndexError):
                pass  # a line of the right type but the wrong shape: skipped like bad JSON


def _start(s: Summary, r: dict[str, Any]) -> None:
    s.run.update(name=str(r.get("name", "")), project=str(r.get("project") or "default"),
                 parent_id=r.get("parent"), start_time=int(r.get("time", 0)))


def _metrics(s: Summary, r: dict[str, Any]) -> None:
    for key, (steps, values, stamps) in r["d"].items():
        found = s.metrics.get(key)
        if found is None:
            found = s.metrics[key] = MetricSummary()
        found.add(steps, values, stamps)


def _tags(s: Summary, r: dict[str, Any]) -> None:
    for key, value in r["d"].items():
        s.tags[str(key)] = str(value)
        s.untagged.discard(str(key))


def _untag(s: Summary, r: dict[str, Any]) -> None:
    for key in r["keys"]:
        s.tags.pop(key, None)
        s.untagged.add(key)


def _artifact(s: Summary, r: dict[str, Any]) -> None:
    s.artifacts.extend(r.get("files") or [r["path"]])


def _model(s: Summary, r: dict[str, Any]) -> None:
    spec = r["spec"]
    s.models[str(r["name"])] = spec
    s.artifacts.extend(f"{spec['path']}/{name}" for name in spec.get("files", ()))


def _end(s: Summary, r: dict[str, Any]) -> None:
    s.run.update(status=str(r["status"]), end_time=int(r["time"]))
    s.ended, s.resumed = True, False


def _resume(s: Summary, r: dict[str, Any]) -> None:
    """``autolog.start_run(run_id=...)`` reopened an ended run: live until its next end."""
    s.run.update(status="RUNNING", end_time=None)
    s.ended, s.resumed = False, True


_HANDLERS: dict[str, Callable[[Summary, dict[str, Any]], None]] = {
    "start": _start,
    "params": lambda s, r: s.params.update(r["d"]),
    "tags": _tags,
    "metrics": _metrics,
    "artifact": _artifact,
    "model": _model,
    "media": lambda s, r: s.media.append(media_in(r)),
    "end": _end,
    "resume": _resume,
    "rename": lambda s, r: s.run.update(name=str(r["name"])),
    "untag": _untag,
    "note": lambda s, r: s.run.update(note=r.get("text") or None),
    "delete": lambda s, r: s.run.update(deleted=int(r.get("time") or time.time() * 1000)),
    "restore": lambda s, r: s.run.update(deleted=None),
}


METRICS_LINE = b'{"t":"metrics"'  # how autolog's writer starts every metrics line


def read_summary(journal: Path, offset: int, *, skip_metrics: bool = False
                 ) -> tuple[Summary, int]:
    """The summary of the journal's complete lines from ``offset``, and where they end.

    Lines are read as ``store.iter_journal`` reads them (a torn last line waits, a line that
    does not parse is skipped, a torn line continued by a later append gives the records it
    holds whole); with ``skip_metrics``, metrics lines are not even parsed.
    """
    summary = Summary()
    end = offset
    try:
        f = open(journal, "rb")  # noqa: SIM115 - closed by the with below
    except FileNotFoundError:
        return summary, end
    with f:
        f.seek(offset)
        for line in f:
            if not line.endswith(b"\n"):
                break
            end += len(line)
            if skip_metrics and line.startswith(METRICS_LINE) and line.count(RECORD_START) == 1:
                continue  # a metrics line alone (not a torn one continued by another record)
            for record in decode_line(line):
                if not (skip_metrics and record.get("t") == "metrics"):
                    summary.apply(record)
    return summary, end


def point_columns(record: dict[str, Any], columns: Columns) -> int:
    """Add a ``metrics`` line's points to ``columns``; returns how many it held."""
    added = 0
    try:
        items = list(record["d"].items())
    except (KeyError, AttributeError):
        return 0
    for key, column_data in items:
        try:
            steps, values, stamps = column_data
            n = min(len(steps), len(values), len(stamps))
            parts = ([int(s) for s in steps[:n]], [_stored(v) for v in values[:n]],
                     [int(t) for t in stamps[:n]])
        except (TypeError, ValueError, KeyError, AttributeError):
            continue  # this key's columns are malformed: skipped, the others kept
        column = columns.get(key)
        if column is None:
            column = columns[key] = ([], [], [])
        column[0].extend(parts[0])
        column[1].extend(parts[1])
        column[2].extend(parts[2])
        added += n
    return added
