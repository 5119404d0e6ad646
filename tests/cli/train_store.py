"""Record the CLI tests' store with real trainings: ``python train_store.py`` with AUTOLOG_DIR set.

A scikit-learn GridSearchCV (a parent and a child run per candidate), a Keras fit with a
validation split (when Keras is installed), and hand-written runs with varied params (numbers,
numeric strings, text, booleans), metrics (a NaN among them), tags, two runs sharing a name, a
failed run and a run in another project.
"""

from __future__ import annotations

import math
import os
import time

import autolog

autolog.enable(log_models=False)

from sklearn.datasets import make_classification  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

X, y = make_classification(240, 6, random_state=0)
GridSearchCV(LogisticRegression(max_iter=300), {"C": [0.01, 0.1, 1, 10]}, cv=3).fit(X, y)

MODELS = ["xgb", "mlp", "mlp", "svm", "xgb", "mlp"]
for i, model in enumerate(MODELS):
    time.sleep(0.002)  # distinct start times
    with autolog.start_run(f"plain-{i}", tags={"team": ["vision", "nlp", "speech"][i % 3]}) as run:
        lr = 10.0 ** -(i % 4)
        run.log_params({"lr": lr if i % 2 else str(lr), "model": model, "layers": i + 1,
                        "augment": bool(i % 2)})
        for step in range(4):
            run.log_metrics({"loss": 1.0 / (step + 2 + i), "val_acc": 0.5 + 0.05 * i
                             + 0.01 * step}, step=step)
        if i == 4:
            run.log_metric("val_loss", math.nan)
        elif i != 5:
            run.log_metric("val_loss", 0.9 - 0.1 * i)

for name in ("dup", "dup"):
    with autolog.start_run(name, tags={"team": "vision"}) as run:
        run.log_params({"model": "xgb", "lr": 0.5})
        run.log_metrics({"val_acc": 0.55, "loss": 0.6})

with autolog.start_run("other-project", project="other") as run:
    run.log_params({"model": "rf"})
    run.log_metric("val_acc", 0.7)

try:
    with autolog.start_run("broken", tags={"team": "nlp"}) as run:
        run.log_params({"model": "mlp", "lr": 0.1})
        run.log_metric("loss", 2.0)
        raise RuntimeError("diverged")
except RuntimeError:
    pass

try:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras
except ImportError:
    keras = None
if keras is not None:
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    model.fit(X, y, epochs=2, batch_size=32, validation_split=0.25, verbose=0)
autolog.flush()
