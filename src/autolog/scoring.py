"""Scores of predictions against targets: accuracy, precision/recall/F1, log loss, ROC AUC,
MSE/RMSE/MAE/R².

The common case (1-D labels the estimator knows, 1-D regression targets) is computed here with
numpy in well under a millisecond per metric on 10,000 rows: scikit-learn's own metric functions
validate and re-encode their inputs on every call (~2-10 ms each), which alone would exceed the
per-fit budget. Anything else (multilabel, multi-output, unknown labels, weighted AUC) goes to
scikit-learn's functions. The definitions are scikit-learn's: the tests compare both. numpy,
scipy and scikit-learn are imported inside the functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

__all__ = ["attempt", "classification_scores", "probability_scores", "put", "regression_scores"]


def attempt(compute: Callable[[], Any]) -> Any:
    """The value, or None where it does not apply to this estimator or data (it raised)."""
    try:
        return compute()
    except Exception:
        return None


def put(metrics: dict[str, float], key: str, compute: Callable[[], Any]) -> Any:
    """Compute one metric into ``metrics``; one that does not apply is left out."""
    value = attempt(compute)
    try:
        metrics[key] = float(value)
    except (TypeError, ValueError):
        return None
    return value


def classification_scores(y: Any, y_pred: Any, weight: Any, prefix: str,
                          classes: Any = None) -> dict[str, float]:
    """Accuracy, and precision, recall and F1 weighted by class support (zero_division=0)."""
    fast = attempt(lambda: _fast_classification_scores(y, y_pred, weight, classes))
    if fast is not None:
        return {f"{prefix}{name}": value for name, value in fast.items()}
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    metrics: dict[str, float] = {}
    put(metrics, f"{prefix}accuracy_score",
         lambda: accuracy_score(y, y_pred, sample_weight=weight))
    scores = attempt(lambda: precision_recall_fscore_support(
        y, y_pred, average="weighted", sample_weight=weight, zero_division=0))
    for name, value in zip(("precision", "recall", "f1"), scores[:3] if scores else (),
                           strict=False):
        metrics[f"{prefix}{name}_score"] = float(value)
    return metrics


def _encode(classes: Any, *labels: Any) -> tuple[list[Any], int] | None:
    """Each label array as indices into ``classes`` (default: the labels seen), or None."""
    import numpy as np

    arrays = [np.asarray(a) for a in labels]
    if any(a.ndim != 1 for a in arrays):
        return None
    known = np.unique(np.concatenate(arrays)) if classes is None else np.asarray(classes)
    if known.ndim != 1 or len(known) < 2:
        return None
    encoded = []
    for array in arrays:
        index = np.clip(np.searchsorted(known, array), 0, len(known) - 1)
        if not np.array_equal(known[index], array):
            return None  # a label the estimator does not know, or unsorted classes
        encoded.append(index)
    return encoded, len(known)


def _weights(weight: Any) -> Any:
    import numpy as np

    return None if weight is None else np.asarray(weight, dtype=float)


def _fast_classification_scores(y: Any, y_pred: Any, weight: Any,
                                classes: Any) -> dict[str, float] | None:
    import numpy as np

    encoded = _encode(classes, y, y_pred)
    if encoded is None:
        return None
    (true, pred), k = encoded
    matrix = np.bincount(true * k + pred, weights=_weights(weight), minlength=k * k)
    matrix = matrix.reshape(k, k)
    hits, support, predicted = np.diag(matrix), matrix.sum(axis=1), matrix.sum(axis=0)
    total = support.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, hits / predicted, 0.0)
        recall = np.where(support > 0, hits / support, 0.0)
        f1 = np.where(support + predicted > 0, 2 * hits / (support + predicted), 0.0)
    return {"accuracy_score": float(hits.sum() / total),
            "precision_score": float((precision * support).sum() / total),
            "recall_score": float((recall * support).sum() / total),
            "f1_score": float((f1 * support).sum() / total)}


def probability_scores(y: Any, proba: Any, weight: Any, prefix: str,
                       classes: Any) -> dict[str, float]:
    """Log loss, and ROC AUC (binary; multiclass: one-vs-rest weighted by support)."""
    fast = attempt(lambda: _fast_probability_scores(y, proba, weight, classes))
    if fast is None:
        return _sklearn_probability_scores(y, proba, weight, prefix, classes)
    return {f"{prefix}{name}": value for name, value in fast.items()}


def _fast_probability_scores(y: Any, proba: Any, weight: Any,
                             classes: Any) -> dict[str, float] | None:
    import numpy as np

    encoded = _encode(classes, y)
    if encoded is None or getattr(proba, "ndim", 0) != 2 or proba.shape[1] != encoded[1] \
            or weight is not None:  # weighted AUC: scikit-learn's function
        return None
    (true,), k = encoded
    eps = np.finfo(proba.dtype).eps
    picked = np.clip(proba[np.arange(len(true)), true], eps, 1 - eps)
    metrics = {"log_loss": float(-np.mean(np.log(picked)))}
    if k == 2:
        auc = _auc(true == 1, proba[:, 1])
    else:
        aucs = [_auc(true == c, proba[:, c]) for c in range(k)]
        defined = [a for a in aucs if a is not None]
        auc = float(np.average(defined, weights=np.bincount(true, minlength=k))) \
            if len(defined) == k else None
    if auc is not None:
        metrics["roc_auc"] = auc
    return metrics


def _auc(positive: Any, scores: Any) -> float | None:
    """ROC AUC as the Mann-Whitney statistic (average ranks for ties); None if undefined."""
    from scipy.stats import rankdata

    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if not n_pos or not n_neg:
        return None
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _sklearn_probability_scores(y: Any, proba: Any, weight: Any, prefix: str,
                                classes: Any) -> dict[str, float]:
    from sklearn.metrics import log_loss, roc_auc_score

    metrics: dict[str, float] = {}
    put(metrics, f"{prefix}log_loss",
         lambda: log_loss(y, proba, sample_weight=weight, labels=classes))
    if getattr(proba, "ndim", 0) == 2 and proba.shape[1] == 2:
        put(metrics, f"{prefix}roc_auc",
             lambda: roc_auc_score(y, proba[:, 1], sample_weight=weight))
    else:
        put(metrics, f"{prefix}roc_auc",
             lambda: roc_auc_score(y, proba, sample_weight=weight, multi_class="ovr",
                                   average="weighted", labels=classes))
    return metrics


def regression_scores(y: Any, y_pred: Any, weight: Any, prefix: str) -> dict[str, float]:
    """MSE, RMSE, MAE and R² (1-D targets here; multi-output through scikit-learn)."""
    fast = attempt(lambda: _fast_regression_scores(y, y_pred, weight))
    if fast is None:
        return _sklearn_regression_scores(y, y_pred, weight, prefix)
    return {f"{prefix}{name}": value for name, value in fast.items()}


def _fast_regression_scores(y: Any, y_pred: Any, weight: Any) -> dict[str, float] | None:
    import numpy as np

    true, pred, weight = np.asarray(y), np.asarray(y_pred), _weights(weight)
    if true.ndim != 1 or pred.shape != true.shape or true.dtype.kind not in "biuf":
        return None
    error = pred - true
    mse = float(np.average(error**2, weights=weight))
    spread = float(np.average((true - np.average(true, weights=weight)) ** 2, weights=weight))
    r2 = (1 - mse / spread) if spread else (1.0 if not mse else 0.0)  # scikit-learn's choice
    return {"mean_squared_error": mse, "root_mean_squared_error": math.sqrt(mse),
            "mean_absolute_error": float(np.average(np.abs(error), weights=weight)),
            "r2_score": float(r2)}


def _sklearn_regression_scores(y: Any, y_pred: Any, weight: Any,
                               prefix: str) -> dict[str, float]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    metrics: dict[str, float] = {}
    mse = put(metrics, f"{prefix}mean_squared_error",
               lambda: mean_squared_error(y, y_pred, sample_weight=weight))
    if mse is not None:
        put(metrics, f"{prefix}root_mean_squared_error", lambda: _root_mse(y, y_pred, weight))
    put(metrics, f"{prefix}mean_absolute_error",
         lambda: mean_absolute_error(y, y_pred, sample_weight=weight))
    put(metrics, f"{prefix}r2_score", lambda: r2_score(y, y_pred, sample_weight=weight))
    return metrics


def _root_mse(y: Any, y_pred: Any, weight: Any) -> float:
    try:
        from sklearn.metrics import root_mean_squared_error
    except ImportError:  # scikit-learn < 1.4
        from sklearn.metrics import mean_squared_error

        return math.sqrt(mean_squared_error(y, y_pred, sample_weight=weight))
    return float(root_mean_squared_error(y, y_pred, sample_weight=weight))
