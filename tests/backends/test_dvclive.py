"""The dvclive backend, read back by DVC itself (``dvc metrics/params/plots show`` on a DVC
repository) and by DVCLive's own readers; one run per directory, as ``Live(resume=False)``."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import autolog
from autolog import testing
from autolog.backends.dvclive import yaml_scalar
from autolog.cli import main as cli_main

from .file_readers import dvc_show, read_dvclive, same_points
from .media_items import PR, ROC, SCATTER, local_bytes, log_every_kind


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


def test_dvc_shows_images_and_evaluation_plots_as_dvclives(dvc_repo: Path, tmp_path: Path):
    """Images under plots/images, plots and histograms as log_sklearn_plot / log_plot write
    them: read by ``Repo.plots.show()`` and rendered by ``dvc plots show --json`` (images, vega
    specs)."""
    pytest.importorskip("PIL")
    run = log_every_kind("local,dvclive", tmp_path)
    out = "dvclive/plots"

    shown = dvc_show(dvc_repo)["plots"]["workspace"]
    sources = shown["sources"]["data"]
    images = {name: source["data"] for name, source in sources.items()
              if name.startswith(f"{out}/images/")}
    assert set(images) == {f"{out}/images/samples/0.png", f"{out}/images/samples/1.png",
                           f"{out}/images/samples/1-1.png", f"{out}/images/file/0.png"}
    assert [images[f"{out}/images/samples/{n}.png"] for n in ("0", "1", "1-1")] == \
        local_bytes(run, "samples")
    assert images[f"{out}/images/file/0.png"].startswith(b"\x89PNG")  # WebP: converted
    matrix = sources[f"{out}/sklearn/training_confusion_matrix.json"]["data"]
    assert Counter((r["actual"], r["predicted"]) for r in matrix) == {
        ("cat", "cat"): 5, ("cat", "dog"): 1, ("dog", "cat"): 2, ("dog", "dog"): 7}
    roc = sources[f"{out}/sklearn/training_roc_curve.json"]["data"]["roc"]
    assert [(p["fpr"], p["tpr"]) for p in roc] == list(zip(ROC["fpr"], ROC["tpr"], strict=True))
    pr = sources[f"{out}/sklearn/training_precision_recall_curve.json"]["data"]
    assert [p["precision"] for p in pr["precision_recall"]] == PR["precision"]
    scatter = sources[f"{out}/custom/training_predicted_vs_true.json"]["data"]
    assert scatter == [{"true": t, "predicted": p} for t, p in
                       zip(SCATTER["true"], SCATTER["predicted"], strict=True)]
    binned = sources[f"{out}/custom/binned.json"]["data"]  # a histogram: a row per bin
    assert [(r["left"], r["right"], r["count"]) for r in binned] == \
        [(-1.0, 0.0, 3), (0.0, 0.5, 0), (0.5, 2.0, 5)]
    assert [r["value"] for r in binned] == [-0.5, 0.25, 1.25]
    [definitions] = shown["definitions"]["data"].values()
    configs = definitions["data"]
    assert configs[f"{out}/sklearn/training_confusion_matrix.json"]["template"] == "confusion"
    assert configs[f"{out}/custom/training_predicted_vs_true.json"]["template"] == "scatter"
    assert configs[f"{out}/custom/weights.json"]["template"] == "linear"

    rendered = json.loads(subprocess.run(
        [sys.executable, "-m", "dvc", "plots", "show", "--json"], cwd=dvc_repo, check=True,
        capture_output=True, text=True).stdout)["data"]
    kinds = {name: [r["type"] for r in renders] for name, renders in rendered.items()}
    assert kinds[f"{out}/images/samples/1-1.png"] == ["image"]
    assert kinds[f"{out}/sklearn/training_confusion_matrix.json"] == ["vega"]
    assert kinds[f"{out}/sklearn/training_roc_curve.json"] == ["vega"]
    assert kinds[f"{out}/custom/weights.json"] == ["vega"]
    assert not any(name.startswith(f"{out}/media") for name in rendered)  # nothing else
