"""What ``autolog doctor`` reports: versions, frameworks, backends, samplers and plugins."""

from __future__ import annotations

import platform
from typing import Any

from ._version import __version__
from .config import current
from .plugins import get_plugins, installed_version

__all__ = ["report"]


def report() -> dict[str, Any]:
    settings = current()
    plugins = get_plugins(settings)
    return {
        "autolog": __version__,
        "python": platform.python_version(),
        "store": settings.dir,
        "configured_backends": list(settings.backend),
        "frameworks": [_framework(i) for i in plugins.integrations().values()],
        "backends": [{"name": "local", "installed": __version__,
                      "configured": "local" in settings.backend}]
                    + [{"name": name, "installed": installed_version(cls.distributions)
                        if cls.distributions else "built in",
                        "configured": name in settings.backend, **_tested(name, "")}
                       for name, cls in sorted(plugins.backends().items())],
        "samplers": [_sampler(cls, settings) for cls in plugins.samplers()],
        "plugins": plugins.names(),
        "failed_plugins": plugins.failed,
    }


def _framework(integration: Any) -> dict[str, Any]:
    installed = integration.installed_version()
    if installed is None:
        status = "not installed"
    elif integration.is_supported(installed):
        status = "supported: autolog.enable() records it"
    else:
        status = f"UNSUPPORTED version (needs {integration.supported})"
    return {"name": integration.name, "installed": installed,
            **_tested(integration.name, integration.supported), "status": status}


def _tested(name: str, supported: str) -> dict[str, Any]:
    """The range and the versions tested, from compatibility.toml (a plugin's: its own)."""
    from .compatibility import tested

    found = tested(name)
    if found is None:
        return {"supported": supported or "any", "tested": None}
    return found


def _sampler(cls: Any, settings: Any) -> dict[str, Any]:
    from .system import SamplerUnavailable

    try:
        sampler = cls(settings)
    except SamplerUnavailable as why:
        return {"name": cls.name, "status": f"off: {why}"}
    except Exception as exc:
        return {"name": cls.name, "status": f"FAILED: {type(exc).__name__}: {exc}"}
    try:
        tags = sampler.static_tags()
    finally:
        sampler.close()
    facts = ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in list(tags.items())[:4])
    return {"name": cls.name, "status": f"on ({facts})" if facts else "on"}
