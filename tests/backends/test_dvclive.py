"""The dvclive backend, read back by DVC itself (``dvc metrics/params/plots show`` on a DVC
repository) and by DVCLive's own readers; one run per directory, as ``Live(resume=False)``."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

import autolog
from autolog import testing
from autolog.backends.dvclive import yaml_scalar
from autolog.cli import main as cli_main

from .file_readers import dvc_show, read_dvclive, same_points


@pytest.fixture
def dvc_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A DVC repository (no git) whose workspace holds the dvclive directory."""
    pytest.importorskip("dvc")
    repo = tmp_path / "project"
    repo.mkdir()
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=repo, check=True)
    monkeypatch.setenv("AUTOLOG_DVCLIVE_DIR", str(repo / "dvclive"))
    return repo


def test_dvc_reads_the_run_as_dvclives(dvc_repo: Path):
    autolog.enable(backend="local,dvclive")
    with autolog.start_run("train") as run:
        run.log_params({"lr": 1e-05, "optimizer": {"name": "adam"}, "note": "a: b # c",
                        "flag": True, "none": None})
        for step in range(20):
            run.log_metrics({"train/loss": 1 / (step + 1), "acc": step / 20}, step=step)
        run.log_metrics({"odd": math.inf}, step=0)
    assert autolog.flush(60)

    shown = dvc_show(dvc_repo)
    metrics = shown["metrics"][""]["data"]["dvclive/metrics.json"]["data"]
    assert metrics == {"train": {"loss": 1 / 20}, "acc": 19 / 20, "odd": "inf", "step": 0}
    params = shown["params"][""]["data"]["dvclive/params.yaml"]["data"]
    assert params == {"lr": 1e-05, "optimizer.name": "adam", "note": "a: b # c", "flag": True,
                      "none": None}
    plots = shown["plots"]["workspace"]["sources"]["data"]
    loss = plots["dvclive/plots/metrics/train/loss.tsv"]["data"]
    assert [(int(r["step"]), float(r["loss"])) for r in loss] == \
        [(s, 1 / (s + 1)) for s in range(20)]
    got = read_dvclive(dvc_repo / "dvclive")
    local = autolog.get_run(run.id)
    for key in local.metric_keys:
        assert same_points(got.metrics[key], [(s, v) for s, v, _ in local.history(key)]), key
        assert got.times[key] == [t for _, _, t in local.history(key)]


def test_a_newer_run_replaces_the_directory_an_older_one_does_not(dvclive_dir: Path):
    with autolog.start_run("old") as old:  # recorded locally only
        old.log_metric("old_metric", 1.0, step=0)
    autolog.enable(backend="local,dvclive")
    with autolog.start_run("new") as new:
        new.log_params({"lr": 0.1})
        new.log_metric("loss", 0.5, step=0)
        with autolog.start_run("candidate") as child:
            child.log_metric("score", 0.9, step=0)
    assert autolog.flush(60)
    testing.reset()
    assert cli_main(["sync", "--to", "dvclive"]) == 0  # the old run: not written over the new

    got = read_dvclive(dvclive_dir)
    assert set(got.metrics) == {"loss"} and got.params == {"lr": "0.1"}
    [child_dir] = (dvclive_dir / "children").iterdir()
    assert child_dir.name == f"candidate-{child.id[:8]}"
    assert read_dvclive(child_dir).metrics == {"score": [(0, 0.9)]}
    assert not (child_dir / "dvc.yaml").exists()

    autolog.enable(backend="local,dvclive")
    with autolog.start_run("newest") as newest:
        newest.log_metric("other", 1.0, step=0)
    assert autolog.flush(60)
    got = read_dvclive(dvclive_dir)  # DVCLive's resume=False: the previous run is gone
    assert set(got.metrics) == {"other"} and got.params == {}
    assert not (dvclive_dir / "children").exists()
    owner = json.loads((dvclive_dir / ".autolog-run.json").read_text())
    assert owner["run"] == newest.id


@pytest.mark.parametrize("value", [0.1, 1e-05, 1e20, -2.5e-300, 3, True, None, "yes", "1e3",
                                   "a\tb\nc", "ünï", "x: [y]", "\x85\ufeff", "'", "-"])
def test_param_values_read_back_by_yaml(value: object):
    yaml = pytest.importorskip("yaml")
    ruamel = pytest.importorskip("ruamel.yaml")
    line = f"key: {yaml_scalar(value)}\n"
    assert yaml.safe_load(line) == {"key": value}  # YAML 1.1 (PyYAML)
    assert dict(ruamel.YAML(typ="safe").load(line)) == {"key": value}  # YAML 1.2 (DVC's)
