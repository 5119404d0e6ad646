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


def test_handed_over_dicts_warn_and_skip_as_log_metrics_does():
    """The writer's thread checks a dict handed over (``Run.hand_over_metrics``) as
    ``log_metrics`` checks one: the same warnings, the same points kept."""
    torch = pytest.importorskip("torch")
    with pytest.warns(AutologWarning) as caught, autolog.start_run() as run:
        run.hand_over_metrics({"loss": torch.tensor(0.5), 3: 1.0, "": 2.0, "name": "adam",
                               "vector": torch.ones(3), "nan": math.nan}, 0)
    messages = " | ".join(str(w.message) for w in caught)
    for part in ("key 3 (int) was converted to '3'", "empty metric key", "metric 'name'",
                 "metric 'vector'"):
        assert part in messages
    metrics = autolog.get_run(run.id).metrics
    assert set(metrics) == {"loss", "3", "nan"} and metrics["loss"] == 0.5
    assert metrics["3"] == 1.0 and math.isnan(metrics["nan"])


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


def test_bad_step_warns_and_status_is_a_clear_error():
    with autolog.start_run() as run:
        with pytest.warns(AutologWarning, match="step must be an integer, got str 'three'"):
            run.log_metrics({"x": 1.0}, step="three")
        run.log_metrics({"x": 1.0}, step=np.int64(4))
        with pytest.raises(ValueError, match="status must be one of FINISHED, FAILED, KILLED"):
            run.end("DONE")
    assert [s for s, _, _ in autolog.get_run(run.id).history("x")] == [0, 4]


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


# -- issue 15, item 8: no logging call raises on bad input ----------------------------------------


def test_huge_ints_and_unusable_steps_warn_and_never_raise():
    """Item 8: ``10**400`` and ``step='3'`` / ``'abc'`` / NaN used to raise."""
    with autolog.start_run() as run:
        with pytest.warns(AutologWarning, match="metric 'big' got 1000.*beyond a 64-bit float"):
            run.log_metrics({"big": 10**400}, step=0)
        with pytest.warns(AutologWarning, match="metric 'small' got -1000"):
            run.log_metrics({"small": -(10**400)}, step=0)
        with pytest.warns(AutologWarning, match="got str '3'; it was logged as step 3"):
            run.log_metrics({"x": 1.0}, step="3")
        with pytest.warns(AutologWarning, match="got str 'abc'; the points were logged at"):
            run.log_metrics({"x": 2.0}, step="abc")
        with pytest.warns(AutologWarning, match="got float nan"):
            run.log_metrics({"x": 3.0}, step=math.nan)
        with pytest.warns(AutologWarning, match="beyond a 64-bit integer"):
            run.log_metrics({"far": 1.0}, step=2**80)
        with pytest.warns(AutologWarning, match="takes a mapping"):
            run.log_metrics([("x", 1.0)])
    record = autolog.get_run(run.id)
    assert record.metrics["big"] == math.inf and record.metrics["small"] == -math.inf
    assert [(s, v) for s, v, _ in record.history("x")] == [(3, 1.0), (0, 2.0), (1, 3.0)]
    assert record.history("far")[0][0] == 2**63 - 1


# -- issue 15, item 9: silent changes warn ---------------------------------------------------------


def test_silent_changes_warn():
    """Item 9: a float or bool step, two keys that land under one name, and a nested param
    that collides with a dotted one each say what happened."""
    with autolog.start_run() as run:
        with pytest.warns(AutologWarning, match="got float 1.5; it was logged as step 1"):
            run.log_metrics({"a": 1.0}, step=1.5)
        with pytest.warns(AutologWarning, match="got bool True; it was logged as step 1"):
            run.log_metrics({"b": 1.0}, step=True)
        with pytest.warns(AutologWarning) as caught:
            run.log_metrics({5: 1.0, "5": 2.0}, step=0)
        assert any("metric keys 5 (int) and '5' are both logged as '5'" in str(w.message)
                   for w in caught)
        with pytest.warns(AutologWarning, match="param 'a.b' is given twice"):
            run.log_params({"a": {"b": 1}, "a.b": 2})
    record = autolog.get_run(run.id)
    assert record.params == {"a.b": 2}
    assert [(s, v) for s, v, _ in record.history("5")] == [(0, 1.0), (0, 2.0)]


