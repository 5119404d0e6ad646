"""Evaluation plots: confusion matrix, ROC and precision-recall curves, predicted-vs-true and
residuals.

Each chart is drawn from the small data an evaluation computed (:mod:`autolog.evaluation`), by
the journal writer (on its thread, or in the last pass at exit), on an :mod:`autolog.raster`
palette image, in about a millisecond: matplotlib takes 150-500 ms a chart and holds global
state, and Pillow's import alone is 10-15 ms, on the exit path of a short script.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .raster import Raster

__all__ = ["PLOTS", "draw", "plot_rows", "summary"]

WIDTH, HEIGHT = 420, 340
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 40, 40
# a palette image: a third of the bytes of RGB to compress (about 0.5 ms a chart instead of 3)
WHITE, BLACK, GREY, BLUE = 0, 1, 2, 3
SHADES = 200  # palette entries 16.. : white to blue, for the confusion matrix cells
PALETTE = [255, 255, 255, 0, 0, 0, 200, 200, 200, 31, 119, 180] + [0, 0, 0] * 12 + [
    channel for i in range(SHADES) for channel in
    (int(255 - 200 * i / (SHADES - 1)), int(255 - 150 * i / (SHADES - 1)), 255)]
PALETTE_BYTES = bytes(PALETTE)
MAX_LABELS = 30  # a confusion matrix with more classes is drawn without its numbers


def draw(plot: str, data: dict[str, Any]) -> bytes:
    """The plot as PNG bytes."""
    canvas = _Canvas(Raster(WIDTH, HEIGHT, WHITE))
    PLOTS[plot](canvas, data)
    return canvas.draw.png(PALETTE_BYTES)


def summary(plot: str, data: dict[str, Any]) -> dict[str, Any]:
    """The few numbers a plot's record carries (its AUC, its class count)."""
    keep = {"roc_curve": ("auc", "positive"), "precision_recall_curve": ("average_precision",
                                                                          "positive"),
            "confusion_matrix": ("labels",), "predicted_vs_true": ("points",),
            "residuals": ("points",)}[plot]
    return {key: data[key] for key in keep if key in data}


