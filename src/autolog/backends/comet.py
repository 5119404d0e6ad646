"""The ``comet`` backend: runs recorded as Comet offline experiments (``comet_ml``).

``AUTOLOG_BACKEND=local,comet``. Each run becomes a Comet ``OfflineExperiment`` whose key is
autolog's run id; its archive ``<offline dir>/<run id>.zip`` is uploaded with ``comet upload``
(``docs/backends/comet.md``). No network call is made: the backend never creates an online
experiment. The mapping:

- offline directory: ``COMET_OFFLINE_DIRECTORY`` (Comet's own setting; default
  ``./.cometml-runs``); project and workspace: ``COMET_PROJECT_NAME`` / ``COMET_WORKSPACE``,
  else the run's project; the experiment name is autolog's run name;
- params: ``log_parameters`` (flat keys); tags: Comet "others" (``log_others``), plus
  ``autolog.run_id``, ``autolog.parent_id`` and, at the end, ``autolog.status``;
- metrics: ``log_metric`` at their step (Comet stamps them with the delivery time; it takes no
  timestamp);
- artifacts: assets, files at their path under the run (``plots/a.png``); models: Comet models
  (``log_model``) named as in autolog;
- media at their step: images with ``log_image`` (named by key), histograms with
  ``log_histogram_3d`` (re-binned into Comet's own fixed bins: each bin's count at its centre),
  tables with ``log_table`` (``<key>/<step>.csv``), texts with ``log_text`` (the key in its
  metadata), evaluation plots as their drawing (``log_image``) and their data: a confusion matrix
  with ``log_confusion_matrix``, ROC and precision-recall curves with ``log_curve``, the
  regression scatters as tables;
- a later delivery of the same run (``autolog sync`` after the process ended before the run
  did) is an ``ExistingOfflineExperiment`` with the same key: Comet names its archive
  ``<run id>-<suffix>.zip`` and appends it to the experiment when uploaded after the first.

Comet writes an archive when its experiment ends (the run's end, or ``close()`` at exit). What
Comet had queued for a process killed with SIGKILL is in no archive; ``autolog sync`` cannot
resend it (delivery had moved past it): the local journal still has it.

``import comet_ml`` patches frameworks for Comet's own auto-logging unless
``COMET_DISABLE_AUTO_LOGGING=1``, may start reporting errors to Comet's Sentry unless
``COMET_ERROR_TRACKING_ENABLE=false`` (a network call even offline), and replaces
``sys.excepthook``: the backend sets both variables (when unset) before importing and puts the
hook back after.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

from ..hookspecs import hookimpl
from . import _media
from ._files import import_sdk
from .base import Backend, Batch, Media, RunRef

__all__ = ["CometBackend"]

log = logging.getLogger("autolog")

#: every automatic collection of Comet's switched off: autolog records these itself
QUIET = dict(log_code=False, log_graph=False, auto_param_logging=False,
             auto_metric_logging=False, parse_args=False, auto_output_logging=False,
             log_env_details=False, log_git_metadata=False, log_git_patch=False,
             log_env_gpu=False, log_env_host=False, log_env_cpu=False, display_summary_level=0)

#: evaluation plot -> the data's (x, y) of its Comet curve
CURVES = {"roc_curve": ("fpr", "tpr"), "precision_recall_curve": ("recall", "precision")}

_import_lock = threading.Lock()


def import_comet() -> ModuleType:
    """``comet_ml``, with its auto-logging off and ``sys.excepthook`` left as it was."""
    with _import_lock:
        loaded = sys.modules.get("comet_ml")
        if loaded is not None:
            return loaded
        os.environ.setdefault("COMET_DISABLE_AUTO_LOGGING", "1")
        os.environ.setdefault("COMET_ERROR_TRACKING_ENABLE", "false")  # Sentry, from import on
        saved = sys.excepthook
        try:
            return import_sdk("comet_ml", "comet", "comet")
        finally:
            sys.excepthook = saved


class CometBackend(Backend):
    name = "comet"
    distributions = ("comet-ml",)

    def __init__(self, settings: Any):
        super().__init__(settings)
        self._experiments: dict[str, Any] = {}  # autolog run id -> open OfflineExperiment
        #: autolog run id -> (journal range, points logged) of a batch that failed midway
        self._sent: dict[str, tuple[tuple[int, int], int]] = {}
        #: autolog run id -> (media file, calls made) of a media item that failed midway
        self._media_sent: dict[str, tuple[str, int]] = {}

    def cursor_key(self) -> str:
        where = os.path.abspath(os.environ.get("COMET_OFFLINE_DIRECTORY") or ".cometml-runs")
        return "comet-" + hashlib.sha256(where.encode()).hexdigest()[:8]

    # -- runs --------------------------------------------------------------------------------

    def start_run(self, run: RunRef) -> None:
        if run.id in self._experiments:
            return
        comet = import_comet()
        options = dict(QUIET, project_name=os.environ.get("COMET_PROJECT_NAME") or run.project,
                       workspace=os.environ.get("COMET_WORKSPACE") or None,
                       offline_directory=os.environ.get("COMET_OFFLINE_DIRECTORY")
                       or ".cometml-runs", experiment_key=run.id)
        if run.state.get("sessions"):
            experiment = comet.ExistingOfflineExperiment(**options)
        else:
            experiment = comet.OfflineExperiment(**options)
            experiment.set_name(run.name)
            experiment.log_others({"autolog.run_id": run.id,
                                   "autolog.parent_id": run.parent_id or ""})
        run.state["sessions"] = run.state.get("sessions", 0) + 1
        self._experiments[run.id] = experiment

    def _experiment(self, run: RunRef) -> Any:
        if run.id not in self._experiments:
            self.start_run(run)
        return self._experiments[run.id]

    def log_batch(self, run: RunRef, batch: Batch) -> None:
        experiment = self._experiment(run)
        if batch.params:
            experiment.log_parameters(batch.params)
        if batch.tags:
            experiment.log_others(batch.tags)
        sent_range, sent = self._sent.get(run.id, ((-1, -1), 0))
        start = sent if sent_range == batch.journal_range else 0  # retried after a failure
        for i in range(start, len(batch.metrics)):
            m = batch.metrics[i]
            experiment.log_metric(m.key, m.value, step=m.step)
            self._sent[run.id] = (batch.journal_range, i + 1)
        self._sent.pop(run.id, None)

    def end_run(self, run: RunRef, status: str, end_time: int) -> None:
        experiment = self._experiment(run)
        experiment.log_other("autolog.status", status)
        experiment.end()
        del self._experiments[run.id]

    def close(self) -> None:
        """Archive the experiments whose end was not delivered (a later sync continues them)."""
        for run_id in list(self._experiments):
            try:
                self._experiments.pop(run_id).end()
            except Exception as exc:
                log.warning("autolog: archiving Comet experiment %s failed: %s", run_id, exc)

    # -- files ---------------------------------------------------------------------------------

    def log_artifact(self, run: RunRef, local_path: Path, name: str) -> None:
        experiment = self._experiment(run)
        if local_path.is_file():
            experiment.log_asset(str(local_path), file_name=name)
            return
        for path in sorted(p for p in local_path.rglob("*") if p.is_file()):
            experiment.log_asset(str(path), file_name=f"{name}/{path.relative_to(local_path)}")

    def log_model(self, run: RunRef, local_path: Path, name: str, spec: dict[str, Any]) -> None:
        experiment = self._experiment(run)
        experiment.log_model(name, str(local_path), metadata=spec)

    def log_media(self, run: RunRef, media: Media) -> None:
        """One or two Comet calls per item; a retry after a failure midway makes only the
        calls not made yet (within the process, as for metrics)."""
        if _media.gone(run, media, "Comet"):
            return
        if media.kind not in ("image", "histogram", "table", "text", "plot"):
            super().log_media(run, media)  # a later kind: its files, as assets
            return
        calls = _media_calls(import_comet(), self._experiment(run), media)
        name, made = self._media_sent.get(run.id, ("", 0))
        for i in range(made if name == media.name else 0, len(calls)):
            calls[i]()
            self._media_sent[run.id] = (media.name, i + 1)
        self._media_sent.pop(run.id, None)


def _media_calls(comet: ModuleType, experiment: Any, media: Media) -> list[Any]:
    """The Comet calls that record one media item, in order, each without arguments."""
    key, step = media.key, media.step
    name = "/".join(Path(media.name).with_suffix("").parts[2:])  # <key>/<step>: media/<kind>/...
    if media.kind == "image":
        return [lambda: experiment.log_image(str(media.path), name=key, step=step)]
    if media.kind == "text":
        text = media.path.read_text(encoding="utf-8")
        return [lambda: experiment.log_text(text, step=step, metadata={"key": key})]
    if media.kind == "histogram":
        return _histogram_calls(comet, experiment, media)
    calls = []
    if media.kind == "plot" and media.image is not None and media.image.exists():
        image = str(media.image)
        calls.append(lambda: experiment.log_image(image, name=key, step=step))
    data = _media.load(media)
    plot = data.pop("plot", None)
    if plot == "confusion_matrix":
        calls.append(lambda: experiment.log_confusion_matrix(
            matrix=data["matrix"], labels=[str(label) for label in data["labels"]], title=key,
            file_name=f"{name}.json", step=step))
    elif plot in CURVES:
        x, y = CURVES[plot]
        calls.append(lambda: experiment.log_curve(key, data[x], data[y], step=step))
    else:
        columns, rows = _media.table_of(media)
        calls.append(lambda: experiment.log_table(f"{name}.csv", rows, headers=columns))
    return calls


def _histogram_calls(comet: ModuleType, experiment: Any, media: Media) -> list[Any]:
    data = _media.load(media)
    if not data["counts"]:  # only NaN or infinite values: nothing to draw
        return []
    edges = data["edges"]
    histogram = comet.Histogram()
    histogram.add([(a + b) / 2 for a, b in itertools.pairwise(edges)], data["counts"])
    return [lambda: experiment.log_histogram_3d(histogram, name=media.key, step=media.step)]


@hookimpl
def autolog_register_backends(register: Any) -> None:
    register(CometBackend)
