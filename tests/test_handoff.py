"""The detached delivery process's files: its queue, compacted without losing an append, and its
lock, which makes a second start a no-op; its start, after the process that started it has
exited (issue 18)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from autolog.delivery.__main__ import wait_for_parent
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


def test_the_delivery_process_starts_once_the_process_that_started_it_has_exited(
        tmp_path: Path) -> None:
    """It is started from the exit handlers: its start-up would compete for the CPU with the
    interpreter's teardown, and the user's script would end later."""
    store, ended = tmp_path / "store", tmp_path / "ended"
    script = f"""
import os, time
from pathlib import Path
from autolog.delivery.handoff import Handoff
handoff = Handoff(Path({str(store)!r}), {{"http": "http-1"}})
handoff.enqueue([{A!r}])
assert handoff.start(5.0, dict(os.environ)) is not None
time.sleep(0.5)  # the rest of the exit
Path({str(ended)!r}).write_text(repr(time.time()))
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    status = Handoff(store, {"http": "http-1"}).status_path
    deadline = time.monotonic() + 30
    while not status.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert json.loads(status.read_text())["started"] >= float(ended.read_text())


def test_the_wait_for_the_parent_is_bounded_and_only_for_the_parent() -> None:
    started = time.monotonic()
    wait_for_parent(["--store", "s", "--after", str(os.getppid())], bound=0.3)  # lives on
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    wait_for_parent(["--after", str(os.getpid())])  # not this process's parent
    wait_for_parent(["--store", "s"])  # not given
    assert time.monotonic() - started < 1.0  # not the 2 s bound
