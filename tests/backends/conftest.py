"""Fixtures for the backend tests: MLflow stores and server, W&B offline, and readers.

- ``mlflow_sqlite``: MLflow on a sqlite store shared by the session (creating one takes
  seconds), each test in its own experiment;
- ``mlflow_server``: a real ``mlflow server`` on 127.0.0.1, started once per session on a free
  port (a test may stop and restart it: it comes back on the same port and store);
- ``wandb_offline``: W&B in offline mode writing under the test's directory, never online.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

MLFLOW_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID",
              "MLFLOW_REGISTRY_URI")
WANDB_ENV = ("WANDB_PROJECT", "WANDB_ENTITY", "WANDB_BASE_URL", "WANDB_API_KEY", "WANDB_RUN_ID",
             "WANDB_RESUME", "WANDB_RUN_GROUP", "WANDB_NAME")

#: third-party warnings in MLflow's own code, ignored by name in the modules that use MLflow
MLFLOW_WARNINGS = (
    # MLflow's sqlalchemy store uses a loader strategy sqlalchemy 2.1 deprecates
    "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning",
    # mlflow.<flavor>.save_model inspecting a model's predict() without type hints
    "ignore:.*Any type hint is inferred as AnyType:UserWarning",
    # MLflow 2.10 (the oldest supported) imports distutils when saving a model: the warnings
    # of distutils and setuptools about it
    "ignore:.*[Dd]istutils",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowTarget:
    """Where a test's MLflow runs go: its URI and experiment, and a client to read them."""

    def __init__(self, uri: str, experiment: str, artifact_location: str | None = None):
        MlflowClient = pytest.importorskip("mlflow").MlflowClient

        self.uri = uri
        self.experiment = experiment
        self.client = MlflowClient(uri)
        self.experiment_id = self.client.create_experiment(experiment, artifact_location)

    def runs(self) -> list[Any]:
        return list(self.client.search_runs([self.experiment_id], max_results=1000))

    def runs_for(self, autolog_id: str) -> list[Any]:
        """The MLflow runs tagged with autolog's run id (none yet while delivery goes on)."""
        return self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.`autolog.run_id` = '{autolog_id}'")

    def run_for(self, autolog_id: str) -> Any:
        found = self.runs_for(autolog_id)
        assert len(found) == 1, found
        return found[0]

    def history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        points = self.client.get_metric_history(run_id, key)
        return sorted((m.step, m.value) for m in points)

    def artifacts(self, run_id: str, path: str | None = None) -> list[str]:
        out = []
        for item in self.client.list_artifacts(run_id, path):
            out.extend(self.artifacts(run_id, item.path) if item.is_dir else [item.path])
        return sorted(out)


def _use(monkeypatch: pytest.MonkeyPatch, uri: str, artifact_root: Path | None) -> MlflowTarget:
    for name in MLFLOW_ENV:
        monkeypatch.delenv(name, raising=False)
    experiment = f"exp-{uuid.uuid4().hex[:12]}"
    location = str(artifact_root / experiment) if artifact_root is not None else None
    target = MlflowTarget(uri, experiment, location)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", experiment)
    return target


@pytest.fixture(scope="session")
def mlflow_sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    mlflow = pytest.importorskip("mlflow")
    root = tmp_path_factory.mktemp("mlflow-sqlite")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.MlflowClient(uri).search_experiments()  # creates the schema once
    return uri, root / "artifacts"


@pytest.fixture
def mlflow_sqlite(mlflow_sqlite_store: tuple[str, Path],
                  monkeypatch: pytest.MonkeyPatch) -> MlflowTarget:
    """MLflow on sqlite; MLFLOW_TRACKING_URI and MLFLOW_EXPERIMENT_NAME set for this test."""
    uri, artifacts = mlflow_sqlite_store
    return _use(monkeypatch, uri, artifacts)


class MlflowServer:
    """A real ``mlflow server`` process on 127.0.0.1 (its job runner off: faster to start)."""

    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        for name in MLFLOW_ENV:
            env.pop(name, None)
        cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
               "--port", str(self.port), "--workers", "1",
               "--backend-store-uri", f"sqlite:///{self.root / 'server.db'}",
               "--artifacts-destination", str(self.root / "artifacts")]
        log = open(self.root / "server.log", "ab")  # noqa: SIM115 - kept for the process
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                     cwd=self.root, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log_text = (self.root / "server.log").read_text()
                raise RuntimeError(f"mlflow server exited: {log_text}")
            if self.healthy():
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("mlflow server did not start in time")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the server and its workers (the process group this fixture started)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None
        deadline = time.monotonic() + 10
        while self.healthy() and time.monotonic() < deadline:  # uvicorn worker still closing
            time.sleep(0.1)


