"""Keras 3: ``AutologCallback``, and ``Model.fit`` patched to add one.

``AutologCallback`` turns Keras's callback events into ``Run`` calls: params, the model summary and
the fingerprints of ``x``/``y`` and ``validation_data`` at ``on_train_begin``, every value of the
epoch logs at ``on_epoch_end`` (step = epoch; with ``log_histograms=N``, weight histograms every N
epochs: Keras's callbacks are not given gradients), batch logs every ``log_every_n_steps``
batches (step = global batch index), the EarlyStopping outcome and the model (``.keras``) at
``on_train_end``. Add it by hand, or let ``autolog.enable()`` add it.

What is patched, through autolog's patcher (``disable()`` reverts both):

- ``fit`` where ``keras.Model`` finds it (the backend's trainer class: ``TorchTrainer``,
  ``JAXTrainer``, ``TensorFlowTrainer``), so every model class inherits it. The patched ``fit``
  hands the callback ``fit``'s arguments (bound like Python binds them) and ends the run FAILED
  or KILLED when ``fit`` raises: Keras has no exception hook. With ``enable()`` it also passes
  Keras a new callbacks list with an ``AutologCallback`` appended when the user's has none (their
  list is never touched);
- ``CallbackList.on_train_begin``, which hands each ``AutologCallback`` the callbacks it trains
  with (to see an EarlyStopping and whether it restores weights after us).

``enable()`` patches both when Keras is imported; an ``AutologCallback`` made by hand patches them
when it is created, so it records the same without ``enable()`` (a ``fit`` looked up before the
callback was created runs unpatched: that training's params then come from what Keras tells its
callbacks, without ``batch_size``).

Nothing here imports TensorFlow: it works on the torch, JAX and TensorFlow backends alike.
Keras is imported inside functions only; ``AutologCallback`` is built on first access (the
module's ``__getattr__``), because its base class lives in Keras.
"""

from __future__ import annotations

import inspect
import math
import re
import struct
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .. import values
from .._runtime import runtime
from ..datasets import fingerprint
from ..distributions import due, log_distributions
from ..errors import ModelLoadError
from ..hookspecs import hookimpl
from ..patching import TrainingCall, patcher
from ..report import internal_error
from .base import CallbackOptions, Integration, LazyCallback, RunScope, isolated

if TYPE_CHECKING:
    from pathlib import Path

    from keras.callbacks import Callback

    from ..patching import Patcher
    from ..run import Run

__all__ = ["AutologCallback", "KerasIntegration"]

#: Keras's batch size when ``fit`` gets arrays and no ``batch_size`` / ``steps_per_epoch``
DEFAULT_BATCH_SIZE = 32
_FIT_PARAMS = ("epochs", "batch_size", "validation_split", "steps_per_epoch", "shuffle",
               "initial_epoch", "validation_steps", "validation_batch_size", "validation_freq")
_EARLY_STOPPING_PARAMS = ("monitor", "patience", "min_delta", "mode", "baseline",
                          "restore_best_weights", "start_from_epoch")


class KerasIntegration(Integration):
    name = "keras"
    modules = ("keras",)
    distributions = ("keras",)
    supported = ">=3.0"

    def patch(self, patcher: Patcher, module: ModuleType) -> None:
        if not self.is_supported(getattr(module, "__version__", "0")):
            return  # Keras 2 (tf.keras) has another callback protocol
        owner = _defining_class(module.Model, "fit")
        if owner is not None:
            patcher.training(owner, "fit", _FitCall)
        patcher.wrap(module.callbacks.CallbackList, "on_train_begin", _hand_over_callbacks)


def _patch_for_hand_added_callback() -> None:
    """An ``AutologCallback`` made by hand gets the same hand-over without ``enable()``."""
    try:
        with runtime.lock:
            KerasIntegration().patch(patcher(), sys.modules["keras"])
    except Exception as exc:
        internal_error("patching keras for AutologCallback", exc)


