"""Several backends at once, under faults: each backend on its own worker, none delays another.

- an MLflow server stopped during training: training unaffected, local and W&B complete, MLflow
  complete after the server is back and ``autolog sync`` runs, nothing stored twice;
- a W&B whose service process is frozen: MLflow and the local store complete, and the process
  still exits within the exit timeout (W&B's own exit hook would wait forever).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import autolog
from autolog import testing
from autolog.backends.wandb import STEP_KEY
from autolog.cli import main as cli_main

from ..helpers import clean_env
from .conftest import MLFLOW_WARNINGS, MlflowServer, MlflowTarget, WandbTarget, free_port, wait_for

pytest.importorskip("mlflow")
pytest.importorskip("wandb")

pytestmark = [pytest.mark.filterwarnings(f) for f in MLFLOW_WARNINGS]

ROOT = Path(__file__).resolve().parents[2]


def _cursor(store: Path, run_id: str, prefix: str) -> dict:
    [path] = (store / run_id / "delivery").glob(f"{prefix}-*.json")
    return json.loads(path.read_text())


def _join_delivery_threads(timeout: float = 20.0) -> None:
    """Wait for the workers stopped by ``testing.reset()`` to let go of their runs."""
    for thread in threading.enumerate():
        if thread.name.startswith("autolog-") and thread.name != "autolog-writer":
            thread.join(timeout)


def test_mlflow_server_stopped_during_training(mlflow_server: MlflowTarget,
                                               mlflow_server_process: MlflowServer,
                                               wandb_offline: WandbTarget, store: Path,
                                               tmp_path: Path):
    report = tmp_path / "report.txt"
    report.write_text("written while the server is down")
    autolog.enable(backend="local,mlflow,wandb")
    with autolog.start_run("fault") as run:
        run.log_params({"lr": 0.1})
        for step in range(1000):
            run.log_metrics({"loss": 1 / (step + 1), "acc": step / 3000}, step=step)
        assert autolog.flush(60), "every backend is up: all delivered"
        mlflow_server_process.stop()
        started = time.perf_counter()
        for step in range(1000, 3000):
            run.log_metrics({"loss": 1 / (step + 1), "acc": step / 3000}, step=step)
        training = time.perf_counter() - started
        run.log_params({"batch_size": 32})
        run.log_artifact(report)
    assert training < 1.0, f"2000 logging calls took {training:.3f} s with MLflow down"
    assert not autolog.flush(2), "MLflow is down: its backlog waits"

    local = autolog.get_run(run.id)
    expected = [(s, 1 / (s + 1)) for s in range(3000)]
    assert [(s, v) for s, v, _ in local.history("loss")] == expected
    assert wait_for(lambda: _cursor(store, run.id, "wandb")["done"], timeout=60)
    read = wandb_offline.read(run.id)
    assert read.metric("loss", STEP_KEY) == expected
    assert read.config["batch_size"] == 32 and read.exit_code == 0
    assert not _cursor(store, run.id, "mlflow")["done"]

    testing.reset()  # the training process exits, leaving MLflow's backlog in the journal
    _join_delivery_threads()
    mlflow_server_process.start()  # same port, same store
    assert cli_main(["sync"]) == 0
    remote = mlflow_server.run_for(run.id)
    assert remote.info.status == "FINISHED"
    assert remote.data.params == {"lr": "0.1", "batch_size": "32"}
    history = mlflow_server.client.get_metric_history(remote.info.run_id, "loss")
    assert len(history) == 3000, "nothing stored twice, nothing missing"
    assert sorted((m.step, m.value) for m in history) == expected
    assert "report.txt" in mlflow_server.artifacts(remote.info.run_id)
    assert _cursor(store, run.id, "mlflow")["done"]


FROZEN_WANDB = """
    import os, signal, time
    import psutil
    import autolog
    from autolog.delivery import replay as delivery

    autolog.enable()
    with autolog.start_run("frozen") as run:
        run.log_metric("loss", 0.0, step=0)
        assert autolog.flush(60), "W&B and MLflow took the first point"
        for p in psutil.Process().children(recursive=True):
            if "wandb" in " ".join(p.cmdline()):
                print("frozen", p.pid, flush=True)
                os.kill(p.pid, signal.SIGSTOP)  # W&B's service hangs from now on
        for step in range(1, 1000):
            run.log_metric("loss", float(step), step=step)
    [key] = [p.stem for p in (run.path / "delivery").glob("mlflow-*.json")]
    deadline = time.monotonic() + 60
    while delivery.pending_lines(run.path, key) and time.monotonic() < deadline:
        time.sleep(0.05)
    print("mlflow done", run.id, flush=True)
