"""What ``autolog runs`` must answer, computed in Python from ``autolog.list_runs()`` with
``autolog.filters.matches``: the reference the SQL of the index is held to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import autolog
from autolog import filters


def expected_ids(store: Path, expression: str | None = None, sort: str | None = None, *,
                 every: bool = False, status: str | None = None,
                 project: str | None = None) -> list[str]:
    runs = [r for r in autolog.list_runs(store) if not r.deleted
            and (every or r.parent_id is None) and (status is None or r.status == status)
            and (project is None or r.project == project)]
    if expression:
        tree = filters.parse(expression)
        runs = [r for r in runs if filters.matches(tree, r)]
    return [r.id for r in ordered(runs, sort)]


def ordered(runs: list[Any], sort: str | None) -> list[Any]:
    """The runs table's order: by the key (runs lacking it last, newest first), ties newest
    first; by default newest first; by start time, ties by id the same way."""
    newest = sorted(runs, key=lambda r: (r.start_time, r.id), reverse=True)
    if sort is None:
        return newest
    key = filters.parse_sort(sort)
    if key.field.kind == "start_time":  # oldest first: newest first reversed (ties by id too)
        return newest if key.descending else newest[::-1]
    groups = [[] for _ in range(3)]  # numbers (or the value), texts, lacking it
    for run in newest:
        group, value = _sort_value(key.field, run)
        groups[group].append((value, run))
    out = []
    for found in groups[:2]:
        # Python's sort is stable with reverse=True too: ties keep newest-first
        out += [run for _, run in sorted(found, key=lambda item: item[0],
                                         reverse=key.descending)]
    return out + [run for _, run in groups[2]]


def _sort_value(field: filters.Field, run: Any) -> tuple[int, Any]:
    if field.kind == "params":
        if field.key not in run.params:
            return 2, None
        value = run.params[field.key]
        number = filters.number_of(value)
        return (0, number) if number is not None else (1, filters.text_of(value)[:200])
    value = filters.field_value(field, run)
    if value is None:
        return 2, None
    return 0, value
