"""The ``wandb`` backend: runs recorded into Weights & Biases (online, or offline files).

The SDK is imported on the backend's worker thread only. The mapping (``docs/backends/wandb.md``):

- ``wandb.init`` with the project ``WANDB_PROJECT`` or the run's project, autolog's run name,
  and autolog's run id as the W&B run id (``resume="allow"``, so ``autolog sync`` continues the
  same W&B run); ``WANDB_MODE``, ``WANDB_DIR``, ``WANDB_ENTITY``... are W&B's own and honoured;
  child runs get ``group=<parent id>``;
- params go to the config; tags to the config as ``tags.<key>``;
- metrics are history rows with an explicit step axis: each row carries ``autolog_step`` (and
  ``_timestamp``, the time autolog recorded), and ``define_metric("*",
  step_metric="autolog_step")`` plots every metric against it. Rows are logged *without*
  ``step=``: W&B drops rows whose ``step`` is lower than the last one, which would lose
  metric groups logged on their own step counters (validation per epoch, training per batch);
- artifacts and models become W&B Artifacts (type ``file`` / ``model``);
- media are history rows at their ``autolog_step``: ``wandb.Image`` for images, ``wandb.Histogram``
  for histograms, ``wandb.Table`` for tables, ``wandb.Html`` (the text, escaped) for texts, and
  for an evaluation plot its drawing as ``wandb.Image`` and its data as a ``wandb.Table`` under
  ``<key>/data``;
- the end sets the exit code (FINISHED 0, FAILED 1, KILLED 255) and finishes the run;
- edits made later (``autolog ui``): a rename is the run's name, the note its notes, a removed
  tag's config entry becomes null (the SDK cannot remove one); a run ended before is resumed
  for them and finished again with its exit code. Deletion is not carried (online API only).

W&B registers an ``atexit`` hook that waits, unbounded, for its service process. This module
replaces it with a bounded one and moves autolog's own exit hook before it, so at exit autolog
first delivers what it can within ``AUTOLOG_EXIT_TIMEOUT`` and W&B then gets a few seconds to
shut down: a hung W&B never hangs the user's process.
"""

from __future__ import annotations

import atexit
import hashlib
import html
import json
import logging
import os
import re
import sys
import threading
from pathlib import Path
from typing import Any

from .._runtime import start_thread
from ..charts import plot_rows
from ..config import current
from ..hookspecs import hookimpl
from ..shutdown import exit_hook_first
from ._files import import_sdk
from .base import Backend, BackendUnavailable, Batch, Media, Metric, RunRef

__all__ = ["STEP_KEY", "WandbBackend", "history_rows"]

log = logging.getLogger("autolog")

STEP_KEY = "autolog_step"
TAG_PREFIX = "tags."
EXIT_CODES = {"FINISHED": 0, "FAILED": 1, "KILLED": 255, "CRASHED": 1}
TEARDOWN_TIMEOUT = 5.0


def history_rows(metrics: list[Metric]) -> list[dict[str, Any]]:
    """One W&B history row per run of consecutive points sharing a step.

    A row ends when the step changes or a key repeats, so each row is one ``log_metrics`` call
    (or consecutive ones at one step) and no point is merged into another.
    """
    rows: list[dict[str, Any]] = []
    row: dict[str, Any] = {}
    for m in metrics:
        if row and (row[STEP_KEY] != m.step or m.key in row):
            rows.append(row)
            row = {}
        if not row:
            row = {STEP_KEY: m.step, "_timestamp": m.timestamp / 1000}
        row[m.key] = m.value
    if row:
        rows.append(row)
    return rows


