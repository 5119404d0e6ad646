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
import logging
import os
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

from ..hookspecs import hookimpl
from ._files import import_sdk
from .base import Backend, Batch, RunRef

__all__ = ["CometBackend"]

log = logging.getLogger("autolog")

#: every automatic collection of Comet's switched off: autolog records these itself
QUIET = dict(log_code=False, log_graph=False, auto_param_logging=False,
             auto_metric_logging=False, parse_args=False, auto_output_logging=False,
             log_env_details=False, log_git_metadata=False, log_git_patch=False,
             log_env_gpu=False, log_env_host=False, log_env_cpu=False, display_summary_level=0)

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


@hookimpl
def autolog_register_backends(register: Any) -> None:
    register(CometBackend)
