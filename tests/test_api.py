from __future__ import annotations

import math

import pytest

import autolog

from .helpers import only_run


def test_round_trip(tmp_path):
    artifact = tmp_path / "notes.txt"
    artifact.write_text("hello")
    with autolog.start_run("first", project="p1", tags={"team": "vision"}) as run:
        run.log_params({"lr": 0.1, "optimizer": {"name": "adam", "betas": [0.9, 0.99]}})
        for step in range(5):
            run.log_metrics({"loss": 1 / (step + 1), "acc": step / 10}, step=step)
        run.log_artifact(artifact)
    record = autolog.get_run(run.id)
    assert (record.id, record.name, record.project, record.status) == (run.id, "first", "p1",
                                                                       "FINISHED")
    assert record.params == {"lr": 0.1, "optimizer.name": "adam", "optimizer.betas": "[0.9, 0.99]"}
    assert record.tags["team"] == "vision"
    assert [(s, v) for s, v, _ in record.history("loss")] == [(i, 1 / (i + 1)) for i in range(5)]
    assert record.metrics == {"loss": 0.2, "acc": 0.4}
    assert "notes.txt" in record.artifacts
    assert record.artifact_path("notes.txt").read_text() == "hello"
    assert record.start_time <= record.end_time
    assert [r.id for r in autolog.list_runs(project="p1")] == [run.id]


def test_nan_and_infinities_round_trip():
    with autolog.start_run() as run:
        for i, value in enumerate([math.nan, math.inf, -math.inf, 1.5]):
            run.log_metric("x", value, step=i)
    values = [v for _, v, _ in autolog.get_run(run.id).history("x")]
    assert math.isnan(values[0]) and values[1:] == [math.inf, -math.inf, 1.5]


def test_module_functions_start_a_run_when_none_is_active():
    autolog.log_metric("loss", 0.5)
    autolog.log_params({"a": 1})
    run = autolog.active_run()
    assert run is not None
    autolog.end_run()
    assert autolog.active_run() is None
    record = only_run()
    assert record.params == {"a": 1} and record.metrics == {"loss": 0.5}


def test_failed_and_killed_status():
    with pytest.raises(ZeroDivisionError), autolog.start_run() as failed:
        1 / 0  # noqa: B018
    with pytest.raises(KeyboardInterrupt), autolog.start_run() as killed:
        raise KeyboardInterrupt
    assert autolog.get_run(failed.id).status == "FAILED"
    assert autolog.get_run(killed.id).status == "KILLED"
