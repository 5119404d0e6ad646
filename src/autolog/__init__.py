"""autolog: automatic, fast, durable logging of machine-learning training runs.

``autolog.enable()`` once, and every scikit-learn, XGBoost, Keras 3, PyTorch Lightning and
transformers training run is recorded. Importing this package imports no ML framework and no
tracker SDK.
"""

from __future__ import annotations

from ._version import __version__

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (8 ms)

if TYPE_CHECKING:
    from .api import (
        active_run,
        disable,
        enable,
        end_run,
        flush,
        get_run,
        list_runs,
        load_model,
        log_artifact,
        log_figure,
        log_histogram,
        log_image,
        log_metric,
        log_metrics,
        log_params,
        log_table,
        log_text,
        set_tags,
        start_run,
    )
    from .errors import AutologError, AutologWarning, ConfigError, ModelLoadError
    from .hookspecs import hookimpl
    from .journal.reader import RunRecord
    from .run import Run

#: each public name -> the module that defines it, loaded on first use: ``import autolog``
#: alone loads nothing else, so ``autolog run``'s launcher and the CLI, which live in this
#: package, start without the recording code (``enable`` loads it, about 30 ms)
_HOMES = {
    **dict.fromkeys(("active_run", "disable", "enable", "end_run", "flush", "get_run",
                     "list_runs", "load_model", "log_artifact", "log_figure", "log_histogram",
                     "log_image", "log_metric", "log_metrics", "log_params", "log_table",
                     "log_text", "set_tags", "start_run"), ".api"),
    **dict.fromkeys(("AutologError", "AutologWarning", "ConfigError", "ModelLoadError"),
                    ".errors"),
    "hookimpl": ".hookspecs",  # pluggy
    "RunRecord": ".journal.reader",
    "Run": ".run",
}


def __getattr__(name: str) -> object:
    import importlib  # here: the launcher imports this package, and does not need it

    home = _HOMES.get(name)
    if home is None:  # a submodule (``autolog.testing``), as if it had been imported
        if name.startswith("__"):
            raise AttributeError(f"module 'autolog' has no attribute {name!r}")
        try:
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module 'autolog' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value  # the next look-up is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})


__all__ = [
    "AutologError",
    "AutologWarning",
    "ConfigError",
    "ModelLoadError",
    "Run",
    "RunRecord",
    "__version__",
    "active_run",
    "disable",
    "enable",
    "end_run",
    "flush",
    "get_run",
    "hookimpl",
    "list_runs",
    "load_model",
    "log_artifact",
    "log_figure",
    "log_histogram",
    "log_image",
    "log_metric",
    "log_metrics",
    "log_params",
    "log_table",
    "log_text",
    "set_tags",
    "start_run",
]
