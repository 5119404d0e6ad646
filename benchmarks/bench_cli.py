"""Speed of ``autolog runs`` from the shell on a large local store, against MLflow's CLI and
``search_runs`` on the same runs.

The store: 100,000 finished runs (``--quick``: 10,000) written in autolog's journal format
(start, 8 params, a tag, 4 metrics x 3 points, the end, meta.json), as a long sweep leaves them.
Measured, each as a fresh process from the shell (what a person types):

1. ``autolog runs --sort -metrics.acc --limit 20``: the first time (no index: the store is
   indexed once) and warm (the index is there; budget < 1 s), and with a filter on a param.
2. ``autolog runs --json --limit 20`` (default order) and ``autolog show NAME``.
3. MLflow on the same runs in its own SQLite store: ``mlflow runs list --experiment-id N``
   (a process) and ``MlflowClient.search_runs(order_by=["metrics.acc DESC"], max_results=20)``
   (in-process, so without the interpreter's start-up: the anchor's best case).

    .venv/bin/python benchmarks/bench_cli.py            # 100,000 runs (minutes to write)
    .venv/bin/python benchmarks/bench_cli.py --quick    # 10,000 runs, a smoke test
    .venv/bin/python benchmarks/bench_cli.py --store DIR  # keep/reuse the store in DIR
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _common import arguments, table

BUDGET_WARM_S = 1.0
OPTIMIZERS = ("adam", "sgd", "rmsprop")


def run_rows(count: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """The runs both stores get: 8 params, 4 metrics (3 points each), a tag."""
    rng = random.Random(seed)
    for i in range(count):
        params = {"lr": 10 ** rng.uniform(-5, -1), "batch_size": rng.choice([16, 32, 64, 128]),
                  "optimizer": rng.choice(OPTIMIZERS), "epochs": 3,
                  **{f"p{k}": rng.random() for k in range(4)}}
        acc = rng.random()
        metrics = {"acc": [acc / 3, acc / 2, acc], "loss": [1.0, 0.8, 1 - acc],
                   "val_acc": [acc / 4, acc / 3, acc * 0.9], "val_loss": [1.1, 0.9, 1.05 - acc]}
        yield {"id": f"{rng.getrandbits(128):032x}", "name": f"sweep-{i}",
               "start": 1_700_000_000_000 + i * 1000, "params": params, "metrics": metrics,
               "team": rng.choice(["vision", "nlp", "speech"])}


def write_store(root: Path, count: int) -> None:
    """``count`` finished runs in autolog's journal format, with their meta.json."""
    from autolog.journal.codec import dumps_line
    from autolog.journal.files import JOURNAL, LOCK, META

    root.mkdir(parents=True, exist_ok=True)
    for run in run_rows(count):
        path = root / run["id"]
        path.mkdir()
        start, end = run["start"], run["start"] + 60_000
        head = {"t": "start", "v": 2, "id": run["id"], "name": run["name"], "project": "bench",
                "parent": None, "time": start, "pid": 1, "host": "bench", "backends": ["local"]}
        lines = [head, {"t": "tags", "d": {"team": run["team"]}},
                 {"t": "params", "d": run["params"]},
                 {"t": "metrics", "d": {key: [[0, 1, 2], values, [start, start + 1, start + 2]]
                                        for key, values in run["metrics"].items()}},
                 {"t": "end", "status": "FINISHED", "time": end}]
        (path / JOURNAL).write_text("".join(dumps_line(x) + "\n" for x in lines))
        meta = {k: head[k] for k in ("v", "id", "name", "project", "parent", "pid", "host",
                                     "backends")}
        meta.update(status="FINISHED", start_time=start, end_time=end,
                    metrics={k: v[-1] for k, v in run["metrics"].items()})
        (path / META).write_text(dumps_line(meta))
        (path / LOCK).touch()


def fill_mlflow(directory: Path, count: int) -> str:
    """The same runs in MLflow's SQLite store (rows inserted into its tables: logging 100,000
    runs through its API would take hours); returns the tracking URI's experiment id."""
    import mlflow
    import sqlalchemy as sa

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    uri = f"sqlite:///{directory / 'mlflow.db'}"
    experiment = mlflow.MlflowClient(uri).create_experiment("bench")
    rows: dict[str, list[dict[str, Any]]] = {"runs": [], "params": [], "metrics": [],
                                             "latest_metrics": [], "tags": []}
    for run in run_rows(count):
        rid = run["id"]
        rows["runs"].append({
            "run_uuid": rid, "name": run["name"], "source_type": "LOCAL", "source_name": "",
            "entry_point_name": "", "user_id": "bench", "status": "FINISHED",
            "start_time": run["start"], "end_time": run["start"] + 60_000,
            "source_version": "", "lifecycle_stage": "active",
            "artifact_uri": str(directory / rid), "experiment_id": int(experiment),
            "deleted_time": None})
        rows["params"] += [{"key": k, "value": str(v), "run_uuid": rid}
                           for k, v in run["params"].items()]
        for key, values in run["metrics"].items():
            points = [{"key": key, "value": v, "timestamp": run["start"] + s, "step": s,
                       "is_nan": False, "run_uuid": rid} for s, v in enumerate(values)]
            rows["metrics"] += points
            rows["latest_metrics"].append(points[-1])
        rows["tags"] += [{"key": "team", "value": run["team"], "run_uuid": rid},
                         {"key": "mlflow.runName", "value": run["name"], "run_uuid": rid}]
    engine = sa.create_engine(uri)
    meta = sa.MetaData()
    meta.reflect(engine)
    with engine.begin() as conn:
        for name, found in rows.items():
            conn.execute(meta.tables[name].insert(), found)
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return experiment