@pytest.fixture(scope="session")
def mlflow_server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    pytest.importorskip("mlflow")
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mlflow_server(mlflow_server_process: MlflowServer,
                  monkeypatch: pytest.MonkeyPatch) -> MlflowTarget:
    """The session's ``mlflow server`` (restarted if a test stopped it), a fresh experiment."""
    mlflow_server_process.start()
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a stopped server fails fast
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    return _use(monkeypatch, mlflow_server_process.url, None)


class WandbTarget:
    """Where a test's W&B runs go (offline files under ``dir``) and how to read them."""

    def __init__(self, dir: Path):
        self.dir = dir

    def read(self, run_id: str, timeout: float = 30.0) -> Any:
        """The newest file of ``run_id``, read once W&B's service has written it to its end
        (its run and exit records: the tests read finished runs), or as it is at ``timeout``."""
        from .wandb_reader import find_run_file, read_run

        read: list[Any] = []

        def complete() -> bool:
            try:
                read[:] = [read_run(find_run_file(self.dir, run_id))]
            except FileNotFoundError:  # W&B's service has not made it yet
                return False
            return read[0].run is not None and read[0].exit_code is not None

        if not wait_for(complete, timeout) and not read:
            find_run_file(self.dir, run_id)  # raises: no file at all
        return read[0]


@pytest.fixture
def wandb_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WandbTarget:
    pytest.importorskip("wandb")
    for name in WANDB_ENV:
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "wandb"
    root.mkdir()
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(root))
    for name, sub in (("WANDB_CONFIG_DIR", "config"), ("WANDB_CACHE_DIR", "cache"),
                      ("WANDB_DATA_DIR", "data"), ("WANDB_ARTIFACT_DIR", "artifacts")):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home" / sub))
    return WandbTarget(root)


def wait_for(predicate: Any, timeout: float = 30.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


# -- the file-writing backends: tensorboard, dvclive, aim, clearml, comet ----------------------

_network: list[tuple[str, Any]] | None = None  # what the audit hook saw while a test watched


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _network is None or event not in ("socket.connect", "socket.getaddrinfo"):
        return
    address = args[1] if event == "socket.connect" else args[0]
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, bytes):
        host = host.decode()
    if isinstance(host, str) and host not in ("127.0.0.1", "::1", "localhost") \
            and not host.startswith("/"):
        _network.append((event, host))


@pytest.fixture
def no_network() -> Iterator[list[tuple[str, Any]]]:
    """Fails the test if any code tried to reach a host other than this machine (socket
    connect or name lookup, seen by a ``sys.addaudithook`` hook); yields what it saw."""
    global _network
    if not getattr(sys, "_autolog_audit", False):
        sys.addaudithook(_audit)  # audit hooks cannot be removed: one, switched by _network
        sys._autolog_audit = True  # type: ignore[attr-defined]
    _network = seen = []
    try:
        yield seen
    finally:
        _network = None
    assert not seen, f"network access attempted: {seen}"


@pytest.fixture
def tensorboard_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pytest.importorskip("tensorboard")
    root = tmp_path / "tb-runs"
    monkeypatch.setenv("AUTOLOG_TENSORBOARD_DIR", str(root))
    return root


@pytest.fixture
def dvclive_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "dvclive"
    monkeypatch.setenv("AUTOLOG_DVCLIVE_DIR", str(root))
    return root


@pytest.fixture
def aim_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pytest.importorskip("aim")
    root = tmp_path / "aim" / ".aim"
    monkeypatch.setenv("AUTOLOG_AIM_REPO", str(root))
    return root


@pytest.fixture
def clearml_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "clearml-offline"
    monkeypatch.setenv("AUTOLOG_CLEARML_DIR", str(root))
    return root


COMET_ENV = ("COMET_API_KEY", "COMET_PROJECT_NAME", "COMET_WORKSPACE", "COMET_URL_OVERRIDE")


@pytest.fixture
def comet_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Comet offline under the test's directory. ``comet_ml`` is left for the backend to import
    (its import may start Sentry error reporting, which the backend switches off)."""
    import importlib.util

    if importlib.util.find_spec("comet_ml") is None:
        pytest.skip("comet_ml is not installed")
    for name in COMET_ENV:
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "comet-offline"
    monkeypatch.setenv("COMET_OFFLINE_DIRECTORY", str(root))
    monkeypatch.setenv("COMET_CONFIG", str(tmp_path / "comet.config"))  # not the user's
    return root
