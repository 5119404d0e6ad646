"""The ``dvclive`` backend: runs written in DVCLive's file layout, for DVC and DVC Studio.

``AUTOLOG_BACKEND=local,dvclive``; the files are what ``dvclive.Live(dir, dvcyaml=...)`` writes,
so ``dvc exp show``, ``dvc metrics show``, ``dvc params show``, ``dvc plots show`` and DVC Studio
read them as DVCLive's own (``docs/backends/dvclive.md``):

- ``AUTOLOG_DVCLIVE_DIR`` (default ``./dvclive``) holds one run, as with ``Live(resume=False)``:
  a run started after the one there replaces it (``plots/``, ``metrics.json``, ``params.yaml``,
  ``dvc.yaml``, ``report.*`` and the ``children/`` removed first); a run *older* than the one
  there (``autolog sync`` of an old run) is not written, with one log line, so the directory
  always holds the newest run;
- params go to ``params.yaml`` (flat keys, ``optimizer.name``), the last value of each metric
  to ``metrics.json`` (nested at ``/`` as DVCLive does, plus ``step``), each metric's history to
  ``plots/metrics/<key>.tsv`` (``timestamp``, ``step``, value; autolog's own timestamps);
- images go to ``plots/images/<key>/<step>.png`` (DVCLive's place for images, a step per file;
  JPEG and GIF kept as they are, other formats converted to PNG); evaluation plots are the files
  of ``Live.log_sklearn_plot``: ``plots/sklearn/<key>.json`` for a confusion matrix (one row per
  sample, DVC's ``confusion`` template), a ROC or a precision-recall curve (``simple``
  template), and of ``Live.log_plot`` for the regression scatters (``plots/custom/<key>.json``,
  ``scatter`` template); histograms as ``log_plot`` would write them too
  (``plots/custom/<key>.json``, one row per bin: centre, count, edges; ``linear`` template). The
  latest step of a plot or a histogram is what its file holds. Tables and texts have no place in
  DVCLive's layout and are not written (the local store keeps them);
- ``dvc.yaml`` in the directory declares them (params, metrics, plots with ``x: step``, the
  images directory, each evaluation plot with its template and axes);
- a child run (a search candidate) is written the same way under its parent's
  ``children/<run name>-<id[:8]>/``, without a ``dvc.yaml`` of its own.

No DVCLive import is needed: the files are written here directly. ``dvclive.Live`` would also
stamp rows with the delivery time instead of autolog's, run ``dvc exp save`` (git commits) at its
end and post to Studio when a token is set: not things to do from a background thread.

TSV rows are appended exactly once: the delivery state keeps each file's size after the last
acknowledged call, and a retried call first cuts what a failed try appended.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import os
import re
import shutil
from pathlib import Path
from typing import Any

from ..hookspecs import hookimpl
from ..journal.files import read_json
from . import _media
from ._files import append_once, lineage, run_dirname, write_atomic, write_bytes_atomic
from .base import Backend, Batch, Media, RunRef

__all__ = ["DvcliveBackend", "yaml_scalar"]

log = logging.getLogger("autolog")

OWNER = ".autolog-run.json"  # which top-level run the directory holds
CHILDREN = "children"
METRICS_DIR = Path("plots") / "metrics"
IMAGES_DIR = Path("plots") / "images"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".gif", ".png")  # DVCLive's and DVC's image plots
#: plot type -> (folder, template, x, y, title, x label, y label), as DVCLive's plot classes
PLOT_CONFIGS = {
    "confusion_matrix": ("sklearn", "confusion", "actual", "predicted", "Confusion Matrix",
                         "True Label", "Predicted Label"),
    "roc_curve": ("sklearn", "simple", "fpr", "tpr", "Receiver operating characteristic (ROC)",
                  "False Positive Rate", "True Positive Rate"),
    "precision_recall_curve": ("sklearn", "simple", "recall", "precision",
                               "Precision-Recall Curve", "Recall", "Precision"),
    "predicted_vs_true": ("custom", "scatter", "true", "predicted", "Predicted vs true",
                          "True", "Predicted"),
    "residuals": ("custom", "scatter", "predicted", "residual", "Residuals", "Predicted",
                  "Residual"),
    "histogram": ("custom", "linear", "value", "count", "Histogram", "Value (bin centre)",
                  "Count"),
}
#: a confusion matrix is written one row per sample: above this many, only its drawing
MAX_CONFUSION_ROWS = 100_000
DVC_OWNED = ("metrics.json", "params.yaml", "report.html", "report.md", "dvc.yaml")
PLOTS = ("plots", CHILDREN)
_YAML_UNSAFE = re.compile("[\x7f-\x9f\ufeff\ud800-\udfff\ufffe\uffff]")


class DvcliveBackend(Backend):
    name = "dvclive"
    distributions = ()  # nothing to install: the files are written by autolog itself
    loads_sdk = False

    def __init__(self, settings: Any):
        super().__init__(settings)
        self.root = Path(os.path.expanduser(settings.dvclive_dir)).absolute()

    def cursor_key(self) -> str:
        return "dvclive-" + hashlib.sha256(str(self.root).encode()).hexdigest()[:8]

    # -- runs --------------------------------------------------------------------------------

    def start_run(self, run: RunRef) -> None:
        """Claim the directory for the run's top-level run (or find it claimed already)."""
        chain = lineage(run)
        top = chain[0]
        owner = read_json(self.root / OWNER)
        if owner.get("run") not in (None, top["id"]) and owner.get("start", 0) > top.get("time", 0):
            run.state["skipped"] = owner["run"]
            log.warning("autolog: dvclive: %s holds run %s, newer than run %s: not written there",
                        self.root, owner["run"], run.id)
            return
        if owner.get("run") != top["id"]:
            _clean(self.root)  # DVCLive's resume=False
            write_atomic(self.root / OWNER, json.dumps({"run": top["id"],
                                                        "start": top.get("time", 0)}))
        run.state.pop("skipped", None)
        run.state["top"] = top["id"]
        run.state["dir"] = str(self.root.joinpath(*(CHILDREN + "/" + run_dirname(start)
                                                    for start in chain[1:])))

    def log_batch(self, run: RunRef, batch: Batch) -> None:
        if not self._owns(run):
            return
        state, out = run.state, Path(run.state["dir"])
        if batch.params:
            params = state.setdefault("params", {})
            params.update(batch.params)
            write_atomic(out / "params.yaml", "".join(
                f"{yaml_scalar(key)}: {yaml_scalar(value)}\n" for key, value in params.items()))
        if batch.metrics:
            self._append_rows(out, batch, state.setdefault("files", {}))
            summary = state.setdefault("summary", {})
            for m in batch.metrics:
                summary[m.key] = _summary_value(m.value)
            state["step"] = batch.metrics[-1].step
            write_atomic(out / "metrics.json", _metrics_json(summary, state["step"]))
        if out == self.root:
            self._declare(run)

    def end_run(self, run: RunRef, status: str, end_time: int) -> None:
        """Nothing to write: DVCLive records no status (DVC has the git commit for that)."""

    def log_media(self, run: RunRef, media: Media) -> None:
        """Images, evaluation plots and histograms in DVCLive's places; tables and texts have
        none.

        Every file is written whole (a retry writes the same bytes again), so re-delivery
        never doubles anything."""
        if media.kind not in ("image", "histogram", "plot") or not self._owns(run) \
                or _media.gone(run, media, "DVCLive"):
            return
        out = Path(run.state["dir"])
        if media.kind == "image":
            self._image(run, out, media.path, media.name)
        elif not self._plot(run, out, media) and media.image is not None \
                and media.image.exists() and media.image_name is not None:
            self._image(run, out, media.image, media.image_name)  # its drawing instead
        if out == self.root:
            self._declare(run)

    def _image(self, run: RunRef, out: Path, path: Path, name: str) -> None:
        """``plots/images/<key>/<step>.<ext>`` (the local store's name below its kind)."""
        relative = _key_path(name) / Path(name).name
        if path.suffix.lower() in IMAGE_SUFFIXES:
            data: bytes | None = path.read_bytes()
        else:
            data, relative = _media.convert_to_png(path), relative.with_suffix(".png")
        if data is not None:
            write_bytes_atomic(out / IMAGES_DIR / relative, data)
            run.state["images"] = True

    def _plot(self, run: RunRef, out: Path, media: Media) -> bool:
        """The plot's data where ``log_sklearn_plot`` / ``log_plot`` puts it; False when it
        has no such form (a user's confusion matrix of fractions, or too many samples)."""
        data = _media.load(media)
        plot = "histogram" if media.kind == "histogram" else data.pop("plot", None)
        if plot not in PLOT_CONFIGS:
            return False
        folder, *config = PLOT_CONFIGS[plot]
        content = _plot_content(plot, data)
        if content is None:
            return False
        key = _key_path(media.name)
        relative = Path("plots", folder, *key.parts[:-1], f"{key.name}.json")
        write_atomic(out / relative, json.dumps(content, indent=4) + "\n")
        keys = ("template", "x", "y", "title", "x_label", "y_label")
        run.state.setdefault("plots", {})[relative.as_posix()] = dict(zip(keys, config,
                                                                           strict=True))
        return True

    # -- files ---------------------------------------------------------------------------------

    def _append_rows(self, out: Path, batch: Batch, sizes: dict[str, int]) -> None:
        for key, points in batch.metric_columns():
            relative = (METRICS_DIR / f"{key}.tsv").as_posix()
            header = f"timestamp\tstep\t{os.path.basename(key)}\n"
            lines = [] if sizes.get(relative) else [header]
            lines += [f"{m.timestamp}\t{m.step}\t{_tsv_value(m.value)}\n" for m in points]
            append_once(out / relative, "".join(lines).encode("utf-8"), sizes, relative)

    def _declare(self, run: RunRef) -> None:
        """``dvc.yaml``: what DVC should read in the directory (written when it changes), in
        the order ``Live.make_dvcyaml`` writes it."""
        state = run.state
        parts = []
        if state.get("params"):
            parts.append("params:\n- params.yaml\n")
        if state.get("summary"):
            parts.append("metrics:\n- metrics.json\n")
        plots = ["- plots/metrics:\n    x: step\n"] if state.get("summary") else []
        if state.get("images"):
            plots.append(f"- {IMAGES_DIR.as_posix()}\n")
        for path, config in state.get("plots", {}).items():
            plots.append(f"- {yaml_scalar(path)}:\n" + "".join(
                f"    {key}: {yaml_scalar(value)}\n" for key, value in config.items()))
        if plots:
            parts.append("plots:\n" + "".join(plots))
        text = "".join(parts)
        if text and state.get("dvcyaml") != text:
            write_atomic(self.root / "dvc.yaml", text)
            state["dvcyaml"] = text

    def _owns(self, run: RunRef) -> bool:
        """Whether the directory still holds this run's top-level run (a newer run may have
        replaced it meanwhile, from another process)."""
        if run.state.get("skipped"):
            return False
        owner = read_json(self.root / OWNER).get("run")
        if owner in (None, run.state["top"]):
            return True
        run.state["skipped"] = owner
        log.warning("autolog: dvclive: %s now holds run %s; run %s is no longer written there",
                    self.root, owner, run.id)
        return False


