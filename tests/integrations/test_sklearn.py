"""scikit-learn autologging: real estimators on the datasets scikit-learn ships, read back through
the public API."""

from __future__ import annotations

import csv
import inspect
import json
import math
import pickle
import subprocess
import sys
import textwrap

import pytest

sklearn = pytest.importorskip("sklearn")

import numpy as np  # noqa: E402
from sklearn import model_selection  # noqa: E402
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone  # noqa: E402
from sklearn.cluster import KMeans  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.linear_model import LogisticRegression, Ridge  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.tree import DecisionTreeClassifier  # noqa: E402
from sklearn.utils._set_output import _SetOutputMixin  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

import autolog  # noqa: E402
from autolog.patching import patcher  # noqa: E402

from ..helpers import clean_env, only_run, run_started_in_another_thread  # noqa: E402

CLASSIFIER_METRICS = {"training_accuracy_score", "training_precision_score",
                      "training_recall_score", "training_f1_score", "training_log_loss",
                      "training_roc_auc", "training_score"}
REGRESSOR_METRICS = {"training_mean_squared_error", "training_root_mean_squared_error",
                     "training_mean_absolute_error", "training_r2_score", "training_score"}


@pytest.fixture(scope="module")
def cancer():
    x, y = load_breast_cancer(return_X_y=True)
    return x[::2], y[::2]  # 285 rows: quick, both classes


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


@pytest.fixture(scope="module")
def diabetes():
    return load_diabetes(return_X_y=True)


def _accuracy(model, x, y):
    return float(np.mean(model.predict(x) == y))


def test_classifier_params_metrics_tags_and_model(cancer):
    autolog.enable()
    x, y = cancer
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.5))
    assert model.fit(x, y) is model
    run = only_run()
    assert run.status == "FINISHED" and run.name.startswith("Pipeline-")
    assert run.params["logisticregression__C"] == 0.5
    assert run.params["standardscaler__with_mean"] is True
    assert json.loads(run.params["steps"]) == [["standardscaler", "StandardScaler"],
                                               ["logisticregression", "LogisticRegression"]]
    assert run.tags["estimator_name"] == "Pipeline"
    assert run.tags["estimator_class"] == "sklearn.pipeline.Pipeline"
    assert set(run.metrics) >= CLASSIFIER_METRICS
    assert run.metrics["training_accuracy_score"] == pytest.approx(_accuracy(model, x, y))
    assert run.metrics["training_score"] == run.metrics["training_accuracy_score"]
    assert 0.9 < run.metrics["training_roc_auc"] <= 1.0
    spec = run.models["model"]
    assert (spec["flavor"], spec["format"], spec["framework_version"]) == (
        "sklearn", "pickle", sklearn.__version__)
    loaded = autolog.load_model(run)
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))


def test_multiclass_probability_metrics(iris):
    autolog.enable()
    x, y = iris
    model = DecisionTreeClassifier(max_depth=2, random_state=0).fit(x, y)
    metrics = only_run().metrics
    assert set(metrics) >= CLASSIFIER_METRICS
    assert metrics["training_accuracy_score"] == pytest.approx(_accuracy(model, x, y))
    assert 0.5 < metrics["training_roc_auc"] <= 1.0 and metrics["training_log_loss"] > 0


def test_regressor_metrics(diabetes):
    autolog.enable()
    x, y = diabetes
    model = Ridge(alpha=0.1).fit(x, y)
    run = only_run()
    assert set(run.metrics) >= REGRESSOR_METRICS
    mse = float(np.mean((model.predict(x) - y) ** 2))
    assert run.metrics["training_mean_squared_error"] == pytest.approx(mse)
    assert run.metrics["training_root_mean_squared_error"] == pytest.approx(math.sqrt(mse))
    assert run.metrics["training_r2_score"] == pytest.approx(model.score(x, y))
    assert run.params["alpha"] == 0.1
    np.testing.assert_array_equal(autolog.load_model(run).predict(x), model.predict(x))


def test_clusterer_fit_predict_is_one_run_with_silhouette(iris):
    autolog.enable()
    x, _ = iris
    model = KMeans(n_clusters=3, n_init=2, random_state=0)
    labels = model.fit_predict(x)
    run = only_run()
    assert run.tags["estimator_name"] == "KMeans"
    from sklearn.metrics import silhouette_score

    assert run.metrics["training_silhouette_score"] == pytest.approx(silhouette_score(x, labels))
    assert run.metrics["training_score"] == pytest.approx(model.score(x))