def _hand_over_callbacks(wrapped: Any, callbacks: Any, args: tuple[Any, ...],
                         kwargs: dict[str, Any]) -> Any:
    """``CallbackList.on_train_begin``: tell our callbacks who they train with."""
    try:
        members = list(callbacks.callbacks)
        for callback in members:
            if isinstance(callback, _Recorder):
                callback._callbacks = members
    except Exception as exc:
        internal_error("keras CallbackList.on_train_begin", exc)
    return wrapped(*args, **kwargs)


def _defining_class(cls: type, attribute: str) -> type | None:
    """The class of ``cls``'s MRO whose ``__dict__`` holds ``attribute`` (patched there, every
    subclass inherits the patch; patching ``keras.Model`` itself would shadow it instead)."""
    return next((c for c in cls.__mro__ if attribute in vars(c)), None)


@hookimpl
def autolog_register_integrations(register: Any) -> None:
    register(KerasIntegration())


# -- the callback ----------------------------------------------------------------------------------


_guarded = isolated("keras")  # Keras calls callbacks bare


class _Recorder(CallbackOptions):
    """Records a Keras ``fit``: params, per-epoch (and per-batch) metrics, the model.

    ``model.fit(..., callbacks=[AutologCallback()])``; ``autolog.enable()`` adds one to every
    ``fit`` that has none.

    :param log_every_n_steps: also log the batch logs every n batches, as ``batch/<name>`` at the
        global batch index (default: epoch logs only)
    :param log_models: save the model at the end of training (default: ``AUTOLOG_LOG_MODELS``)
    """

    #: batch hooks only append to the run's buffer: Keras may call them off the training thread.
    #: The patched ``fit`` says so only where the model trains on an accelerator
    #: (:func:`_pool_pays`); a hand-made callback in a ``fit`` looked up before it was patched
    #: keeps this default.
    async_safe = True

    if TYPE_CHECKING:  # set by Keras's Callback
        model: Any
        params: dict[str, Any] | None

    def __init__(self, log_every_n_steps: int | None = None, log_models: bool | None = None):
        super().__init__(log_every_n_steps, log_models)
        self._fit_args: dict[str, Any] | None = None  # handed over by the patched fit
        self._callbacks: list[Any] | None = None  # by the patched CallbackList
        self._scope: RunScope | None = None
        self._run: Run | None = None
        self._siblings: list[Any] = []
        self._offset = 0  # global index of the current epoch's first batch
        self._batches = 0  # batches seen in the current epoch (when Keras does not know)
        self._epoch = -1
        _patch_for_hand_added_callback()

    # -- Keras's events --------------------------------------------------------------------------

    @_guarded
    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        self._close(RuntimeError("fit did not reach on_train_end"))  # an earlier fit raised
        self._scope = RunScope(default_name=type(self.model).__name__)
        self._offset, self._batches, self._epoch = 0, 0, -1
        self._siblings = self._callbacks or [self]
        if not self._scope.run.active:
            return
        self._run = run = self._scope.run
        args = self._fit_args if self._fit_args is not None else dict(self.params or {})
        run.log_params({**_fit_params(args), **_model_params(self.model),
                        **_early_stopping_params(self._siblings)})
        if run.settings.log_datasets:
            run.set_tags(_datasets(args))
        summary = _summary(self.model)
        if summary:
            run.log_text_artifact(summary, "model_summary.txt")

    @_guarded
    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._batches = batch + 1
        n, run = self.log_every_n_steps, self._run
        if n is None or run is None or not logs:
            return
        index = self._offset + batch
        if (index + 1) % n == 0:
            run.log_metrics({f"batch/{key}": value for key, value in logs.items()}, index)

    @_guarded
    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._epoch = epoch
        steps = (self.params or {}).get("steps")
        self._offset += steps if isinstance(steps, int) and steps > 0 else self._batches
        run = self._run
        if run is None:
            return
        metrics = dict(logs or {})
        if "learning_rate" not in metrics:
            rate = _learning_rate(self.model)
            if rate is not None:
                metrics["learning_rate"] = rate
        run.log_metrics(metrics, epoch)
        if due(run.settings.log_histograms, epoch):
            log_distributions(run, "weights", _weights(self.model), epoch)

    @_guarded
    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        run = self._run
        try:
            if run is not None:
                outcome = _early_stopping_outcome(self._siblings)
                if outcome:
                    run.log_metrics(outcome, max(self._epoch, 0))
                if self._wants_model(run):
                    self._log_model(run)
        finally:
            self._close(None)

    # -- the run's lifecycle ---------------------------------------------------------------------

    def _close(self, exc: BaseException | None) -> None:
        """End the run this fit opened, once (``exc``: how fit ended)."""
        scope, self._scope, self._run = self._scope, None, None
        self._siblings = []
        if scope is not None:
            scope.close(exc)


    def _finish(self, exc: BaseException | None) -> None:
        """The patched ``fit`` returned or raised ``exc``: end what is still open."""
        self._close(exc)
        self._fit_args = self._callbacks = None

    def _wants_model(self, run: Run) -> bool:
        return self.log_models if self.log_models is not None else run.settings.log_models

    def _log_model(self, run: Run) -> None:
        """Save the weights the user gets back: an EarlyStopping after this callback in the list
        restores its best weights only after us, so save those now."""
        model = self.model
        best = _pending_restore(self._siblings, self)
        if best is None:
            run.log_model(model, "model")
            return
        current = model.get_weights()
        model.set_weights(best)
        try:
            run.log_model(model, "model")
        finally:
            model.set_weights(current)


