"""Backends: how fast each delivers, and what the training thread pays with each one on.

Three tables:

1. delivery throughput: N points logged as fast as possible, then the time until the backend
   has all of them (``autolog.flush``), for the local journal alone, MLflow on sqlite, MLflow
   behind a real ``mlflow server`` on 127.0.0.1, W&B offline, the file-writing backends
   (TensorBoard event files, DVCLive files, an Aim repository, ClearML and Comet offline
   archives), and MLflow + W&B at once;
2. the training thread's cost per ``log_metrics`` call with each backend on, measured while the
   backend is delivering (a steady loop that logs a point every ~50 µs of work for a few
   seconds): it should equal the local journal alone, since delivery happens on other threads;
3. the trackers' own per-call cost, side by side: ``mlflow.log_metric`` (sqlite, server) and
   ``wandb.log`` (offline);
4. delivery with media: the same burst with a 32x32 image and a 64-bin histogram of 1,000
   values logged every 1,000 points, for the local journal and the file-writing backends: the
   points should arrive about as fast as without them (media are a few items among the lines).

    python benchmarks/bench_backends.py            # 100,000 points per backend
    python benchmarks/bench_backends.py --quick    # 10,000 points, shorter loops
    python benchmarks/bench_backends.py --no-server  # no mlflow server (~10 s to start)
    python benchmarks/bench_backends.py --only tensorboard,dvclive  # some backends (and local)

Each backend runs in its own fresh interpreter, so one backend's SDK and threads do not weigh on
the next. Figures depend on the machine and its load: quote them as provisional.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _common import table

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, os, statistics, sys, time
points, seconds = int(sys.argv[1]), float(sys.argv[2])
media_every = int(sys.argv[3]) if len(sys.argv) > 3 else 0
import autolog
if media_every:
    import numpy as np
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    values = np.random.default_rng(1).normal(size=1000)

def burst(run):
    samples = []
    clock = time.perf_counter_ns
    media = 0
    for i in range(points):
        t0 = clock()
        run.log_metrics({"loss": i * 0.001}, step=i)
        samples.append(clock() - t0)
        if media_every and i % media_every == 0:
            run.log_image("sample", image, step=i)
            run.log_histogram("weights", values, step=i)
            media += 2
    return samples, media

def busy(ns):
    end = time.perf_counter_ns() + ns
    while time.perf_counter_ns() < end:
        pass

autolog.enable(system_metrics=False)
with autolog.start_run("warm-up") as run:  # imports the SDK, creates experiment / service
    run.log_metric("x", 1.0)
    if media_every:  # and what writing media imports (the PNG encoder, the backend's imaging)
        run.log_image("sample", image, step=0)
        run.log_histogram("weights", values, step=0)
autolog.flush(120)
with autolog.start_run("burst") as run:
    t0 = time.perf_counter()
    calls, media = burst(run)
    logged = time.perf_counter() - t0
run_end = time.perf_counter()
delivered = autolog.flush(600)
delivery = time.perf_counter() - t0
with autolog.start_run("steady") as run:
    steady, i, clock = [], 0, time.perf_counter_ns
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t = clock()
        run.log_metrics({"loss": i * 0.001, "acc": 0.5}, step=i)
        steady.append(clock() - t)
        i += 1
        busy(50_000)
autolog.flush(600)
steady = steady or [0]  # no steady loop asked for (seconds = 0)
print(json.dumps({"points": points, "media": media, "logged_s": logged, "delivery_s": delivery,
                  "delivered": delivered, "burst_median_ns": statistics.median(calls),
                  "burst_allin_ns": logged * 1e9 / points,
                  "steady_median_ns": statistics.median(steady),
                  "steady_p99_ns": sorted(steady)[int(len(steady) * 0.99)],
                  "steady_calls": len(steady)}))
"""

