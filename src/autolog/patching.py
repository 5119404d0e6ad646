"""Safe patching on wrapt: exact revert, exception transparency, one outermost call logged.

An integration describes what it does around one training call as a :class:`TrainingCall`
(``before``, ``after``, ``failed``: all autolog code) and asks a :class:`Patcher` to wrap the
framework's method with it. The wrapper guarantees:

- the framework's call runs exactly once, with the user's arguments unless ``before`` returned
  new ones, whatever autolog's own code does;
- an exception from the framework or the user's code propagates unchanged (the same object; the
  wrapper adds no chaining), and the run records it as FAILED (KILLED for KeyboardInterrupt);
- an exception from autolog's code is warned about once per place and swallowed
  (``AUTOLOG_STRICT=1`` raises it);
- training calls made inside a training call (a Pipeline's steps, a search's inner fits, the
  XGBoost scikit-learn API calling ``xgboost.train``) are not logged again: a process-wide
  counter (in the runtime) marks the outermost call, from whatever thread the inner calls come.

``Patcher.revert()`` puts back exactly what was in each class's ``__dict__`` (or removes the
attribute when it was inherited), so ``disable()`` leaves the framework as it found it.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import wrapt

from ._runtime import runtime
from .report import internal_error

__all__ = ["Patcher", "TrainingCall", "clear_import_callbacks", "in_training", "on_import",
           "patcher"]

_MISSING = object()


def in_training() -> bool:
    """True while an autologged training call is in progress (nested calls are not logged)."""
    return runtime.training.active


def patcher() -> Patcher:
    """The process's patcher: every patch autolog makes goes through it, so ``disable()``
    reverts them all."""
    with runtime.lock:
        if runtime.patcher is None:
            runtime.patcher = Patcher(lambda: runtime.enabled)
        return runtime.patcher


class TrainingCall:
    """autolog's work around one training call. Subclass and override what you need.

    One instance is made per outermost call, with the bound ``instance`` (None for functions) and
    the call's ``args`` and ``kwargs``. Every method runs inside autolog's error isolation.
    """

    #: the place named in warnings about this integration's failures
    place = "integration"
    #: also run while autolog is disabled (a callback added by hand records without enable())
    when_disabled = False

    def __init__(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]):
        self.instance = instance
        self.args = args
        self.kwargs = kwargs

    def before(self) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
        """Start logging; return ``(args, kwargs)`` to call the framework with others."""
        return None

    def after(self, result: Any) -> None:
        """The call returned ``result``: log what it produced, end the run."""

    def failed(self, exc: BaseException) -> None:
        """The call raised ``exc`` (which propagates unchanged after this)."""


class _Patch(wrapt.FunctionWrapper):
    """Marks wrappers autolog installed, so patching twice is a no-op."""


def _make_wrapper(factory: Callable[..., TrainingCall], is_enabled: Callable[[], bool]
                  ) -> Callable[..., Any]:
    always = getattr(factory, "when_disabled", False)

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
        training = runtime.training
        if not (always or is_enabled()) or \
                training.nested(own_run=runtime.active_run() is not None):
            return wrapped(*args, **kwargs)
        with training:
            call = None
            call_args, call_kwargs = args, kwargs
            try:
                call = factory(instance, args, kwargs)
                replaced = call.before()
                if replaced is not None:
                    call_args, call_kwargs = replaced
            except Exception as exc:
                internal_error(_place(factory, call), exc)
                call, call_args, call_kwargs = None, args, kwargs
            try:
                result = wrapped(*call_args, **call_kwargs)
            except BaseException as exc:
                if call is not None:
                    _isolated(call.failed, exc, call)
                raise
            if call is not None:
                _isolated(call.after, result, call)
            return result

    return wrapper


def _place(factory: Any, call: TrainingCall | None) -> str:
    return call.place if call is not None else getattr(factory, "place", "integration")


def _isolated(method: Callable[[Any], None], arg: Any, call: TrainingCall) -> None:
    try:
        method(arg)
    except Exception as exc:
        internal_error(call.place, exc)


class Patcher:
    """Applies patches and remembers them, so ``revert`` restores the originals exactly."""

    def __init__(self, is_enabled: Callable[[], bool] = lambda: True):
        self._is_enabled = is_enabled
        self._patches: list[tuple[Any, str, Any]] = []  # (owner, attribute, original or _MISSING)

    def __len__(self) -> int:
        return len(self._patches)

    def is_patched(self, owner: Any, attribute: str) -> bool:
        return isinstance(vars(owner).get(attribute), _Patch)

    def training(self, owner: Any, attribute: str, factory: Callable[..., TrainingCall]) -> bool:
        """Wrap ``owner.attribute`` (a class or module) with the training-call wrapper.

        Returns False when it is already patched or does not exist.
        """
        return self.wrap(owner, attribute, _make_wrapper(factory, self._is_enabled))

    def wrap(self, owner: Any, attribute: str, wrapper: Callable[..., Any]) -> bool:
        """Wrap ``owner.attribute`` with a raw wrapt wrapper ``(wrapped, instance, args, kw)``."""
        if self.is_patched(owner, attribute) or not hasattr(owner, attribute):
            return False
        original = vars(owner).get(attribute, _MISSING)
        wrapt.wrap_object(owner, attribute, _Patch, (wrapper,))
        self._patches.append((owner, attribute, original))
        return True

    def set(self, owner: Any, attribute: str, value: Any) -> None:
        """Replace ``owner.attribute`` outright (e.g. ``__init_subclass__``), revertibly."""
        original = vars(owner).get(attribute, _MISSING)
        setattr(owner, attribute, value)
        self._patches.append((owner, attribute, original))

    def revert(self) -> None:
        while self._patches:
            owner, attribute, original = self._patches.pop()
            if original is _MISSING:
                try:
                    delattr(owner, attribute)
                except AttributeError:
                    pass
            else:
                setattr(owner, attribute, original)


# -- post-import hooks ---------------------------------------------------------------------------

def on_import(module_name: str, callback: Callable[[ModuleType], None]) -> None:
    """Call ``callback(module)`` once ``module_name`` is imported (now, if it already is).

    wrapt's post-import hooks cannot be unregistered, so one dispatcher per module name is
    registered with wrapt and the callbacks live in the runtime, where
    :func:`clear_import_callbacks` removes them.
    """
    with runtime.lock:
        runtime.import_callbacks.setdefault(module_name, []).append(callback)
        first = module_name not in runtime.import_hooks
        runtime.import_hooks.add(module_name)
    if first:
        wrapt.register_post_import_hook(_dispatch, module_name)
    else:
        import sys

        module = sys.modules.get(module_name)
        if module is not None:
            _run_callback(callback, module)


def _dispatch(module: ModuleType) -> None:
    with runtime.lock:
        callbacks = list(runtime.import_callbacks.get(module.__name__, ()))
    for callback in callbacks:
        _run_callback(callback, module)


def _run_callback(callback: Callable[[ModuleType], None], module: ModuleType) -> None:
    try:
        callback(module)
    except Exception as exc:
        internal_error(f"patching {module.__name__}", exc)


def clear_import_callbacks() -> None:
    with runtime.lock:
        runtime.import_callbacks.clear()