"""


def test_a_frozen_wandb_delays_nothing_and_exit_stays_bounded(mlflow_sqlite: MlflowTarget,
                                                              wandb_offline: WandbTarget,
                                                              store: Path, tmp_path: Path):
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(FROZEN_WANDB))
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}  # its own W&B service
    env.update({"AUTOLOG_BACKEND": "local,mlflow,wandb", "AUTOLOG_EXIT_TIMEOUT": "2",
                "AUTOLOG_STRICT": "0", "PYTHONPATH": str(ROOT / "src")})
    # stderr to a file: the frozen W&B service inherits the descriptor and keeps a pipe open
    err_path = tmp_path / "stderr.txt"
    with open(err_path, "w") as err:
        proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                                stderr=err, text=True)
    frozen: list[int] = []
    try:
        lines = []
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line.split())
            if line.startswith("frozen"):
                frozen.append(int(line.split()[1]))
            if line.startswith("mlflow done"):
                break
        done_at = time.monotonic()
        proc.wait(60)
        exit_seconds = time.monotonic() - done_at
        stderr = err_path.read_text()
    finally:
        for pid in frozen:  # the frozen W&B service this test's script started
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert frozen, "the script found W&B's service process"
    assert proc.returncode == 0, stderr
    # AUTOLOG_EXIT_TIMEOUT (2 s) for delivery, then at most 2 s more for W&B's shutdown
    assert exit_seconds < 10, f"exit took {exit_seconds:.1f} s\n{stderr}"
    assert "not delivered to wandb" in stderr
    run_id = lines[-1][-1]
    expected = [(s, float(s)) for s in range(1000)]
    assert [(s, v) for s, v, _ in autolog.get_run(run_id).history("loss")] == expected
    remote = mlflow_sqlite.run_for(run_id)
    assert mlflow_sqlite.history(remote.info.run_id, "loss") == expected
    assert remote.info.status == "FINISHED"
    # W&B's backlog stays in the journal for `autolog sync`
    assert not _cursor(store, run_id, "wandb")["done"]


BESIDE_MLFLOW = """
import autolog
from autolog.delivery.sync import pending_by_name
autolog.enable(backend="local,wandb,mlflow")
with autolog.start_run("both") as run:
    run.log_metrics({"loss": 0.5}, step=0)
print(autolog.flush(120), sorted(pending_by_name(run.path)), flush=True)
"""


def test_a_flush_still_waits_for_mlflow_after_wandb_is_given_up(
        wandb_offline: WandbTarget, mlflow_sqlite: MlflowTarget, tmp_path: Path,
        store: Path) -> None:
    """W&B's worker comes first and answers "given up" (online without an API key); the flush
    goes on to wait for MLflow's (it used to return there, MLflow's delivery still going)."""
    env = clean_env(store, WANDB_MODE="online", HOME=str(tmp_path / "home"),
                    WANDB_BASE_URL=f"http://127.0.0.1:{free_port()}")
    env.pop("WANDB_API_KEY", None)
    done = subprocess.run([sys.executable, "-c", BESIDE_MLFLOW], env=env, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == "False ['wandb']", done.stderr
    [run] = autolog.list_runs()
    assert mlflow_sqlite.history(mlflow_sqlite.run_for(run.id).info.run_id, "loss") == [(0, 0.5)]
