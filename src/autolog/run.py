"""Run: a training run's identity, status and logging calls.

``log_metrics`` converts what it is given (off the fast path only when it is not a plain float
under a string key) and writes each point into a slot of the run's tail, a ring in a shared file
mapping (:mod:`autolog.journal.tail`): no system call, no JSON, no lock, yet on disk as far as a
killed process is concerned. The journal writer moves the points to the journal on its own
thread. Params, tags, artifacts and models are rare and write their event through to the
journal on the caller's thread; file-shaped calls (``log_artifact``, ``log_text_artifact``,
``log_model``) copy or write the file first, because the file must be captured as it is now.
Media calls (``log_image``, ``log_figure``, ``log_histogram``, ``log_table``, ``log_text``) check
and copy their value on the caller's thread and queue it; the writer thread encodes and writes
it (:mod:`autolog.media`). No logging call raises on bad input: what cannot be logged is skipped
or converted with a warning (``AUTOLOG_STRICT`` aside, for autolog's own errors).
"""

from __future__ import annotations

import os
import re
import struct
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import media, values
from ._runtime import runtime
from .journal.codec import encode_record
from .journal.files import ARTIFACTS
from .journal.tail import MASK, SLOT
from .journal.writer import CHECK_EVERY, HARD_LIMIT, HIGH_WATER, RunEnded
from .report import internal_error, warn_once

if TYPE_CHECKING:
    from .config import Settings
    from .journal.writer import JournalWriter, RunWriter

__all__ = ["STATUSES", "Activation", "Run", "status_for"]

STATUSES = ("FINISHED", "FAILED", "KILLED")
#: a media item holding more bytes than this wakes the journal writer at once (bounded memory)
WAKE_BYTES = 1 << 20
#: metric dicts handed over and not yet read that wake the journal writer at once
HANDED_HIGH = 4096

_time = time.time
_pack = SLOT.pack_into
_SIZE = SLOT.size
_CHECK = CHECK_EVERY - 1


