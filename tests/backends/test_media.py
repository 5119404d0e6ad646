"""Media delivered to every backend: MLflow (images with steps, tables, plots, texts), W&B offline
(``wandb.Image``/``Histogram``/``Table``/``Html`` in the run file), our server (files + media
records), and a backend without the concept (the files as artifacts)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

import autolog
from autolog.backends.base import Backend, Batch, RunRef
from autolog.backends.wandb import STEP_KEY
from autolog.testing import registered

from .conftest import MLFLOW_WARNINGS, MlflowTarget, WandbTarget

pytestmark = [pytest.mark.filterwarnings(f) for f in MLFLOW_WARNINGS]
pytest.importorskip("PIL")

PIXELS = np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3)
MATRIX = {"labels": ["cat", "dog"], "matrix": [[5, 1], [2, 7]]}


def log_media(backend: str) -> autolog.Run:
    autolog.enable(backend=backend)
    with autolog.start_run("media") as run:
        run.log_image("samples", PIXELS, step=0)
        run.log_image("samples", PIXELS[::-1], step=1)
        run.log_histogram("weights", np.linspace(0, 1, 101), step=2, bins=4)
        run.log_table("predictions", [{"x": 1, "y": "a"}, {"x": 2, "y": "b"}])
        run.log_text("generated", "once upon a time", step=3)
        run.log_plot("training_confusion_matrix", "confusion_matrix", MATRIX)
        run.log_metric("loss", 0.5, step=0)
    assert autolog.flush(60)
    return run


def test_mlflow_shows_images_per_step_tables_plots_and_texts(mlflow_sqlite: MlflowTarget):
    run = log_media("local,mlflow")
    remote = mlflow_sqlite.run_for(run.id)
    run_id = remote.info.run_id
    files = mlflow_sqlite.artifacts(run_id)
    images = [f for f in files if f.startswith("images/samples") and f.endswith(".png")]
    assert len(images) == 2 and any("+step+1+" in f for f in images), files
    assert {"tables/predictions.json", "plots/training_confusion_matrix.png",
            "plots/training_confusion_matrix.json", "text/generated/3.txt",
            "media/histogram/weights/2.json"} <= set(files)
    logged = json.loads(remote.data.tags["mlflow.loggedArtifacts"])
    assert {"path": "tables/predictions.json", "type": "table"} in logged
    client = mlflow_sqlite.client
    table = client.load_table(mlflow_sqlite.experiment_id, "tables/predictions.json",
                              run_ids=[run_id])
    assert table[["x", "y"]].values.tolist() == [[1, "a"], [2, "b"]]
    text = Path(client.download_artifacts(run_id, "text/generated/3.txt")).read_text()
    assert text == "once upon a time"
    data = json.loads(Path(client.download_artifacts(
        run_id, "plots/training_confusion_matrix.json")).read_text())
    assert data["matrix"] == MATRIX["matrix"]


def test_wandb_offline_records_images_histograms_tables_and_html(wandb_offline: WandbTarget):
    run = log_media("local,wandb")
    got = wandb_offline.read(run.id)

    def value(key: str, step: int) -> dict[str, Any]:
        """The media value logged under ``key`` at ``step`` (the reader flattens its fields
        as ``key/field``)."""
        rows = [row for row in got.history if row.get(STEP_KEY) == step
                and f"{key}/_type" in row]
        assert len(rows) == 1, (key, step, got.history)
        return {k[len(key) + 1:]: v for k, v in rows[0].items() if k.startswith(f"{key}/")}

    assert value("samples", 0)["_type"] == "image-file"
    assert (value("samples", 1)["width"], value("samples", 1)["height"]) == (12, 10)
    histogram = value("weights", 2)
    assert histogram["_type"] == "histogram" and histogram["values"] == [25, 25, 25, 26]
    assert np.allclose(histogram["bins"], [0, 0.25, 0.5, 0.75, 1])
    assert value("predictions", 0)["_type"] == "table-file"
    assert value("generated", 3)["_type"] == "html-file"
    assert value("training_confusion_matrix", 0)["_type"] == "image-file"
    assert value("training_confusion_matrix/data", 0)["_type"] == "table-file"
    assert got.metric("loss", STEP_KEY) == [(0, 0.5)]


def test_the_server_stores_the_files_and_lists_the_media(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("fastapi")
    from autolog.backends.http import ServerClient

    from ..server.live import LiveServer

    live = LiveServer(f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "server").start()
    try:
        token = live.token(scope="write")
        monkeypatch.setenv("AUTOLOG_HTTP_URL", live.url)
        monkeypatch.setenv("AUTOLOG_HTTP_TOKEN", token)
        run = log_media("local,http")
        local = autolog.get_run(run.id)
        with ServerClient(live.url, token) as client:
            media = client.media(run.id)
            images = client.media(run.id, key="samples")
            plot = client.media(run.id, kind="plot")[0]
            image_bytes = client.download(run.id, images[1]["path"])
            drawing = client.download(run.id, plot["image"])
    finally:
        live.stop()
    assert sorted((m["kind"], m["key"], m["step"]) for m in media) == [
        ("histogram", "weights", 2), ("image", "samples", 0), ("image", "samples", 1),
        ("plot", "training_confusion_matrix", 0), ("table", "predictions", 0),
        ("text", "generated", 3)]
    assert [m["step"] for m in images] == [0, 1]
    assert images[1]["meta"] == {"width": 12, "height": 10, "channels": 3, "format": "png"}
    assert image_bytes == local.artifact_path(local.media_for("samples")[1].path).read_bytes()
    assert drawing.startswith(b"\x89PNG") and plot["meta"]["plot"] == "confusion_matrix"


class FilesOnly(Backend):
    """A backend that knows files, not media: it gets each media item's files."""

    name = "filesonly"
    files: ClassVar[dict[str, bytes]] = {}

    def start_run(self, run: RunRef) -> None:
        pass

    def log_batch(self, run: RunRef, batch: Batch) -> None:
        pass

    def end_run(self, run: RunRef, status: str, end_time: int) -> None:
        pass

    def log_artifact(self, run: RunRef, local_path: Path, name: str) -> None:
        self.files[name] = local_path.read_bytes()


def test_a_backend_without_media_gets_their_files_as_artifacts():
    with registered(FilesOnly):
        run = log_media("local,filesonly")
    local = autolog.get_run(run.id)
    want: dict[str, Any] = {}
    for item in local.media:
        want[item.path] = local.artifact_path(item.path).read_bytes()
        if item.image:
            want[item.image] = local.artifact_path(item.image).read_bytes()
    assert {k: v for k, v in FilesOnly.files.items() if k.startswith("media/")} == want
    assert len(want) == 7  # 6 items, the plot with its drawing
