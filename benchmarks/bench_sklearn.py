"""scikit-learn budget: time autolog adds to ``LogisticRegression().fit`` on 10,000 x 20.

Everything on: params, training metrics, evaluation plots (confusion matrix, ROC and
precision-recall curves, drawn on the writer thread), the dataset fingerprint, the console, model
saved (pickle), run context; the local store in a temporary directory. Fits with and without
autolog alternate (``enable()``/``disable()`` between them, outside the timed region), so a load
change on the machine hits both alike. The
first autologged fit of the process pays the run context (``requirements.txt`` read from
``importlib.metadata``, cached afterwards) and the plugin set-up: it is shown on its own row.
Where MLflow is installed, ``mlflow.sklearn.autolog()`` runs on the same data afterwards, on a
sqlite store in the same temporary directory.

    python benchmarks/bench_sklearn.py            # 30 fits each
    python benchmarks/bench_sklearn.py --quick    # 8 fits each
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

from _common import arguments, mlflow_on_sqlite, table, timed

BUDGET_MS = 25.0


def data():
    from sklearn.datasets import make_classification

    return make_classification(n_samples=10_000, n_features=20, n_informative=10,
                               random_state=0)


def fit_once(x, y) -> None:
    from sklearn.linear_model import LogisticRegression

    LogisticRegression().fit(x, y)


def bench_autolog(x, y, repeats: int) -> tuple[list[list[object]], float]:
    import autolog

    fit_once(x, y)  # warm scikit-learn's own caches
    autolog.enable(system_metrics=False)
    first = timed(lambda: fit_once(x, y))
    plain, logged, monitored = [], [], []
    for _ in range(repeats):
        autolog.disable()
        plain.append(timed(lambda: fit_once(x, y)))
        autolog.enable(system_metrics=False)
        logged.append(timed(lambda: fit_once(x, y)))
        autolog.enable(system_metrics=True)
        monitored.append(timed(lambda: fit_once(x, y)))
    base = statistics.median(plain)
    rows = [["plain fit (no autolog)", f"{base:.1f}", "", repeats],
            ["autolog: first fit of the process", f"{first:.1f}", f"{first - base:+.1f}", 1],
            _row("autolog: steady state", logged, base),
            _row("autolog: steady state, system metrics on", monitored, base)]
    autolog.enable(system_metrics=False)
    rows += breakdown(x, y)
    autolog.disable()
    return rows, base


def _row(name: str, times: list[float], base: float) -> list[object]:
    added = statistics.median(times) - base
    verdict = "ok" if added < BUDGET_MS else "OVER BUDGET"
    return [name, f"{statistics.median(times):.1f}", f"{added:+.1f} ({verdict})", len(times)]


def breakdown(x, y) -> list[list[object]]:
    """Where autolog's time goes, part by part (system metrics off)."""
    from sklearn.linear_model import LogisticRegression

    from autolog.datasets import fingerprint
    from autolog.evaluation import log_plots
    from autolog.integrations.base import RunScope
    from autolog.integrations.sklearn import estimator_params, training_metrics

    model = LogisticRegression().fit(x, y)
    seen: dict = {}
    training_metrics(model, x, y, predictions=seen)
    rows = [_part("  of which: run start + end (directory, journal, context)",
                  lambda: RunScope("part").close())]
    scope = RunScope("breakdown")
    parts = [("  of which: params (get_params, flattened)", lambda: estimator_params(model)),
             ("  of which: training metrics (predict, predict_proba, 7 metrics)",
              lambda: training_metrics(model, x, y)),
             ("  of which: evaluation plots (their data; drawn off this thread)",
              lambda: log_plots(scope.run, "training", **seen)),
             ("  of which: dataset fingerprint (X and y)",
              lambda: fingerprint("training", x, y)),
             ("  of which: model saved (pickle, files, spec)",
              lambda: scope.run.log_model(model))]
    rows += [_part(name, fn) for name, fn in parts]
    scope.close()
    return rows


def _part(name: str, fn) -> list[object]:
    times = [timed(fn) for _ in range(10)]
    return [name, "", f"{statistics.median(times):+.2f}", 10]


def bench_mlflow(x, y, repeats: int, directory: Path, base: float) -> list[list[object]]:
    try:
        import mlflow
        import mlflow.sklearn
    except ImportError:
        return [["mlflow.sklearn.autolog()", "not installed", "", ""]]
    mlflow_on_sqlite(directory)
    mlflow.sklearn.autolog(silent=True)
    first = timed(lambda: fit_once(x, y))
    times = [timed(lambda: fit_once(x, y)) for _ in range(repeats)]
    mlflow.sklearn.autolog(disable=True)
    median = statistics.median(times)
    return [["mlflow.sklearn.autolog(): first fit", f"{first:.1f}", f"{first - base:+.1f}", 1],
            ["mlflow.sklearn.autolog(): steady state", f"{median:.1f}",
             f"{median - base:+.1f}", repeats]]


def main() -> None:
    args = arguments(__doc__, "8 fits each instead of 30").parse_args()
    repeats = args.repeats or (8 if args.quick else 30)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        os.environ["AUTOLOG_DIR"] = str(directory / "autolog-runs")
        x, y = data()
        rows, base = bench_autolog(x, y, repeats)
        rows += bench_mlflow(x, y, max(3, repeats // 3), directory, base)
    table(f"LogisticRegression().fit on 10,000 x 20 (median of the repeats; budget: autolog adds "
          f"< {BUDGET_MS:g} ms per fit; python {sys.version.split()[0]})",
          ["measure", "fit ms", "added ms", "fits"], rows)


if __name__ == "__main__":
    main()