def test_fit_transform_is_one_run_and_keeps_set_output(iris):
    pd = pytest.importorskip("pandas")
    autolog.enable()
    x, _ = iris
    frame = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    out = PCA(n_components=2).set_output(transform="pandas").fit_transform(frame)
    assert isinstance(out, pd.DataFrame)  # scikit-learn's set_output wrapper still applies
    run = only_run()
    assert run.params["n_components"] == 2
    assert "training_score" in run.metrics  # PCA.score: average log-likelihood


def test_pipeline_is_one_run(cancer):
    autolog.enable()
    make_pipeline(StandardScaler(), PCA(n_components=5), LogisticRegression()).fit(*cancer)
    assert len(autolog.list_runs()) == 1


def test_grid_search_parent_and_child_runs(iris, monkeypatch):
    monkeypatch.setenv("AUTOLOG_MAX_CHILD_RUNS", "2")
    autolog.enable()
    search = GridSearchCV(LogisticRegression(max_iter=300), {"C": [0.01, 0.1, 1.0]}, cv=3)
    search.fit(*iris)
    runs = autolog.list_runs()
    (parent,) = [r for r in runs if r.parent_id is None]
    children = [r for r in runs if r.parent_id == parent.id]
    assert len(runs) == 3 and len(children) == 2  # the top 2 by rank, of 3 candidates
    assert parent.params["best_C"] == search.best_params_["C"]
    assert parent.params["estimator__max_iter"] == 300
    assert parent.metrics["best_score"] == pytest.approx(search.best_score_)
    with open(parent.artifact_path("cv_results.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["param_C"]) for r in rows] == [0.01, 0.1, 1.0]
    assert [int(r["rank_test_score"]) for r in rows] == list(search.cv_results_["rank_test_score"])
    results = search.cv_results_
    for child in children:
        index = int(child.tags["candidate_index"])
        assert child.tags["autolog.parent_run_id"] == parent.id
        assert results["rank_test_score"][index] <= 2
        assert child.params == {"C": results["params"][index]["C"]}
        assert child.metrics["mean_test_score"] == pytest.approx(results["mean_test_score"][index])
        assert child.metrics["std_test_score"] == pytest.approx(results["std_test_score"][index])
    loaded = autolog.load_model(parent)
    np.testing.assert_array_equal(loaded.predict(iris[0]), search.predict(iris[0]))


def test_cross_val_score_is_one_run_with_fold_scores(iris):
    """Imported before enable(): it calls the module's cross_validate, which is patched."""
    autolog.enable()
    scores = cross_val_score(LogisticRegression(max_iter=300), *iris, cv=3)
    run = only_run()
    assert run.tags["sklearn_function"] == "cross_validate"
    assert run.params["cv"] == 3 and run.params["max_iter"] == 300
    assert [v for _, v, _ in run.history("cv_test_score")] == pytest.approx(list(scores))
    assert run.metrics["cv_test_score_mean"] == pytest.approx(scores.mean())
    assert not run.models  # the folds' estimators are clones; nothing fitted to save


def test_cross_val_predict_is_one_run(diabetes):
    autolog.enable()
    x, y = diabetes
    # a name imported before enable() keeps the original function: call it as an attribute
    predictions = model_selection.cross_val_predict(Ridge(), x, y, cv=3)
    run = only_run()
    assert run.tags["sklearn_function"] == "cross_val_predict"
    assert run.metrics["cv_mean_squared_error"] == pytest.approx(np.mean((predictions - y) ** 2))


def test_user_run_receives_the_fit(cancer):
    autolog.enable()
    with autolog.start_run("mine") as mine:
        make_pipeline(StandardScaler(), LogisticRegression()).fit(*cancer)
    run = only_run()
    assert run.id == mine.id and "training_accuracy_score" in run.metrics


class MajorityClassifier(ClassifierMixin, BaseEstimator):
    """A user's own estimator, defined before enable(); records the rows predict sees."""

    def __init__(self, strategy="majority"):
        self.strategy = strategy

    def fit(self, X, y):
        values, counts = np.unique(y, return_counts=True)
        self.classes_ = values
        self.majority_ = values[np.argmax(counts)]
        return self

    def predict(self, X):
        self.predicted_rows_ = len(X)
        return np.full(len(X), self.majority_)


def test_user_estimators_defined_before_and_after_enable(cancer, monkeypatch):
    monkeypatch.setenv("AUTOLOG_METRICS_SAMPLE_ROWS", "50")
    autolog.enable()
    x, y = cancer

    class Later(MajorityClassifier):
        def fit(self, X, y):
            return super().fit(X, y)

    assert MajorityClassifier(strategy="x").fit(x, y).predicted_rows_ == 50  # a bounded sample
    with pytest.warns(autolog.AutologWarning, match="Later cannot be pickled"):
        assert Later(strategy="x").fit(x, y).predicted_rows_ == 50
    runs = autolog.list_runs()
    assert sorted(r.tags["estimator_name"] for r in runs) == ["Later", "MajorityClassifier"]
    assert all(r.params == {"strategy": "x"} for r in runs)
    assert all("training_accuracy_score" in r.metrics for r in runs)
    assert sorted(bool(r.models) for r in runs) == [False, True]  # a local class: no model


def test_failed_fit_raises_the_same_and_fails_the_run(cancer):
    x, y = cancer
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError) as plain:
        LogisticRegression().fit(bad, y)
    autolog.enable()
    with pytest.raises(ValueError) as logged:
        LogisticRegression().fit(bad, y)
    assert type(logged.value) is type(plain.value) and str(logged.value) == str(plain.value)
    run = only_run()
    assert run.status == "FAILED" and run.params["C"] == 1.0 and not run.models


def test_log_models_off(diabetes):
    autolog.enable(log_models=False)
    Ridge().fit(*diabetes)
    run = only_run()
    assert not run.models and "training_r2_score" in run.metrics


def test_disable_restores_the_original_methods_exactly():
    owners = [LogisticRegression, StandardScaler, KMeans, PCA, GridSearchCV,
              type(make_pipeline(StandardScaler()))]
    before = {(cls, m): vars(cls)[m] for cls in owners for m in ("fit", "fit_transform",
                                                                 "fit_predict") if m in vars(cls)}
    hooks = (vars(BaseEstimator).get("__init_subclass__"),
             vars(_SetOutputMixin)["__init_subclass__"])
    validation = sys.modules["sklearn.model_selection._validation"]
    functions = (validation.cross_validate, model_selection.cross_validate)
    autolog.enable()

    class Defined(TransformerMixin, BaseEstimator):
        def fit_transform(self, X, y=None):
            return X

    assert all(vars(cls)[m] is not f for (cls, m), f in before.items())
    assert patcher().is_patched(Defined, "fit_transform")  # autolog's wrapper is outermost
    autolog.disable()
    assert all(vars(cls)[m] is f for (cls, m), f in before.items())
    assert (vars(BaseEstimator).get("__init_subclass__"),
            vars(_SetOutputMixin)["__init_subclass__"]) == hooks
    assert (validation.cross_validate, model_selection.cross_validate) == functions
    # scikit-learn's own set_output wrapper of the class's method, as without autolog
    assert vars(Defined)["fit_transform"].__wrapped__.__qualname__.endswith(
        "Defined.fit_transform")
    LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    assert autolog.list_runs() == []


def _check_statuses(estimator):
    """Each check's outcome. scikit-learn 1.6+ returns them (``on_fail=None``); before, the
    checks are generated and run here one by one."""
    if "on_fail" in inspect.signature(check_estimator).parameters:
        results = check_estimator(estimator, on_skip=None, on_fail=None)
        return [(r["check_name"], r["status"]) for r in results]
    statuses = []
    for instance, check in check_estimator(estimator, generate_only=True):
        try:
            check(instance)
            status = "passed"
        except Exception as exc:  # a skip or a failure, compared with and without autolog
            status = type(exc).__name__
        statuses.append((getattr(check, "func", check).__name__, status))
    return statuses


@pytest.mark.parametrize("estimator", [DecisionTreeClassifier(max_depth=3), Ridge(),
                                       StandardScaler()], ids=lambda e: type(e).__name__)
def test_patched_estimators_clone_pickle_and_pass_check_estimator(estimator, iris):
    x, y = iris
    without = _check_statuses(estimator)
    autolog.enable()
    fitted = clone(estimator).fit(x, y)
    again = pickle.loads(pickle.dumps(fitted))
    method = "transform" if hasattr(fitted, "transform") else "predict"
    np.testing.assert_array_equal(getattr(again, method)(x), getattr(fitted, method)(x))
    assert clone(fitted).get_params() == estimator.get_params()
    assert _check_statuses(estimator) == without  # check by check, as without autolog
    assert len(autolog.list_runs()) > 10  # the checks' fits were logged


def test_enable_before_importing_sklearn(tmp_path):
    """A fresh interpreter: enable() first, then import scikit-learn; fits are logged."""
    code = textwrap.dedent("""
        import sys
        import autolog
        autolog.enable()
        assert "sklearn" not in sys.modules
        from sklearn.datasets import load_iris
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import cross_val_score
        x, y = load_iris(return_X_y=True)
        LogisticRegression(max_iter=300).fit(x, y)
        cross_val_score(LogisticRegression(max_iter=300), x, y, cv=2)
        runs = autolog.list_runs()
        print(sorted(r.tags.get("sklearn_function", r.tags["estimator_name"]) for r in runs))
    """)
    out = subprocess.run([sys.executable, "-c", code], env=clean_env(tmp_path / "runs",
                                                                     AUTOLOG_STRICT="1"),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[-2] == "['LogisticRegression', 'cross_validate']"


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_training_metrics_match_scikit_learns_own_functions(weighted, cancer, iris, diabetes):
    """autolog computes the common cases with numpy; the numbers are scikit-learn's."""
    from sklearn import metrics as m

    from autolog.integrations.sklearn import training_metrics

    rng = np.random.default_rng(0)
    for x, y in (cancer, iris, (iris[0], np.array(["a", "b", "c"])[iris[1]])):
        w = rng.uniform(0.5, 2.0, len(y)) if weighted else None
        model = DecisionTreeClassifier(max_depth=2, random_state=0).fit(x, y)
        pred, proba = model.predict(x), model.predict_proba(x)
        got = training_metrics(model, x, y, w)
        p, r, f, _ = m.precision_recall_fscore_support(y, pred, average="weighted",
                                                       sample_weight=w, zero_division=0)
        auc = (m.roc_auc_score(y, proba[:, 1], sample_weight=w) if proba.shape[1] == 2 else
               m.roc_auc_score(y, proba, sample_weight=w, multi_class="ovr",
                               average="weighted"))
        assert got == pytest.approx({
            "training_accuracy_score": m.accuracy_score(y, pred, sample_weight=w),
            "training_precision_score": p, "training_recall_score": r,
            "training_f1_score": f, "training_roc_auc": auc,
            "training_log_loss": m.log_loss(y, proba, sample_weight=w),
            "training_score": m.accuracy_score(y, pred, sample_weight=w)}, rel=1e-9)
    x, y = diabetes
    w = rng.uniform(0.5, 2.0, len(y)) if weighted else None
    model = Ridge().fit(x, y)
    pred = model.predict(x)
    assert training_metrics(model, x, y, w) == pytest.approx({
        "training_mean_squared_error": m.mean_squared_error(y, pred, sample_weight=w),
        "training_root_mean_squared_error": math.sqrt(  # root_mean_squared_error: 1.4+
            m.mean_squared_error(y, pred, sample_weight=w)),
        "training_mean_absolute_error": m.mean_absolute_error(y, pred, sample_weight=w),
        "training_r2_score": m.r2_score(y, pred, sample_weight=w),
        "training_score": m.r2_score(y, pred, sample_weight=w)}, rel=1e-9)


def test_fits_in_threads_log_into_the_run_active_in_their_thread(iris, cancer):
    """Issue 15, item 9: the active run is per thread. A search whose inner fits run on joblib
    threads still makes one parent run with its children, inside the run a worker thread
    activated, while the main thread trains into its own run at the same time."""
    import threading

    from joblib import parallel_backend

    autolog.enable()
    shared = run_started_in_another_thread("shared")
    errors: list[BaseException] = []

    def worker():
        try:
            with shared.activate(), parallel_backend("threading", n_jobs=2):
                GridSearchCV(LogisticRegression(max_iter=300), {"C": [0.1, 1.0]}, cv=2,
                             n_jobs=2).fit(*iris)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    thread = threading.Thread(target=worker)
    with autolog.start_run("main") as main:
        thread.start()
        DecisionTreeClassifier(max_depth=2).fit(*cancer)
        thread.join(120)
    shared.end()
    assert not errors, errors
    runs = {r.id: r for r in autolog.list_runs()}
    assert set(runs) - {shared.id, main.id} == {r.id for r in runs.values()
                                               if r.parent_id == shared.id}
    children = [r for r in runs.values() if r.parent_id == shared.id]
    assert len(children) == 2  # the candidates; the inner fits made no runs of their own
    assert runs[shared.id].params["best_C"] in (0.1, 1.0)
    assert runs[main.id].params["max_depth"] == 2 and runs[main.id].parent_id is None
    assert "training_accuracy_score" in runs[main.id].metrics


_ESTIMATOR = '''
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


class AlwaysOne(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.ones(len(X), dtype=int)
'''


def test_an_estimator_class_of_the_training_script_is_the_load_error(tmp_path, store,
                                                                     monkeypatch):
    """Item 16, pickle: a pickled estimator whose class is the training script's."""
    from ..helpers import class_in_main, trained_in_a_script

    run_id = trained_in_a_script(tmp_path, store, _ESTIMATOR,
                                 "AlwaysOne().fit(np.zeros((4, 2)), np.array([0, 1, 0, 1]))")
    with pytest.raises(autolog.ModelLoadError,
                       match=r"__main__\.AlwaysOne is not importable here") as caught:
        autolog.load_model(run_id)
    assert "unpickle the file yourself" in str(caught.value)
    class_in_main(monkeypatch, tmp_path, "AlwaysOne")
    assert list(autolog.load_model(run_id).predict(np.zeros((2, 2)))) == [1, 1]
