"""``autolog doctor``: each configuration mistake found, with its fix and exit status 1; and
``autolog.enable()`` warning about the same ones at once."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

import autolog
from autolog import testing
from autolog.cli import main
from autolog.errors import AutologWarning, ConfigError

from ..server.live import LiveServer, free_port
from .conftest import cli


def doctor(store: Path, **env: str | None) -> tuple[int, list[dict[str, str]], dict[str, Any]]:
    done = cli("doctor", "--json", "--timeout", "5", store=store, env=env)
    data = json.loads(done.stdout)
    return done.returncode, data["problems"], data


def only(problems: list[dict[str, str]]) -> dict[str, str]:
    assert len(problems) == 1, problems
    return problems[0]


def test_a_clean_setup(tmp_path: Path) -> None:
    done = cli("doctor", store=tmp_path / "autolog-runs")
    assert done.returncode == 0, done.stdout
    assert done.stdout.rstrip().endswith("no problems found")
    assert "server: ready (SQLite" in done.stdout
    lines = done.stdout.splitlines()
    http = next(line for line in lines if line.startswith("http "))
    assert "built in" in http  # autolog itself speaks to the server, not requests' version


def test_unknown_backend_and_variable(tmp_path: Path) -> None:
    code, problems, _ = doctor(tmp_path, AUTOLOG_BACKEND="mlfow")
    assert code == 1
    assert only(problems) == {"check": "AUTOLOG_BACKEND",
                              "message": "unknown backend 'mlfow' (did you mean 'mlflow'?)",
                              "fix": "use 'mlflow'"}
    code, problems, _ = doctor(tmp_path, AUTOLOG_BAKEND="mlflow")
    assert code == 1
    problem = only(problems)
    assert problem["check"] == "AUTOLOG_BAKEND"
    assert "did you mean AUTOLOG_BACKEND?" in problem["message"]
    assert problem["fix"] == "rename it AUTOLOG_BACKEND"
    code, problems, _ = doctor(tmp_path, AUTOLOG_FLUSH_INTERVAL="soon")
    assert code == 1 and only(problems)["check"] == "AUTOLOG_FLUSH_INTERVAL"
    assert "'soon' is not a number" in only(problems)["message"]
    # said in words too, with the fix
    done = cli("doctor", store=tmp_path, env={"AUTOLOG_BACKEND": "local,mlfow"})
    assert "1 problem found:" in done.stdout and "fix: use 'mlflow'" in done.stdout


def test_the_store_must_be_writable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code, problems, _ = doctor(tmp_path, AUTOLOG_DIR=str(blocker / "runs"))
    assert code == 1
    assert only(problems)["check"] == "AUTOLOG_DIR"
    assert f"{blocker} is a file, not a directory" in only(problems)["message"]


class NeedsAnSdk(testing.RecordingBackend):
    name = "needs-sdk"
    distributions: ClassVar[tuple[str, ...]] = ("autolog-test-sdk-not-installed",)


@pytest.fixture
def needs_sdk(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with testing.registered(NeedsAnSdk):
        yield


def test_a_backend_sdk_not_installed(needs_sdk: None, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AUTOLOG_BACKEND", "local,needs-sdk")
    assert main(["doctor", "--offline"]) == 1
    out = capsys.readouterr().out
    assert "needs-sdk: the needs-sdk backend is configured but autolog-test-sdk-not-installed " \
           "is not installed" in out
    assert "fix: pip install autolog-test-sdk-not-installed" in out
    with pytest.warns(AutologWarning, match="autolog-test-sdk-not-installed is not installed"):
        autolog.enable(backend="local,needs-sdk")


def test_a_real_sdk_names_its_extra() -> None:
    from autolog.backends.mlflow import MlflowBackend
    from autolog.checks import sdk_missing

    class Missing(MlflowBackend):
        distributions = ("autolog-test-not-mlflow",)

    problem = sdk_missing("mlflow", Missing)
    assert problem is not None and problem.fix == "pip install 'autolog-ml[mlflow]'"


def test_enable_warns_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOLOG_BAKEND", "mlflow")
    with pytest.warns(AutologWarning, match=r"AUTOLOG_BAKEND: not a variable autolog reads.*"
                      r"did you mean AUTOLOG_BACKEND\?"):
        autolog.enable()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        autolog.enable()  # once per process
    with pytest.raises(ConfigError, match=r"unknown backend 'wandv' \(did you mean 'wandb'\?\)"):
        autolog.enable(backend="local,wandv")


def test_the_autolog_server(tmp_path: Path) -> None:
    code, problems, _ = doctor(tmp_path, AUTOLOG_BACKEND="local,http",
                               AUTOLOG_HTTP_URL=f"http://127.0.0.1:{free_port()}")
    assert code == 1 and only(problems)["check"] == "http"
    assert "cannot reach the autolog server" in only(problems)["message"]
    code, problems, _ = doctor(tmp_path, AUTOLOG_BACKEND="http", AUTOLOG_HTTP_URL="tracker:5005")
    assert code == 1 and only(problems) == {
        "check": "AUTOLOG_HTTP_URL", "message": "'tracker:5005' is not an http(s) URL",
        "fix": "AUTOLOG_HTTP_URL=http://tracker:5005"}
    server = LiveServer(f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "server").start()
    try:
        env = {"AUTOLOG_BACKEND": "local,http", "AUTOLOG_HTTP_URL": server.url}
        code, problems, _ = doctor(tmp_path, **env, AUTOLOG_HTTP_TOKEN="not-a-token")
        assert code == 1 and only(problems)["check"] == "AUTOLOG_HTTP_TOKEN"
        assert "refused the token" in only(problems)["message"]
        code, problems, _ = doctor(tmp_path, **env)
        assert code == 1 and "refused to answer without a token" in only(problems)["message"]
        code, problems, _ = doctor(tmp_path, **env, AUTOLOG_HTTP_TOKEN=server.token(
            scope="read"))
        assert code == 1 and only(problems)["message"] == \
            "the token may read but not write runs"
        code, problems, data = doctor(tmp_path, **env, AUTOLOG_HTTP_TOKEN=server.token())
        assert code == 0 and problems == []
        assert f"http: autolog server {autolog.__version__} at {server.url}, token may write" \
            in data["notes"]
    finally:
        server.stop()


def test_mlflow_tracking_uri(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    env = {"AUTOLOG_BACKEND": "local,mlflow"}
    code, problems, _ = doctor(tmp_path, **env, MLFLOW_TRACKING_URI="localhost:5000")
    assert code == 1 and only(problems)["fix"] == "MLFLOW_TRACKING_URI=http://localhost:5000"
    code, problems, _ = doctor(tmp_path, **env,
                               MLFLOW_TRACKING_URI=f"http://127.0.0.1:{free_port()}")
    assert code == 1 and "cannot reach the MLflow tracking server" in \
        only(problems)["message"]
    code, problems, _ = doctor(tmp_path, **env,
                               MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert code == 0 and problems == []
    code, problems, data = doctor(tmp_path, **env, MLFLOW_TRACKING_URI=None)
    assert code == 0 and any("MLFLOW_TRACKING_URI is not set" in n for n in data["notes"])


def test_a_running_mlflow_server(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    from ..backends.conftest import MlflowServer

    server = MlflowServer(tmp_path)
    server.start()
    try:
        code, problems, data = doctor(tmp_path, AUTOLOG_BACKEND="local,mlflow",
                                      MLFLOW_TRACKING_URI=server.url)
        assert code == 0 and problems == []
        assert f"mlflow: tracking server at {server.url} answers" in data["notes"]
    finally:
        server.stop()


def test_wandb_mode(tmp_path: Path) -> None:
    pytest.importorskip("wandb")
    env = {"AUTOLOG_BACKEND": "local,wandb", "WANDB_API_KEY": None, "HOME": str(tmp_path)}
    code, problems, _ = doctor(tmp_path, **env, WANDB_MODE="offlin")
    assert code == 1 and only(problems)["fix"] == "WANDB_MODE=offline"
    code, problems, _ = doctor(tmp_path, **env, WANDB_MODE="disabled")
    assert code == 1 and "W&B records nothing" in only(problems)["message"]
    code, problems, _ = doctor(tmp_path, **env, WANDB_MODE="online")
    assert code == 1 and "no API key" in only(problems)["message"]
    code, problems, data = doctor(tmp_path, **env, WANDB_MODE="offline")
    assert code == 0 and "wandb: offline mode (`wandb sync` uploads the runs later)" in \
        data["notes"]


def test_missing_extras_name_the_pip_line(tmp_path: Path) -> None:
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "psycopg.py").write_text("raise ModuleNotFoundError(\"No module named "
                                        "'psycopg'\", name='psycopg')\n")
    import os

    env = {"PYTHONPATH": f"{blocker}{os.pathsep}{Path(autolog.__file__).parents[1]}"}
    done = cli("server", "migrate", "--db", "postgresql://u:p@127.0.0.1:1/db", env=env)
    assert done.returncode == 1
    assert "pip install 'autolog-ml[server]'" in done.stderr