def artifact_name(*parts: str) -> str:
    """A W&B artifact name (letters, digits, ``-_.``, at most 128 characters)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(parts)).strip("-.")
    return name[:128] or "artifact"


class WandbBackend(Backend):
    name = "wandb"
    distributions = ("wandb",)

    def __init__(self, settings: Any):
        super().__init__(settings)
        self._runs: dict[str, Any] = {}  # autolog run id -> wandb Run
        #: autolog run id -> (journal range, rows logged) of a batch that failed midway
        self._sent: dict[str, tuple[tuple[int, int], int]] = {}
        #: runs ended before and resumed to carry edits -> the status they ended with
        self._reopened: dict[str, str] = {}

    def cursor_key(self) -> str:
        """``wandb-<8 hex>`` of the destination: server, entity, project override and mode."""
        env = os.environ
        mode = env.get("WANDB_MODE", "online").strip().lower()
        where = [env.get("WANDB_BASE_URL", "https://api.wandb.ai").rstrip("/"),
                 env.get("WANDB_ENTITY", ""), env.get("WANDB_PROJECT", ""), mode]
        if mode in ("offline", "dryrun"):
            where.append(os.path.abspath(env.get("WANDB_DIR", ".")))
        return "wandb-" + hashlib.sha256("|".join(where).encode()).hexdigest()[:8]

    # -- runs --------------------------------------------------------------------------------

    def start_run(self, run: RunRef) -> None:
        if run.id not in self._runs:
            self._runs[run.id] = self._init(run)
            if run.ended is not None:  # reopened to carry edits: closed again as it ended
                self._reopened[run.id] = run.ended[0]
        run.state["wandb_id"] = self._runs[run.id].id

    def _init(self, run: RunRef) -> Any:
        wandb = _import_wandb()
        try:
            return self._start(wandb, run)
        except Exception as exc:
            if not _refused_login(exc):
                raise
            raise BackendUnavailable(
                f"W&B refused to start a run ({type(exc).__name__}: {exc}): in online mode W&B "
                "needs an API key: run `wandb login` or set WANDB_API_KEY, or set "
                "WANDB_MODE=offline to record offline (`wandb sync` uploads it later).") from exc

    def _start(self, wandb: Any, run: RunRef) -> Any:
        wb = wandb.init(
            project=os.environ.get("WANDB_PROJECT") or run.project,
            # a run resumed keeps its name: the start's name would undo a rename
            name=None if run.state.get("wandb_id") else run.name or None,
            id=run.id,
            group=run.parent_id,
            resume="allow",
            reinit="create_new",
            dir=os.environ.get("WANDB_DIR") or None,
            settings=wandb.Settings(console="off", x_disable_stats=True, save_code=False),
        )
        wb.define_metric(STEP_KEY)
        wb.define_metric("*", step_metric=STEP_KEY)
        return wb

    def _wb(self, run: RunRef) -> Any:
        if run.id not in self._runs:
            self.start_run(run)
        return self._runs[run.id]

    def end_run(self, run: RunRef, status: str, end_time: int) -> None:
        wb = self._wb(run)
        wb.finish(exit_code=EXIT_CODES.get(status, 1))
        del self._runs[run.id]
        self._sent.pop(run.id, None)

    def close(self) -> None:
        """Finish W&B runs whose end was not delivered (exit code 1; a later sync resumes),
        and runs reopened for edits with the exit code they ended with."""
        for run_id in list(self._runs):
            code = EXIT_CODES.get(self._reopened.pop(run_id, ""), 1)
            try:
                self._runs.pop(run_id).finish(exit_code=code)
            except Exception as exc:
                log.warning("autolog: finishing W&B run %s failed: %s", run_id, exc)

    # -- params, tags, metrics ---------------------------------------------------------------

    def log_batch(self, run: RunRef, batch: Batch) -> None:
        wb = self._wb(run)
        config = dict(batch.params)
        config.update({TAG_PREFIX + k: v for k, v in batch.tags.items()})
        if config:
            wb.config.update(config, allow_val_change=True)
        rows = history_rows(batch.metrics)
        key = batch.journal_range
        sent_range, sent = self._sent.get(run.id, ((-1, -1), 0))
        start = sent if sent_range == key else 0  # retried after a failure midway
        for i in range(start, len(rows)):
            wb.log(rows[i])
            self._sent[run.id] = (key, i + 1)
        self._sent.pop(run.id, None)

    # -- edits -------------------------------------------------------------------------------
    # W&B's SDK can rename a run and set its notes; it cannot remove a config entry, so a
    # removed tag's entry becomes null; deleting a run needs W&B's online API: not carried.

    def rename_run(self, run: RunRef, name: str) -> None:
        self._wb(run).name = name

    def delete_tags(self, run: RunRef, keys: list[str]) -> None:
        self._wb(run).config.update({TAG_PREFIX + k: None for k in keys}, allow_val_change=True)

    def set_note(self, run: RunRef, text: str) -> None:
        self._wb(run).notes = text

    def resume_run(self, run: RunRef) -> None:
        self._reopened.pop(run.id, None)  # running again: its next end closes it

    # -- files ---------------------------------------------------------------------------------

    def log_artifact(self, run: RunRef, local_path: Path, name: str) -> None:
        wb = self._wb(run)
        if not local_path.exists():
            log.warning("autolog: artifact %s of run %s is gone from the local store; "
                        "not sent to W&B", name, run.id)
            return
        artifact = _import_wandb().Artifact(artifact_name("run", wb.id, name), type="file",
                                            metadata={"autolog.name": name})
        _add(artifact, local_path, name)
        wb.log_artifact(artifact)

    def log_media(self, run: RunRef, media: Media) -> None:
        if not media.path.exists():
            log.warning("autolog: %s %r of run %s is gone from the local store; not sent to "
                        "W&B", media.kind, media.key, run.id)
            return
        values = _media_values(_import_wandb(), media)
        if values:
            self._wb(run).log({STEP_KEY: media.step, "_timestamp": media.timestamp / 1000,
                               **values})

    def log_model(self, run: RunRef, local_path: Path, name: str, spec: dict[str, Any]) -> None:
        wb = self._wb(run)
        parts = ("model", wb.id) if name == "model" else ("model", wb.id, name)
        artifact = _import_wandb().Artifact(artifact_name(*parts), type="model", metadata=spec)
        _add(artifact, local_path, None)
        wb.log_artifact(artifact)


def _media_values(wandb: Any, media: Media) -> dict[str, Any]:
    """The W&B objects of one media item, by history key."""
    key = media.key
    if media.kind == "image":
        return {key: wandb.Image(str(media.path))}
    if media.kind == "text":
        text = media.path.read_text(encoding="utf-8")
        return {key: wandb.Html(f"<pre>{html.escape(text)}</pre>", inject=False)}
    data = json.loads(media.path.read_text(encoding="utf-8"))
    if media.kind == "histogram":
        if not data["counts"]:  # only NaN or infinite values: nothing to draw
            return {}
        return {key: wandb.Histogram(np_histogram=(data["counts"], data["edges"]))}
    if media.kind == "table":
        return {key: wandb.Table(columns=data["columns"], data=data["data"])}
    if media.kind == "plot":
        columns, rows = plot_rows(data.pop("plot"), data)
        values = {f"{key}/data": wandb.Table(columns=columns, data=rows)}
        if media.image is not None and media.image.exists():
            values[key] = wandb.Image(str(media.image))
        return values
    return {}
def _refused_login(exc: BaseException) -> bool:
    """W&B's errors for a missing or refused API key (permanent until the user logs in)."""
    kind = type(exc).__name__
    return kind == "AuthenticationError" or (kind == "UsageError" and "api key" in str(exc).lower())


