"""The run lifecycle: starting, attaching to and ending runs; the active run; run scopes.

The active run is per thread: a run started while another is active *in the same thread*
becomes its child; another thread starts from none (``start_run(parent=...)`` or
``with run.activate():`` share a run across threads). Only global rank 0 records: elsewhere
(and when ``AUTOLOG_DISABLE`` is on) runs are inert :class:`~autolog.run.Run` objects that accept
every call and write nothing. The first recording run starts the journal writer and the
delivery workers of the configured backends, and installs the exit hooks.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import distributed
from ._runtime import random_hex, runtime
from .capture import console
from .config import Settings, current, nearest
from .delivery.worker import Deliveries
from .errors import ConfigError, RunInUse
from .journal.files import ARTIFACTS, FORMAT_VERSION, note_changed, tell_launcher
from .journal.writer import JournalWriter, write_meta
from .plugins import get_plugins
from .report import internal_error, warn_once
from .run import Run, status_for
from .shutdown import install_exit_hooks

if TYPE_CHECKING:
    from .delivery.contract import Backend

__all__ = ["RunScope", "active_run", "attach_run", "current_run", "end_run", "generate_name",
           "make_backend", "remote_backends", "resume_run", "start_run", "store_root"]

_ADJECTIVES = ("amber", "brisk", "calm", "deft", "eager", "fleet", "gentle", "hardy", "keen",
               "lucid", "merry", "nimble", "proud", "quiet", "rapid", "steady", "swift", "vivid")
_NOUNS = ("badger", "crane", "dingo", "egret", "falcon", "gecko", "heron", "ibis", "koala",
          "lynx", "marten", "newt", "otter", "puffin", "quail", "raven", "stoat", "wren")


def generate_name() -> str:
    n = int(random_hex(4), 16)
    return f"{_ADJECTIVES[n % 18]}-{_NOUNS[(n >> 8) % 18]}-{(n >> 16) % 1000:03d}"


def store_root(dir: str | os.PathLike[str] | None = None) -> Path:
    """The local store's directory: ``dir``, else ``AUTOLOG_DIR``."""
    return Path(dir if dir is not None else current().dir).expanduser().absolute()


# -- starting --------------------------------------------------------------------------------------


def start_run(name: str | None = None, *, project: str | None = None,
              tags: Mapping[str, Any] | None = None, parent: Run | None = None,
              default_name: str | None = None, run_id: str | None = None) -> Run:
    """Start a run and make it the active one (see :func:`autolog.start_run`)."""
    if run_id is not None:
        return resume_run(run_id, name=name, tags=tags)
    settings = current()
    with runtime.lock:
        if parent is None:
            parent = runtime.active_run()
        if name is None and settings.run_name and not runtime.run_name_used and parent is None:
            name, runtime.run_name_used = settings.run_name, True
        if name is None and default_name:
            name = f"{default_name}-{generate_name()}"
        recording = not settings.disable and distributed.is_global_zero()
        writer = _writer(settings) if recording else None
        try:
            run = _create(settings, writer, name=name, project=project, tags=tags, parent=parent)
        except OSError as exc:  # an unwritable AUTOLOG_DIR must not stop the training
            internal_error(f"creating a run in {settings.dir}", exc)
            recording = False
            run = _create(settings, None, name=name, project=project, tags=tags, parent=parent)
        _push(run)
    if recording:
        _after_start(run, settings)
    return run


