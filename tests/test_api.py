from __future__ import annotations

import math
import threading

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


# -- issue 15, item 9: the active run is per thread ------------------------------------------------


def _in_thread(target, *args):
    out: dict = {}

    def body():
        out["result"] = target(*args)

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(60)
    return out.get("result")


def test_a_run_started_in_another_thread_is_not_a_child_of_this_threads_run():
    """Item 9: a second thread's run was the child of the first thread's run."""
    with autolog.start_run("main") as main:
        def other():
            with autolog.start_run("other") as run:
                assert autolog.active_run() is run
                with autolog.start_run("nested") as nested:
                    pass
            return run, nested

        other_run, nested = _in_thread(other)
        assert autolog.active_run() is main
    assert other_run.parent_id is None and nested.parent_id == other_run.id
    assert autolog.get_run(other_run.id).parent_id is None
    assert autolog.active_run() is None


def test_run_activate_shares_a_run_with_another_thread():
    """Item 9: ``with run.activate():`` makes a run the active one of a worker thread, without
    ending it; ``start_run(parent=run)`` makes a child there."""
    with autolog.start_run("main") as main:
        def worker():
            assert autolog.active_run() is None
            with main.activate():
                autolog.log_metric("from_worker", 1.0, step=0)
                with autolog.start_run("child") as child:
                    pass
            assert autolog.active_run() is None
            with autolog.start_run("explicit", parent=main) as explicit:
                pass
            return child, explicit

        child, explicit = _in_thread(worker)
        autolog.log_metric("from_main", 2.0, step=0)
    record = autolog.get_run(main.id)
    assert record.metrics == {"from_worker": 1.0, "from_main": 2.0}
    assert record.status == "FINISHED"
    assert child.parent_id == main.id and explicit.parent_id == main.id


def test_logging_from_a_thread_without_a_run_warns_and_starts_its_own():
    """Item 9: module-level logging in a thread with no active run starts a run there, and says
    how to log into the other thread's run instead."""
    with autolog.start_run("main") as main:
        def worker():
            with pytest.warns(autolog.AutologWarning, match="the active run is per thread"):
                autolog.log_metric("x", 1.0)
            run = autolog.active_run()
            run.end()
            return run

        implicit = _in_thread(worker)
    assert implicit.id != main.id and implicit.parent_id is None
    assert autolog.get_run(implicit.id).metrics == {"x": 1.0}
    assert autolog.get_run(main.id).metrics == {}


def test_a_run_ended_by_another_thread_leaves_every_threads_stack():
    run = autolog.start_run("shared")

    def worker():
        with run.activate():
            return autolog.active_run()

    assert _in_thread(worker) is run
    _in_thread(run.end)
    assert autolog.active_run() is None


def test_a_pickled_object_of_the_training_script_is_the_load_error(tmp_path, store, monkeypatch):
    """Item 16, the generic pickle flavour."""
    from .helpers import class_in_main, trained_in_a_script

    definition = "class Table:\n    def __init__(self):\n        self.rows = [1, 2]\n"
    run_id = trained_in_a_script(tmp_path, store, definition,
                                 "with autolog.start_run() as run:\n"
                                 "    run.log_model(Table(), 'table')")
    with pytest.raises(autolog.ModelLoadError, match=r"__main__\.Table is not importable here"):
        autolog.load_model(run_id, name="table")
    class_in_main(monkeypatch, tmp_path, "Table")
    assert autolog.load_model(run_id, name="table").rows == [1, 2]
