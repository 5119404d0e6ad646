"""The http backend end to end: training with ``AUTOLOG_BACKEND=http`` against a live
``autolog server`` (SQLite, and PostgreSQL when its binaries are there), read back through the
server's API; the server killed and restarted mid-training; ``autolog sync`` after a run ended
while the server was down; bad tokens and URLs; ``autolog runs/show --server``."""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")

import autolog
from autolog import AutologWarning, cli, shutdown
from autolog._runtime import runtime
from autolog.api import get_settings
from autolog.backends.base import Batch, Metric, RunRef
from autolog.backends.http import HttpBackend, ServerClient
from autolog.config import Settings
from autolog.hookspecs import hookimpl
from autolog.plugins import get_plugins

from ..helpers import crashed_run
from ..server.live import LiveServer, Postgres, free_port, postgres_or_skip

# -- a tiny model and the plugin that saves it ---------------------------------------------


class TinyModel:
    def __init__(self, w: float, b: float):
        self.w, self.b = w, b


class TinyFlavor:
    """A real model plugin for the test's own model type."""

    @hookimpl
    def autolog_save_model(self, model: Any, path: Path, options: dict[str, Any]) -> Any:
        if not isinstance(model, TinyModel):
            return None
        (path / "weights.json").write_text(json.dumps({"w": model.w, "b": model.b}))
        return {"flavor": "tiny", "format": "json", "framework_version": "1"}

    @hookimpl
    def autolog_load_model(self, spec: dict[str, Any], path: Path) -> Any:
        if spec.get("flavor") != "tiny":
            return None
        data = json.loads((path / "weights.json").read_text())
        return TinyModel(data["w"], data["b"])


@pytest.fixture
def tiny_flavor() -> Iterator[None]:
    plugin = TinyFlavor()
    plugins = get_plugins(get_settings())
    plugins.register(plugin, name="tiny-flavor")
    try:
        yield
    finally:
        plugins.unregister(plugin)


def train(run: autolog.Run, steps: int = 150, pause: float = 0.0,
          on_step: Any = None) -> tuple[TinyModel, float]:
    """Fit y = 2x + 1 by gradient descent, logging every step; returns the model and the
    slowest logging call in seconds."""
    xs = [i / 10 for i in range(-20, 20)]
    ys = [2 * x + 1 for x in xs]
    w = b = 0.0
    lr = 0.05
    run.log_params({"lr": lr, "steps": steps, "model": {"kind": "linear", "features": 1}})
    slowest = 0.0
    for step in range(steps):
        errors = [w * x + b - y for x, y in zip(xs, ys, strict=True)]
        w -= lr * sum(2 * e * x for e, x in zip(errors, xs, strict=True)) / len(xs)
        b -= lr * sum(2 * e for e in errors) / len(xs)
        started = time.perf_counter()
        run.log_metrics({"loss": sum(e * e for e in errors) / len(xs), "w": w}, step=step)
        slowest = max(slowest, time.perf_counter() - started)
        if on_step is not None:
            on_step(step)
        if pause:
            time.sleep(pause)
    return TinyModel(w, b), slowest


