"""The aim backend, read back with Aim's SDK (indexed as ``aim up`` does, then
``Repo.iter_runs()``): system metrics under Aim's names, the epoch, a resumed delivery."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import autolog
from autolog.api import get_settings
from autolog.backends.aim import AimBackend, aim_metric
from autolog.delivery import replay as delivery

from .file_readers import aim_run_for, aim_runs, read_aim
from .media_items import PIXELS, TEXT, log_every_kind

pytest.importorskip("aim")


def test_system_metrics_and_epochs_under_aims_names(aim_repo: Path):
    autolog.enable(backend="local,aim")
    with autolog.start_run("fit", project="vision") as run:
        run.log_params({"lr": 0.1})
        for step in range(6):
            run.log_metrics({"epoch": float(step // 3), "loss": 1 / (step + 1)}, step=step)
        run.log_metrics({"system/process_cpu_percent": 130.0, "system/memory_percent": 40.0,
                         "system/gpu/0/utilization_percent": 90.0,
                         "system/gpu/0/sm_clock_mhz": 1400.0}, step=0)
    assert autolog.flush(60)

    [aim_run] = aim_runs(aim_repo)
    assert aim_run.experiment == "vision" and aim_run["hparams"] == {"lr": 0.1}
    assert aim_run["autolog"]["status"] == "FINISHED" and not aim_run.active
    by_name = {(m.name, tuple(m.context.to_dict().items())): m for m in aim_run.metrics()}
    assert set(by_name) >= {("__system__cpu", ()), ("__system__memory_percent", ()),
                            ("__system__gpu", (("gpu", 0),)),
                            ("__system__gpu_sm_clock_mhz", (("gpu", 0),))}
    steps, (epochs,) = by_name[("loss", ())].data.view(["epoch"]).items_list()
    assert sorted(zip(steps, epochs, strict=True)) == [(s, s // 3) for s in range(6)]
    assert aim_metric("system/gpu/0/memory_percent") == ("__system__gpu_memory_percent",
                                                         {"gpu": 0})
    local = autolog.get_run(run.id)
    got = read_aim(aim_run)
    assert got.metrics == {k: [(s, v) for s, v, _ in local.history(k)] for k in local.metric_keys}
    assert got.times["loss"] == [t for _, _, t in local.history("loss")]


class FailsAfterTracking(AimBackend):
    """Aim has the batch, the acknowledgement is lost once."""

    failures = 1

    def log_batch(self, run, batch):
        super().log_batch(run, batch)
        if FailsAfterTracking.failures:
            FailsAfterTracking.failures -= 1
            raise OSError("killed after tracking")


def test_a_resumed_delivery_continues_the_same_aim_run(aim_repo: Path):
    with autolog.start_run("resume") as run:  # local only
        for step in range(200):
            run.log_metric("loss", 1 / (step + 1), step=step)
    first = FailsAfterTracking(get_settings())
    with pytest.raises(OSError):
        delivery.deliver(first, run.path)
    first.close()  # the process ends
    assert delivery.deliver(AimBackend(get_settings()), run.path)  # `autolog sync`
    runs = aim_runs(aim_repo)
    assert len(runs) == 1
    got = read_aim(aim_run_for(runs, run.id))
    assert got.metrics["loss"] == [(s, 1 / (s + 1)) for s in range(200)]
    assert got.status == "FINISHED"


def _sequence(aim_run, getter: str, name: str) -> tuple[list[int], list, list[float]]:
    """(steps, values, times) of one of the run's object sequences (context {})."""
    from aim.storage.context import Context

    sequence = getattr(aim_run, getter)(name, Context({}))
    steps, (values, times) = sequence.data.view(["val", "time"]).items_list()
    return steps, values, times


def _pixels(image) -> np.ndarray:
    return np.asarray(image.to_pil_image().convert("RGB"))


def test_media_as_aim_images_distributions_and_texts(aim_repo: Path, tmp_path: Path):
    pytest.importorskip("PIL")
    run = log_every_kind("local,aim", tmp_path)
    aim_run = aim_run_for(aim_runs(aim_repo), run.id)
    local = autolog.get_run(run.id)

    steps, lists, times = _sequence(aim_run, "get_image_sequence", "samples")
    assert steps == [0, 1] and [len(images) for images in lists] == [1, 2]
    assert np.array_equal(_pixels(lists[0][0]), PIXELS)
    assert np.array_equal(_pixels(lists[1][0]), PIXELS[::-1])
    assert np.array_equal(_pixels(lists[1][1]), PIXELS[:, ::-1])  # both images of step 1
    logged = [m.timestamp / 1000 for m in local.media_for("samples")]
    assert times == [logged[0], logged[2]]  # a step's time: its last image's
    _, [[webp]], _ = _sequence(aim_run, "get_image_sequence", "file")
    assert webp.format == "png" and np.array_equal(_pixels(webp), PIXELS)  # no loss
    _, [[drawing]], _ = _sequence(aim_run, "get_image_sequence", "training_roc_curve")
    assert drawing.caption == "roc_curve, auc 0.875"

    steps, [weights], _ = _sequence(aim_run, "get_distribution_sequence", "weights")
    counts, edges = weights.to_np_histogram()
    assert steps == [2] and counts.tolist() == [25, 25, 25, 26]
    assert edges.tolist() == [0, 0.25, 0.5, 0.75, 1]
    _, [binned], _ = _sequence(aim_run, "get_distribution_sequence", "binned")
    counts, edges = binned.to_np_histogram()  # uneven bins: put on even ones by their centres
    assert counts.tolist() == [3, 0, 5] and edges.tolist() == [-1, 0, 1, 2]

    steps, [text], _ = _sequence(aim_run, "get_text_sequence", "generated")
    assert steps == [3] and text.data == TEXT
    _, [table], _ = _sequence(aim_run, "get_text_sequence", "predictions")
    assert table.data.splitlines()[2] == "| 1 | a\\|b |"
    _, [matrix], _ = _sequence(aim_run, "get_text_sequence", "training_confusion_matrix/data")
    assert "| dog | 2 | 7 |" in matrix.data


def test_a_resumed_delivery_tracks_each_media_item_once(aim_repo: Path, tmp_path: Path):
    pytest.importorskip("PIL")
    run = log_every_kind("local", tmp_path)

    class FailsAfterMedia(AimBackend):
        fail_after = {"0.png", "1-1.png"}  # the first image, and the second one of step 1

        def log_media(self, ref, media):
            super().log_media(ref, media)
            if media.key == "samples" and media.path.name in self.fail_after:
                self.fail_after.discard(media.path.name)
                raise OSError("killed after tracking")

    first = FailsAfterMedia(get_settings())
    for _ in range(2):
        with pytest.raises(OSError):
            delivery.deliver(first, run.path)
    first.close()
    assert delivery.deliver(AimBackend(get_settings()), run.path)
    aim_run = aim_run_for(aim_runs(aim_repo), run.id)
    steps, lists, _ = _sequence(aim_run, "get_image_sequence", "samples")
    assert steps == [0, 1] and [len(images) for images in lists] == [1, 2]
