"""The MLflow backend, read back with ``MlflowClient`` from a sqlite store and a real server."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import autolog
from autolog.backends.base import Batch, Metric, RunRef
from autolog.backends.mlflow import TAG_MAP, MlflowBackend, mlflow_key
from autolog.cli import main as cli_main

from ..helpers import clean_env, crashed_run
from .conftest import MLFLOW_WARNINGS, MlflowTarget

mlflow = pytest.importorskip("mlflow")

pytestmark = [pytest.mark.filterwarnings(f) for f in MLFLOW_WARNINGS]

#: MLflow 3 keeps models as LoggedModels, outputs of the run; MLflow 2 in the run's artifacts
LOGGED_MODELS = hasattr(mlflow.MlflowClient, "create_logged_model")


def model_uri(target: MlflowTarget, remote, name: str) -> str:
    """The URI MLflow loads the model ``name`` of run ``remote`` from, checking where it is."""
    if not LOGGED_MODELS:
        assert f"{name}/MLmodel" in target.artifacts(remote.info.run_id)
        return f"runs:/{remote.info.run_id}/{name}"
    [output] = remote.outputs.model_outputs
    logged = target.client.get_logged_model(output.model_id)
    assert logged.name == name and logged.source_run_id == remote.info.run_id
    return f"models:/{output.model_id}"


def _delivered(run: autolog.Run) -> None:
    assert autolog.flush(60), "the mlflow backend did not take everything"


def _cursor(run_id: str, store: Path) -> dict:
    [path] = (store / run_id / "delivery").glob("mlflow-*.json")
    return json.loads(path.read_text())


def test_key_mapping():
    assert mlflow_key("train/loss") == "train/loss"
    assert mlflow_key("val acc-1.x_y") == "val acc-1.x_y"
    assert mlflow_key("odd@key#1") == "odd_key_1"
    assert mlflow_key("/a//b/") == "a/b"
    assert mlflow_key("../up/./here") == "__/up/_/here"
    long_a, long_b = "k" * 300 + "a", "k" * 300 + "b"
    assert len(mlflow_key(long_a)) == 250
    assert mlflow_key(long_a) != mlflow_key(long_b)
    assert mlflow_key("système") == "système"


def test_cursor_key_depends_on_the_tracking_uri(monkeypatch):
    settings = autolog.api.get_settings()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://one:5000")
    one = MlflowBackend(settings).cursor_key()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://two:5000/")
    two = MlflowBackend(settings).cursor_key()
    assert one != two and one.startswith("mlflow-") and len(one) == len("mlflow-") + 8
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://two:5000")
    assert MlflowBackend(settings).cursor_key() == two


@pytest.mark.parametrize("where", ["sqlite", "server"])
def test_round_trip(where, request, tmp_path, store):
    target: MlflowTarget = request.getfixturevalue(f"mlflow_{where}")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    folder = tmp_path / "plots"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    autolog.enable(backend="local,mlflow")
    with autolog.start_run("mapped", tags={"team": "vision", "odd tag!": "x"}) as run:
        run.log_params({"lr": 0.1, "optimizer": {"name": "adam"}, "odd@key": 1,
                        "long": "v" * 7000})
        for step in range(2500):  # several log_batch calls: 1000 metrics per call at most
            run.log_metrics({"loss": 1 / (step + 1), "acc": step / 2500}, step=step)
        run.log_metrics({"system/cpu_percent": 12.5})
        for i, value in enumerate([math.nan, math.inf, 1.5]):
            run.log_metric("odd", value, step=i)
        run.log_artifact(notes)
        run.log_artifact(folder, "plots")
    _delivered(run)
    remote = target.run_for(run.id)
    assert remote.info.run_name == "mapped"
    assert remote.info.status == "FINISHED"
    assert remote.info.start_time == autolog.get_run(run.id).start_time
    params = remote.data.params
    assert params["lr"] == "0.1" and params["optimizer.name"] == "adam"
    assert params["odd_key"] == "1"
    assert len(params["long"]) == 6000 and "autolog/params/long.txt" in params["long"]
    tags = remote.data.tags
    assert tags["team"] == "vision" and tags["odd tag_"] == "x"
    assert tags["autolog.run_id"] == run.id
    # autolog's context tags are also set under the names MLflow's UI shows
    assert tags["mlflow.source.name"] == tags["autolog.source.entry_point"]
    assert tags["mlflow.user"] == tags["autolog.user"]
    assert all(tags[theirs] == tags[ours] for ours, theirs in TAG_MAP.items() if ours in tags)
    loss = target.history(remote.info.run_id, "loss")
    assert loss == [(s, 1 / (s + 1)) for s in range(2500)]
    assert len(target.history(remote.info.run_id, "acc")) == 2500
    assert target.history(remote.info.run_id, "system/cpu_percent") == [(0, 12.5)]
    odd = target.history(remote.info.run_id, "odd")
    # MLflow keeps NaN and stores infinities as the largest finite double
    assert math.isnan(odd[0][1]) and odd[1][1] == 1.7976931348623157e308 and odd[2][1] == 1.5
    files = target.artifacts(remote.info.run_id)
    assert {"notes.txt", "plots/a.txt", "autolog/params/long.txt"} <= set(files)
    full = target.client.download_artifacts(remote.info.run_id, "autolog/params/long.txt",
                                            str(tmp_path))
    assert Path(full).read_text() == "v" * 7000


def test_nested_runs_and_status(mlflow_sqlite):
    # the children end, and are delivered, before their parent's journal is first written
    autolog.enable(backend="local,mlflow")
    with autolog.start_run("parent") as parent:
        with autolog.start_run("child") as child:
            child.log_metric("x", 1.0)
        with pytest.raises(ZeroDivisionError), autolog.start_run("broken"):
            1 / 0  # noqa: B018
    with pytest.raises(KeyboardInterrupt), autolog.start_run("stopped"):
        raise KeyboardInterrupt
    assert autolog.flush(60)
    runs = {r.info.run_name: r for r in mlflow_sqlite.runs()}
    assert runs["child"].data.tags["mlflow.parentRunId"] == runs["parent"].info.run_id
    assert runs["broken"].data.tags["mlflow.parentRunId"] == runs["parent"].info.run_id
    assert {name: r.info.status for name, r in runs.items()} == {
        "parent": "FINISHED", "child": "FINISHED", "broken": "FAILED", "stopped": "KILLED"}
    assert runs["parent"].data.tags["autolog.run_id"] == parent.id
    assert runs["child"].data.tags["autolog.run_id"] == child.id


def test_a_changed_param_keeps_its_first_value_and_the_change_is_tagged(mlflow_sqlite, store):
    autolog.enable(backend="local,mlflow")
    with autolog.start_run() as run:
        run.log_params({"lr": 0.1, "epochs": 3})
        assert autolog.flush(60)
        run.log_params({"lr": 0.01, "epochs": 3})
    assert autolog.flush(60)
    remote = mlflow_sqlite.run_for(run.id)
    assert remote.data.params == {"lr": "0.1", "epochs": "3"}
    assert remote.data.tags["autolog.param_changed.lr"] == "0.01"
    assert "autolog.param_changed.epochs" not in remote.data.tags
    # what was logged is in the delivery state, so a later process knows it too
    assert set(_cursor(run.id, store)["state"]["params"]) == {"lr", "epochs"}


@pytest.mark.parametrize("where", ["sqlite", "server"])
def test_sklearn_model_is_a_real_mlflow_model(where, request):
    target: MlflowTarget = request.getfixturevalue(f"mlflow_{where}")
    pytest.importorskip("sklearn")
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 4))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    model = LogisticRegression().fit(x, y)
    autolog.enable(backend="local,mlflow", frameworks=[])
    with autolog.start_run() as run:
        spec = run.log_model(model, "classifier")
    assert spec is not None and spec["flavor"] in ("sklearn", "pickle")
    assert autolog.flush(120)
    remote = target.run_for(run.id)
    uri = model_uri(target, remote, "classifier")
    mlflow.set_tracking_uri(target.uri)
    try:
        loaded = mlflow.sklearn.load_model(uri)
        by_run = mlflow.sklearn.load_model(f"runs:/{remote.info.run_id}/classifier")
    finally:
        mlflow.set_tracking_uri(None)
    assert (loaded.predict(x) == model.predict(x)).all()
    assert (by_run.predict_proba(x) == model.predict_proba(x)).all()


def test_a_model_mlflow_has_no_flavour_for_is_sent_as_files(mlflow_sqlite):
    autolog.enable(backend="local,mlflow")
    with autolog.start_run() as run:
        run.log_model({"weights": [1, 2, 3]}, "table")  # the generic pickle flavour
    assert autolog.flush(60)
    remote = mlflow_sqlite.run_for(run.id)
    assert {"table/model.pkl", "table/autolog-model.json"} <= set(
        mlflow_sqlite.artifacts(remote.info.run_id))
    if LOGGED_MODELS:
        assert not remote.outputs.model_outputs
    assert "table/MLmodel" not in mlflow_sqlite.artifacts(remote.info.run_id)


def test_sync_to_mlflow_publishes_a_local_run_once(mlflow_sqlite, store, capsys):
    with autolog.start_run("offline") as run:  # the local backend alone
        run.log_params({"seed": 7})
        for step in range(50):
            run.log_metric("loss", step * 0.5, step=step)
    assert not (store / run.id / "delivery").exists()
    assert cli_main(["sync", "--to", "mlflow"]) == 0
    assert cli_main(["sync", "--to", "mlflow", run.id]) == 0  # again: nothing to do
    remote = mlflow_sqlite.run_for(run.id)
    assert remote.info.status == "FINISHED" and remote.data.params == {"seed": "7"}
    assert mlflow_sqlite.history(remote.info.run_id, "loss") == [(s, s * 0.5) for s in range(50)]


def test_sync_ends_a_crashed_run_failed_and_tagged_crashed(mlflow_sqlite, store):
    run_id = crashed_run(store, steps=300)
    assert cli_main(["sync", "--to", "mlflow", run_id]) == 0
    remote = mlflow_sqlite.run_for(run_id)
    assert remote.info.status == "FAILED" and remote.data.tags["autolog.status"] == "CRASHED"
    journal = Path(autolog.get_run(run_id).path) / "events.jsonl"
    assert remote.info.end_time == int(journal.stat().st_mtime * 1000)
    assert remote.data.params == {"lr": "0.1"} and remote.data.tags["team"] == "speech"
    assert mlflow_sqlite.history(remote.info.run_id, "loss") == [
        (i, 1.0 / (i + 1)) for i in range(300)]


def test_sync_delivers_a_child_before_its_parent(mlflow_sqlite):
    with autolog.start_run("parent") as parent:
        with autolog.start_run("child") as child:
            child.log_metric("x", 1.0)
        parent.log_metric("y", 2.0)
    assert cli_main(["sync", "--to", "mlflow", child.id]) == 0  # the parent is created for it
    assert cli_main(["sync", "--to", "mlflow", parent.id]) == 0  # and found again here
    runs = {r.info.run_name: r for r in mlflow_sqlite.runs()}
    assert set(runs) == {"parent", "child"}
    assert runs["child"].data.tags["mlflow.parentRunId"] == runs["parent"].info.run_id
    assert runs["parent"].info.status == "FINISHED"
    assert mlflow_sqlite.history(runs["parent"].info.run_id, "y") == [(0, 2.0)]


class _FailingClient:
    """A real MlflowClient whose ``log_batch`` fails once, after ``ok`` successful calls."""

    def __init__(self, client, ok: int):
        self._client = client
        self._left = ok

    def __getattr__(self, name):
        return getattr(self._client, name)

    def log_batch(self, *args, **kwargs):
        if self._left == 0:
            self._left = -1
            raise ConnectionError("the server went away")
        self._left -= 1
        return self._client.log_batch(*args, **kwargs)


def _ref(store: Path) -> RunRef:
    run_dir = store / ("ab" * 16)
    run_dir.mkdir(parents=True)
    start = {"t": "start", "id": "ab" * 16, "name": "retried", "project": "p", "time": 1000}
    (run_dir / "events.jsonl").write_text(json.dumps(start) + "\n")
    return RunRef(run_dir, start, {}, "mlflow-test")


def test_a_batch_retried_after_failing_midway_is_stored_once(mlflow_sqlite, store):
    settings = autolog.api.get_settings()
    backend = MlflowBackend(settings)
    ref = _ref(store)
    backend.start_run(ref)
    batch = Batch(100)
    batch.params = {"a": 1}
    batch.metrics = [Metric("loss", float(i), i, 1000 + i) for i in range(4500)]
    batch.journal_range = (100, 900)
    backend._client = _FailingClient(backend.client, ok=2)
    with pytest.raises(ConnectionError):
        backend.log_batch(ref, batch)  # 2 of 5 calls stored
    backend.log_batch(ref, batch)  # the same process retries
    fresh = MlflowBackend(settings)  # and `autolog sync` in another process, once more
    fresh.log_batch(ref, batch)
    run_id = ref.state["run_id"]
    history = mlflow_sqlite.history(run_id, "loss")
    assert history == [(i, float(i)) for i in range(4500)]
    tags = mlflow_sqlite.client.get_run(run_id).data.tags
    assert tags["autolog.delivered"] == "100-900:5/5"


def test_xgboost_booster_is_an_mlflow_xgboost_model(mlflow_sqlite):
    xgb = pytest.importorskip("xgboost")
    import numpy as np

    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 3))
    y = (x[:, 0] > 0).astype(float)
    booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(x, label=y), 4)
    autolog.enable(backend="local,mlflow", frameworks=[])
    with autolog.start_run() as run:
        assert run.log_model(booster)["flavor"] == "xgboost"
    assert autolog.flush(120)
    uri = model_uri(mlflow_sqlite, mlflow_sqlite.run_for(run.id), "model")
    mlflow.set_tracking_uri(mlflow_sqlite.uri)
    try:
        loaded = mlflow.xgboost.load_model(uri)
    finally:
        mlflow.set_tracking_uri(None)
    assert (loaded.predict(xgb.DMatrix(x)) == booster.predict(xgb.DMatrix(x))).all()


def test_a_non_utf8_byte_in_argv_loses_no_run(tmp_path, store, mlflow_sqlite):
    """Item 2: ``python train.py --data $'/data/caf\\xe9.csv'`` (a Latin-1 file name): the start
    event and the context land, and ``autolog sync`` delivers the run to MLflow."""
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent("""
        import sys, autolog
        with autolog.start_run("latin1") as run:
            run.log_params({"data": sys.argv[2]})
            run.log_metric("loss", 0.5, step=0)
        print(run.id)
    """))
    env = clean_env(store, AUTOLOG_BACKEND="local")
    done = subprocess.run([sys.executable, str(script), "--data", b"/data/caf\xe9.csv"],
                          env=env, capture_output=True, timeout=120, check=True)
    run_id = done.stdout.decode().strip()
    record = autolog.get_run(run_id)
    assert record.status == "FINISHED" and record.params["data"] == "/data/caf\udce9.csv"
    assert "/data/caf\udce9.csv" in record.tags["autolog.source.argv"]
    assert record.history("loss")[0][:2] == (0, 0.5)
    sync = subprocess.run([sys.executable, "-c", "import autolog.cli as c; exit(c.main())",
                           "sync", "--to", "mlflow"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert sync.returncode == 0, sync.stderr
    remote = mlflow_sqlite.run_for(run_id)
    assert remote.info.status == "FINISHED"
    assert remote.data.params["data"] == "/data/caf\\xe9.csv"
    assert "/data/caf\\xe9.csv" in remote.data.tags["autolog.source.argv"]
    assert mlflow_sqlite.history(remote.info.run_id, "loss") == [(0, 0.5)]


def test_keys_that_map_to_one_mlflow_name_stay_apart_and_identical_points_are_kept(
        mlflow_sqlite, store, caplog, monkeypatch):
    """Item 6: ``loss@x`` and ``loss_x`` were merged into one MLflow series, and three identical
    points (same step, value and millisecond) became one. The mapping is one-to-one (a stable
    suffix on collision, kept in the delivery state, one warning) and every point is kept."""
    import logging

    autolog.enable(backend="local,mlflow")
    with caplog.at_level(logging.WARNING, logger="autolog"), autolog.start_run() as run:
        run.log_metrics({"loss@x": 1.0, "loss_x": 2.0}, step=0)
        with monkeypatch.context() as frozen:  # three calls within one millisecond
            frozen.setattr(autolog.run, "_time", lambda: 1_700_000_000.0)
            for _ in range(3):
                run.log_metrics({"same": 0.5}, step=7)
        run.log_params({"a b": 1, "a@b": 2})
        run.set_tags({"autolog.delivered": "mine"})
        assert autolog.flush(60)
        run.log_metrics({"loss@x": 3.0, "loss_x": 4.0}, step=1)  # a later batch: same names
    assert autolog.flush(60)
    remote = mlflow_sqlite.run_for(run.id)
    run_id = remote.info.run_id
    names = _cursor(run.id, store)["state"]["names"]
    suffixed = names["metric"]["loss_x"]
    assert names["metric"]["loss@x"] == "loss_x" and suffixed.startswith("loss_x-")
    assert mlflow_sqlite.history(run_id, "loss_x") == [(0, 1.0), (1, 3.0)]
    assert mlflow_sqlite.history(run_id, suffixed) == [(0, 2.0), (1, 4.0)]
    same = mlflow_sqlite.client.get_metric_history(run_id, "same")
    assert [(m.step, m.value) for m in same] == [(7, 0.5)] * 3
    assert len({m.timestamp for m in same}) == 3
    assert remote.data.params["a b"] == "1" and remote.data.params["a_b"] == "2"
    assert re.fullmatch(r"\d+-\d+:\d+/\d+", remote.data.tags["autolog.delivered"])
    user_tag = names["tag"]["autolog.delivered"]
    assert user_tag != "autolog.delivered" and remote.data.tags[user_tag] == "mine"
    warned = [r.getMessage() for r in caplog.records if "both map to the MLflow name" in
              r.getMessage()]
    assert len(warned) == 2, warned  # the metric key and the tag ("a b" and "a_b" differ)


def _load_by_run(target: MlflowTarget, flavor: str, run_id: str) -> tuple[object, list[str]]:
    """The model loaded by ``runs:/<id>/model``, and what ``list_artifacts(run, "model")``
    lists (MLflow resolves both through the process-wide tracking URI)."""
    mlflow.set_tracking_uri(target.uri)
    try:
        listed = [f.path for f in target.client.list_artifacts(run_id, "model")]
        return getattr(mlflow, flavor).load_model(f"runs:/{run_id}/model"), listed
    finally:
        mlflow.set_tracking_uri(None)


@pytest.mark.parametrize("kind", ["forest", "search", "pipeline"])
def test_every_autologged_sklearn_model_loads_with_mlflow_sklearn(mlflow_sqlite, kind):
    """Item 7: tree models and searches failed ``mlflow.sklearn.save_model`` (skops refuses
    ``sklearn.tree._tree.Tree``), leaving a FAILED LoggedModel that even hid the files. They are
    saved with cloudpickle, as ``mlflow.autolog()`` does, and load back by run."""
    pytest.importorskip("sklearn")
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 4))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    model = {
        "forest": lambda: RandomForestClassifier(n_estimators=5, random_state=0),
        "search": lambda: GridSearchCV(DecisionTreeClassifier(random_state=0),
                                       {"max_depth": [1, 2]}, cv=2),
        "pipeline": lambda: make_pipeline(FunctionTransformer(np.tanh), StandardScaler(),
                                          DecisionTreeClassifier(random_state=0)),
    }[kind]()
    autolog.enable(backend="local,mlflow")
    model.fit(x, y)
    assert autolog.flush(180)
    [local] = [r for r in autolog.list_runs() if r.parent_id is None]
    remote = mlflow_sqlite.run_for(local.id)
    model_uri(mlflow_sqlite, remote, "model")  # where this MLflow keeps it
    if LOGGED_MODELS:
        [output] = remote.outputs.model_outputs
        logged = mlflow_sqlite.client.get_logged_model(output.model_id)
        assert str(logged.status).endswith("READY")
    loaded, listed = _load_by_run(mlflow_sqlite, "sklearn", remote.info.run_id)
    assert (loaded.predict(x) == model.predict(x)).all()
    assert "model/MLmodel" in listed


@pytest.mark.parametrize("api", ["train", "sklearn"])
def test_every_autologged_xgboost_model_loads_with_mlflow_xgboost(mlflow_sqlite, api):
    """Item 7: XGBoost's native and scikit-learn APIs both arrive as MLflow xgboost models."""
    xgb = pytest.importorskip("xgboost")
    import numpy as np

    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 3))
    y = (x[:, 0] > 0).astype(int)
    autolog.enable(backend="local,mlflow")
    if api == "train":
        model = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(x, label=y), 4)
        expected = model.predict(xgb.DMatrix(x))
    else:
        model = xgb.XGBClassifier(n_estimators=4).fit(x, y)
        expected = model.predict(x)
    assert autolog.flush(180)
    [local] = autolog.list_runs()
    remote = mlflow_sqlite.run_for(local.id)
    loaded, listed = _load_by_run(mlflow_sqlite, "xgboost", remote.info.run_id)
    assert "model/MLmodel" in listed
    got = loaded.predict(xgb.DMatrix(x)) if api == "train" else loaded.predict(x)
    assert (got == expected).all()


