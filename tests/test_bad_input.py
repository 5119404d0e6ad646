"""Bad input gets a clear message, never stops the run, and loses nothing else."""

from __future__ import annotations

import math

import numpy as np
import pytest

import autolog
from autolog import AutologWarning


def _values(record: autolog.RunRecord, key: str) -> list[float]:
    return [v for _, v, _ in record.history(key)]


def test_numpy_and_torch_scalars_are_converted():
    torch = pytest.importorskip("torch")
    with autolog.start_run() as run:
        run.log_metrics({"np32": np.float32(0.5), "np64": np.float64(1.5), "npint": np.int64(3),
                         "arr": np.array([2.5]), "t": torch.tensor(4.5),
                         "t1": torch.tensor([5.5]), "int": 7, "bool": True}, step=0)
    assert autolog.get_run(run.id).metrics == {"np32": 0.5, "np64": 1.5, "npint": 3.0, "arr": 2.5,
                                               "t": 4.5, "t1": 5.5, "int": 7.0, "bool": 1.0}


def test_non_numbers_are_skipped_with_one_warning_naming_the_key():
    with autolog.start_run() as run:
        with pytest.warns(AutologWarning, match="metric 'name'.* str 'adam'"):
            for step in range(3):
                run.log_metrics({"loss": 0.5, "name": "adam"}, step=step)
        with pytest.warns(AutologWarning, match="metric 'none'"):
            run.log_metrics({"none": None, "loss": 0.25}, step=3)
        with pytest.warns(AutologWarning, match="metric 'list'"):
            run.log_metrics({"list": [1, 2], "loss": 0.125}, step=4)
        with pytest.warns(AutologWarning, match="metric 'vector'"):
            run.log_metrics({"vector": np.ones(3)}, step=5)
    record = autolog.get_run(run.id)
    assert _values(record, "loss") == [0.5, 0.5, 0.5, 0.25, 0.125]
    assert set(record.metric_keys) == {"loss"}


def test_nan_and_inf_are_kept():
    with autolog.start_run() as run:
        run.log_metrics({"a": math.nan, "b": math.inf, "c": -math.inf}, step=0)
    metrics = autolog.get_run(run.id).metrics
    assert math.isnan(metrics["a"]) and metrics["b"] == math.inf and metrics["c"] == -math.inf


def test_odd_keys():
    with autolog.start_run() as run:
        with pytest.warns(AutologWarning, match="key 3 .int. was converted to '3'"):
            run.log_metrics({3: 1.0}, step=0)
        with pytest.warns(AutologWarning, match="empty metric key"):
            run.log_metrics({"": 1.0, "ok": 2.0}, step=0)
        with pytest.warns(AutologWarning, match="empty param key"):
            run.log_params({"": 1, "p": 2})
    record = autolog.get_run(run.id)
    assert record.metrics == {"3": 1.0, "ok": 2.0}
    assert record.params == {"p": 2}


def test_params_nested_long_and_odd_values(tmp_path):
    big = "x" * 1_000_000
    with autolog.start_run() as run:
        run.log_params({"model": {"layers": {"n": 3, "act": "relu"}, "dims": (4, 8)},
                        "big": big, "np": np.int64(5), "f": np.float32(0.25), "none": None,
                        "path": tmp_path, "cls": dict, "nan": math.nan})
    params = autolog.get_run(run.id).params
    assert params["model.layers.n"] == 3 and params["model.layers.act"] == "relu"
    assert params["model.dims"] == "[4, 8]"
    assert params["big"] == big
    assert params["np"] == 5 and params["f"] == 0.25 and params["none"] is None
    assert params["path"] == str(tmp_path) and params["cls"] == "builtins.dict"
    assert params["nan"] == "NaN"  # strict JSON in the journal; documented in docs/format.md


def test_missing_artifact_is_a_clear_warning_and_the_run_goes_on(tmp_path):
    with autolog.start_run() as run:
        run.log_metric("before", 1.0)
        with pytest.warns(AutologWarning, match="does not exist"):
            assert run.log_artifact(tmp_path / "nope.txt") is None
        with pytest.warns(AutologWarning, match="must be a relative path inside the run"):
            (tmp_path / "f.txt").write_text("x")
            assert run.log_artifact(tmp_path / "f.txt", name="../escape.txt") is None
        run.log_metric("after", 2.0)
    record = autolog.get_run(run.id)
    assert record.metrics == {"before": 1.0, "after": 2.0} and record.status == "FINISHED"
    assert not (tmp_path / "autolog-runs" / "escape.txt").exists()


def test_bad_step_and_status_are_clear_errors():
    with autolog.start_run() as run:
        with pytest.raises(TypeError, match="step must be an integer"):
            run.log_metrics({"x": 1.0}, step="three")
        run.log_metrics({"x": 1.0}, step=np.int64(4))
        with pytest.raises(ValueError, match="status must be one of FINISHED, FAILED, KILLED"):
            run.end("DONE")
    assert autolog.get_run(run.id).history("x")[0][0] == 4


def test_logging_after_end_warns_and_is_ignored():
    with autolog.start_run() as run:
        run.log_metric("x", 1.0)
    with pytest.warns(AutologWarning, match="has ended"):
        run.log_metric("x", 2.0)
    assert autolog.get_run(run.id).history("x")[0][1] == 1.0


def test_artifact_copy_is_a_snapshot(tmp_path):
    source = tmp_path / "data.txt"
    source.write_text("v1")
    with autolog.start_run() as run:
        run.log_artifact(source)
        source.unlink()
        source.write_text("v2")
        directory = tmp_path / "dir"
        (directory / "sub").mkdir(parents=True)
        (directory / "sub" / "a.txt").write_text("a")
        run.log_artifact(directory, name="tree")
    record = autolog.get_run(run.id)
    assert record.artifact_path("data.txt").read_text() == "v1"
    assert {"data.txt", "tree/sub/a.txt"} <= set(record.artifacts)


def test_unwritable_store_warns_and_training_goes_on(tmp_path, monkeypatch, lenient):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("AUTOLOG_DIR", str(blocker / "runs"))
    with pytest.warns(AutologWarning, match="creating a run in .* failed and was skipped"):
        run = autolog.start_run()
    run.log_metric("x", 1.0)
    run.end()
    assert not run.active
