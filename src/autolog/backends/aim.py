"""The ``aim`` backend: runs recorded into an Aim repository through the ``aim`` SDK.

``AUTOLOG_BACKEND=local,aim``; ``aim up`` shows them. The mapping (``docs/backends/aim.md``):

- the repository is ``AUTOLOG_AIM_REPO`` (default ``./.aim``; ``aim://host:port`` for an Aim
  server); the experiment is the run's project; the Aim run's name is autolog's;
- params go to ``run["hparams"]`` (autolog's flat keys: ``optimizer.name``); tags to
  ``run["tags"]``; ``run["autolog"]`` holds autolog's run id, the parent's id and, once
  ended, the status (Aim runs have no status of their own, only active or finished);
- metrics are sequences tracked at their step, with the time autolog recorded them; where the
  run logs a metric named ``epoch`` (Lightning does), each point gets Aim's ``epoch``: the value
  of the latest ``epoch`` point at or before its step;
- autolog's ``system/...`` metrics are tracked under Aim's own system names
  (``__system__cpu``, ``__system__gpu`` with context ``{"gpu": 0}``...), so Aim's system
  charts show them; readings Aim has no name for keep theirs behind ``__system__``;
- media are sequences tracked at their step and time: images as lists of ``aim.Image`` (every
  image logged under the key at that step), histograms as ``aim.Distribution`` (on even bins,
  at most 512: Aim keeps a range and counts), texts as ``aim.Text``, tables as ``aim.Text``
  holding a markdown table (the first 1,000 rows), evaluation plots as their drawing (an image
  whose caption carries the AUC) and their data as ``aim.Text`` under ``<key>/data``.

Aim keeps one value per (metric, context, step): a resent batch overwrites the same points,
so a retried or resumed delivery never doubles one (nor a media item: the images of a step are
tracked again as the whole list, read from the local store). The other side of that: a key
logged twice at one step keeps its last value in Aim (images excepted).
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import os
from pathlib import Path
from typing import Any

from ..hookspecs import hookimpl
from . import _media
from ._files import import_sdk
from .base import Backend, Batch, Media, Metric, RunRef

__all__ = ["AimBackend", "aim_metric"]

log = logging.getLogger("autolog")

SYSTEM_PREFIX = "system/"
AIM_SYSTEM = "__system__"
#: autolog system metric -> Aim's resource tracker name
SYSTEM_NAMES = {
    "process_cpu_percent": "cpu",
    "memory_percent": "memory_percent",
    "disk_percent": "disk_percent",
}
#: autolog per-GPU reading -> Aim's per-GPU name (context {"gpu": index})
GPU_NAMES = {
    "utilization_percent": "gpu",
    "memory_percent": "gpu_memory_percent",
    "temperature_celsius": "gpu_temp",
    "power_watts": "gpu_power_watts",
}


def aim_metric(key: str) -> tuple[str, dict[str, Any]]:
    """Aim's (name, context) for an autolog metric key."""
    if not key.startswith(SYSTEM_PREFIX):
        return key, {}
    reading = key[len(SYSTEM_PREFIX):]
    if reading.startswith("gpu/"):
        _, label, rest = [*reading.split("/", 2), "", ""][:3]
        gpu: Any = int(label) if label.isdigit() else label
        return AIM_SYSTEM + GPU_NAMES.get(rest, "gpu_" + rest), {"gpu": gpu}
    return AIM_SYSTEM + SYSTEM_NAMES.get(reading, reading), {}