# -- timing -----------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOLOG_", "MLFLOW_"))}
    env["COLUMNS"] = "120"
    return env


def timed_command(argv: list[str], repeats: int, env: dict[str, str] | None = None,
                  cwd: Path | None = None) -> list[float]:
    """Seconds each of ``repeats`` runs of ``argv`` took, as a fresh process."""
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        done = subprocess.run(argv, env=env or _env(), cwd=cwd, capture_output=True, text=True,
                              timeout=3600)
        times.append(time.perf_counter() - began)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr[-2000:]}")
    return times


def _row(measure: str, size: str, times: list[float], budget: str) -> list[object]:
    median = statistics.median(times)
    verdict = ""
    if budget.startswith("< "):
        verdict = " ok" if median < float(budget[2:].split()[0]) else " OVER"
    return [measure, size, f"{median:.3f} s", f"{max(times):.3f} s", budget + verdict]


def bench_autolog(root: Path, count: int, repeats: int, fresh_index: bool) -> list[list[object]]:
    cli = [sys.executable, "-m", "autolog", "runs", "--dir", str(root)]
    size = f"{count:,} runs"
    rows = []
    if fresh_index:
        for path in root.glob(".index*"):
            path.unlink()
        first = timed_command([*cli, "--sort", "-metrics.acc", "--limit", "20"], 1)
        rows.append(_row("autolog runs --sort -metrics.acc --limit 20 (first: builds the index)",
                         size, first, "one-off"))
    for measure, extra in (
            ("autolog runs --sort -metrics.acc --limit 20 (warm)",
             ["--sort", "-metrics.acc", "--limit", "20"]),
            ("autolog runs --filter 'params.optimizer = adam' --sort -metrics.acc (warm)",
             ["--filter", "params.optimizer = adam", "--sort", "-metrics.acc", "--limit", "20"]),
            ("autolog runs --json --limit 20 (newest first, warm)", ["--json", "--limit", "20"])):
        timed_command([*cli, *extra], 1)  # warm-up: the page cache, the index
        rows.append(_row(measure, size, timed_command([*cli, *extra], repeats),
                         f"< {BUDGET_WARM_S:g} s"))
    show = [sys.executable, "-m", "autolog", "show", "sweep-1234", "--dir", str(root)]
    rows.append(_row("autolog show NAME (warm)", size, timed_command(show, repeats), "-"))
    return rows


def bench_mlflow(workdir: Path, count: int, repeats: int) -> list[list[object]]:
    began = time.perf_counter()
    experiment = fill_mlflow(workdir, count)
    print(f"mlflow: {count:,} runs loaded in {time.perf_counter() - began:.0f} s",
          file=sys.stderr)
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    env = {**_env(), "MLFLOW_TRACKING_URI": uri}
    mlflow_cli = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
    size = f"{count:,} runs"
    listing = timed_command([mlflow_cli, "runs", "list", "--experiment-id", experiment],
                            max(1, repeats // 3), env)
    rows = [_row("mlflow runs list --experiment-id N (a process)", size, listing, "anchor")]
    import mlflow

    client = mlflow.MlflowClient(uri)
    client.search_runs([experiment], order_by=["metrics.acc DESC"], max_results=20)
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        found = client.search_runs([experiment], order_by=["metrics.acc DESC"], max_results=20)
        times.append(time.perf_counter() - began)
        assert len(found) == 20
    rows.append(_row("MLflow search_runs(order_by metrics.acc DESC, 20) (in-process)", size,
                     times, "anchor"))
    return rows


def main() -> None:
    parser = arguments(__doc__ or "", "10,000 runs instead of 100,000")
    parser.add_argument("--store", type=Path, help="write the store here, or reuse it")
    parser.add_argument("--skip", default="", help="parts to skip: first,mlflow")
    args = parser.parse_args()
    count = 10_000 if args.quick else 100_000
    repeats = args.repeats or (5 if args.quick else 9)
    skip = set(args.skip.split(","))
    workdir = Path(tempfile.mkdtemp(prefix="autolog-bench-cli-"))
    root = args.store or workdir / "autolog-runs"
    rows: list[list[object]] = []
    try:
        if not (root.is_dir() and any(root.iterdir())):
            began = time.perf_counter()
            write_store(root, count)
            print(f"autolog: {count:,} runs written in {time.perf_counter() - began:.0f} s",
                  file=sys.stderr)
        rows += bench_autolog(root, count, repeats, "first" not in skip)
        if "mlflow" not in skip:
            rows += bench_mlflow(workdir, count, repeats)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; each autolog and mlflow "
          f"command is a fresh process (start-up included); {repeats} rounds, one warm-up")
    table("autolog runs on a large store", ["measure", "size", "median", "max", "budget"], rows)


if __name__ == "__main__":
    main()
