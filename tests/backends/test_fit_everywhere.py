"""A real Keras fit (torch backend) with ``AUTOLOG_BACKEND=local,tensorboard,dvclive,aim``: every
backend holds the params and the metric points of the local store, compared point by point,
each read back with the tracker's own reader (system metrics included), and the images and
weight histograms of the fit."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is imported; never TensorFlow
if os.environ["KERAS_BACKEND"] != "torch":
    pytest.skip("trains on Keras's torch backend", allow_module_level=True)

np = pytest.importorskip("numpy")
pytest.importorskip("torch")
keras = pytest.importorskip("keras")
pytest.importorskip("tensorboard")
pytest.importorskip("aim")

import autolog  # noqa: E402
from autolog.integrations.keras import AutologCallback  # noqa: E402

from .file_readers import (  # noqa: E402
    aim_run_for,
    aim_runs,
    read_aim,
    read_dvclive,
    read_tensorboard,
    same_points,
    tensorboard_accumulator,
    tensorboard_run_dir,
)

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


def _same_param(got: str, want: str) -> bool:
    """Equal as text, or as numbers (TensorBoard's HParams keep numbers as doubles: 1.0 -> 1)."""
    if got == want:
        return True
    try:
        return math.isclose(float(got), float(want), rel_tol=0, abs_tol=0)
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def keras_names():
    """Layer names count per process (dense, dense_1...): leave the next test a fresh count."""
    yield
    keras.backend.clear_session()


def test_keras_fit_reads_back_the_same_everywhere(tensorboard_dir: Path, dvclive_dir: Path,
                                                  aim_repo: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AUTOLOG_SYSTEM_INTERVAL", "0.2")
    rng = np.random.default_rng(0)
    x = rng.random((200, 4), dtype=np.float32)
    y = x.sum(axis=1, keepdims=True)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    autolog.enable(backend="local,tensorboard,dvclive,aim", system_metrics=True,
                   log_histograms=1)
    model.fit(x, y, batch_size=16, epochs=4, verbose=0, validation_split=0.2,
              callbacks=[AutologCallback(log_every_n_steps=1), SampleImages()])
    assert autolog.flush(120)

    [record] = autolog.list_runs()
    # in step order: Keras may call batch callbacks out of order (they are async-safe)
    want = {key: sorted((s, v) for s, v, _ in record.history(key)) for key in record.metric_keys}
    assert "batch/loss" in want and "val_mae" in want
    assert any(key.startswith("system/") for key in want), "system metrics sampled"
    assert len(want["batch/loss"]) == 4 * 10  # 160 training rows / 16 per batch, 4 epochs
    params = {key: str(value) for key, value in record.params.items()}

    tb = read_tensorboard(tensorboard_run_dir(tensorboard_dir, record.id))
    dvc = read_dvclive(dvclive_dir)
    aim = read_aim(aim_run_for(aim_runs(aim_repo), record.id))
    for name, got in (("tensorboard", tb), ("dvclive", dvc), ("aim", aim)):
        assert set(got.metrics) == set(want), name
        for key, points in want.items():
            assert same_points(got.metrics[key], points), (name, key)
        assert set(got.params) == set(params), name
        assert all(_same_param(got.params[k], v) for k, v in params.items()), name
    for name, got in (("tensorboard", tb), ("aim", aim)):
        assert got.tags == dict(record.tags), name
        assert got.status == "FINISHED", name
        times = sorted(t for *_, t in record.history("batch/loss"))
        assert sorted(got.times["batch/loss"]) == times, name
    assert sorted(dvc.times["val_loss"]) == sorted(t for *_, t in record.history("val_loss"))
    assert "model_summary.txt" in tb.artifacts
    media_everywhere(record, tensorboard_run_dir(tensorboard_dir, record.id), dvclive_dir,
                     aim_run_for(aim_runs(aim_repo), record.id))


class SampleImages(keras.callbacks.Callback):
    """Logs an image of the predictions at each epoch's end, into the fit's run."""

    def on_epoch_end(self, epoch, logs=None):
        grey = (np.arange(8 * 8).reshape(8, 8) * (epoch + 1)) % 256
        autolog.log_image("predictions", grey.astype(np.uint8), step=epoch)


def media_everywhere(record, tb_dir: Path, dvclive_dir: Path, aim_run) -> None:
    """The fit's images and weight histograms, as each backend holds them."""
    from aim.storage.context import Context
    from tensorboard.util import tensor_util

    images = record.media_for("predictions")
    assert [m.step for m in images] == [0, 1, 2, 3]
    pngs = [record.artifact_path(m.path).read_bytes() for m in images]
    histograms = {m.key for m in record.media if m.kind == "histogram"}
    assert histograms and all(k.startswith("weights/") for k in histograms)
    key = sorted(histograms)[0]
    counts = [json.loads(record.artifact_path(m.path).read_text())["counts"]
              for m in record.media_for(key)]
    assert len(counts) == 4  # one per epoch

    tb = tensorboard_accumulator(tb_dir)
    assert [(e.step, tensor_util.make_ndarray(e.tensor_proto)[2]) for e in
            tb.Tensors("predictions")] == list(enumerate(pngs))
    assert [tensor_util.make_ndarray(e.tensor_proto)[:, 2].tolist()
            for e in tb.Tensors(key)] == counts

    assert [(dvclive_dir / "plots" / "images" / "predictions" / f"{s}.png").read_bytes()
            for s in range(4)] == pngs
    rows = json.loads((dvclive_dir / "plots" / "custom" / f"{key}.json").read_text())
    assert [r["count"] for r in rows] == counts[-1]  # DVCLive keeps the latest

    sequence = aim_run.get_image_sequence("predictions", Context({}))
    steps, (lists,) = sequence.data.view(["val"]).items_list()
    assert steps == [0, 1, 2, 3]
    assert [np.asarray(images[0].to_pil_image()).tolist() for images in lists] == \
        [((np.arange(64).reshape(8, 8) * (s + 1)) % 256).tolist() for s in range(4)]
    sequence = aim_run.get_distribution_sequence(key, Context({}))
    steps, (distributions,) = sequence.data.view(["val"]).items_list()
    assert steps == [0, 1, 2, 3]
    assert [d.to_np_histogram()[0].tolist() for d in distributions] == counts
