"""The index of the local store: the same runs as the store, incremental, live, a cache."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import autolog
from autolog.server import query
from autolog.ui.index import INDEX_NAME, Index

from ..helpers import clean_env


def _same_number(a: Any, b: Any) -> bool:
    if isinstance(b, float) and math.isnan(b):
        return a == "NaN"
    return a == b


def _copy(ui_store: Path, tmp_path: Path) -> Path:
    root = tmp_path / "store"
    shutil.copytree(ui_store, root, ignore=shutil.ignore_patterns(".index*"))
    return root


def test_the_index_holds_what_the_store_holds(ui_store: Path, index: Index) -> None:
    records = autolog.list_runs(ui_store)
    assert len(records) > 40
    for record in records:
        row = query.get_run(index.db, record.id)
        assert (row["name"], row["project"], row["parent_id"], row["status"]) == (
            record.name, record.project, record.parent_id, record.status)
        end = record.end_time
        if record.status == "CRASHED":  # ended when its journal was last written
            end = int((record.path / "events.jsonl").stat().st_mtime * 1000)
        assert (row["start_time"], row["end_time"]) == (record.start_time, end)
        assert row["params"] == record.params and row["tags"] == record.tags
        assert row["artifacts"] == record.artifacts and set(row["models"]) == set(record.models)
        assert set(row["metrics"]) == set(record.metrics)
        for key, value in record.metrics.items():
            assert _same_number(row["metrics"][key], value), (record.name, key)
            points = record.history(key)
            summary = row["metric_summary"][key]
            assert summary["count"] == len(points) and summary["step"] == points[-1][0]
            numbers = [v for _, v, _ in points if not math.isnan(v)]
            assert summary["min"] == (min(numbers) if numbers else None)
    statuses = {r.status for r in records}
    assert {"FINISHED", "CRASHED"} <= statuses
    children = [r for r in records if r.parent_id]
    assert len(children) >= 3  # the grid search's candidates


def test_histories_in_the_index_match_the_journal(ui_store: Path, index: Index) -> None:
    spiky = next(r for r in autolog.list_runs(ui_store) if "spiky" in r.metrics)
    with index.db.read() as conn:
        full = query.history(index.db, spiky.id, "spiky")
    assert full["steps"] == [s for s, _, _ in spiky.history("spiky")]
    assert full["values"] == [v for _, v, _ in spiky.history("spiky")]
    assert full["total"] == 5000 and conn is not None


def test_reopening_reads_only_what_changed(ui_store: Path, tmp_path: Path) -> None:
    root = _copy(ui_store, tmp_path)
    first = Index(root)
    assert first.refresh(full=True) == len(autolog.list_runs(root))
    first.stop()
    again = Index(root)  # a new process on the same store
    assert again.refresh(full=True) == 0
    record = autolog.list_runs(root)[0]
    with open(record.path / "events.jsonl", "ab") as f:
        f.write(b'{"t":"tags","d":{"later":"yes"}}\n')
    assert again.refresh(full=True) == 1
    assert query.get_run(again.db, record.id)["tags"]["later"] == "yes"
    again.stop()


def test_a_corrupt_line_is_skipped_and_the_run_still_shows(ui_store: Path,
                                                            tmp_path: Path) -> None:
    root = _copy(ui_store, tmp_path)
    record = next(r for r in autolog.list_runs(root) if r.params.get("opt") == "sgd")
    journal = record.path / "events.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(lines[0] + b'{"t":"params","d":{"broken\n' + b"[1, 2]\n" +
                        b'{"t":"metrics","d":"not columns"}\n' + b"".join(lines[1:]))
    built = Index(root)
    built.refresh(full=True)
    row = query.get_run(built.db, record.id)
    assert row["params"] == autolog.get_run(record.id, root).params
    assert row["status"] == "FINISHED" and row["metrics"]["loss"] == record.metrics["loss"]
    built.stop()


def test_deleting_the_index_loses_nothing(ui_store: Path, tmp_path: Path) -> None:
    root = _copy(ui_store, tmp_path)
    built = Index(root)
    built.refresh(full=True)
    before = {r.id: query.get_run(built.db, r.id) for r in autolog.list_runs(root)}
    built.stop()
    for path in root.glob(f"{INDEX_NAME}*"):
        path.unlink()
    rebuilt = Index(root)
    rebuilt.refresh(full=True)
    after = {run_id: query.get_run(rebuilt.db, run_id) for run_id in before}
    assert after == before
    rebuilt.stop()


def test_an_index_of_another_version_is_rebuilt(ui_store: Path, tmp_path: Path) -> None:
    root = _copy(ui_store, tmp_path)
    built = Index(root)
    built.refresh(full=True)
    with built.db.write() as conn:
        conn.exec_driver_sql("UPDATE index_info SET value = '999' WHERE name = 'version'")
    built.stop()
    rebuilt = Index(root)
    assert rebuilt.refresh(full=True) == len(autolog.list_runs(root))
    rebuilt.stop()


def test_a_replaced_journal_is_indexed_again_and_a_removed_run_leaves(ui_store: Path,
                                                                       tmp_path: Path) -> None:
    root = _copy(ui_store, tmp_path)
    built = Index(root)
    built.refresh(full=True)
    first, second = autolog.list_runs(root, "alpha")[:2]
    journal = first.path / "events.jsonl"
    start = journal.read_bytes().splitlines(keepends=True)[0]
    replacement = journal.with_suffix(".new")
    replacement.write_bytes(start + b'{"t":"params","d":{"only":1}}\n')
    os.replace(replacement, journal)  # a new file (inode): indexed from the start again
    shutil.rmtree(second.path)
    built.refresh(full=True)
    built.ensure_points([first.id])  # what reading the run through the API does first
    assert query.get_run(built.db, first.id)["params"] == {"only": 1}
    assert query.get_run(built.db, first.id)["metrics"] == {}
    with pytest.raises(LookupError):
        query.get_run(built.db, second.id)
    built.stop()


def test_a_second_process_reads_the_index_the_first_keeps(ui_store: Path,
                                                          tmp_path: Path) -> None:
    root = _copy(ui_store, tmp_path)
    owner = Index(root)
    assert owner.owner
    owner.refresh(full=True)
    reader = Index(root)
    assert not reader.owner and reader.refresh(full=True) == 0
    assert query.get_run(reader.db, autolog.list_runs(root)[0].id)
    owner.stop()
    assert reader.owner  # takes over once the first is gone
    reader.stop()


_LOGGER = """
import autolog, time
run = autolog.start_run("live one", project="live")
print(run.id, flush=True)
step = 0
while True:
    run.log_metric("loss", 1.0 / (step + 1), step=step)
    step += 1
    if step % 20 == 0:
        autolog.flush()
        time.sleep(0.05)
