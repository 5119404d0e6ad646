"""PyTorch Lightning (``lightning.pytorch`` and ``pytorch_lightning``): ``AutologCallback``.

``AutologCallback`` turns the Trainer's events into ``Run`` calls: hyperparameters and Trainer
settings at ``setup``, optimizers, parameter counts and the model summary at ``on_train_start``,
EarlyStopping / ModelCheckpoint outcomes and the best (or last) checkpoint as the run's model at
``on_fit_end``; it ends the run at ``teardown`` (FINISHED) or ``on_exception`` (FAILED, KILLED).

Metrics are what the Trainer hands its loggers (``self.log`` / ``self.log_dict`` with
``logger=True``), when and at the step it hands them, with the ``epoch`` it adds: the callback
observes the Trainer's one door to its loggers, ``_LoggerConnector.log_metrics``, wrapped through
autolog's patcher the first time a callback sets up (``disable()`` reverts it; the wrapper hands
the metrics to the recorders among ``trainer.callbacks``, so it works with ``logger=False``
too). On the CPU a step-level call's dict goes to the journal writer's thread whole
(``Run.hand_over_metrics``), so the training step does not convert it; on a GPU each
tensor's host copy is queued on the training thread's stream. Reading
``trainer.callback_metrics`` at hooks instead would miss what
``LightningModule.on_train_epoch_end`` logs and, under DDP, could run metric syncs on one rank
only.

What ``enable()`` patches: ``Trainer.fit``, ``validate`` and ``test`` of each namespace, which
add an ``AutologCallback`` of the Trainer's namespace to a copy of ``trainer.callbacks`` for the
call (never twice: a hand-added one is used), and put the list back afterwards.

Distributed: only global rank 0 records. Under ``ddp_spawn`` / ``ddp_fork`` the launching process
does not train: the patched ``fit`` starts the run there and the rank-0 worker logs into it
(``autolog.runs.attach_run``); under ``ddp`` the launching process is rank 0.

Lightning is imported inside functions only; the callback classes (one per namespace, since each
Trainer accepts only its own ``Callback`` subclasses) are built on first access through the
module's ``__getattr__``, under names pickle can find again (``ddp_spawn`` pickles callbacks).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .._runtime import runtime
from ..datasets import fingerprint
from ..distributions import due, log_distributions
from ..hookspecs import hookimpl
from ..models import not_importable
from ..patching import Patcher, TrainingCall, patcher
from ..report import internal_error
from ..runs import RunScope, active_run, attach_run
from ..values import TensorValue, one_element_tensor, qualified_name, resolve_name, to_float
from .base import CallbackOptions, Integration, LazyCallback, isolated

if TYPE_CHECKING:
    from pathlib import Path

    from lightning.pytorch import Callback

    from ..run import Run

__all__ = ["AutologCallback", "LightningIntegration", "callback_class"]

NAMESPACES = ("lightning.pytorch", "pytorch_lightning")
_TRAINER_SETTINGS = (
    "max_epochs", "min_epochs", "max_steps", "min_steps", "precision", "accumulate_grad_batches",
    "gradient_clip_val", "gradient_clip_algorithm", "num_nodes", "limit_train_batches",
    "limit_val_batches", "limit_test_batches", "limit_predict_batches", "val_check_interval",
    "check_val_every_n_epoch", "log_every_n_steps", "world_size")
_EARLY_STOPPING_PARAMS = ("monitor", "patience", "min_delta", "mode", "stopping_threshold",
                          "divergence_threshold", "check_finite")


class LightningIntegration(Integration):
    name = "lightning"
    modules = NAMESPACES
    distributions = ("lightning", "pytorch-lightning")
    supported = ">=2.1"

    def patch(self, patcher: Patcher, module: ModuleType) -> None:
        for method in ("fit", "validate", "test"):
            patcher.training(module.Trainer, method, _TrainerCall)


@hookimpl
def autolog_register_integrations(register: Any) -> None:
    register(LightningIntegration())


# -- the callback ----------------------------------------------------------------------------------


_guarded = isolated("lightning")  # Lightning calls callbacks bare


class _Recorder(CallbackOptions):
    """Records a Lightning ``fit`` / ``validate`` / ``test``: hyperparameters, Trainer settings,
    what the module logs, the best checkpoint.

    ``Trainer(callbacks=[AutologCallback()])``; ``autolog.enable()`` adds one to every Trainer
    call that has none. Only global rank 0 records.

    :param log_every_n_steps: log step-level metrics only every n steps (default: whenever the
        Trainer logs them, every ``Trainer(log_every_n_steps=...)`` steps)
    :param log_models: log the best (or last) checkpoint as the run's model (default:
        ``AUTOLOG_LOG_MODELS``)
    """

    # Lightning calls every hook of every callback each batch, each inside a profiler context
    # (about 25 µs a batch for an empty callback, over 1 % of a small model's step). Metrics come
    # through the logger connector, so the per-batch hooks are switched off: Lightning skips a
    # hook that is not callable.
    on_train_batch_start = on_train_batch_end = None
    on_validation_batch_start = on_validation_batch_end = None
    on_test_batch_start = on_test_batch_end = None
    on_predict_batch_start = on_predict_batch_end = None
    on_before_backward = on_after_backward = None
    on_before_optimizer_step = on_before_zero_grad = None

    def __init__(self, log_every_n_steps: int | None = None, log_models: bool | None = None):
        super().__init__(log_every_n_steps, log_models)
        # (run id, store, pid) of the run the launching process holds (ddp_spawn: set there)
        self._launcher_run: tuple[str, str, int] | None = None
        self._scope: RunScope | None = None
        self._run: Run | None = None
        self._epoch_point: tuple[int, float] | None = None
        self._lr_step = -1
        self._stage: Any = None  # the Trainer's stage at the last call, and whether it trains
        self._training = False
        self._on_cpu = False  # trains on the CPU: step-level dicts are read by the writer thread
        self._lr_groups: list[tuple[str, dict[str, Any]]] = []  # (metric name, param group)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled for spawned workers: without the live run, with where to find it."""
        state = dict(self.__dict__)
        state.update(_scope=None, _run=None, _lr_groups=[])
        state.pop("on_before_optimizer_step", None)
        if self._launcher_run is None:
            state["_launcher_run"] = _active_run_ref()
        return state

    # -- the Trainer's events --------------------------------------------------------------------

    @_guarded
    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self._close(None)  # an earlier call that ended without teardown
        self._epoch_point, self._lr_step, self._lr_groups = None, -1, []
        self._stage = None
        if trainer.global_rank != 0:
            return
        self._on_cpu = _on_cpu(trainer)
        self._scope = self._open_scope(type(pl_module).__name__)
        if not self._scope.run.active:
            return
        self._run = run = self._scope.run
        _observe(type(trainer._logger_connector))
        if stage != "fit":
            run.set_tags({"lightning.stage": stage})
        run.log_params({**_hyperparameters(trainer, pl_module), "trainer": _settings(trainer)})

    @_guarded
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        run = self._run
        if run is None:
            return
        self._lr_groups = _lr_groups(trainer)
        run.log_params({**_optimizer_params(trainer), **_model_params(pl_module),
                        **_callback_params(trainer)})
        if run.settings.log_datasets:
            run.set_tags(_datasets(trainer))
        summary = _summary(pl_module)
        if summary:
            run.log_text_artifact(summary, "model_summary.txt")

    @_guarded
    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        """An epoch whose histograms are due: its first optimizer step's gradients, through a
        per-instance hook that removes itself (the per-batch hooks stay off for every other
        step; by the epoch's end the validation loop has zeroed the gradients)."""
        run = self._run
        if run is not None and due(run.settings.log_histograms, trainer.current_epoch):
            self.__dict__["on_before_optimizer_step"] = self._gradients

    @_guarded
    def _gradients(self, trainer: Any, pl_module: Any, optimizer: Any = None) -> None:
        self.__dict__.pop("on_before_optimizer_step", None)
        if self._run is not None:
            log_distributions(self._run, "gradients",
                              ((n, p.grad) for n, p in pl_module.named_parameters()),
                              trainer.current_epoch)

    @_guarded
    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        """Every ``log_histograms`` epochs: the weights at the epoch's end."""
        run = self._run
        epoch = trainer.current_epoch
        if run is not None and due(run.settings.log_histograms, epoch):
            log_distributions(run, "weights",
                              ((n, p.detach()) for n, p in pl_module.named_parameters()), epoch)

    @_guarded
    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        run = self._run
        if run is None:
            return
        tags, outcome = _outcomes(trainer)
        run.set_tags(tags)
        if outcome:
            run.log_metrics(outcome, trainer.global_step)
        wanted = self.log_models if self.log_models is not None else run.settings.log_models
        if wanted:
            run.log_model(pl_module, "model", checkpoint=_best_checkpoint(trainer))

    @_guarded
    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self._close(None)

    @_guarded
    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._close(exception)

    def _logged(self, trainer: Any, connector: Any, metrics: Mapping[str, Any],
                step: int | None) -> None:
        """What the Trainer just handed its loggers (``_LoggerConnector.log_metrics``)."""
        run = self._run
        if run is None or not metrics:
            return
        values = dict(metrics)  # tensors stay tensors: the journal writer reads them (no sync)
        with_epoch = False
        if step is None:  # as _LoggerConnector.log_metrics does
            given = values.pop("step", None)
            if given is not None:
                step = int(given)
            else:
                step = _logger_step(trainer)
                with_epoch = "epoch" not in values
        stage = trainer.state.stage  # an enum member: `trainer.training` compares it slowly
        if stage is not self._stage:
            self._stage, self._training = stage, trainer.training
        training = self._training
        step_level = getattr(connector, "_first_loop_iter", None) is not None  # in a batch loop
        n = self.log_every_n_steps
        if n is not None and training and (step + 1) % n and step_level:
            return  # a step-level call between our every-n steps
        handed = step_level and self._on_cpu  # the whole dict read on the writer's thread
        if step_level and not handed:
            _hand_over(values)  # before the learning rate joins them: that tensor is not ours
        if with_epoch:
            self._add_epoch(values, step, trainer)
        if training and step != self._lr_step:
            self._lr_step = step
            for name, group in self._lr_groups:
                lr = group["lr"]
                if handed and type(lr) is not float:
                    lr = to_float(lr)  # read now: a scheduler changes a tensor in place
                values[name] = lr
        if handed:
            run.hand_over_metrics(values, step)  # Lightning's own copies: read off this thread
        else:
            run.log_metrics(values, step)

    def _add_epoch(self, values: dict[str, Any], step: int, trainer: Any) -> None:
        """The Trainer adds ``epoch`` to every call; log it once per step."""
        point = (step, float(trainer.current_epoch))
        if point != self._epoch_point:
            values["epoch"] = point[1]
            self._epoch_point = point

    # -- the run's lifecycle ---------------------------------------------------------------------

    def _open_scope(self, default_name: str) -> RunScope:
        """This process's active run, the launching process's (a spawned rank-0 worker), or a
        new one."""
        launcher = self._launcher_run
        if launcher is not None and launcher[2] != os.getpid():
            active = active_run()
            if active is not None and active.id == launcher[0]:
                return RunScope.of(active)  # a forked worker: the inherited Run object
            # a spawned worker: its end only flushes; the launcher ends the run
            return RunScope.of(attach_run(launcher[0], launcher[1]), ends_run=True)
        return RunScope(default_name=default_name)

    def _close(self, exc: BaseException | None) -> None:
        scope, self._scope, self._run = self._scope, None, None
        if scope is not None:
            scope.close(exc)

    def _finish(self, exc: BaseException | None) -> None:
        """The patched Trainer call returned or raised ``exc``: end what is still open."""
        self._close(exc)
        self._launcher_run = None


