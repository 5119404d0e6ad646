"""What the backends that show media themselves share (tensorboard, dvclive, aim, clearml,
comet): reading a media item's file back, a table as markdown, the items of one step, a
histogram on even bins, an image in a format a viewer shows.

Not a plugin: :mod:`autolog.plugins` skips modules whose names start with ``_``.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

from ..charts import plot_rows
from .base import Media, RunRef

__all__ = ["MAX_TABLE_ROWS", "convert_to_png", "even_bins", "gone", "load", "markdown_table",
           "plot_caption", "repeat", "same_step", "table_of"]

log = logging.getLogger("autolog")

#: rows of a table (or of a plot's data) shown where a tracker keeps tables as text or plots
MAX_TABLE_ROWS = 1000


def gone(run: RunRef, media: Media, backend: str) -> bool:
    """True, with one log line, when the item's file is no longer in the local store."""
    if media.path.exists():
        return False
    log.warning("autolog: %s %r of run %s is gone from the local store; not sent to %s",
                media.kind, media.key, run.id, backend)
    return True


def load(media: Media) -> Any:
    """The item's JSON (histograms, tables, plot data)."""
    return json.loads(media.path.read_text(encoding="utf-8"))


def table_of(media: Media) -> tuple[list[str], list[list[Any]]]:
    """``(columns, rows)`` of a table, or of a plot's data (a confusion matrix by true label, a
    curve or a scatter by point)."""
    data = load(media)
    if media.kind == "plot":
        return plot_rows(data.pop("plot"), data)
    return [str(c) for c in data["columns"]], data["data"]


def markdown_table(columns: list[str], rows: list[list[Any]], total: int | None = None,
                   limit: int = MAX_TABLE_ROWS) -> str:
    """A markdown table of at most ``limit`` rows, saying so when rows were left out."""
    def cell(value: Any) -> str:
        text = "" if value is None else str(value)
        return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(c) for c in columns) + " |",
             "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows[:limit]]
    total = max(total or 0, len(rows))
    if total > min(limit, len(rows)):
        lines.append(f"\n(the first {min(limit, len(rows)):,} of {total:,} rows)")
    return "\n".join(lines)


def plot_caption(media: Media) -> str:
    """``roc_curve, auc 0.93``: the plot's type and its summary numbers."""
    meta = media.meta
    numbers = [f"{key.replace('_', ' ')} {meta[key]:.4g}" for key in ("auc", "average_precision")
               if isinstance(meta.get(key), (int, float))]
    return ", ".join([str(meta.get("plot", "plot")), *numbers])


def repeat(media: Media) -> int:
    """0 for the first item logged under its key at its step, n for the n-th logged there
    again (the local store names them ``3.png``, ``3-1.png``...)."""
    stem, step = media.path.stem, str(media.step)
    rest = stem[len(step) + 1:] if stem.startswith(step + "-") else ""
    return int(rest) if rest.isdigit() else 0


def same_step(media: Media) -> list[Path]:
    """The item's file and those of the items logged before it under its key at its step
    (``3.png``, ``3-1.png``...: the local store numbers a step logged again), in order.
    Computed from the store alone, so a retried delivery finds the same list."""
    last, step = repeat(media), str(media.step)
    if not last:
        return [media.path]
    found = []
    for n in range(last + 1):
        name = step if n == 0 else f"{step}-{n}"
        found += sorted(p for p in media.path.parent.glob(f"{name}.*") if p.suffix != ".json")
    return found or [media.path]


def even_bins(counts: list[float], edges: list[float],
              max_bins: int = 512) -> tuple[list[float], float, float]:
    """``(counts, low, high)`` on at most ``max_bins`` equal bins over ``[edges[0], edges[-1]]``,
    for trackers that keep only a range and counts (Aim). Bins already even are kept as they
    are; uneven ones give each count to the even bin holding its bin's centre."""
    low, high = edges[0], edges[-1]
    n = len(counts)
    width = (high - low) / n
    even = all(abs(edges[i] - (low + i * width)) <= 1e-9 * max(1.0, abs(high - low))
               for i in range(n + 1))
    if even and n <= max_bins:
        return list(counts), low, high
    n = min(n, max_bins)
    out = [0.0] * n
    for count, left, right in zip(counts, edges, edges[1:], strict=False):
        index = int(((left + right) / 2 - low) / (high - low) * n)
        out[min(max(index, 0), n - 1)] += count
    return out, low, high


def convert_to_png(path: Path) -> bytes | None:
    """The image file as PNG bytes (for a format a tracker does not show), or None when Pillow
    is missing or cannot read it."""
    try:
        from PIL import Image
    except ImportError:
        log.warning("autolog: image %s is not sent: its format needs converting to PNG, and "
                    "Pillow is not installed (pip install pillow)", path.name)
        return None
    try:
        with Image.open(path) as image:
            out = io.BytesIO()
            image.save(out, format="PNG")
    except (OSError, ValueError) as exc:
        log.warning("autolog: image %s could not be converted to PNG: %s", path, exc)
        return None
    return out.getvalue()