class AimBackend(Backend):
    name = "aim"
    distributions = ("aim",)

    def __init__(self, settings: Any):
        super().__init__(settings)
        repo = settings.aim_repo
        remote = "://" in repo
        self.repo = repo if remote else str(Path(os.path.expanduser(repo)).absolute())
        self._runs: dict[str, Any] = {}  # autolog run id -> open aim.Run

    def cursor_key(self) -> str:
        return "aim-" + hashlib.sha256(self.repo.encode()).hexdigest()[:8]

    # -- runs --------------------------------------------------------------------------------

    def start_run(self, run: RunRef) -> None:
        if run.id in self._runs:
            return
        aim = import_sdk("aim", "aim", "aim")
        options = dict(repo=self.repo, system_tracking_interval=None, log_system_params=False,
                       capture_terminal_logs=False)
        if run.state.get("hash"):  # resumed by a later delivery (`autolog sync`)
            aim_run = aim.Run(run_hash=run.state["hash"], **options)
        else:
            aim_run = aim.Run(experiment=run.project, **options)
            aim_run.name = run.name
            aim_run["autolog"] = {"run_id": run.id, "parent_id": run.parent_id}
            run.state["hash"] = aim_run.hash
        self._runs[run.id] = aim_run

    def _run(self, run: RunRef) -> Any:
        if run.id not in self._runs:
            self.start_run(run)
        return self._runs[run.id]

    def log_batch(self, run: RunRef, batch: Batch) -> None:
        aim_run = self._run(run)
        for section, values in (("hparams", batch.params), ("tags", batch.tags)):
            if values:
                merged = dict(aim_run.get(section) or {})
                merged.update(values)
                aim_run[section] = merged
        track = getattr(aim_run._tracker, "_track", None)  # takes the time autolog recorded
        epochs = _epochs(batch, run.state.get("epoch"))
        for m in batch.metrics:
            self._track(aim_run, track, m, _epoch_at(epochs, m.step))
        if epochs:
            run.state["epoch"] = list(epochs[-1])

    @staticmethod
    def _track(aim_run: Any, track: Any, m: Metric, epoch: int | None) -> None:
        name, context = aim_metric(m.key)
        if track is not None:
            track(m.value, m.timestamp / 1000, name, m.step, epoch, context=context)
        else:  # pragma: no cover - an Aim without the private call: delivery time instead
            aim_run.track(m.value, name=name, step=m.step, epoch=epoch, context=context)

    def log_media(self, run: RunRef, media: Media) -> None:
        if _media.gone(run, media, "Aim"):
            return
        aim_run = self._run(run)
        track = getattr(aim_run._tracker, "_track", None)
        for name, value in _media_values(import_sdk("aim", "aim", "aim"), media):
            try:
                if track is not None:
                    track(value, media.timestamp / 1000, name, media.step, None, context={})
                else:  # pragma: no cover - an Aim without the private call
                    aim_run.track(value, name=name, step=media.step)
            except ValueError as exc:  # the name already holds another type (a metric...)
                log.warning("autolog: %s %r of run %s not sent to Aim: %s", media.kind,
                            media.key, run.id, exc)

    def end_run(self, run: RunRef, status: str, end_time: int) -> None:
        aim_run = self._run(run)
        info = dict(aim_run.get("autolog") or {})
        info["status"] = status
        aim_run["autolog"] = info
        aim_run.close()
        del self._runs[run.id]

    def close(self) -> None:
        """Close the Aim runs whose end was not delivered (a later sync reopens them)."""
        for run_id in list(self._runs):
            try:
                self._runs.pop(run_id).close()
            except Exception as exc:
                log.warning("autolog: closing Aim run %s failed: %s", run_id, exc)


def _media_values(aim: Any, media: Media) -> list[tuple[str, Any]]:
    """The Aim objects of one media item, by sequence name."""
    key = media.key
    if media.kind == "image":
        return [(key, [_image(aim, path) for path in _media.same_step(media)])]
    if media.kind == "histogram":
        data = _media.load(media)
        if not data["counts"]:  # only NaN or infinite values: nothing to draw
            return []
        counts, low, high = _media.even_bins(data["counts"], data["edges"])
        return [(key, aim.Distribution(hist=counts, bin_range=(low, high)))]
    if media.kind == "text":
        return [(key, aim.Text(media.path.read_text(encoding="utf-8")))]
    if media.kind == "table":
        total = media.meta.get("total_rows")
        return [(key, aim.Text(_media.markdown_table(*_media.table_of(media), total)))]
    if media.kind == "plot":
        caption = _media.plot_caption(media)
        values = [(f"{key}/data", aim.Text(
            f"{caption}\n\n{_media.markdown_table(*_media.table_of(media))}"))]
        if media.image is not None and media.image.exists():
            values.insert(0, (key, [_image(aim, media.image, caption)]))
        return values
    return []


def _image(aim: Any, path: Path, caption: str = "") -> Any:
    """``aim.Image`` of an image file (Aim encodes images again: as PNG, which keeps the pixels,
    rather than in a lossy format like JPEG or WebP at Aim's quality 90; a GIF stays one, for
    its frames)."""
    from PIL import Image

    with Image.open(path) as image:
        fmt = "gif" if image.format == "GIF" else "png"
        return aim.Image(image, caption=caption, format=fmt)


def _epochs(batch: Batch, last: list[int] | None) -> list[tuple[int, int]]:
    """(step, epoch) of the points of a metric named ``epoch``, by step; the run's last known
    one (from earlier batches) first."""
    points = {m.step: int(m.value) for m in batch.metrics
              if m.key == "epoch" and m.value == m.value}
    known = [(last[0], last[1])] if last else []
    return known + sorted(points.items())


def _epoch_at(epochs: list[tuple[int, int]], step: int) -> int | None:
    """The epoch of the latest ``epoch`` point at or before ``step``."""
    index = bisect.bisect_right(epochs, (step, float("inf"))) - 1
    return epochs[index][1] if index >= 0 else None


@hookimpl
def autolog_register_backends(register: Any) -> None:
    register(AimBackend)