def _create(settings: Settings, writer: JournalWriter | None, *, name: str | None,
            project: str | None, tags: Mapping[str, Any] | None, parent: Run | None) -> Run:
    """Make the run directory, its journal and start event; ``writer`` None: an inert run."""
    run_id = random_hex(16)
    project = project or (parent.project if parent else settings.project)
    name = name or generate_name()
    parent_id = parent.id if parent is not None else None
    if writer is None:
        return Run(run_id=run_id, name=name, project=project, parent_id=parent_id, path=None,
                   journal=None, writer=None, settings=settings)
    path = store_root() / run_id
    tell_launcher(path)
    (path / ARTIFACTS).mkdir(parents=True)
    now = int(time.time() * 1000)
    backends = settings.backend
    start: dict[str, Any] = {"t": "start", "v": FORMAT_VERSION, "id": run_id, "name": name,
             "project": project, "parent": parent_id, "time": now,
             "pid": os.getpid(), "host": _hostname(), "backends": list(backends)}
    launch = os.environ.get("AUTOLOG_LAUNCH_ID")
    if launch:  # started by `autolog run`, which ends what the command leaves open
        start["launch"] = launch
    meta: dict[str, Any] = {key: start[key] for key in (
        "v", "id", "name", "project", "parent", "pid", "host", "backends", "launch")
        if key in start}
    meta.update(status="RUNNING", start_time=now)
    write_meta(path, meta)
    journal = writer.open(path, meta, tuple(b for b in backends if b != "local"))
    writer.write_event(journal, start)  # on disk when start_run returns, whatever comes next
    run = Run(run_id=run_id, name=name, project=project, parent_id=parent_id, path=path,
              journal=journal, writer=writer, settings=settings)
    run.start_time = now
    if tags:
        run.set_tags(tags)
    return run


def _hostname() -> str:
    import socket

    return socket.gethostname()


def resume_run(run_id: str, *, name: str | None = None,
               tags: Mapping[str, Any] | None = None) -> Run:
    """Reopen a run of the local store that ended (or crashed), in this process: the same id,
    its history continued, RUNNING until it ends again (see :func:`autolog.start_run`)."""
    settings = current()
    if settings.disable or not distributed.is_global_zero():
        run = Run(run_id=run_id, name=name or "", project=settings.project, parent_id=None,
                  path=None, journal=None, writer=None, settings=settings)
        _push(run)
        return run
    from .journal.reader import find_run  # reading: loaded by the processes that read

    path = find_run(store_root(), run_id)
    with runtime.lock:
        run = _reopen(path, settings)
        _push(run)
    if name is not None:
        run.name = name  # a rename event when it differs
    if tags:
        run.set_tags(tags)
    _after_start(run, settings)
    return run


def _reopen(path: Path, settings: Settings) -> Run:
    """Open an ended run's journal again, with a ``resume`` event, and meta.json RUNNING."""
    from .journal.reader import load_run, lock_is_held

    record = load_run(path)
    meta = dict(record._meta)
    if lock_is_held(path, meta):
        raise RunInUse(f"run {record.id} ({record.name}) is running in another process "
                          f"(pid {meta.get('pid')} on {meta.get('host')}); it can be resumed "
                          "once that ends")
    writer = _writer(settings)
    backends = tuple(b for b in meta.get("backends", ()) if b != "local")
    now = int(time.time() * 1000)
    meta.update(status="RUNNING", pid=os.getpid(), host=_hostname())
    meta.pop("end_time", None)
    tell_launcher(path)
    journal = writer.open(path, meta, backends)
    journal.last_metrics.update(record.metrics)  # meta.json's last values at the next end
    # written through before meta.json says RUNNING: a reader never sees it without the line
    writer.write_event(journal, {"t": "resume", "time": now, "pid": os.getpid(),
                                 "host": _hostname()})
    write_meta(path, {k: v for k, v in meta.items() if k != "metrics"})
    note_changed(path)
    run = Run(run_id=record.id, name=record.name, project=record.project,
              parent_id=record.parent_id, path=path, journal=journal, writer=writer,
              settings=settings)
    run.start_time = record.start_time
    run.continue_steps({key: points[-1][0] for key in record.metric_keys
                        if (points := record.history(key))},
                       {(m.kind, m.key): m.step for m in record.media})
    return run


def attach_run(run_id: str, dir: str | os.PathLike[str] | None = None) -> Run:
    """Log, from this process, into a run another process started (see
    :func:`autolog.api.attach_run`)."""
    from .journal.reader import find_run, load_run

    settings = current()
    path = find_run(store_root(dir), run_id)
    with runtime.lock:
        meta = load_run(path)._meta
        backends = tuple(b for b in meta.get("backends", ()) if b != "local")
        journal = _writer(settings).open(path, meta, backends, writes_end=False)
        run = Run(run_id=meta["id"], name=meta.get("name", ""), project=meta.get("project", ""),
                  parent_id=meta.get("parent"), path=path, journal=journal,
                  writer=runtime.writer, settings=settings)
        run.start_time = meta.get("start_time", run.start_time)
        _push(run)
    return run


