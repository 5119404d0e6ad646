"""``autolog demo``: the main job. Trains what is installed with autolog on (the CLI then lists
the runs).

A hand-written training loop always runs (it needs no framework); scikit-learn and XGBoost
models train too when those are installed. Everything goes to the local store.
"""

from __future__ import annotations

import importlib.util
import math
import os
import random
from collections.abc import Callable

__all__ = ["run_demo"]


def run_demo(directory: str | None = None) -> str:
    """Train the demo jobs into the local store; returns the store's directory."""
    import autolog

    if directory is not None:
        os.environ["AUTOLOG_DIR"] = directory
    autolog.enable(backend="local")
    store = autolog.api.get_settings().dir
    trained = []
    for label, train in _JOBS:
        module = label.split()[0]
        if module != "loop" and importlib.util.find_spec(module) is None:
            print(f"skipped {label}: {module} is not installed")
            continue
        print(f"training {label} ...")
        train()
        trained.append(label)
    autolog.flush()
    print(f"\n{len(trained)} training job(s) recorded in {os.path.abspath(store)}:\n")
    return store


def _manual_loop() -> None:
    """A linear model fitted by SGD, logged with the run API (no framework needed)."""
    import autolog

    rng = random.Random(0)
    true_w = [1.5, -2.0, 0.5]
    w = [0.0, 0.0, 0.0]
    with autolog.start_run("demo-manual-loop") as run:
        run.log_params({"lr": 0.1, "epochs": 20, "model": {"kind": "linear", "features": 3}})
        for epoch in range(20):
            loss = 0.0
            for _ in range(64):
                x = [rng.gauss(0, 1) for _ in range(3)]
                y = sum(a * b for a, b in zip(true_w, x, strict=True)) + rng.gauss(0, 0.1)
                err = sum(a * b for a, b in zip(w, x, strict=True)) - y
                w = [wi - 0.1 * err * xi / 8 for wi, xi in zip(w, x, strict=True)]
                loss += err * err / 64
            run.log_metrics({"loss": loss, "rmse": math.sqrt(loss)}, step=epoch)


def _sklearn() -> None:
    """A pipeline on the breast-cancer data, and a small grid search on iris (child runs)."""
    from sklearn.datasets import load_breast_cancer, load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    import autolog

    x, y = load_breast_cancer(return_X_y=True)
    with autolog.start_run("demo-pipeline"):
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y)
    x, y = load_iris(return_X_y=True)
    with autolog.start_run("demo-grid-search"):
        GridSearchCV(SVC(), {"C": [0.1, 1, 10], "kernel": ["linear", "rbf"]}, cv=3).fit(x, y)


def _xgboost() -> None:
    """Gradient boosting with an evaluation set: one metric point per boosting round."""
    import xgboost
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    import autolog

    x, y = load_breast_cancer(return_X_y=True)
    x_train, x_valid, y_train, y_valid = train_test_split(x, y, random_state=0)
    model = xgboost.XGBClassifier(n_estimators=50, max_depth=3, learning_rate=0.2)
    with autolog.start_run("demo-xgboost"):
        model.fit(x_train, y_train, eval_set=[(x_valid, y_valid)], verbose=False)


_JOBS: list[tuple[str, Callable[[], None]]] = [
    ("loop (a hand-written training loop)", _manual_loop),
    ("sklearn (a pipeline, and a grid search with child runs)", _sklearn),
    ("xgboost (50 boosting rounds with an evaluation set)", _xgboost),
]
