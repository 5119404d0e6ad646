"""XGBoost budget: 200 boosting rounds with an eval set, with and without autolog (< 5 % slower).

Both APIs: ``xgboost.train`` and ``XGBClassifier.fit``, on 16,000 x 20 training rows and a
4,000-row eval set. Everything on: params, a metric per eval set and round, feature importance
(JSON, and a PNG chart when Pillow is installed), model saved (UBJSON). The after-training work
is a fixed cost per training (tens of milliseconds), shown part by part: on a much smaller
training it is a larger share, on a larger one a smaller. Trainings with and without autolog
alternate (``enable()``/``disable()`` between them, outside the timed region). The first
autologged training of the process pays the run context (``requirements.txt``, cached
afterwards): it is shown on its own row. Where MLflow is installed,
``mlflow.xgboost.autolog()`` runs on the same data afterwards, on a sqlite store.

    python benchmarks/bench_xgboost.py            # 10 trainings each
    python benchmarks/bench_xgboost.py --quick    # 3 trainings each
    python benchmarks/bench_xgboost.py --threads 1   # steadier on a loaded machine
    python benchmarks/bench_xgboost.py --against ../other-checkout   # a short fit, two trees
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

from _common import against, arguments, mlflow_on_sqlite, table, timed

BUDGET_PERCENT = 5.0
ROUNDS = 200


def trainers(threads: int | None):
    """``{api name: train function}`` on the same data."""
    import xgboost as xgb
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=20_000, n_features=20, n_informative=10,
                               random_state=0)
    xt, yt, xv, yv = x[:16_000], y[:16_000], x[16_000:], y[16_000:]
    dtrain, dvalid = xgb.DMatrix(xt, yt), xgb.DMatrix(xv, yv)
    params = {"objective": "binary:logistic", "max_depth": 4, "eval_metric": "logloss",
              "nthread": threads}

    def native() -> None:
        xgb.train(params, dtrain, ROUNDS, evals=[(dvalid, "valid")], verbose_eval=False)

    def sklearn_api() -> None:
        xgb.XGBClassifier(n_estimators=ROUNDS, max_depth=4, n_jobs=threads).fit(
            xt, yt, eval_set=[(xv, yv)], verbose=False)

    return {"xgboost.train": native, "XGBClassifier.fit": sklearn_api}


def bench_autolog(train, repeats: int) -> tuple[list[list[object]], float]:
    import autolog

    train()  # warm XGBoost
    autolog.enable(system_metrics=False)
    first = timed(train)
    plain, logged = [], []
    for _ in range(repeats):
        autolog.disable()
        plain.append(timed(train))
        autolog.enable(system_metrics=False)
        logged.append(timed(train))
    autolog.disable()
    base, median = statistics.median(plain), statistics.median(logged)
    slower = (median / base - 1) * 100
    verdict = "ok" if slower < BUDGET_PERCENT else "OVER BUDGET"
    return [["  plain (no autolog)", f"{base:.0f}", "", repeats],
            ["  autolog: first training of the process", f"{first:.0f}",
             f"{(first / base - 1) * 100:+.1f} %", 1],
            ["  autolog: steady state", f"{median:.0f}", f"{slower:+.1f} % ({verdict})",
             repeats]], base


def breakdown() -> list[list[object]]:
    """The after-training work, part by part, on a 200-round booster."""
    import xgboost as xgb
    from sklearn.datasets import make_classification

    from autolog.integrations.base import RunScope
    from autolog.integrations.xgboost import chart, feature_importance

    x, y = make_classification(n_samples=2_000, n_features=20, random_state=0)
    booster = xgb.train({"max_depth": 4}, xgb.DMatrix(x, y), ROUNDS)
    scope = RunScope("breakdown")
    importance = feature_importance(booster)
    parts = [("  feature importance (3 types, JSON)",
              lambda: scope.run.log_dict(feature_importance(booster), "fi.json")),
             ("  feature importance chart (PNG; drawn on the writer thread)",
              lambda: chart(importance)),
             ("  model saved (UBJSON, files, spec)", lambda: scope.run.log_model(booster))]
    rows = []
    for name, fn in parts:
        times = [timed(fn) for _ in range(5)]
        rows.append([name, f"{statistics.median(times):.1f}", "", 5])
    scope.close()
    return rows


def bench_mlflow(train, repeats: int, directory: Path, base: float) -> list[list[object]]:
    try:
        import mlflow
        import mlflow.xgboost
    except ImportError:
        return [["  mlflow.xgboost.autolog()", "not installed", "", ""]]
    mlflow_on_sqlite(directory)
    mlflow.xgboost.autolog(silent=True)
    try:
        first = timed(train)
        times = [timed(train) for _ in range(repeats)]
    finally:
        mlflow.xgboost.autolog(disable=True)
    median = statistics.median(times)
    return [["  mlflow.xgboost.autolog(): first training", f"{first:.0f}",
             f"{(first / base - 1) * 100:+.1f} %", 1],
            ["  mlflow.xgboost.autolog(): steady state", f"{median:.0f}",
             f"{(median / base - 1) * 100:+.1f} %", repeats]]


_PER_FIT = """
import os, statistics, tempfile, threading, time
os.environ["AUTOLOG_DIR"] = tempfile.mkdtemp()
import numpy as np, xgboost as xgb
import autolog
rng = np.random.default_rng(0)
x = rng.normal(size=({rows}, 20))
y = (x[:, 0] + rng.normal(size={rows}) > 0).astype(int)
fit = lambda: xgb.XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1).fit(x, y)
autolog.enable(system_metrics=False)
for thread in threading.enumerate():
    if thread.name == "autolog-prewarm":
        thread.join()  # enable()'s warm-up, done before the fits as in a script
