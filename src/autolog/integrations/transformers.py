"""Hugging Face transformers: the ``Trainer``, recorded through a ``TrainerCallback``.

``AutologCallback`` turns the Trainer's callback events into ``Run`` calls: params at
``on_train_begin``, metrics from ``on_log`` / ``on_evaluate`` at ``state.global_step``, checkpoint
paths from ``on_save``, the model (``save_pretrained``) at ``on_train_end``. Add it by hand, or let
``autolog.enable()`` add it.

What ``enable()`` patches, on ``transformers.Trainer`` (so every subclass: ``Seq2SeqTrainer``, TRL's
trainers, the user's own):

- ``train``: adds an ``AutologCallback`` through ``trainer.add_callback`` when the trainer has none
  (the user's ``callbacks`` list is never touched, a hand-added one is reused, so one run is logged
  once), and ends the run FAILED or KILLED when ``train`` raises: the Trainer has no exception hook.
  Patching ``train`` rather than ``__init__`` also covers trainers built before ``enable()``.
- ``hyperparameter_search``: a parent run for the search, one child run per trial.

transformers is imported inside functions only; ``AutologCallback`` is built on first access
(the module's ``__getattr__``), because its base class lives in transformers.
"""

from __future__ import annotations

import inspect
import os
import sys
import weakref
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .. import values
from .._runtime import runtime
from ..config import current
from ..datasets import fingerprint
from ..distributions import due, log_distributions
from ..hookspecs import hookimpl
from ..models import not_importable
from ..patching import TrainingCall
from ..report import warn_once
from ..runs import RunScope, active_run
from .base import Integration, LazyCallback, isolated

if TYPE_CHECKING:
    from pathlib import Path

    from transformers import TrainerCallback

    from ..patching import Patcher
    from ..run import Run

__all__ = ["AutologCallback", "TransformersIntegration"]

#: the Trainer's own reporting callbacks that duplicate one of autolog's backends
_REPORTERS = {"MLflowCallback": "mlflow", "WandbCallback": "wandb"}


class TransformersIntegration(Integration):
    name = "transformers"
    modules = ("transformers.trainer",)  # not "transformers": patching must not import the Trainer
    distributions = ("transformers",)
    supported = ">=4.40"

    def patch(self, patcher: Patcher, module: ModuleType) -> None:
        trainer = module.Trainer
        patcher.training(trainer, "train", _TrainCall)
        patcher.training(trainer, "hyperparameter_search", _SearchCall)


@hookimpl
def autolog_register_integrations(register: Any) -> None:
    register(TransformersIntegration())


# -- the callback ----------------------------------------------------------------------------------


_guarded = isolated("transformers")  # The Trainer calls callbacks bare


