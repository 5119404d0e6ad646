"""The ``mlflow`` backend: runs recorded into an MLflow tracking server or store.

Works with ``mlflow`` or ``mlflow-skinny``; the SDK is imported on the backend's worker thread
only. Everything a run holds is mapped as ``docs/backends/mlflow.md`` describes:

- the tracking URI is ``MLFLOW_TRACKING_URI`` (else MLflow's default); the experiment is
  ``MLFLOW_EXPERIMENT_ID`` / ``MLFLOW_EXPERIMENT_NAME`` when set, else the run's project
  (created when missing); the MLflow run keeps autolog's run name and gets the tag
  ``autolog.run_id``; child runs are MLflow nested runs (``mlflow.parentRunId``);
- params, tags and metrics go through ``MlflowClient.log_batch`` within MLflow's limits, keys
  mapped to the characters MLflow accepts (:func:`mlflow_key`); two keys of a run that map to
  one name (``loss@x`` and ``loss_x``) stay apart: the later one gets a stable suffix, kept in
  the delivery state (:class:`Names`), with one warning;
- MLflow stores a point once per (key, step, timestamp, value): a point repeated within the
  same millisecond has its timestamp moved 1 ms on, so every point logged is kept;
- every ``log_batch`` call also sets the tag ``autolog.delivered`` to the journal range and the
  call number it completes; MLflow stores one call atomically, so a batch retried after a failure
  (or by ``autolog sync`` in another process) skips exactly the calls already stored: no metric
  point is ever stored twice;
- a param logged again with another value (MLflow refuses changes) keeps its first value; the
  new value is set as the tag ``autolog.param_changed.<key>``; what was logged is remembered in
  the delivery state, so this survives restarts;
- models are logged as MLflow Models (LoggedModels linked to the run) in the matching flavour;
- media: images through ``log_image`` (key and step: MLflow's image slider), evaluation plots as
  ``plots/<key>.png`` (what ``log_figure`` writes) with their data as ``plots/<key>.json``,
  tables as ``tables/<key>.json`` registered as ``log_table`` registers them, texts as
  ``text/<key>/<step>.txt``; histograms (MLflow has none) as their JSON files;
- statuses map one to one, but CRASHED (MLflow has none): FAILED, with the tag
  ``autolog.status`` = ``CRASHED``;
- edits made later (``autolog ui``) follow: a rename is ``update_run(name=)``, removed tags
  ``delete_tag``, the note the tag ``mlflow.note.content`` (MLflow's run description), delete
  and restore ``delete_run``/``restore_run``.
- a tracking URI MLflow cannot use, refused credentials, or a server path that answers 404 are
  permanent (:class:`BackendUnavailable`, with the fix); an HTTP tracking server that does not
  accept connections is found out with one connect before MLflow's own retries (minutes), and
  raised as a :class:`ConnectionError`: temporary.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import posixpath
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..delivery.cursor import Cursor
from ..hookspecs import hookimpl
from ..journal.reader import start_record
from ._files import import_sdk
from .base import Backend, BackendUnavailable, Batch, Media, RunRef

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = ["MlflowBackend", "Names", "mlflow_key"]

log = logging.getLogger("autolog")

RUN_ID_TAG = "autolog.run_id"
DELIVERED_TAG = "autolog.delivered"
STATUS_TAG = "autolog.status"  # set when autolog's status has no MLflow equivalent (CRASHED)
CHANGED_PREFIX = "autolog.param_changed."
NOTE_TAG = "mlflow.note.content"  # the run's description in the MLflow UI
PARAMS_ARTIFACT_DIR = "autolog/params"

MAX_METRICS = 1000
MAX_PARAMS = 100
MAX_TAGS = 100
MAX_ENTITIES = 1000
MAX_KEY = 250
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_STEP = 2**63 - 1  # MLflow stores steps as 64-bit integers
LOGGED_ARTIFACTS_TAG = "mlflow.loggedArtifacts"  # where log_table lists the tables it wrote

#: tags autolog sets itself: a user's tag that maps to one of these gets another name
RESERVED_TAGS = (RUN_ID_TAG, DELIVERED_TAG, STATUS_TAG, "mlflow.parentRunId")

#: autolog's context tags and the MLflow system tags the UI knows; both are set
TAG_MAP = {
    "autolog.git.commit": "mlflow.source.git.commit",
    "autolog.git.branch": "mlflow.source.git.branch",
    "autolog.source.entry_point": "mlflow.source.name",
    "autolog.user": "mlflow.user",
}

#: autolog flavour -> (MLflow flavour module, distributions pinned in the model's requirements)
FLAVORS = {
    "sklearn": ("sklearn", ("scikit-learn", "cloudpickle")),
    "xgboost": ("xgboost", ("xgboost",)),
    "keras": ("keras", ("keras", "torch", "jax", "tensorflow")),
    "lightning": ("pytorch", ("torch", "lightning", "pytorch-lightning", "cloudpickle")),
    "transformers": ("transformers", ("transformers", "torch", "accelerate")),
}
FLAVORS_BY_MODULE = dict(FLAVORS.values())
#: the generic pickle flavour, recognised by the class's module
PICKLED_CLASSES = {"sklearn.": "sklearn", "xgboost.": "xgboost"}


def mlflow_key(key: str) -> str:
    """``key`` in the characters MLflow accepts for param, metric and tag names.

    Letters, digits, ``_ - . /`` and space stay; any other character becomes ``_``; empty
    path segments are dropped and ``.``/``..`` segments become ``_``/``__`` (MLflow refuses
    names that a file system would resolve to another); keys over 250 characters are cut to
    241 plus ``-`` and 8 hex digits of their hash, so two long keys stay apart.
    """
    chars = "".join(c if c.isalnum() or c in "_-. " else ("/" if c == "/" else "_")
                    for c in key)
    parts = [{".": "_", "..": "__"}.get(p, p) for p in chars.split("/") if p]
    out = "/".join(parts) or "_"
    if len(out) > MAX_KEY:
        out = f"{out[:MAX_KEY - 9]}-{_digest(key)[:8]}"
    return out


class Names:
    """The MLflow name of each key of one run, one namespace (metric, param or tag) each:
    :func:`mlflow_key`, made one-to-one. A key whose name another key of the run already has
    gets ``-`` and 6 hex digits of its own hash. The mapping lives in the run's delivery state,
    so a retried batch or a later ``autolog sync`` maps every key the same way."""

    def __init__(self, state: dict[str, Any], kind: str, reserved: tuple[str, ...] = ()):
        self.kind = kind
        self.known: dict[str, str] = state.setdefault("names", {}).setdefault(kind, {})
        self.taken = {name: key for key, name in self.known.items()}
        self.taken.update((name, "") for name in reserved if name not in self.taken)
        self.collisions: list[tuple[str, str, str]] = []  # (key, other key, name given)

    def __call__(self, key: str) -> str:
        name = self.known.get(key)
        if name is not None:
            return name
        name = mlflow_key(key)
        if name in self.taken:
            other = self.taken[name]
            base, n = name, 0
            while name in self.taken:
                n += 1
                digest = _digest(key if n == 1 else f"{key}#{n}")[:6]
                name = f"{base[:MAX_KEY - 7]}-{digest}"
            self.collisions.append((key, other, name))
        self.known[key] = name
        self.taken[name] = key
        return name


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 14] + "...[truncated]"


class MlflowBackend(Backend):
    name = "mlflow"
    distributions = ("mlflow", "mlflow-skinny")

    def __init__(self, settings: Any):
        super().__init__(settings)
        self._uri: str | None = None
        self._client: Any = None  # a _Guarded MlflowClient
        self._experiments: dict[str, str] = {}
        #: autolog run id -> journal offset up to which MLflow is known to hold everything
        self._confirmed: dict[str, int] = {}
        self._created: set[str] = set()  # autolog ids of the MLflow runs this object created
        self._warned: set[tuple[str, str]] = set()

    # -- where -------------------------------------------------------------------------------

    @property
    def destination(self) -> str:
        """The tracking URI, resolved without importing MLflow (this runs on the caller's thread).

        ``mlflow.set_tracking_uri`` (when the user's code imported MLflow and called it), else
        ``MLFLOW_TRACKING_URI``, else ``default:<cwd>`` for MLflow's own default, which is
        relative to the working directory and resolved by MLflow on the worker.
        """
        if self._uri is None:
            mlflow = sys.modules.get("mlflow")
            is_set = getattr(mlflow, "is_tracking_uri_set", None)
            if callable(is_set) and is_set():
                uri = str(mlflow.get_tracking_uri())  # type: ignore[union-attr]
            else:
                uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
            self._uri = uri.rstrip("/") or f"default:{os.getcwd()}"
        return self._uri

    def cursor_key(self) -> str:
        """``mlflow-<8 hex>``: each tracking URI keeps its own delivery cursors."""
        return "mlflow-" + hashlib.sha256(self.destination.encode()).hexdigest()[:8]

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            MlflowClient = import_sdk("mlflow", "mlflow", "mlflow").MlflowClient
            uri = self.destination
            try:
                client = MlflowClient(None if uri.startswith("default:") else uri)
            except Exception as exc:
                meaning = _meaning(exc, uri)
                if meaning is exc:
                    raise
                raise meaning from exc
            self._client = _Guarded(client, uri)
        return self._client

    def _experiment_id(self, project: str) -> str:
        fixed = os.environ.get("MLFLOW_EXPERIMENT_ID", "").strip()
        if fixed:
            return fixed
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME", "").strip() or project or "default"
        if name not in self._experiments:
            self._experiments[name] = self._get_or_create_experiment(name)
        return self._experiments[name]

    def _get_or_create_experiment(self, name: str) -> str:
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(name)
        if found is not None:
            if found.lifecycle_stage == "deleted":
                raise ValueError(f"MLflow experiment {name!r} is deleted; restore it or set "
                                 "MLFLOW_EXPERIMENT_NAME to another name")
            return found.experiment_id
        try:
            return self.client.create_experiment(name)
        except MlflowException:  # created meanwhile by another process
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    # -- runs --------------------------------------------------------------------------------

    def start_run(self, run: RunRef) -> None:
        if run.state.get("run_id"):
            return
        experiment_id = self._experiment_id(run.project)
        run.state["experiment_id"] = experiment_id
        run.state["run_id"] = self._find_or_create(run.path, run.start, experiment_id)
        if run.id in self._created:
            self._confirmed[run.id] = 0  # a run created just now holds nothing yet

    def _find_or_create(self, run_dir: Path, start: dict[str, Any], experiment_id: str) -> str:
        """The MLflow run tagged with this autolog run id, created (with its parents) if none.

        Looking it up first makes creation idempotent: a process killed after ``create_run``
        but before saving the id finds the same run again.
        """
        found = self.client.search_runs(
            [experiment_id], filter_string=f"tags.`{RUN_ID_TAG}` = '{start['id']}'",
            max_results=1)
        if found:
            return found[0].info.run_id
        tags = {RUN_ID_TAG: start["id"], "mlflow.source.type": "LOCAL"}
        parent = start.get("parent")
        if parent:
            parent_run_id = self._parent_run_id(run_dir.parent / parent)
            if parent_run_id:
                tags["mlflow.parentRunId"] = parent_run_id
        created = self.client.create_run(experiment_id, start_time=start.get("time"), tags=tags,
                                         run_name=start.get("name") or None)
        self._created.add(start["id"])
        return created.info.run_id

    def _parent_run_id(self, parent_dir: Path) -> str | None:
        """The parent's MLflow run id; the parent is created now if not delivered yet.

        ``autolog sync`` may deliver a child before its parent: the parent's MLflow run is then
        created here, tagged with its autolog id, and its own delivery later finds and uses it.
        """
        state = Cursor(parent_dir, self.cursor_key()).state
        if state.get("run_id"):
            return str(state["run_id"])
        start = start_record(parent_dir, from_meta=True)  # its first flush may be to come
        if start is None:
            return None  # the parent is not in this store: the child stays top-level
        project = str(start.get("project") or "default")
        return self._find_or_create(parent_dir, start, self._experiment_id(project))

    def end_run(self, run: RunRef, status: str, end_time: int) -> None:
        run_id = run.state["run_id"]
        if status == "CRASHED":  # MLflow has no such status: FAILED, and a tag saying which
            self.client.set_tag(run_id, STATUS_TAG, status)
            status = "FAILED"
        self.client.set_terminated(run_id, status, end_time)
        self._confirmed.pop(run.id, None)

    # -- params, tags, metrics ---------------------------------------------------------------

    def log_batch(self, run: RunRef, batch: Batch) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self._log_batch(run, batch)
        except MlflowException as exc:
            if "must be in the 'active' state" in str(exc):  # tags added after a deletion
                with self._active(run):
                    self._log_batch(run, batch)
                return
            if "Changing param values is not allowed" not in str(exc):
                raise
            # MLflow holds params this run's state does not know (the state was lost, or
            # another process logged them): learn them, then send again, once.
            self._learn_remote_params(run)
            self._log_batch(run, batch)

    def _log_batch(self, run: RunRef, batch: Batch) -> None:
        from mlflow.entities import Metric, RunTag

        run_id = run.state["run_id"]
        saved_params = dict(run.state.get("params", {}))
        saved_last = dict(run.state.get("last_points", {}))
        params, tags = self._params(run, batch.params)
        tags += self._tags(run, batch.tags)
        metrics = self._metrics(run, batch.metrics, Metric)
        calls = _split(metrics, params, tags)
        start, end = batch.journal_range
        try:
            done = self._calls_done(run, start, end, len(calls))
            for i in range(done, len(calls)):
                m, p, t = calls[i]
                marker = RunTag(DELIVERED_TAG, f"{start}-{end}:{i + 1}/{len(calls)}")
                self.client.log_batch(run_id, metrics=m, params=p, tags=[*t, marker])
        except BaseException:
            self._confirmed.pop(run.id, None)
            run.state["params"] = saved_params
            run.state["last_points"] = saved_last  # a retry moves the same points the same way
            raise
        self._confirmed[run.id] = end

    def _calls_done(self, run: RunRef, start: int, end: int, calls: int) -> int:
        """How many of this batch's calls MLflow already holds (after a failure: some)."""
        confirmed = self._confirmed.get(run.id)
        if confirmed is not None and confirmed <= start:
            return 0
        marker = self.client.get_run(run.state["run_id"]).data.tags.get(DELIVERED_TAG, "")
        try:
            span, _, progress = marker.partition(":")
            done_start, done_end = map(int, span.split("-"))
            done = int(progress.split("/")[0])
        except ValueError:
            return 0  # nothing delivered yet
        if (done_start, done_end) == (start, end):
            return min(done, calls)
        return calls if done_end >= end else 0

    def _params(self, run: RunRef, params: dict[str, Any]) -> tuple[list[Any], list[Any]]:
        """MLflow params for the new ones; tags for changed ones; long values as artifacts."""
        from mlflow.entities import Param, RunTag

        logged: dict[str, str] = run.state.setdefault("params", {})
        names = Names(run.state, "param")
        out, tags = [], []
        for raw_key, raw_value in params.items():
            key, value = names(raw_key), str(raw_value)
            if len(value) > MAX_PARAM_VALUE:
                artifact = f"{PARAMS_ARTIFACT_DIR}/{key.replace('/', '_')}.txt"
                self.client.log_text(run.state["run_id"], value, artifact)
                note = f"...[truncated; whole value in artifact {artifact}]"
                value = value[:MAX_PARAM_VALUE - len(note)] + note
            digest = _digest(value)
            previous = logged.get(key)
            if previous is None:
                logged[key] = digest
                out.append(Param(key, value))
            elif previous != digest:
                tags.append(RunTag(mlflow_key(CHANGED_PREFIX + key), _clip(value, MAX_TAG_VALUE)))
        self._warn_collisions(run, names)
        return out, tags

    def _learn_remote_params(self, run: RunRef) -> None:
        remote = self.client.get_run(run.state["run_id"]).data.params
        run.state["params"] = {key: _digest(value) for key, value in remote.items()}

    def _tags(self, run: RunRef, tags: dict[str, str]) -> list[Any]:
        from mlflow.entities import RunTag

        names = Names(run.state, "tag", RESERVED_TAGS)
        out: dict[str, str] = {}
        for key, value in tags.items():
            out[names(key)] = _clip(value, MAX_TAG_VALUE)
            if key in TAG_MAP:
                out[TAG_MAP[key]] = _clip(value, MAX_TAG_VALUE)
        self._warn_collisions(run, names)
        return [RunTag(k, v) for k, v in out.items()]

    def _metrics(self, run: RunRef, points: list[Any], Metric: Any) -> list[Any]:
        """MLflow metrics: names made one-to-one, steps within 64 bits, and a point that would
        repeat the last one of its key (same step, value and millisecond: MLflow would store it
        once) moved 1 ms on."""
        names = Names(run.state, "metric")
        last: dict[str, list[Any]] = run.state.setdefault("last_points", {})
        seen: dict[str, set[tuple[int, str, int]]] = {}
        out = []
        for m in points:
            key = names(m.key)
            step = min(max(m.step, -MAX_STEP - 1), MAX_STEP)
            value, ts = repr(m.value), m.timestamp
            points_of_key = seen.get(key)
            if points_of_key is None:
                points_of_key = seen[key] = {tuple(last[key])} if key in last else set()
            while (step, value, ts) in points_of_key:
                ts += 1
            points_of_key.add((step, value, ts))
            last[key] = [step, value, ts]
            out.append(Metric(key, m.value, ts, step))
        self._warn_collisions(run, names)
        return out

    def _warn_collisions(self, run: RunRef, names: Names) -> None:
        for key, other, name in names.collisions:
            if (run.id, key) not in self._warned:
                self._warned.add((run.id, key))
                log.warning("autolog: %s keys %r and %r of run %s both map to the MLflow name "
                            "%r; %r is sent as %r", names.kind, other or "(autolog's own)", key,
                            run.id, mlflow_key(key), key, name)
    # -- edits -------------------------------------------------------------------------------

    def rename_run(self, run: RunRef, name: str) -> None:
        with self._active(run):
            self.client.update_run(run.state["run_id"], name=name)

    def delete_tags(self, run: RunRef, keys: list[str]) -> None:
        remote = self.client.get_run(run.state["run_id"]).data.tags
        known = Names(run.state, "tag", RESERVED_TAGS).known  # the names the tags were sent as
        names = {n for key in keys for n in (known.get(key, mlflow_key(key)), TAG_MAP.get(key))
                 if n in remote}
        if names:
            with self._active(run):
                for name in names:
                    self.client.delete_tag(run.state["run_id"], name)

    def set_note(self, run: RunRef, text: str) -> None:
        """MLflow's own note (the run page's description): the tag ``mlflow.note.content``."""
        with self._active(run):
            if text:
                self.client.set_tag(run.state["run_id"], NOTE_TAG, _clip(text, MAX_TAG_VALUE))
            elif NOTE_TAG in self.client.get_run(run.state["run_id"]).data.tags:
                self.client.delete_tag(run.state["run_id"], NOTE_TAG)

    @contextmanager
    def _active(self, run: RunRef) -> Iterator[None]:
        """MLflow refuses changes to a deleted run: restore it for the change, then delete it
        again (an edit made to a run after its deletion in ``autolog ui`` still arrives)."""
        run_id = run.state["run_id"]
        deleted = self.client.get_run(run_id).info.lifecycle_stage == "deleted"
        if deleted:
            self.client.restore_run(run_id)
        try:
            yield
        finally:
            if deleted:
                self.client.delete_run(run_id)

    def resume_run(self, run: RunRef) -> None:
        with self._active(run):
            self.client.update_run(run.state["run_id"], status="RUNNING")
        self._confirmed.pop(run.id, None)

    def delete_run(self, run: RunRef) -> None:
        if self.client.get_run(run.state["run_id"]).info.lifecycle_stage != "deleted":
            self.client.delete_run(run.state["run_id"])

    def restore_run(self, run: RunRef) -> None:
        if self.client.get_run(run.state["run_id"]).info.lifecycle_stage == "deleted":
            self.client.restore_run(run.state["run_id"])

    # -- files ---------------------------------------------------------------------------------

    def log_artifact(self, run: RunRef, local_path: Path, name: str) -> None:
        run_id = run.state["run_id"]
        if local_path.is_dir():
            self.client.log_artifacts(run_id, str(local_path), artifact_path=name)
        elif local_path.exists():
            self.client.log_artifact(run_id, str(local_path),
                                     artifact_path=posixpath.dirname(name) or None)
        else:
            log.warning("autolog: artifact %s of run %s is gone from the local store; "
                        "not sent to MLflow", name, run.id)

    def log_media(self, run: RunRef, media: Media) -> None:
        if not media.path.exists():
            log.warning("autolog: %s %r of run %s is gone from the local store; not sent to "
                        "MLflow", media.kind, media.key, run.id)
            return
        if media.kind == "image" and _pillow_reads(media.path):
            self._log_image(run, media)
        elif media.kind == "plot":
            self._log_plot(run, media)
        elif media.kind == "table":
            self._log_table(run, media)
        elif media.kind == "text":
            self.client.log_text(run.state["run_id"], media.path.read_text(encoding="utf-8"),
                                 f"text/{mlflow_key(media.key)}/{media.step}.txt")
        else:
            super().log_media(run, media)

    def _log_image(self, run: RunRef, media: Media) -> None:
        from PIL import Image

        with Image.open(media.path) as image:
            image.load()
            if not _steps_images():  # MLflow < 2.12: one file per image, no slider
                self.client.log_image(run.state["run_id"], image,
                                      f"images/{_stepped(mlflow_key(media.key), media.step)}.png")
                return
            self.client.log_image(run.state["run_id"], image, key=mlflow_key(media.key),
                                  step=min(max(media.step, 0), MAX_STEP),
                                  timestamp=media.timestamp)

    def _log_plot(self, run: RunRef, media: Media) -> None:
        """What ``log_figure`` writes (``plots/<key>.png``) and the data behind it."""
        name = _stepped(mlflow_key(media.key), media.step)
        for local, suffix in ((media.image, ".png"), (media.path, ".json")):
            if local is not None and local.exists():
                self._log_file_as(run, local, f"plots/{name}{suffix}")

    def _log_table(self, run: RunRef, media: Media) -> None:
        """Our table file is already ``log_table``'s format (pandas' ``split``): sent as it is,
        and listed in the tag ``log_table`` keeps, so MLflow's UI finds it."""
        artifact = f"tables/{_stepped(mlflow_key(media.key), media.step)}.json"
        run_id = run.state["run_id"]
        self._log_file_as(run, media.path, artifact)
        tags = self.client.get_run(run_id).data.tags
        listed = json.loads(tags.get(LOGGED_ARTIFACTS_TAG, "[]"))
        entry = {"path": artifact, "type": "table"}
        if entry not in listed:
            self.client.set_tag(run_id, LOGGED_ARTIFACTS_TAG, json.dumps([*listed, entry]))

    def _log_file_as(self, run: RunRef, local: Path, artifact: str) -> None:
        directory, name = posixpath.split(artifact)
        with tempfile.TemporaryDirectory(prefix="autolog-mlflow-") as tmp:
            target = Path(tmp) / name
            shutil.copyfile(local, target)  # MLflow names the artifact after the local file
            self.client.log_artifact(run.state["run_id"], str(target), directory or None)

    def log_model(self, run: RunRef, local_path: Path, name: str, spec: dict[str, Any]) -> None:
        """An MLflow Model in the matching flavour, or the saved files when there is none."""
        models = run.state.setdefault("models", {})
        if name in models:
            return
        flavor = _mlflow_flavor(spec)
        saved = flavor is not None and self._log_flavored(run, local_path, name, spec, flavor)
        if not saved:
            self.log_artifact(run, local_path, name)
            models[name] = None
        else:
            models[name] = saved

    def _log_flavored(self, run: RunRef, local_path: Path, name: str, spec: dict[str, Any],
                      flavor: str) -> str | None:
        """Log ``name`` as an MLflow Model of ``flavor``; its id, or None to fall back to files.

        Done by hand rather than with ``mlflow.<flavor>.log_model`` so that it uses this
        backend's tracking URI (not the process-wide one) and tells a model MLflow cannot
        save (fall back to files) from a server that fails (raise: retried later).
        """
        try:
            module, model = _load_for_mlflow(flavor, spec, local_path)
        except Exception as exc:
            log.warning("autolog: model %r (flavor %s) is sent to MLflow as plain files: "
                        "loading it for mlflow.%s failed: %s: %s", name, spec.get("flavor"),
                        flavor, type(exc).__name__, exc)
            return None
        if not hasattr(self.client, "create_logged_model"):
            return self._log_run_model(run, module, model, name, flavor)  # MLflow 2
        return self._log_logged_model(run, module, model, name, flavor)

    def _log_logged_model(self, run: RunRef, module: Any, model: Any, name: str,
                          flavor: str) -> str | None:
        """MLflow 3: a LoggedModel, linked to the run as an output."""
        from mlflow.entities import LoggedModelOutput
        from mlflow.models import Model

        run_id = run.state["run_id"]
        logged = self._pending_model(run, name, flavor)
        meta = Model(artifact_path=logged.artifact_location, model_uuid=logged.model_id,
                     run_id=run_id, model_id=logged.model_id)
        with tempfile.TemporaryDirectory(prefix="autolog-mlflow-") as tmp:
            path = os.path.join(tmp, "model")
            if not _save_flavored(module, model, path, meta, flavor, name):
                self._discard_model(logged.model_id)
                return None
            self.client.log_model_artifacts(logged.model_id, path)
        self.client.finalize_logged_model(logged.model_id, "READY")
        self.client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, 0)])
        return str(logged.model_id)

    def _discard_model(self, model_id: str) -> None:
        """Delete a LoggedModel that could not be saved: a FAILED one would stand where the
        plain files are sent (``runs:/<id>/<name>`` resolves to it, and lists nothing)."""
        try:
            self.client.delete_logged_model(model_id)
        except Exception:
            self.client.finalize_logged_model(model_id, "FAILED")

    def _log_run_model(self, run: RunRef, module: Any, model: Any, name: str,
                       flavor: str) -> str | None:
        """MLflow 2: the MLflow Model directory in the run's artifacts, as ``log_model`` did."""
        from mlflow.models import Model

        run_id = run.state["run_id"]
        with tempfile.TemporaryDirectory(prefix="autolog-mlflow-") as tmp:
            path = os.path.join(tmp, "model")
            if not _save_flavored(module, model, path, Model(run_id=run_id, artifact_path=name),
                                  flavor, name):
                return None
            self.client.log_artifacts(run_id, path, name)
        return f"runs:/{run_id}/{name}"

    def _pending_model(self, run: RunRef, name: str, flavor: str) -> Any:
        """A LoggedModel to upload into: one left pending by a failed try, or a new one."""
        run_id, experiment_id = run.state["run_id"], run.state["experiment_id"]
        found: list[Any] = []
        if "'" not in name:
            try:
                found = list(self.client.search_logged_models(
                    [experiment_id],
                    filter_string=f"source_run_id = '{run_id}' AND name = '{name}'"))
            except Exception:  # a store without this search: create a new one
                found = []
        for model in found:
            if str(model.status) in ("PENDING", "LoggedModelStatus.PENDING"):
                return model
        return self.client.create_logged_model(experiment_id, name=name, source_run_id=run_id,
                                               tags={RUN_ID_TAG: run.id, "mlflow.flavor": flavor})