for _ in range(3):
    fit()
    autolog.flush()
on, off = [], []
for _ in range({fits}):
    autolog.enable(system_metrics=False)
    start = time.perf_counter()
    fit()
    on.append(time.perf_counter() - start)
    autolog.flush()  # the writer thread's part, outside the timing
    autolog.disable()
    start = time.perf_counter()
    fit()
    off.append(time.perf_counter() - start)
print(statistics.median(off) * 1e3, (statistics.median(on) - statistics.median(off)) * 1e3)
"""


def bench_against(other: Path, rounds: int, rows: int = 2000, fits: int = 25) -> None:
    """Milliseconds autolog adds to a short ``XGBClassifier.fit`` (20 trees) on the training
    thread, in this tree and in ``other`` (a checkout): fresh interpreters, rounds interleaved
    so that a noisy machine weighs on both alike."""
    medians = against(other, _PER_FIT.format(rows=rows, fits=fits), rounds)
    table(f"XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1).fit on {rows:,} x 20, ms on "
          f"the training thread (flush() between fits), median of {rounds} interleaved rounds "
          f"of {fits} fits each way",
          ["tree", "plain fit", "autolog adds"],
          [[name, *(f"{m:.2f}" for m in row)] for name, row in medians.items()])


def main() -> None:
    parser = arguments(__doc__, "3 trainings each instead of 10")
    parser.add_argument("--threads", type=int, default=None,
                        help="XGBoost threads (default: XGBoost's, all cores); 1 is steadier "
                             "on a machine other work is loading")
    parser.add_argument("--against", type=Path, metavar="CHECKOUT",
                        help="only compare this tree's cost on a short fit with another "
                             "checkout's")
    args = parser.parse_args()
    if args.against is not None:
        bench_against(args.against, args.repeats or (3 if args.quick else 7))
        return
    repeats = args.repeats or (3 if args.quick else 10)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        os.environ["AUTOLOG_DIR"] = str(directory / "autolog-runs")
        rows, bases = [], {}
        for name, train in trainers(args.threads).items():
            rows.append([name, "", "", ""])
            measured, bases[name] = bench_autolog(train, repeats)
            rows += measured
        rows.append(["autolog's after-training work (inside the steady-state figures)", "", "",
                     ""])
        import autolog

        autolog.enable(system_metrics=False)
        rows += breakdown()
        autolog.disable()
        for name, train in trainers(args.threads).items():
            rows.append([f"{name}, MLflow", "", "", ""])
            rows += bench_mlflow(train, max(1, repeats // 2), directory, bases[name])
    table(f"XGBoost, {ROUNDS} rounds on 16,000 x 20 with a 4,000-row eval set (median; budget: "
          f"autolog < {BUDGET_PERCENT:g} % slower; XGBoost threads: {args.threads or 'all'}; "
          f"python {sys.version.split()[0]})",
          ["measure", "ms", "vs plain", "runs"], rows)


if __name__ == "__main__":
    main()
