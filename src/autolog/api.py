"""The public functions ``autolog`` re-exports: enable/disable, runs, logging, reading back.

A façade: each function delegates to the module that does the work (:mod:`.activation`,
:mod:`.runs`, :mod:`.shutdown`, :mod:`.journal`), and holds no state of its own (that lives in
:mod:`._runtime`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from . import activation, runs, system
from ._runtime import runtime
from .config import Settings, current
from .errors import ConfigError
from .plugins import get_plugins
from .run import Run
from .shutdown import flush as _flush

if TYPE_CHECKING:
    from .journal.reader import RunRecord

__all__ = [
    "active_run", "attach_run", "disable", "enable", "end_run", "flush", "get_run",
    "get_settings", "is_enabled", "list_runs", "load_model", "log_artifact", "log_figure",
    "log_histogram", "log_image", "log_metric", "log_metrics", "log_params", "log_table",
    "log_text", "set_tags", "start_run",
]


def get_settings() -> Settings:
    """The settings in force: from ``enable(...)``, else parsed from the environment once."""
    return current()


# -- enable / disable ---------------------------------------------------------------------------


CAPTURE_PARTS = ("console", "code", "args")


def enable(backend: str | Iterable[str] | None = None, *, frameworks: Iterable[str] | None = None,
           exclude: Iterable[str] | None = None, log_models: bool | None = None,
           system_metrics: bool | None = None, project: str | None = None,
           capture: bool | str | Iterable[str] | None = None,
           log_histograms: int | None = None) -> None:
    """Record every training run of the supported frameworks from now on.

    Frameworks already imported are patched now, the others as soon as they are imported.
    Arguments override the ``AUTOLOG_*`` environment variables. Calling it again reconfigures;
    :func:`disable` undoes it exactly.

    :param backend: where runs go: ``"local"``, ``"mlflow"``, ``"local,wandb"``, a list...
    :param frameworks: only these integrations (default: all installed)
    :param exclude: not these integrations
    :param log_models: save trained models (default on)
    :param system_metrics: sample hardware usage (default on)
    :param project: project / experiment name
    :param capture: what to capture besides what is logged: ``True`` (everything), ``False``
        (nothing), or some of ``"console"`` (stdout/stderr as ``console.log``; on by default),
        ``"code"`` (the uncommitted git diff, untracked files, the entry script) and ``"args"``
        (argparse, click/typer, Hydra values as params). ``autolog run`` captures all three.
    :param log_histograms: Keras, Lightning, transformers: weight and gradient histograms every
        N epochs (default 0: off)
    """
    overrides: dict[str, Any] = _capture_settings(capture)
    settings = Settings.load(backend=backend, log_models=log_models,
                             system_metrics=system_metrics, project=project,
                             log_histograms=log_histograms, **overrides)
    with runtime.lock:
        runtime.settings = settings
        if settings.disable:
            return
        runs.remote_backends(settings)  # an unknown or uninstalled backend is an error now
        activation.activate(activation.choose_integrations(frameworks, exclude))
    _warn_misconfigured(settings)
    from .context import prewarm  # it loads pluggy (its hookimpl), not ``import autolog``

    if settings.system_metrics:
        prewarm(lambda: system.warm(get_plugins()))
    else:
        prewarm()
    if settings.capture_console:  # output from now on reaches the first run too
        from .capture.console import console

        console().install_python()
    if settings.capture_args:
        activation.capture_args()


def _warn_misconfigured(settings: Settings) -> None:
    """One warning per configuration mistake (a mistyped ``AUTOLOG_*`` variable, a tracker SDK
    not installed...): what ``autolog doctor`` reports, without its network checks."""
    from .checks import backend_problems, plugin_variables, store_problems, unknown_variables
    from .report import warn_once

    for problem in (*unknown_variables(os.environ, plugin_variables(settings)),
                    *backend_problems(settings, os.environ),
                    *store_problems(settings)):
        warn_once(f"config {problem.check}: {problem.message}",
                  f"autolog: {problem.check}: {problem.message}. Fix: {problem.fix} "
                  "(`autolog doctor` checks the whole setup)", stacklevel=4)


def _capture_settings(capture: bool | str | Iterable[str] | None) -> dict[str, bool]:
    """``enable(capture=...)`` as the ``capture_*`` settings it overrides."""
    if capture is None:
        return {}
    if isinstance(capture, bool):
        parts = set(CAPTURE_PARTS) if capture else set()
    else:
        parts = {capture} if isinstance(capture, str) else set(capture)
        unknown = parts - set(CAPTURE_PARTS)
        if unknown:
            raise ConfigError(f"enable(capture=...): unknown part(s) {', '.join(sorted(unknown))};"
                              f" accepted: True, False, or some of {', '.join(CAPTURE_PARTS)}")
    return {f"capture_{part}": part in parts for part in CAPTURE_PARTS}


def disable() -> None:
    """Stop recording training calls and restore every patched framework method exactly (and
    ``sys.stdout`` / ``sys.stderr``, unless a run is still capturing them)."""
    activation.deactivate()
    console = runtime.console
    if console is not None and console.mode == "python" and not runtime.runs:
        console.uninstall()


def is_enabled() -> bool:
    return runtime.enabled


# -- runs -----------------------------------------------------------------------------------------


def start_run(name: str | None = None, *, project: str | None = None,
              tags: Mapping[str, Any] | None = None, parent: Run | None = None,
              default_name: str | None = None, run_id: str | None = None) -> Run:
    """Start a run and make it the active one; use it as a context manager to end it.

    A run started while another is active becomes its child (``parent`` names another one).
    ``with autolog.start_run() as run:`` ends it FINISHED, FAILED on an exception, KILLED on
    KeyboardInterrupt. Without a ``name``: ``AUTOLOG_RUN_NAME`` for the first top-level run, else
    ``default_name`` (what integrations pass: the model's class) with a generated suffix.

    ``run_id`` (an id or unique prefix of a run in the local store) resumes that run instead:
    the same id, its history continued (steps go on from the last one), RUNNING until it ends
    again; ``name`` then renames it. :class:`~autolog.errors.RunInUse` when another process is
    still running it.
    """
    return runs.start_run(name, project=project, tags=tags, parent=parent,
                          default_name=default_name, run_id=run_id)


def attach_run(run_id: str, dir: str | os.PathLike[str] | None = None) -> Run:
    """Log, from this process, into a run another process started (and will end).

    For training that moves to worker processes after the run began: a spawned DDP worker of
    rank 0 attaches to the run its launcher started. The run becomes this process's active run;
    ending it here only flushes.
    """
    return runs.attach_run(run_id, dir)


def end_run(status: str = "FINISHED") -> None:
    """End the active run (FINISHED, FAILED or KILLED)."""
    runs.end_run(status)


def active_run() -> Run | None:
    """The innermost run started and not yet ended in this process, or None."""
    return runs.active_run()


def log_params(params: Mapping[str, Any]) -> None:
    """Log params to the active run (starting one if none is active)."""
    runs.current_run().log_params(params)


def log_metrics(metrics: Mapping[str, Any], step: int | None = None) -> None:
    """Log ``{key: number}`` to the active run (starting one if none is active)."""
    runs.current_run().log_metrics(metrics, step)


def log_metric(key: str, value: Any, step: int | None = None) -> None:
    runs.current_run().log_metrics({key: value}, step)


def set_tags(tags: Mapping[str, Any]) -> None:
    runs.current_run().set_tags(tags)


def log_artifact(path: str | os.PathLike[str], name: str | None = None) -> str | None:
    """Copy a file or directory into the active run; returns its artifact name."""
    return runs.current_run().log_artifact(path, name)


def log_image(key: str, image: Any, step: int | None = None) -> None:
    """An image (array, tensor, PIL image, matplotlib figure, file path) to the active run."""
    runs.current_run().log_image(key, image, step)


def log_figure(key: str, figure: Any, step: int | None = None) -> None:
    """A matplotlib figure, drawn now, to the active run."""
    runs.current_run().log_figure(key, figure, step)


def log_histogram(key: str, values: Any, step: int | None = None, bins: int = 64) -> None:
    """A histogram of ``values`` (or ``(counts, edges)``) to the active run."""
    runs.current_run().log_histogram(key, values, step, bins)


def log_table(key: str, data: Any, columns: list[str] | None = None,
              step: int | None = None) -> None:
    """A table (DataFrame, rows, dict of columns, 2-D array) to the active run."""
    runs.current_run().log_table(key, data, columns, step)


def log_text(key: str, text: Any, step: int | None = None) -> None:
    """A text at ``step`` to the active run."""
    runs.current_run().log_text(key, text, step)


def flush(timeout: float | None = None) -> bool:
    """Write everything logged so far to the journal, then wait up to ``timeout`` seconds
    (default ``AUTOLOG_EXIT_TIMEOUT``) for the remote backends. True when all have it."""
    return _flush(timeout)


# -- reading back ---------------------------------------------------------------------------------


def _write_pending() -> None:
    if runtime.writer is not None:
        runtime.writer.write_all()  # read-your-writes for runs of this process


def list_runs(dir: str | os.PathLike[str] | None = None,
              project: str | None = None) -> list[RunRecord]:
    """Runs of the local store, newest first."""
    from .journal.reader import list_runs as _list_runs  # reading: not loaded by enable()

    _write_pending()
    return _list_runs(runs.store_root(dir), project)


def get_run(run_id: str, dir: str | os.PathLike[str] | None = None) -> RunRecord:
    """One run of the local store, by id or unique id prefix."""
    from .journal.reader import find_run, load_run

    _write_pending()
    return load_run(find_run(runs.store_root(dir), run_id))


def load_model(run_or_id: RunRecord | Run | str, dir: str | os.PathLike[str] | None = None,
               name: str = "model") -> Any:
    """The model logged with a run, loaded back by the integration that saved it."""
    from .journal.reader import RunRecord
    from .models import load_model as _load_model

    record = run_or_id if isinstance(run_or_id, RunRecord) else get_run(
        run_or_id if isinstance(run_or_id, str) else run_or_id.id, dir)
    spec = record.models.get(name)
    if spec is None:
        raise LookupError(f"run {record.id} has no model {name!r} "
                          f"(models: {', '.join(record.models) or 'none'})")
    return _load_model(spec, record.artifact_path(spec["path"]))