def _stepped(name: str, step: int) -> str:
    return name if step == 0 else f"{name}-{step}"


def _pillow_reads(path: Path) -> bool:
    """MLflow's ``log_image`` takes a PIL image: without Pillow the file goes as an artifact."""
    try:
        import PIL.Image  # noqa: F401
    except ImportError:
        return False
    return path.suffix.lower() in (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp")


def _mlflow_flavor(spec: dict[str, Any]) -> str | None:
    flavor = spec.get("flavor")
    if flavor == "pickle":
        cls = str(spec.get("class", ""))
        flavor = next((f for prefix, f in PICKLED_CLASSES.items() if cls.startswith(prefix)),
                      None)
    return FLAVORS[flavor][0] if flavor in FLAVORS else None


def _load_for_mlflow(flavor: str, spec: dict[str, Any], path: Path) -> tuple[Any, Any]:
    import importlib

    from ..models import load_model

    module = importlib.import_module(f"mlflow.{flavor}")
    model = load_model(spec, path)
    if flavor == "transformers":
        model = _transformers_components(model, spec, path)
    return module, model


#: transformers model class suffix -> pipeline task (MLflow cannot infer it for a local model)
TRANSFORMERS_TASKS = {
    "ForSequenceClassification": "text-classification",
    "ForTokenClassification": "token-classification",
    "ForQuestionAnswering": "question-answering",
    "ForCausalLM": "text-generation",
    "ForMaskedLM": "fill-mask",
    "ForConditionalGeneration": "text2text-generation",
    "ForSeq2SeqLM": "text2text-generation",
    "ForImageClassification": "image-classification",
}


def _transformers_components(model: Any, spec: dict[str, Any], path: Path) -> dict[str, Any]:
    """The model and its saved tokenizer / processor, as MLflow's transformers flavour wants."""
    components = {"model": model}
    qualified = spec.get("processing_class")
    if qualified:
        import importlib

        module_name, _, name = qualified.rpartition(".")
        processor = getattr(importlib.import_module(module_name), name).from_pretrained(path)
        key = ("tokenizer" if "Tokenizer" in name else
               "image_processor" if "ImageProcessor" in name else "processor")
        components[key] = processor
    return components


def _save_flavored(module: Any, model: Any, path: str, meta: Any, flavor: str,
                   name: str) -> bool:
    """``mlflow.<flavor>.save_model`` into ``path``; False (with a warning) when it fails."""
    import inspect

    options: dict[str, Any] = {}
    accepted = inspect.signature(module.save_model).parameters
    if flavor == "pytorch" and "serialization_format" in accepted:
        options["serialization_format"] = "pickle"  # "pt2" would need an input example
    if flavor == "sklearn" and "serialization_format" in accepted:
        # MLflow 3's default, skops, refuses the types of every tree model and search
        # (sklearn.tree._tree.Tree, the CV splitters) unless each is listed as trusted; and it
        # cannot hold a user's own estimator classes. cloudpickle holds them all: it is what
        # mlflow.sklearn.autolog() saves with.
        options["serialization_format"] = "cloudpickle"
    if flavor == "transformers":
        cls = type(model["model"]).__name__
        task = next((t for suffix, t in TRANSFORMERS_TASKS.items() if cls.endswith(suffix)), None)
        if task:
            options["task"] = task
    try:
        # explicit requirements: MLflow's inference would load the model in a subprocess
        module.save_model(model, path, mlflow_model=meta,
                          pip_requirements=_pins(FLAVORS_BY_MODULE[flavor]), **options)
    except Exception as exc:
        log.warning("autolog: model %r is sent to MLflow as plain files: mlflow.%s.save_model "
                    "failed: %s: %s", name, flavor, type(exc).__name__, exc)
        return False
    return True


def _pins(distributions: tuple[str, ...]) -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for dist in distributions:
        try:
            pins.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:
            continue
    return pins


def _split(metrics: list[Any], params: list[Any], tags: list[Any]) -> list[tuple[Any, Any, Any]]:
    """Cut into ``log_batch`` calls within MLflow's limits, keeping one tag slot for the marker."""
    calls = []
    pi = ti = mi = 0
    while pi < len(params) or ti < len(tags) or mi < len(metrics):
        p = params[pi:pi + MAX_PARAMS]
        t = tags[ti:ti + MAX_TAGS - 1]
        room = min(MAX_METRICS, MAX_ENTITIES - 1 - len(p) - len(t))
        m = metrics[mi:mi + room]
        pi, ti, mi = pi + len(p), ti + len(t), mi + len(m)
        calls.append((m, p, t))
    return calls



# -- what MLflow's failures mean ------------------------------------------------------------


class MlflowUnreachable(ConnectionError):
    """The tracking server does not accept connections: temporary, retried."""


class _Guarded:
    """An ``MlflowClient`` whose calls raise :class:`BackendUnavailable` for a permanent
    misconfiguration and :class:`MlflowUnreachable` for a server that is not there, at once.

    MLflow retries a refused connection with backoff for minutes; one ``connect`` before the
    first call, and after any failure, finds a server that is down in milliseconds.
    """

    def __init__(self, client: Any, uri: str):
        self._client = client
        self._uri = uri
        self._checked = False

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if not callable(method):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            if not self._checked:
                _check_reachable(self._uri)
                self._checked = True
            try:
                return method(*args, **kwargs)
            except Exception as exc:
                self._checked = False
                meaning = _meaning(exc, self._uri)
                if meaning is exc:
                    raise
                raise meaning from exc

        return call


def _check_reachable(uri: str) -> None:
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=5).close()
    except OSError as exc:
        raise MlflowUnreachable(
            f"cannot reach the MLflow tracking server at {uri} ({exc.strerror or exc}); is it "
            "running, and is MLFLOW_TRACKING_URI right?") from None