def _active_run_ref() -> tuple[str, str, int] | None:
    run = active_run()
    if run is None or not run.active or run.path is None:
        return None
    return run.id, str(run.path.parent), os.getpid()


if TYPE_CHECKING:
    class AutologCallback(_Recorder, Callback):  # type: ignore[misc]  # what __getattr__ builds
        ...

_callback = LazyCallback(_Recorder, __name__,
                         {namespace: (namespace, "Callback") for namespace in NAMESPACES})
__getattr__ = _callback.module_getattr


def callback_class(namespace: str | None = None) -> type:
    """The ``AutologCallback`` class for ``namespace`` (``"lightning.pytorch"`` or
    ``"pytorch_lightning"``; default: the one imported, ``lightning.pytorch`` first)."""
    return _callback.get(namespace or _callback.default_key())


def _namespace(obj: Any) -> str:
    """The namespace an object of Lightning (a Trainer, a module) comes from."""
    for cls in type(obj).__mro__:
        module = cls.__module__
        for namespace in NAMESPACES:
            if module == namespace or module.startswith(namespace + "."):
                return namespace
    return _callback.default_key()


# -- observing what the Trainer logs ---------------------------------------------------------------

def _observe(connector_class: type) -> None:
    """Wrap ``connector_class.log_metrics`` (once; ``disable()`` reverts it)."""
    with runtime.lock:
        patcher().wrap(connector_class, "log_metrics", _forward)


