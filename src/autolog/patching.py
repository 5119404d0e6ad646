"""Safe patching: exact revert, exception transparency, one outermost call logged.

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

Post-import hooks are a finder on ``sys.meta_path`` (:class:`ImportWatcher`): for a watched
module it hands the import system the spec the other finders give, with a loader that runs
the module and then the callbacks.

A wrapper is called as wrapt's are, ``wrapper(wrapped, instance, args, kwargs)`` (``wrapped``
bound to ``instance``, ``args`` without it), but the patches are plain Python, not wrapt's
``FunctionWrapper``: importing wrapt costs a script 30 to 40 ms where nothing else has imported
asyncio (``autolog run``'s argparse patch happens in every script). A function in a class
becomes a function (:func:`_method`) and a module's function a function (:func:`_function`),
each marked by its code object; any other descriptor (a classmethod, scikit-learn's
``available_if``) is wrapped by :class:`_Descriptor`, which binds it as the class would, then
wraps the bound callable. ``functools.wraps`` keeps names, docstrings and (through
``__wrapped__``) signatures.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from types import FunctionType, MethodType, ModuleType
from typing import Any

from ._runtime import runtime
from .report import internal_error

__all__ = ["ImportWatcher", "Patcher", "TrainingCall", "in_training", "on_import", "patcher",
           "revert_all"]

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


def _wrap_object(owner: Any, attribute: str, wrapper: Callable[..., Any]) -> None:
    """Replace ``owner.attribute`` by a wrapper around it, as ``wrapt.wrap_object`` does: on a
    class, around the raw descriptor from the first ``__dict__`` of its MRO that has it (a
    staticmethod or classmethod as such), not the bound attribute."""
    original = None
    in_class = isinstance(owner, type)
    if in_class:
        for cls in owner.__mro__:
            if attribute in vars(cls):
                original = vars(cls)[attribute]
                break
    if original is None:
        original = getattr(owner, attribute)
    if in_class and isinstance(original, FunctionType):
        patched: Any = _method(original, wrapper)
    elif in_class and hasattr(type(original), "__get__"):
        patched = _Descriptor(original, wrapper)
    else:
        patched = _function(original, wrapper)
    setattr(owner, attribute, patched)


def _method(function: Callable[..., Any], wrapper: Callable[..., Any]) -> Callable[..., Any]:
    """A function of a class, wrapped: called on an instance (or through the class with the
    instance first), it calls ``wrapper(bound function, instance, args, kwargs)``."""
    @functools.wraps(function)
    def method(self: Any, /, *args: Any, **kwargs: Any) -> Any:
        return wrapper(MethodType(function, self), self, args, kwargs)

    return method


def _function(function: Callable[..., Any], wrapper: Callable[..., Any]) -> Callable[..., Any]:
    """A module's function (or any callable that is not a descriptor of a class), wrapped."""
    @functools.wraps(function)
    def patched(*args: Any, **kwargs: Any) -> Any:
        return wrapper(function, None, args, kwargs)

    return patched


#: the code objects of autolog's patches: how a patch is told from a function that is not one
#: (``functools.wraps`` copies a function's attributes, so a mark there would spread)
_PATCH_CODES = frozenset({_method(lambda self: None, lambda *a: None).__code__,
                          _function(lambda: None, lambda *a: None).__code__})


class _Descriptor:
    """Any other descriptor of a class (a classmethod, a staticmethod, ``available_if``),
    wrapped: bound as the class would bind it (so ``hasattr`` still asks it), then called
    through the wrapper with the instance wrapt would give (the class, for a classmethod)."""

    def __init__(self, descriptor: Any, wrapper: Callable[..., Any]):
        self.__wrapped__ = descriptor
        self._wrapper = wrapper
        for name in ("__module__", "__name__", "__qualname__", "__doc__"):
            value = getattr(descriptor, name, None)
            if isinstance(value, str):
                setattr(self, name, value)

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        descriptor, wrapper = self.__wrapped__, self._wrapper
        bound = descriptor.__get__(instance, owner)
        if isinstance(descriptor, classmethod):
            receiver = owner if instance is None else type(instance)
        elif isinstance(descriptor, staticmethod):
            receiver = None
        elif instance is None:  # through the class: the instance comes first, if at all
            def unbound(*args: Any, **kwargs: Any) -> Any:
                if not args:
                    return wrapper(bound, None, args, kwargs)
                return wrapper(descriptor.__get__(args[0], owner), args[0], args[1:], kwargs)

            return functools.wraps(bound)(unbound)
        else:
            receiver = instance

        def call(*args: Any, **kwargs: Any) -> Any:
            return wrapper(bound, receiver, args, kwargs)

        return functools.wraps(bound)(call)


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
        value = vars(owner).get(attribute)
        if isinstance(value, FunctionType):
            return value.__code__ in _PATCH_CODES
        return isinstance(value, _Descriptor)

    def training(self, owner: Any, attribute: str, factory: Callable[..., TrainingCall]) -> bool:
        """Wrap ``owner.attribute`` (a class or module) with the training-call wrapper.

        Returns False when it is already patched or does not exist.
        """
        return self.wrap(owner, attribute, _make_wrapper(factory, self._is_enabled))

    def wrap(self, owner: Any, attribute: str, wrapper: Callable[..., Any]) -> bool:
        """Wrap ``owner.attribute`` with a wrapper ``(wrapped, instance, args, kwargs)``."""
        if self.is_patched(owner, attribute) or not hasattr(owner, attribute):
            return False
        original = vars(owner).get(attribute, _MISSING)
        _wrap_object(owner, attribute, wrapper)
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

    The callbacks live in the runtime, where :func:`revert_all` removes them; the finder that
    calls them is put on ``sys.meta_path`` once per process.
    """
    with runtime.lock:
        runtime.import_callbacks.setdefault(module_name, []).append(callback)
        if not any(isinstance(f, ImportWatcher) for f in sys.meta_path):
            sys.meta_path.insert(0, ImportWatcher())
    module = sys.modules.get(module_name)
    if module is not None:
        _run_callback(callback, module)


class ImportWatcher:
    """A ``sys.meta_path`` finder that finds nothing itself: for a module with callbacks, it
    returns the spec the finders after it return, its loader wrapped by :class:`_Loader`."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in runtime.import_callbacks:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or isinstance(finder, ImportWatcher) or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader)
                return spec
        return None


class _Loader:
    """Runs the module with its own loader (put back on the module first, so nothing sees this
    one afterwards), then the callbacks."""

    def __init__(self, loader: Any):
        self.loader = loader

    def create_module(self, spec: Any) -> Any:
        create = getattr(self.loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        _dispatch(sys.modules.get(module.__name__, module))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)


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


def revert_all() -> None:
    """Forget the post-import callbacks and put back every patched attribute (``disable()``, and
    the exit once the runs have ended); the caller holds ``runtime.lock``."""
    runtime.import_callbacks.clear()
    if runtime.patcher is not None:
        runtime.patcher.revert()
    runtime.patched_modules.clear()