def _push(run: Run) -> None:
    with runtime.runs_lock:
        runtime.runs.append(run)
    run._activate_here()


def _writer(settings: Settings) -> JournalWriter:
    """The journal writer, started with the first recording run; the configured backends'
    delivery workers; the exit hooks."""
    if runtime.deliveries is None:
        runtime.deliveries = Deliveries()
    deliveries = runtime.deliveries
    if runtime.writer is None:
        runtime.writer = JournalWriter(settings.flush_interval, deliveries.notify)
    deliveries.configure(remote_backends(settings), settings.delivery_delay)
    install_exit_hooks()
    return runtime.writer


def _after_start(run: Run, settings: Settings) -> None:
    if run.parent_id is not None:
        return  # children (search candidates) share their parent's context and monitor
    try:
        if settings.capture_console:
            console.attach(run, settings.console_max_lines)
    except Exception as exc:
        internal_error("capturing the console", exc)
    try:
        from . import context

        plugins = get_plugins()
        context.capture(run, plugins)
        if settings.system_metrics:
            from .system import start_monitor

            start_monitor(run, plugins)
    except Exception as exc:
        internal_error("starting run context", exc)


# -- the active run --------------------------------------------------------------------------------


def active_run() -> Run | None:
    """The innermost run started (or activated) in this thread and not yet ended, or None."""
    return runtime.active_run()


def current_run() -> Run:
    """This thread's active run, or a new one (what the module-level ``log_*`` functions log
    into)."""
    run = runtime.active_run()
    if run is not None:
        return run
    with runtime.lock:
        others = list(runtime.runs)
        run = start_run()
    if others:
        warn_once(f"implicit run {threading.current_thread().name}",
                  f"autolog: logging from thread {threading.current_thread().name!r}, which has "
                  f"no active run, started run {run.id} ({run.name}); the active run is per "
                  f"thread: `with run.activate():` logs into run {others[-1].id} "
                  f"({others[-1].name}) from this thread instead", stacklevel=4)
    return run


def end_run(status: str = "FINISHED") -> None:
    """End the active run (FINISHED, FAILED or KILLED)."""
    run = runtime.active_run()
    if run is not None:
        run.end(status)


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
        active = runtime.active_run()
        #: whether this scope started the run (and so ends it)
        self.ends_run = force_new or parent is not None or active is None
        if self.ends_run:
            self.run = start_run(name, tags=tags, parent=parent or active,
                                 default_name=default_name)
        else:
            assert active is not None
            self.run = active
            if tags:
                self.run.set_tags(tags)

    @classmethod
    def of(cls, run: Run, ends_run: bool = False) -> RunScope:
        """A scope over a run that exists already (an inherited or attached one)."""
        scope = cls.__new__(cls)
        scope.run, scope.ends_run = run, ends_run
        return scope

    def close(self, exc: BaseException | None = None) -> None:
        """End the run if this scope started it: FINISHED, or as ``exc`` says."""
        if self.ends_run:
            self.run.end(status_for(exc))


# -- backends --------------------------------------------------------------------------------------


def remote_backends(settings: Settings) -> dict[str, Backend]:
    """Instances of the remote backends ``settings.backend`` names (``local`` is the journal)."""
    classes = get_plugins().backends(settings.backend)
    unknown = [name for name in settings.backend if name != "local" and name not in classes]
    if unknown:
        accepted = ", ".join(["local", *sorted(classes)])
        guess = nearest(unknown[0], ["local", *classes])
        hint = f" (did you mean {guess!r}?)" if guess else ""
        raise ConfigError(f"AUTOLOG_BACKEND: unknown backend {', '.join(map(repr, unknown))}"
                          f"{hint}; accepted: {accepted}")
    return {name: classes[name](settings) for name in settings.backend if name != "local"}


def make_backend(name: str, settings: Settings | None = None) -> Backend:
    """One backend instance by name (``autolog sync --to NAME``)."""
    settings = (settings or current()).replace(backend=name)
    backends = remote_backends(settings)
    if name not in backends:
        raise ConfigError(f"{name!r} is the local store itself; give a remote backend to sync to")
    return backends[name]
