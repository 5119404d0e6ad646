"""The ``clearml`` backend: runs written as ClearML offline sessions.

``AUTOLOG_BACKEND=local,clearml``. Each run becomes the folder and zip that ClearML's own offline
mode (``Task.set_offline(True)``) produces, ``<AUTOLOG_CLEARML_DIR>/offline-<run id>[.zip]``
(default ``~/.clearml/cache/offline``, ClearML's place); ``clearml-task --import-offline-session
<zip>`` or ``Task.import_offline_session(<zip>)`` imports it into a ClearML server
(``docs/backends/clearml.md``). The mapping:

- ``task.json``: the task's name, project, type ``training``; params in the hyperparameter
  section ``General``; tags (and ``autolog.run_id``, ``autolog.parent_id``,
  ``autolog.status``) as user properties (section ``properties``); artifacts in
  ``execution.artifacts``, their files under ``data/``;
- ``metrics.jsonl``: scalar events, one JSON list per delivered batch, at their step
  (``iter``) with autolog's timestamps; ``a/b/loss`` is title ``a/b``, series ``loss``;
  ``loss`` is title and series ``loss`` (as ``report_scalar("loss", "loss", ...)``);
  ``system/...`` readings go under ClearML's monitoring titles ``:monitor:machine`` and
  ``:monitor:gpu``, so its resource charts show them;
- models: ``offline_output_models`` (ClearML output models), files zipped under ``data/``;
- media, at their step (``iter``) and time, named like scalars (``a/b/img``: title ``a/b``,
  series ``img``): images as debug samples (``training_debug_image`` events, the file under
  ``data/.../metrics/<title>/<series>/``, which the import uploads), histograms as bar-chart
  plots and tables as table plots (the Plotly JSON of ``Logger.report_histogram`` /
  ``report_table``; a table's first 1,000 rows), texts as console lines (``log.jsonl``, what
  ``Logger.report_text`` writes), evaluation plots as their drawing (a debug sample) and a plot
  (a confusion matrix as ``report_confusion_matrix``'s heat map, curves and scatters as
  ``report_scatter2d``'s);
- the zip is (re)written when the run ends; the folder is importable before that.

Written here rather than through ``Task.init``: ClearML's offline mode has one task per process
(``Task.init`` returns the open task, which may be the user's own), installs process-wide
``sys.exit``/``sys.excepthook``/signal hooks, snapshots the script and its requirements, and
asks ``updates.clear.ml`` for a new version even offline. The tests check the files against
ClearML's own API schema classes (``tasks.EditRequest``, ``events.MetricsScalarEvent``),
which is what an import sends to the server.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

from ..hookspecs import hookimpl
from . import _media
from ._files import append_once, safe_name, write_atomic
from .base import Backend, Batch, Media, RunRef

__all__ = ["ClearmlBackend", "scalar_name"]

SYSTEM_PREFIX = "system/"
PARAMS_SECTION = "General"
PROPERTIES = "properties"
#: evaluation plot -> (x field, y field, x title, y title, Plotly mode) of its scatter
CURVES = {"roc_curve": ("fpr", "tpr", "False Positive Rate", "True Positive Rate", "lines"),
          "precision_recall_curve": ("recall", "precision", "Recall", "Precision", "lines"),
          "predicted_vs_true": ("true", "predicted", "True", "Predicted", "markers"),
          "residuals": ("predicted", "residual", "Predicted", "Residual", "markers")}
FRAMEWORKS = {"sklearn": "ScikitLearn", "xgboost": "XGBoost", "keras": "Keras",
              "lightning": "PyTorch", "transformers": "PyTorch", "pickle": "Custom"}


def scalar_name(key: str) -> tuple[str, str]:
    """ClearML's (title, series) for an autolog metric key."""
    if key.startswith(SYSTEM_PREFIX):
        reading = key[len(SYSTEM_PREFIX):]
        if reading.startswith("gpu/"):
            return ":monitor:gpu", "gpu_" + reading[4:].replace("/", "_")
        return ":monitor:machine", reading
    title, _, series = key.rpartition("/")
    return (title, series) if title else (key, key)


