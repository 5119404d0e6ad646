"""Whole-script cost: the same short script run as a whole process, plain and with tracking.

What a user feels is the whole script, not one call: importing and enabling autolog, the first
fit's one-time work (run set-up, model save, context), and the exit. Each round runs the same
script once per configuration, in a shuffled order, each in a fresh ``python`` process; the
table gives the median wall time and the median over rounds of the difference to the plain run
of the same round (a load change on a shared machine hits a round's runs alike and cancels out
of the differences). The CPU time the script's process used is given too: on a machine shared
with other work it moves far less than wall time. Budget (issue 18): autolog (local store) adds
< 100 ms.

Configurations: plain; ``autolog.enable()`` with the local store; the same with MLflow on a
sqlite store (``local,mlflow``: delivery goes on in a detached process after the exit, waited
for between runs, outside the timing); ``mlflow.autolog()`` on the same sqlite store; and
``autolog run script.py`` (the launcher, no change to the script) where this autolog has it.

The budget verdict reads the median's 90 % interval (the rounds resampled 2,000 times): on a
machine where identical runs differ by tens of ms, a median a few ms either side of the budget
says nothing, and the verdict says so (``at the budget``) instead of picking a side.

    python benchmarks/bench_process.py                  # scikit-learn and XGBoost, 15 rounds
    python benchmarks/bench_process.py --quick          # 3 rounds
    python benchmarks/bench_process.py --script xgboost --repeats 21
    python benchmarks/bench_process.py --config "autolog (local)" --repeats 41  # plain, enable()
    python benchmarks/bench_process.py --script sklearn --config "(local)" --ab exit-revert
    python benchmarks/bench_process.py --script sklearn --config mlflow, --ab detach-early
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import arguments, table

BUDGET_MS = 100.0
#: resamples of the rounds for the median's interval, and its seed (the same rounds give the
#: same interval)
RESAMPLES, SEED = 2000, 0

#: each script: its set-up (imports, data), then the one fit
SCRIPTS = {
    "sklearn": ("""
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
x, y = make_classification(n_samples=2000, n_features=20, random_state=0)
""", "LogisticRegression(max_iter=300).fit(x, y)"),
    "xgboost": ("""