if TYPE_CHECKING:
    class AutologCallback(_Recorder, Callback):  # what __getattr__ builds
        ...

_callback = LazyCallback(_Recorder, __name__, {"keras": ("keras.callbacks", "Callback")})
__getattr__ = _callback.module_getattr


# -- what is logged --------------------------------------------------------------------------------


def _bind(function: Any, instance: Any, args: tuple[Any, ...],
          kwargs: dict[str, Any]) -> inspect.BoundArguments | None:
    try:
        return inspect.signature(function).bind(instance, *args, **kwargs)
    except (TypeError, ValueError):
        return None


def _arguments(function: Any, instance: Any, args: tuple[Any, ...],
               kwargs: dict[str, Any]) -> dict[str, Any]:
    """Every argument by name, defaults included, ``self`` left out: ``fit(x, y, 32, 3)`` and
    ``fit(x, y, batch_size=32, epochs=3)`` read the same."""
    bound = _bind(function, instance, args, kwargs)
    if bound is None:
        return dict(kwargs)
    bound.apply_defaults()
    return dict(list(bound.arguments.items())[1:])


def _fit_params(args: Mapping[str, Any]) -> dict[str, Any]:
    params = {name: args[name] for name in _FIT_PARAMS if name in args}
    if "batch_size" in args or "x" in args:
        params["batch_size"] = _batch_size(args)
    return {key: value for key, value in params.items() if value is not None}


def _batch_size(args: Mapping[str, Any]) -> int | None:
    """The batch size ``fit`` uses: given, the data loader's, or Keras's default for arrays."""
    given = args.get("batch_size")
    if given is not None:
        return int(given)
    x = args.get("x")
    own = getattr(x, "batch_size", None)  # torch DataLoader, keras PyDataset subclasses
    if isinstance(own, int):
        return own
    rows = _rows(x)
    if rows is None:
        return None  # a generator, a tf.data.Dataset: batched by the data itself
    steps = args.get("steps_per_epoch")
    return math.ceil(rows / steps) if steps else DEFAULT_BATCH_SIZE


def _rows(x: Any) -> int | None:
    """Rows of array-like ``x`` (an array, a tensor, or a list / dict of them), else None."""
    if isinstance(x, Mapping):
        x = next(iter(x.values()), None)
    elif isinstance(x, list | tuple) and x:
        x = x[0]
    shape = getattr(x, "shape", None)
    if shape is not None and len(shape) > 0 and isinstance(shape[0], int):
        return int(shape[0])
    return None


def _datasets(args: Mapping[str, Any]) -> dict[str, Any]:
    """Fingerprints of ``x``/``y`` and of ``validation_data`` (``(x, y)`` or ``(x, y, w)``)."""
    tags = fingerprint("training", args.get("x"), args.get("y"))
    validation = args.get("validation_data")
    if isinstance(validation, tuple | list) and len(validation) >= 2:
        tags.update(fingerprint("validation", validation[0], validation[1]))
    elif validation is not None:
        tags.update(fingerprint("validation", validation))
    return tags