def _meaning(exc: Exception, uri: str) -> Exception:
    """``exc`` as a permanent :class:`BackendUnavailable` when it says the configuration is
    wrong; else unchanged (retried)."""
    text = str(exc)
    code = str(getattr(exc, "error_code", ""))
    if "unsupported URI" in text or "registered tracking store" in text:
        return BackendUnavailable(
            f"MLFLOW_TRACKING_URI={uri} is not a tracking URI MLflow can use ({_first(text)}); "
            "use http(s)://host:port, sqlite:///path/mlflow.db, or a database URL.")
    if code in ("UNAUTHENTICATED", "PERMISSION_DENIED") or _status(text) in (401, 403):
        return BackendUnavailable(
            f"the MLflow tracking server at {uri} refused the credentials ({_first(text)}); "
            "set MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD, to an account that may write.")
    if code == "ENDPOINT_NOT_FOUND" or _status(text) == 404:
        return BackendUnavailable(
            f"MLFLOW_TRACKING_URI={uri} leads nowhere: MLflow's API answered 404 there "
            f"({_first(text)}); {_path_hint(uri)}")
    return exc


def _status(text: str) -> int | None:
    import re

    found = re.search(r"error code (\d{3}) != 200", text)  # a response that is not MLflow's
    return int(found.group(1)) if found else None


def _first(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 200 else line[:197] + "..."


def _path_hint(uri: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    root = f"{parts.scheme}://{parts.netloc}"
    path = parts.path.rstrip("/")
    for suffix in ("/api/2.0/mlflow", "/api/2.0", "/ajax-api/2.0/mlflow"):
        if path.endswith(suffix):
            return (f"the URL path should be {uri.rstrip('/')[:-len(suffix)] or root} "
                    f"(MLflow adds {suffix})")
    if path:
        return f"the URL path should probably be {root} (the server's address, no path)"
    return "is it an MLflow tracking server?"


@hookimpl
def autolog_register_backends(register: Any) -> None:
    register(MlflowBackend)


@functools.lru_cache(maxsize=1)
def _steps_images() -> bool:
    """Version difference: ``log_image(key=, step=)`` (MLflow 2.12+, the image slider) or only
    ``log_image(image, artifact_file)`` (read on MLflow's class: ours wraps the client)."""
    import inspect

    from mlflow import MlflowClient

    return "key" in inspect.signature(MlflowClient.log_image).parameters