import numpy as np
import xgboost as xgb
rng = np.random.default_rng(0)
x = rng.normal(size=(2000, 20))
y = (x[:, 0] + rng.normal(size=2000) > 0).astype(int)
""", "xgb.XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1).fit(x, y)"),
}

#: the script around them: the prelude's time (``import autolog`` + ``enable()``) and the fit's
#: are printed to stderr, so the table can say where the whole-script difference comes from
TEMPLATE = """import time as _time
_t0 = _time.perf_counter()
{prelude}
_enable = _time.perf_counter() - _t0
{setup}
_t = _time.perf_counter()
{fit}
_fit = _time.perf_counter() - _t
import sys as _sys
print("AUTOLOG-BENCH", _enable, _fit, file=_sys.stderr, flush=True)
"""

PRELUDES = {
    "plain": "",
    "autolog (local)": "import autolog\nautolog.enable()\n",
    "autolog (local,mlflow)": "import autolog\nautolog.enable()\n",
    "mlflow.autolog()": ("import mlflow, logging, warnings\nwarnings.filterwarnings('ignore')\n"
                         "logging.getLogger('mlflow').setLevel(logging.ERROR)\n"
                         "mlflow.autolog()\n"),
    "autolog run script.py": "",
}
#: ``--ab NAME``: a configuration with one of its exit measures undone, an A/B in the same
#: rounds: (its name, what undoes the measure before the prelude, the configuration it undoes it in)
AB = {
    # the collector not paused during the last pass at exit
    "exit-gc": ("autolog (local), collector not paused at exit",
                "import contextlib, autolog.shutdown\n"
                "autolog.shutdown._collector_paused = contextlib.nullcontext\n",
                "autolog (local)"),
    # the patches not reverted at exit (the teardown's collections walk autolog's runtime)
    "exit-revert": ("autolog (local), patches kept at exit",
                    "import autolog.shutdown\nautolog.shutdown._let_go = lambda: None\n",
                    "autolog (local)"),
    # the detached delivery process not told to wait for the script's exit (--after)
    "detach-early": ("autolog (local,mlflow), delivery started at once",
                     "import subprocess\n"
                     "class _Popen(subprocess.Popen):\n"
                     "    def __init__(self, args, *rest, **options):\n"
                     "        if '--after' in args:\n"
                     "            at = args.index('--after')\n"
                     "            args = args[:at] + args[at + 2:]\n"
                     "        super().__init__(args, *rest, **options)\n"
                     "subprocess.Popen = _Popen\n",
                     "autolog (local,mlflow)"),
}


def has_launcher() -> bool:
    """Whether this autolog has ``autolog run`` (another issue adds it)."""
    done = subprocess.run([sys.executable, "-m", "autolog.cli", "run", "--help"],
                          capture_output=True, text=True)
    return done.returncode == 0


def has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


class Config:
    def __init__(self, name: str, script: Path, env: dict[str, str], launcher: bool = False):
        self.name = name
        self.script = script
        self.env = env
        self.launcher = launcher
        self.times: list[float] = []
        self.cpu: list[float] = []  # CPU seconds (user + system) of the script's process
        self.enable: list[float] = []  # seconds of the prelude (import autolog + enable)
        self.fit: list[float] = []  # seconds of the one fit

    def command(self) -> list[str]:
        if self.launcher:  # the ``autolog`` command a user types, where it is installed
            script = Path(sys.executable).with_name("autolog")
            launcher = [str(script)] if script.is_file() else [sys.executable, "-m", "autolog"]
            return [*launcher, "run", str(self.script)]
        return [sys.executable, str(self.script)]

    def run_once(self) -> float:
        """Run the script once; its wall time (its CPU time, prelude and fit appended to this
        configuration's lists)."""
        process = subprocess.Popen(self.command(), env=self.env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
        started = time.perf_counter()
        # read to its end first: a script writing more than a pipe holds would never exit
        stderr = process.stderr.read() if process.stderr is not None else ""
        _, status, usage = os.wait4(process.pid, 0)  # its CPU, with its children's it waited for
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        self.cpu.append(usage.ru_utime + usage.ru_stime)
        if process.returncode != 0:
            raise RuntimeError(f"{self.name} failed:\n{stderr[-2000:]}")
        marks = [line.split() for line in stderr.splitlines() if line.startswith("AUTOLOG-BENCH")]
        if marks:
            self.enable.append(float(marks[-1][1]))
            self.fit.append(float(marks[-1][2]))
        return elapsed


def configs(kind: str, root: Path, ab: list[str] | None = None,
            only: list[str] | None = None) -> tuple[list[Config], list[str]]:
    """The configurations that can run here (with ``only``: plain and those whose name holds
    one of its words), and notes on those that cannot."""
    store, mlflow_uri = root / "store", f"sqlite:///{root / 'mlflow.db'}"
    # as users run Python: bytecode cached (PYTHONDONTWRITEBYTECODE would compile every module of
    # every run), no variable of autolog or MLflow but the store and the tracking URI
    skip = ("AUTOLOG_", "MLFLOW_", "PYTHONDONTWRITEBYTECODE")
    base = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
    base.update(AUTOLOG_DIR=str(store), PYTHONWARNINGS="ignore", MLFLOW_TRACKING_URI=mlflow_uri)
    env = {"plain": base, "autolog (local)": {**base, "AUTOLOG_BACKEND": "local"},
           "autolog (local,mlflow)": {**base, "AUTOLOG_BACKEND": "local,mlflow"},
           "mlflow.autolog()": base, "autolog run script.py": {**base, "AUTOLOG_BACKEND": "local"}}
    env.update({AB[k][0]: env[AB[k][2]] for k in ab or ()})
    preludes = {**PRELUDES, **{AB[k][0]: AB[k][1] + PRELUDES[AB[k][2]] for k in ab or ()}}
    out, notes = [], []
    for name, prelude in preludes.items():
        if only and name != "plain" and not any(word in name for word in only):
            continue
        if "mlflow" in name and not has("mlflow"):
            notes.append(f"{name}: MLflow is not installed")
            continue
        if name.startswith("autolog run") and not has_launcher():
            notes.append(f"{name}: not in this autolog yet (the launcher comes with issue 14); "
                         "measure it here once it lands")
            continue
        script = root / f"{kind}-{len(out)}.py"
        setup, fit = SCRIPTS[kind]
        script.write_text(TEMPLATE.format(prelude=prelude, setup=setup, fit=fit))
        out.append(Config(name, script, env[name], launcher=name.startswith("autolog run")))
    return out, notes


def settle(store: Path, timeout: float = 120.0) -> None:
    """Wait, untimed, until no delivery process of the store runs (it competes for the CPU)."""
    from autolog.delivery.handoff import running

    deadline = time.monotonic() + timeout
    while running(store) and time.monotonic() < deadline:
        time.sleep(0.1)


def bench(kind: str, repeats: int, ab: list[str] | None = None,
          only: list[str] | None = None) -> None:
    root = Path(tempfile.mkdtemp(prefix="autolog-bench-process-"))
    try:
        runs, notes = configs(kind, root, ab, only)
        if any("mlflow" in config.name for config in runs):  # its sqlite schema, once, untimed
            import logging

            from mlflow import MlflowClient

            logging.getLogger("mlflow").setLevel(logging.ERROR)
            logging.getLogger("alembic").setLevel(logging.ERROR)
            MlflowClient(f"sqlite:///{root / 'mlflow.db'}").search_experiments()
        for config in runs:  # warm the file cache and .pyc files, untimed
            config.run_once()
            config.enable.clear()
            config.fit.clear()
            config.cpu.clear()
            settle(root / "store")
        for _ in range(repeats):
            order = list(runs)
            random.shuffle(order)
            for config in order:
                config.times.append(config.run_once())
                settle(root / "store")
        report(kind, runs, notes, repeats)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def report(kind: str, runs: list[Config], notes: list[str], repeats: int) -> None:
    plain, plain_cpu = runs[0].times, runs[0].cpu
    rows = []
    for config in runs:
        diffs = [1000 * (t - p) for t, p in zip(config.times, plain, strict=True)]
        cpu = [1000 * (t - p) for t, p in zip(config.cpu, plain_cpu, strict=True)]
        first = config is runs[0]
        low, high = median_interval(diffs)
        rows.append([config.name, f"{statistics.median(config.times):.3f}",
                     f"{min(config.times):.3f}",
                     "" if first else f"{statistics.median(diffs):+.0f} [{low:+.0f}, {high:+.0f}]",
                     "" if first else f"{statistics.median(cpu):+.0f}",
                     verdict(low, high) if config.name.startswith("autolog") and not first
                     else ""])
    table(f"{kind}: whole script (import, enable, one fit, exit), {repeats} rounds, "
          f"Python {sys.version.split()[0]}",
          ["configuration", "median (s)", "best (s)",
           "added wall ms (median of rounds [90% interval])", "added CPU ms (median of rounds)",
           f"budget {BUDGET_MS:.0f} ms (wall)"], rows)
    for note in notes:
        print(f"  not measured: {note}")
    parts = []
    for config in runs[1:]:
        if len(config.fit) != len(plain) or len(runs[0].fit) != len(plain):
            continue
        first = [1000 * (f - p) for f, p in zip(config.fit, runs[0].fit, strict=True)]
        prelude = [1000 * e for e in config.enable]
        parts.append([config.name, f"{statistics.median(prelude):.1f}",
                      f"{statistics.median(first):+.1f}"])
    if parts:
        table("where it goes (medians; the rest of the difference is the exit and the imports "
              "the script makes)", ["configuration", "prelude ms (import + enable)",
                                    "first fit added ms (vs plain's first fit)"], parts)


def median_interval(values: list[float]) -> tuple[float, float]:
    """The 90 % bootstrap interval of the median of ``values``."""
    rng = random.Random(SEED)
    medians = sorted(statistics.median(rng.choices(values, k=len(values)))
                     for _ in range(RESAMPLES))
    return medians[int(0.05 * RESAMPLES)], medians[int(0.95 * RESAMPLES) - 1]


def verdict(low: float, high: float) -> str:
    """Within or over the budget where the whole interval says so; else at the budget."""
    if high < BUDGET_MS:
        return "within"
    if low > BUDGET_MS:
        return "OVER"
    return "at the budget"


def main() -> None:
    parser = arguments(__doc__, "3 rounds")
    parser.add_argument("--ab", choices=sorted(AB), action="append",
                        help="add a configuration with this exit measure undone (repeatable): "
                             + "; ".join(f"{k}: {name!r}" for k, (name, _, _) in AB.items()))
    parser.add_argument("--script", choices=sorted(SCRIPTS), action="append",
                        help="which script (default: every one whose framework is installed)")
    parser.add_argument("--config", action="append", metavar="WORD",
                        help="only plain and the configurations whose name holds WORD "
                             "(repeatable: --config '(local)' --config 'autolog run')")
    args = parser.parse_args()
    repeats = args.repeats or (3 if args.quick else 15)
    kinds = args.script or [k for k in SCRIPTS if has(k)]
    for kind in kinds:
        bench(kind, repeats, args.ab, args.config)


if __name__ == "__main__":
    main()