def _weights(model: Any) -> list[tuple[str, Any]]:
    """``(path, backend tensor)`` of each weight (a torch tensor stays on its device)."""
    return [(getattr(w, "path", None) or w.name, getattr(w, "value", w)) for w in model.weights]


def _model_params(model: Any) -> dict[str, Any]:
    trainable = _count(model.trainable_weights)
    non_trainable = _count(model.non_trainable_weights)
    params: dict[str, Any] = {"model": {
        "class": values.qualified_name(type(model)), "name": model.name,
        "parameters": trainable + non_trainable, "trainable_parameters": trainable,
        "non_trainable_parameters": non_trainable}}
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        config = {k: _short_float(v) for k, v in optimizer.get_config().items() if k != "name"}
        params["optimizer"] = {"class": type(optimizer).__name__, **config}
    compiled = _compile_config(model)
    if compiled.get("loss") is not None:
        params["loss"] = _names(compiled["loss"])
    if compiled.get("metrics"):
        params["metrics"] = _names(compiled["metrics"])
    return params


def _short_float(value: Any) -> Any:
    """``0.01`` for the float32 ``0.009999999776482582`` Keras configs hold."""
    if type(value) is not float or not math.isfinite(value):
        return value
    short = float(f"{value:.7g}")
    return short if _float32(short) == _float32(value) == value else value


def _float32(value: float) -> float:
    return struct.unpack("f", struct.pack("f", value))[0]


def _count(weights: Any) -> int:
    return sum(math.prod(int(d) for d in w.shape) for w in weights)


def _compile_config(model: Any) -> dict[str, Any]:
    try:
        return model.get_compile_config() or {}
    except Exception:  # not compiled, or a custom loss that does not serialise
        return {}


def _names(spec: Any) -> Any:
    """Readable names of a (serialised) loss or metrics spec: ``"mse"``, ``["mae", "auc"]``."""
    if isinstance(spec, str) or spec is None:
        return spec
    if isinstance(spec, list | tuple):
        return [_names(item) for item in spec]
    if isinstance(spec, Mapping):
        if "class_name" in spec:
            config = spec.get("config")
            name = config.get("name") if isinstance(config, Mapping) else None
            return name or spec["class_name"]
        return {str(key): _names(value) for key, value in spec.items()}
    return getattr(spec, "name", None) or getattr(spec, "__name__", None) or type(spec).__name__


def _summary(model: Any) -> str | None:
    """The table ``model.summary()`` prints: drawn here, without rich (Keras renders it as a
    rich table: 8 ms for the first summary of a process, 3 ms after, against 0.3 ms), else by
    Keras where its internals differ from what :func:`_plain_summary` reads."""
    if not getattr(model, "built", True):
        return None  # a subclassed model not built yet has no summary
    try:
        return _plain_summary(model)
    except Exception:
        pass
    lines: list[str] = []
    try:
        model.summary(print_fn=lambda text, *args, **kwargs: lines.append(str(text)))
    except ValueError:
        return None
    return "\n".join(lines) + "\n"


_MARKUP = re.compile(r"\[/?(?:bold|color\(\d+\))?\]")  # what summary_utils highlights with


