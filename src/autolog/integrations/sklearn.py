"""scikit-learn: every estimator's ``fit``, ``fit_transform`` and ``fit_predict``, search CVs and
the cross-validation helpers, one run per outermost call.

What is patched, and when (see ``docs/integrations/sklearn.md`` for what is logged):

- when ``sklearn.base`` is imported: the three methods found in the ``__dict__`` of every class
  deriving from ``BaseEstimator`` (walking ``__subclasses__()``), and an ``__init_subclass__``
  that patches the classes defined later: scikit-learn's own lazily imported estimators and
  users' estimators alike. No ``all_estimators()``, which would import every submodule;
- when ``sklearn.model_selection`` is imported: ``cross_validate`` (which ``cross_val_score``
  calls), ``cross_val_predict``, ``learning_curve``, ``validation_curve`` and
  ``permutation_test_score``, so that the fits they make log one run, not one per fold.

Inner fits (a Pipeline's steps, a search's candidates, the folds of ``cross_validate``) pass
straight through: the patching session logs only the outermost training call. XGBoost's
estimators derive from ``BaseEstimator`` too; the xgboost integration records them, so they are
left alone here.
"""

from __future__ import annotations

import csv
import inspect
import io
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ..config import current
from ..datasets import fingerprint
from ..evaluation import log_plots
from ..hookspecs import hookimpl
from ..models import unpickle
from ..report import internal_error, warn_once
from ..runs import start_run
from ..scoring import (
    attempt,
    classification_scores,
    probability_scores,
    put,
    regression_scores,
)
from ..values import qualified_name, to_param_value
from .base import Integration, ScopedCall, subclasses

if TYPE_CHECKING:
    from ..patching import Patcher
    from ..run import Run

__all__ = ["SklearnIntegration", "training_metrics"]

METHODS = ("fit", "fit_transform", "fit_predict")
CV_HELPERS = ("cross_validate", "cross_val_predict", "learning_curve", "validation_curve",
              "permutation_test_score")
#: estimators of these packages are recorded by their own integration
OWNED_ELSEWHERE = ("xgboost",)
#: silhouette is O(n^2): it is computed on at most this many rows of the metrics sample
SILHOUETTE_ROWS = 2_000
SEED = 0


class SklearnIntegration(Integration):
    name = "sklearn"
    modules = ("sklearn.base", "sklearn.model_selection")
    distributions = ("scikit-learn",)
    supported = ">=1.3"

    def patch(self, patcher: Patcher, module: ModuleType) -> None:
        if module.__name__ == "sklearn.base":
            _patch_estimators(patcher, module)
        else:
            _patch_cv_helpers(patcher, module)


@hookimpl
def autolog_register_integrations(register: Callable[[Integration], None]) -> None:
    register(SklearnIntegration())


# -- patching -------------------------------------------------------------------------------------


def _patch_estimators(patcher: Patcher, base: ModuleType) -> None:
    """Patch the estimator classes that exist now, and hook class creation for the rest."""
    estimator = base.BaseEstimator
    for cls in subclasses(estimator):
        _patch_class(patcher, cls, estimator)
    # _SetOutputMixin.__init_subclass__ wraps fit_transform *after* calling super(): hooking it
    # too, and patching when the outermost hook returns, keeps autolog's wrapper outermost, so
    # disable() puts back scikit-learn's own wrapped method.
    for owner in (estimator, *_set_output_mixin()):
        patcher.set(owner, "__init_subclass__", _init_subclass_hook(patcher, owner, estimator))


def _set_output_mixin() -> tuple[type, ...]:
    try:
        from sklearn.utils._set_output import _SetOutputMixin
    except ImportError:  # a scikit-learn without set_output
        return ()
    return (_SetOutputMixin,)


def _patch_class(patcher: Patcher, cls: type, estimator: type) -> None:
    if not issubclass(cls, estimator) or _owned_elsewhere(cls):
        return
    for method in METHODS:
        if vars(cls).get(method) is not None:
            patcher.training(cls, method, _CALLS[method])


def _owned_elsewhere(cls: type) -> bool:
    return any(getattr(c, "__module__", "").partition(".")[0] in OWNED_ELSEWHERE
               for c in cls.__mro__)


_creating = threading.local()  # class -> depth of hooked __init_subclass__ calls in progress