# -- servers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    cluster = postgres_or_skip()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql",
                                                                 marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'autolog.db'}"
    return request.getfixturevalue("postgres").database()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def server(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(db_url, tmp_path_factory.mktemp("server"), "--max-upload-mb", "1")
    live.start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def write_token(server: LiveServer) -> str:
    return server.token(scope="write")


@pytest.fixture(scope="module")
def read_token(server: LiveServer) -> str:
    return server.token(scope="read")


def use_server(monkeypatch: pytest.MonkeyPatch, url: str, token: str | None) -> None:
    monkeypatch.setenv("AUTOLOG_BACKEND", "http")
    monkeypatch.setenv("AUTOLOG_HTTP_URL", url)
    if token is not None:
        monkeypatch.setenv("AUTOLOG_HTTP_TOKEN", token)
    monkeypatch.setenv("AUTOLOG_FLUSH_INTERVAL", "0.1")


@pytest.fixture
def http_env(monkeypatch: pytest.MonkeyPatch, server: LiveServer, write_token: str) -> None:
    use_server(monkeypatch, server.url, write_token)


# -- reading back ------------------------------------------------------------------------------


def same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def assert_histories_equal(client: ServerClient, record: autolog.RunRecord) -> None:
    for key in record.metric_keys:
        local = record.history(key)
        remote = client.history(record.id, key)
        assert len(remote) == len(local), (key, len(remote), len(local))
        assert [p[0] for p in remote] == [p[0] for p in local]
        assert [p[2] for p in remote] == [p[2] for p in local]
        assert all(same(r[1], loc[1]) for r, loc in zip(remote, local, strict=True)), key


# -- end to end --------------------------------------------------------------------------------


def _shown(remote: dict[str, Any], record: autolog.RunRecord) -> bool:
    """The server shows the run as ``autolog show --json`` does (it adds the UI's fields:
    note, children, metric_summary...)."""
    local = cli.detail(record)
    return {key: remote.get(key) for key in local} == local


def test_training_is_recorded_on_the_server(server: LiveServer, http_env: None,
                                            tiny_flavor: None, read_token: str,
                                            tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    plots = tmp_path / "plots"
    (plots / "sub").mkdir(parents=True)
    (plots / "a.txt").write_text("A")
    (plots / "sub" / "b.txt").write_text("B")
    with autolog.start_run("e2e", project="http-e2e", tags={"team": "vision"}) as run:
        model, _ = train(run)
        for i, value in enumerate([math.nan, math.inf, -math.inf, 1.5]):
            run.log_metric("special", value, step=i)
        run.log_artifact(notes)
        run.log_artifact(plots)
        run.log_model(model)
    assert autolog.flush(60)
    record = autolog.get_run(run.id)
    with ServerClient(server.url, read_token) as client:
        remote = client.get_run(run.id)
        assert _shown(remote, record)
        assert remote["status"] == "FINISHED" and remote["params"]["model.kind"] == "linear"
        ours = [a for a in remote["artifacts"] if a != "requirements.txt"]  # the context's
        assert ours[:3] == ["notes.txt", "plots/a.txt", "plots/sub/b.txt"]
        assert "model/weights.json" in remote["artifacts"]
        assert remote["models"]["model"]["flavor"] == "tiny"
        assert len(client.history(run.id, "loss")) == 150
        assert_histories_equal(client, record)
        assert client.download(run.id, "notes.txt") == b"hello"
        assert client.download(run.id, "plots/sub/b.txt") == b"B"
        weights = json.loads(client.download(run.id, "model/weights.json"))
        assert weights == {"w": model.w, "b": model.b}
        assert client.list_runs(project="http-e2e")[0]["id"] == run.id


def test_the_server_gets_a_live_run_at_once_whatever_the_delivery_delay(
        server: LiveServer, http_env: None, read_token: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``AUTOLOG_DELIVERY_DELAY`` holds back the backends that load an SDK; the http backend
    is autolog's own code and delivers from the first run on, without a flush."""
    monkeypatch.setenv("AUTOLOG_DELIVERY_DELAY", "600")
    autolog.enable(backend="local,http")
    with autolog.start_run("live") as run, ServerClient(server.url, read_token) as client:
        run.log_metrics({"loss": 0.5}, step=0)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if client.history(run.id, "loss"):
                    break
            except LookupError:  # the run is not there yet
                pass
            time.sleep(0.1)
        assert [p[:2] for p in client.history(run.id, "loss")] == [(0, 0.5)]


def test_a_retried_batch_is_stored_once(server: LiveServer, write_token: str,
                                        read_token: str, tmp_path: Path) -> None:
    """A response lost after the server stored the batch: the retry (same journal range,
    split into the same parts) is recognised and not stored again."""
    settings = Settings.load({}, http_url=server.url, http_token=write_token)
    backend = HttpBackend(settings)
    run_id = os.urandom(16).hex()
    ref = RunRef(tmp_path, {"id": run_id, "name": "retry", "project": "p", "time": 1},
                 {}, backend.cursor_key())
    backend.start_run(ref)
    batch = Batch(100)
    batch.params = {"lr": 0.1}
    batch.metrics = [Metric("loss", 1 / (i + 1), i, 1000 + i) for i in range(25_000)]
    batch.journal_range = (100, 5000)
    backend.log_batch(ref, batch)
    backend.log_batch(ref, batch)  # the retry
    backend.end_run(ref, "FINISHED", 2)
    backend.close()
    with ServerClient(server.url, read_token) as client:
        history = client.history(run_id, "loss")
        assert len(history) == 25_000 and [p[0] for p in history] == list(range(25_000))
        assert client.get_run(run_id)["status"] == "FINISHED"


def test_the_server_killed_during_training(db_url: str, postgres_url: Any,
                                           monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    """SIGKILL mid-training, restart a second later: training never waits, and every point
    arrives exactly once."""
    live = LiveServer(postgres_url or f"sqlite:///{tmp_path / 'crash.db'}", tmp_path / "srv")
    live.start()
    token = live.token(scope="write")
    use_server(monkeypatch, live.url, token)
    restart = threading.Thread(target=live.start)

    def chaos(step: int) -> None:
        if step == 300:
            live.kill()
        elif step == 600:
            restart.start()  # on another thread: starting a server is not the training's time

    try:
        with autolog.start_run("through-a-crash") as run:
            _, slowest = train(run, steps=1200, pause=0.002, on_step=chaos)
        restart.join(60)
        assert autolog.flush(90), "delivery did not catch up after the restart"
        assert slowest < 0.25, f"a logging call took {slowest:.3f}s while the server was down"
        record = autolog.get_run(run.id)
        with ServerClient(live.url, token) as client:
            assert _shown(client.get_run(run.id), record)
            assert_histories_equal(client, record)
            assert len(client.history(run.id, "loss")) == 1200
    finally:
        live.stop()


SCRIPT = """
import sys, autolog
with autolog.start_run("ended-offline") as run:
    for s in range(300):
        run.log_metrics({"loss": 1 / (s + 1)}, step=s)
    assert autolog.flush(30)
    print(run.id, flush=True)
    sys.stdin.readline()  # the test kills the server now
    for s in range(300, 600):
        run.log_metrics({"loss": 1 / (s + 1)}, step=s)
    run.log_text_artifact("written while the server was down", "late.txt")
"""


def test_a_run_that_ended_while_the_server_was_down_is_finished_by_sync(
        postgres_url: Any, monkeypatch: pytest.MonkeyPatch, store: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    live = LiveServer(postgres_url or f"sqlite:///{tmp_path / 'sync.db'}", tmp_path / "srv")
    live.start()
    token = live.token(scope="write")
    use_server(monkeypatch, live.url, token)
    env = {**os.environ, "AUTOLOG_EXIT_TIMEOUT": "1"}
    try:
        process = subprocess.Popen([sys.executable, "-c", SCRIPT], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=env)
        assert process.stdout is not None and process.stdin is not None
        run_id = process.stdout.readline().strip()
        live.kill()
        _, err = process.communicate("go\n", timeout=60)
        assert process.returncode == 0, err
        assert "autolog sync" in err  # the exit said what was left, and how to deliver it
        live.start()
        with ServerClient(live.url, token) as client:
            assert len(client.history(run_id, "loss")) == 300
            assert client.get_run(run_id)["status"] == "RUNNING"
            assert cli.main(["sync"]) == 0
            assert "done" in capsys.readouterr().err
            record = autolog.get_run(run_id)
            assert _shown(client.get_run(run_id), record)
            assert client.get_run(run_id)["status"] == "FINISHED"
            assert_histories_equal(client, record)
            assert len(client.history(run_id, "loss")) == 600
            assert client.download(run_id, "late.txt").startswith(b"written while")
            assert cli.main(["sync"]) == 0  # again: nothing left, nothing sent twice
            assert len(client.history(run_id, "loss")) == 600
    finally:
        live.stop()


def test_sync_ends_a_crashed_run_crashed_on_the_server(server: LiveServer, http_env: None,
                                                       read_token: str, store: Path) -> None:
    run_id = crashed_run(store, steps=300)
    assert cli.main(["sync", "--to", "http", run_id]) == 0
    record = autolog.get_run(run_id)
    with ServerClient(server.url, read_token) as client:
        remote = client.get_run(run_id)
        assert remote["status"] == "CRASHED"
        assert remote["params"] == {"lr": 0.1} and remote["tags"]["team"] == "speech"
        assert_histories_equal(client, record)


@pytest.fixture
def postgres_url(db_url: str) -> str | None:
    """A fresh database on the module's PostgreSQL when the test runs on PostgreSQL."""
    if db_url.startswith("sqlite"):
        return None
    base, _, _ = db_url.rpartition("/")
    import psycopg

    name = f"autolog_{os.urandom(6).hex()}"
    with psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://"),
                         autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{base}/{name}"


# -- errors reported once, clearly ---------------------------------------------------------


def _train_with_failing_delivery(caplog: pytest.LogCaptureFixture) -> autolog.RunRecord:
    with caplog.at_level(logging.WARNING, logger="autolog"):
        with autolog.start_run("offline") as run:
            train(run, steps=50)
        assert not autolog.flush(2.5)  # delivery keeps failing (and retrying)
    assert runtime.writer is not None
    shutdown.shutdown(0.1)
    record = autolog.get_run(run.id)
    assert len(record.history("loss")) == 50  # the local journal has everything
    return record


def test_a_wrong_token_is_reported_once(server: LiveServer, monkeypatch: pytest.MonkeyPatch,
                                        caplog: pytest.LogCaptureFixture) -> None:
    use_server(monkeypatch, server.url, "alg_wrong")
    _train_with_failing_delivery(caplog)
    warnings = [r.getMessage() for r in caplog.records if r.name == "autolog"]
    assert len(warnings) == 1, warnings
    assert "refused the token" in warnings[0] and "AUTOLOG_HTTP_TOKEN" in warnings[0]


def test_a_wrong_url_is_reported_once(monkeypatch: pytest.MonkeyPatch,
                                      caplog: pytest.LogCaptureFixture) -> None:
    use_server(monkeypatch, f"http://127.0.0.1:{free_port()}", "alg_any")
    _train_with_failing_delivery(caplog)
    warnings = [r.getMessage() for r in caplog.records if r.name == "autolog"]
    assert len(warnings) == 1, warnings
    assert "cannot reach the autolog server" in warnings[0]
    assert "AUTOLOG_HTTP_URL" in warnings[0]


def test_a_missing_url_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOLOG_BACKEND", "http")
    with pytest.raises(autolog.ConfigError, match="AUTOLOG_HTTP_URL"):
        autolog.enable()


def test_an_artifact_over_the_upload_limit_is_skipped_not_blocking(
        server: LiveServer, http_env: None, read_token: str, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(1024 * 1024 + 10))  # the module's server takes 1 MiB
    with caplog.at_level(logging.WARNING, logger="autolog"), autolog.start_run("big") as run:
        run.log_artifact(big)
        run.log_metrics({"after": 1.0}, step=0)
    assert autolog.flush(60)
    with ServerClient(server.url, read_token) as client:
        remote = client.get_run(run.id)
    assert remote["metrics"] == {"after": 1.0} and remote["status"] == "FINISHED"
    assert "big.bin" not in remote["artifacts"]
    assert any("skipped artifact 'big.bin'" in r.getMessage() for r in caplog.records)


def test_what_the_server_cannot_take_is_skipped_once_and_the_rest_arrives(
        server: LiveServer, http_env: None, read_token: str, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    odd = tmp_path / "odd"
    odd.write_text("x")
    long_key = "k" * 600
    with caplog.at_level(logging.WARNING, logger="autolog"), autolog.start_run("odd") as run:
        for step in range(3):
            run.log_metrics({long_key: 1.0, "loss": 0.5}, step=step)
        with pytest.warns(AutologWarning, match="beyond a 64-bit integer"):
            run.log_metrics({"huge-step": 1.0}, step=2**70)  # clamped to 2**63 - 1
        run.log_params({long_key: 1, "ok": "a\x00b"})
        run.log_artifact(odd, "back\\slash.txt")  # fine on Linux, refused by the server
        run.log_metrics({"after": 2.0}, step=0)
    assert autolog.flush(60)
    with ServerClient(server.url, read_token) as client:
        remote = client.get_run(run.id)
    assert remote["metrics"] == {"loss": 0.5, "huge-step": 1.0, "after": 2.0}
    assert remote["params"] == {"ok": "a\ufffdb"}
    assert remote["status"] == "FINISHED" and "back\\slash.txt" not in remote["artifacts"]
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 3, skipped  # the metric and param key, the artifact: once
    assert any("500 characters" in m for m in skipped)
    assert any("back" in m and "artifact" in m for m in skipped)


# -- the CLI reading from a server ---------------------------------------------------------------


def test_runs_and_show_read_from_the_server(server: LiveServer, http_env: None,
                                            read_token: str, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    project = f"cli-{os.urandom(4).hex()}"
    for name in ("first", "second"):
        with autolog.start_run(name, project=project) as run:
            train(run, steps=5)
    assert autolog.flush(60)
    capsys.readouterr()

    def output(*argv: str) -> Any:
        assert cli.main(list(argv)) == 0
        return json.loads(capsys.readouterr().out)

    local_rows = output("runs", "--project", project, "--json")
    remote_rows = output("runs", "--project", project, "--json", "--server", server.url,
                         "--token", read_token)
    assert remote_rows == local_rows and [r["name"] for r in remote_rows] == ["second", "first"]
    assert output("runs", "--server", server.url, "--token", read_token, "--limit", "1",
                  "--json") == local_rows[:1]
    monkeypatch.setenv("AUTOLOG_HTTP_TOKEN", read_token)  # --token left out: from the env
    assert output("show", run.id[:10], "--server", server.url, "--json") == \
        output("show", run.id, "--json")
    assert cli.main(["show", run.id, "--server", server.url]) == 0
    assert "second" in capsys.readouterr().out
    monkeypatch.delenv("AUTOLOG_HTTP_TOKEN")
    assert cli.main(["runs", "--server", server.url]) == 1
    assert "401" in capsys.readouterr().err
    assert cli.main(["show", "0" * 32, "--server", server.url, "--token", read_token]) == 1
    assert "no run" in capsys.readouterr().err