class ClearmlBackend(Backend):
    name = "clearml"
    distributions = ()  # written by autolog; `clearml` is needed only to import the sessions
    loads_sdk = False

    def __init__(self, settings: Any):
        super().__init__(settings)
        self.root = Path(os.path.expanduser(settings.clearml_dir)).absolute()

    def cursor_key(self) -> str:
        return "clearml-" + hashlib.sha256(str(self.root).encode()).hexdigest()[:8]

    def folder(self, run: RunRef) -> Path:
        return self.root / task_id(run)

    # -- runs --------------------------------------------------------------------------------

    def start_run(self, run: RunRef) -> None:
        folder = self.folder(run)
        if (folder / "task.json").exists():
            return
        task = {"id": task_id(run), "name": run.name, "project_name": run.project,
                "type": "training", "comment": f"autolog run {run.id}", "tags": [],
                "hyperparams": {PROPERTIES: _section(PROPERTIES, {
                    "autolog.run_id": run.id, "autolog.parent_id": run.parent_id or ""})},
                "execution": {"artifacts": []}, "offline_folder": str(folder),
                "offline_output_models": []}
        write_atomic(folder / "task.json", json.dumps(task, indent=2))

    def log_batch(self, run: RunRef, batch: Batch) -> None:
        if batch.params or batch.tags:
            task = self._task(run)
            for section, values in ((PARAMS_SECTION, batch.params), (PROPERTIES, batch.tags)):
                task["hyperparams"].setdefault(section, {}).update(_section(section, values))
            self._save(run, task)
        if batch.metrics:
            tid = task_id(run)
            events = [{"timestamp": m.timestamp, "type": "training_stats_scalar", "task": tid,
                       "iter": m.step, "metric": title, "variant": series, "value": m.value}
                      for m in batch.metrics for title, series in [scalar_name(m.key)]]
            line = (json.dumps(events) + "\n").encode("utf-8")
            append_once(self.folder(run) / "metrics.jsonl", line,
                        run.state.setdefault("files", {}), "metrics.jsonl")

    def end_run(self, run: RunRef, status: str, end_time: int) -> None:
        task = self._task(run)
        task["hyperparams"][PROPERTIES].update(_section(PROPERTIES, {"autolog.status": status}))
        self._save(run, task)
        folder = self.folder(run)
        tmp = folder.with_name(f".{folder.name}.{os.getpid()}.zip")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(folder).as_posix())
        os.replace(tmp, folder.with_suffix(".zip"))

    # -- files ---------------------------------------------------------------------------------

    def log_artifact(self, run: RunRef, local_path: Path, name: str) -> None:
        files = ([(local_path, name)] if local_path.is_file() else
                 [(p, f"{name}/{p.relative_to(local_path).as_posix()}")
                  for p in sorted(local_path.rglob("*")) if p.is_file()])
        task = self._task(run)
        artifacts = {a["key"]: a for a in task["execution"]["artifacts"]}
        for path, key in files:
            target = self._data_dir(run) / "artifacts" / key / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            artifacts[key] = _artifact(key, target)
        task["execution"]["artifacts"] = list(artifacts.values())
        self._save(run, task)

    def log_model(self, run: RunRef, local_path: Path, name: str, spec: dict[str, Any]) -> None:
        target = self._data_dir(run) / "models" / f"{safe_name(name)}.zip"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.make_archive(str(target.with_suffix("")), "zip", local_path)
        task = self._task(run)
        models = [m for m in task["offline_output_models"] if m["init"]["name"] != name]
        models.append({
            "id": f"offline-model-{run.id[:8]}-{safe_name(name)}",
            "init": {"name": name, "framework": FRAMEWORKS.get(spec.get("flavor", ""), "Custom"),
                     "tags": [], "comment": json.dumps(spec), "config_text": None,
                     "config_dict": None, "label_enumeration": None},
            "weights": {"weights_filename": str(target), "upload_uri": None,
                        "target_filename": None, "register_uri": None, "iteration": None,
                        "update_comment": False, "is_package": True},
            "output_uri": None})
        task["offline_output_models"] = models
        self._save(run, task)

    # -- media ---------------------------------------------------------------------------------

    def log_media(self, run: RunRef, media: Media) -> None:
        """Events appended once to ``metrics.jsonl`` / ``log.jsonl`` (cut back to the
        acknowledged size on a retry, like scalars); sample files written whole."""
        if _media.gone(run, media, "ClearML"):
            return
        if media.kind == "text":
            self._log_text(run, media)
            return
        title, series = scalar_name(media.key)
        base = {"timestamp": media.timestamp, "task": task_id(run), "iter": media.step,
                "metric": title, "variant": series}
        events = []
        image = media.path if media.kind == "image" else media.image
        if media.kind in ("image", "plot") and image is not None and image.exists():
            events.append(self._debug_image(run, base, image))
        figure = _figure(media, title, series)
        if figure is not None:
            events.append({**base, "type": "plot", "plot_str": json.dumps(figure)})
        if media.kind not in ("image", "histogram", "table", "plot"):
            super().log_media(run, media)  # a later kind: its files, as artifacts
        if events:
            self._append(run, "metrics.jsonl", events)

    def _debug_image(self, run: RunRef, base: dict[str, Any], image: Path) -> dict[str, Any]:
        """A debug sample: the file where the offline mode keeps it, and its event."""
        data = self.folder(run) / "data"
        target = (self._data_dir(run) / "metrics" / _folder(base["metric"])
                  / _folder(base["variant"]) / image.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(image, target)
        return {**base, "type": "training_debug_image",
                "key": target.relative_to(data).as_posix(), "url": str(target)}

    def _log_text(self, run: RunRef, media: Media) -> None:
        text = media.path.read_text(encoding="utf-8")
        self._append(run, "log.jsonl", [{
            "task": task_id(run), "timestamp": media.timestamp, "level": "info",
            "worker": "autolog", "msg": f"{media.key} (step {media.step}):\n{text}"}])

    def _append(self, run: RunRef, name: str, events: list[dict[str, Any]]) -> None:
        line = (json.dumps(events) + "\n").encode("utf-8")
        append_once(self.folder(run) / name, line, run.state.setdefault("files", {}), name)

    def _data_dir(self, run: RunRef) -> Path:
        """Where ClearML's offline mode keeps a task's files."""
        return (self.folder(run) / "data" / safe_name(run.project)
                / f"{safe_name(run.name)}.{task_id(run)}")

    def _task(self, run: RunRef) -> dict[str, Any]:
        path = self.folder(run) / "task.json"
        if not path.exists():
            self.start_run(run)
        task: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return task

    def _save(self, run: RunRef, task: dict[str, Any]) -> None:
        write_atomic(self.folder(run) / "task.json", json.dumps(task, indent=2))


def task_id(run: RunRef) -> str:
    """``offline-<run id>``: ClearML's offline task ids are ``offline-`` and 32 hex digits."""
    return f"offline-{run.id}"


def _section(section: str, values: dict[str, Any]) -> dict[str, dict[str, str]]:
    out = {}
    for key, value in values.items():
        entry = {"name": key, "section": section, "value": _text(value)}
        if section == PARAMS_SECTION:
            entry.update(type=type(value).__name__, description="")
        out[key] = entry
    return out


def _folder(name: str) -> str:
    """A title or series as one folder name (ClearML writes ``/`` as ``.slash.``)."""
    return safe_name(name.replace("/", ".slash."), 250)


def _figure(media: Media, title: str, series: str) -> dict[str, Any] | None:
    """The Plotly figure ClearML's own reporting call would make of the item, or None."""
    if media.kind == "histogram":
        data = _media.load(media)
        return _histogram(data["counts"], data["edges"], title, series) if data["counts"] \
            else None
    if media.kind == "table":
        columns, rows = _media.table_of(media)
        return _table(columns, rows[:_media.MAX_TABLE_ROWS], title, series)
    if media.kind == "plot":
        data = _media.load(media)
        plot = data.pop("plot")
        if plot == "confusion_matrix":
            return _heatmap(data["labels"], data["matrix"], title, series)
        if plot in CURVES:
            return _scatter(plot, data, title, series, _media.plot_caption(media))
    return None


def _histogram(counts: list[float], edges: list[float], title: str,
               series: str) -> dict[str, Any]:
    """``report_histogram``'s bar chart, a bar per bin at its centre and of its width."""
    bins = list(itertools.pairwise(edges))
    bars = {"type": "bar", "name": series, "y": counts,
            "x": [(a + b) / 2 for a, b in bins], "width": [b - a for a, b in bins]}
    return {"data": [bars], "layout": {"title": title, "xaxis": {"title": "value"},
                                       "yaxis": {"title": "count"}, "barmode": "group",
                                       "bargap": 0, "bargroupgap": 0}}


def _table(columns: list[str], rows: list[list[Any]], title: str,
           series: str) -> dict[str, Any]:
    """``report_table``'s table (cells by column)."""
    cells = [[row[i] if i < len(row) else None for row in rows] for i in range(len(columns))]
    return {"data": [{"type": "table", "header": {"values": columns, "align": "left"},
                      "cells": {"values": cells, "align": "left"}}],
            "layout": {"title.text": title, "title": series}}


def _heatmap(labels: list[Any], matrix: list[list[Any]], title: str,
             series: str) -> dict[str, Any]:
    """``report_confusion_matrix``'s heat map: true labels down, predicted across."""
    names = [str(label) for label in labels]
    return {"data": [{"type": "heatmap", "x": names, "y": names, "z": matrix}],
            "layout": {"showlegend": True, "title": title, "name": series,
                       "xaxis": {"title": "Predicted"},
                       "yaxis": {"title": "True", "autorange": "reversed"}}}


def _scatter(plot: str, data: dict[str, Any], title: str, series: str,
             caption: str) -> dict[str, Any]:
    """``report_scatter2d``'s figure: a curve's line, or a scatter's markers."""
    x, y, xtitle, ytitle, mode = CURVES[plot]
    trace = {"type": "scatter", "name": series, "mode": mode, "x": data[x], "y": data[y]}
    return {"data": [trace], "layout": {"title": f"{title}<br><sup>{caption}</sup>",
                                        "xaxis": {"title": xtitle}, "yaxis": {"title": ytitle},
                                        "name": series}}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _artifact(key: str, path: Path) -> dict[str, Any]:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    size = path.stat().st_size
    return {"key": key, "type": "custom", "mode": "output", "uri": str(path), "hash": digest,
            "content_size": size, "timestamp": int(path.stat().st_mtime),
            "type_data": {"content_type": "application/octet-stream",
                          "preview": f"{path.name} - {size} bytes\n"}}


@hookimpl
def autolog_register_backends(register: Any) -> None:
    register(ClearmlBackend)