def test_a_model_mlflow_cannot_save_leaves_its_files_listable(mlflow_sqlite, monkeypatch):
    """Item 7, the fallback: when the flavour's save_model fails, no FAILED LoggedModel is left
    standing where the plain files go (``runs:/<id>/model`` resolved to it and listed nothing)."""
    pytest.importorskip("sklearn")
    import mlflow.sklearn
    import numpy as np
    from sklearn.tree import DecisionTreeClassifier

    def refuse(*args, **kwargs):
        raise RuntimeError("this model cannot be saved")

    monkeypatch.setattr(mlflow.sklearn, "save_model", refuse)
    x = np.random.default_rng(0).normal(size=(40, 3))
    autolog.enable(backend="local,mlflow")
    DecisionTreeClassifier().fit(x, (x[:, 0] > 0).astype(int))
    assert autolog.flush(120)
    remote = mlflow_sqlite.run_for(autolog.list_runs()[0].id)
    if LOGGED_MODELS:
        assert not list(mlflow_sqlite.client.search_logged_models([mlflow_sqlite.experiment_id]))
    mlflow.set_tracking_uri(mlflow_sqlite.uri)
    try:
        listed = [f.path for f in mlflow_sqlite.client.list_artifacts(remote.info.run_id, "model")]
    finally:
        mlflow.set_tracking_uri(None)
    assert {"model/model.pkl", "model/autolog-model.json"} <= set(listed)