def _plain_summary(model: Any) -> str:
    """``keras.src.utils.summary_utils.print_summary``'s table and totals as plain text (the
    layers of a nested model folded, as by default), each column as wide as its widest cell
    (at least what Keras draws on an 80-column console), so nothing is wrapped."""
    from keras.src.utils import summary_utils as su

    layers, connected = _summary_layers(model)
    header = ["Layer (type)", "Output Shape", "Param #"]
    if connected is not None:
        header.append("Connected to")
    rows = []
    for layer in layers:
        if not hasattr(layer, "built"):
            params = "0"
        elif not layer.built:
            params = "0 (unbuilt)"
        else:
            params = f"{layer.count_params():,}"
        row = [f"{layer.name} ({type(layer).__name__})",
               _MARKUP.sub("", su.format_layer_shape(layer)), params]
        if connected is not None:
            row.append(_connections(layer, connected))
        rows.append(row)
    least = (33, 24, 15) if connected is None else (22, 20, 14, 20)
    widths = [max(least[i], len(header[i]) + 2, *(len(row[i]) + 2 for row in rows))
              for i in range(len(header))]

    def rule(left: str, fill: str, cross: str, right: str) -> str:
        return left + cross.join(fill * width for width in widths) + right

    def cells(edge: str, texts: list[str]) -> str:
        return edge + edge.join(f" {text:>{width - 2}} " if i == 2 else f" {text:<{width - 2}} "
                                for i, (text, width) in enumerate(zip(texts, widths,
                                                                      strict=True))) + edge

    out = [f'Model: "{model.name}"', rule("┏", "━", "┳", "┓"), cells("┃", header),
           rule("┡", "━", "╇", "┩")]
    for i, row in enumerate(rows):
        if i:
            out.append(rule("├", "─", "┼", "┤"))
        out.append(cells("│", row))
    out.append(rule("└", "─", "┴", "┘"))
    trainable = getattr(model, "_collected_trainable_weights", None)
    groups = [("Trainable", model.trainable_weights if trainable is None else trainable),
              ("Non-trainable", model.non_trainable_weights)]
    optimizer = getattr(model, "optimizer", None)
    if getattr(model, "compiled", False) and optimizer and getattr(optimizer, "built", False):
        groups.append(("Optimizer", optimizer.variables))
    counts = [(name, su.count_params(weights), su.weight_memory_size(weights))
              for name, weights in groups]
    total = ("Total", sum(count for _, count, _ in counts), sum(size for _, _, size in counts))
    out += [f" {name} params: {count:,} ({su.readable_memory_size(size)})"
            for name, count, size in (total, *counts)]
    return "\n".join(out) + "\n"


def _summary_layers(model: Any) -> tuple[list[Any], list[Any] | None]:
    """The layers a summary lists, and the graph's nodes where it has a "Connected to" column
    (a functional model that is not a chain), as ``print_summary`` decides."""
    from keras.src.models import Functional, Sequential
    from keras.src.utils import summary_utils  # its `tree`: Keras's own, dm-tree before 3.1

    if isinstance(model, Sequential) or not isinstance(model, Functional):  # or subclassed
        return list(model.layers), None
    nodes: list[Any] = []
    for level in model._nodes_by_depth.values():
        if len(level) > 1 or (len(level) == 1 and
                              len(summary_utils.tree.flatten(level[0].input_tensors)) > 1):
            break
        nodes += level
    else:
        for layer in model.layers:  # a shared layer: not a chain either
            if sum(node in nodes for node in layer._inbound_nodes) > 1:
                break
        else:
            return list(model._operations), None
    return list(model._operations), [node for level in model._nodes_by_depth.values()
                                     for node in level]


def _connections(layer: Any, nodes: list[Any]) -> str:
    found = []
    for node in layer._inbound_nodes:
        if nodes and node not in nodes:
            continue  # a node outside this model
        for tensor in node.input_tensors:
            history = tensor._keras_history
            found.append(f"{history.operation.name}[{history.node_index}]"
                         f"[{history.tensor_index}]")
    return ", ".join(found) or "-"


def _learning_rate(model: Any) -> Any:
    """The optimizer's learning rate: a torch tensor as it is (the run reads it off the training
    thread: on a GPU, reading it here would wait for the device), else a float."""
    optimizer = getattr(model, "optimizer", None)
    rate = getattr(optimizer, "learning_rate", None)
    if rate is None:
        return None
    value = getattr(rate, "value", rate)  # a Variable's backend tensor
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return value
    return values.to_float(value)


def _is_early_stopping(callback: Any) -> bool:
    from keras.callbacks import EarlyStopping

    return isinstance(callback, EarlyStopping)


def _early_stopping(callbacks: list[Any]) -> Any:
    return next((cb for cb in callbacks if _is_early_stopping(cb)), None)


