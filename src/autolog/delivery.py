"""Delivering a run's journal to a remote backend, from a persisted cursor.

Each (run, backend) pair has ``delivery/<key>.json`` in the run directory: the byte offset of the
first journal line the backend has not acknowledged, and the backend's own small state (its remote
run id). Delivery reads lines from the cursor, groups them into backend calls, and moves the cursor
past each call as soon as it succeeds. The same code runs in the training process's worker threads
and in ``autolog sync``; a ``flock`` on ``delivery/<key>.lock`` keeps two processes from
delivering one run to one backend at the same time.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import store
from .backends.base import Backend, Batch, Metric, RejectedBatch, RunRef

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from .config import Settings

__all__ = ["Cursor", "DeliveryBusy", "Worker", "deliver", "pending_lines"]

log = logging.getLogger("autolog")

MAX_BATCH_POINTS = 10_000
MAX_BACKOFF = 30.0


class DeliveryBusy(Exception):
    """Another process is delivering this run to this backend right now."""


def _safe_key(key: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in key)[:120]


class Cursor:
    """Where delivery of one run to one backend stands, persisted after every step."""

    def __init__(self, run_dir: Path, key: str):
        self.key = _safe_key(key)
        self.dir = run_dir / store.DELIVERY
        self.path = self.dir / f"{self.key}.json"
        data = _read_json(self.path)
        self.offset: int = data.get("offset", 0)
        self.done: bool = data.get("done", False)
        self.state: dict[str, Any] = data.get("state", {})
        #: end offset of a batch sent but not acknowledged: it is resent with the same range
        self.inflight: int | None = data.get("inflight")
        #: the ``(status, time)`` delivered as the run's end (for edits appended after it)
        ended = data.get("ended")
        self.ended: tuple[str, int] | None = (str(ended[0]), int(ended[1])) if ended else None

    def save(self) -> None:
        self.dir.mkdir(exist_ok=True)
        tmp = self.dir / f".{self.key}.{os.getpid()}.tmp"
        data: dict[str, Any] = {"offset": self.offset, "done": self.done,
                                "inflight": self.inflight, "state": self.state}
        if self.ended is not None:
            data["ended"] = list(self.ended)
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, self.path)

    def lock(self) -> _FileLock:
        self.dir.mkdir(exist_ok=True)
        return _FileLock(self.dir / f"{self.key}.lock")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class _FileLock:
    def __init__(self, path: Path):
        self.path = path
        self.fd = -1

    def __enter__(self) -> _FileLock:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(self.fd)
                raise DeliveryBusy(str(self.path.parent.parent))
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def _grown(run_dir: Path, cursor: Cursor) -> bool:
    """Has the journal lines past the cursor (edits appended after the run ended)?"""
    try:
        return (run_dir / store.JOURNAL).stat().st_size > cursor.offset
    except OSError:
        return False


def _start_record(run_dir: Path) -> dict[str, Any] | None:
    for _, record in store.iter_journal(run_dir / store.JOURNAL):
        return record if record.get("t") == "start" else None
    return None


def deliver(backend: Backend, run_dir: Path, *, started: set[str] | None = None,
            progress: Callable[[int], None] | None = None) -> bool:
    """Deliver the journal of ``run_dir`` past the cursor to ``backend``.

    Returns True once the run's end has been delivered. A backend exception propagates after
    the cursor has been saved at the last acknowledged call, so a retry resends only the rest.
    ``started`` remembers, across calls, the runs whose ``start_run`` this process already made.

    A run whose process died without ending it (its lock is free, its journal has no end) is
    ended as CRASHED once all it wrote is delivered, at the time its journal was last written, so
    no tracker shows it running forever.
    """
    cursor = Cursor(run_dir, backend.cursor_key())
    if cursor.done and not _grown(run_dir, cursor):
        return True
    with cursor.lock():
        cursor = Cursor(run_dir, backend.cursor_key())  # re-read under the lock
        start = _start_record(run_dir)
        if start is None:
            return False
        # Asked before reading the journal: a run that ends while we read has its end written
        # before its lock is freed, so the replay sees that end.
        orphaned = not store.lock_is_held(run_dir, store.read_meta(run_dir))
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
        journal = self.ref.path / store.JOURNAL
        for end, record in store.iter_journal(journal, self.cursor.offset):
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
        if kind == "metrics":
            metrics = self.batch.metrics
            for key, (steps, values, stamps) in record["d"].items():
                for step, value, ts in zip(steps, values, stamps, strict=False):
                    metrics.append(Metric(key, store.metric_value(value), step, ts))
        elif kind == "params":
            self.batch.params.update(record["d"])
        else:
            self.batch.tags.update(record["d"])

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
        artifacts = self.ref.artifacts_dir
        if kind == "artifact":
            self.backend.log_artifact(self.ref, artifacts / record["path"], record["path"])
        elif kind == "model":
            spec = record["spec"]
            self.backend.log_model(self.ref, artifacts / spec["path"], record["name"], spec)
        elif kind == "end":
            self.backend.end_run(self.ref, record["status"], record["time"])
            self.cursor.done = True
            self.cursor.ended = (record["status"], record["time"])
        elif kind in _EDITS:
            _EDITS[kind](self.backend, self.ref, record)

    def end_crashed(self) -> None:
        journal = self.ref.path / store.JOURNAL
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
            self.progress(lines)


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
    if cursor.done and not _grown(run_dir, cursor):
        return 0
    return sum(1 for _ in store.iter_journal(run_dir / store.JOURNAL, cursor.offset))


class Worker:
    """One backend's delivery thread in the training process."""

    def __init__(self, backend: Backend, settings: Settings):
        self.backend = backend
        self.settings = settings
        self.last_error: BaseException | None = None
        self._pending: dict[Path, int] = {}  # run dir -> notifications seen
        self._started: set[str] = set()
        self._cond = threading.Condition()
        self._busy = False
        self._stopped = False
        self._failures = 0
        self._retry_at = 0.0
        self._warned: set[str] = set()
        self._thread = threading.Thread(target=self._loop, name=f"autolog-{backend.name}",
                                        daemon=True)
        self._thread.start()

    def notify(self, run_dir: Path) -> None:
        with self._cond:
            self._pending[run_dir] = self._pending.get(run_dir, 0) + 1
            self._cond.notify_all()

    def wait_idle(self, deadline: float) -> bool:
        with self._cond:
            while self._pending or self._busy:
                left = deadline - time.monotonic()
                if left <= 0 or self._stopped:
                    return False
                self._cond.wait(min(left, 0.1))
            return True

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def undelivered(self) -> int:
        with self._cond:
            runs = list(self._pending)
        return sum(pending_lines(run_dir, self.backend.cursor_key()) for run_dir in runs)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    wait = self._retry_at - time.monotonic()
                    if self._pending and wait <= 0:
                        break
                    self._cond.wait(wait if self._pending else None)
                if self._stopped:
                    break
                work = dict(self._pending)
                self._busy = True
            ok = self._deliver_all(work)
            with self._cond:
                self._busy = False
                if not ok:
                    self._retry_at = time.monotonic() + self._backoff()
                self._cond.notify_all()
        self._close()

    def _deliver_all(self, work: dict[Path, int]) -> bool:
        for run_dir, seen in work.items():
            try:
                deliver(self.backend, run_dir, started=self._started)
            except DeliveryBusy:
                pass  # `autolog sync` has it; the next notification picks up after it
            except Exception as exc:
                self._failed(exc)
                return False
            with self._cond:
                if self._pending.get(run_dir) == seen:
                    del self._pending[run_dir]
        self._failures = 0
        return True

    def _failed(self, exc: BaseException) -> None:
        self.last_error = exc
        self._failures += 1
        kind = type(exc).__name__
        if kind not in self._warned:
            self._warned.add(kind)
            log.warning("autolog: the %s backend failed (%s: %s); retrying with backoff. "
                        "Nothing is lost: the local journal keeps every event and "
                        "`autolog sync` delivers what is left.", self.backend.name, kind, exc)

    def _backoff(self) -> float:
        return min(MAX_BACKOFF, 0.25 * 2 ** self._failures) * random.uniform(0.5, 1.5)

    def _close(self) -> None:
        try:
            self.backend.close()
        except Exception as exc:
            log.warning("autolog: closing the %s backend failed: %s", self.backend.name, exc)
