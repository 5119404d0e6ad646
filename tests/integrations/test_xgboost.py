"""XGBoost autologging: the native API and the scikit-learn API, trained for real on data that
ships with scikit-learn, read back through the public API."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time

import pytest

xgb = pytest.importorskip("xgboost")
pytest.importorskip("sklearn")

import numpy as np  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import autolog  # noqa: E402

from ..helpers import clean_env, only_run  # noqa: E402


@pytest.fixture(scope="module")
def cancer():
    x, y = load_breast_cancer(return_X_y=True)
    return x[:400], y[:400], x[400:], y[400:]


#: xgboost 2.1+ calls callbacks in list order; 2.0 in a set's order
CALLBACKS_IN_ORDER = isinstance(xgb.callback.CallbackContainer([]).callbacks, list)


class CountingCallback(xgb.callback.TrainingCallback):
    def __init__(self):
        super().__init__()
        self.iterations = 0

    def after_iteration(self, model, epoch, evals_log):
        self.iterations += 1
        return False


def test_native_train_params_metrics_early_stopping_importance_model(cancer, monkeypatch):
    from autolog.integrations import xgboost as integration

    drawn_on = []  # the chart is drawn on the journal writer's thread, not the training's
    draw = integration.chart
    monkeypatch.setattr(integration, "chart", lambda importance: (
        drawn_on.append(threading.current_thread().name), draw(importance))[1])
    autolog.enable()
    x, y, xv, yv = cancer
    dtrain, dvalid = xgb.DMatrix(x, y), xgb.DMatrix(xv, yv)
    mine = CountingCallback()
    callbacks = [mine]
    params = {"objective": "binary:logistic", "max_depth": 2, "eta": 0.3,
              "eval_metric": ["logloss", "auc"]}
    booster = xgb.train(params, dtrain, 200, evals=[(dtrain, "train"), (dvalid, "valid")],
                        early_stopping_rounds=3, verbose_eval=False, callbacks=callbacks)
    assert callbacks == [mine]
    deadline = time.monotonic() + 10  # the run's end is the writer thread's (it draws the chart)
    while not drawn_on and time.monotonic() < deadline:
        time.sleep(0.02)
    # xgboost 2.0 keeps callbacks in a set and skips those after the one that stops
    # (dmlc/xgboost#11811): the user's may miss the last iteration there, as it would alone
    rounds = booster.num_boosted_rounds()
    assert mine.iterations == rounds or (not CALLBACKS_IN_ORDER and mine.iterations == rounds - 1)
    run = only_run()
    assert run.status == "FINISHED"
    assert run.tags["estimator_name"] == "Booster"
    assert run.params["max_depth"] == 2 and run.params["eta"] == 0.3
    assert json.loads(run.params["eval_metric"]) == ["logloss", "auc"]
    assert run.params["num_boost_round"] == 200 and run.params["early_stopping_rounds"] == 3
    assert "dtrain" not in run.params and "callbacks" not in run.params
    assert rounds < 200  # stopped early
    for key in ("train-logloss", "train-auc", "valid-logloss", "valid-auc"):
        assert [step for step, _, _ in run.history(key)] == list(range(rounds))
    assert run.metrics["best_iteration"] == booster.best_iteration
    assert run.metrics["best_score"] == pytest.approx(booster.best_score)
    assert run.metrics["valid-auc"] == pytest.approx(float(booster.eval(dvalid).split(":")[-1]))
    importance = json.loads(run.artifact_path("feature_importance.json").read_text())
    assert set(importance) == {"weight", "gain", "cover"}
    assert importance["gain"] == pytest.approx(booster.get_score(importance_type="gain"))
    chart = run.artifact_path("feature_importance/feature_importance.png").read_bytes()
    assert chart.startswith(b"\x89PNG")  # drawn with no imaging library
    assert "feature_importance/feature_importance.png" in run.artifacts
    assert drawn_on == ["autolog-writer"]
    if _has_pillow():
        import io

        from PIL import Image

        with Image.open(io.BytesIO(chart)) as png:
            assert png.format == "PNG" and png.width > 600  # three panels
            assert png.getcolors() and len(png.getcolors()) == 3  # white, black text, blue bars
    spec = run.models["model"]
    assert (spec["flavor"], spec["format"], spec["api"]) == ("xgboost", "ubj", "native")
    loaded = autolog.load_model(run)
    assert isinstance(loaded, xgb.Booster)
    np.testing.assert_array_equal(loaded.predict(dvalid), booster.predict(dvalid))


class StopAfter(xgb.callback.TrainingCallback):
    def __init__(self, last: int):
        super().__init__()
        self.last = last

    def after_iteration(self, model, epoch, evals_log):
        return epoch == self.last


def test_a_user_callback_that_stops_training_loses_no_iteration(cancer):
    """xgboost skips the callbacks after the one that stops (ours, here): the last iteration's
    scores still reach the run, from the log after training."""
    autolog.enable()
    x, y, xv, yv = cancer
    booster = xgb.train({"max_depth": 2}, xgb.DMatrix(x, y), 50,
                        evals=[(xgb.DMatrix(xv, yv), "valid")], verbose_eval=False,
                        callbacks=[StopAfter(3)])
    assert booster.num_boosted_rounds() == 4
    history = only_run().history("valid-rmse")
    assert [step for step, _, _ in history] == [0, 1, 2, 3]
    assert history[-1][1] == pytest.approx(float(booster.eval(xgb.DMatrix(xv, yv)).split(":")[-1]))


def _has_pillow():
    try:
        import PIL  # noqa: F401
    except ImportError:
        return False
    return True


def test_sklearn_classifier_is_one_run_with_per_iteration_metrics(cancer):
    autolog.enable()
    x, y, xv, yv = cancer
    model = xgb.XGBClassifier(n_estimators=15, max_depth=2, learning_rate=0.3)
    params_before = model.get_params()
    model.fit(x, y, eval_set=[(x, y), (xv, yv)], verbose=False)
    assert model.get_params() == params_before  # nothing injected into the estimator
    run = only_run()  # fit and the train it calls: one run
    assert run.tags["estimator_name"] == "XGBClassifier" and run.name.startswith("XGBClassifier-")
    assert run.params["n_estimators"] == 15 and run.params["max_depth"] == 2
    assert "callbacks" not in run.params
    history = run.history("validation_1-logloss")
    assert [step for step, _, _ in history] == list(range(15))
    assert [v for _, v, _ in history] == pytest.approx(
        model.evals_result()["validation_1"]["logloss"])
    assert "validation_0-logloss" in run.metrics
    assert "best_iteration" not in run.metrics  # no early stopping
    loaded = autolog.load_model(run)
    assert type(loaded) is xgb.XGBClassifier
    np.testing.assert_array_equal(loaded.predict_proba(xv), model.predict_proba(xv))
    np.testing.assert_array_equal(loaded.predict(xv), model.predict(xv))


def test_sklearn_regressor_early_stopping():
    autolog.enable()
    x, y = load_diabetes(return_X_y=True)
    model = xgb.XGBRegressor(n_estimators=300, max_depth=2, early_stopping_rounds=5)
    model.fit(x[:300], y[:300], eval_set=[(x[300:], y[300:])], verbose=False)
    run = only_run()
    assert run.metrics["best_iteration"] == model.best_iteration
    assert run.metrics["best_score"] == pytest.approx(model.best_score)
    assert len(run.history("validation_0-rmse")) == model.get_booster().num_boosted_rounds()
    loaded = autolog.load_model(run)
    assert type(loaded) is xgb.XGBRegressor
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_sklearn_ranker():
    autolog.enable()
    x, y = load_iris(return_X_y=True)
    qid = np.repeat(np.arange(15), 10)
    order = np.random.default_rng(0).permutation(150)
    model = xgb.XGBRanker(n_estimators=5, max_depth=2).fit(x[order], y[order], qid=qid)
    run = only_run()
    assert run.tags["estimator_name"] == "XGBRanker" and run.params["n_estimators"] == 5
    loaded = autolog.load_model(run)
    assert type(loaded) is xgb.XGBRanker
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_inside_a_pipeline_the_pipeline_is_the_one_run(cancer):
    autolog.enable()
    x, y, _, _ = cancer
    make_pipeline(StandardScaler(), xgb.XGBClassifier(n_estimators=5)).fit(x, y)
    run = only_run()
    assert run.tags["estimator_name"] == "Pipeline"
    assert run.params["xgbclassifier__n_estimators"] == 5
    assert run.models["model"]["flavor"] == "sklearn"  # a Pipeline is pickled whole


def test_failed_training_raises_the_same_and_fails_the_run(cancer):
    x, y, _, _ = cancer
    labels = y + 5  # XGBClassifier wants labels 0..n-1

    def fit():
        xgb.XGBClassifier(n_estimators=2).fit(x, labels)

    with pytest.raises(ValueError) as plain:
        fit()
    autolog.enable()
    with pytest.raises(ValueError) as logged:
        fit()
    assert str(logged.value) == str(plain.value)
    with pytest.raises(xgb.core.XGBoostError):
        xgb.train({"objective": "no:such"}, xgb.DMatrix(x, y), 2)
    runs = autolog.list_runs()
    assert [r.status for r in runs] == ["FAILED", "FAILED"]
    assert not any(r.models for r in runs)


def test_user_run_and_log_models_off(cancer):
    autolog.enable(log_models=False)
    x, y, _, _ = cancer
    with autolog.start_run("mine") as mine:
        xgb.train({"max_depth": 2}, xgb.DMatrix(x, y), 3, evals=[(xgb.DMatrix(x, y), "train")],
                  verbose_eval=False)
    run = only_run()
    assert run.id == mine.id and len(run.history("train-rmse")) == 3 and not run.models


@pytest.mark.parametrize("as_pandas", [True, False])
def test_cv_is_one_run_with_fold_means_and_stds_per_iteration(cancer, as_pandas):
    if as_pandas:
        pytest.importorskip("pandas")
    autolog.enable()
    x, y, _, _ = cancer
    params = {"objective": "binary:logistic", "max_depth": 2, "eta": 0.3, "eval_metric": "auc"}
    table = xgb.cv(params, xgb.DMatrix(x, y), num_boost_round=200, nfold=3, seed=1,
                   early_stopping_rounds=3, as_pandas=as_pandas)
    run = only_run()  # the folds' boosters are not runs of their own
    assert run.status == "FINISHED" and run.tags["xgboost.call"] == "cv"
    assert run.params["nfold"] == 3 and run.params["num_boost_round"] == 200
    assert run.params["max_depth"] == 2 and run.params["early_stopping_rounds"] == 3
    assert "dtrain" not in run.params and "as_pandas" not in run.params
    rounds = len(table["test-auc-mean"])
    assert 0 < rounds < 200  # stopped early
    for key in ("train-auc-mean", "train-auc-std", "test-auc-mean", "test-auc-std"):
        assert [(step, value) for step, value, _ in run.history(key)] == [
            (step, pytest.approx(float(value))) for step, value in enumerate(table[key])]
    assert run.metrics["best_iteration"] == rounds - 1
    assert run.metrics["best_score"] == pytest.approx(float(list(table["test-auc-mean"])[-1]))


def test_cv_error_reaches_the_user_and_fails_the_run(cancer):
    autolog.enable()
    x, y, _, _ = cancer
    with pytest.raises(xgb.core.XGBoostError) as caught:
        xgb.cv({"objective": "no-such-objective"}, xgb.DMatrix(x, y), num_boost_round=2)
    assert "no-such-objective" in str(caught.value)
    assert only_run().status == "FAILED"


def test_disable_restores_exactly():
    owners = [(xgb, "train"), (xgb.training, "train"), (xgb.sklearn, "train"), (xgb, "cv"),
              (xgb.training, "cv")]
    owners += [(cls, "fit") for cls in (xgb.XGBModel, xgb.XGBClassifier, xgb.XGBRanker)]
    before = [vars(owner)[name] for owner, name in owners]
    assert "fit" not in vars(xgb.XGBRegressor)
    autolog.enable()
    assert all(vars(o)[n] is not f for (o, n), f in zip(owners, before, strict=True))
    autolog.disable()
    assert all(vars(o)[n] is f for (o, n), f in zip(owners, before, strict=True))
    assert "fit" not in vars(xgb.XGBRegressor)


def test_enable_before_importing_xgboost(tmp_path):
    code = textwrap.dedent("""
        import sys
        import autolog
        autolog.enable()
        assert "xgboost" not in sys.modules and "sklearn" not in sys.modules
        import numpy as np
        import xgboost as xgb
        x = np.random.default_rng(0).normal(size=(200, 4))
        y = (x[:, 0] > 0).astype(int)
        xgb.XGBClassifier(n_estimators=4).fit(x, y, eval_set=[(x, y)], verbose=False)
        xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(x, y), 3)
        print(sorted((r.tags["estimator_name"], len(r.history("validation_0-logloss")))
                     for r in autolog.list_runs()))
    """)
    out = subprocess.run([sys.executable, "-c", code], env=clean_env(tmp_path / "runs",
                                                                     AUTOLOG_STRICT="1"),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[-2] == "[('Booster', 0), ('XGBClassifier', 4)]"
