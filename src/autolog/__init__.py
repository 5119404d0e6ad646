"""autolog: automatic, fast, durable logging of machine-learning training runs.

``autolog.enable()`` once, and every scikit-learn, XGBoost, Keras 3, PyTorch Lightning and
transformers training run is recorded. Importing this package imports no ML framework and no
tracker SDK.
"""

from __future__ import annotations

from ._version import __version__
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
from .journal.reader import RunRecord
from .run import Run


def __getattr__(name: str) -> object:
    if name == "hookimpl":  # pluggy loads on first use, not at import
        from .hookspecs import hookimpl

        return hookimpl
    raise AttributeError(f"module 'autolog' has no attribute {name!r}")

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
