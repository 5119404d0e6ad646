"""The data behind evaluation plots, from targets and predictions: confusion matrix, ROC and
precision-recall curves (binary problems), predicted-vs-true and residuals (regression).

Framework-neutral numpy, a few milliseconds on 100,000 rows: the definitions are scikit-learn's
(``confusion_matrix``, ``roc_curve``, ``precision_recall_curve``, ``roc_auc_score``,
``average_precision_score``; the tests compare them), without their input validation, which
alone costs more than the budget. Curves are thinned to at most :data:`CURVE_POINTS` points and
scatters to :data:`SCATTER_POINTS` (the AUC and average precision are computed before).
Sample weights are not used. Drawing is :mod:`autolog.charts`' (on the writer thread).
"""

from __future__ import annotations

from typing import Any

__all__ = ["CURVE_POINTS", "SCATTER_POINTS", "Plot", "classifier_plots", "log_plots",
           "regressor_plots", "sample_rows"]

CURVE_POINTS = 200
SCATTER_POINTS = 1000
SEED = 0
Plot = tuple[str, str, dict[str, Any]]  # (key suffix, plot type, data)


def log_plots(run: Any, prefix: str, task: str, y: Any, y_pred: Any, proba: Any = None,
              classes: Any = None) -> None:
    """Log the plots of one evaluation (``task``: ``classifier`` or ``regressor``) as
    ``<prefix>_confusion_matrix``, ``<prefix>_roc_curve``... into ``run`` (``Run.log_plot``)."""
    if y is None or y_pred is None:
        return
    plots = classifier_plots(y, y_pred, proba, classes) if task == "classifier" else \
        regressor_plots(y, y_pred)
    for suffix, plot, data in plots:
        run.log_plot(f"{prefix}_{suffix}", plot, data)


def classifier_plots(y: Any, y_pred: Any, proba: Any = None, classes: Any = None) -> list[Plot]:
    """A confusion matrix; with ``proba`` of a binary problem, ROC and precision-recall."""
    import numpy as np

    true, predicted = np.asarray(y), np.asarray(y_pred)
    if true.ndim != 1 or predicted.shape != true.shape or not true.size:
        return []  # multi-output or multilabel: no single matrix
    labels = np.asarray(classes) if classes is not None else np.unique(
        np.concatenate([true, predicted]))
    encoded = _encode(labels, true, predicted)
    if encoded is None:
        return []
    n = len(labels)
    matrix = np.bincount(encoded[0] * n + encoded[1], minlength=n * n).reshape(n, n)
    plots: list[Plot] = [("confusion_matrix", "confusion_matrix",
                          {"labels": [_label(v) for v in labels], "matrix": matrix.tolist()})]
    probabilities = None if proba is None else np.asarray(proba, dtype=float)
    if n == 2 and probabilities is not None and probabilities.shape == (true.size, 2):
        positive = encoded[0] == 1
        if 0 < positive.sum() < true.size:
            plots += _binary_curves(positive, probabilities[:, 1], _label(labels[1]))
    return plots


def regressor_plots(y: Any, y_pred: Any) -> list[Plot]:
    """Predicted against true values and the residuals, on at most SCATTER_POINTS points."""
    import numpy as np

    true, predicted = np.asarray(y, dtype=float), np.asarray(y_pred, dtype=float)
    if true.ndim != 1 or predicted.shape != true.shape or not true.size:
        return []
    keep = np.isfinite(true) & np.isfinite(predicted)
    true, predicted = true[keep], predicted[keep]
    if true.size > SCATTER_POINTS:
        rows = np.sort(np.random.default_rng(SEED).choice(true.size, SCATTER_POINTS,
                                                          replace=False))
        true, predicted = true[rows], predicted[rows]
    points = int(true.size)
    return [("predicted_vs_true", "predicted_vs_true",
             {"true": true.tolist(), "predicted": predicted.tolist(), "points": points}),
            ("residuals", "residuals", {"predicted": predicted.tolist(),
                                        "residual": (true - predicted).tolist(),
                                        "points": points})]