def _add(artifact: Any, local_path: Path, name: str | None) -> None:
    """Files keep their path under the run's artifacts (``plots/a.png``) inside the artifact."""
    # the journal's files are snapshots autolog never changes: no staging copy needed
    if local_path.is_dir():
        artifact.add_dir(str(local_path), name=name, policy="immutable")
    else:
        artifact.add_file(str(local_path), name=name or local_path.name, policy="immutable")


# -- exit ------------------------------------------------------------------------------------

_prepared = False
_prepare_lock = threading.Lock()


def _import_wandb() -> Any:
    """``wandb``, its service started and its exit hooks made safe (once per process)."""
    global _prepared
    wandb = import_sdk("wandb", "wandb", "wandb")

    with _prepare_lock:
        if not _prepared:
            _prepared = True
            try:
                _take_over_exit(wandb)
            except Exception as exc:  # a W&B version without these internals: keep its own
                log.debug("autolog: could not bound W&B's exit hook: %s", exc)
    return wandb


def _take_over_exit(wandb: Any) -> None:
    """Start W&B's service now, with its unbounded exit hook replaced by a bounded one.

    Starting the service also wraps ``sys.exit`` and ``sys.excepthook`` for the whole process
    (to learn the exit code); they are put back, since autolog passes exit codes itself.
    """
    saved_exit, saved_hook = sys.exit, sys.excepthook
    try:
        connection = wandb.setup().ensure_service()
    finally:
        sys.exit, sys.excepthook = saved_exit, saved_hook
    cleanup = getattr(connection, "_cleanup", None)
    if callable(cleanup):
        cleanup()  # unregisters W&B's own teardown hook (it waits for the service unbounded)
        atexit.register(_bounded_teardown, wandb)
    exit_hook_first()


def _bounded_teardown(wandb: Any) -> None:
    thread = start_thread(_teardown, "autolog-wandb-teardown", wandb)
    thread.join(min(TEARDOWN_TIMEOUT, current().exit_timeout))
    if thread.is_alive():
        log.warning("autolog: W&B did not shut down within %.0f s; leaving it behind. "
                    "`autolog sync` delivers anything W&B did not get.",
                    min(TEARDOWN_TIMEOUT, current().exit_timeout))


def _teardown(wandb: Any) -> None:
    try:
        wandb.teardown()
    except BaseException as exc:  # SystemExit from W&B's service exit code included
        log.debug("autolog: W&B teardown: %r", exc)



@hookimpl
def autolog_register_backends(register: Any) -> None:
    register(WandbBackend)
