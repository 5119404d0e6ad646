"""``autolog runs`` through the real command on a store made by real trainings: filters and
sorts equal to a Python reference, the default view, output shapes, finding the store."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest

import autolog

from .conftest import cli, ok
from .reference import expected_ids

FILTERS = [
    "metrics.val_acc > 0.6",
    "params.model = mlp and metrics.loss < 0.15",
    "params.lr >= 1e-2",
    "tags.team = vision or status = FAILED",
    "not params.model = xgb",
    "name ~ PLAIN",
    "metrics.val_loss exists and not metrics.val_loss > 0.65",
    "params.augment = true",
    "duration < 1h and project = default",
    "metrics.loss:min < 0.13",
]
SORTS = ["-metrics.val_acc", "metrics.loss", "params.lr", "-params.model", "name",
         "-duration", "tags.team", "-metrics.loss:min", "-metrics.val_loss", "start_time"]


def _ids(store: Path, *args: str) -> list[str]:
    return [row["id"] for row in json.loads(ok(cli("runs", "--json", "--limit", "0", *args,
                                                   store=store)))]


@pytest.mark.parametrize("expression", FILTERS)
def test_filters_equal_the_python_reference(trained: Path, expression: str) -> None:
    assert _ids(trained, "--filter", expression) == expected_ids(trained, expression)
    assert _ids(trained, "--all", "--filter", expression) == \
        expected_ids(trained, expression, every=True)


@pytest.mark.parametrize("sort", SORTS)
def test_sorts_equal_the_python_reference(trained: Path, sort: str) -> None:
    assert _ids(trained, "--all", "--sort", sort) == expected_ids(trained, sort=sort,
                                                                   every=True)


def test_filter_sort_and_limit_together(trained: Path) -> None:
    expression = "metrics.val_acc exists and params.model != svm"
    want = expected_ids(trained, expression, "-metrics.val_acc", every=True)
    found = json.loads(ok(cli("runs", "--all", "--filter", expression, "--sort",
                              "-metrics.val_acc", "--limit", "3", "--json", store=trained)))
    assert [r["id"] for r in found] == want[:3]
    assert _ids(trained, "--status", "failed") == expected_ids(trained, status="FAILED")
    assert _ids(trained, "--project", "other") == expected_ids(trained, project="other")


def test_the_default_view(trained: Path) -> None:
    runs = autolog.list_runs(trained)
    search = next(r for r in runs if r.name.startswith("GridSearchCV") and r.parent_id is None)
    children = [r for r in runs if r.parent_id == search.id]
    top = [r for r in runs if r.parent_id is None]
    out = ok(cli("runs", store=trained))
    lines = out.splitlines()
    assert lines[0].split()[:6] == ["ID", "NAME", "PROJECT", "STATUS", "START", "DURATION"]
    assert "\x1b[" not in out  # piped: plain text, no colour
    assert len(lines) == 1 + len(top) + 1  # header, runs, the child-runs note
    assert not any(c.id[:8] in out for c in children)  # top-level runs only
    row = next(line for line in lines if line.startswith(search.id[:8]))
    assert f"+{len(children)}" in row.split()  # its children counted
    assert "best_score=" in row and "split0" not in out and "std_" not in out
    assert f"{len(children)} child runs not listed: --all lists them" in out
    everything = ok(cli("runs", "--all", "--limit", "0", store=trained))
    assert all(c.id[:8] in everything for c in children)
    child = next(line for line in everything.splitlines() if line.startswith(children[0].id[:8]))
    assert "mean_test_score=" in child and "split0_test_score" not in child
    assert "fit_time" not in child  # timings only when nothing better


def test_limit_footer_and_parent(trained: Path) -> None:
    total = len([r for r in autolog.list_runs(trained) if r.parent_id is None])
    out = ok(cli("runs", "--limit", "3", store=trained))
    assert f"showing 3 of {total} runs — use --limit N for more" in out
    search = next(r for r in autolog.list_runs(trained) if r.name.startswith("GridSearchCV")
                  and r.parent_id is None)
    children = _ids(trained, "--parent", search.name)
    assert sorted(children) == sorted(r.id for r in autolog.list_runs(trained)
                                      if r.parent_id == search.id)
    assert _ids(trained, "--parent", search.id[:7]) == children


def test_columns_csv_and_json(trained: Path) -> None:
    out = ok(cli("runs", "--columns", "params.lr,metrics.val_acc:max,tags.team", "--filter",
                 "name ~ plain", "--sort", "name", store=trained))
    header = out.splitlines()[0].split()
    assert header[-3:] == ["params.lr", "metrics.val_acc:max", "tags.team"]
    assert "METRICS" not in header
    rows = list(csv.DictReader(io.StringIO(ok(cli(
        "runs", "--csv", "--columns", "params.model,metrics.val_acc", "--filter",
        "name ~ plain", "--sort", "name", store=trained)))))
    by_name = {r.name: r for r in autolog.list_runs(trained)}
    assert [r["name"] for r in rows] == [f"plain-{i}" for i in range(6)]
    for row in rows:
        run = by_name[row["name"]]
        assert row["params.model"] == run.params["model"]
        assert float(row["metrics.val_acc"]) == run.metrics["val_acc"]
    listed = json.loads(ok(cli("runs", "--json", "--limit", "2", store=trained)))
    assert {"id", "name", "project", "status", "parent_id", "start_time", "end_time",
            "children", "tags", "metrics"} <= set(listed[0])


def test_mistakes_are_pointed_at(trained: Path) -> None:
    done = cli("runs", "--filter", "metrics.acc > ", store=trained)
    assert done.returncode == 2
    assert "expected a value after '>' at column 15" in done.stderr  # the end of the text
    assert done.stderr.splitlines()[-2:] == ["  metrics.acc > ", " " * (2 + 14) + "^"]
    done = cli("runs", "--status", "DONE", store=trained)
    assert done.returncode == 2 and "use one of RUNNING, FINISHED" in done.stderr
    done = cli("runs", "--sort", "-metric.acc", store=trained)
    assert done.returncode == 2 and "unknown field 'metric.acc'" in done.stderr


def test_finding_the_store(trained: Path, tmp_path: Path) -> None:
    done = cli("runs", "--dir", str(tmp_path / "nonexistent"))
    assert done.returncode == 1
    assert f"no run store at {tmp_path / 'nonexistent'} (from --dir): it does not exist" in \
        done.stderr
    elsewhere = tmp_path / "elsewhere" / "deep"
    elsewhere.mkdir(parents=True)
    done = cli("runs", cwd=elsewhere)
    assert done.returncode == 1
    assert f"looked for autolog-runs/ in {elsewhere} and its" in done.stderr
    assert "--dir DIR or AUTOLOG_DIR=DIR" in done.stderr
    # like git: the nearest autolog-runs here or above
    project = trained.parent
    (project / "src" / "models").mkdir(parents=True, exist_ok=True)
    found = ok(cli("runs", "--all", "--json", "--limit", "0", cwd=project / "src" / "models"))
    assert len(json.loads(found)) == len(autolog.list_runs(trained))
    # AUTOLOG_DIR set explicitly wins over the search
    empty = tmp_path / "empty-store"
    empty.mkdir()
    done = cli("runs", cwd=project / "src", env={"AUTOLOG_DIR": str(empty)})
    assert done.returncode == 0 and "no runs in" in done.stderr and done.stdout == ""
    assert not any(p.name.startswith(".index") for p in empty.iterdir())  # nothing written


def test_runs_by_name_prefix_or_id(trained: Path) -> None:
    runs = autolog.list_runs(trained)
    plain = next(r for r in runs if r.name == "plain-2")
    for ref in (plain.id, plain.id[:6], "plain-2"):
        data = json.loads(ok(cli("show", ref, "--json", store=trained)))
        assert data["id"] == plain.id and data["params"] == plain.params
    done = cli("show", "dup", store=trained)
    assert done.returncode == 1
    dups = [r for r in runs if r.name == "dup"]
    assert "'dup' names 2 runs; give more of the id:" in done.stderr
    assert all(r.id[:12] in done.stderr for r in dups)
    done = cli("show", "no-such-run", store=trained)
    assert done.returncode == 1
    assert "no run 'no-such-run'" in done.stderr and "not a run id, a unique id prefix or a " \
        "run name" in done.stderr


def test_show_is_short(trained: Path) -> None:
    search = next(r for r in autolog.list_runs(trained) if r.name.startswith("GridSearchCV")
                  and r.parent_id is None)
    out = ok(cli("show", search.name, store=trained))
    assert "context tags not shown: --all" in out and "autolog.python.version" not in out
    everything = ok(cli("show", search.name, "--all", store=trained))
    assert "autolog.python.version" in everything


def test_the_terminal_table_fits_the_window(trained: Path) -> None:
    """On a terminal: colour by status, rows cut to the window's width, never wrapped."""
    import pty
    import subprocess
    import sys

    from ..helpers import clean_env

    env = clean_env(trained, COLUMNS="90", LINES="40", TERM="xterm-256color")
    env.pop("NO_COLOR", None)
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "autolog", "runs", "--all", "-n", "0"],
                            stdout=follower, stderr=follower, stdin=subprocess.DEVNULL, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert proc.wait(60) == 0
    os.close(leader)
    text = b"".join(chunks).decode()
    assert "\x1b[" in text  # colour
    import re

    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    lines = [line for line in plain.splitlines() if line.strip()]
    assert max(len(line) for line in lines) <= 90
    assert any("FAILED" in line for line in lines) and "…" in plain  # names cut, not wrapped