def sample_rows(max_rows: int, x: Any, *arrays: Any) -> tuple[Any, ...]:
    """``x`` and ``arrays`` (None allowed) cut to ``max_rows`` rows, a fixed-seed sample (numpy
    arrays, pandas objects, scipy sparse matrices and lists)."""
    import numpy as np

    n = _rows(x)
    if n is None or n <= max_rows:
        return (x, *arrays)
    rows = np.sort(np.random.default_rng(SEED).choice(n, size=max_rows, replace=False))
    return tuple(None if a is None else _take(a, rows) for a in (x, *arrays))


def _rows(x: Any) -> int | None:
    shape = getattr(x, "shape", None)
    if shape is not None and len(shape) > 0:
        return int(shape[0])
    return len(x) if isinstance(x, list | tuple) else None


def _take(array: Any, rows: Any) -> Any:
    iloc = getattr(array, "iloc", None)
    if iloc is not None:
        return iloc[rows]
    if isinstance(array, list | tuple):
        return [array[i] for i in rows]
    return array[rows]


def _encode(labels: Any, *arrays: Any) -> list[Any] | None:
    """Each array as indices into the sorted ``labels``; None for a label not among them."""
    import numpy as np

    if labels.ndim != 1 or len(labels) < 2:
        return None
    order = np.argsort(labels, kind="stable")
    ordered = labels[order]
    out = []
    for array in arrays:
        try:
            index = np.clip(np.searchsorted(ordered, array), 0, len(ordered) - 1)
        except TypeError:  # labels of mixed types
            return None
        if not np.array_equal(ordered[index], array):
            return None
        out.append(order[index])
    return out


def _binary_curves(positive: Any, scores: Any, label: Any) -> list[Plot]:
    """ROC and precision-recall of ``scores`` for the positive class (scikit-learn's curves:
    one point per distinct score, highest first)."""
    import numpy as np

    order = np.argsort(scores, kind="mergesort")[::-1]
    ranked, hits = scores[order], positive[order].astype(float)
    last = np.r_[np.flatnonzero(np.diff(ranked)), hits.size - 1]  # last index of each score
    tps = np.cumsum(hits)[last]
    fps = 1 + last - tps
    thresholds = ranked[last]
    total_p, total_n = tps[-1], fps[-1]
    fpr, tpr = np.r_[0.0, fps / total_n], np.r_[0.0, tps / total_p]
    auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))  # the trapezoidal rule
    precision, recall = tps / (tps + fps), tps / total_p
    average_precision = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    roc = {"fpr": _thin(fpr), "tpr": _thin(tpr), "thresholds": _thin(np.r_[np.inf, thresholds]),
           "auc": auc, "positive": label}
    pr = {"precision": _thin(np.r_[1.0, precision]), "recall": _thin(np.r_[0.0, recall]),
          "thresholds": _thin(np.r_[np.inf, thresholds]), "average_precision": average_precision,
          "positive": label}
    return [("roc_curve", "roc_curve", roc), ("precision_recall_curve", "precision_recall_curve",
                                             pr)]


def _thin(values: Any) -> list[Any]:
    """At most CURVE_POINTS evenly spaced points, the first and last kept; infinities as None
    (JSON has none)."""
    import numpy as np

    if values.size > CURVE_POINTS:
        values = values[np.unique(np.linspace(0, values.size - 1, CURVE_POINTS).round()
                                  .astype(int))]
    finite = np.isfinite(values).tolist()  # one call, not one per point (1 us each)
    return [v if ok else None for v, ok in zip(values.astype(float).tolist(), finite,
                                                  strict=True)]


def _label(value: Any) -> Any:
    item = getattr(value, "item", None)
    value = item() if callable(item) else value
    return value if isinstance(value, str | int | float | bool) else str(value)
