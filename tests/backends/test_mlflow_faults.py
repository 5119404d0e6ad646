"""MLflow misconfigured or down (issue 15 items 10-12): a tracking URI MLflow cannot use and a
server path that answers 404 are permanent (said once with the fix, not retried, not waited
for); a tracking server that is down is temporary, found out at once rather than after MLflow's
minutes of retries, and `autolog sync` delivers once it is back, each point once."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

import autolog
from autolog.cli import main as cli_main

from ..helpers import clean_env
from .conftest import MLFLOW_WARNINGS, MlflowServer, MlflowTarget

mlflow = pytest.importorskip("mlflow")
pytestmark = [pytest.mark.filterwarnings(f) for f in MLFLOW_WARNINGS]

RECORD = """
import autolog
autolog.enable(backend="local,mlflow")
with autolog.start_run("offline") as run:
    run.log_params({"lr": 0.1})
    for i in range(500):
        run.log_metrics({"loss": 1.0 / (i + 1)}, step=i)
print(run.id, flush=True)
"""


def _train_in_process(caplog: pytest.LogCaptureFixture) -> tuple[str, float]:
    """A run with the mlflow backend; its id and how long flush waited for MLflow."""
    with caplog.at_level(logging.WARNING, logger="autolog"):
        autolog.enable(backend="local,mlflow")
        with autolog.start_run("misconfigured") as run:
            run.log_metrics({"loss": 0.5}, step=0)
        autolog.flush(0.5)  # the worker tries once
        started = time.monotonic()
        assert not autolog.flush(30), "MLflow cannot have it"
        waited = time.monotonic() - started
    return run.id, waited


def _said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "autolog"]


def test_a_tracking_uri_mlflow_cannot_use_is_permanent(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "bogus://nowhere")
    _, waited = _train_in_process(caplog)
    assert waited < 1, "a permanent error is not waited for"
    said = _said(caplog)
    assert len(said) == 1, said
    assert "MLFLOW_TRACKING_URI=bogus://nowhere is not a tracking URI" in said[0]
    assert "autolog sync" in said[0]


def test_a_server_path_that_answers_404_is_permanent_with_the_right_url(
        mlflow_server: MlflowTarget, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri + "/api/2.0/mlflow")
    run_id, waited = _train_in_process(caplog)
    assert waited < 1
    [said] = _said(caplog)
    assert f"the URL path should be {mlflow_server.uri}" in said
    autolog.testing.reset()  # the process ends; the user fixes the URI
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    assert cli_main(["sync"]) == 0
    remote = mlflow_server.run_for(run_id)
    assert mlflow_server.history(remote.info.run_id, "loss") == [(0, 0.5)]


def test_a_down_tracking_server_is_temporary_said_at_once_and_synced_later(
        mlflow_server: MlflowTarget, mlflow_server_process: MlflowServer, store: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # MLflow's own retries for a refused connection (minutes), as a user has them
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES")
    mlflow_server_process.stop()
    try:
        done = subprocess.run([sys.executable, "-c", RECORD], capture_output=True, text=True,
                              timeout=120, env=clean_env(store, AUTOLOG_EXIT_TIMEOUT="5"))
        assert done.returncode == 0, done.stderr
        run_id = done.stdout.strip()
        assert "cannot reach the MLflow tracking server" in done.stderr
        assert "retrying with backoff" in done.stderr  # temporary
        assert "were not delivered to mlflow" in done.stderr
        started = time.monotonic()
        assert cli_main(["sync"]) == 1
        assert time.monotonic() - started < 10, "found out at once, not after MLflow's retries"
        err = capsys.readouterr().err
        assert err.count("cannot reach the MLflow tracking server") == 1 and "1 run left" in err
    finally:
        mlflow_server_process.start()
    assert cli_main(["sync"]) == 0
    assert cli_main(["sync"]) == 0  # again: nothing twice
    remote = mlflow_server.run_for(run_id)
    assert mlflow_server.history(remote.info.run_id, "loss") == [
        (i, 1.0 / (i + 1)) for i in range(500)]
    assert remote.info.status == "FINISHED"
