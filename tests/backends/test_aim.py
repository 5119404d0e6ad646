"""The aim backend, read back with Aim's SDK (indexed as ``aim up`` does, then
``Repo.iter_runs()``): system metrics under Aim's names, the epoch, a resumed delivery."""

from __future__ import annotations

from pathlib import Path

import pytest

import autolog
from autolog.api import get_settings
from autolog.backends.aim import AimBackend, aim_metric
from autolog.delivery import replay as delivery

from .file_readers import aim_run_for, aim_runs, read_aim

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
