"""Putting values and tables on the terminal: rich on a terminal (colour by status, widths
fitted to the window), plain aligned text when the output is piped or redirected.

``rich`` is imported here only, when a table is drawn on a terminal: ``import autolog`` and
``autolog --help`` never load it.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Column", "bytes_text", "duration", "is_terminal", "number", "print_table", "when"]

STATUS_STYLE = {"RUNNING": "bold cyan", "FINISHED": "green", "FAILED": "bold red",
                "KILLED": "yellow", "CRASHED": "bold magenta"}


def is_terminal() -> bool:
    """Is stdout a terminal (colour, fitted widths) rather than a pipe or a file?"""
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


@dataclass
class Column:
    """A table column: its header, and how it behaves when the window is narrow."""

    header: str
    #: shrinks first (with an ellipsis) when the table is wider than the window
    flexible: bool = False
    align: str = "left"
    min_width: int | None = None
    upper: bool = True  # headers are upper-case, except names (a run's, in diff)
    #: left out (last ones first) when the window cannot hold every column
    optional: bool = False


@dataclass
class Cell:
    """A value with a style (``bold green``...) used on a terminal; plain text elsewhere."""

    text: str
    style: str = ""
    marker: str = ""  # added after the text when there is no colour (``*`` for the best)

    def __str__(self) -> str:
        return self.text


@dataclass
class Table:
    columns: list[Column]
    rows: list[list[Any]] = field(default_factory=list)
    title: str | None = None


def print_table(table: Table, *, file: Any = None) -> None:
    """Draw ``table`` on stdout (or ``file``): rich on a terminal, aligned text otherwise."""
    out = file or sys.stdout
    if is_terminal() and file is None:
        _rich_table(table)
    else:
        _plain_table(table, out)


def _plain_table(table: Table, out: Any) -> None:
    headers = [c.header.upper() if c.upper else c.header for c in table.columns]
    cells = [[_plain(v) for v in row] for row in table.rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    if table.title:
        print(table.title, file=out)

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if c.align == "right" else v.ljust(w)
                 for v, w, c in zip(values, widths, table.columns, strict=True)]
        return "  ".join(parts).rstrip()

    print(line(headers), file=out)
    for row in cells:
        print(line(row), file=out)


def _plain(value: Any) -> str:
    if isinstance(value, Cell):
        return value.text + value.marker
    return str(value)


def _rich_table(table: Table) -> None:
    from rich.console import Console
    from rich.table import Table as RichTable
    from rich.text import Text

    width = terminal_width()
    console = Console(highlight=False, soft_wrap=False, width=width)
    table = _without_optional(table, width)
    drawn = RichTable(box=None, title=table.title, title_justify="left",
                      header_style="bold", pad_edge=False, expand=False, padding=(0, 1))
    widths = fit_widths(table, width)
    for column, size in zip(table.columns, widths, strict=True):
        header = column.header.upper() if column.upper else column.header
        drawn.add_column(header, no_wrap=True, overflow="ellipsis", width=size,
                         justify=column.align)  # type: ignore[arg-type]
    for row in table.rows:
        drawn.add_row(*(Text(v.text, style=v.style) if isinstance(v, Cell) else Text(str(v))
                        for v in row))
    console.print(drawn)


def _without_optional(table: Table, total: int) -> Table:
    """``table`` without its optional columns (the last first) while its fixed columns and
    the flexible ones' least widths do not fit ``total``."""
    while True:
        natural = _natural(table)
        least = sum(min(w, c.min_width or 8) if c.flexible else w
                    for w, c in zip(natural, table.columns, strict=True))
        optional = [i for i, c in enumerate(table.columns) if c.optional]
        if least + 2 * (len(natural) - 1) <= total or not optional:
            return table
        drop = optional[-1]
        table = Table([c for i, c in enumerate(table.columns) if i != drop],
                      [[v for i, v in enumerate(row) if i != drop] for row in table.rows],
                      table.title)


def _natural(table: Table) -> list[int]:
    return [max([len(c.header)] + [len(_plain(row[i])) for row in table.rows])
            for i, c in enumerate(table.columns)]


def fit_widths(table: Table, total: int) -> list[int]:
    """Each column's width: what its widest cell needs, the flexible columns (names, metrics)
    cut down, in proportion, when the table is wider than ``total`` characters."""
    natural = _natural(table)
    room = total - 2 * (len(natural) - 1)  # one space of padding each side between columns
    if sum(natural) <= room:
        return natural
    flexible = [i for i, c in enumerate(table.columns) if c.flexible]
    fixed = sum(w for i, w in enumerate(natural) if i not in flexible)
    floor = {i: min(natural[i], table.columns[i].min_width or 8) for i in flexible}
    spare = max(0, room - fixed - sum(floor.values()))
    wanted = {i: natural[i] - floor[i] for i in flexible}
    share = sum(wanted.values()) or 1
    widths = list(natural)
    for i in flexible:
        widths[i] = floor[i] + min(wanted[i], spare * wanted[i] // share)
    return widths


def status_cell(status: str) -> Cell:
    return Cell(status, STATUS_STYLE.get(status, ""))


# -- values -----------------------------------------------------------------------------------


def number(value: Any, key: str = "") -> str:
    """A metric or param value for people: 4 significant digits; whole numbers in full (with
    thousands separators); byte counts (``*_bytes``) in KiB/MiB/GiB."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if value != value else ("inf" if value > 0 else "-inf")
    if key.endswith(("bytes", "_bytes")) and abs(value) >= 1024:
        return bytes_text(value)
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}" if abs(value) >= 10_000 else str(int(value))
    return f"{value:.4g}"


def bytes_text(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours >= 24:
        days, hours = divmod(hours, 24)
        return f"{days}d{hours:02d}h"
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def run_duration(row: dict[str, Any]) -> str:
    """A run's duration; a live run's so far (``12.3s+``)."""
    start, end = row.get("start_time"), row.get("end_time")
    if not start:
        return "-"
    if end:
        return duration((end - start) / 1000)
    if row.get("status") == "RUNNING":
        return duration(max(0.0, time.time() - start / 1000)) + "+"
    return "-"


def when(ms: int | None) -> str:
    """A moment in local time: ``2025-01-31 14:03``."""
    if not ms:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ms / 1000))


def terminal_width() -> int:
    """``COLUMNS`` when set, else the terminal's width (100 when it says 0)."""
    import shutil

    return shutil.get_terminal_size(fallback=(100, 24)).columns or 100