class _Hostile:
    """Raises from everything a logging call might ask of it."""

    def __float__(self):
        raise RuntimeError("no float")

    def __str__(self):
        raise RuntimeError("no str")

    def __repr__(self):
        raise RuntimeError("no repr")

    def __index__(self):
        raise RuntimeError("no index")


def _hostile_values():
    from hypothesis import strategies as st

    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(), st.integers(min_value=2**63),
        st.floats(allow_nan=True, allow_infinity=True), st.text(), st.binary(),
        st.just(10**400), st.just(-(10**400)), st.builds(_Hostile), st.builds(object),
        st.just(np.float32(1.5)), st.just(np.array([1.0, 2.0])), st.just(np.int64(-3)),
        st.just("bad\udce9"), st.just("\ud800"), st.just(math.nan))
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.one_of(st.text(), st.integers()),
                                                     inner, max_size=3)), max_leaves=8)


def test_no_logging_call_raises_on_hostile_input(tmp_path, lenient, monkeypatch):
    """Item 8: every public logging entry point, fed hypothesis-generated hostile keys, values,
    steps, names and paths, raises nothing (outside strict mode) and loses nothing logged
    before."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    values = _hostile_values()
    keys = st.one_of(st.text(), st.integers(), st.just("bad\udce9"), st.just(""), st.none(),
                     st.builds(_Hostile), st.floats())
    mappings = st.one_of(st.dictionaries(keys, values, max_size=4), values)
    names = st.one_of(st.text(max_size=20), st.none(), st.just("../escape"), st.just("a\x00b"),
                      st.just("bad\udce9.txt"), st.integers())
    calls = st.one_of(
        st.tuples(st.just("log_metrics"), mappings, st.one_of(st.none(), values)),
        st.tuples(st.just("log_metric"), keys, values, st.one_of(st.none(), values)),
        st.tuples(st.just("log_params"), mappings),
        st.tuples(st.just("log_param"), keys, values),
        st.tuples(st.just("set_tags"), mappings),
        st.tuples(st.just("set_tag"), keys, values),
        st.tuples(st.just("log_text"), values, names),
        st.tuples(st.just("log_dict"), values, names),
        st.tuples(st.just("log_artifact"), st.one_of(names, st.just(tmp_path / "f.txt")),
                  names),
        st.tuples(st.just("module"), mappings, st.one_of(st.none(), values)))
    (tmp_path / "f.txt").write_text("x")
    work = tmp_path / "cwd"  # a relative name ("", ".", "src") is a path here, not in the repo
    work.mkdir()
    monkeypatch.chdir(work)
    run = autolog.start_run("hostile")
    run.log_metrics({"anchor": 1.0}, step=0)
    run.log_params({"anchor": 1})

    @settings(max_examples=400, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(calls, min_size=1, max_size=5))
    def fuzz(batch):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name, *args in batch:
                if name == "module":
                    autolog.log_metrics(*args)
                    autolog.log_params(args[0]) if isinstance(args[0], dict) else None
                    autolog.set_tags(args[0]) if isinstance(args[0], dict) else None
                else:
                    getattr(run, name)(*args)

    fuzz()
    run.end()
    record = autolog.get_run(run.id)
    assert record.status == "FINISHED"
    assert record.history("anchor")[0][:2] == (0, 1.0)
    assert "anchor" in record.params


def test_a_directory_holding_the_store_is_logged_without_the_store(tmp_path, monkeypatch):
    """``run.log_artifact(".")`` in a project whose runs are in ``./autolog-runs`` (the default
    store): the project is copied, the store is not copied into itself."""
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "train.py").write_text("print('hi')\n")
    monkeypatch.chdir(project)
    monkeypatch.setenv("AUTOLOG_DIR", str(project / "autolog-runs"))
    with autolog.start_run("whole project") as run:
        assert run.log_artifact(".", name="project") == "project"
    record = autolog.get_run(run.id, project / "autolog-runs")
    assert "project/src/train.py" in record.artifacts
    assert not [a for a in record.artifacts if "autolog-runs" in a]
