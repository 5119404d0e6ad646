"""Speed of the web UI's server side, over HTTP on loopback, with the budgets of issue 13.

1. Runs API: 100,000 runs x (20 params, 10 metrics) in one project; the first page (100 rows)
   sorted by a metric and filtered by a param, and a few other views; p50 / p95 of N requests.
   On SQLite (the store's index and ``autolog server`` share the schema and the queries) and on
   PostgreSQL when ``initdb``/``pg_ctl`` are installed; and the keys API (the pickers' keys and
   the default columns), which the runs page asks for before its first rows. Anchor: MLflow's
   ``search_runs`` on the same runs in its own SQLite store (same filter on a param, same
   metric order, 100 rows).
2. History API: 10 runs x 1,000,000 points of one metric, stored through the server's ingest
   code (points + rollups); one compare request (``/api/v1/histories``, all 10 runs, 1,000
   buckets), one run, and a zoom into 1% of the steps.
3. ``autolog ui`` on a store of 10,000 runs (journals as autolog writes them): from the process
   start to the first answered runs table, the first time (no index) and the next time.

    .venv/bin/python benchmarks/bench_ui.py            # the budgets' sizes (several minutes)
    .venv/bin/python benchmarks/bench_ui.py --quick    # 10x smaller, a smoke test
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from _common import arguments, table
from bench_server import Postgres, free_port

from autolog.filters import number_of, text_of
from autolog.server.db import Database

PARAMS, METRICS = 20, 10
BUDGET_RUNS_MS, BUDGET_HISTORY_MS = 100, 200
BUDGET_START_FIRST_S, BUDGET_START_AGAIN_S = 5.0, 1.0
BUDGET_VIEW = "first page, sort -metrics.m3, filter params.lr >= 1e-3"


# -- data -------------------------------------------------------------------------------------


def run_rows(count: int, seed: int = 1) -> Iterator[dict[str, Any]]:
    """The runs both stores get: 20 params (numbers, a few strings), 10 metrics, a tag."""
    rng = random.Random(seed)
    for i in range(count):
        params: dict[str, Any] = {"lr": 10 ** rng.uniform(-5, -1),
                                  "batch_size": rng.choice([16, 32, 64, 128]),
                                  "optimizer": rng.choice(["adam", "sgd", "rmsprop"])}
        for k in range(PARAMS - 3):
            params[f"p{k}"] = rng.random() if k % 3 else rng.choice(["a", "b", "c", "d"])
        yield {"id": f"{rng.getrandbits(128):032x}", "seq": i + 1, "name": f"run-{i}",
               "start": 1_700_000_000_000 + i * 1000, "params": params,
               "metrics": {f"m{k}": rng.random() for k in range(METRICS)},
               "team": rng.choice(["vision", "nlp", "speech"])}


def fill_autolog(db: Database, count: int) -> None:
    """Bulk-load the runs into autolog's schema (what the index or the server holds)."""
    tables: dict[str, list[tuple[Any, ...]]] = {"runs": [], "params": [], "latest_metrics": [],
                                                "tags": []}
    for run in run_rows(count):
        rid, seq = run["id"], run["seq"]
        tables["runs"].append((rid, seq, run["name"], "bench", "FINISHED", None, run["start"],
                               run["start"] + 60_000, run["start"]))
        tables["params"] += [(rid, k, json.dumps(v), number_of(v), text_of(v)[:200], seq)
                             for k, v in run["params"].items()]
        tables["latest_metrics"] += [(rid, k, v, 99, run["start"], v / 2, v * 2, 100, seq)
                                     for k, v in run["metrics"].items()]
        tables["tags"].append((rid, "team", run["team"], run["team"], seq))
    columns = {"runs": "id,seq,name,project,status,parent_id,start_time,end_time,created",
               "params": "run_id,key,value,num,text,run_seq",
               "latest_metrics": "run_id,key,value,step,timestamp,vmin,vmax,count,run_seq",
               "tags": "run_id,key,value,text,run_seq"}
    with db.write() as conn:
        for name, rows in tables.items():
            if db.sqlite:
                marks = ",".join("?" * len(columns[name].split(",")))
                conn.exec_driver_sql(f"INSERT INTO {name} ({columns[name]}) VALUES ({marks})",
                                     rows)
            else:
                with conn.connection.driver_connection.cursor() as cursor, cursor.copy(
                        f"COPY {name} ({columns[name]}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
    _analyze(db)


def _analyze(db: Database) -> None:
    """What a database that has lived a while has: planner statistics (and, on PostgreSQL, a
    visibility map, which autovacuum makes for index-only scans)."""
    if db.sqlite:
        with db.write() as conn:
            conn.exec_driver_sql("ANALYZE")
        return
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")


def fill_mlflow(directory: Path, count: int) -> tuple[Any, str]:
    """The same runs in MLflow's own SQLite store (rows inserted into its tables: logging
    100,000 runs through its API would take hours); a client and the experiment id."""
    import mlflow
    import sqlalchemy as sa

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    uri = f"sqlite:///{directory / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("bench")
    runs, params, metrics, latest, tags = [], [], [], [], []
    for run in run_rows(count):
        rid = run["id"]
        runs.append({"run_uuid": rid, "name": run["name"], "source_type": "LOCAL",
                     "source_name": "", "entry_point_name": "", "user_id": "bench",
                     "status": "FINISHED", "start_time": run["start"],
                     "end_time": run["start"] + 60_000, "source_version": "",
                     "lifecycle_stage": "active", "artifact_uri": str(directory / rid),
                     "experiment_id": int(experiment), "deleted_time": None})
        params += [{"key": k, "value": str(v), "run_uuid": rid} for k, v in
                   run["params"].items()]
        for key, value in run["metrics"].items():
            row = {"key": key, "value": value, "timestamp": run["start"], "step": 99,
                   "is_nan": False, "run_uuid": rid}
            metrics.append(row)
            latest.append(row)
        tags.append({"key": "team", "value": run["team"], "run_uuid": rid})
    engine = sa.create_engine(uri)
    meta = sa.MetaData()
    meta.reflect(engine)
    with engine.begin() as conn:
        for name, rows in (("runs", runs), ("params", params), ("metrics", metrics),
                           ("latest_metrics", latest), ("tags", tags)):
            conn.execute(meta.tables[name].insert(), rows)
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return client, experiment


# -- serving ------------------------------------------------------------------------------------


@contextmanager
def serving(url: str) -> Iterator[str]:
    """``autolog server``'s app on ``url``'s database, without tokens, on a free port."""
    import uvicorn

    from autolog.server.app import create_app
    from autolog.server.settings import ServerConfig

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(ServerConfig(db=url, auth=False)),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(30)


def latencies(call: Callable[[], Any], repeats: int) -> list[float]:
    call()  # one warm-up: connections open, statements prepared
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        out.append((time.perf_counter() - start) * 1000)
    return out


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _row(measure: str, size: str, times: list[float], budget: str, unit: str = "ms"
         ) -> list[object]:
    return [measure, size, f"{statistics.median(times):.1f} {unit}", f"{p95(times):.1f} {unit}",
            budget]


VIEWS = {
    BUDGET_VIEW: {"sort": "-metrics.m3", "filter": "params.lr >= 1e-3"},
    "first page, sort -metrics.m3, filter params.optimizer = adam":
        {"sort": "-metrics.m3", "filter": "params.optimizer = adam"},
    "first page, newest first, no filter": {},
    "first page, sort params.lr, filter metrics.m1 < 0.5 and tags.team = nlp":
        {"sort": "params.lr", "filter": "metrics.m1 < 0.5 and tags.team = nlp"},
    "a page at a tenth of the runs (deep scroll), sort -metrics.m3": {"sort": "-metrics.m3"},
    "with 6 columns, sort -metrics.m3, filter params.lr >= 1e-3":
        {"sort": "-metrics.m3", "filter": "params.lr >= 1e-3",
         "columns": "params.lr,params.batch_size,params.optimizer,metrics.m0,metrics.m1:min,"
                    "tags.team"},
}


def bench_runs_api(name: str, url: str, count: int, repeats: int) -> list[list[object]]:
    db = Database(url)
    db.migrate()
    began = time.perf_counter()
    fill_autolog(db, count)
    print(f"{name}: {count:,} runs loaded in {time.perf_counter() - began:.0f} s",
          file=sys.stderr)
    db.dispose()
    rows = []
    with serving(url) as base, requests.Session() as http:
        for view, params in VIEWS.items():
            query = {"project": "bench", "limit": 100, **params}
            if "deep scroll" in view:
                query["offset"] = count // 10

            def call(query: dict[str, Any] = query) -> None:
                response = http.get(f"{base}/api/v1/runs", params=query, timeout=60)
                assert response.status_code == 200 and response.json()["runs"], response.text

            budget = f"p95 < {BUDGET_RUNS_MS} ms" if view == BUDGET_VIEW else ""
            rows.append(_row(f"runs API ({name}): {view}", f"{count:,} runs",
                             latencies(call, repeats), budget))

        def keys() -> None:  # what the runs page asks before its rows, when no column is picked
            response = http.get(f"{base}/api/v1/keys", params={"project": "bench"}, timeout=60)
            assert response.status_code == 200 and response.json()["columns"], response.text

        rows.append(_row(f"keys API ({name}): the pickers' keys and the default columns",
                         f"{count:,} runs", latencies(keys, repeats), ""))
    return rows


def bench_mlflow(count: int, repeats: int, workdir: Path) -> list[list[object]]:
    began = time.perf_counter()
    client, experiment = fill_mlflow(workdir, count)
    print(f"mlflow: {count:,} runs loaded in {time.perf_counter() - began:.0f} s",
          file=sys.stderr)
    rows = []
    for view, filter_string in (
            ("first page, sort metrics.m3 DESC, filter params.optimizer = 'adam'",
             "params.optimizer = 'adam'"),
            ("first page, sort metrics.m3 DESC, no filter", "")):
        def call(filter_string: str = filter_string) -> None:
            found = client.search_runs([experiment], filter_string=filter_string,
                                       order_by=["metrics.m3 DESC"], max_results=100)
            assert len(found) == 100

        rows.append(_row(f"MLflow search_runs (SQLite): {view}", f"{count:,} runs",
                         latencies(call, repeats), "anchor"))
    return rows


def bench_history(url: str, runs: int, points: int, repeats: int) -> list[list[object]]:
    from autolog.server import ingest, series
    from autolog.server.schemas import RunIn

    db = Database(url)
    db.migrate()
    began = time.perf_counter()
    ids = [f"{random.getrandbits(128):032x}" for _ in range(runs)]
    chunk = 100_000
    for run_id in ids:
        ingest.upsert_run(db, run_id, RunIn(name="long", project="history"))
        with db.read() as conn:
            seq = ingest.require_run(conn, run_id)
        done = 0
        while done < points:
            n = min(chunk, points - done)
            steps = list(range(done, done + n))
            values = [abs(((s * 7919) % 1000) / 1000 - 0.5) for s in steps]
            column = (steps, values, [1_700_000_000_000 + s for s in steps])
            with db.write() as conn:
                before = series.update_latest(conn, run_id, {"loss": column}, seq)
                series.store_points(conn, run_id, {"loss": column}, before)
            done += n
    print(f"history: {runs} x {points:,} points stored in {time.perf_counter() - began:.0f} s",
          file=sys.stderr)
    db.dispose()
    rows = []
    size = f"{runs} x {points:,} points"
    with serving(url) as base, requests.Session() as http:
        def compare() -> None:
            got = http.get(f"{base}/api/v1/histories", timeout=60,
                           params={"run": ids, "key": "loss", "buckets": 1000}).json()
            assert len(got["series"]) == runs and got["series"][0]["downsampled"]

        def one() -> None:
            got = http.get(f"{base}/api/v1/runs/{ids[0]}/history", timeout=60,
                           params={"key": "loss", "buckets": 1000}).json()
            assert 500 <= len(got["steps"]) <= 1000

        def zoom() -> None:
            low = points // 2
            got = http.get(f"{base}/api/v1/runs/{ids[0]}/history", timeout=60,
                           params={"key": "loss", "buckets": 1000, "min_step": low,
                                   "max_step": low + points // 100}).json()
            assert got["steps"][0] >= low - 4096

        rows.append(_row("history API: 10 runs in one request, 1,000 buckets each", size,
                         latencies(compare, repeats), f"< {BUDGET_HISTORY_MS} ms"))
        rows.append(_row("history API: one run, 1,000 buckets", size, latencies(one, repeats),
                         ""))
        rows.append(_row("history API: one run, zoom on 1% of the steps", size,
                         latencies(zoom, repeats), ""))
    return rows


# -- autolog ui start-up ------------------------------------------------------------------------


def write_store(root: Path, count: int, steps: int = 50) -> None:
    """``count`` finished runs written in autolog's journal format: start, 20 params, context
    tags, 10 metrics x ``steps`` points in 5 flushes, an artifact, the end; and meta.json."""
    from autolog.journal.codec import dumps_line
    from autolog.journal.files import JOURNAL, LOCK
    from autolog.journal.writer import write_meta

    rng = random.Random(3)
    tags = {"autolog.host": "bench", "autolog.user": "bench", "autolog.python.version": "3.11",
            "autolog.source.argv": "train.py --epochs 50", "autolog.git.commit": "0" * 40}
    for i, run in enumerate(run_rows(count)):
        rid = run["id"]
        path = root / rid
        (path / "artifacts").mkdir(parents=True)
        (path / "artifacts" / "requirements.txt").write_text("numpy==2.0\n")
        start = run["start"]
        lines = [{"t": "start", "v": 1, "id": rid, "name": run["name"], "project": "bench",
                  "parent": None, "time": start, "pid": 1, "host": "bench",
                  "backends": ["local"]},
                 {"t": "tags", "d": {**tags, "team": run["team"]}},
                 {"t": "params", "d": run["params"]}]
        per = steps // 5
        for flush in range(5):
            lines.append({"t": "metrics", "d": {
                f"m{k}": [list(range(flush * per, (flush + 1) * per)),
                          [rng.random() for _ in range(per)],
                          [start + s for s in range(flush * per, (flush + 1) * per)]]
                for k in range(METRICS)}})
        lines.append({"t": "artifact", "path": "requirements.txt", "files": []})
        lines.append({"t": "end", "status": "FINISHED", "time": start + 60_000 + i})
        (path / JOURNAL).write_text("".join(dumps_line(x) + "\n" for x in lines))
        last = {key: points[1][-1] for line in lines if line["t"] == "metrics"
                for key, points in line["d"].items()}
        write_meta(path, {**lines[0], "start_time": start, "status": "FINISHED",
                                "end_time": start + 60_000 + i, "metrics": last})
        (path / LOCK).touch()


def time_ui_start(root: Path) -> float:
    """Seconds from starting ``autolog ui`` to its first answered runs table."""
    began = time.perf_counter()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOLOG_")}
    proc = subprocess.Popen([sys.executable, "-m", "autolog.cli", "ui", "--dir", str(root),
                             "--no-browser", "--port", str(free_port())],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            found = re.search(r"(http://\S+)/\?token=(\S+)", line)
            if found:
                break
        else:
            raise RuntimeError("autolog ui printed no URL")
        base, token = found.groups()
        response = requests.get(f"{base}/api/v1/runs", params={"project": "bench"},
                                headers={"Authorization": f"Bearer {token}"}, timeout=120)
        assert response.status_code == 200 and response.json()["runs"]
        return time.perf_counter() - began
    finally:
        proc.terminate()
        proc.wait(30)


def bench_ui_start(count: int, workdir: Path, repeats: int) -> list[list[object]]:
    root = workdir / "autolog-runs"
    began = time.perf_counter()
    write_store(root, count)
    print(f"ui: {count:,} runs written in {time.perf_counter() - began:.0f} s", file=sys.stderr)
    first, again = [], []
    for _ in range(repeats):
        for path in root.glob(".index*"):
            path.unlink()
        first.append(time_ui_start(root))
        again.append(time_ui_start(root))
    size = f"{count:,} runs"
    return [_row("autolog ui: start to first table, no index yet", size, first,
                 f"< {BUDGET_START_FIRST_S:.0f} s", "s"),
            _row("autolog ui: start to first table, index there", size, again,
                 f"< {BUDGET_START_AGAIN_S:.0f} s", "s")]


def main() -> None:
    parser = arguments(__doc__ or "", "sizes 10x smaller")
    parser.add_argument("--db", default="sqlite,postgresql", help="databases for the runs API")
    parser.add_argument("--skip", default="", help="parts to skip: runs,mlflow,history,start")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    runs, points, start_runs = 100_000 // scale, 1_000_000 // scale, 10_000 // scale
    repeats = args.repeats or (10 if args.quick else 30)
    skip = set(args.skip.split(","))
    workdir = Path(tempfile.mkdtemp(prefix="autolog-bench-ui-"))
    rows: list[list[object]] = []
    cluster = None
    try:
        if "runs" not in skip:
            if "sqlite" in args.db:
                rows += bench_runs_api("SQLite", f"sqlite:///{workdir / 'runs.db'}", runs,
                                       repeats)
            if "postgresql" in args.db and Postgres.binary("initdb"):
                cluster = Postgres()
                rows += bench_runs_api("PostgreSQL", cluster.url, runs, repeats)
        if "mlflow" not in skip:
            rows += bench_mlflow(runs, max(3, repeats // 5), workdir)
        if "history" not in skip:
            rows += bench_history(f"sqlite:///{workdir / 'history.db'}", 10, points, repeats)
        if "start" not in skip:
            rows += bench_ui_start(start_runs, workdir, 3)
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; {repeats} requests per "
          "row over HTTP on loopback (one warm-up first); p95 is the 95th percentile")
    table("autolog web UI, server side", ["measure", "size", "median", "p95", "budget"], rows)


if __name__ == "__main__":
    main()