def test_a_script_ending_right_after_fit_exits_with_a_clean_stderr(tmp_path, store,
                                                                    mlflow_sqlite):
    """Item 15, as a user meets it: ``AUTOLOG_BACKEND=local,mlflow`` and a script that ends
    right after fitting a tree model; the model is delivered by the exit flush."""
    pytest.importorskip("sklearn")
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent("""
        import sys
        import numpy as np
        import autolog
        from sklearn.ensemble import RandomForestClassifier
        autolog.enable()
        x = np.random.default_rng(0).normal(size=(60, 3))
        RandomForestClassifier(n_estimators=5).fit(x, (x[:, 0] > 0).astype(int))
        print("torch" in sys.modules)
    """))
    env = clean_env(store, AUTOLOG_BACKEND="local,mlflow", AUTOLOG_EXIT_TIMEOUT="120")
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr
    noise = [line for line in done.stderr.splitlines()
             if "Exception ignored" in line or "Traceback" in line or "Error" in line]
    assert not noise, done.stderr
    [run] = autolog.list_runs()
    model_uri(mlflow_sqlite, mlflow_sqlite.run_for(run.id), "model")  # delivered at exit


# -- the delivery delay (issue 18) ---------------------------------------------------------------


def _ended_with_its_points(target: MlflowTarget, autolog_id: str) -> bool:
    """The run's 500 points and its end are in MLflow (the end is delivered after the points:
    a reader in between sees the points and a RUNNING run)."""
    found = target.runs_for(autolog_id)
    return bool(found) and found[0].info.status != "RUNNING" and \
        len(target.history(found[0].info.run_id, "loss")) >= 500