RAW = r"""
import json, os, statistics, sys, time
kind, calls = sys.argv[1], int(sys.argv[2])
clock = time.perf_counter_ns
samples = []
if kind.startswith("mlflow"):
    import mlflow
    mlflow.set_experiment("raw")
    with mlflow.start_run():
        for i in range(calls):
            t0 = clock()
            mlflow.log_metric("loss", i * 0.001, step=i)
            samples.append(clock() - t0)
elif kind == "wandb":
    import wandb
    run = wandb.init(project="raw", settings=wandb.Settings(console="off", x_disable_stats=True))
    for i in range(calls):
        t0 = clock()
        run.log({"loss": i * 0.001})
        samples.append(clock() - t0)
    run.finish()
elif kind == "tensorboardX":
    try:
        from tensorboardX import SummaryWriter
    except ImportError:  # the same writer API in torch (with the tensorboard package)
        from torch.utils.tensorboard import SummaryWriter
    writer = SummaryWriter(os.environ["AUTOLOG_TENSORBOARD_DIR"])
    for i in range(calls):
        t0 = clock()
        writer.add_scalar("loss", i * 0.001, i)
        samples.append(clock() - t0)
    writer.close()
elif kind == "aim":
    from aim import Run
    run = Run(repo=os.environ["AUTOLOG_AIM_REPO"], system_tracking_interval=None,
              capture_terminal_logs=False, log_system_params=False)
    for i in range(calls):
        t0 = clock()
        run.track(i * 0.001, name="loss", step=i)
        samples.append(clock() - t0)
    run.close()
else:
    os.environ.setdefault("COMET_DISABLE_AUTO_LOGGING", "1")
    os.environ.setdefault("COMET_ERROR_TRACKING_ENABLE", "false")
    import comet_ml
    exp = comet_ml.OfflineExperiment(offline_directory=os.environ["COMET_OFFLINE_DIRECTORY"],
                                     display_summary_level=0, auto_output_logging=False)
    for i in range(calls):
        t0 = clock()
        exp.log_metric("loss", i * 0.001, step=i)
        samples.append(clock() - t0)
    exp.end()
print(json.dumps({"median_ns": statistics.median(samples), "mean_ns": statistics.mean(samples)}))
"""


MEDIA_EVERY = 1000

#: the file-writing backends (issue 17): name, what they write
FILE_BACKENDS = [("tensorboard", "event files"), ("dvclive", "DVCLive files"), ("aim", "Aim repo"),
                 ("clearml", "offline session"), ("comet", "offline archive")]