class _Recorder:
    """Records a ``transformers.Trainer`` run: params, metrics, checkpoints, the model.

    ``Trainer(..., callbacks=[AutologCallback()])``; ``autolog.enable()`` adds one to every
    Trainer that has none. Only the world process zero logs.

    :param log_models: save the model at the end of training (default: ``AUTOLOG_LOG_MODELS``)
    """

    def __init__(self, log_models: bool | None = None):
        self.log_models = log_models
        self._injected = False  # added by enable(): inert once autolog is disabled
        self._trainer: weakref.ref[Any] | None = None  # set by the patched train()
        self._search: Run | None = None  # the hyperparameter search's run, during one
        self._trials = 0
        self._scope: RunScope | None = None
        self._run: Run | None = None  # None: nothing to record (rank > 0, over the child cap)
        self._trained = False  # on_train_end was reached for the open scope
        self._checkpoints: list[dict[str, Any]] = []
        self._logged: tuple[int, frozenset[str]] = (-1, frozenset())
        self._epoch = 0  # the epoch in progress, from 0

    def __getstate__(self) -> dict[str, Any]:
        """Pickled with its trainer (Ray Tune ships it to workers): without the live runs."""
        state = dict(self.__dict__)
        state.update(_trainer=None, _search=None, _scope=None, _run=None)
        state.pop("on_pre_optimizer_step", None)
        return state

    # -- the Trainer's events ------------------------------------------------------------------

    @_guarded
    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._close_previous()
        if not state.is_world_process_zero or (self._injected and not runtime.enabled):
            return
        model = self._model(kwargs)
        scope = self._open_scope(args, state, model)
        if scope is None:
            return
        self._scope, self._trained, self._checkpoints = scope, False, []
        if not scope.run.active:
            return
        self._run = run = scope.run
        trainer = self._get_trainer()
        if trainer is not None:
            run.set_tags({"transformers.trainer": type(trainer).__name__})
            if run.settings.log_datasets:
                run.set_tags({**fingerprint("training", trainer.train_dataset),
                              **fingerprint("evaluation", trainer.eval_dataset)})
        run.log_params(_params(args, model))
        _warn_double_logging(_reporters(args))

    @_guarded
    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """An epoch whose histograms are due: gradients at its first optimizer step (the
        Trainer zeroes them after each step), through a per-instance hook that removes itself,
        so no other step pays for it."""
        self._epoch = round(state.epoch or 0)
        run = self._run
        if run is not None and due(run.settings.log_histograms, self._epoch):
            if not _has_gradient_event():
                warn_once("transformers gradient histograms",
                          "autolog: gradient histograms need transformers >= 4.42 (its "
                          "on_pre_optimizer_step event; older Trainers zero the gradients before "
                          "any callback sees them): this run records weight histograms only")
            self.__dict__["on_pre_optimizer_step"] = self._gradients

    @_guarded
    def _gradients(self, args: Any, state: Any, control: Any, model: Any = None,
                   **kwargs: Any) -> None:
        self.__dict__.pop("on_pre_optimizer_step", None)
        run = self._run
        if run is not None and model is not None:
            log_distributions(run, "gradients", ((n, p.grad) for n, p in model.named_parameters()),
                              self._epoch)

    @_guarded
    def on_epoch_end(self, args: Any, state: Any, control: Any, model: Any = None,
                     **kwargs: Any) -> None:
        run = self._run
        if run is not None and model is not None and due(run.settings.log_histograms,
                                                         self._epoch):
            log_distributions(run, "weights",
                              ((n, p.detach()) for n, p in model.named_parameters()), self._epoch)

    @_guarded
    def on_log(self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None,
               **kwargs: Any) -> None:
        run = self._run or self._outside_training(state)
        if run is None or not logs:
            return
        step = state.global_step
        metrics = _numeric(logs)
        if "train_runtime" in metrics and "total_flos" not in metrics:
            metrics["total_flos"] = state.total_flos  # the progress callback pops it from logs
        run.log_metrics(metrics, step)
        self._logged = (step, frozenset(logs))

    @_guarded
    def on_evaluate(self, args: Any, state: Any, control: Any,
                    metrics: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        """The Trainer passes eval metrics to ``on_log`` too: log only what it did not."""
        run = self._run or self._outside_training(state)
        if run is None or not metrics:
            return
        step, seen = self._logged
        if step == state.global_step:
            metrics = {k: v for k, v in metrics.items() if k not in seen}
        if metrics:
            run.log_metrics(_numeric(metrics), state.global_step)

    on_predict = on_evaluate  # ``trainer.predict`` metrics (test_*) reach no on_log

    @_guarded
    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        run = self._run
        if run is None:
            return
        path = self._checkpoint_dir(args, state)
        if path is not None:
            self._checkpoints.append({"step": state.global_step, "path": path})
            run.set_tags({"checkpoint.last": path})

    @_guarded
    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._trained = True
        run = self._run
        if run is None:
            self._close_unless_trial(state)
            return
        if self._checkpoints:
            run.log_dict(self._checkpoints, "checkpoints.json")
        _log_best(run, args, state)
        if not state.is_hyper_param_search:  # a search drops each trial's model: none to keep
            self._log_model(run, kwargs)
        self._close_unless_trial(state)

    def _outside_training(self, state: Any) -> Run | None:
        """``evaluate()`` / ``predict()`` outside ``train()`` log into the user's active run."""
        if self._scope is not None or self._search is not None or not state.is_world_process_zero:
            return None
        if self._injected and not runtime.enabled:
            return None
        return active_run()

    # -- the run's lifecycle ---------------------------------------------------------------------

    def _open_scope(self, args: Any, state: Any, model: Any) -> RunScope | None:
        if self._search is None or not state.is_hyper_param_search:
            return RunScope(_run_name(args), default_name=_default_name(model))
        self._trials += 1
        if self._trials > self._search.settings.max_child_runs:
            return None
        number = getattr(getattr(self._get_trainer(), "_trial", None), "number", None)
        trial = str(self._trials - 1 if number is None else number)  # optuna's number: BestRun's id
        scope = RunScope(state.trial_name or f"trial-{trial}", parent=self._search,
                         tags={"trial": trial})
        if state.trial_params:
            scope.run.log_params({"trial": dict(state.trial_params)})
        return scope

    def _close_unless_trial(self, state: Any) -> None:
        """A trial's run stays open for the search's own ``evaluate()`` after ``train()``."""
        if self._search is None or not state.is_hyper_param_search:
            self._close(None)

    def _close_previous(self) -> None:
        """A run still open here saw its ``train()`` return (a trial) or raise (no wrapper)."""
        if self._scope is not None:
            self._close(None if self._trained else _UNFINISHED)

    def _close(self, exc: BaseException | None) -> None:
        """End the open run (if this callback opened it): FINISHED, or as ``exc`` says."""
        scope, self._scope, self._run = self._scope, None, None
        if scope is not None:
            scope.close(exc)

    def _finish(self, exc: BaseException | None) -> None:
        """``train()`` returned (``exc`` None) or raised ``exc``: end what is still open."""
        if exc is None:
            self._close_previous()
        else:
            self._close(exc)

    def _search_done(self, exc: BaseException | None) -> None:
        self._finish(exc)
        self._search, self._trials = None, 0

    # -- reading the Trainer ---------------------------------------------------------------------

    def _get_trainer(self) -> Any:
        return self._trainer() if self._trainer is not None else None

    def _model(self, kwargs: Mapping[str, Any]) -> Any:
        """The trained model: the Trainer's own when known (``model_init`` replaces it)."""
        trainer = self._get_trainer()
        model = getattr(trainer, "model", None) if trainer is not None else None
        return model if model is not None else kwargs.get("model")

    def _processing_class(self, kwargs: Mapping[str, Any]) -> Any:
        """The tokenizer / processor: ``processing_class`` since 4.46, ``tokenizer`` before."""
        trainer = self._get_trainer()
        if trainer is not None:
            key = "processing_class" if hasattr(trainer, "processing_class") else "tokenizer"
            return getattr(trainer, key, None)
        return kwargs.get("processing_class") or kwargs.get("tokenizer")

    def _checkpoint_dir(self, args: Any, state: Any) -> str | None:
        roots = [args.output_dir]
        trainer = self._get_trainer()
        if trainer is not None and state.is_hyper_param_search:
            try:  # a search's trials save under output_dir/run-<n>
                roots.insert(0, trainer._get_output_dir(trial=getattr(trainer, "_trial", None)))
            except Exception:
                pass
        if state.trial_name:
            roots.append(os.path.join(args.output_dir, state.trial_name))
        for root in roots:
            path = os.path.abspath(os.path.join(root, f"checkpoint-{state.global_step}"))
            if os.path.isdir(path):
                return path
        return None

    def _log_model(self, run: Run, kwargs: Mapping[str, Any]) -> None:
        wanted = self.log_models if self.log_models is not None else run.settings.log_models
        model = self._model(kwargs)
        if not wanted or not _saveable(model, self._get_trainer()):
            return
        run.log_model(model, "model", processing_class=self._processing_class(kwargs))


if TYPE_CHECKING:
    class AutologCallback(_Recorder, TrainerCallback):  # what __getattr__ builds
        ...

_callback = LazyCallback(_Recorder, __name__, {"transformers": ("transformers", "TrainerCallback")})
__getattr__ = _callback.module_getattr

#: how a run ends whose ``train()`` never reached ``on_train_end`` (it raised, unseen)
_UNFINISHED = RuntimeError("train() did not reach on_train_end")


# -- what is logged --------------------------------------------------------------------------------


def _run_name(args: Any) -> str | None:
    name = getattr(args, "run_name", None)
    return name if name and name != args.output_dir else None  # 4.4x defaults it to output_dir


def _default_name(model: Any) -> str | None:
    """Runs are named after the model class (``BertForSequenceClassification-<generated>``)."""
    return type(model).__name__ if model is not None else None


def _params(args: Any, model: Any) -> dict[str, Any]:
    """TrainingArguments (token values masked by ``to_dict``) and what the model is."""
    params: dict[str, Any] = dict(args.to_dict())
    params.update(train_batch_size=args.train_batch_size, eval_batch_size=args.eval_batch_size)
    if model is not None:
        params["model"] = _model_params(model)
    return _str_keys(params)


def _model_params(model: Any) -> dict[str, Any]:
    total, trainable = _parameter_counts(model)
    found: dict[str, Any] = {"class": values.qualified_name(type(model)),
                             "parameters": total, "trainable_parameters": trainable}
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "to_dict"):
        found["config"] = config.to_dict()
    peft = getattr(model, "peft_config", None)
    if isinstance(peft, Mapping) and peft:
        found["peft"] = {name: c.to_dict() if hasattr(c, "to_dict") else vars(c)
                         for name, c in peft.items()}
    return found