def _loss_points(target: MlflowTarget, autolog_id: str) -> int:
    found = target.runs_for(autolog_id)
    return len(target.history(found[0].info.run_id, "loss")) if found else 0


def test_a_script_shorter_than_the_delay_never_loads_mlflow_and_is_delivered_after_it(
        tmp_path, store, mlflow_sqlite):
    """A script that ends within ``AUTOLOG_DELIVERY_DELAY`` (default 5 s) of its first run
    never imports MLflow: the detached delivery process delivers its run, every point once."""
    from autolog.delivery.handoff import running

    script = tmp_path / "short.py"
    script.write_text(textwrap.dedent("""
        import atexit, sys
        # registered before autolog's exit hook, so it runs after it
        atexit.register(lambda: print("mlflow" in sys.modules, flush=True))
        import autolog
        autolog.enable()
        with autolog.start_run("short") as run:
            for i in range(500):
                run.log_metrics({"loss": 1.0 / (i + 1)}, step=i)
        print(run.id, flush=True)
    """))
    env = clean_env(store, AUTOLOG_BACKEND="local,mlflow", AUTOLOG_EXIT_MODE="detach")
    try:
        done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        run_id, mlflow_loaded = done.stdout.split()
        assert mlflow_loaded == "False", done.stderr
        deadline = time.monotonic() + 120
        while not _ended_with_its_points(mlflow_sqlite, run_id) and time.monotonic() < deadline:
            time.sleep(0.2)
        remote = mlflow_sqlite.run_for(run_id)
        assert mlflow_sqlite.history(remote.info.run_id, "loss") == \
            [(i, 1.0 / (i + 1)) for i in range(500)]
        assert remote.info.status == "FINISHED"
    finally:
        for process in running(store):  # only this test's store's delivery process
            os.kill(int(process["pid"]), signal.SIGKILL)