def _key_path(name: str) -> Path:
    """The key's folder in a media file's name (``media/<kind>/<key...>/<step>.<ext>``):
    made safe for every file system by the local store."""
    return Path(*Path(name).parts[2:-1])


def _plot_content(plot: str, data: dict[str, Any]) -> Any:
    """What DVCLive writes for the plot (its sklearn plots' JSON, or ``log_plot``'s rows)."""
    if plot == "confusion_matrix":
        return _confusion_rows(data["labels"], data["matrix"])
    if plot == "roc_curve":
        return {"roc": [{"fpr": f, "tpr": t, "threshold": h} for f, t, h in
                        zip(data["fpr"], data["tpr"], data["thresholds"], strict=False)]}
    if plot == "histogram":
        edges = data["edges"]
        return [{"value": (a + b) / 2, "count": c, "left": a, "right": b} for c, (a, b) in
                zip(data["counts"], itertools.pairwise(edges), strict=False)] or None
    if plot == "precision_recall_curve":
        return {"precision_recall": [{"precision": p, "recall": r, "threshold": h} for p, r, h in
                                     zip(data["precision"], data["recall"], data["thresholds"],
                                         strict=False)]}
    x, y = PLOT_CONFIGS[plot][2:4]
    return [{x: a, y: b} for a, b in zip(data[x], data[y], strict=False)]


