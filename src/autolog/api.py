"""The public functions ``autolog`` re-exports: enable/disable, runs, logging, reading back."""

from __future__ import annotations

import atexit
import os
import sys
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import distributed, pipeline, store
from . import run as run_module
from .config import Settings
from .errors import ConfigError, internal_error
from .run import Run, create_run

if TYPE_CHECKING:
    from .backends.base import Backend
    from .patching import Patcher
    from .plugins import Plugins

__all__ = [
    "active_run", "disable", "enable", "end_run", "flush", "get_run", "get_settings",
    "list_runs", "load_model", "log_artifact", "log_metric", "log_metrics", "log_params",
    "set_tags", "start_run",
]

_lock = threading.RLock()
_settings: Settings | None = None
_enabled = False
_patcher: Patcher | None = None
_patched_modules: set[str] = set()
_run_name_used = False
_exit_hooks_installed = False


def get_settings() -> Settings:
    """The settings in force: from ``enable(...)``, else parsed from the environment once."""
    global _settings
    if _settings is None:
        with _lock:
            if _settings is None:
                _settings = Settings.load()
    return _settings


def _plugins() -> Plugins:
    from .plugins import get_plugins

    return get_plugins(get_settings())


# -- enable / disable ---------------------------------------------------------------------------


def enable(backend: str | Iterable[str] | None = None, *, frameworks: Iterable[str] | None = None,
           exclude: Iterable[str] | None = None, log_models: bool | None = None,
           system_metrics: bool | None = None, project: str | None = None) -> None:
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
    """
    global _settings, _enabled
    settings = Settings.load(backend=backend, log_models=log_models,
                             system_metrics=system_metrics, project=project)
    with _lock:
        _settings = settings
        if settings.disable:
            return
        _remote_backends(settings)  # an unknown or uninstalled backend is an error now
        current = pipeline.current()
        if current is not None:
            current.settings = settings
        chosen = _choose_integrations(frameworks, exclude)
        _unpatch()
        _enabled = True
        for integration in chosen.values():
            _watch(integration)
    from .context import prewarm

    prewarm()


def disable() -> None:
    """Stop recording training calls and restore every patched framework method exactly."""
    global _enabled
    with _lock:
        _enabled = False
        _unpatch()


def is_enabled() -> bool:
    return _enabled


def _choose_integrations(frameworks: Iterable[str] | None,
                         exclude: Iterable[str] | None) -> dict[str, Any]:
    available = _plugins().integrations()
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


def _watch(integration: Any) -> None:
    from .patching import on_import

    for module_name in integration.modules:
        def patch(module: Any, integration: Any = integration) -> None:
            with _lock:
                if not _enabled or module.__name__ in _patched_modules:
                    return
                _patched_modules.add(module.__name__)
                integration.patch(_get_patcher(), module)

        on_import(module_name, patch)


def _get_patcher() -> Patcher:
    global _patcher
    if _patcher is None:
        from .patching import Patcher

        _patcher = Patcher(is_enabled)
    return _patcher


def _unpatch() -> None:
    from .patching import clear_import_callbacks

    clear_import_callbacks()
    if _patcher is not None:
        _patcher.revert()
    _patched_modules.clear()


# -- backends -----------------------------------------------------------------------------------


def _remote_backends(settings: Settings) -> dict[str, Backend]:
    """Instances of the remote backends ``settings.backend`` names (``local`` is the journal)."""
    classes = _plugins().backends()
    unknown = [name for name in settings.backend if name != "local" and name not in classes]
    if unknown:
        accepted = ", ".join(["local", *sorted(classes)])
        raise ConfigError(f"AUTOLOG_BACKEND: unknown backend {', '.join(map(repr, unknown))}; "
                          f"accepted: {accepted}")
    return {name: classes[name](settings) for name in settings.backend if name != "local"}


def make_backend(name: str, settings: Settings | None = None) -> Backend:
    """One backend instance by name (``autolog sync --to NAME``)."""
    settings = (settings or get_settings()).replace(backend=name)
    backends = _remote_backends(settings)
    if name not in backends:
        raise ConfigError(f"{name!r} is the local store itself; give a remote backend to sync to")
    return backends[name]


# -- runs -----------------------------------------------------------------------------------------


def start_run(name: str | None = None, *, project: str | None = None,
              tags: Mapping[str, Any] | None = None, parent: Run | None = None,
              default_name: str | None = None) -> Run:
    """Start a run and make it the active one; use it as a context manager to end it.

    A run started while another is active becomes its child (``parent`` names another one).
    ``with autolog.start_run() as run:`` ends it FINISHED, FAILED on an exception, KILLED on
    KeyboardInterrupt. Without a ``name``: ``AUTOLOG_RUN_NAME`` for the first top-level run, else
    ``default_name`` (what integrations pass: the model's class) with a generated suffix.
    """
    global _run_name_used
    settings = get_settings()
    with _lock:
        if parent is None:
            parent = run_module.active()
        if name is None and settings.run_name and not _run_name_used and parent is None:
            name, _run_name_used = settings.run_name, True
        if name is None and default_name:
            name = f"{default_name}-{run_module.generate_name()}"
        recording = not settings.disable and distributed.is_global_zero()
        pipe = _pipeline(settings) if recording else None
        try:
            run = create_run(settings, pipe, name=name, project=project, tags=tags,
                             parent=parent, backends=settings.backend)
        except OSError as exc:  # an unwritable AUTOLOG_DIR must not stop the training
            internal_error(f"creating a run in {settings.dir}", exc)
            recording = False
            run = create_run(settings, None, name=name, project=project, tags=tags,
                             parent=parent, backends=settings.backend)
        run_module.push(run)
    if recording:
        _after_start(run, settings)
    return run


def attach_run(run_id: str, dir: str | os.PathLike[str] | None = None) -> Run:
    """Log, from this process, into a run another process started (and will end).

    For training that moves to worker processes after the run began: a spawned DDP worker of
    rank 0 attaches to the run its launcher started. The run becomes this process's active run;
    ending it here only flushes.
    """
    settings = get_settings()
    path = store.find_run(_root(dir), run_id)
    with _lock:
        run = run_module.attach_run(settings, _pipeline(settings), path)
        run_module.push(run)
    return run


def _pipeline(settings: Settings) -> pipeline.Pipeline:
    pipe = pipeline.get_pipeline(get_settings)
    pipe.configure_backends(_remote_backends(settings))
    _install_exit_hooks()
    return pipe


def _after_start(run: Run, settings: Settings) -> None:
    if run.parent_id is not None:
        return  # children (search candidates) share their parent's context and monitor
    try:
        from . import context

        plugins = _plugins()
        context.capture(run, plugins)
        if settings.system_metrics:
            from .system import start_monitor

            start_monitor(run, plugins)
    except Exception as exc:
        internal_error("starting run context", exc)


def end_run(status: str = "FINISHED") -> None:
    """End the active run (FINISHED, FAILED or KILLED)."""
    run = run_module.active()
    if run is not None:
        run.end(status)


def active_run() -> Run | None:
    """The innermost run started and not yet ended in this process, or None."""
    return run_module.active()


def _current() -> Run:
    stack = run_module._stack
    try:
        return stack[-1]
    except IndexError:
        with _lock:
            return run_module.active() or start_run()


def log_params(params: Mapping[str, Any]) -> None:
    """Log params to the active run (starting one if none is active)."""
    _current().log_params(params)


def log_metrics(metrics: Mapping[str, Any], step: int | None = None) -> None:
    """Log ``{key: number}`` to the active run (starting one if none is active)."""
    _current().log_metrics(metrics, step)


def log_metric(key: str, value: Any, step: int | None = None) -> None:
    _current().log_metrics({key: value}, step)


def set_tags(tags: Mapping[str, Any]) -> None:
    _current().set_tags(tags)


def log_artifact(path: str | os.PathLike[str], name: str | None = None) -> str | None:
    """Copy a file or directory into the active run; returns its artifact name."""
    return _current().log_artifact(path, name)


def flush(timeout: float | None = None) -> bool:
    """Write everything logged so far to the journal, then wait up to ``timeout`` seconds
    (default ``AUTOLOG_EXIT_TIMEOUT``) for the remote backends. True when all have it."""
    pipe = pipeline.current()
    return True if pipe is None else pipe.flush(timeout)


# -- reading back ---------------------------------------------------------------------------------


def _root(dir: str | os.PathLike[str] | None) -> Path:
    return Path(dir if dir is not None else get_settings().dir).expanduser().absolute()


def _write_pending() -> None:
    pipe = pipeline.current()
    if pipe is not None:
        pipe.write_all()  # read-your-writes for runs of this process


def list_runs(dir: str | os.PathLike[str] | None = None,
              project: str | None = None) -> list[store.RunRecord]:
    """Runs of the local store, newest first."""
    _write_pending()
    return store.list_runs(_root(dir), project)


def get_run(run_id: str, dir: str | os.PathLike[str] | None = None) -> store.RunRecord:
    """One run of the local store, by id or unique id prefix."""
    _write_pending()
    return store.load_run(store.find_run(_root(dir), run_id))


def load_model(run_or_id: store.RunRecord | Run | str, dir: str | os.PathLike[str] | None = None,
               name: str = "model") -> Any:
    """The model logged with a run, loaded back by the integration that saved it."""
    from .models import load_model as _load

    record = run_or_id if isinstance(run_or_id, store.RunRecord) else get_run(
        run_or_id if isinstance(run_or_id, str) else run_or_id.id, dir)
    spec = record.models.get(name)
    if spec is None:
        raise LookupError(f"run {record.id} has no model {name!r} "
                          f"(models: {', '.join(record.models) or 'none'})")
    return _load(spec, record.artifact_path(spec["path"]))


# -- exit, signals, fork ----------------------------------------------------------------------


def _install_exit_hooks() -> None:
    global _exit_hooks_installed
    if _exit_hooks_installed:
        return
    _exit_hooks_installed = True
    atexit.register(_at_exit)
    import signal

    if threading.current_thread() is threading.main_thread():
        try:
            if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
                signal.signal(signal.SIGTERM, _on_sigterm)
        except (ValueError, OSError, AttributeError):
            pass


def exit_hook_first() -> None:
    """Make autolog's exit flush run before the ``atexit`` hooks registered so far.

    ``atexit`` runs hooks in reverse order of registration; a backend whose SDK registers its
    own teardown (W&B waits for its service there) calls this after starting the SDK, so the
    flush delivers before the SDK shuts down.
    """
    if _exit_hooks_installed:
        atexit.unregister(_at_exit)
        atexit.register(_at_exit)


def _end_all(status: str) -> None:
    pid = os.getpid()
    for run in reversed(list(run_module._stack)):
        if run.owner_pid == pid:  # a forked child never ends its parent's runs
            try:
                run.end(status)
            except Exception as exc:
                internal_error("ending runs at exit", exc)


def _at_exit() -> None:
    exc = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    _end_all(run_module.status_for(exc))
    pipe = pipeline.current()
    if pipe is None:
        return
    left = pipe.shutdown(get_settings().exit_timeout)
    for name, lines in left.items():
        import logging

        logging.getLogger("autolog").warning(
            "autolog: %d journal line(s) were not delivered to %s before exit "
            "(AUTOLOG_EXIT_TIMEOUT=%gs); run `autolog sync` to deliver them.",
            lines, name, get_settings().exit_timeout)


def _on_sigterm(signum: int, frame: Any) -> None:
    """End the runs KILLED, flush (bounded), then die of SIGTERM as if we were not here.

    A handler runs on the main thread between two bytecodes of whatever it was doing, which may
    hold one of autolog's locks. If it was writing a journal, termination waits until that
    write is done (the events it drained would be lost otherwise); in every other case the work
    is done on a fresh thread joined with a timeout, so a lock held by the interrupted code can
    delay the exit, never block it.
    """
    pipe = pipeline.current()
    if pipe is not None and pipe.defer_if_writing(_terminate):
        return
    _terminate()


def _terminate() -> None:
    import signal

    timeout = min(get_settings().exit_timeout, 5.0)

    def end_and_flush() -> None:
        _end_all("KILLED")
        pipe = pipeline.current()
        if pipe is not None:
            pipe.shutdown(timeout)

    worker = threading.Thread(target=end_and_flush, name="autolog-sigterm", daemon=True)
    worker.start()
    worker.join(timeout + 1.0)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