def test_within_the_delay_nothing_is_delivered_until_flush_which_delivers_at_once(
        store, mlflow_sqlite, monkeypatch):
    monkeypatch.setenv("AUTOLOG_DELIVERY_DELAY", "60")
    autolog.enable(backend="local,mlflow")
    with autolog.start_run("held") as run:
        run.log_metrics({"loss": 0.5}, step=0)
    time.sleep(1.5)  # the journal writer passed (1 s): the worker was notified, and waits
    assert mlflow_sqlite.runs() == []
    started = time.monotonic()
    assert autolog.flush(60)
    assert time.monotonic() - started < 30  # not the 60 s delay
    assert mlflow_sqlite.history(mlflow_sqlite.run_for(run.id).info.run_id, "loss") == [(0, 0.5)]


def test_after_the_delay_a_live_run_is_delivered_without_a_flush(store, mlflow_sqlite,
                                                                  monkeypatch):
    monkeypatch.setenv("AUTOLOG_DELIVERY_DELAY", "1")
    autolog.enable(backend="local,mlflow")
    with autolog.start_run("live") as run:
        run.log_metrics({"loss": 0.25}, step=0)
        deadline = time.monotonic() + 60
        while _loss_points(mlflow_sqlite, run.id) < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _loss_points(mlflow_sqlite, run.id) == 1  # while the run is still going


def test_a_delivery_delay_that_is_not_seconds_is_refused(store, monkeypatch):
    monkeypatch.setenv("AUTOLOG_DELIVERY_DELAY", "-1")
    with pytest.raises(autolog.ConfigError, match="AUTOLOG_DELIVERY_DELAY='-1' must be a "
                                                  "finite number of seconds, 0 or more"):
        autolog.enable(backend="local,mlflow")
