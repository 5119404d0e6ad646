"""The plugin manager: built-ins registered as plugins, entry points loaded one by one.

:class:`Plugins` is a small typed facade over ``pluggy.PluginManager`` (tox's habit): one method per
hook, so the rest of the code keeps its types. Hooks are called implementation by implementation,
each in its own ``try``, because a pluggy fan-out stops at the first exception and one broken
plugin must not silence the others; third-party plugins before the built-ins, so a plugin can
take over what a built-in does.

Entry points load when the manager is made; built-in plugin modules load when a hook needs
them: a backend when it is configured, an integration when its framework is imported (the
modules that trigger it are in :data:`BUILTIN_INTEGRATIONS`, known without importing it), the
samplers when a run is monitored, and every built-in when a model is saved or loaded or when
everything is listed (``autolog doctor``). So ``enable()`` imports none of them.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable, Iterator
from functools import cache
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

__all__ = ["BUILTIN_INTEGRATIONS", "Plugins", "builtin_modules", "get_plugins",
           "installed_version", "reset"]

ENTRY_POINT_GROUP = "autolog"
_SECTION = b"[" + ENTRY_POINT_GROUP.encode() + b"]"  # its header in an entry_points.txt
_BUILTIN_PACKAGES = ("autolog.backends", "autolog.integrations", "autolog.system")
_BUILTIN_MODULES = ("autolog.context", "autolog.models")

#: each built-in integration and the modules whose import patches it (its ``modules``; a test
#: keeps the two the same), so that ``enable()`` watches them without importing the integration
BUILTIN_INTEGRATIONS: dict[str, tuple[str, ...]] = {
    "keras": ("keras",),
    "lightning": ("lightning.pytorch", "pytorch_lightning"),
    "sklearn": ("sklearn.base", "sklearn.model_selection"),
    "transformers": ("transformers.trainer",),
    "xgboost": ("xgboost",),
}


def installed_version(distributions: tuple[str, ...]) -> str | None:
    """The installed version of the first of ``distributions`` that is installed."""
    from importlib import metadata

    for dist in distributions:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def may_declare_entry_points() -> bool:
    """Whether an installed distribution may declare an ``autolog`` entry point: a look at the
    ``entry_points.txt`` of each ``*.dist-info`` / ``*.egg-info`` on ``sys.path`` (a few ms),
    True for anything it cannot look into that way (a zip file on the path)."""
    for entry in sys.path:
        if os.path.isfile(entry):
            return True
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith((".dist-info", ".egg-info")) and \
                    _declares(os.path.join(entry or ".", name, "entry_points.txt")):
                return True
    return False


def _declares(path: str) -> bool:
    try:  # os.open, not open(): hundreds of distributions, most without the file
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        data = b""
        while chunk := os.read(fd, 1 << 16):
            data += chunk
    except OSError:
        return False
    finally:
        os.close(fd)
    return _SECTION in data


@cache
def builtin_modules() -> tuple[tuple[str, str], ...]:
    """``(plugin name, module)`` of every built-in plugin module, found by listing packages
    (once a process: the package's files do not change under it)."""
    found = [(m.rsplit(".", 1)[1], m) for m in _BUILTIN_MODULES]
    for package in _BUILTIN_PACKAGES:
        for name in _submodules(importlib.import_module(package).__path__):
            if name != "base" and not name.startswith("_"):
                found.append((name, f"{package}.{name}"))
    return tuple(found)


def _submodules(path: Iterable[str]) -> list[str]:
    """The modules and packages in a package's directories, sorted: its ``.py`` files and its
    folders with an ``__init__.py``, by a listing (``pkgutil`` costs 1 ms of ``enable()``); what
    is not a folder (a zip file) is left to ``pkgutil``."""
    names: set[str] = set()
    for folder in path:
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.name.endswith(".py"):
                        names.add(entry.name[:-3])
                    elif entry.is_dir() and os.path.isfile(os.path.join(entry.path,
                                                                        "__init__.py")):
                        names.add(entry.name)
        except NotADirectoryError:
            import pkgutil

            names.update(info.name for info in pkgutil.iter_modules([folder]))
        except OSError:
            continue  # gone (a stale namespace path): nothing to list, as for pkgutil
    names.discard("__init__")
    return sorted(names)


class Plugins:
    def __init__(self, settings: Settings):
        import pluggy  # loaded with the first plugin manager, not at ``import autolog``

        from . import hookspecs

        self.pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.failed: dict[str, str] = {}  # plugin name -> why it did not load
        self.blocked = set(settings.disable_plugins)
        self._builtins: dict[str, str] = {}  # module -> plugin name, of the built-ins loaded
        self._load_entry_points(settings.plugins)

    # -- built-ins, loaded when needed --------------------------------------------------------

    def load_builtins(self, package: str | None = None) -> None:
        """Register every built-in plugin module (under ``package``, when given)."""
        for name, module_name in builtin_modules():
            if package is None or module_name.startswith(package + "."):
                self._load_builtin(name, module_name)

    def _load_builtin(self, name: str, module_name: str) -> None:
        if name in self.blocked or module_name in self._builtins:
            return
        self._builtins[module_name] = name
        try:
            self.pm.register(importlib.import_module(module_name), name=name)
        except Exception as exc:  # a built-in that fails to import is our bug: say so
            self.failed[name] = f"{type(exc).__name__}: {exc}"
            internal_error(f"loading built-in plugin {name}", exc)

    def _load_frameworks_imported(self) -> None:
        """The built-in integrations whose framework is imported (only they can know its
        models), and the generic model support."""
        self._load_builtin("models", "autolog.models")
        for name, modules in BUILTIN_INTEGRATIONS.items():
            if any(m.partition(".")[0] in sys.modules for m in modules):
                self._load_builtin(name, f"autolog.integrations.{name}")

    def _load_entry_points(self, allowed: tuple[str, ...]) -> None:
        if not may_declare_entry_points():
            return  # importlib.metadata and its scan of every distribution cost 20 ms or more
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
        self.load_builtins()
        return sorted(name for name, _ in self.pm.list_name_plugin())

    def has(self, name: str) -> bool:
        """Is the plugin ``name`` registered? (No other built-in is loaded to answer.)"""
        return self.pm.has_plugin(name)

    def register(self, plugin: object, name: str | None = None) -> None:
        self.pm.register(plugin, name=name)

    def unregister(self, plugin: object) -> None:
        self.pm.unregister(plugin)

    # -- one method per hook ---------------------------------------------------------------------

    def backends(self, names: Iterable[str] | None = None) -> dict[str, type[Backend]]:
        """Every backend class by name; with ``names``, the built-ins loaded are only those
        (a name not found loads every built-in, so the caller can list what exists)."""
        if names is None:
            self.load_builtins("autolog.backends")
        else:
            builtin = {module for _, module in builtin_modules()}
            for name in names:
                if f"autolog.backends.{name}" in builtin:
                    self._load_builtin(name, f"autolog.backends.{name}")
        found = self._backends()
        if names is not None and not set(names) <= set(found) | {"local"}:
            self.load_builtins("autolog.backends")
            found = self._backends()
        return found

    def _backends(self) -> dict[str, type[Backend]]:
        found: dict[str, type[Backend]] = {}
        for _ in self._each("autolog_register_backends",
                            register=lambda cls: found.setdefault(cls.name, cls)):
            pass
        return found

    def integrations(self) -> dict[str, Integration]:
        """Every integration, built-in and third-party (each built-in module is imported)."""
        self.load_builtins("autolog.integrations")
        return self._integrations()

    def integration(self, name: str) -> Integration | None:
        """One integration by name, its built-in module loaded if it is one."""
        if name in BUILTIN_INTEGRATIONS:
            self._load_builtin(name, f"autolog.integrations.{name}")
        return self._integrations().get(name)

    def watched_modules(self) -> dict[str, tuple[str, ...]]:
        """Integration name -> the modules whose import patches it, without importing the
        built-in integrations (third-party ones are loaded already, from their entry points)."""
        found = {name: modules for name, modules in BUILTIN_INTEGRATIONS.items()
                 if name not in self.blocked}
        for name, integration in self._integrations().items():
            found.setdefault(name, tuple(integration.modules))
        return found

    def _integrations(self) -> dict[str, Integration]:
        found: dict[str, Integration] = {}
        for _ in self._each("autolog_register_integrations",
                            register=lambda obj: found.setdefault(obj.name, obj)):
            pass
        return found

    def samplers(self) -> list[type[Sampler]]:
        self.load_builtins("autolog.system")
        found: dict[str, type[Sampler]] = {}
        for _ in self._each("autolog_register_samplers",
                            register=lambda cls: found.setdefault(cls.name, cls)):
            pass
        return list(found.values())

    def run_context(self, run: Run) -> dict[str, str]:
        self._load_builtin("context", "autolog.context")
        tags: dict[str, str] = {}
        for result in self._each("autolog_run_context", run=run):
            if result:
                tags.update(result)
        return tags

    def save_model(self, model: Any, path: Path, options: dict[str, Any]) -> dict[str, Any] | None:
        self._load_frameworks_imported()
        for spec in self._each("autolog_save_model", model=model, path=path, options=options):
            if spec is not None:
                return spec
        return None

    def load_model(self, spec: dict[str, Any], path: Path) -> tuple[Any, list[Any]]:
        """The first model a plugin loads, and ``(plugin name, exception)`` of each plugin that
        failed before it: a load that fails is the caller's error to see, not a warning."""
        self.load_builtins()
        failures: list[tuple[str, Exception]] = []
        for impl in self._impls("autolog_load_model"):
            try:
                model = impl.function(*({"spec": spec, "path": path}[arg]
                                        for arg in impl.argnames))
            except Exception as exc:
                failures.append((impl.plugin_name, exc))
                continue
            if model is not None:
                return model, failures
        return None, failures

    def _impls(self, hook_name: str) -> list[Any]:
        """A hook's implementations: third-party plugins first (the last registered first,
        pluggy's order), then the built-ins."""
        hook = getattr(self.pm.hook, hook_name)
        builtin = set(self._builtins.values())
        return sorted(reversed(hook.get_hookimpls()), key=lambda i: i.plugin_name in builtin)

    def _each(self, hook_name: str, **kwargs: Any) -> Iterator[Any]:
        """Call each implementation, isolating failures: third-party plugins first (the last
        registered first, pluggy's order), then the built-ins."""
        for impl in self._impls(hook_name):
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
