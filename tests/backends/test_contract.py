"""One contract for every backend: the same run, logged and read back, is equal everywhere.

Each backend is a :class:`Destination`: the ``AUTOLOG_BACKEND`` value that switches it on, and
a ``read`` that turns what the backend stored (read with its own client) into a
:class:`Recorded`, undoing the documented mappings (MLflow: params as strings; W&B: tags as
``tags.<key>`` config entries, status as an exit code). Adding a backend is one
fixture returning a ``Destination`` and one entry in ``DESTINATIONS``, as ``http`` shows.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import autolog
from autolog.backends.wandb import STEP_KEY

from .conftest import MLFLOW_WARNINGS, MlflowTarget, WandbTarget
from .file_readers import (
    Recorded,
    aim_run_for,
    aim_runs,
    read_aim,
    read_clearml,
    read_comet,
    read_dvclive,
    read_tensorboard,
    tensorboard_run_dir,
    text_params,
)

pytestmark = [pytest.mark.filterwarnings(f) for f in MLFLOW_WARNINGS]


@dataclass
class Destination:
    backend: str
    read: Callable[[autolog.Run], Recorded]
    #: what the tracker has a place for besides params and metrics
    keeps: frozenset[str] = frozenset({"name", "status", "tags"})
    #: which of the run's artifact files the tracker stores
    files: Callable[[set[str]], set[str]] = lambda files: files


_text_params = text_params


def _files(record: Any) -> set[str]:
    out = set()
    for name in record.artifacts:
        path = record.artifact_path(name)
        if path.is_dir():
            out |= {f"{name}/{p.relative_to(path).as_posix()}" for p in path.rglob("*")
                    if p.is_file()}
        else:
            out.add(name)
    return out


def _read_local(run: autolog.Run) -> Recorded:
    record = autolog.get_run(run.id)
    return Recorded(
        name=record.name, status=record.status, params=_text_params(record.params),
        tags=dict(record.tags),
        metrics={key: sorted((s, v) for s, v, _ in record.history(key))
                 for key in record.metric_keys},
        artifacts=_files(record))


@pytest.fixture
def local_destination() -> Destination:
    return Destination("local", _read_local)


@pytest.fixture
def mlflow_destination(mlflow_sqlite: MlflowTarget) -> Destination:
    def read(run: autolog.Run) -> Recorded:
        remote = mlflow_sqlite.run_for(run.id)
        run_id = remote.info.run_id
        own = ("mlflow.", "autolog.run_id", "autolog.delivered")
        return Recorded(
            name=remote.info.run_name, status=remote.info.status, params=remote.data.params,
            tags={k: v for k, v in remote.data.tags.items() if not k.startswith(own)},
            metrics={key: mlflow_sqlite.history(run_id, key) for key in remote.data.metrics},
            artifacts=set(mlflow_sqlite.artifacts(run_id)))

    return Destination("local,mlflow", read)


@pytest.fixture
def wandb_destination(wandb_offline: WandbTarget) -> Destination:
    statuses = {0: "FINISHED", 1: "FAILED", 255: "KILLED"}

    def read(run: autolog.Run) -> Recorded:
        got = wandb_offline.read(run.id)
        keys = {k for row in got.history for k in row if not k.startswith("_") and k != STEP_KEY}
        config = got.config
        return Recorded(
            name=got.run.display_name, status=statuses[got.exit_code],
            params=_text_params({k: v for k, v in config.items() if not k.startswith("tags.")}),
            tags={k[5:]: v for k, v in config.items() if k.startswith("tags.")},
            metrics={key: sorted(got.metric(key, STEP_KEY)) for key in keys},
            artifacts={entry.path for a in got.artifacts if a.type == "file"
                       for entry in a.manifest.contents})

    return Destination("local,wandb", read)


@pytest.fixture
def http_destination(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("fastapi")
    from autolog.backends.http import ServerClient

    from ..server.live import LiveServer

    live = LiveServer(f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "server").start()
    token = live.token(scope="write")
    monkeypatch.setenv("AUTOLOG_HTTP_URL", live.url)
    monkeypatch.setenv("AUTOLOG_HTTP_TOKEN", token)

    def read(run: autolog.Run) -> Recorded:
        with ServerClient(live.url, token) as client:
            got = client.get_run(run.id)
            return Recorded(
                name=got["name"], status=got["status"], params=_text_params(got["params"]),
                tags=got["tags"],
                metrics={k: sorted((s, v) for s, v, _ in client.history(run.id, k))
                         for k in got["metrics"]},
                artifacts={f["path"] for f in client.files(run.id)})

    yield Destination("local,http", read)
    live.stop()


@pytest.fixture
def tensorboard_destination(tensorboard_dir: Path) -> Destination:
    return Destination("local,tensorboard",
                       lambda run: read_tensorboard(tensorboard_run_dir(tensorboard_dir, run.id)),
                       files=lambda files: {f for f in files if f.endswith((".txt", ".md"))})


@pytest.fixture
def dvclive_destination(dvclive_dir: Path) -> Destination:
    return Destination("local,dvclive", lambda run: read_dvclive(dvclive_dir),
                       keeps=frozenset(), files=lambda files: set())


@pytest.fixture
def aim_destination(aim_repo: Path) -> Destination:
    return Destination("local,aim", lambda run: read_aim(aim_run_for(aim_runs(aim_repo), run.id)),
                       files=lambda files: set())


@pytest.fixture
def clearml_destination(clearml_dir: Path, no_network: list) -> Destination:
    return Destination("local,clearml",
                       lambda run: read_clearml(clearml_dir / f"offline-{run.id}.zip"))


@pytest.fixture
def comet_destination(comet_offline: Path, no_network: list) -> Destination:
    return Destination("local,comet",
                       lambda run: read_comet(sorted(comet_offline.glob(f"{run.id}*.zip"))))


DESTINATIONS = {
    "tensorboard": "tensorboard_destination",
    "dvclive": "dvclive_destination",
    "aim": "aim_destination",
    "clearml": "clearml_destination",
    "comet": "comet_destination",
    "local": "local_destination",
    "mlflow": "mlflow_destination",
    "wandb": "wandb_destination",
    "http": "http_destination",
}


@pytest.fixture(params=sorted(DESTINATIONS))
def destination(request: pytest.FixtureRequest) -> Destination:
    return request.getfixturevalue(DESTINATIONS[request.param])


def test_the_same_run_reads_back_equal(destination: Destination, tmp_path: Path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    plots = tmp_path / "plots"
    (plots / "epoch1").mkdir(parents=True)
    (plots / "epoch1" / "a.txt").write_text("a")
    autolog.enable(backend=destination.backend)
    with autolog.start_run("contract", tags={"team": "vision"}) as run:
        run.log_params({"lr": 0.001, "layers": 2, "optimizer": {"name": "adam"},
                        "augment": True})
        for step in range(50):
            run.log_metrics({"loss": 1 / (step + 1), "train/acc": step / 50}, step=step)
        for epoch in range(5):  # another step axis, after the first: nothing dropped
            run.log_metrics({"val_loss": 0.5 - epoch / 20}, step=epoch)
        run.log_metrics({"system/memory_percent": 41.5})
        run.log_artifact(notes)
        run.log_artifact(plots, "plots")
        run.log_dict({"classes": ["cat", "dog"]}, "meta/labels.json")
    assert autolog.flush(60)

    got = destination.read(run)
    want = _read_local(run)
    keeps = destination.keeps
    if "name" in keeps:
        assert got.name == "contract"
    if "status" in keeps:
        assert got.status == "FINISHED"
    assert got.params == {"lr": "0.001", "layers": "2", "optimizer.name": "adam",
                          "augment": "True"} == want.params
    if "tags" in keeps:
        assert got.tags["team"] == "vision"
        assert {k: got.tags.get(k) for k in want.tags} == want.tags  # context tags included
    assert got.metrics == want.metrics
    assert got.metrics["loss"] == [(s, 1 / (s + 1)) for s in range(50)]
    assert got.metrics["val_loss"] == [(e, 0.5 - e / 20) for e in range(5)]
    assert got.metrics["system/memory_percent"] == [(0, 41.5)]
    if destination.files(want.artifacts) == want.artifacts:  # a tracker that keeps every file
        assert {"notes.txt", "plots/epoch1/a.txt", "meta/labels.json"} <= got.artifacts
    assert got.artifacts == destination.files(want.artifacts)
    if destination.backend == "local":
        labels = autolog.get_run(run.id).artifact_path("meta/labels.json")
        assert json.loads(labels.read_text()) == {"classes": ["cat", "dog"]}


def test_every_media_kind_is_delivered_without_a_failure(destination: Destination,
                                                         tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture):
    """Each backend takes every media kind (an image file in WebP included) at once: no retry,
    no log line, and the points around them arrive as they do without media (what each backend
    makes of the media is tested in its own module)."""
    pytest.importorskip("PIL")
    from .media_items import log_every_kind

    with caplog.at_level("WARNING", logger="autolog"):
        run = log_every_kind(destination.backend, tmp_path)  # flushes: every backend complete
    assert [r.getMessage() for r in caplog.records if r.name == "autolog"] == []
    got, want = destination.read(run).metrics, _read_local(run).metrics
    assert {key: got.get(key) for key in want} == want  # W&B's reader sees media keys too