class Run:
    """A run being recorded. Get one from :func:`autolog.start_run` (or an integration)."""

    id: str
    project: str
    parent_id: str | None
    path: Path | None
    start_time: int
    status: str

    def __init__(self, *, run_id: str, name: str, project: str, parent_id: str | None,
                 path: Path | None, journal: RunWriter | None, writer: JournalWriter | None,
                 settings: Settings):
        self.id = run_id
        self.name = name
        self.project = project
        self.parent_id = parent_id
        self.path = path
        self.start_time = int(_time() * 1000)
        self.status = "RUNNING"
        self.owner_pid = os.getpid()
        self.settings = settings
        self._journal = journal
        self._writer = writer
        self._tail = journal.tail if journal is not None else None  # None: inert, or ended
        self._steps: dict[str, int] = {}
        self._media_steps: dict[tuple[str, str], int] = {}
        self._end_lock = threading.Lock()
        self._ended = False
        self._on_end: list[Any] = []  # callables run before the end event (monitor, context)
        self._stacks: list[list[Run]] = []  # the threads' active-run stacks holding this run

    def __repr__(self) -> str:
        return f"<Run {self.id} {self.name!r} {self.status}>"

    @property
    def name(self) -> str:
        """The run's name. Setting it renames the run: a ``rename`` event in its journal (the
        local store, ``autolog ui`` and the backends show the new name), even after its end."""
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        value = str(value)
        old = getattr(self, "_name", None)
        self._name = value
        if old is not None and old != value:
            self._rename(value)

    def _rename(self, name: str) -> None:
        record = {"t": "rename", "name": name, "time": int(_time() * 1000)}
        if self._journal is None or self.path is None:
            return
        if not self._ended:
            self._journal.meta["name"] = name  # meta.json says it at the end
            self._write(record)
            return
        from .journal.edits import append_event

        try:
            append_event(self.path, record)
        except OSError as exc:
            internal_error("renaming the run", exc)

    def continue_steps(self, steps: Mapping[str, int],
                       media_steps: Mapping[tuple[str, str], int]) -> None:
        """A resumed run: metrics and media logged without a step continue after the last
        step each key reached."""
        self._steps.update(steps)
        self._media_steps.update(media_steps)

    @property
    def active(self) -> bool:
        """False for a run that records nothing (autolog disabled, or rank > 0)."""
        return self._journal is not None

    # -- the hot path --------------------------------------------------------------------------

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Log ``{key: number}`` at ``step`` (without a step, each key counts its own from 0)."""
        tail = self._tail
        if tail is None:
            return self._not_recorded()
        ts = int(_time() * 1000)
        if step is not None and type(step) is not int:
            step = values.to_step(step)
        try:
            items = metrics.items()
        except AttributeError:
            return values.not_a_mapping(metrics, "log_metrics")
        mm, ids, count = tail.mm, tail.ids, tail.count
        for key, value in items:
            if type(value) is not float or type(key) is not str or not key:
                key, value = values.metric(key, value, metrics)
                if key is None:
                    continue
                if isinstance(value, values.TensorValue):  # read by the writer thread
                    self._log_tensor(key, value, step, ts)
                    continue
            kid = ids.get(key)
            if kid is None:
                kid = self._new_key(key)
            if step is None:
                steps = self._steps
                n = steps.get(key, -1) + 1
                steps[key] = n
            else:
                n = step
            seq = next(count)
            try:
                _pack(mm, (seq & MASK) * _SIZE, n, value, ts, kid, seq)
            except struct.error:  # a step beyond 64 bits: the slot is taken, fill it anyway
                _pack(mm, (seq & MASK) * _SIZE, values.step_in_range(n), value, ts, kid, seq)
            if not seq & _CHECK:
                self._check_fill(seq)

    def hand_over_metrics(self, metrics: dict[str, Any], step: int) -> None:
        """``log_metrics(metrics, step)`` for a caller that gives ``metrics`` up: nothing changes
        the dict or its values afterwards (a framework's per-step dict of its own per-step
        copies, as Lightning hands its loggers). The training thread only queues it; the journal
        writer's thread checks the keys and reads the values (one-element tensors as they are,
        not copied), where ``log_metrics`` would spend tens of microseconds of a training step
        with cold caches. Like a tensor logged, it is in memory until the writer's next pass.

        Not for CUDA tensors: their host copy must be queued on the training thread's stream
        (``log_metrics`` does that)."""
        journal = self._journal
        if self._tail is None or journal is None:
            return self._not_recorded()
        queue = journal.handed
        queue.append((metrics, step, int(_time() * 1000)))
        if len(queue) > HANDED_HIGH:  # past 4x, read here: the writer is behind
            hard = HARD_LIMIT + 1 if len(queue) > 4 * HANDED_HIGH else 0
            self._writer.pressure(journal, hard)  # type: ignore[union-attr]

    def _log_tensor(self, key: str, value: Any, step: int | None, ts: int) -> None:
        if step is None:
            step = self._steps.get(key, -1) + 1
            self._steps[key] = step
        journal = self._journal
        if journal is not None:
            journal.tensors.append((key, step, value, ts))

    def _new_key(self, key: str) -> int:
        values.check_text(key, "metric key")
        return self._tail.key_id(key)  # type: ignore[union-attr]

    def _check_fill(self, seq: int) -> None:
        tail = self._tail
        pending = seq - tail.consumed if tail is not None else 0
        if pending > HIGH_WATER:
            self._writer.pressure(self._journal, pending)  # type: ignore[union-attr, arg-type]

    def _not_recorded(self) -> None:
        if self._journal is not None:  # ended (an inert run records nothing, silently)
            self._after_end()

    def log_metric(self, key: str, value: Any, step: int | None = None) -> None:
        self.log_metrics({key: value}, step)

    # -- params, tags, files ---------------------------------------------------------------------

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log params; nested mappings are flattened with ``.`` (``optimizer.lr``)."""
        flat = values.flatten_params(params)
        if flat:
            self._write({"t": "params", "d": flat})

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        clean = values.clean_tags(tags)
        if clean:
            self._write({"t": "tags", "d": clean})

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def artifact_dir(self, name: str) -> Path:
        """A fresh directory ``artifacts/<name>`` to write files into directly (no copy)."""
        target = self._artifact_target(name)
        target.mkdir(parents=True, exist_ok=True)
        return target

    def log_artifact(self, path: str | os.PathLike[str] | Any,
                     name: str | None = None) -> str | None:
        """Copy a file or directory into the run as ``name`` (default: its base name).

        The copy is taken now, so the file may be changed or deleted afterwards. A matplotlib
        figure or PIL image is saved as PNG, an array or tensor as ``.npy``, a DataFrame as CSV,
        a dict or list as JSON. Returns the artifact's name, or None when there is nothing to log
        (a missing path, an object of another kind, an unusable name: one warning).
        """
        if not isinstance(path, str | os.PathLike):
            return self._file_call("log_artifact", self._log_object, path, name)
        return self._file_call("log_artifact", self._log_artifact, path, name)

    def _log_artifact(self, path: str | os.PathLike[str], name: str | None) -> str | None:
        source = Path(path)
        if not source.exists():
            warn_once(f"log_artifact {source}",
                      f"autolog.log_artifact: {str(source)!r} does not exist (cwd: "
                      f"{os.getcwd()}); nothing was logged for it", stacklevel=4)
            return None
        name = name or source.name
        if self._journal is None:
            return name
        target = self._artifact_target(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            import shutil

            shutil.copytree(source, target, dirs_exist_ok=True, copy_function=_link_or_copy,
                            ignore=self._not_the_store)
        else:
            _link_or_copy(source, target)
        self.record_artifact(name)
        return name

    def _not_the_store(self, directory: str, names: list[str]) -> list[str]:
        """``copytree``'s ignore: a directory logged with the store inside it (``"."`` in a
        project whose runs are in ``./autolog-runs``) leaves the store out, which would
        otherwise be copied into itself."""
        store = self.path.parent.resolve() if self.path is not None else None
        return [n for n in names if store is not None and (Path(directory) / n).resolve() == store]

    def record_artifact(self, name: str) -> None:
        """Record a file or directory already written under ``artifact_dir``/``artifacts/``."""
        if self._journal is None:
            return
        target = self._artifact_target(name)
        files = _relative_files(target, self._artifact_root()) if target.is_dir() else [name]
        self._write({"t": "artifact", "path": name, "files": files})

    def log_artifact_deferred(self, name: str, produce: Callable[[], bytes]) -> None:
        """The artifact ``name``, its bytes made by ``produce()`` on the journal writer's thread
        (for autolog's integrations: a chart drawn there rather than on the training thread).
        ``produce`` must not block, and must only read what nothing changes after this call."""
        self._file_call("log_artifact_deferred", self._artifact_deferred, name, produce)

    def _artifact_deferred(self, name: str, produce: Callable[[], bytes]) -> None:
        if self._journal is None:
            return
        target = self._artifact_target(name)
        self._journal.media.append(media.ArtifactEvent(target, name, produce))

    def _log_object(self, value: Any, name: str | None) -> str | None:
        found = media.object_file(value)
        if found is None:
            warn_once(f"log_artifact {type(value).__name__}",
                      f"autolog.log_artifact: a {type(value).__name__} is not a file; give a "
                      "path, a matplotlib figure, a PIL image, an array, a DataFrame, a dict or "
                      "a list. Nothing was logged for it", stacklevel=4)
            return None
        default, write = found
        name = name or default
        if self._journal is None:
            return name
        target = self._artifact_target(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        write(target)
        self.record_artifact(name)
        return name

    def log_text_artifact(self, text: str, name: str) -> str | None:
        """Write ``text`` as the artifact ``name`` (a model summary, a requirements file)."""
        return self._file_call("log_text_artifact", self._log_bytes,
                               values.text_bytes(text, name), name)

    def log_dict(self, data: Any, name: str) -> str | None:
        """Write JSON-serialisable ``data`` as the artifact ``name`` (``.json``); what JSON has
        no type for is written as its ``str``, with a warning."""
        content, changed = encode_record(data)
        if changed is not None:
            warn_once(f"log_dict {changed}", f"autolog.log_dict: {name!r} held a value JSON has "
                      f"no type for ({changed}); it was written as text", stacklevel=3)
        return self._file_call("log_dict", self._log_bytes, content, name)

    def _log_bytes(self, content: bytes, name: str) -> str | None:
        if self._journal is None:
            return name
        target = self._artifact_target(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        self.record_artifact(name)
        return name

    # -- media -------------------------------------------------------------------------------------

    def log_image(self, key: str, image: Any, step: int | None = None) -> None:
        """An image at ``step``: a numpy array (HxW, HxWx3, HxWx4; ``uint8`` or floats in
        [0, 1]), a torch tensor, a PIL image, a matplotlib figure or an image file's path."""
        self._log_media("image", key, image, step)

    def log_figure(self, key: str, figure: Any, step: int | None = None) -> None:
        """A matplotlib figure, drawn now, stored as a PNG image."""
        self._log_media("figure", key, figure, step)

    def log_histogram(self, key: str, values: Any, step: int | None = None,
                      bins: int = media.DEFAULT_BINS) -> None:
        """The distribution of ``values`` (an array or tensor, binned off this thread), or
        ``(counts, edges)`` already binned."""
        self._log_media("histogram", key, values, step, bins=bins)

    def log_table(self, key: str, data: Any, columns: list[str] | None = None,
                  step: int | None = None) -> None:
        """A table: a pandas DataFrame, a list of rows (dicts or sequences), a dict of
        columns, or a 2-D array (``columns`` names the columns of rows without names)."""
        self._log_media("table", key, data, step, columns=columns)

    def log_text(self, key: str, text: Any, step: int | None = None) -> None:
        """A text at ``step`` (a generated sample, a report). To write a text *file* as an
        artifact, use :meth:`log_text_artifact`."""
        if step is None and _legacy_text_call(key, text):
            self._legacy_log_text(key, text)
            return
        self._log_media("text", key, text, step)

    def log_plot(self, key: str, plot: str, data: dict[str, Any],
                 step: int | None = None) -> None:
        """An evaluation plot (``plot``: one of :data:`autolog.charts.PLOTS`) from its data,
        stored as the data and as a PNG drawn off this thread."""
        self._log_media("plot", key, data, step, plot=plot)

    def _log_media(self, kind: str, key: Any, value: Any, step: int | None,
                   **options: Any) -> None:
        if self._journal is None:
            return
        stored = "image" if kind == "figure" else kind
        clean = values.clean_key(key, stored)
        if clean is None:
            return
        try:
            prepared = media.prepare(kind, value, **options)
        except media.MediaError as exc:
            warn_once(f"log_{kind} {clean}", f"autolog: log_{kind}({clean!r}, ...): {exc}; it was "
                      "not logged (this warning is shown once per key)", stacklevel=4)
            return
        except Exception as exc:
            internal_error(f"log_{kind}", exc)
            return
        if prepared.note:
            warn_once(f"log_{kind} {clean} note", f"autolog: log_{kind}({clean!r}, ...): "
                      f"{prepared.note}", stacklevel=4)
        step = self._media_step(stored, clean, step)
        self._journal.media.append(media.MediaEvent(self._artifact_root(), stored, clean, step,
                                                    int(_time() * 1000), prepared))
        if prepared.nbytes > WAKE_BYTES:
            self._writer.pressure(self._journal)  # type: ignore[union-attr]

    def _media_step(self, kind: str, key: str, step: Any) -> int:
        """The given step, or the next of this key's own count from 0."""
        if step is not None:
            step = values.to_step(step)  # None: unusable (warned), the key's own count
            if step is not None:
                return int(step)
        n = self._media_steps.get((kind, key), -1) + 1
        self._media_steps[(kind, key)] = n
        return n

    def _legacy_log_text(self, text: str, name: str) -> None:
        """``log_text(text, name)``, the artifact call of format 1 (and MLflow's
        ``log_text(text, artifact_file)``): kept working, with one warning."""
        warn_once("log_text legacy", "autolog: Run.log_text(text, name) now logs text media "
                  "under a key: log_text(key, text, step=None); this call wrote the artifact "
                  f"{name!r} as before. Use log_text_artifact(text, name) for files.",
                  stacklevel=4)
        self.log_text_artifact(text, name)

    def log_model(self, model: Any, name: str = "model", **options: Any) -> dict[str, Any] | None:
        """Save ``model`` in its framework's format through the plugins' model hooks.

        Returns the model spec (flavor, format, framework version, path), or None when no plugin
        recognises the model type.
        """
        return self._file_call("log_model", self._log_model, model, name, options)

    def _log_model(self, model: Any, name: str, options: dict[str, Any]) -> dict[str, Any] | None:
        if self._journal is None:
            return None
        import shutil

        from .models import save_model  # the plugin machinery loads with the first model

        target = self._artifact_target(name)
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        try:
            spec = save_model(model, target, **options)
        except Exception as exc:  # a plugin's failure: the training goes on
            shutil.rmtree(target, ignore_errors=True)
            internal_error(f"saving model {name!r} ({type(model).__name__})", exc)
            return None
        if spec is None:
            shutil.rmtree(target, ignore_errors=True)
            return None
        spec = {**spec, "path": name, "files": _relative_files(target, target)}
        self._write({"t": "model", "name": name, "spec": spec})
        return spec

    def _file_call(self, call: str, method: Any, *args: Any) -> Any:
        """Run a file-shaped logging call; what the caller gave that cannot be used (a bad name,
        an unreadable file, a wrong type) is one warning and a None result, never a raise."""
        try:
            return method(*args)
        except (TypeError, ValueError, OSError) as exc:
            warn_once(f"{call} {type(exc).__name__} {exc}",
                      f"autolog.{call}: {exc} ({type(exc).__name__}); nothing was logged for it",
                      stacklevel=4)
            return None

    def _write(self, record: dict[str, Any]) -> None:
        """Write an event through to the journal (caller's thread); never raises on its own."""
        if self._journal is None:
            return
        try:
            changed = self._writer.write_event(self._journal, record)  # type: ignore[union-attr]
        except RunEnded:
            self._after_end()
            return
        except Exception as exc:  # a full disk, a removed store: the training goes on
            internal_error("writing the journal", exc)
            return
        if changed is not None:
            warn_once(f"encode {record['t']} {changed}",
                      f"autolog: a {record['t']} event of run {self.id} held a value JSON has no "
                      f"type for ({changed}); it was written as text", stacklevel=4)

    def _artifact_root(self) -> Path:
        assert self.path is not None
        return self.path / ARTIFACTS

    def _artifact_target(self, name: str) -> Path:
        """``artifacts/<name>``, where ``name`` must be a relative path that stays inside. Checked
        on the name itself: resolving the path on disk took 70 µs of system calls a call, four
        or five calls a scikit-learn or XGBoost fit."""
        norm = os.path.normpath(name)
        if not name or "\0" in name or os.path.isabs(name) or os.path.splitdrive(name)[0] \
                or norm == os.pardir or norm.startswith(os.pardir + os.sep):
            raise ValueError(f"artifact name {name!r} must be a relative path inside the run")
        return self._artifact_root() / norm

    # -- ending ------------------------------------------------------------------------------------

    def end(self, status: str = "FINISHED") -> None:
        """End the run as FINISHED, FAILED or KILLED. Ending twice is a no-op."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}; got {status!r}")
        with self._end_lock:
            if self._ended:
                return
            self._ended = True
        self.status = status
        for callback in self._on_end:
            try:
                callback()
            except Exception as exc:
                internal_error("ending the run", exc)
        with runtime.runs_lock:
            if self in runtime.runs:
                runtime.runs.remove(self)
            for stack in self._stacks:
                while self in stack:
                    stack.remove(self)
            self._stacks.clear()
        if self._journal is None:
            return
        end = None
        if self._journal.writes_end:  # an attached run is ended by the process that started it
            end = {"t": "end", "status": status, "time": int(_time() * 1000)}
        self._tail = None
        self._writer.end(self._journal, end)  # type: ignore[union-attr]

    def _after_end(self) -> None:
        warn_once(f"log after end {self.id}",
                  f"autolog: run {self.id} ({self.name}) has ended; later logging to it is ignored")

    # -- the active run ------------------------------------------------------------------------

    def activate(self) -> Activation:
        """Make this run the active run of the calling thread for a ``with`` block, without
        ending it after: what the module-level ``autolog.log_*`` functions and the framework
        integrations log into from that thread (the active run is per thread)::

            def worker(run):
                with run.activate():
                    model.fit(x, y)  # logs into ``run``, not into a new run
        """
        return Activation(self)

    def _activate_here(self) -> None:
        with runtime.runs_lock:
            stack = runtime.stack()
            stack.append(self)
            if not any(s is stack for s in self._stacks):
                self._stacks.append(stack)

    def _deactivate_here(self) -> None:
        with runtime.runs_lock:
            stack = runtime.stack()
            for i in range(len(stack) - 1, -1, -1):
                if stack[i] is self:
                    del stack[i]
                    break

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: Any) -> None:
        self.end(status_for(exc))


class Activation:
    """``with run.activate():`` -- the run is this thread's active run inside the block."""

    def __init__(self, run: Run):
        self.run = run

    def __enter__(self) -> Run:
        self.run._activate_here()
        return self.run

    def __exit__(self, *exc: object) -> None:
        self.run._deactivate_here()


def status_for(exc: BaseException | None) -> str:
    """The status a run ends with when ``exc`` (or nothing) ends its block."""
    if exc is None:
        return "FINISHED"
    if isinstance(exc, KeyboardInterrupt | SystemExit):
        code = getattr(exc, "code", 1)
        return "FINISHED" if isinstance(exc, SystemExit) and code in (0, None) else "KILLED"
    return "FAILED"


_FILE_NAME = re.compile(r"(^|/)[^/]*\.[A-Za-z0-9]{1,8}$")


def _legacy_text_call(first: Any, second: Any) -> bool:
    """Is ``log_text(first, second)`` the old artifact call ``log_text(text, file name)``? The
    text has a line break (a key never has one), or the second argument names a file
    (``"summary.txt"``, ``"reports/eval.md"``) while the first does not."""
    if not isinstance(first, str) or not isinstance(second, str):
        return False
    if "\n" in first:
        return True
    return bool(_FILE_NAME.search(second)) and not _FILE_NAME.search(first) and "\n" not in second


def _link_or_copy(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """A hard link is an O(1) snapshot against deletion; copy when linking is not possible."""
    try:
        if os.path.lexists(target):
            os.unlink(target)
        os.link(source, target)
    except OSError:
        import shutil

        shutil.copy2(source, target)


def _relative_files(directory: Path, root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in directory.rglob("*") if p.is_file())
