"""The detached delivery process's files: its queue, compacted without losing an append, and its
lock, which makes a second start a no-op (issue 18)."""

from __future__ import annotations

import os
from pathlib import Path

from autolog.delivery.handoff import Handoff, running
from autolog.journal.files import FileLock

A, B, C = "a" * 32, "b" * 32, "c" * 32


def test_the_queue_keeps_order_and_compaction_keeps_what_is_left(tmp_path: Path) -> None:
    handoff = Handoff(tmp_path, {"http": "http-123"})
    handoff.enqueue([A, B])
    handoff.enqueue([B, C, "not-a-run-id"])
    assert handoff.queued() == [tmp_path / A, tmp_path / B, tmp_path / C]
    handoff.compact({C})
    handoff.enqueue([A])  # queued after the compaction: kept
    assert handoff.queued() == [tmp_path / C, tmp_path / A]


def test_one_process_per_store_and_destinations(tmp_path: Path) -> None:
    handoff = Handoff(tmp_path, {"mlflow": "mlflow-1", "http": "http-2"})
    same = Handoff(tmp_path, {"http": "http-2", "mlflow": "mlflow-1"})
    other = Handoff(tmp_path, {"mlflow": "mlflow-9"})
    assert handoff.lock_path == same.lock_path != other.lock_path
    handoff.enqueue([A])
    held = FileLock(handoff.lock_path)
    assert held.acquire()
    try:
        assert handoff.is_running()
        assert handoff.start(10.0, dict(os.environ)) is None  # the holder will see the queue
        handoff.status_path.write_text('{"pid": 1, "backends": ["http", "mlflow"]}')
        assert running(tmp_path) == [{"pid": 1, "backends": ["http", "mlflow"]}]
    finally:
        held.release()
    assert running(tmp_path) == []