def _early_stopping_params(callbacks: list[Any]) -> dict[str, Any]:
    stopper = _early_stopping(callbacks)
    if stopper is None:
        return {}
    return {"early_stopping": {name: getattr(stopper, name, None)
                               for name in _EARLY_STOPPING_PARAMS}}


def _early_stopping_outcome(callbacks: list[Any]) -> dict[str, float]:
    """``stopped_epoch`` (only when it stopped), ``best``, ``best_epoch``, ``restored_epoch``."""
    stopper = _early_stopping(callbacks)
    if stopper is None:
        return {}
    outcome: dict[str, float] = {}
    if stopper.stopped_epoch > 0:
        outcome["early_stopping/stopped_epoch"] = stopper.stopped_epoch
    if stopper.best is not None:
        outcome["early_stopping/best"] = float(stopper.best)
        outcome["early_stopping/best_epoch"] = getattr(stopper, "best_epoch", 0)
    if stopper.restore_best_weights and stopper.best_weights is not None:
        outcome["early_stopping/restored_epoch"] = getattr(stopper, "best_epoch", 0)
    return outcome


def _pending_restore(callbacks: list[Any], callback: Any) -> Any:
    """The best weights an EarlyStopping later in the list is about to restore, or None."""
    after = False
    for cb in callbacks:
        if cb is callback:
            after = True
        elif after and _is_early_stopping(cb) and cb.restore_best_weights \
                and cb.best_weights is not None:
            return cb.best_weights
    return None


# -- the patched fit -------------------------------------------------------------------------------


class _FitCall(TrainingCall):
    """Hands an ``AutologCallback`` (the user's, or with ``enable()`` a new one in a new list)
    ``fit``'s arguments and its fellow callbacks; ends its run however ``fit`` ends."""

    place = "keras Model.fit"
    when_disabled = True  # for callbacks added by hand: enable() is what adds one

    def before(self) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
        fit = type(self.instance).fit
        bound = _bind(fit, self.instance, self.args, self.kwargs)
        self.callback: _Recorder | None = None
        if bound is None:
            return None  # arguments fit does not take: Keras will say what is wrong
        given = bound.arguments.get("callbacks")
        self.callback, replaced = _with_callback(given, add=runtime.enabled)
        if self.callback is None:
            return None
        self.callback._fit_args = _arguments(fit, self.instance, self.args, self.kwargs)
        self.callback.async_safe = _pool_pays(self.instance, _listed(replaced))  # read next
        if replaced is given:
            return None
        bound.arguments["callbacks"] = replaced
        return bound.args[1:], bound.kwargs

    def after(self, result: Any) -> None:
        if self.callback is not None:
            self.callback._finish(None)

    def failed(self, exc: BaseException) -> None:
        if self.callback is not None:
            self.callback._finish(exc)


#: the batch hooks Keras hands to its pool where every callback is async-safe
_BATCH_ENDS = ("on_batch_end", "on_train_batch_end", "on_test_batch_end", "on_predict_batch_end")


def _pool_pays(model: Any, callbacks: list[Any]) -> bool:
    """Should Keras run the batch hooks on its callback thread? Where every callback of a fit is
    ``async_safe``, Keras hands each batch's hooks to a thread pool and turns the logs into
    numbers there: on an accelerator that keeps the reads (a device sync each) off the training
    thread, and JAX dispatches asynchronously even on the CPU. Torch runs CPU ops as they are
    called, so there the reads wait for nothing, and handing each batch over costs more than the
    hooks: about 4 % of a small MLP's fit, for a callback that only sets an attribute. So
    autolog's callback is async-safe unless the model is a torch one with its weights in host
    memory (unknown, as for a model built by its first batch: async-safe, as before), and
    unless a callback of the user's is async-safe with batch hooks of its own: their work stays
    off the training thread, as they asked."""
    keras: Any = sys.modules.get("keras")
    try:
        if keras.backend.backend() != "torch":
            return True
        base = keras.callbacks.Callback
        for callback in callbacks:
            if not isinstance(callback, _Recorder) and getattr(callback, "async_safe", False) \
                    and any(getattr(type(callback), hook, None) is not getattr(base, hook)
                            for hook in _BATCH_ENDS):
                return True
        return model.weights[0].value.device.type != "cpu"
    except Exception:
        return True


