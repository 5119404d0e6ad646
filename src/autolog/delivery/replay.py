"""Replaying a run's journal to a backend, from the persisted cursor (:mod:`.cursor`).

Delivery reads lines from the cursor, groups them into backend calls, and moves the cursor past
each call as soon as it succeeds. The same code runs in the training process's worker threads
(:mod:`.worker`) and in ``autolog sync``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..journal.codec import float_from_json, valid_text
from ..journal.files import JOURNAL
from ..journal.reader import iter_journal, lock_is_held, read_meta, start_record
from ..journal.tail import recover
from .contract import Backend, Batch, Media, Metric, RejectedBatch, RunRef
from .cursor import Cursor, DeliveryBusy

__all__ = ["DeliveryBusy", "deliver", "pending_lines"]

log = logging.getLogger("autolog")

MAX_BATCH_POINTS = 10_000


def deliver(backend: Backend, run_dir: Path, *, started: set[str] | None = None,
            progress: Callable[[int], None] | None = None) -> bool:
    """Deliver the journal of ``run_dir`` past the cursor to ``backend``.

    Returns True once the run's end has been delivered. A backend exception propagates after
    the cursor has been saved at the last acknowledged call, so a retry resends only the rest.
    ``progress(offset)`` is called after each acknowledged call with the journal offset
    delivered up to. ``started`` remembers, across calls, the runs whose ``start_run`` this
    process already made.

    A run whose process died without ending it (its lock is free, its journal has no end) is
    ended as CRASHED once all it wrote is delivered, at the time its journal was last written, so
    no tracker shows it running forever.
    """
    cursor = Cursor(run_dir, backend.cursor_key())
    if cursor.done and not cursor.behind(run_dir):
        return True
    with cursor.lock():
        cursor = Cursor(run_dir, backend.cursor_key())  # re-read under the lock
        # Asked before reading the journal: a run that ends while we read has its end written
        # before its lock is freed, so the replay sees that end.
        orphaned = not lock_is_held(run_dir, read_meta(run_dir))
        recover(run_dir)  # points of processes that died before journaling them
        start = start_record(run_dir)
        if start is None:
            return False
        start = valid_text(start)
        ref = RunRef(run_dir, start, cursor.state, cursor.key)
        if cursor.done:  # ended before; what follows are edits (rename, tags, note...)
            ref.ended = cursor.ended or ("FINISHED", start.get("time", 0))
        started = set() if started is None else started
        if ref.id not in started:
            backend.start_run(ref)
            started.add(ref.id)
            cursor.save()
        replay = _Replay(backend, ref, cursor, progress)
        if replay.run():
            return True
        if orphaned:
            replay.end_crashed()
        return cursor.done


class _Replay:
    """Turns journal lines into backend calls, saving the cursor after each."""

    def __init__(self, backend: Backend, ref: RunRef, cursor: Cursor,
                 progress: Callable[[int], None] | None):
        self.backend = backend
        self.ref = ref
        self.cursor = cursor
        self.progress = progress
        self.batch = Batch(cursor.offset)
        self.batch_end = cursor.offset
        self.batch_lines = 0

    def run(self) -> bool:
        journal = self.ref.path / JOURNAL
        for end, record in iter_journal(journal, self.cursor.offset):
            kind = record.get("t")
            if kind in ("params", "tags", "metrics"):
                self._add(kind, record)
                self.batch_end, self.batch_lines = end, self.batch_lines + 1
                if len(self.batch.metrics) >= MAX_BATCH_POINTS or end == self.cursor.inflight:
                    self._send_batch()
                continue
            self._send_batch()
            self._dispatch(kind, record)
            self._ack(end, 1)
        self._send_batch()
        return self.cursor.done

    def _add(self, kind: str, record: dict[str, Any]) -> None:
        # Backends get valid Unicode (see valid_text); the journal keeps the exact text.
        if kind == "metrics":
            metrics = self.batch.metrics
            for key, (steps, values, stamps) in record["d"].items():
                key = valid_text(key)
                for step, value, ts in zip(steps, values, stamps, strict=False):
                    metrics.append(Metric(key, float_from_json(value), step, ts))
        elif kind == "params":
            self.batch.params.update(valid_text(record["d"]))
        else:
            self.batch.tags.update(valid_text(record["d"]))

    def _send_batch(self) -> None:
        if self.batch:
            self.batch.journal_range = (self.batch.journal_range[0], self.batch_end)
            self.cursor.inflight = self.batch_end
            self.cursor.save()
            try:
                self.backend.log_batch(self.ref, self.batch)
            except RejectedBatch as why:
                log.warning("autolog: %s refused journal bytes %d-%d of run %s and they were "
                            "skipped (they stay in the local journal): %s", self.backend.name,
                            *self.batch.journal_range, self.ref.id, why)
        if self.batch_lines:
            self._ack(self.batch_end, self.batch_lines)
            self.batch_lines = 0
        self.batch = Batch(self.cursor.offset)

    def _dispatch(self, kind: str | None, record: dict[str, Any]) -> None:
        # The local file keeps its exact name; the backend gets valid Unicode to name it by.
        artifacts = self.ref.artifacts_dir
        if kind == "artifact":
            self.backend.log_artifact(self.ref, artifacts / record["path"],
                                      valid_text(record["path"]))
        elif kind == "model":
            spec = record["spec"]
            self.backend.log_model(self.ref, artifacts / spec["path"],
                                   valid_text(record["name"]), valid_text(spec))
        elif kind == "media":
            media = Media.from_event(record, artifacts)
            self.backend.log_media(self.ref, media._replace(
                key=valid_text(media.key), name=valid_text(media.name),
                image_name=valid_text(media.image_name), meta=valid_text(media.meta)))
        elif kind == "end":
            self.backend.end_run(self.ref, record["status"], record["time"])
            self.cursor.done = True
            self.cursor.ended = (record["status"], record["time"])
        elif kind == "resume":  # reopened after its end: live again until its next end
            self.cursor.done = False
            self.cursor.ended = None
            self.ref.ended = None
            self.backend.resume_run(self.ref)
        elif kind in _EDITS:
            _EDITS[kind](self.backend, self.ref, record)

    def end_crashed(self) -> None:
        journal = self.ref.path / JOURNAL
        try:
            last_written = int(journal.stat().st_mtime * 1000)
        except OSError:
            last_written = int(time.time() * 1000)
        self.backend.end_run(self.ref, "CRASHED", last_written)
        self.cursor.done = True
        self.cursor.ended = ("CRASHED", last_written)
        self.cursor.save()

    def _ack(self, end: int, lines: int) -> None:
        self.cursor.offset = end
        self.cursor.inflight = None
        self.cursor.save()
        if self.progress is not None:
            self.progress(end)


#: edit events (``autolog.edits``) -> the backend call that carries each
_EDITS: dict[str, Callable[[Backend, RunRef, dict[str, Any]], None]] = {
    "rename": lambda b, ref, r: b.rename_run(ref, str(r["name"])),
    "untag": lambda b, ref, r: b.delete_tags(ref, [str(k) for k in r["keys"]]),
    "note": lambda b, ref, r: b.set_note(ref, str(r.get("text") or "")),
    "delete": lambda b, ref, r: b.delete_run(ref),
    "restore": lambda b, ref, r: b.restore_run(ref),
}


def pending_lines(run_dir: Path, key: str) -> int:
    """Journal lines ``key`` has not acknowledged yet."""
    cursor = Cursor(run_dir, key)
    if cursor.done and not cursor.behind(run_dir):
        return 0
    return sum(1 for _ in iter_journal(run_dir / JOURNAL, cursor.offset))
