"""XGBoost: the native ``xgboost.train`` and the scikit-learn API (``XGBModel.fit`` and its
subclasses: XGBClassifier, XGBRegressor, XGBRanker, the random-forest variants).

What is patched (see ``docs/integrations/xgboost.md`` for what is logged):

- ``xgboost.train`` and ``xgboost.training.train``: a training call that logs the booster params
  and training arguments, and adds an :class:`autolog callback <_callback_class>` to a copy of the
  callbacks it is given (the user's list is never touched);
- ``xgboost.cv`` and ``xgboost.training.cv``: one run with the params and, from the table it
  returns, each metric's mean and std across folds per iteration (its folds do not call
  ``train``: no nested runs to avoid);
- ``fit`` in the ``__dict__`` of ``XGBModel`` and of each of its subclasses: a training call that
  logs the estimator's params;
- ``xgboost.sklearn.train`` (the name the scikit-learn API calls): a raw wrapper that adds the
  same callback while an autologged ``fit`` is in progress in this context. The fit's run gets
  the per-iteration metrics; there is one run, not two, because the patching session makes the
  nested ``train`` pass straight through.
"""

from __future__ import annotations

import contextvars
import inspect
import sys
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ..config import current
from ..datasets import fingerprint
from ..evaluation import log_plots, sample_rows
from ..hookspecs import hookimpl
from ..raster import Raster, text_width
from ..report import internal_error
from ..values import qualified_name, resolve_name
from .base import Integration, ScopedCall, subclasses

if TYPE_CHECKING:
    from ..patching import Patcher
    from ..run import Run

__all__ = ["XGBoostIntegration", "autolog_callback"]

IMPORTANCE_TYPES = ("weight", "gain", "cover")
#: the bar chart shows at most this many features per importance type
CHART_FEATURES = 20
BAR_WIDTH = 200
ROW_HEIGHT = 19
#: ``xgboost.train`` arguments that are data, callables or objects, not params
NOT_PARAMS = frozenset({"params", "dtrain", "evals", "obj", "evals_result", "xgb_model",
                        "callbacks", "custom_metric", "feval"})
#: ``xgboost.cv`` arguments that are data, callables, objects or display options, not params
NOT_CV_PARAMS = NOT_PARAMS | {"folds", "fpreproc", "as_pandas", "show_stdv"}

_fit_in_progress: contextvars.ContextVar[_SklearnFit | None] = contextvars.ContextVar(
    "autolog_xgboost_fit", default=None)


class XGBoostIntegration(Integration):
    name = "xgboost"
    modules = ("xgboost",)
    distributions = ("xgboost", "xgboost-cpu")
    supported = ">=2.0"

    def patch(self, patcher: Patcher, module: ModuleType) -> None:
        import xgboost.sklearn
        import xgboost.training

        patcher.training(module, "train", _Train)
        patcher.training(xgboost.training, "train", _Train)
        patcher.training(module, "cv", _CV)
        patcher.training(xgboost.training, "cv", _CV)
        patcher.wrap(xgboost.sklearn, "train", _train_inside_fit)
        for cls in (xgboost.sklearn.XGBModel, *subclasses(xgboost.sklearn.XGBModel)):
            if "fit" in vars(cls):
                patcher.training(cls, "fit", _SklearnFit)


@hookimpl
def autolog_register_integrations(register: Callable[[Integration], None]) -> None:
    register(XGBoostIntegration())


# -- the callback --------------------------------------------------------------------------------


def autolog_callback(run: Run) -> Any:
    """A ``TrainingCallback`` logging each eval set's metrics as ``<eval>-<metric>`` at
    step = iteration (``train-rmse``, ``validation_0-logloss``)."""
    return _callback_class()(run)


@lru_cache(maxsize=1)
def _callback_class() -> type:
    from xgboost.callback import TrainingCallback

    class AutologCallback(TrainingCallback):
        def __init__(self, run: Run):
            super().__init__()
            self.run = run
            self._history: Any = None  # xgboost's evaluation log, shared by every callback
            self._epoch, self._seen = -1, 0

        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            self._history, self._epoch, self._seen = evals_log, epoch, self._seen + 1
            metrics = _scores(evals_log, -1)
            if metrics:
                self.run.log_metrics(metrics, step=epoch)
            return False

        def after_training(self, model: Any) -> Any:
            # xgboost stops calling after_iteration at the first callback that returns True
            # (dmlc/xgboost#11811): the last iteration misses us when a callback before ours
            # stops training, which on older xgboost (2.0: callbacks kept in a set) can be its
            # own EarlyStopping. Its scores are in the log every callback shares: log them here.
            missed = _iterations(self._history) - self._seen
            for back in range(missed, 0, -1):
                self.run.log_metrics(_scores(self._history, -back),
                                     step=self._epoch + missed - back + 1)
            return model

    return AutologCallback