def _listed(callbacks: Any) -> list[Any]:
    """The callbacks that ``fit``'s ``callbacks`` argument holds (a list, a ``CallbackList``)."""
    from keras.callbacks import CallbackList

    return callbacks.callbacks if isinstance(callbacks, CallbackList) else list(callbacks or [])


def _with_callback(given: Any, add: bool) -> tuple[_Recorder | None, Any]:
    """The user's AutologCallback and their callbacks, or (``add``) a new one and a new list
    holding it."""
    from keras.callbacks import CallbackList

    existing = _listed(given)
    found = next((cb for cb in existing if isinstance(cb, _Recorder)), None)
    if found is not None or not add:
        return found, given if given is not None else []
    callback = _callback.get()()
    if isinstance(given, CallbackList):  # fit uses a CallbackList as it is: make a copy
        copy = CallbackList([*existing, callback], model=given.model, **(given.params or {}))
        return callback, copy
    return callback, [*existing, callback]


# -- the model flavour -----------------------------------------------------------------------------


@hookimpl
def autolog_save_model(model: Any, path: Path, options: dict[str, Any]) -> dict[str, Any] | None:
    """A ``keras.Model``: the native ``.keras`` archive (architecture, weights, optimizer)."""
    keras: Any = sys.modules.get("keras")
    model_class = getattr(keras, "Model", None)
    if model_class is None or not isinstance(model, model_class):
        return None
    with _skip_sets_found():
        model.save(path / "model.keras")
    return {"flavor": "keras", "format": "keras", "framework_version": keras.__version__,
            "backend": keras.backend.backend(), "class": values.qualified_name(type(model)),
            "file": "model.keras"}


@contextmanager
def _skip_sets_found() -> Iterator[None]:
    """Keras's saving looks up the attributes it skips on each object type under
    ``saving_attr_skiplist_<type>`` but caches them under ``saving_attr_skipset_<type>`` (Keras
    3.15; 3.0 uses one name), so every ``model.save`` builds reference ``Layer``, ``Optimizer``
    and ``Metric`` objects again: 2.6 of the 12.6 ms that a small MLP's save takes. During
    autolog's save the sets Keras cached already are found under the name it looks for;
    afterwards its state is as it was, so the user's own saves behave as Keras makes them."""
    tracker: Any = None
    added: list[str] = []
    try:
        from keras.src.backend.common import global_state

        tracker = global_state.GLOBAL_STATE_TRACKER  # thread-local; clear_session replaces it
        for name, value in list(vars(tracker).items()):
            if name.startswith("saving_attr_skipset_") and isinstance(value, set):
                alias = "saving_attr_skiplist_" + name.removeprefix("saving_attr_skipset_")
                if getattr(tracker, alias, None) is None:
                    setattr(tracker, alias, value)
                    added.append(alias)
    except Exception:  # another Keras: it saves as it always does
        pass
    try:
        yield
    finally:
        for alias in added:
            vars(tracker).pop(alias, None)


@hookimpl
def autolog_load_model(spec: dict[str, Any], path: Path) -> Any:
    """``keras.saving.load_model``: custom classes must be registered
    (``@keras.saving.register_keras_serializable``) or importable, as for Keras itself."""
    if spec.get("flavor") != "keras":
        return None
    import keras

    file = path / spec.get("file", "model.keras")
    try:
        return keras.saving.load_model(file)
    except (TypeError, ValueError) as exc:
        found = re.search(r"Could not locate class '([^']+)'", str(exc))
        if found is None:
            raise
        missing = found.group(1)
        raise ModelLoadError(
            f"Keras could not rebuild the model: its class {missing!r} is not known here. "
            f"Define or import it in this process, registered with "
            f"@keras.saving.register_keras_serializable() (a class defined in the training "
            f"script must be defined or imported here too), then call autolog.load_model "
            f"again; or keras.saving.load_model('{file}', custom_objects={{'{missing}': "
            f"{missing}}})") from exc
