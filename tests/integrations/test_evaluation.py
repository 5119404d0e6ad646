"""Evaluation plots and dataset fingerprints of scikit-learn and XGBoost fits: the numbers equal
scikit-learn's own metrics, the drawings are PNGs, eval sets and a search's refit get theirs,
large data is sampled, and each part can be turned off."""

from __future__ import annotations

import json

import numpy as np
import pytest

import autolog

pytest.importorskip("sklearn")
from sklearn import metrics
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV


def _data(record: autolog.RunRecord, key: str) -> dict:
    (item,) = record.media_for(key, "plot")
    assert item.image is not None
    assert record.artifact_path(item.image).read_bytes().startswith(b"\x89PNG")
    return json.loads(record.artifact_path(item.path).read_text())


def _only_run() -> autolog.RunRecord:
    (run,) = autolog.list_runs()
    return run


def test_a_binary_classifier_s_plots_equal_scikit_learn_s_metrics():
    x, y = make_classification(n_samples=150, n_features=5, random_state=0)
    autolog.enable()
    model = LogisticRegression().fit(x, y)
    record = _only_run()
    assert sorted(m.key for m in record.media) == [
        "training_confusion_matrix", "training_precision_recall_curve", "training_roc_curve"]
    predicted, scores = model.predict(x), model.predict_proba(x)[:, 1]
    matrix = _data(record, "training_confusion_matrix")
    assert matrix["matrix"] == metrics.confusion_matrix(y, predicted).tolist()
    assert matrix["labels"] == [0, 1]
    roc = _data(record, "training_roc_curve")
    fpr, tpr, _ = metrics.roc_curve(y, scores, drop_intermediate=False)
    assert np.allclose(roc["fpr"], fpr) and np.allclose(roc["tpr"], tpr)
    assert roc["auc"] == pytest.approx(metrics.roc_auc_score(y, scores))
    assert roc["auc"] == pytest.approx(record.metrics["training_roc_auc"])
    pr = _data(record, "training_precision_recall_curve")
    precision, recall, _ = metrics.precision_recall_curve(y, scores)
    assert np.allclose(pr["precision"], precision[::-1])
    assert np.allclose(pr["recall"], recall[::-1])
    assert pr["average_precision"] == pytest.approx(metrics.average_precision_score(y, scores))
    assert record.media_for("training_roc_curve")[0].meta["auc"] == pytest.approx(roc["auc"])


def test_a_multiclass_classifier_gets_a_confusion_matrix_with_its_labels():
    x, y = make_classification(n_samples=200, n_features=6, n_informative=4, n_classes=3,
                               random_state=1)
    labels = np.array(["cat", "dog", "emu"])[y]
    autolog.enable()
    model = LogisticRegression(max_iter=500).fit(x, labels)
    record = _only_run()
    assert [m.key for m in record.media] == ["training_confusion_matrix"]
    matrix = _data(record, "training_confusion_matrix")
    assert matrix["labels"] == ["cat", "dog", "emu"]
    assert matrix["matrix"] == metrics.confusion_matrix(labels, model.predict(x)).tolist()


def test_a_regressor_gets_predicted_vs_true_and_residuals():
    x, y = make_regression(n_samples=120, n_features=3, noise=5.0, random_state=0)
    autolog.enable()
    model = Ridge().fit(x, y)
    record = _only_run()
    scatter = _data(record, "training_predicted_vs_true")
    assert np.allclose(scatter["true"], y) and np.allclose(scatter["predicted"], model.predict(x))
    residuals = _data(record, "training_residuals")
    assert np.allclose(residuals["residual"], y - model.predict(x))
    assert record.media_for("training_residuals")[0].meta == {"plot": "residuals",
                                                              "points": 120}


def test_a_search_gets_the_plots_of_its_refit_model():
    x, y = make_classification(n_samples=120, n_features=4, random_state=2)
    autolog.enable()
    search = GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=2).fit(x, y)
    parent = next(r for r in autolog.list_runs() if r.parent_id is None)
    matrix = _data(parent, "training_confusion_matrix")
    assert matrix["matrix"] == metrics.confusion_matrix(y, search.predict(x)).tolist()


