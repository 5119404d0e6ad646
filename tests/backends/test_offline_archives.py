"""The clearml and comet backends: offline archives, opened and checked, with no network.

ClearML's files are checked with ClearML's own API schema classes (what an import sends to the
server); Comet's archive is read as ``comet upload`` reads it (``messages.json`` lines)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

import autolog

from .file_readers import read_clearml, read_comet


def _train(name: str, tmp_path: Path, model: bool = True) -> autolog.Run:
    (tmp_path / "model").mkdir(exist_ok=True)
    (tmp_path / "model" / "weights.bin").write_bytes(b"\0" * 64)
    with autolog.start_run(name, tags={"team": "vision"}) as run:
        run.log_params({"lr": 0.01, "epochs": 3})
        for step in range(30):
            run.log_metrics({"train/loss": 1 / (step + 1), "system/gpu/0/memory_percent": 5.0},
                            step=step)
        run.log_artifact(tmp_path / "model" / "weights.bin", "weights.bin")
    return run


def test_clearml_offline_session(clearml_dir: Path, tmp_path: Path, no_network: list):
    pytest.importorskip("clearml")
    from clearml.backend_api.services import events, tasks

    autolog.enable(backend="local,clearml")
    run = _train("clearml-run", tmp_path)
    assert autolog.flush(60)

    archive = clearml_dir / f"offline-{run.id}.zip"
    with zipfile.ZipFile(archive) as z:
        task = json.loads(z.read("task.json"))
        names = z.namelist()
        lines = z.read("metrics.jsonl").decode().splitlines()
    valid = list(tasks.EditRequest._get_data_props())
    tasks.EditRequest(task=task["id"], **{k: task[k] for k in valid if k in task})
    for line in lines:
        for event in json.loads(line):
            assert event.pop("type") == "training_stats_scalar"
            events.MetricsScalarEvent(**event)
    got = read_clearml(archive)
    local = autolog.get_run(run.id)
    assert got.name == "clearml-run" and got.status == "FINISHED"
    assert got.params == {"lr": "0.01", "epochs": "3"} and got.tags["team"] == "vision"
    assert got.metrics == {k: [(s, v) for s, v, _ in local.history(k)] for k in local.metric_keys}
    artifact = next(a for a in task["execution"]["artifacts"] if a["key"] == "weights.bin")
    local_path = artifact["uri"].replace(task["offline_folder"] + "/", "", 1)
    assert local_path in names  # where Task.import_offline_session looks for it
    assert any(e["metric"] == ":monitor:gpu" and e["variant"] == "gpu_0_memory_percent"
               for line in lines for e in json.loads(line))


def test_comet_offline_experiment_and_a_resumed_one(comet_offline: Path, tmp_path: Path,
                                                   no_network: list):
    autolog.enable(backend="local,comet")
    run = _train("comet-run", tmp_path)
    assert autolog.flush(60)
    [archive] = comet_offline.glob("*.zip")
    assert archive.name == f"{run.id}.zip"
    got = read_comet([archive])
    local = autolog.get_run(run.id)
    assert got.name == "comet-run" and got.status == "FINISHED"
    assert got.params == {"lr": "0.01", "epochs": "3"} and got.tags["team"] == "vision"
    assert got.metrics == {k: [(s, v) for s, v, _ in local.history(k)] for k in local.metric_keys}
    assert "weights.bin" in got.artifacts
    experiment = json.loads(zipfile.ZipFile(archive).read("experiment.json"))
    assert experiment["offline_id"] == run.id and experiment["resume_strategy"] == "create"


def test_comet_a_later_delivery_continues_the_experiment(comet_offline: Path, no_network: list):
    from autolog.api import get_settings
    from autolog.backends.comet import CometBackend
    from autolog.delivery import replay as delivery

    with autolog.start_run("long") as run:  # local only; delivered in two sessions
        run.log_metric("loss", 1.0, step=0)
        autolog.flush()
        first = CometBackend(get_settings())
        assert not delivery.deliver(first, run.path)  # the run goes on
        first.close()  # that process ends: Comet archives what it had
        run.log_metric("loss", 0.5, step=1)
    assert delivery.deliver(CometBackend(get_settings()), run.path)  # `autolog sync`
    archives = sorted(comet_offline.glob(f"{run.id}*.zip"), key=lambda p: len(p.name))
    assert archives[0].name == f"{run.id}.zip" and len(archives) == 2
    second = json.loads(zipfile.ZipFile(archives[1]).read("experiment.json"))
    assert second["offline_id"] == run.id and second["resume_strategy"] != "create"
    got = read_comet(archives)
    assert got.metrics == {"loss": [(0, 1.0), (1, 0.5)]} and got.status == "FINISHED"
