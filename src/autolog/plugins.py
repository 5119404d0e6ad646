"""The plugin manager: built-ins registered as plugins, entry points loaded one by one.

:class:`Plugins` is a small typed facade over ``pluggy.PluginManager`` (tox's habit): one method per
hook, so the rest of the code keeps its types. Hooks are called implementation by implementation,
each in its own ``try``, because a pluggy fan-out stops at the first exception and one broken
plugin must not silence the others.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._runtime import runtime
from .config import current
from .report import internal_error, warn_once

if TYPE_CHECKING:
    from .config import Settings
    from .delivery.contract import Backend
    from .integrations.base import Integration
    from .run import Run
    from .system import Sampler

__all__ = ["Plugins", "builtin_modules", "get_plugins", "installed_version", "reset"]

ENTRY_POINT_GROUP = "autolog"
_BUILTIN_PACKAGES = ("autolog.backends", "autolog.integrations", "autolog.system")
_BUILTIN_MODULES = ("autolog.context", "autolog.models")


def installed_version(distributions: tuple[str, ...]) -> str | None:
    """The installed version of the first of ``distributions`` that is installed."""
    from importlib import metadata

    for dist in distributions:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def builtin_modules() -> list[tuple[str, str]]:
    """``(plugin name, module)`` of every built-in plugin module, found by listing packages."""
    found = [(m.rsplit(".", 1)[1], m) for m in _BUILTIN_MODULES]
    for package in _BUILTIN_PACKAGES:
        path = importlib.import_module(package).__path__
        for info in pkgutil.iter_modules(path):
            if info.name != "base" and not info.name.startswith("_"):
                found.append((info.name, f"{package}.{info.name}"))
    return found


class Plugins:
    def __init__(self, settings: Settings):
        import pluggy  # loaded with the first plugin manager, not at ``import autolog``

        from . import hookspecs

        self.pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.failed: dict[str, str] = {}  # plugin name -> why it did not load
        self.blocked = set(settings.disable_plugins)
        self._register_builtins()
        self._load_entry_points(settings.plugins)

    def _register_builtins(self) -> None:
        for name, module_name in builtin_modules():
            if name in self.blocked:
                continue
            try:
                self.pm.register(importlib.import_module(module_name), name=name)
            except Exception as exc:  # a built-in that fails to import is our bug: say so
                self.failed[name] = f"{type(exc).__name__}: {exc}"
                internal_error(f"loading built-in plugin {name}", exc)

    def _load_entry_points(self, allowed: tuple[str, ...]) -> None:
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in self.blocked or (allowed and ep.name not in allowed):
                continue
            if self.pm.has_plugin(ep.name):
                continue
            try:
                self.pm.register(ep.load(), name=ep.name)
            except Exception as exc:
                self.failed[ep.name] = f"{type(exc).__name__}: {exc}"
                warn_once(f"plugin {ep.name}",
                          f"autolog: plugin {ep.name!r} ({ep.value}) failed to load and was "
                          f"skipped: {type(exc).__name__}: {exc}", stacklevel=2)

    def names(self) -> list[str]:
        return sorted(name for name, _ in self.pm.list_name_plugin())

    def register(self, plugin: object, name: str | None = None) -> None:
        self.pm.register(plugin, name=name)

    def unregister(self, plugin: object) -> None:
        self.pm.unregister(plugin)

    # -- one method per hook ---------------------------------------------------------------------

    def backends(self) -> dict[str, type[Backend]]:
        found: dict[str, type[Backend]] = {}
        for _ in self._each("autolog_register_backends",
                            register=lambda cls: found.setdefault(cls.name, cls)):
            pass
        return found

    def integrations(self) -> dict[str, Integration]:
        found: dict[str, Integration] = {}
        for _ in self._each("autolog_register_integrations",
                            register=lambda obj: found.setdefault(obj.name, obj)):
            pass
        return found

    def samplers(self) -> list[type[Sampler]]:
        found: dict[str, type[Sampler]] = {}
        for _ in self._each("autolog_register_samplers",
                            register=lambda cls: found.setdefault(cls.name, cls)):
            pass
        return list(found.values())

    def run_context(self, run: Run) -> dict[str, str]:
        tags: dict[str, str] = {}
        for result in self._each("autolog_run_context", run=run):
            if result:
                tags.update(result)
        return tags

    def save_model(self, model: Any, path: Path, options: dict[str, Any]) -> dict[str, Any] | None:
        for spec in self._each("autolog_save_model", model=model, path=path, options=options):
            if spec is not None:
                return spec
        return None

    def load_model(self, spec: dict[str, Any], path: Path) -> tuple[Any, list[Any]]:
        """The first model a plugin loads, and ``(plugin name, exception)`` of each plugin that
        failed before it: a load that fails is the caller's error to see, not a warning."""
        failures: list[tuple[str, Exception]] = []
        hook = self.pm.hook.autolog_load_model
        for impl in reversed(hook.get_hookimpls()):
            try:
                model = impl.function(*({"spec": spec, "path": path}[arg]
                                        for arg in impl.argnames))
            except Exception as exc:
                failures.append((impl.plugin_name, exc))
                continue
            if model is not None:
                return model, failures
        return None, failures

    def _each(self, hook_name: str, **kwargs: Any) -> Iterator[Any]:
        """Call each implementation in pluggy's order, isolating failures."""
        hook = getattr(self.pm.hook, hook_name)
        for impl in reversed(hook.get_hookimpls()):
            try:
                result = impl.function(*(kwargs[arg] for arg in impl.argnames))
            except Exception as exc:
                internal_error(f"plugin {impl.plugin_name}: {hook_name}", exc)
                continue
            yield result


def get_plugins(settings: Settings | None = None) -> Plugins:
    """The process's plugin manager, built on first use (never at ``import autolog``) from
    ``settings`` (default: the settings in force)."""
    with runtime.lock:
        if runtime.plugins is None:
            runtime.plugins = Plugins(settings or current())
        return runtime.plugins



def reset() -> None:
    """Forget the plugin manager; the next use builds a fresh one (after installing a plugin)."""
    with runtime.lock:
        runtime.plugins = None