def test_large_data_is_sampled(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AUTOLOG_METRICS_SAMPLE_ROWS", "300")
    x, y = make_classification(n_samples=5000, n_features=4, random_state=3)
    autolog.enable()
    LogisticRegression().fit(x, y)
    matrix = _data(_only_run(), "training_confusion_matrix")
    assert sum(map(sum, matrix["matrix"])) == 300


def test_plots_and_fingerprints_can_be_turned_off(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AUTOLOG_LOG_PLOTS", "0")
    monkeypatch.setenv("AUTOLOG_LOG_DATASETS", "0")
    x, y = make_classification(n_samples=80, n_features=3, n_informative=2, n_redundant=0,
                               random_state=0)
    autolog.enable()
    LogisticRegression().fit(x, y)
    record = _only_run()
    assert record.media == []
    assert not any(key.startswith("dataset.") for key in record.tags)


def test_fingerprints_tell_datasets_apart():
    pd = pytest.importorskip("pandas")
    x, y = make_classification(n_samples=100, n_features=3, n_informative=2, n_redundant=0,
                               random_state=0)
    changed = x.copy()
    changed[50, 1] += 1.0
    autolog.enable()
    for features in (x, x.copy(), changed, pd.DataFrame(x, columns=["a", "b", "c"])):
        LogisticRegression().fit(features, y)
    runs = list(reversed(autolog.list_runs()))
    digests = [r.tags["dataset.training.digest"] for r in runs]
    assert digests[0] == digests[1] != digests[2]
    assert digests[3] not in digests[:3]
    tags = runs[0].tags
    assert (tags["dataset.training.rows"], tags["dataset.training.shape"],
            tags["dataset.training.dtype"], tags["dataset.training.targets_shape"]) == \
        ("100", "[100, 3]", "float64", "[100]")
    frame = type(pd.DataFrame())  # pandas.DataFrame (3.x) or pandas.core.frame.DataFrame (2.x)
    assert runs[3].tags["dataset.training.kind"] == f"{frame.__module__}.{frame.__qualname__}"
    assert not any(key.startswith("dataset.") for key in runs[0].params)


def test_xgboost_plots_its_training_data_and_each_eval_set():
    xgboost = pytest.importorskip("xgboost")
    x, y = make_classification(n_samples=300, n_features=5, random_state=4)
    autolog.enable()
    model = xgboost.XGBClassifier(n_estimators=5).fit(
        x[:200], y[:200], eval_set=[(x[:200], y[:200]), (x[200:], y[200:])], verbose=False)
    record = _only_run()
    for name, rows in (("training", slice(0, 200)), ("validation_1", slice(200, 300))):
        matrix = _data(record, f"{name}_confusion_matrix")
        assert matrix["matrix"] == metrics.confusion_matrix(
            y[rows], model.predict(x[rows])).tolist()
        roc = _data(record, f"{name}_roc_curve")
        assert roc["auc"] == pytest.approx(
            metrics.roc_auc_score(y[rows], model.predict_proba(x[rows])[:, 1]))
    assert record.tags["dataset.validation_1.rows"] == "100"


def test_xgboost_regressor_and_native_training_fingerprints():
    xgboost = pytest.importorskip("xgboost")
    x, y = make_regression(n_samples=100, n_features=3, random_state=5)
    autolog.enable()
    model = xgboost.XGBRegressor(n_estimators=3).fit(x, y)
    dtrain = xgboost.DMatrix(x, label=y)
    xgboost.train({"objective": "reg:squarederror"}, dtrain, num_boost_round=2,
                  evals=[(xgboost.DMatrix(x[:50], label=y[:50]), "holdout")])
    native, fitted = autolog.list_runs()
    assert np.allclose(_data(fitted, "training_predicted_vs_true")["predicted"], model.predict(x))
    assert native.tags["dataset.training.shape"] == "[100, 3]"
    assert native.tags["dataset.holdout.rows"] == "50"
