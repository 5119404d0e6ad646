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
- ``dvc.yaml`` in the directory declares them (params, metrics, plots with ``x: step``);
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
from ._files import append_once, lineage, run_dirname, write_atomic
from .base import Backend, Batch, RunRef

__all__ = ["DvcliveBackend", "yaml_scalar"]

log = logging.getLogger("autolog")

OWNER = ".autolog-run.json"  # which top-level run the directory holds
CHILDREN = "children"
METRICS_DIR = Path("plots") / "metrics"
DVC_OWNED = ("metrics.json", "params.yaml", "report.html", "report.md", "dvc.yaml")
PLOTS = ("plots", CHILDREN)
_YAML_UNSAFE = re.compile("[\x7f-\x9f\ufeff\ud800-\udfff\ufffe\uffff]")


class DvcliveBackend(Backend):
    name = "dvclive"
    distributions = ()  # nothing to install: the files are written by autolog itself

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

    # -- files ---------------------------------------------------------------------------------

    def _append_rows(self, out: Path, batch: Batch, sizes: dict[str, int]) -> None:
        for key, points in batch.metric_columns():
            relative = (METRICS_DIR / f"{key}.tsv").as_posix()
            header = f"timestamp\tstep\t{os.path.basename(key)}\n"
            lines = [] if sizes.get(relative) else [header]
            lines += [f"{m.timestamp}\t{m.step}\t{_tsv_value(m.value)}\n" for m in points]
            append_once(out / relative, "".join(lines).encode("utf-8"), sizes, relative)

    def _declare(self, run: RunRef) -> None:
        """``dvc.yaml``: what DVC should read in the directory (written when it changes)."""
        state = run.state
        parts = []
        if state.get("params"):
            parts.append("params:\n- params.yaml\n")
        if state.get("summary"):
            parts.append("metrics:\n- metrics.json\nplots:\n- plots/metrics:\n    x: step\n")
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
