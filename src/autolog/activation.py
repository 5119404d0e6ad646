"""Switching autologging on and off: which integrations patch which modules.

:func:`activate` reverts what was patched, then asks each chosen integration to patch its modules
as soon as they are imported (at once for those already imported) through the one patcher;
:func:`deactivate` reverts every patch exactly. The state (enabled, what was patched, the
post-import callbacks) lives in the runtime.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ._runtime import runtime
from .capture import args
from .errors import ConfigError
from .patching import on_import, patcher, revert_all
from .plugins import get_plugins

__all__ = ["activate", "capture_args", "choose_integrations", "deactivate", "is_enabled"]


def is_enabled() -> bool:
    return runtime.enabled


def choose_integrations(frameworks: Iterable[str] | str | None,
                        exclude: Iterable[str] | str | None) -> dict[str, tuple[str, ...]]:
    """The integrations ``enable(frameworks=..., exclude=...)`` asks for, each with the modules
    whose import patches it."""
    available = get_plugins().watched_modules()
    wanted = set(available)
    if frameworks is not None:
        wanted = _names("frameworks", frameworks, available)
    wanted -= _names("exclude", exclude, available) if exclude is not None else set()
    return {name: available[name] for name in sorted(wanted)}


def _names(arg: str, given: Iterable[str] | str, available: Mapping[str, Any]) -> set[str]:
    names = {given} if isinstance(given, str) else set(given)
    unknown = names - set(available)
    if unknown:
        raise ConfigError(f"enable({arg}=...): unknown framework(s) {', '.join(sorted(unknown))}; "
                          f"accepted: {', '.join(sorted(available))}")
    return names


def activate(integrations: Mapping[str, tuple[str, ...]]) -> None:
    """Revert what was patched, then patch each integration's modules once imported."""
    with runtime.lock:
        revert_all()
        runtime.enabled = True
        for name, modules in integrations.items():
            _watch(name, modules)


def capture_args() -> None:
    """Record the entry point's argparse, click/typer and Hydra values as params."""
    with runtime.lock:
        if runtime.enabled:
            args.watch()


def deactivate() -> None:
    """Stop recording training calls and restore every patched framework method exactly."""
    with runtime.lock:
        runtime.enabled = False
        revert_all()


def _watch(name: str, modules: tuple[str, ...]) -> None:
    def patch(module: Any) -> None:
        with runtime.lock:
            if not runtime.enabled or module.__name__ in runtime.patched_modules:
                return
            runtime.patched_modules.add(module.__name__)
            integration = get_plugins().integration(name)
            if integration is not None:
                integration.patch(patcher(), module)

    for module_name in modules:
        on_import(module_name, patch)