class Server:
    """``mlflow server`` on a free 127.0.0.1 port, its job runner off."""

    def __init__(self, root: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        env.pop("MLFLOW_TRACKING_URI", None)
        self.log = open(root / "server.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port",
             str(self.port), "--workers", "1", "--backend-store-uri",
             f"sqlite:///{root / 'server.db'}", "--artifacts-destination", str(root / "art")],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("mlflow server did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(20)
        self.log.close()


def run_child(code: str, args: list[str], env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                         text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def base_env(tmp: Path, name: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AUTOLOG_", "MLFLOW_", "WANDB_"))}
    work = tmp / name
    (work / "wandb").mkdir(parents=True)
    env.update(AUTOLOG_TENSORBOARD_DIR=str(work / "tb"), AUTOLOG_DVCLIVE_DIR=str(work / "dvclive"),
               AUTOLOG_AIM_REPO=str(work / "aim"), AUTOLOG_CLEARML_DIR=str(work / "clearml"),
               COMET_OFFLINE_DIRECTORY=str(work / "comet"), COMET_CONFIG=str(work / "comet.cfg"))
    env.update(PYTHONPATH=str(ROOT / "src"), AUTOLOG_DIR=str(work / "runs"),
               MLFLOW_TRACKING_URI=f"sqlite:///{work / 'mlflow.db'}",
               MLFLOW_EXPERIMENT_NAME="bench", WANDB_MODE="offline", WANDB_SILENT="true",
               WANDB_DIR=str(work / "wandb"), WANDB_CONFIG_DIR=str(work / "wandb-config"),
               WANDB_CACHE_DIR=str(work / "wandb-cache"))
    return env


def media_table(tmp: Path, points: int, configs: list, without: dict[str, float]) -> None:
    """Table 4: the burst again, with media every MEDIA_EVERY points."""
    rows = []
    for label, backend, extra in configs:
        env = base_env(tmp, "media-" + label.replace(" ", "_").replace("(", "")
                       .replace(")", "").replace(",", "+"))
        env.update(AUTOLOG_BACKEND=backend, **extra)
        got = run_child(CHILD, [str(points), "0", str(MEDIA_EVERY)], env)
        rows.append([label, f"{got['media']:,}", f"{got['delivery_s']:.2f}",
                     f"{got['points'] / got['delivery_s']:,.0f}",
                     f"{got['delivery_s'] / without[label]:.2f}",
                     "yes" if got["delivered"] else "NO"])
    table(f"Delivery with media: the same {points:,} points with a 32x32 image and a 64-bin "
          f"histogram logged every {MEDIA_EVERY:,} points",
          ["backend", "media items", "seconds", "points/s", "time vs points alone",
           "complete"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 points, short loops")
    parser.add_argument("--points", type=int, help="points per backend (default 100,000)")
    parser.add_argument("--no-server", action="store_true", help="skip the mlflow server")
    parser.add_argument("--only", help="comma list of backends to measure (besides local)")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    points = args.points or (10_000 if args.quick else 100_000)
    seconds = 1.0 if args.quick else 3.0
    raw_calls = 300 if args.quick else 2000

    tmp = Path(tempfile.mkdtemp(prefix="autolog-bench-backends-"))

    def wanted(name: str) -> bool:
        return only is None or name in only

    server = None if args.no_server or not wanted("mlflow") else Server(tmp)
    try:
        configs = [("local journal", "local", {}),
                   ("mlflow (sqlite)", "local,mlflow", {}),
                   ("wandb (offline)", "local,wandb", {})]
        if server is not None:
            configs.insert(2, ("mlflow (server)", "local,mlflow",
                               {"MLFLOW_TRACKING_URI": server.url}))
        configs.append(("local,mlflow,wandb", "local,mlflow,wandb", {}))
        configs += [(f"{name} ({kind})", f"local,{name}", {}) for name, kind in FILE_BACKENDS]
        configs = [c for c in configs
                   if c[1] == "local" or all(wanted(b) for b in c[1].split(",")[1:])]
        rows, cost_rows, delivery_s = [], [], {}
        for label, backend, extra in configs:
            env = base_env(tmp, label.replace(" ", "_").replace("(", "").replace(")", "")
                           .replace(",", "+"))
            env.update(AUTOLOG_BACKEND=backend, **extra)
            got = run_child(CHILD, [str(points), str(seconds)], env)
            delivery_s[label] = got["delivery_s"]
            rate = got["points"] / got["delivery_s"]
            rows.append([label, f"{got['points']:,}", f"{got['delivery_s']:.2f}",
                         f"{rate:,.0f}", "yes" if got["delivered"] else "NO"])
            cost_rows.append([label, f"{got['burst_median_ns'] / 1000:.2f}",
                              f"{got['burst_allin_ns'] / 1000:.2f}",
                              f"{got['steady_median_ns'] / 1000:.2f}",
                              f"{got['steady_p99_ns'] / 1000:.2f}", f"{got['steady_calls']:,}"])
        table(f"Delivery: {points:,} points logged in a burst, time until the backend has them "
              "all (journal write included)",
              ["backend", "points", "seconds", "points/s", "complete"], rows)
        table("Training thread: Run.log_metrics cost with each backend on (µs per call; "
              "steady = one call every ~50 µs of work while delivery runs)",
              ["backend", "burst median", "burst all-in", "steady median", "steady p99",
               "steady calls"], cost_rows)
        media_table(tmp, points, [c for c in configs if c[1] == "local"
                                  or c[1].split(",")[1] in dict(FILE_BACKENDS)], delivery_s)

        raw = []
        for label, kind, extra in [("mlflow.log_metric (sqlite)", "mlflow", {}),
                                   ("mlflow.log_metric (server)", "mlflow-server",
                                    {"MLFLOW_TRACKING_URI": server.url} if server else None),
                                   ("wandb.log (offline)", "wandb", {}),
                                   ("SummaryWriter.add_scalar", "tensorboardX", {}),
                                   ("aim Run.track", "aim", {}),
                                   ("comet OfflineExperiment.log_metric", "comet", {})]:
            if extra is None or not wanted(kind.split("-")[0].replace("tensorboardX",
                                                                      "tensorboard")):
                continue
            env = base_env(tmp, f"raw-{kind}")
            env.update(extra)
            try:
                got = run_child(RAW, [kind, str(raw_calls)], env)
            except RuntimeError as exc:  # that SDK is not installed here
                raw.append([label, "n/a", "n/a", str(exc).strip().splitlines()[-1][:40]])
                continue
            raw.append([label, f"{got['median_ns'] / 1000:.1f}", f"{got['mean_ns'] / 1000:.1f}",
                        f"{raw_calls:,}"])
        table("The trackers' own logging call on the training thread, for comparison (µs)",
              ["call", "median", "mean", "calls"], raw)
    finally:
        if server is not None:
            server.stop()
    print(f"\n(work files in {tmp}; provisional figures: the machine may be shared)")


if __name__ == "__main__":
    main()