def _parameter_counts(model: Any) -> tuple[int, int]:
    total = trainable = 0
    parameters = getattr(model, "parameters", None)
    if not callable(parameters):
        return 0, 0
    for p in parameters():
        n = getattr(p, "ds_numel", None) or p.numel()  # DeepSpeed ZeRO-3 partitions: ds_numel
        total += n
        trainable += n if p.requires_grad else 0
    return total, trainable


def _str_keys(value: Any) -> Any:
    """Config dicts have int keys (``id2label``); params want strings, without a warning."""
    if isinstance(value, Mapping):
        return {str(k): _str_keys(v) for k, v in value.items()}
    return value


def _numeric(logs: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers of a Trainer log dict; strings and None (rare, e.g. from custom ``log``
    calls) are left out quietly, as the Trainer's own reporters do."""
    return {k: v for k, v in logs.items()
            if type(v) is float or type(v) is int or values.to_float(v) is not None}


def _log_best(run: Run, args: Any, state: Any) -> None:
    """The best checkpoint and its metric, as tracked for ``load_best_model_at_end``."""
    best = getattr(state, "best_model_checkpoint", None)
    if best:
        run.set_tags({"checkpoint.best": os.path.abspath(best)})
    name = getattr(args, "metric_for_best_model", None)
    value = getattr(state, "best_metric", None)
    if name and value is not None:
        name = name if name.startswith("eval_") else f"eval_{name}"
        step = getattr(state, "best_global_step", None) or _step_of(best) or state.global_step
        run.set_tags({"checkpoint.best_metric": name})
        run.log_metrics({f"best_{name}": value}, step)


def _step_of(checkpoint: str | None) -> int | None:
    tail = os.path.basename(checkpoint or "").rpartition("-")[2]
    return int(tail) if tail.isdigit() else None


def _reporters(args: Any) -> list[str]:
    report_to = getattr(args, "report_to", None) or []
    return [report_to] if isinstance(report_to, str) else list(report_to)


def _warn_double_logging(reporters: Iterable[str]) -> None:
    """The Trainer's own MLflow / W&B reporting and autolog's backend of the same name both on."""
    backends = set(current().backend)
    for name in sorted(set(reporters) & backends & {"mlflow", "wandb"}):
        warn_once(f"transformers report_to {name}",
                  f"autolog: this Trainer reports to {name} itself (report_to / its "
                  f"{name} callback) and autolog's {name} backend is on too, so every metric "
                  f"reaches {name} twice, in two runs. Pass report_to='none' to "
                  f"TrainingArguments (autolog records what the Trainer logs), or remove {name} "
                  f"from AUTOLOG_BACKEND.", stacklevel=2)


def _saveable(model: Any, trainer: Any) -> bool:
    """A full ``PreTrainedModel`` in this process: not PEFT adapters, not a sharded model."""
    modeling = sys.modules.get("transformers.modeling_utils")
    if modeling is None or not isinstance(model, modeling.PreTrainedModel):
        return False
    if getattr(model, "_hf_peft_config_loaded", False):
        return False
    return not (getattr(trainer, "is_fsdp_enabled", False)
                or getattr(trainer, "is_deepspeed_enabled", False))


# -- the patched Trainer methods ------------------------------------------------------------------


def _attach(trainer: Any) -> _Recorder:
    """The trainer's AutologCallback: the user's, else one added with ``add_callback``."""
    handler = trainer.callback_handler
    callback = next((cb for cb in handler.callbacks if isinstance(cb, _Recorder)), None)
    if callback is None:
        callback = _callback.get()()
        callback._injected = True
        trainer.add_callback(callback)
    callback._trainer = weakref.ref(trainer)
    names = [_REPORTERS.get(type(cb).__name__, "") for cb in handler.callbacks]
    _warn_double_logging(names + _reporters(trainer.args))
    return callback


class _TrainCall(TrainingCall):
    place = "transformers Trainer.train"

    def before(self) -> None:
        self.callback = _attach(self.instance)

    def after(self, result: Any) -> None:
        self.callback._finish(None)

    def failed(self, exc: BaseException) -> None:
        self.callback._finish(exc)


class _SearchCall(TrainingCall):
    """A parent run around ``hyperparameter_search``; the callback opens a child per trial."""

    place = "transformers Trainer.hyperparameter_search"

    def before(self) -> None:
        name = _default_name(getattr(self.instance, "model", None))
        self.scope = RunScope(_run_name(self.instance.args), tags={"hp_search": "true"},
                              default_name=f"{name}-search" if name else "search")
        self.callback = _attach(self.instance)
        self.callback._search, self.callback._trials = self.scope.run, 0
        self.scope.run.log_params(self._search_params())

    def _search_params(self) -> dict[str, Any]:
        bound = _bind(type(self.instance).hyperparameter_search, self.instance, self.args,
                      self.kwargs)
        backend = bound.get("backend") or _default_backend()
        backend = getattr(backend, "value", backend)
        return {"hp_search": {"n_trials": bound.get("n_trials"), "backend": backend,
                              "direction": bound.get("direction")}}

    def after(self, result: Any) -> None:
        self.callback._search_done(None)
        run = self.scope.run
        if hasattr(result, "hyperparameters"):  # a BestRun (a list for several objectives)
            run.log_params({"best_trial": result.run_id, "best": result.hyperparameters or {}})
            objective = values.to_float(result.objective)
            if objective is not None:
                run.log_metrics({"best_objective": objective})
        self.scope.close(None)

    def failed(self, exc: BaseException) -> None:
        self.callback._search_done(exc)
        self.scope.close(exc)


def _bind(function: Any, instance: Any, args: tuple[Any, ...],
          kwargs: dict[str, Any]) -> dict[str, Any]:
    try:
        bound = inspect.signature(function).bind(instance, *args, **kwargs)
    except (TypeError, ValueError):
        return dict(kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def _default_backend() -> Any:
    try:
        from transformers.hyperparameter_search import default_hp_search_backend

        return default_hp_search_backend()
    except Exception:  # none installed: hyperparameter_search itself raises the clear error
        return None


# -- the model flavour -----------------------------------------------------------------------------


@hookimpl
def autolog_save_model(model: Any, path: Path, options: dict[str, Any]) -> dict[str, Any] | None:
    """A ``PreTrainedModel``: ``save_pretrained`` (+ the tokenizer / processor, same folder)."""
    modeling = sys.modules.get("transformers.modeling_utils")  # no instance without it
    if modeling is None or not isinstance(model, modeling.PreTrainedModel):
        return None
    import transformers

    with _no_progress_bars():
        model.save_pretrained(path)
    safe = (path / "model.safetensors").exists() or (path / "model.safetensors.index.json").exists()
    spec: dict[str, Any] = {"flavor": "transformers",
                            "format": "safetensors" if safe else "pytorch",
                            "framework_version": transformers.__version__,
                            "class": values.qualified_name(type(model)), "dtype": str(model.dtype)}
    processor = options.get("processing_class")
    if processor is not None and hasattr(processor, "save_pretrained"):
        processor.save_pretrained(path)
        spec["processing_class"] = values.qualified_name(type(processor))
    return spec


@contextmanager
def _no_progress_bars() -> Iterator[None]:
    """transformers' own progress bars off: ``save_pretrained`` draws "Writing model shards" (5.x)
    on the user's terminal, and autolog's save is not the user's output. The switch is
    transformers' alone (its public ``disable_progress_bar`` turns huggingface_hub's off too,
    and turning those back on warns where ``HF_HUB_DISABLE_PROGRESS_BARS`` is set)."""
    switch = sys.modules.get("transformers.utils.logging")
    shown = getattr(switch, "_tqdm_active", None) is True
    if shown:
        switch._tqdm_active = False  # type: ignore[union-attr]
    try:
        yield
    finally:
        if shown:
            switch._tqdm_active = True  # type: ignore[union-attr]


@hookimpl
def autolog_load_model(spec: dict[str, Any], path: Path) -> Any:
    """The saved class (or the transformers class its config names), in the saved dtype."""
    if spec.get("flavor") != "transformers":
        return None
    import transformers

    qualified = spec.get("class", "")
    cls = values.resolve_name(qualified) or _architecture(path)
    if cls is None:  # a class of the training script, or of a package not installed here
        raise not_importable(qualified, "model's", path, f"load it with YourModel."
                             f"from_pretrained('{path}') where that class is defined")
    major = int(transformers.__version__.split(".")[0])
    options = {} if major >= 5 else {"torch_dtype": "auto"}  # 5.x loads the saved dtype itself
    return cls.from_pretrained(path, **options)


def _architecture(path: Path) -> Any:
    """The transformers class the saved config names, or None (AutoModel would load another
    model than the one saved: without its head, or not at all)."""
    import transformers

    config = transformers.AutoConfig.from_pretrained(path)
    for name in getattr(config, "architectures", None) or ():
        cls = getattr(transformers, name, None)
        if cls is not None:
            return cls
    return None


def _has_gradient_event() -> bool:
    """Version difference: ``TrainerCallback.on_pre_optimizer_step`` (transformers 4.42+) is the
    one event between the backward pass and ``zero_grad``; without it there are no gradients to
    read."""
    from transformers import TrainerCallback

    return hasattr(TrainerCallback, "on_pre_optimizer_step")