"""


def _wait(what: Any, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout}s")


def test_a_live_run_is_followed_and_shows_crashed_when_its_process_dies(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    built = Index(root)
    built.start(interval=0.2)
    proc = subprocess.Popen([sys.executable, "-c", _LOGGER], env=clean_env(root),
                            stdout=subprocess.PIPE, text=True)
    try:
        run_id = proc.stdout.readline().strip()  # type: ignore[union-attr]

        def seen() -> dict[str, Any] | None:
            try:
                row = query.get_run(built.db, run_id)
            except LookupError:
                return None
            return row if row["metric_summary"].get("loss", {}).get("count", 0) > 0 else None

        first = _wait(seen)
        assert first["status"] == "RUNNING"
        grown = _wait(lambda: (r := seen()) and r["metric_summary"]["loss"]["count"] >
                      first["metric_summary"]["loss"]["count"] and r)
        built.ensure_points([run_id])
        history = query.history(built.db, run_id, "loss")
        assert history["total"] >= grown["metric_summary"]["loss"]["count"]
        assert history["steps"] == list(range(history["total"]))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        _wait(lambda: query.get_run(built.db, run_id)["status"] == "CRASHED", timeout=10)
    finally:
        proc.kill()
        proc.wait(10)
        built.stop()
    assert json.loads((root / run_id / "meta.json").read_text())["id"] == run_id
    assert not any(p.name.startswith(".index") for p in (root / run_id).iterdir())


def test_ended_runs_show_at_once_and_their_summaries_complete_in_the_points_pass(
        ui_store: Path, tmp_path: Path) -> None:
    root = _copy(ui_store, tmp_path)
    record = next(r for r in autolog.list_runs(root) if r.name == "run-04")
    built = Index(root)
    built.refresh(full=True)  # the summary pass alone: metric lines skipped for ended runs
    quick = query.get_run(built.db, record.id)
    assert quick["metrics"] == record.metrics and quick["metric_summary"]["spiky"]["count"] == 0
    built.fill_points()
    exact = query.get_run(built.db, record.id)["metric_summary"]["spiky"]
    points = [v for _, v, _ in record.history("spiky")]
    assert exact == {"last": points[-1], "min": min(points), "max": max(points), "step": 4999,
                     "count": 5000}
    built.stop()


def test_a_run_listed_while_it_is_created_is_indexed_once_its_journal_is_written(
        ui_store: Path, tmp_path: Path) -> None:
    """The store is listed between the run directory's ``mkdir`` and its journal's first
    write; the journal's write does not move the store's mtime, yet the next poll finds it."""
    root = _copy(ui_store, tmp_path)
    record = autolog.list_runs(root)[0]
    aside = tmp_path / "aside"
    shutil.move(record.path, aside)
    built = Index(root)
    built.refresh(full=True)
    (root / record.id).mkdir()  # created, nothing written yet
    assert built.refresh(full=False) == 0
    journal = (aside / "events.jsonl").read_bytes()
    (root / record.id / "events.jsonl").write_bytes(journal[:20])  # a start line being written
    assert built.refresh(full=False) == 0
    mtime = root.stat().st_mtime_ns
    shutil.copytree(aside, root / record.id, dirs_exist_ok=True)
    assert root.stat().st_mtime_ns == mtime  # the listing did not change
    assert built.refresh(full=False) == 1
    assert query.get_run(built.db, record.id)["name"] == record.name
    assert built.refresh(full=False) == 0  # and it is no longer looked at every poll
    assert not built._unborn
    built.stop()