def _init_subclass_hook(patcher: Patcher, owner: type, estimator: type) -> Any:
    """An ``__init_subclass__`` for ``owner`` that chains to the original, then patches ``cls``.

    Only the outermost hooked call patches, after every ``__init_subclass__`` in the chain ran.
    """
    original = vars(owner).get("__init_subclass__")

    def __init_subclass__(cls: type, **kwargs: Any) -> None:
        depths = _creating.__dict__.setdefault("depths", {})
        depth = depths.get(cls, 0)
        depths[cls] = depth + 1
        try:
            if original is not None:
                original.__get__(None, cls)(**kwargs)
            else:
                super(owner, cls).__init_subclass__(**kwargs)  # type: ignore[arg-type]
        finally:
            if depth:
                depths[cls] = depth
            else:
                del depths[cls]
        if not depth:
            _patch_new_class(patcher, cls, estimator)

    return classmethod(__init_subclass__)


def _patch_new_class(patcher: Patcher, cls: type, estimator: type) -> None:
    try:
        _patch_class(patcher, cls, estimator)
    except Exception as exc:
        internal_error("patching a scikit-learn estimator class", exc)


def _patch_cv_helpers(patcher: Patcher, package: ModuleType) -> None:
    """Both the defining module and the package's re-exports: each keeps its own original."""
    validation = sys.modules["sklearn.model_selection._validation"]
    for owner in (validation, package):
        for name in CV_HELPERS:
            if hasattr(owner, name):
                patcher.training(owner, name, _HELPER_CALLS.get(name, _CvHelper))


# -- one fit ------------------------------------------------------------------------------------


class _Fit(ScopedCall):
    """``estimator.fit(X, y)``: params before, training metrics, search results and model after."""

    place = "sklearn autologging"
    method = "fit"

    def before(self) -> None:
        estimator = self.instance
        run = self.open(default_name=type(estimator).__name__, tags=estimator_tags(estimator))
        if run.active:
            run.log_params(estimator_params(estimator))
            if run.settings.log_datasets:
                x, y, _ = _bind_data(type(estimator), self.method, estimator, self.args,
                                     self.kwargs)
                run.set_tags(fingerprint("training", x, y))

    def log_results(self, run: Run, result: Any) -> None:
        settings = current()
        estimator = self.instance
        x, y, weight = _bind_data(type(estimator), self.method, estimator, self.args,
                                  self.kwargs)
        if x is not None:
            seen: dict[str, Any] = {}
            run.log_metrics(training_metrics(estimator, x, y, weight,
                                             settings.metrics_sample_rows, seen))
            if settings.log_plots and seen:
                log_plots(run, "training", **seen)
        if hasattr(estimator, "cv_results_"):
            log_search_results(run, estimator, settings.max_child_runs)
        if settings.log_models:
            run.log_model(estimator)


class _FitTransform(_Fit):
    method = "fit_transform"


class _FitPredict(_Fit):
    method = "fit_predict"


_CALLS: dict[str, type[_Fit]] = {"fit": _Fit, "fit_transform": _FitTransform,
                                 "fit_predict": _FitPredict}


@lru_cache(maxsize=512)
def _data_signature(cls: type, method: str) -> tuple[inspect.Signature, str | None, str | None]:
    """The method's signature and the names of its X and y parameters (the first two)."""
    signature = inspect.signature(getattr(cls, method))
    positional = [p.name for p in signature.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)][1:3]
    positional += [None] * (2 - len(positional))  # type: ignore[list-item]
    return signature, positional[0], positional[1]


def _bind_data(cls: type, method: str, instance: Any, args: tuple[Any, ...],
               kwargs: dict[str, Any]) -> tuple[Any, Any, Any]:
    """``(X, y, sample_weight)`` of a call, bound like Python binds them."""
    signature, x_name, y_name = _data_signature(cls, method)
    try:
        bound = signature.bind_partial(instance, *args, **kwargs).arguments
    except TypeError:
        return None, None, None
    weight = bound.get("sample_weight")
    for param in signature.parameters.values():
        if weight is None and param.kind is param.VAR_KEYWORD:  # fit(X, y, **fit_params)
            weight = bound.get(param.name, {}).get("sample_weight")
    return bound.get(x_name) if x_name else None, bound.get(y_name) if y_name else None, weight


# -- params and tags --------------------------------------------------------------------------


def estimator_tags(estimator: Any) -> dict[str, str]:
    cls = type(estimator)
    return {"estimator_name": cls.__name__, "estimator_class": qualified_name(cls)}