def _scores(evals_log: Any, index: int) -> dict[str, float]:
    """``{"<eval>-<metric>": value}`` of one iteration of xgboost's evaluation log (a cv
    entry is ``(mean, std)``: the mean)."""
    metrics = {}
    for data, scores in evals_log.items():
        for metric, history in scores.items():
            value = history[index]
            metrics[f"{data}-{metric}"] = value[0] if isinstance(value, tuple) else value
    return metrics


def _iterations(evals_log: Any) -> int:
    """How many iterations xgboost's evaluation log holds (0 when none or empty)."""
    for scores in (evals_log or {}).values():
        for history in scores.values():
            return len(history)
    return 0


def _with_callback(callbacks: Any, run: Run) -> list[Any]:
    """A new list: the user's callbacks, then autolog's."""
    return [*(callbacks or ()), autolog_callback(run)]


# -- native API ----------------------------------------------------------------------------------


class _NativeCall(ScopedCall):
    place = "xgboost autologging"


class _Train(_NativeCall):
    """``xgboost.train(params, dtrain, ...)``: params before; callback; results after."""

    def before(self) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
        try:
            bound = _train_signature().bind(*self.args, **self.kwargs)
        except TypeError:
            return None  # xgboost.train raises its own error for these arguments: no run
        run = self.open(default_name="Booster", tags={"estimator_name": "Booster",
                                                       "estimator_class": "xgboost.core.Booster"})
        if not run.active:
            return None
        run.log_params(train_params(bound.arguments))
        if run.settings.log_datasets:
            run.set_tags(_native_datasets(bound.arguments))
        bound.arguments["callbacks"] = _with_callback(bound.arguments.get("callbacks"), run)
        return bound.args, bound.kwargs

    def log_results(self, run: Run, result: Any) -> None:
        log_booster_results(run, result, result)


