"""Which metrics matter most, and which way is better, read from their names.

A table of runs shows a few metrics per run (``autolog runs``' METRICS column, the web UI's
default columns); a search CV logs dozens (``split0_test_score``, ``std_fit_time``,
``rank_test_score``...). Headline metrics come first: validation and test quality metrics, then
training ones, then the rest; per-fold splits, spreads, ranks and system metrics never; times,
rates and counters only when nothing else was logged. ``autolog diff`` highlights the best value
of a metric when its name says the direction: losses and errors lower, accuracies and scores
higher.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["better", "direction", "headline"]

MINOR_TIER = 4
_WORDS = re.compile(r"[a-z0-9]+")
_NEVER = re.compile(r"^system/|(^|[^a-z])(split|fold)\d+([^a-z0-9]|$)|(^|[_/.])(std|rank)_")
#: quality words, most telling first
_QUALITY = ("acc", "accuracy", "auc", "roc", "f1", "score", "r2", "map", "ndcg", "precision",
            "recall", "iou", "dice", "bleu", "rouge", "loss", "logloss", "error", "rmse", "mse",
            "mae", "mape", "nll", "perplexity", "ppl", "wer", "cer", "deviance")
_HELD_OUT = ("val", "valid", "validation", "test", "eval", "dev", "holdout", "oob", "cv",
             "best")
_MINOR = ("time", "lr", "learning", "epoch", "step", "steps", "second", "per", "flos",
          "grad", "norm", "runtime", "samples", "memory", "count")
_LOWER = {"loss", "logloss", "error", "err", "rmse", "mse", "mae", "mape", "nll", "perplexity",
          "ppl", "wer", "cer", "deviance", "brier", "hamming"}
_HIGHER = {"acc", "accuracy", "auc", "roc", "f1", "score", "r2", "map", "ndcg", "precision",
           "recall", "iou", "dice", "bleu", "rouge", "top1", "top5", "kappa", "mcc"}


def _words(key: str) -> list[str]:
    return _WORDS.findall(key.lower())


def rank(key: str) -> tuple[int, int, int, str] | None:
    """Where ``key`` goes in the headline order (None: never a headline)."""
    if _NEVER.search(key.lower()):
        return None
    words = _words(key)
    quality = min((_QUALITY.index(w) for w in words if w in _QUALITY), default=len(_QUALITY))
    held_out = any(w in _HELD_OUT or w.startswith(("val", "test", "eval")) for w in words)
    minor = any(w in _MINOR for w in words) or (quality == len(_QUALITY) and not words)
    if minor:
        tier = MINOR_TIER
    elif quality < len(_QUALITY):
        tier = 0 if held_out else 1 if any(w.startswith("train") for w in words) else 2
    else:
        tier = 3
    return tier, quality, len(key), key


def headline(keys: Iterable[str], first: Iterable[str] = ()) -> list[str]:
    """``keys`` in headline order, leaving out what is never one; ``first`` (a sort key, a
    filter's metrics) goes before the rest when present."""
    keys = list(keys)
    chosen = [k for k in dict.fromkeys(first) if k in keys]
    ranked = sorted((r, k) for k in keys if k not in chosen and (r := rank(k)) is not None)
    if any(r[0] < MINOR_TIER for r, _ in ranked):  # times, rates, counts only when alone
        ranked = [(r, k) for r, k in ranked if r[0] < MINOR_TIER]
    return chosen + [k for _, k in ranked]


def direction(key: str) -> str | None:
    """``"min"`` when lower is better, ``"max"`` when higher is, None when the name does not
    say (a count, a time, a learning rate, a spread: ``mean_score_time``, ``std_test_score``)."""
    words = _words(key)
    if words[:1] == ["rank"]:  # rank_test_score: 1 is the best
        return "min"
    if words[:1] == ["std"] or any(w in _MINOR for w in words):  # a spread, a time
        return None
    lower = any(w in _LOWER for w in words)
    higher = any(w in _HIGHER for w in words)
    if "neg" in words:  # scikit-learn's neg_mean_squared_error: a score, higher is better
        lower, higher = False, lower or higher
    if lower and not higher:
        return "min"
    if higher and not lower:
        return "max"
    if lower and higher:  # error_score, loss_auc...: the last word decides
        last = next(w for w in reversed(words) if w in _LOWER | _HIGHER)
        return "min" if last in _LOWER else "max"
    return None


def better(key: str, values: list[float | None]) -> float | None:
    """The best of ``values`` for ``key`` (None when the direction is unknown, or no value)."""
    way = direction(key)
    numbers = [v for v in values if v is not None and v == v]
    if way is None or not numbers:
        return None
    return min(numbers) if way == "min" else max(numbers)
