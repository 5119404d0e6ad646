"""The runs table's default columns (``/api/v1/keys``' ``columns``): the headline metrics of a
project's newest top-level runs, those most of them share first, drawn from real runs in a local
store and read through the local app."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from ..helpers import clean_env
from .conftest import TOKEN, local_client

# three sweep runs share loss, val/accuracy and the bookkeeping of a training (epochs, learning
# rates, times); two add f1; one adds bleu; a child and a run deleted afterwards log keys no
# default may come from; another project logs a reward, a third only times and counters
SCRIPT = r"""
import sys
import autolog

RUNS = [
    ("a", ["loss", "val/accuracy", "f1", "epoch", "train/learning_rate", "train_runtime",
           "lr/opt0/pg1", "eval_samples_per_second"]),
    ("b", ["loss", "val/accuracy", "f1", "bleu", "epoch", "train/learning_rate",
           "train_runtime"]),
    ("c", ["loss", "val/accuracy", "epoch", "train/learning_rate", "train_runtime",
           "system/cpu_percent"]),
    ("gone", ["only_in_a_deleted_run"] * 1),
]
for name, keys in RUNS:
    with autolog.start_run(name, project="sweep") as run:
        for step in range(3):
            run.log_metrics({key: 1.0 / (step + 1) for key in keys}, step=step)
        if name == "a":
            with autolog.start_run("trial", project="sweep") as child:
                child.log_metric("only_in_a_child", 0.5)
    print(name, run.id, flush=True)
with autolog.start_run("other", project="other") as run:
    run.log_metric("reward", 1.0)
    run.log_metric("epoch", 1.0)
with autolog.start_run("timing", project="timing") as run:
    run.log_metrics({"train_runtime": 3.5, "epoch": 2.0, "train/learning_rate": 0.1})
"""


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str]]]:
    from autolog.ui.index import Index

    store = tmp_path_factory.mktemp("columns") / "autolog-runs"
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=clean_env(store), check=True,
                          capture_output=True, text=True, timeout=120)
    ids = dict(line.split() for line in done.stdout.splitlines())
    index = Index(store)
    index.refresh(full=True)
    app = local_client(index)
    app.headers["Authorization"] = f"Bearer {TOKEN}"
    assert app.patch(f"/api/v1/runs/{ids['gone']}", json={"deleted": True}).status_code == 200
    yield app, ids
    index.stop()


def test_the_metrics_most_runs_share_come_first_in_headline_order(
        client: tuple[TestClient, dict[str, str]]) -> None:
    app, _ = client
    keys = app.get("/api/v1/keys", params={"project": "sweep"}).json()
    # val/accuracy, f1 and loss are in at least two of the three runs, validation quality
    # first; bleu, in one, comes after them; epochs, learning rates and times never while
    # there are measures; hardware never
    assert keys["columns"] == ["metrics.val/accuracy", "metrics.f1", "metrics.loss",
                               "metrics.bleu"]
    assert "system/cpu_percent" in keys["metrics"]  # listed for the picker all the same
    assert "epoch" in keys["metrics"]


def test_a_deleted_run_and_a_child_add_no_default(
        client: tuple[TestClient, dict[str, str]]) -> None:
    app, _ = client
    keys = app.get("/api/v1/keys", params={"project": "sweep"}).json()
    assert "only_in_a_child" in keys["metrics"]  # the child's key can still be picked
    assert not {"metrics.only_in_a_child", "metrics.only_in_a_deleted_run"} & set(
        keys["columns"])


def test_the_children_of_a_parent_give_their_own_defaults(
        client: tuple[TestClient, dict[str, str]]) -> None:
    app, ids = client
    children = app.get("/api/v1/keys", params={"project": "sweep", "parent": ids["a"]}).json()
    assert children["columns"] == ["metrics.only_in_a_child"]
    assert children["metrics"] == app.get("/api/v1/keys", params={"project": "sweep"}).json()[
        "metrics"]  # the pickers list the project's keys all the same
    assert app.get("/api/v1/keys", params={"parent": "not an id"}).status_code == 422


def test_times_and_counters_only_when_nothing_else_was_logged(
        client: tuple[TestClient, dict[str, str]]) -> None:
    app, _ = client
    other = app.get("/api/v1/keys", params={"project": "other"}).json()
    assert other["columns"] == ["metrics.reward"]
    timing = app.get("/api/v1/keys", params={"project": "timing"}).json()
    assert set(timing["columns"]) == {"metrics.epoch", "metrics.train_runtime",
                                      "metrics.train/learning_rate"}
    # no project: the newest runs of all of them; f1, in two of five, is no longer shared
    every = app.get("/api/v1/keys").json()
    assert every["columns"] == ["metrics.val/accuracy", "metrics.loss", "metrics.f1",
                                "metrics.bleu"]


def test_the_columns_read_as_the_runs_table_takes_them(
        client: tuple[TestClient, dict[str, str]]) -> None:
    app, _ = client
    columns = app.get("/api/v1/keys", params={"project": "sweep"}).json()["columns"]
    page = app.get("/api/v1/runs", params={"project": "sweep", "columns": ",".join(columns),
                                           "sort": "name"}).json()
    rows = {row["name"]: row["values"] for row in page["runs"]}
    assert rows["a"]["metrics.loss"] == pytest.approx(1 / 3)
    assert "metrics.f1" not in rows["c"]  # a run without the metric: an empty cell
    assert rows["b"]["metrics.bleu"] == pytest.approx(1 / 3)