def _forward(wrapped: Any, connector: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Let the Trainer log, then hand the same metrics to its recorders."""
    result = wrapped(*args, **kwargs)
    try:
        metrics = args[0] if args else kwargs.get("metrics")
        step = args[1] if len(args) > 1 else kwargs.get("step")
        trainer = connector.trainer
        for callback in trainer.callbacks:
            if isinstance(callback, _Recorder):
                callback._logged(trainer, connector, metrics or {}, step)
    except Exception as exc:
        internal_error("lightning logging metrics", exc)
    return result


def _hand_over(metrics: dict[str, Any]) -> None:
    """A step-level call: each tensor is Lightning's own copy of what was logged for this step
    (``_ResultMetric`` clones a logged tensor, a torchmetrics metric computes a new one each
    step, and nothing changes either afterwards), so the run keeps it as it is, without a
    second copy (9 µs a step inside a fit). An epoch-level value can be a torchmetrics metric's
    state tensor, which its next ``update`` changes in place: that one is copied, as any logged
    tensor is."""
    for key, value in metrics.items():
        if type(key) is str and one_element_tensor(value):
            metrics[key] = TensorValue(key, value, handed_over=True)


def _on_cpu(trainer: Any) -> bool:
    """Does the Trainer train on the CPU (where reading a logged tensor later, on another
    thread, waits for nothing)?"""
    try:
        return bool(trainer.strategy.root_device.type == "cpu")
    except Exception:  # a strategy without one device: the general path
        return False


def _logger_step(trainer: Any) -> int:
    """The step the Trainer gives its loggers when it gives none: the optimizer steps taken."""
    loop = getattr(getattr(trainer, "fit_loop", None), "epoch_loop", None)
    step = getattr(loop, "_batches_that_stepped", None)
    return int(step) if step is not None else int(trainer.global_step)


# -- what is logged --------------------------------------------------------------------------------


def _datasets(trainer: Any) -> dict[str, Any]:
    """Fingerprints of the training and (first) validation data loaders."""
    tags: dict[str, Any] = {}
    for name, attribute in (("training", "train_dataloader"), ("validation", "val_dataloaders")):
        loader = getattr(trainer, attribute, None)
        if isinstance(loader, list | tuple):
            loader = loader[0] if loader else None
        if loader is not None:
            tags.update(fingerprint(name, loader))
    return tags


def _hyperparameters(trainer: Any, pl_module: Any) -> dict[str, Any]:
    """The DataModule's and the module's ``save_hyperparameters()`` values, at the top level as
    Lightning's own loggers show them (the module's win a clash)."""
    found: dict[str, Any] = {}
    datamodule = getattr(trainer, "datamodule", None)
    for source in (datamodule, pl_module):
        hparams = getattr(source, "hparams", None) if source is not None else None
        if isinstance(hparams, Mapping):
            found.update({str(key): value for key, value in hparams.items()})
    return found


def _settings(trainer: Any) -> dict[str, Any]:
    settings = {name: getattr(trainer, name, None) for name in _TRAINER_SETTINGS}
    settings.update(accelerator=_accelerator(trainer), devices=trainer.num_devices,
                    strategy=_strategy(trainer.strategy))
    return settings


def _accelerator(trainer: Any) -> str:
    name = type(trainer.accelerator).__name__
    return name.removesuffix("Accelerator").lower() or name


def _strategy(strategy: Any) -> str:
    name = getattr(strategy, "strategy_name", None)
    if not isinstance(name, str):
        name = type(strategy).__name__.removesuffix("Strategy").lower()
    start = getattr(strategy, "_start_method", "popen")
    return f"{name}_{start}" if isinstance(start, str) and start != "popen" else name


def _optimizer_params(trainer: Any) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for i, optimizer in enumerate(trainer.optimizers):
        params["optimizer" if i == 0 else f"optimizer_{i}"] = {
            "class": type(optimizer).__name__, **dict(optimizer.defaults)}
    for i, config in enumerate(trainer.lr_scheduler_configs):
        scheduler = config.scheduler
        state = scheduler.state_dict() if hasattr(scheduler, "state_dict") else {}
        params["lr_scheduler" if i == 0 else f"lr_scheduler_{i}"] = {
            "class": type(scheduler).__name__, "interval": config.interval,
            "frequency": config.frequency, "monitor": config.monitor,
            **{k: v for k, v in state.items()
               if not k.startswith("_") and k != "last_epoch" and isinstance(v, int | float | str)}}
    return params


def _model_params(pl_module: Any) -> dict[str, Any]:
    total = trainable = 0
    for p in pl_module.parameters():
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return {"model": {"class": qualified_name(type(pl_module)), "parameters": total,
                      "trainable_parameters": trainable}}


def _callback_params(trainer: Any) -> dict[str, Any]:
    params: dict[str, Any] = {}
    stopper = next(iter(trainer.early_stopping_callbacks), None)
    if stopper is not None:
        params["early_stopping"] = {name: getattr(stopper, name, None)
                                    for name in _EARLY_STOPPING_PARAMS}
    checkpoint = trainer.checkpoint_callback
    if checkpoint is not None and hasattr(checkpoint, "monitor"):
        params["checkpoint"] = {"monitor": checkpoint.monitor,
                                "mode": getattr(checkpoint, "mode", None),
                                "save_top_k": getattr(checkpoint, "save_top_k", None)}
    return params


def _summary(pl_module: Any) -> str | None:
    import importlib

    summary = importlib.import_module(_namespace(pl_module) + ".utilities.model_summary")
    return str(summary.ModelSummary(pl_module, max_depth=1)) + "\n"


def _lr_groups(trainer: Any) -> list[tuple[str, dict[str, Any]]]:
    """The optimizers' param groups, named ``lr`` for one optimizer with one group, else
    ``lr/opt<i>`` and ``.../pg<j>``: schedulers update ``group["lr"]`` in place, so the groups
    are looked up once and read at each logging step."""
    found = []
    optimizers = trainer.optimizers
    for i, optimizer in enumerate(optimizers):
        groups = optimizer.param_groups
        for j, group in enumerate(groups):
            name = "lr" if len(optimizers) == 1 else f"lr/opt{i}"
            found.append((name if len(groups) == 1 else f"{name}/pg{j}", group))
    return found


def _outcomes(trainer: Any) -> tuple[dict[str, str], dict[str, Any]]:
    """Tags and metrics saying how EarlyStopping and ModelCheckpoint ended."""
    tags: dict[str, str] = {}
    metrics: dict[str, Any] = {}
    stopper = next(iter(trainer.early_stopping_callbacks), None)
    if stopper is not None:
        metrics["early_stopping/stopped_epoch"] = stopper.stopped_epoch
        if stopper.best_score is not None:
            metrics["early_stopping/best_score"] = stopper.best_score
    checkpoint = trainer.checkpoint_callback
    if checkpoint is not None:
        for name in ("best_model_path", "last_model_path"):
            path = getattr(checkpoint, name, None)
            if path:
                tags[f"checkpoint.{name}"] = os.path.abspath(path)
        score = getattr(checkpoint, "best_model_score", None)
        if score is not None:
            metrics["checkpoint/best_model_score"] = score
    return tags, metrics


def _best_checkpoint(trainer: Any) -> str | None:
    checkpoint = trainer.checkpoint_callback
    for name in ("best_model_path", "last_model_path"):
        path = getattr(checkpoint, name, None) if checkpoint is not None else None
        if path and os.path.isfile(path):
            return str(path)
    return None


# -- the patched Trainer calls ---------------------------------------------------------------------


class _TrainerCall(TrainingCall):
    """Adds an AutologCallback to a copy of ``trainer.callbacks`` for the call, then puts the
    list back (Lightning reassigns it during the call: then ours is taken out of that one)."""

    place = "lightning Trainer"
    scope: RunScope | None

    def before(self) -> None:
        trainer = self.instance
        original = trainer.callbacks
        self.original, self.added = original, None
        found = next((cb for cb in original if isinstance(cb, _Recorder)), None)
        if found is None:
            found = callback_class(_namespace(trainer))()
            self.added = [*original, found]
            trainer.callbacks = self.added
        self.callback = found
        if _spawns(trainer):  # the workers log into a run that lives here
            model = self.args[0] if self.args else self.kwargs.get("model")
            self.scope = RunScope(default_name=type(model).__name__)
            if self.scope.run.active:
                found._launcher_run = _active_run_ref()
        else:
            self.scope = None

    def after(self, result: Any) -> None:
        self._restore()
        self.callback._finish(None)
        if self.scope is not None:
            self.scope.close(None)

    def failed(self, exc: BaseException) -> None:
        self._restore()
        self.callback._finish(exc)
        if self.scope is not None:
            self.scope.close(exc)

    def _restore(self) -> None:
        trainer, added = self.instance, self.added
        if added is None:
            return
        if trainer.callbacks is added:
            trainer.callbacks = self.original
        else:
            trainer.callbacks = [cb for cb in trainer.callbacks if cb is not self.callback]


def _spawns(trainer: Any) -> bool:
    """Whether the strategy trains in new processes while this one waits (ddp_spawn, ddp_fork)."""
    launcher = getattr(trainer.strategy, "launcher", None)
    return launcher is not None and type(launcher).__name__ == "_MultiProcessingLauncher"


# -- the model flavour -----------------------------------------------------------------------------


def _module_namespace(model: Any) -> str | None:
    for namespace in NAMESPACES:
        module = sys.modules.get(namespace)
        if module is not None and isinstance(model, module.LightningModule):
            return namespace
    return None


@hookimpl
def autolog_save_model(model: Any, path: Path, options: dict[str, Any]) -> dict[str, Any] | None:
    """A ``LightningModule``: its checkpoint (``options["checkpoint"]``, copied: Lightning may
    rewrite ``last.ckpt``), or one written from its weights and hyperparameters."""
    namespace = _module_namespace(model)
    if namespace is None:
        return None
    import importlib

    version = importlib.import_module(namespace).__version__
    source = options.get("checkpoint")
    target = path / "model.ckpt"
    if source:
        shutil.copyfile(source, target)
    else:
        import torch

        torch.save({"state_dict": model.state_dict(), "pytorch-lightning_version": version,
                    model.CHECKPOINT_HYPER_PARAMS_KEY: dict(model.hparams)}, target)
    return {"flavor": "lightning", "format": "ckpt", "framework_version": version,
            "namespace": namespace, "class": qualified_name(type(model)),
            "file": "model.ckpt", "checkpoint": os.path.abspath(source) if source else None}


@hookimpl
def autolog_load_model(spec: dict[str, Any], path: Path) -> Any:
    """``ModuleClass.load_from_checkpoint`` on CPU, in eval mode. The class must be importable
    where the model is loaded (a module-level class of an importable module)."""
    if spec.get("flavor") != "lightning":
        return None
    cls = resolve_name(spec["class"])
    if cls is None:
        checkpoint = path / spec.get("file", "model.ckpt")
        raise not_importable(spec["class"], "model's LightningModule", path,
                             f"load the weights into your module yourself: "
                             f"`module.load_state_dict(torch.load('{checkpoint}', "
                             f"weights_only=False)['state_dict'])`")
    model = cls.load_from_checkpoint(path / spec.get("file", "model.ckpt"), map_location="cpu")
    model.eval()
    return model