def estimator_params(estimator: Any) -> dict[str, Any]:
    """``get_params(deep=True)`` with estimator objects as their class name, sequences as JSON.

    Nested estimators' own params come through ``deep=True`` (``clf__C``, ``estimator__C``).
    An estimator whose ``get_params`` fails (a broken custom class) is logged without params.
    """
    try:
        with _quiet():
            params = estimator.get_params(deep=True)
    except Exception as exc:
        name = type(estimator).__qualname__
        warn_once(f"sklearn get_params {name}",
                  f"autolog: {name}.get_params() raised {type(exc).__name__}: {exc}; its runs "
                  f"are logged without params", stacklevel=2)
        return {}
    return {key: to_param_value(value) for key, value in params.items()}


# -- training metrics ------------------------------------------------------------------------


def training_metrics(estimator: Any, x: Any, y: Any, sample_weight: Any = None,
                     max_rows: int = 100_000,
                     predictions: dict[str, Any] | None = None) -> dict[str, float]:
    """Metrics of the fitted ``estimator`` on (at most ``max_rows`` of) its training data.

    A metric that does not apply (no ``predict_proba``, a single class in the sample, a
    multi-output target) is left out; the computation never warns. ``predictions`` receives
    what the metrics were computed from (``task``, ``y``, ``y_pred``, ``proba``, ``classes``),
    for the evaluation plots.
    """
    from sklearn.base import is_classifier, is_regressor

    if max_rows <= 0:
        return {}
    full_x = x
    x, y, sample_weight = sample_rows(max_rows, x, y, sample_weight)
    with _quiet():
        seen = {} if predictions is None else predictions
        if y is not None and is_classifier(estimator):
            metrics = _classifier_metrics(estimator, x, y, sample_weight, seen)
        elif y is not None and is_regressor(estimator):
            metrics = _regressor_metrics(estimator, x, y, sample_weight, seen)
        elif _is_clusterer(estimator):
            metrics = _clusterer_metrics(estimator, full_x, x)
        else:
            metrics = {}
        if "training_score" not in metrics and callable(getattr(estimator, "score", None)):
            put(metrics, "training_score", lambda: _score(estimator, x, y, sample_weight))
    return metrics


def _is_clusterer(estimator: Any) -> bool:
    """Version difference: ``sklearn.base.is_clusterer`` is new in scikit-learn 1.6; before it,
    the ``_estimator_type`` class attribute it reads (through the estimator's tags) said so."""
    import sklearn.base

    is_clusterer = getattr(sklearn.base, "is_clusterer", None)
    if is_clusterer is not None:
        return bool(is_clusterer(estimator))
    return getattr(estimator, "_estimator_type", None) == "clusterer"


def sample_rows(max_rows: int, x: Any, *arrays: Any) -> tuple[Any, ...]:
    """``x`` and ``arrays`` (None allowed) cut to ``max_rows`` rows, a fixed-seed sample."""
    from sklearn.utils import _safe_indexing
    from sklearn.utils.validation import _num_samples

    try:
        n = _num_samples(x)
    except TypeError:
        return (x, *arrays)
    if n <= max_rows:
        return (x, *arrays)
    import numpy as np

    rows = np.sort(np.random.default_rng(SEED).choice(n, size=max_rows, replace=False))
    return tuple(None if a is None else _safe_indexing(a, rows) for a in (x, *arrays))


