"""The :class:`Integration` base class and :class:`RunScope`, what every integration uses.

An integration module reads like DVCLive's: what it patches, what it reads from the framework,
which ``Run`` calls it makes. It imports its framework inside functions only, knows nothing of
backends, files or threads, and registers itself from the ``autolog_register_integrations`` hook.
"""

from __future__ import annotations

import functools
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from importlib import metadata
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from ..patching import Patcher
    from ..run import Run

__all__ = ["CallbackOptions", "Integration", "LazyCallback", "RunScope", "isolated"]


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
        for dist in self.distributions:
            try:
                return metadata.version(dist)
            except metadata.PackageNotFoundError:
                continue
        return None

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


class CallbackOptions:
    """The options the Keras and Lightning callbacks both take (checked when given)."""

    def __init__(self, log_every_n_steps: int | None = None, log_models: bool | None = None):
        super().__init__()  # the framework's Callback, next in the built class's MRO
        if log_every_n_steps is not None and log_every_n_steps < 1:
            raise ValueError(f"log_every_n_steps must be 1 or more, got {log_every_n_steps}")
        self.log_every_n_steps = log_every_n_steps
        self.log_models = log_models


class LazyCallback:
    """``AutologCallback`` for a framework whose callback base class cannot be imported at module
    level: the class (``recorder`` + the framework's base) is built on first use and cached."""

    def __init__(self, recorder: type, base: Callable[[], type], module: str):
        self._recorder, self._base, self._module = recorder, base, module
        self._cls: type | None = None
        self._lock = threading.Lock()  # one class, or isinstance checks would disagree

    def get(self) -> type:
        with self._lock:
            if self._cls is None:
                self._cls = type("AutologCallback", (self._recorder, self._base()),
                                 {"__module__": self._module, "__qualname__": "AutologCallback",
                                  "__doc__": self._recorder.__doc__})
            return self._cls

    def module_getattr(self, name: str) -> type:
        """The module's ``__getattr__``: ``AutologCallback`` is built on first access."""
        if name == "AutologCallback":
            return self.get()
        raise AttributeError(f"module {self._module!r} has no attribute {name!r}")


def isolated(framework: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Decorator for callback methods a framework calls bare (Keras, Lightning, transformers):
    autolog's own errors are warned about once per method (raised when strict), and the
    training goes on."""
    from ..errors import internal_error

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


class RunScope:
    """The run a training call logs into: the active run, or a new one that this scope ends.

    ``with autolog.start_run():`` around training makes the training log into the user's run
    (left open); otherwise each training call gets its own run, ended FINISHED, FAILED (an
    exception) or KILLED (KeyboardInterrupt) by :meth:`close`.
    """

    def __init__(self, name: str | None = None, *, default_name: str | None = None,
                 tags: Mapping[str, Any] | None = None, parent: Run | None = None,
                 force_new: bool = False):
        """``name`` is used as given; ``default_name`` (e.g. the estimator class) names a new run
        unless ``AUTOLOG_RUN_NAME`` does, with a generated suffix that tells runs apart."""
        from .. import api

        active = api.active_run()
        self.owned = force_new or parent is not None or active is None
        if self.owned:
            self.run = api.start_run(name, tags=tags, parent=parent or active,
                                     default_name=default_name)
        else:
            assert active is not None
            self.run = active
            if tags:
                self.run.set_tags(tags)

    def close(self, exc: BaseException | None = None) -> None:
        from ..run import status_for

        if self.owned:
            self.run.end(status_for(exc))
