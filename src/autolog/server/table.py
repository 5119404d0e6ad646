"""The runs table's query parameters, read into a :class:`~.search.RunQuery`'s parts; what does
not parse is a 400 naming the column (filters) or the value (sorts, columns, tags)."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException

from .. import filters
from . import search

__all__ = ["columns", "empty_history", "parsed", "sort", "tag_filter"]


def parsed(text: str | None) -> filters.Node | None:
    if text is None or not text.strip():
        return None
    try:
        return filters.parse(text)
    except filters.FilterError as exc:
        raise HTTPException(400, {"message": exc.message, "column": exc.column,
                                  "expression": exc.expression})


def _field(text: str, what: str) -> filters.Field:
    try:
        return filters.parse_field(text)
    except filters.FilterError as exc:
        raise HTTPException(400, {"message": f"{what} {text[:200]!r}: {exc.message}",
                                  "column": exc.column, "expression": text})


def sort(text: str | None) -> filters.SortKey:
    if not text:
        return search.DEFAULT_SORT
    descending = text.startswith("-")
    return filters.SortKey(_field(text[1:] if descending else text, "sort"), descending)


def columns(text: str | None) -> list[filters.Field]:
    if not text:
        return []
    names = [n.strip() for n in text.split(",") if n.strip()]
    if len(names) > 200:
        raise HTTPException(400, "at most 200 columns")
    fields = [_field(name, "column") for name in names]
    for name, field in zip(names, fields, strict=True):
        if field.key is None:
            raise HTTPException(400, f"column {name[:200]!r}: use params.KEY, metrics.KEY "
                                "(:min, :max) or tags.KEY")
    return fields


def empty_history(run_id: str, key: str) -> dict[str, Any]:
    return {"run_id": run_id, "key": key, "total": 0, "downsampled": False, "steps": [],
            "values": [], "timestamps": [], "min": [], "max": []}


def tag_filter(raw: str) -> tuple[str, str]:
    key, sep, value = raw.partition("=")
    if not sep or not key:
        raise HTTPException(400, f"tag filter {raw[:100]!r}: use key=value")
    return key, value