def plot_rows(plot: str, data: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """A plot's data as a table (columns, rows), for trackers that show tables: a confusion
    matrix as one row per true label, a curve or a scatter as one row per point."""
    if plot == "confusion_matrix":
        labels = [str(label) for label in data["labels"]]
        return ["true", *labels], [[label, *row] for label, row in
                                   zip(labels, data["matrix"], strict=True)]
    columns = [key for key, value in data.items() if isinstance(value, list)
               and all(not isinstance(v, list | dict) for v in value)]
    length = min((len(data[c]) for c in columns), default=0)
    return columns, [[data[c][i] for c in columns] for i in range(length)]


class _Canvas:
    """A plot area with linear axes, on a raster."""

    def __init__(self, draw: Raster):
        self.draw = draw
        self.x0, self.x1, self.y0, self.y1 = LEFT, WIDTH - RIGHT, HEIGHT - BOTTOM, TOP
        self.xr = self.yr = (0.0, 1.0)

    def axes(self, title: str, xlabel: str, ylabel: str, xr: tuple[float, float],
             yr: tuple[float, float]) -> None:
        self.xr, self.yr = _padded(xr), _padded(yr)
        d = self.draw
        d.rectangle((self.x0, self.y1, self.x1, self.y0), outline=BLACK)
        d.text((LEFT, 4), title, BLACK)
        d.text(((self.x0 + self.x1) // 2 - 3 * len(xlabel), HEIGHT - 16), xlabel, BLACK)
        d.text((4, TOP - 14), ylabel, BLACK)
        for i in range(5):
            fx = self.xr[0] + (self.xr[1] - self.xr[0]) * i / 4
            fy = self.yr[0] + (self.yr[1] - self.yr[0]) * i / 4
            x, y = self.px(fx, fy)
            d.line([(x, self.y0), (x, self.y0 + 4)], BLACK)
            d.line([(self.x0 - 4, y), (self.x0, y)], BLACK)
            d.text((x - 10, self.y0 + 6), _tick(fx), BLACK)
            d.text((4, y - 6), _tick(fy), BLACK)

    def px(self, x: float, y: float) -> tuple[float, float]:
        fx = (x - self.xr[0]) / (self.xr[1] - self.xr[0])
        fy = (y - self.yr[0]) / (self.yr[1] - self.yr[0])
        return self.x0 + fx * (self.x1 - self.x0), self.y0 + fy * (self.y1 - self.y0)

    def line(self, xs: Sequence[float], ys: Sequence[float], color: int,
             width: int = 2) -> None:
        points = [self.px(x, y) for x, y in zip(xs, ys, strict=False)]
        self.draw.line(points, color, width)

    def points(self, xs: Sequence[float], ys: Sequence[float]) -> None:
        for x, y in zip(xs, ys, strict=False):
            self.draw.dot(*self.px(x, y), BLUE)


def _padded(span: tuple[float, float]) -> tuple[float, float]:
    low, high = float(span[0]), float(span[1])
    return (low - 0.5, high + 0.5) if high <= low else (low, high)


def _tick(value: float) -> str:
    return f"{value:.2g}" if abs(value) < 1000 else f"{value:.1e}"


def _roc(canvas: _Canvas, data: dict[str, Any]) -> None:
    canvas.axes(f"ROC curve (AUC {data.get('auc', float('nan')):.3f})", "false positive rate",
                "true positive rate", (0, 1), (0, 1))
    canvas.line([0, 1], [0, 1], GREY, 1)
    canvas.line(data["fpr"], data["tpr"], BLUE)


def _precision_recall(canvas: _Canvas, data: dict[str, Any]) -> None:
    ap = data.get("average_precision", float("nan"))
    canvas.axes(f"precision-recall (AP {ap:.3f})", "recall", "precision", (0, 1), (0, 1))
    canvas.line(data["recall"], data["precision"], BLUE)


def _predicted_vs_true(canvas: _Canvas, data: dict[str, Any]) -> None:
    true, predicted = data["true"], data["predicted"]
    low = min(min(true, default=0.0), min(predicted, default=0.0))
    high = max(max(true, default=1.0), max(predicted, default=1.0))
    canvas.axes("predicted vs true", "true", "predicted", (low, high), (low, high))
    canvas.line([low, high], [low, high], GREY, 1)
    canvas.points(true, predicted)


def _residuals(canvas: _Canvas, data: dict[str, Any]) -> None:
    predicted, residual = data["predicted"], data["residual"]
    bound = max((abs(r) for r in residual), default=1.0) or 1.0
    canvas.axes("residuals (true - predicted)", "predicted", "residual",
                (min(predicted, default=0.0), max(predicted, default=1.0)), (-bound, bound))
    canvas.line([canvas.xr[0], canvas.xr[1]], [0, 0], GREY, 1)
    canvas.points(predicted, residual)


def _confusion_matrix(canvas: _Canvas, data: dict[str, Any]) -> None:
    labels, matrix = data["labels"], data["matrix"]
    n = len(labels)
    d = canvas.draw
    d.text((LEFT, 4), "confusion matrix (rows: true, columns: predicted)", BLACK)
    size = min(canvas.x1 - canvas.x0, canvas.y0 - canvas.y1) / max(n, 1)
    for i, row in enumerate(matrix):
        total = sum(row) or 1
        for j, count in enumerate(row):
            level = round((SHADES - 1) * count / total)
            box = (canvas.x0 + j * size, canvas.y1 + i * size,
                   canvas.x0 + (j + 1) * size, canvas.y1 + (i + 1) * size)
            d.rectangle(box, fill=16 + level, outline=GREY)
            if n <= MAX_LABELS and size >= 14:
                d.text((box[0] + 3, box[1] + size / 2 - 6), str(count),
                       WHITE if level > SHADES * 0.6 else BLACK)
        if n <= MAX_LABELS:
            d.text((4, canvas.y1 + i * size + size / 2 - 6), str(labels[i])[:8], BLACK)
            d.text((canvas.x0 + i * size + 3, canvas.y1 - 14), str(labels[i])[:8], BLACK)


PLOTS: dict[str, Callable[[_Canvas, dict[str, Any]], None]] = {
    "confusion_matrix": _confusion_matrix,
    "roc_curve": _roc,
    "precision_recall_curve": _precision_recall,
    "predicted_vs_true": _predicted_vs_true,
    "residuals": _residuals,
}