def _native_datasets(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Fingerprints of ``dtrain`` and each ``evals`` entry, under the names given them."""
    params = fingerprint("training", arguments.get("dtrain"))
    for pair in arguments.get("evals") or ():
        if isinstance(pair, tuple | list) and len(pair) == 2 and pair[0] is not \
                arguments.get("dtrain"):
            params.update(fingerprint(str(pair[1]), pair[0]))
    return params


@lru_cache(maxsize=1)
def _train_signature() -> inspect.Signature:
    import xgboost.training

    return inspect.signature(xgboost.training.train)


def train_params(arguments: Mapping[str, Any],
                 excluded: frozenset[str] = NOT_PARAMS) -> dict[str, Any]:
    """Booster params plus ``num_boost_round``, early stopping and the other plain arguments."""
    params = _booster_params(arguments.get("params"))
    params["num_boost_round"] = arguments.get("num_boost_round", 10)
    for key, value in arguments.items():
        if key not in excluded and key != "num_boost_round" and not callable(value):
            params[key] = value
    return params


class _CV(_NativeCall):
    """``xgboost.cv(params, dtrain, ...)``: params before; per-iteration fold means and stds
    after, from the table it returns."""

    early_stopping = False

    def before(self) -> None:
        try:
            bound = _cv_signature().bind(*self.args, **self.kwargs)
        except TypeError:
            return  # xgboost.cv raises its own error for these arguments: no run
        bound.apply_defaults()  # nfold, stratified, seed...: how the folds were made
        self.early_stopping = bound.arguments.get("early_stopping_rounds") is not None
        tags = {"estimator_name": "Booster", "estimator_class": "xgboost.core.Booster",
                "xgboost.call": "cv"}
        run = self.open(default_name="xgboost.cv", tags=tags)
        if run.active:
            run.log_params(train_params(bound.arguments, NOT_CV_PARAMS))

    def log_results(self, run: Run, result: Any) -> None:
        log_cv_results(run, result, self.early_stopping)


@lru_cache(maxsize=1)
def _cv_signature() -> inspect.Signature:
    import xgboost.training

    return inspect.signature(xgboost.training.cv)


def log_cv_results(run: Run, result: Any, early_stopping: bool) -> None:
    """``xgboost.cv``'s table (a DataFrame, or a dict of lists with ``as_pandas=False``): each
    column, ``test-rmse-mean``, ``train-auc-std``..., at step = iteration. With early stopping
    the table ends at the best iteration, which is logged with its score."""
    columns = {str(name): [float(v) for v in result[name]] for name in result}
    rounds = max((len(values) for values in columns.values()), default=0)
    for step in range(rounds):
        run.log_metrics({name: values[step] for name, values in columns.items()
                         if step < len(values)}, step=step)
    if early_stopping and rounds:
        best = {"best_iteration": float(rounds - 1)}
        tested = [name for name in columns if name.startswith("test-") and name.endswith("-mean")]
        if tested:
            best["best_score"] = columns[tested[-1]][-1]  # the last metric is the one that stops
        run.log_metrics(best)


def _booster_params(raw: Any) -> dict[str, Any]:
    """``params`` as a dict; a list of pairs may repeat a key (several ``eval_metric``)."""
    if isinstance(raw, Mapping):
        return {k: v for k, v in raw.items() if not callable(v)}
    params: dict[str, Any] = {}
    for key, value in raw or ():
        if key in params:
            previous = params[key]
            params[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            params[key] = value
    return params


# -- scikit-learn API ------------------------------------------------------------------------


class _SklearnFit(ScopedCall):
    """``XGBClassifier().fit(X, y, eval_set=...)``: one run; the inner train adds the callback."""

    place = "xgboost autologging"

    def before(self) -> None:
        estimator = self.instance
        cls = type(estimator)
        tags = {"estimator_name": cls.__name__, "estimator_class": qualified_name(cls)}
        run = self.open(default_name=cls.__name__, tags=tags)
        if run.active:
            run.log_params(estimator_params(estimator))
            if run.settings.log_datasets:
                run.set_tags(dataset_tags(_fit_data(estimator, self.args, self.kwargs)))
            self.token = _fit_in_progress.set(self)

    def after(self, result: Any) -> None:
        self._leave()
        super().after(result)

    def failed(self, exc: BaseException) -> None:
        self._leave()
        super().failed(exc)

    def log_results(self, run: Run, result: Any) -> None:
        log_booster_results(run, self.instance.get_booster(), self.instance)
        settings = current()
        if settings.log_plots:
            data = _fit_data(self.instance, self.args, self.kwargs)
            log_evaluation_plots(run, self.instance, data, settings.metrics_sample_rows)

    def _leave(self) -> None:
        token = self.__dict__.pop("token", None)
        if token is not None:
            _fit_in_progress.reset(token)


def _fit_data(estimator: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """``{"training": (X, y), "validation_0": (X, y), ...}`` from a ``fit`` call's arguments."""
    try:
        bound = inspect.signature(type(estimator).fit).bind(estimator, *args, **kwargs)
    except TypeError:
        return {}
    found = {"training": (bound.arguments.get("X"), bound.arguments.get("y"))}
    for i, pair in enumerate(bound.arguments.get("eval_set") or ()):
        if isinstance(pair, tuple | list) and len(pair) == 2:
            found[f"validation_{i}"] = (pair[0], pair[1])
    return found


def dataset_tags(data: Mapping[str, tuple[Any, Any]]) -> dict[str, Any]:
    tags: dict[str, Any] = {}
    for name, (x, y) in data.items():
        tags.update(fingerprint(name, x, y))
    return tags


def log_evaluation_plots(run: Run, estimator: Any, data: Mapping[str, tuple[Any, Any]],
                         max_rows: int) -> None:
    """Confusion matrix, ROC and precision-recall curves of a classifier, predicted-vs-true and
    residuals of a regressor, on the training data and each eval set (at most ``max_rows`` rows
    each, a fixed-seed sample)."""
    import xgboost

    if isinstance(estimator, xgboost.XGBClassifier | xgboost.XGBRFClassifier):
        task = "classifier"
    elif isinstance(estimator, xgboost.XGBRegressor | xgboost.XGBRFRegressor):
        task = "regressor"
    else:
        return  # a ranker: no single target to plot against
    for name, (x, y) in data.items():
        if x is None or y is None or max_rows <= 0:
            continue
        x, y = sample_rows(max_rows, x, y)
        y_pred = estimator.predict(x)
        proba = estimator.predict_proba(x) if task == "classifier" else None
        log_plots(run, name, task, _flat(y), y_pred, proba, getattr(estimator, "classes_", None))


def _flat(y: Any) -> Any:
    import numpy as np

    values = y.to_numpy() if hasattr(y, "to_numpy") else np.asarray(y)
    return values.ravel() if values.ndim == 2 and values.shape[1] == 1 else values


def estimator_params(estimator: Any) -> dict[str, Any]:
    """``get_params()`` without callbacks and callables (a custom objective or metric)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        params = estimator.get_params()
    return {key: value for key, value in params.items()
            if key != "callbacks" and not callable(value)}


def _train_inside_fit(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                      kwargs: dict[str, Any]) -> Any:
    """The scikit-learn API's ``train``: add the callback of the fit in progress, if any."""
    fit = _fit_in_progress.get()
    if fit is None or fit.scope is None:
        return wrapped(*args, **kwargs)
    try:
        bound = _train_signature().bind(*args, **kwargs)
        bound.arguments["callbacks"] = _with_callback(bound.arguments.get("callbacks"),
                                                      fit.scope.run)
        args, kwargs = bound.args, bound.kwargs
    except Exception as exc:
        internal_error(fit.place, exc)
    return wrapped(*args, **kwargs)


# -- after training --------------------------------------------------------------------------


def log_booster_results(run: Run, booster: Any, model: Any) -> None:
    """Early-stopping results, feature importance, and the model (``model``: what to save)."""
    best = {key: booster.attr(key) for key in ("best_iteration", "best_score")}
    run.log_metrics({key: float(value) for key, value in best.items() if value is not None})
    if current().log_models:
        run.log_model(model)
    importance = feature_importance(booster)
    if importance:
        run.log_dict(importance, "feature_importance.json")
        _log_chart(run, importance)


def feature_importance(booster: Any) -> dict[str, dict[str, float]]:
    """``{"weight": {feature: value}, "gain": ..., "cover": ...}`` (types a booster has)."""
    found = {}
    for kind in IMPORTANCE_TYPES:
        try:
            scores = booster.get_score(importance_type=kind)
        except Exception:  # gblinear has weight only
            continue
        if scores:
            found[kind] = {name: float(value) for name, value in scores.items()}
    return found


def _log_chart(run: Run, importance: dict[str, dict[str, float]]) -> None:
    """``feature_importance/feature_importance.png``, drawn on the journal writer's thread
    (``importance`` is this call's own: nothing changes it afterwards)."""
    run.log_artifact_deferred("feature_importance/feature_importance.png",
                              lambda: chart(importance))


def chart(importance: dict[str, dict[str, float]]) -> bytes:
    """A PNG bar chart per importance type, top features first.

    Drawn on an :mod:`autolog.raster` palette image (white, black, blue) in about a
    millisecond: matplotlib takes 150-500 ms for this chart, more than the whole 5 % budget of a
    typical training, and Pillow's import alone is 10-15 ms.
    """
    labels = {name[:28] for scores in importance.values() for name in scores}
    label_width = max(text_width(label) for label in labels) + 12
    panel = label_width + BAR_WIDTH + 20
    rows = min(CHART_FEATURES, max(len(scores) for scores in importance.values()))
    image = Raster(panel * len(importance), 30 + rows * ROW_HEIGHT, 0)
    for i, (kind, scores) in enumerate(importance.items()):
        left = i * panel + label_width
        top = sorted(scores.items(), key=lambda item: -item[1])[:CHART_FEATURES]
        largest = top[0][1] or 1.0
        image.text((left, 6), f"importance: {kind} (max {largest:.4g})", 1)
        for row, (name, value) in enumerate(top):
            y = 26 + row * ROW_HEIGHT
            image.rectangle((left, y, left + max(1, round(BAR_WIDTH * value / largest)),
                             y + ROW_HEIGHT - 5), fill=2)
            label = name[:28]
            image.text((left - 4 - text_width(label), y), label, 1)
    return image.png(bytes([255, 255, 255, 0, 0, 0, 31, 119, 180]))


# -- models ------------------------------------------------------------------------------------


@hookimpl
def autolog_save_model(model: Any, path: Path, options: dict[str, Any]) -> dict[str, Any] | None:
    """A Booster or an XGBModel, in XGBoost's own format (``ubj``; ``format="json"`` too)."""
    xgb = sys.modules.get("xgboost")
    if xgb is None or not isinstance(model, xgb.Booster | xgb.XGBModel):
        return None
    fmt = options.get("format", "ubj")
    if fmt not in ("ubj", "json"):
        raise ValueError(f"xgboost models are saved as 'ubj' or 'json', not {fmt!r}")
    file = f"model.{fmt}"
    model.save_model(str(path / file))
    cls = type(model)
    spec = {"flavor": "xgboost", "format": fmt, "framework_version": xgb.__version__,
            "file": file, "api": "native" if isinstance(model, xgb.Booster) else "sklearn",
            "class": qualified_name(cls)}
    if spec["api"] == "sklearn":
        base = next(c for c in cls.__mro__ if c.__module__.startswith("xgboost."))
        spec["xgboost_class"] = qualified_name(base)
    return spec


@hookimpl
def autolog_load_model(spec: dict[str, Any], path: Path) -> Any:
    """A Booster (native API) or an instance of the estimator class that was saved."""
    if spec.get("flavor") != "xgboost":
        return None
    import xgboost

    file = str(path / spec.get("file", "model.ubj"))
    if spec.get("api") != "sklearn":
        booster = xgboost.Booster()
        booster.load_model(file)
        return booster
    model = _estimator_class(spec)()
    model.load_model(file)
    return model


def _estimator_class(spec: dict[str, Any]) -> Any:
    """The saved class; XGBoost's own base of it when that one cannot be imported here."""
    for qualified in (spec.get("class"), spec.get("xgboost_class")):
        found = resolve_name(qualified) if qualified else None
        if found is not None:
            return found
    import xgboost

    return xgboost.XGBModel
