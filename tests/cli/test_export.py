"""``autolog export``: runs and points out as CSV, JSON Lines and Parquet, read back equal to
what ``autolog.list_runs()`` says."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest

import autolog
from autolog import filters

from .conftest import cli, ok


def _text(value: Any) -> str:
    """A param as the CSV holds it: strings as they are, other values as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def _same_float(text: str, value: float) -> bool:
    number = float(text)
    return (math.isnan(number) and math.isnan(value)) or number == value


def test_csv_equals_list_runs(trained: Path, tmp_path: Path) -> None:
    target = tmp_path / "runs.csv"
    done = cli("export", "--format", "csv", "-o", str(target), store=trained)
    ok(done)
    runs = [r for r in autolog.list_runs(trained) if not r.deleted]
    assert f"exported {len(runs)} runs" in done.stderr
    with open(target, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == [r.id for r in runs]  # newest first, children included
    for row, run in zip(rows, runs, strict=True):
        assert (row["name"], row["project"], row["status"]) == (run.name, run.project,
                                                               run.status)
        assert row["parent_id"] == (run.parent_id or "")
        assert int(row["start_time"]) == run.start_time
        assert int(row["end_time"]) == run.end_time
        params = {k[7:]: v for k, v in row.items() if k.startswith("params.") and v != ""}
        assert params == {k: _text(v) for k, v in run.params.items()}
        tags = {k[5:]: v for k, v in row.items() if k.startswith("tags.") and v != ""}
        assert tags == run.tags
        metrics = {k[8:]: v for k, v in row.items() if k.startswith("metrics.") and v != ""}
        assert set(metrics) == set(run.metrics)
        assert all(_same_float(metrics[k], v) for k, v in run.metrics.items())


def test_jsonl_to_stdout_with_a_filter(trained: Path) -> None:
    expression = "params.model = mlp and metrics.val_acc > 0.6"
    out = ok(cli("export", "--format", "jsonl", "--filter", expression, store=trained))
    rows = [json.loads(line) for line in out.splitlines()]
    tree = filters.parse(expression)
    runs = [r for r in autolog.list_runs(trained) if filters.matches(tree, r)]
    assert [r["id"] for r in rows] == [r.id for r in runs] and rows
    for row, run in zip(rows, runs, strict=True):
        assert row["params"] == run.params and row["tags"] == run.tags
        assert row["metrics"] == {k: v if v == v else "NaN" for k, v in run.metrics.items()}


def test_history_one_row_per_point(trained: Path) -> None:
    out = ok(cli("export", "--history", "--filter", "name ~ plain", store=trained))
    rows = list(csv.DictReader(io.StringIO(out)))
    runs = {r.id: r for r in autolog.list_runs(trained) if "plain" in r.name}
    expected = sorted((rid, key, step, value, ts) for rid, run in runs.items()
                      for key in run.metric_keys for step, value, ts in run.history(key))
    found = sorted((r["run_id"], r["key"], int(r["step"]), float(r["value"]),
                    int(r["timestamp"])) for r in rows)
    assert len(found) == len(expected)
    for got, want in zip(found, expected, strict=True):
        assert got[:3] == want[:3] and got[4] == want[4]
        assert _same_float(str(got[3]), want[3])
    assert {r["run_name"] for r in rows} == {run.name for run in runs.values()}


def test_parquet_typed_columns(trained: Path, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    target = tmp_path / "runs.parquet"
    ok(cli("export", "--format", "parquet", "-o", str(target), "--top-level", store=trained))
    table = pq.read_table(target)
    runs = [r for r in autolog.list_runs(trained) if r.parent_id is None]
    assert table.column("id").to_pylist() == [r.id for r in runs]
    assert str(table.schema.field("start_time").type) == "timestamp[ms, tz=UTC]"
    assert str(table.schema.field("metrics.val_acc").type) == "double"
    assert str(table.schema.field("params.layers").type) == "int64"
    assert str(table.schema.field("params.augment").type) == "bool"
    assert str(table.schema.field("params.lr").type) == "string"  # numbers and numeric texts
    points = tmp_path / "points.parquet"
    ok(cli("export", "--format", "parquet", "--history", "-o", str(points), store=trained))
    assert pq.read_table(points).num_rows == sum(len(r.history(k))
                                                 for r in autolog.list_runs(trained)
                                                 for k in r.metric_keys)


def test_parquet_without_pyarrow_says_what_to_install(trained: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "pyarrow.py").write_text("raise ModuleNotFoundError(\"No module named 'pyarrow'\","
                                        " name='pyarrow')\n")
    import os

    done = cli("export", "--format", "parquet", "-o", str(tmp_path / "x.parquet"),
               store=trained, env={"PYTHONPATH": f"{blocker}{os.pathsep}"
                                   f"{Path(autolog.__file__).parents[1]}"})
    assert done.returncode == 1
    assert "pip install 'autolog-ml[parquet]'" in done.stderr
