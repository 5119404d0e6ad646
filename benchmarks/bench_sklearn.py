"""scikit-learn budget: time autolog adds to ``LogisticRegression().fit`` on 10,000 x 20.

Everything on: params, training metrics, evaluation plots (confusion matrix, ROC and
precision-recall curves, drawn on the writer thread), the dataset fingerprint, the console, model
saved (pickle), run context; the local store in a temporary directory. Fits with and without
autolog alternate (``enable()``/``disable()`` between them, outside the timed region), so a load
change on the machine hits both alike. After each autologged fit, ``autolog.flush()`` (timed on
its own row, outside the fit) does what the run left to the writer thread (drawing the plots),
so that it does not fall into the next timed fit. The
first autologged fit of the process pays the run context (``requirements.txt`` read from
``importlib.metadata``, cached afterwards) and the plugin set-up: it is shown on its own row.
Where MLflow is installed, ``mlflow.sklearn.autolog()`` runs on the same data afterwards, on a
sqlite store in the same temporary directory.

    python benchmarks/bench_sklearn.py            # 30 fits each
    python benchmarks/bench_sklearn.py --quick    # 8 fits each
    python benchmarks/bench_sklearn.py --against ../other-checkout   # this tree against another
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

from _common import against, arguments, mlflow_on_sqlite, table, timed

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
    from autolog.integrations.base import RunScope

    fit_once(x, y)  # warm scikit-learn's own caches
    autolog.enable(system_metrics=False)
    first = timed(lambda: fit_once(x, y))
    autolog.flush()
    plain, logged, monitored, flushes = [], [], [], []
    for _ in range(repeats):
        autolog.disable()
        plain.append(timed(lambda: fit_once(x, y)))
        autolog.enable(system_metrics=False)
        logged.append(timed(lambda: fit_once(x, y)))
        flushes.append(timed(autolog.flush))
        autolog.enable(system_metrics=True)
        monitored.append(timed(lambda: fit_once(x, y)))
        flushes.append(timed(autolog.flush))
    base = statistics.median(plain)
    rows = [["plain fit (no autolog)", f"{base:.1f}", "", repeats],
            ["autolog: first fit of the process", f"{first:.1f}", f"{first - base:+.1f}", 1],
            _row("autolog: steady state", logged, base),
            _row("autolog: steady state, system metrics on", monitored, base),
            ["  after each: what the writer thread finishes (plots drawn; flush())", "",
             f"{statistics.median(flushes):+.1f}", len(flushes)]]
    autolog.enable(system_metrics=True)
    rows.append(_part("  of which: run start + end with hardware sampling",
                      lambda: RunScope("part").close()))
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


_PER_FIT = """
import os, statistics, sys, tempfile, time
os.environ["AUTOLOG_DIR"] = tempfile.mkdtemp()
import autolog
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
x, y = make_classification(n_samples={rows}, n_features=20, random_state=0)
LogisticRegression(max_iter=300).fit(x, y)
times = {{"off": [], "on": [], "sampled": []}}
for _ in range(4):
    for mode in times:
        if mode == "off":
            autolog.disable()
        else:
            autolog.enable(system_metrics=mode == "sampled")
        time.sleep(0.1)  # enable()'s warm-up thread, done before the fits as in a script
        for _ in range({fits}):
            start = time.perf_counter()
            LogisticRegression(max_iter=300).fit(x, y)
            times[mode].append(time.perf_counter() - start)
            autolog.flush()  # the writer thread's part, outside the timing
off, on, sampled = (statistics.median(t) * 1e3 for t in times.values())
print(off, on - off, sampled - on)
"""


def bench_against(other: Path, rounds: int, rows: int = 2000, fits: int = 10) -> None:
    """Milliseconds autolog adds to a short fit on the training thread, with and without
    hardware sampling, in this tree and in ``other`` (a checkout): fresh interpreters, rounds
    interleaved so that a noisy machine weighs on both alike."""
    medians = against(other, _PER_FIT.format(rows=rows, fits=fits), rounds)
    table(f"LogisticRegression(max_iter=300).fit on {rows:,} x 20, ms on the training thread "
          f"(flush() between fits), median of {rounds} interleaved rounds of {4 * fits} fits "
          f"per configuration",
          ["tree", "plain fit", "autolog adds", "hardware sampling adds"],
          [[name, *(f"{m:.2f}" for m in row)] for name, row in medians.items()])


def main() -> None:
    parser = arguments(__doc__, "8 fits each instead of 30")
    parser.add_argument("--against", type=Path, metavar="CHECKOUT",
                        help="only compare this tree's per-fit cost with another checkout's")
    args = parser.parse_args()
    if args.against is not None:
        bench_against(args.against, args.repeats or (3 if args.quick else 7))
        return
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