def _confusion_rows(labels: list[Any], matrix: list[list[Any]]) -> list[dict[str, str]] | None:
    """One ``{"actual", "predicted"}`` row per sample, as DVCLive writes a confusion matrix
    (DVC's template counts them); None when the cells are not counts or too many."""
    cells = [(str(labels[i]), str(labels[j]), count) for i, row in enumerate(matrix)
             for j, count in enumerate(row)]
    if any(not float(c).is_integer() or c < 0 for _, _, c in cells) or \
            sum(c for _, _, c in cells) > MAX_CONFUSION_ROWS:
        return None
    return [{"actual": a, "predicted": p} for a, p, count in cells for _ in range(int(count))]


def _clean(root: Path) -> None:
    for name in PLOTS:
        shutil.rmtree(root / name, ignore_errors=True)
    for name in DVC_OWNED:
        try:
            (root / name).unlink()
        except FileNotFoundError:
            pass


def _tsv_value(value: float) -> str:
    return str(value)  # nan, inf, -inf as DVCLive writes them


def _summary_value(value: float) -> Any:
    return value if math.isfinite(value) else str(value)  # DVCLive keeps "nan" as text


def _metrics_json(summary: dict[str, Any], step: int) -> str:
    """The last value of each metric, nested at ``/`` (``train/loss`` -> train: loss:)."""
    nested: dict[str, Any] = {}
    for key, value in summary.items():
        *path, leaf = [p for p in os.path.normpath(key).split(os.sep) if p] or [key]
        node: Any = nested
        for part in path:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            if not isinstance(node.get(leaf), dict):
                node[leaf] = value
                continue
        nested[key] = value  # "a" and "a/b" both logged: the clash is kept flat
    nested["step"] = step
    return json.dumps(nested, indent=4) + "\n"


def yaml_scalar(value: Any) -> str:
    """``value`` as a YAML flow scalar that YAML 1.1 and 1.2 readers parse back the same."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        if "e" in text and "." not in text:  # 1e-05: a string to YAML 1.1
            mantissa, _, exponent = text.partition("e")
            text = f"{mantissa}.0e{exponent}"
        return text
    text = json.dumps(str(value), ensure_ascii=False)
    return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


@hookimpl
def autolog_register_backends(register: Any) -> None:
    register(DvcliveBackend)
