"""Core budgets: import time, log_metrics cost on the training thread, all-in cost, flat memory.

Prints one table per budget; where MLflow and W&B are installed, their own logging calls are
measured side by side in the same process (MLflow on a sqlite store, W&B offline).

    python benchmarks/bench_core.py            # full: 10 million points for the memory check
    python benchmarks/bench_core.py --quick    # a minute or so
    python benchmarks/bench_core.py --against ../main   # the hot path, this tree against another
                                                        # checkout, rounds interleaved
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import against, mlflow_on_sqlite, table

HEAVY = ("torch", "tensorflow", "keras", "lightning", "pytorch_lightning", "transformers",
         "xgboost", "sklearn", "mlflow", "wandb", "numpy", "pandas", "pynvml", "pluggy", "wrapt")


def bench_import(repeats: int) -> None:
    """``import autolog`` loads the package alone; the API loads on first use (``autolog.enable``
    or any other name): the budget is for both, what a script that uses autolog pays."""
    code = ("import time, sys; t = time.perf_counter(); import autolog; "
            "p = time.perf_counter() - t; autolog.start_run; "
            "d = time.perf_counter() - t; "
            f"heavy = [m for m in {HEAVY!r} if m in sys.modules]; "
            "t = time.perf_counter(); autolog.enable(); e = time.perf_counter() - t; "
            f"ml = [m for m in {HEAVY[:-2]!r} if m in sys.modules]; "
            "print(d, e, ','.join(heavy) or '-', ','.join(ml) or '-', p)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOLOG_")}
    env["AUTOLOG_DIR"] = tempfile.mkdtemp()
    imports, enables, packages, heavy, ml = [], [], [], set(), set()
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, check=True).stdout.split()
        imports.append(float(out[0]) * 1000)
        enables.append(float(out[1]) * 1000)
        heavy.update(m for m in out[2].split(",") if m != "-")
        ml.update(m for m in out[3].split(",") if m != "-")
        packages.append(float(out[4]) * 1000)
    table(f"import autolog ({repeats} fresh interpreters; budgets: the package and its API "
          "< 50 ms, enable() < 30 ms)",
          ["measure", "median ms", "max ms", "heavy modules imported"],
          [["import autolog (the package alone)", f"{statistics.median(packages):.1f}",
            f"{max(packages):.1f}", ""],
           ["and its API (first use)", f"{statistics.median(imports):.1f}",
            f"{max(imports):.1f}",
            ", ".join(sorted(heavy)) or "none (no ML framework, SDK, numpy, pluggy, wrapt)"],
           ["then autolog.enable()", f"{statistics.median(enables):.1f}", f"{max(enables):.1f}",
            ", ".join(sorted(ml))
            or "no ML framework or SDK (pluggy loads here)"]])


def per_call(fn, n: int) -> tuple[float, float, float]:
    """Median, p99 and mean per call in microseconds, timer overhead subtracted."""
    clock = time.perf_counter_ns
    overhead = statistics.median(-clock() + clock() for _ in range(10_000))
    samples = []
    for i in range(n):
        t = clock()
        fn(i)
        samples.append(clock() - t - overhead)
    samples.sort()
    return (samples[len(samples) // 2] / 1000, samples[int(len(samples) * 0.99)] / 1000,
            sum(samples) / len(samples) / 1000)


def bench_log_metrics(n: int, directory: Path) -> list[list[object]]:
    import autolog

    os.environ["AUTOLOG_DIR"] = str(directory / "autolog")
    os.environ["AUTOLOG_SYSTEM_METRICS"] = "0"
    rows = []
    run = autolog.start_run("bench")
    median, p99, _ = per_call(lambda i: run.log_metrics({"loss": i * 0.5}, step=i), n)
    run.end()

    run = autolog.start_run("bench-all-in")
    gc.collect()
    t = time.perf_counter()
    for i in range(n):
        run.log_metrics({"loss": i * 0.5}, step=i)
    autolog.flush()
    all_in = (time.perf_counter() - t) / n * 1e6
    run.end()
    rows.append(["autolog Run.log_metrics", f"{median:.2f}", f"{p99:.2f}", f"{all_in:.2f}", n])

    run = autolog.start_run("bench-module")
    median_m, p99_m, _ = per_call(lambda i: autolog.log_metrics({"loss": i * 0.5}, step=i), n)
    run.end()
    rows.append(["autolog.log_metrics (active run)", f"{median_m:.2f}", f"{p99_m:.2f}", "", n])
    return rows


_HOT_PATH = """
import os, statistics, sys, tempfile, time
os.environ.update(AUTOLOG_DIR=tempfile.mkdtemp(), AUTOLOG_SYSTEM_METRICS="0")
import autolog
sys.path.insert(0, {bench!r})
from bench_core import per_call
n = {n}
run = autolog.start_run("bench")
one = per_call(lambda i: run.log_metrics({{"loss": i * 0.5}}, step=i), n)
three = per_call(lambda i: run.log_metrics({{"loss": i * 0.5, "acc": 0.5, "lr": 0.1}}, step=i), n)
auto = per_call(lambda i: run.log_metrics({{"loss": i * 0.5}}), n)
run.end()
if hasattr(os, "fork"):
    run = autolog.start_run("bench-fork")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        child = per_call(lambda i: run.log_metrics({{"loss": i * 0.5}}, step=i), n)
        os.write(write, repr(child[0]).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    forked = float(os.read(read, 100))
    run.end()
else:
    forked = float("nan")
print(one[0], one[1], three[0], auto[0], forked)
"""


def bench_against(other: Path, n: int, rounds: int) -> None:
    """The hot path of this tree and of ``other`` (a checkout), in fresh interpreters, rounds
    interleaved so that a noisy machine weighs on both alike."""
    code = _HOT_PATH.format(bench=str(Path(__file__).resolve().parent), n=n)
    rows = [[name, *(f"{m:.3f}" for m in medians)]
            for name, medians in against(other, code, rounds).items()]
    table(f"Run.log_metrics on the training thread, µs, median of {rounds} interleaved rounds "
          f"of {n:,} calls each (budget: median < 1)",
          ["tree", "1 key median", "1 key p99", "3 keys median", "1 key, no step",
           "1 key, forked child"], rows)


def bench_mlflow(n: int, directory: Path) -> list[list[object]]:
    try:
        import mlflow
    except ImportError:
        return [["mlflow.log_metric", "not installed", "", "", ""]]
    mlflow_on_sqlite(directory)
    with mlflow.start_run():
        median, p99, mean = per_call(lambda i: mlflow.log_metric("loss", i * 0.5, step=i), n)
    return [["mlflow.log_metric (sqlite)", f"{median:.1f}", f"{p99:.1f}", f"{mean:.1f}", n]]


def bench_wandb(n: int, directory: Path) -> list[list[object]]:
    try:
        import wandb
    except ImportError:
        return [["wandb.log", "not installed", "", "", ""]]
    os.environ.update(WANDB_MODE="offline", WANDB_SILENT="true", WANDB_DIR=str(directory))
    run = wandb.init(project="bench", dir=str(directory))
    median, p99, _ = per_call(lambda i: run.log({"loss": i * 0.5}, step=i), n)
    t = time.perf_counter()
    run.finish()
    finish = time.perf_counter() - t
    mean_all = median + finish / n * 1e6
    return [["wandb.log (offline)", f"{median:.1f}", f"{p99:.1f}", f"~{mean_all:.1f}", n]]


def bench_memory(points: int, directory: Path) -> None:
    import psutil

    import autolog

    os.environ["AUTOLOG_DIR"] = str(directory / "memory")
    process = psutil.Process()
    run = autolog.start_run("bench-memory")
    rows = []
    step = points // 10
    start_rss = process.memory_info().rss
    t = time.perf_counter()
    for chunk in range(10):
        base = chunk * step
        for i in range(base, base + step):
            run.log_metrics({"loss": 0.5}, step=i)
        rss = process.memory_info().rss
        rows.append([f"{(chunk + 1) * step:,}", f"{(rss - start_rss) / 2**20:+.1f}",
                     f"{time.perf_counter() - t:.1f}"])
    run.end()
    table(f"memory while logging {points:,} points (RSS growth from the first point; "
          "budget: flat)", ["points logged", "RSS growth MiB", "seconds"], rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--against", type=Path, metavar="CHECKOUT",
                        help="compare the hot path with another checkout's src/ (only that)")
    args = parser.parse_args()
    n = 20_000 if args.quick else 100_000
    if args.against is not None:
        bench_against(args.against, n, 3 if args.quick else 7)
        return
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        bench_import(5 if args.quick else 15)
        rows = bench_log_metrics(n, directory)
        rows += bench_mlflow(300 if args.quick else 1000, directory)
        rows += bench_wandb(n // 5, directory)
        table("one metric per call on the training thread, microseconds "
              "(budgets: median < 2, all-in < 5)",
              ["call", "median", "p99", "all-in (incl. flush)", "calls"], rows)
        bench_memory(1_000_000 if args.quick else 10_000_000, directory)
    print(f"\npython {sys.version.split()[0]}, {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
