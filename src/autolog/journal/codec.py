"""The journal's encoding: one strict JSON object per line, and the one non-finite float codec.

JSON has no literal for NaN and the infinities, so they travel as the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"`` — in the journal, in the http backend's requests and in the
server's answers alike (all use :func:`float_to_json` / :func:`float_from_json`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

__all__ = ["dumps_line", "encode_events", "float_from_json", "float_to_json", "jsonable"]

NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode


def float_to_json(value: float) -> float | str:
    """A float as JSON can carry it: itself, or the name of a non-finite value."""
    if math.isfinite(value):
        return value
    return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")


def float_from_json(raw: Any) -> float:
    """The float a journal or request value stands for (a number, or a non-finite's name)."""
    return NONFINITE[raw] if isinstance(raw, str) else float(raw)


def jsonable(value: Any) -> Any:
    """``value`` with every non-finite float, at any depth, replaced by its name."""
    if isinstance(value, float):
        return float_to_json(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def dumps_line(record: Any) -> str:
    """One compact, strict JSON line (no newline)."""
    try:
        return _dumps(record)
    except ValueError:  # a NaN or infinity somewhere: the rare path
        return _dumps(jsonable(record))


def encode_events(events: Iterable[tuple[Any, ...]]) -> tuple[bytes, dict[str, float]]:
    """Turn buffered events into journal lines; also return each metric's last value.

    Metric events are 4-tuples ``(key, value, step, timestamp_ms)``; consecutive ones share one
    columnar ``metrics`` line. A value that is not a float is read here with its ``resolve()``
    (a tensor snapshot the caller's thread did not read); None drops the point. Other events
    are ``(kind, record)`` pairs written as ``record``; a record that is not a dict is deferred
    (a media item): its ``resolve()`` writes its files now, on the writer's thread, and returns
    the record (None: nothing to write).
    """
    lines: list[str] = []
    last: dict[str, float] = {}
    columns: dict[str, tuple[list[int], list[float], list[int]]] = {}
    for event in events:
        if len(event) == 4:
            key, value, step, ts = event
            if type(value) is not float and hasattr(value, "resolve"):
                value = value.resolve()
                if value is None:
                    continue
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
        record = event[1]
        if type(record) is not dict:
            record = record.resolve()
            if record is None:
                continue
        lines.append(dumps_line(record))
    if columns:
        lines.append(_metrics_line(columns, last))
    if not lines:
        return b"", last
    return ("\n".join(lines) + "\n").encode("utf-8"), last


def _metrics_line(columns: dict[str, Any], last: dict[str, float]) -> str:
    for key, col in columns.items():
        last[key] = col[1][-1]
    return dumps_line({"t": "metrics", "d": columns})
