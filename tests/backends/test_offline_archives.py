"""The clearml and comet backends: offline archives, opened and checked, with no network.

ClearML's files are checked with ClearML's own API schema classes (what an import sends to the
server); Comet's archive is read as ``comet upload`` reads it (``messages.json`` lines)."""

from __future__ import annotations

import inspect
import json
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import autolog

from .file_readers import read_clearml, read_comet
from .media_items import MATRIX, ROC, TEXT, local_bytes, log_every_kind


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


class _Recorder:
    """A ClearML API session that keeps what an import sends instead of sending it."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def send(self, request: Any) -> Any:
        self.events += request.requests
        return SimpleNamespace(ok=lambda: True)


# ClearML's config parser (pyhocon) calls pyparsing's pre-3.0 names, which warn
@pytest.mark.filterwarnings(r"ignore:'\w+' (argument is )?deprecated:DeprecationWarning")
def test_clearml_media_imported_by_clearmls_own_code(clearml_dir: Path, tmp_path: Path,
                                                     no_network: list):
    """Debug samples, plots and console lines in the session, validated by ClearML's schema
    classes and replayed by ClearML's own offline import (its API session swapped for a
    recorder, its file server for a local folder)."""
    pytest.importorskip("clearml")
    pytest.importorskip("PIL")
    from clearml.backend_api.services import events
    from clearml.backend_interface.metrics.interface import Metrics
    from clearml.backend_interface.task.log import TaskHandler

    run = log_every_kind("local,clearml", tmp_path)
    session = tmp_path / "session"
    zipfile.ZipFile(clearml_dir / f"offline-{run.id}.zip").extractall(session)
    schemas = {"training_debug_image": events.MetricsImageEvent, "plot": events.MetricsPlotEvent,
               "training_stats_scalar": events.MetricsScalarEvent}
    by_type: dict[str, list[dict]] = {}
    for line in (session / "metrics.jsonl").read_text().splitlines():
        for event in json.loads(line):
            schemas[event["type"]](**{k: v for k, v in event.items() if k != "type"})
            by_type.setdefault(event["type"], []).append(event)
    [log_line] = json.loads((session / "log.jsonl").read_text())
    events.TaskLogEvent(**log_line)
    assert log_line["msg"] == f"generated (step 3):\n{TEXT}"

    images = [e for e in by_type["training_debug_image"] if e["metric"] == "samples"]
    assert [e["iter"] for e in images] == [0, 1, 1]
    assert [(session / "data" / e["key"]).read_bytes() for e in images] == \
        local_bytes(run, "samples")
    plots = {e["metric"]: json.loads(e["plot_str"]) for e in by_type["plot"]}
    assert plots["weights"]["data"][0]["y"] == [25, 25, 25, 26]
    bars = plots["binned"]["data"][0]  # uneven bins: each at its centre, of its width
    assert bars["x"] == [-0.5, 0.25, 1.25] and bars["width"] == [1.0, 0.5, 1.5]
    table = plots["predictions"]["data"][0]
    assert table["header"]["values"] == ["x", "y"] and table["cells"]["values"] == \
        [[1, 2], ["a|b", "c"]]
    heatmap = plots["training_confusion_matrix"]["data"][0]
    assert heatmap["type"] == "heatmap" and heatmap["z"] == MATRIX["matrix"]
    assert plots["training_roc_curve"]["data"][0]["x"] == ROC["fpr"]

    if "session" not in inspect.signature(Metrics.report_offline_session).parameters:
        return  # an older ClearML (1.14) imports only through a live server's session
    recorder, files = _Recorder(), tmp_path / "fileserver"
    task = SimpleNamespace(id="imported", session=recorder)
    assert Metrics.report_offline_session(task, str(session), remote_url=files.as_uri(),
                                          only_with_id=f"offline-{run.id}", session=recorder)
    assert TaskHandler.report_offline_session(task, str(session))
    sent = [e if isinstance(e, dict) else e.to_dict() for e in recorder.events]
    uploaded = [e for e in sent if e["type"] == "training_debug_image"
                and e["metric"] == "samples"]
    assert [Path(e["url"].removeprefix("file://")).read_bytes() for e in uploaded] == \
        local_bytes(run, "samples")
    assert {e["type"] for e in sent} == {"training_debug_image", "plot",
                                         "training_stats_scalar", "log"}


def test_clearml_media_events_are_appended_once(clearml_dir: Path, tmp_path: Path):
    from autolog.api import get_settings
    from autolog.backends.clearml import ClearmlBackend
    from autolog.delivery import replay as delivery

    pytest.importorskip("PIL")
    run = log_every_kind("local", tmp_path)

    class FailsAfterMedia(ClearmlBackend):
        failures = 1

        def log_media(self, ref, media):
            super().log_media(ref, media)
            if FailsAfterMedia.failures and media.kind == "plot":
                FailsAfterMedia.failures -= 1
                raise OSError("killed after writing")

    with pytest.raises(OSError):
        delivery.deliver(FailsAfterMedia(get_settings()), run.path)
    assert delivery.deliver(ClearmlBackend(get_settings()), run.path)
    with zipfile.ZipFile(clearml_dir / f"offline-{run.id}.zip") as z:
        sent = [e for line in z.read("metrics.jsonl").decode().splitlines()
                for e in json.loads(line)]
    plots = [e["metric"] for e in sent if e["type"] == "plot"]
    assert sorted(plots) == sorted(set(plots))  # each once
    assert len([e for e in sent if e["type"] == "training_debug_image"]) == 8


def _comet_uploads(archive: Path) -> list[tuple[dict[str, Any], bytes]]:
    """The archive's file uploads: (message payload, the file's bytes)."""
    with zipfile.ZipFile(archive) as z:
        messages = [json.loads(line) for line in z.read("messages.json").decode().splitlines()]
        return [(m["payload"], z.read(m["payload"]["file_path"])) for m in messages
                if m["type"] == "file_upload"]


def test_comet_media_in_the_offline_archive(comet_offline: Path, tmp_path: Path,
                                            no_network: list):
    pytest.importorskip("PIL")
    run = log_every_kind("local,comet", tmp_path)
    [archive] = comet_offline.glob("*.zip")
    uploads = _comet_uploads(archive)

    def of(kind: str) -> dict[str, list[tuple[dict[str, Any], bytes]]]:
        found: dict[str, list] = {}
        for payload, data in uploads:
            if payload["upload_type"] == kind:
                params = payload["additional_params"]
                found.setdefault(params.get("figName") or params["fileName"], []).append(
                    (params, data))
        return found

    images = of("visualization")
    assert [p["step"] for p, _ in images["samples"]] == [0, 1, 1]
    assert [data for _, data in images["samples"]] == local_bytes(run, "samples")
    assert images["training_roc_curve"][0][1] == local_bytes(run, "training_roc_curve")[0]
    [(params, data)] = of("histogram3d")["weights"]
    from comet_ml import Histogram  # imported by the backend already

    histogram = Histogram.from_json(json.loads(data), verbose=False)
    assert params["step"] == 2 and sum(histogram.counts) == 101  # every value, in Comet's bins
    for centre, count in zip((0.125, 0.375, 0.625, 0.875), (25, 25, 25, 26), strict=True):
        assert histogram.counts[histogram.get_bin_index(centre)] == count
    [(params, data)] = of("text-sample")["auto-generated-in-the-backend"]
    assert data.decode() == TEXT and params["step"] == 3
    [(_, data)] = of("confusion-matrix")["training_confusion_matrix/0.json"]
    matrix = json.loads(data)
    assert matrix["matrix"] == MATRIX["matrix"] and matrix["labels"] == MATRIX["labels"]
    [(_, data)] = of("curve")["training_roc_curve"]
    assert json.loads(data)["x"] == ROC["fpr"]
    [(_, data)] = of("asset")["predictions/0.csv"]
    assert data.decode().splitlines() == ["x,y", "1,a|b", "2,c"]


def test_comet_a_media_item_failing_midway_is_resumed_not_repeated(comet_offline: Path,
                                                                   tmp_path: Path):
    from autolog.api import get_settings
    from autolog.backends.comet import CometBackend
    from autolog.delivery import replay as delivery

    pytest.importorskip("PIL")
    run = log_every_kind("local", tmp_path)
    backend = CometBackend(get_settings())
    experiment = backend._experiment
    calls = {"n": 0}

    def failing_once(ref):  # the confusion matrix's second call fails once
        got = experiment(ref)
        original = got.log_confusion_matrix

        def log_confusion_matrix(*args, **kwargs):
            if not calls["n"]:
                calls["n"] += 1
                raise OSError("lost")
            return original(*args, **kwargs)

        got.log_confusion_matrix = log_confusion_matrix
        return got

    backend._experiment = failing_once
    with pytest.raises(OSError):
        delivery.deliver(backend, run.path)
    assert calls["n"] == 1 and delivery.deliver(backend, run.path)  # retried in the process
    uploads = [p["additional_params"] for p, _ in _comet_uploads(
        next(comet_offline.glob("*.zip")))]
    names = [p.get("figName") or p["fileName"] for p in uploads]
    assert names.count("training_confusion_matrix") == 1  # the drawing, once
    assert names.count("training_confusion_matrix/0.json") == 1
