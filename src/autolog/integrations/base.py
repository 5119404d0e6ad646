"""What every integration builds on: :class:`Integration`, :class:`ScopedCall`, the callbacks'
shared pieces (:class:`CallbackOptions`, :class:`LazyCallback`, :func:`isolated`).

An integration module reads like DVCLive's: what it patches, how the framework's events become
``Run`` calls, how the model is saved and loaded. It imports its framework inside functions only,
knows nothing of backends, files or threads, takes its run from a
:class:`~autolog.runs.RunScope`, and registers itself from the ``autolog_register_integrations``
hook.
"""

from __future__ import annotations

import functools
import importlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

from ..patching import TrainingCall
from ..plugins import installed_version
from ..report import internal_error
from ..runs import RunScope

if TYPE_CHECKING:
    from ..patching import Patcher
    from ..run import Run

__all__ = ["CallbackOptions", "Integration", "LazyCallback", "RunScope", "ScopedCall",
           "isolated", "subclasses"]


class Integration(ABC):
    """A framework autolog records. Subclass, fill in the class attributes and ``patch``."""

    #: the name used in ``enable(frameworks=[...])``, ``exclude=`` and ``autolog doctor``
    name: ClassVar[str] = ""
    #: modules whose import triggers ``patch`` (each one, once: both namespaces of a framework)
    modules: ClassVar[tuple[str, ...]] = ()
    #: distributions whose installed version ``autolog doctor`` reports (first found wins)
    distributions: ClassVar[tuple[str, ...]] = ()
    #: the versions this integration is tested with, for ``autolog doctor``
    supported: ClassVar[str] = ""

    @abstractmethod
    def patch(self, patcher: Patcher, module: ModuleType) -> None:
        """Patch ``module`` (one of ``modules``, just imported) through ``patcher``."""

    def installed_version(self) -> str | None:
        return installed_version(self.distributions)

    def is_supported(self, version: str) -> bool:
        """Whether ``version`` is within ``supported`` (a ``>=X.Y`` lower bound)."""
        if not self.supported.startswith(">="):
            return True
        return _version_tuple(version) >= _version_tuple(self.supported[2:])


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(c for c in piece if c.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def subclasses(cls: type) -> Iterator[type]:
    """Every class deriving from ``cls``, at any depth, once each."""
    seen: set[type] = set()
    stack: list[type] = list(cls.__subclasses__())
    while stack:
        sub = stack.pop()
        if sub not in seen:
            seen.add(sub)
            yield sub
            stack.extend(sub.__subclasses__())


class ScopedCall(TrainingCall):
    """A training call with its run: :meth:`start` opens the scope and logs what the call is
    given, :meth:`log_results` what it returned; the run is ended either way (FAILED, or
    KILLED, when the call raises)."""

    scope: RunScope | None = None

    def open(self, name: str | None = None, **scope: Any) -> Run:
        """Open this call's run scope (``RunScope`` arguments); the run, inert or not."""
        self.scope = RunScope(name, **scope)
        return self.scope.run

    def log_results(self, run: Run, result: Any) -> None:
        """What the call returned, logged into its (recording) run."""

    def after(self, result: Any) -> None:
        scope = self.scope
        try:
            if scope is not None and scope.run.active:
                self.log_results(scope.run, result)
        finally:
            if scope is not None:
                scope.close()

    def failed(self, exc: BaseException) -> None:
        if self.scope is not None:
            self.scope.close(exc)


class CallbackOptions:
    """The options the Keras and Lightning callbacks both take (checked when given)."""

    def __init__(self, log_every_n_steps: int | None = None, log_models: bool | None = None):
        super().__init__()  # the framework's Callback, next in the built class's MRO
        if log_every_n_steps is not None and log_every_n_steps < 1:
            raise ValueError(f"log_every_n_steps must be 1 or more, got {log_every_n_steps}")
        self.log_every_n_steps = log_every_n_steps
        self.log_models = log_models


class LazyCallback:
    """``AutologCallback`` classes for frameworks whose callback base class cannot be imported at
    module level: each class (``recorder`` + the framework's base) is built on first use, cached,
    and named so that pickle finds it again through the module's ``__getattr__``.

    ``bases`` maps a key (a framework namespace) to ``(module, attribute)`` of the base class; the
    first key is the default ``AutologCallback``, the others are reachable as
    ``AutologCallback_<key with dots as underscores>`` too (Lightning's two namespaces).
    """

    def __init__(self, recorder: type, module: str, bases: dict[str, tuple[str, str]]):
        self._recorder, self._module, self._bases = recorder, module, bases
        self._classes: dict[str, type] = {}
        self._lock = threading.Lock()  # one class per key, or isinstance checks would disagree

    def get(self, key: str | None = None) -> type:
        key = key or next(iter(self._bases))
        with self._lock:
            cls = self._classes.get(key)
            if cls is None:
                module, attribute = self._bases[key]
                base = getattr(importlib.import_module(module), attribute)
                qualname = "AutologCallback" if len(self._bases) == 1 else self.name(key)
                cls = type("AutologCallback", (self._recorder, base),
                           {"__module__": self._module, "__qualname__": qualname,
                            "__doc__": self._recorder.__doc__})
                self._classes[key] = cls
            return cls

    @staticmethod
    def name(key: str) -> str:
        return "AutologCallback_" + key.replace(".", "_")

    def module_getattr(self, name: str) -> type:
        """The module's ``__getattr__``: the callback classes are built on first access."""
        if name == "AutologCallback":
            return self.get(self.default_key())
        for key in self._bases:
            if name == self.name(key):
                return self.get(key)
        raise AttributeError(f"module {self._module!r} has no attribute {name!r}")

    def default_key(self) -> str:
        """The first key whose module is imported, else the first whose package is installed."""
        import sys
        from importlib.util import find_spec

        keys = list(self._bases)
        if len(keys) == 1:
            return keys[0]
        for key in keys:
            if key in sys.modules:
                return key
        for key in keys:
            if find_spec(key.split(".")[0]) is not None:
                return key
        raise ImportError(f"{self._module}.AutologCallback needs one of "
                          f"{', '.join(k.split('.')[0] for k in keys)}")


def isolated(framework: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Decorator for callback methods a framework calls bare (Keras, Lightning, transformers):
    autolog's own errors are warned about once per method (raised when strict), and the
    training goes on."""

    def decorate(method: Callable[..., None]) -> Callable[..., None]:
        place = f"{framework} AutologCallback.{method.__name__}"

        @functools.wraps(method)
        def guarded(self: Any, *args: Any, **kwargs: Any) -> None:
            try:
                method(self, *args, **kwargs)
            except Exception as exc:
                internal_error(place, exc)

        return guarded

    return decorate
