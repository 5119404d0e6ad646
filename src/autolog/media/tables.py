"""Tables: a pandas DataFrame, a list of rows (dicts, or sequences), a dict of columns, or a 2-D
array, stored as ``{"columns": [...], "data": [[...], ...]}`` (the shape MLflow's ``log_table``
and pandas' ``orient="split"`` use).

The caller's thread checks the shape and copies the rows (at most :data:`MAX_ROWS`; the meta says
how many there were); cells become JSON on the writer's thread: numbers, strings, booleans and
None as they are, numpy scalars as numbers, anything else as its ``str``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .events import MediaError, Prepared

__all__ = ["MAX_ROWS", "prepare_table", "table_json"]

MAX_ROWS = 100_000
MAX_COLUMNS = 1_000
_SCALARS = (str, int, float, bool, type(None))


def prepare_table(data: Any, columns: Sequence[Any] | None = None) -> Prepared:
    names, rows, total = _rows(data, columns)
    if not names or len(names) > MAX_COLUMNS:
        raise MediaError(f"a table needs 1 to {MAX_COLUMNS} columns, this one has {len(names)}")
    width = len(names)
    bad = next((r for r in rows if len(r) != width), None)
    if bad is not None:
        raise MediaError(f"every row needs {width} cells (one per column), a row has {len(bad)}")

    def write(stem: Path) -> tuple[dict[str, Path], dict[str, Any]]:
        path = stem.parent / f"{stem.name}.json"
        path.write_text(table_json(names, rows), encoding="utf-8")
        meta: dict[str, Any] = {"rows": len(rows), "columns": names}
        if total > len(rows):
            meta["total_rows"] = total
        return {"path": path}, meta

    return Prepared(write, ".json", 64 * width * len(rows))


def table_json(columns: list[str], rows: list[list[Any]]) -> str:
    data = [[_cell(value) for value in row] for row in rows]
    return json.dumps({"columns": columns, "data": data}, ensure_ascii=False, allow_nan=False)


def _rows(data: Any, columns: Sequence[Any] | None) -> tuple[list[str], list[list[Any]], int]:
    """Column names, the rows (copied, at most MAX_ROWS) and how many rows there were."""
    if _is_dataframe(data):
        names = [str(c) for c in data.columns]
        return names, data.iloc[:MAX_ROWS].to_numpy(dtype=object).tolist(), len(data)
    if isinstance(data, Mapping):
        return _from_columns(data)
    if hasattr(data, "ndim") and hasattr(data, "tolist"):
        if data.ndim != 2:
            raise MediaError(f"a table array must be 2-D, got shape {tuple(data.shape)}")
        rows = data[:MAX_ROWS].tolist()
        return _names(columns, data.shape[1]), rows, int(data.shape[0])
    if isinstance(data, list | tuple) and data:
        return _from_rows(list(data), columns)
    raise MediaError(f"{type(data).__name__} is not tabular: give a pandas DataFrame, a list of "
                     "rows (dicts or sequences), a dict of equal-length columns, or a 2-D array")


def _from_rows(rows: list[Any],
               columns: Sequence[Any] | None) -> tuple[list[str], list[list[Any]], int]:
    total = len(rows)
    rows = rows[:MAX_ROWS]
    if all(isinstance(r, Mapping) for r in rows):
        names = list(dict.fromkeys(str(k) for r in rows for k in r)) if columns is None \
            else [str(c) for c in columns]
        return names, [[_get(r, name) for name in names] for r in rows], total
    if not all(isinstance(r, Sequence) and not isinstance(r, str | bytes) for r in rows):
        raise MediaError("the rows of a table must all be dicts or all be sequences of cells, "
                         f"got {type(rows[0]).__name__} rows")
    width = max(len(r) for r in rows)
    return _names(columns, width), [list(r) for r in rows], total


def _get(row: Mapping[Any, Any], name: str) -> Any:
    if name in row:
        return row[name]
    return next((v for k, v in row.items() if str(k) == name), None)


def _from_columns(data: Mapping[Any, Any]) -> tuple[list[str], list[list[Any]], int]:
    names = [str(k) for k in data]
    cells = [list(v) if _is_column(v) else None for v in data.values()]
    if any(c is None for c in cells) or len({len(c) for c in cells if c is not None}) > 1:
        raise MediaError("a dict of columns needs a sequence of the same length for each column")
    total = len(cells[0]) if cells and cells[0] is not None else 0
    rows = [list(row) for row in zip(*cells, strict=True)]
    return names, rows[:MAX_ROWS], total


def _is_column(value: Any) -> bool:
    return (isinstance(value, Sequence) and not isinstance(value, str)) or hasattr(value, "tolist")


def _names(columns: Sequence[Any] | None, width: int) -> list[str]:
    if columns is None:
        return [str(i) for i in range(width)]
    names = [str(c) for c in columns]
    if len(names) != width:
        raise MediaError(f"{len(names)} column names were given for rows of {width} cells")
    return names


def _is_dataframe(value: Any) -> bool:
    return hasattr(value, "iloc") and hasattr(value, "columns") and hasattr(value, "to_numpy")


def _cell(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, _SCALARS):
        return value
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return _cell(item())
        except (TypeError, ValueError):
            pass
    return str(value)
