"""Media a run logs: images, histograms, tables, text, and evaluation plots.

What each kind accepts and how it is stored is in its module (:mod:`.images`,
:mod:`.histograms`, :mod:`.tables`); :mod:`.events` is the journey: checked and copied on the
caller's thread (:func:`prepare`), written under ``artifacts/media/<kind>/<key>/<step>.<ext>``
by the journal writer, recorded as a ``media`` event (``docs/format.md``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .. import charts
from .events import KINDS, MEDIA_DIR, ArtifactEvent, MediaError, MediaEvent, Prepared, key_dir
from .histograms import DEFAULT_BINS, prepare_histogram
from .images import is_figure, prepare_figure, prepare_image
from .tables import prepare_table

__all__ = ["DEFAULT_BINS", "KINDS", "MEDIA_DIR", "ArtifactEvent", "MediaError", "MediaEvent",
           "Prepared", "is_figure", "key_dir", "object_file", "prepare"]

MAX_TEXT = 10 * 1024 * 1024


def prepare(kind: str, value: Any, **options: Any) -> Prepared:
    """Check and copy ``value`` as media of ``kind`` (raises :class:`MediaError` when it is not
    one)."""
    if kind == "image":
        return prepare_image(value)
    if kind == "figure":
        return prepare_figure(value)
    if kind == "histogram":
        return prepare_histogram(value, **options)
    if kind == "table":
        return prepare_table(value, **options)
    if kind == "text":
        return _prepare_text(value)
    if kind == "plot":
        return _prepare_plot(value, **options)
    raise ValueError(f"unknown media kind {kind!r}")


def _prepare_text(text: Any) -> Prepared:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not isinstance(text, str):
        raise MediaError(f"text must be a str, got {type(text).__name__}")
    note = None
    if len(text) > MAX_TEXT:
        note = f"the text has {len(text):,} characters; only the first {MAX_TEXT:,} are kept"
        text = text[:MAX_TEXT]

    def write(stem: Path) -> tuple[dict[str, Path], dict[str, Any]]:
        path = stem.parent / f"{stem.name}.txt"
        path.write_text(text, encoding="utf-8", errors="backslashreplace")
        return {"path": path}, {"chars": len(text)}

    return Prepared(write, ".txt", len(text), note)


def _prepare_plot(data: dict[str, Any], plot: str) -> Prepared:
    """An evaluation plot: its data (JSON) and its drawing (PNG)."""
    if plot not in charts.PLOTS:
        raise ValueError(f"unknown plot {plot!r}; known: {', '.join(charts.PLOTS)}")

    def write(stem: Path) -> tuple[dict[str, Path], dict[str, Any]]:
        path = stem.parent / f"{stem.name}.json"
        path.write_text(json.dumps({"plot": plot, **data}, allow_nan=False), encoding="utf-8")
        image = stem.parent / f"{stem.name}.png"
        image.write_bytes(charts.draw(plot, data))
        return {"path": path, "image": image}, {"plot": plot, **charts.summary(plot, data)}

    return Prepared(write, ".json")


def object_file(value: Any) -> tuple[str, Callable[[Path], None]] | None:
    """How ``log_artifact`` stores an object that is not a path: its default name and a function
    writing it to a path now; None for objects it does not know."""
    if is_figure(value):
        figure = value if hasattr(value, "savefig") else value.figure
        return "figure.png", lambda path: figure.savefig(path, format="png")
    module = type(value).__module__ or ""
    if module.startswith("PIL.") and hasattr(value, "save"):
        return "image.png", lambda path: value.save(path, format="PNG")
    if hasattr(value, "iloc") and hasattr(value, "to_csv"):
        return "table.csv", lambda path: value.to_csv(path, index=False)
    if callable(getattr(value, "detach", None)) or (hasattr(value, "dtype") and
                                                     hasattr(value, "shape")):
        return "array.npy", lambda path: _save_array(value, path)
    if isinstance(value, Mapping | list):
        return "data.json", lambda path: _save_json(value, path)
    return None


def _save_json(value: Any, path: Path) -> None:
    path.write_text(json.dumps(value, default=str, ensure_ascii=False), encoding="utf-8")


def _save_array(value: Any, path: Path) -> None:
    import numpy as np

    if callable(getattr(value, "detach", None)):
        value = value.detach().cpu().numpy()
    with open(path, "wb") as f:  # np.save(path) would add ".npy" to a name without it
        np.save(f, np.asarray(value), allow_pickle=False)