@contextmanager
def _quiet() -> Iterator[None]:
    """Metrics on training data warn (undefined precision, a constant column...): not ours."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _classifier_metrics(estimator: Any, x: Any, y: Any, weight: Any,
                        seen: dict[str, Any]) -> dict[str, float]:
    from sklearn.base import ClassifierMixin

    y_pred = attempt(lambda: estimator.predict(x))
    if y_pred is None:
        return {}
    classes = getattr(estimator, "classes_", None)
    metrics = classification_scores(y, y_pred, weight, "training_", classes)
    proba = None
    if hasattr(estimator, "predict_proba"):
        proba = attempt(lambda: estimator.predict_proba(x))
        if proba is not None:
            metrics.update(probability_scores(y, proba, weight, "training_", classes))
    seen.update(task="classifier", y=y, y_pred=y_pred, proba=proba, classes=classes)
    if getattr(type(estimator), "score", None) is ClassifierMixin.score and \
            "training_accuracy_score" in metrics:
        metrics["training_score"] = metrics["training_accuracy_score"]  # the same number
    return metrics

def _regressor_metrics(estimator: Any, x: Any, y: Any, weight: Any,
                       seen: dict[str, Any]) -> dict[str, float]:
    from sklearn.base import RegressorMixin

    y_pred = attempt(lambda: estimator.predict(x))
    if y_pred is None:
        return {}
    seen.update(task="regressor", y=y, y_pred=y_pred)
    metrics = regression_scores(y, y_pred, weight, "training_")
    if getattr(type(estimator), "score", None) is RegressorMixin.score and \
            "training_r2_score" in metrics:
        metrics["training_score"] = metrics["training_r2_score"]  # the same number
    return metrics


def _clusterer_metrics(estimator: Any, full_x: Any, x: Any) -> dict[str, float]:
    """Silhouette on at most SILHOUETTE_ROWS rows (it is quadratic in the rows)."""
    from sklearn.metrics import silhouette_score

    metrics: dict[str, float] = {}
    labels = getattr(estimator, "labels_", None)
    if labels is None or getattr(labels, "ndim", 1) != 1:
        full_x, labels = x, attempt(lambda: estimator.predict(x))
    if labels is not None:
        rows = min(SILHOUETTE_ROWS, len(labels))
        put(metrics, "training_silhouette_score",
             lambda: silhouette_score(full_x, labels, sample_size=rows, random_state=SEED))
    return metrics


def _score(estimator: Any, x: Any, y: Any, weight: Any) -> Any:
    args = (x,) if y is None else (x, y)
    if weight is not None and "sample_weight" in inspect.signature(estimator.score).parameters:
        return estimator.score(*args, sample_weight=weight)
    return estimator.score(*args)


# -- search CVs ---------------------------------------------------------------------------------


def log_search_results(run: Run, search: Any, max_child_runs: int) -> None:
    """best_<param> params, best_score, cv_results.csv, and a child run per top candidate."""
    results = search.cv_results_
    best = getattr(search, "best_params_", None)
    if isinstance(best, Mapping):
        run.log_params({f"best_{key}": to_param_value(value) for key, value in best.items()})
    best_score = getattr(search, "best_score_", None)
    if best_score is not None:
        run.log_metrics({"best_score": best_score})
    run.log_text_artifact(cv_results_csv(results), "cv_results.csv")
    for index in top_candidates(results, getattr(search, "refit", None), max_child_runs):
        _log_candidate(run, results, index)


def cv_results_csv(results: Mapping[str, Any]) -> str:
    """``cv_results_`` as CSV (stdlib ``csv``, no pandas): one row per candidate."""
    columns = list(results)
    count = len(results["params"])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for index in range(count):
        writer.writerow([_csv_cell(results[column], index) for column in columns])
    return out.getvalue()


def _csv_cell(column: Any, index: int) -> Any:
    mask = getattr(column, "mask", None)
    if mask is not None and bool(getattr(mask, "ndim", 0)) and bool(mask[index]):
        return ""  # a masked param: not part of this candidate's grid
    return to_param_value(column[index])


def top_candidates(results: Mapping[str, Any], refit: Any, limit: int) -> list[int]:
    """Indices of the best ``limit`` candidates by rank (ties keep the candidates' order)."""
    if limit <= 0:
        return []
    rank_key = "rank_test_score"
    if rank_key not in results:
        keys = [k for k in results if k.startswith("rank_test_")]
        named = f"rank_test_{refit}"
        rank_key = named if isinstance(refit, str) and named in results else \
            (keys[0] if keys else "")
    count = len(results["params"])
    ranks = results.get(rank_key)
    order = (sorted(range(count), key=lambda i: (int(ranks[i]), i)) if ranks is not None
             else list(range(count)))
    return order[:limit]


def _log_candidate(parent: Run, results: Mapping[str, Any], index: int) -> None:
    tags = {"autolog.parent_run_id": parent.id, "candidate_index": str(index)}
    with start_run(f"{parent.name}-candidate-{index}", tags=tags, parent=parent) as child:
        child.log_params({k: to_param_value(v) for k, v in results["params"][index].items()})
        metrics = {}
        for key, column in results.items():
            if key == "params" or key.startswith("param_"):
                continue
            value = column[index]
            if isinstance(value, int | float) or hasattr(value, "dtype"):
                metrics[key] = value
        child.log_metrics(metrics)


# -- cross-validation helpers ----------------------------------------------------------------


class _CvHelper(ScopedCall):
    """``cross_validate(estimator, X, y, ...)`` and friends: one run, the folds pass through."""

    place = "sklearn cross-validation autologging"
    function = "learning_curve"

    def before(self) -> None:
        self.bound = _bind_helper(self.function, self.args, self.kwargs)
        estimator = self.bound.get("estimator")
        tags = {**estimator_tags(estimator), "sklearn_function": self.function}
        run = self.open(default_name=self.function, tags=tags)
        if run.active:
            params = estimator_params(estimator) if hasattr(estimator, "get_params") else {}
            cv = self.bound.get("cv")
            params["cv"] = to_param_value(cv) if cv is None or isinstance(cv, int) else \
                type(cv).__name__
            scoring = self.bound.get("scoring")
            if isinstance(scoring, str | list | tuple):
                params["scoring"] = to_param_value(scoring)
            run.log_params(params)

    def log_results(self, run: Run, result: Any) -> None:
        run.log_metrics(self.result_metrics(run, result))

    def result_metrics(self, run: Run, result: Any) -> dict[str, float]:
        return {}


def _helper_call(name: str, base: type[_CvHelper] = _CvHelper) -> type[_CvHelper]:
    return type(f"_{name}", (base,), {"function": name})


class _CrossValidate(_CvHelper):
    """Fold scores with step = fold, and their mean and std: ``cv_test_score_mean``..."""

    def result_metrics(self, run: Run, result: Any) -> dict[str, float]:
        import numpy as np

        metrics: dict[str, float] = {}
        for key, values in result.items():
            if key in ("estimator", "indices"):
                continue
            array = np.asarray(values, dtype=float)
            for fold, value in enumerate(array):
                run.log_metrics({f"cv_{key}": value}, step=fold)
            metrics[f"cv_{key}_mean"] = float(array.mean())
            metrics[f"cv_{key}_std"] = float(array.std())
        return metrics


class _CrossValPredict(_CvHelper):
    """Out-of-fold predictions scored against y: ``cv_accuracy_score``, ``cv_r2_score``..."""

    def result_metrics(self, run: Run, result: Any) -> dict[str, float]:
        from sklearn.base import is_classifier, is_regressor

        estimator, y = self.bound.get("estimator"), self.bound.get("y")
        if y is None or self.bound.get("method", "predict") != "predict":
            return {}
        with _quiet():
            if is_classifier(estimator):
                return classification_scores(y, result, None, "cv_")
            if is_regressor(estimator):
                return regression_scores(y, result, None, "cv_")
        return {}


_HELPER_CALLS: dict[str, type[_CvHelper]] = {
    "cross_validate": _helper_call("cross_validate", _CrossValidate),
    "cross_val_predict": _helper_call("cross_val_predict", _CrossValPredict),
    **{name: _helper_call(name) for name in ("learning_curve", "validation_curve",
                                             "permutation_test_score")},
}


def _bind_helper(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    validation = sys.modules["sklearn.model_selection._validation"]
    try:
        return dict(_helper_signature(validation, name).bind_partial(*args, **kwargs).arguments)
    except TypeError:
        return {}


@lru_cache(maxsize=16)
def _helper_signature(module: ModuleType, name: str) -> inspect.Signature:
    return inspect.signature(getattr(module, name))


# -- models ------------------------------------------------------------------------------------


@hookimpl
def autolog_save_model(model: Any, path: Path, options: dict[str, Any]) -> dict[str, Any] | None:
    """An estimator (not XGBoost's): pickled, with the scikit-learn version in the spec."""
    base = sys.modules.get("sklearn.base")
    if base is None or not isinstance(model, base.BaseEstimator) or \
            _owned_elsewhere(type(model)):
        return None
    import pickle

    import sklearn

    protocol = int(options.get("pickle_protocol", pickle.DEFAULT_PROTOCOL))
    cls = type(model)
    try:
        data = pickle.dumps(model, protocol=protocol)
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        warn_once(f"sklearn pickle {cls.__qualname__}",
                  f"autolog: the fitted {cls.__qualname__} cannot be pickled, so no model was "
                  f"saved with its run ({type(exc).__name__}: {exc}); define the class at "
                  f"module level to have it saved", stacklevel=2)
        return None
    (path / "model.pkl").write_bytes(data)
    return {"flavor": "sklearn", "format": "pickle", "framework_version": sklearn.__version__,
            "class": qualified_name(cls), "file": "model.pkl",
            "pickle_protocol": protocol}


@hookimpl
def autolog_load_model(spec: dict[str, Any], path: Path) -> Any:
    if spec.get("flavor") != "sklearn":
        return None
    return unpickle((path / spec.get("file", "model.pkl")).read_bytes(), spec, path)
