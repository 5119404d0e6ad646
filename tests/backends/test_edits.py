"""Edits made after a run (rename, tags, note, delete, restore): journal events that the local
store reads back and ``autolog sync`` carries to MLflow, our server and W&B."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import autolog
from autolog.cli import main as cli_main
from autolog.journal import edits
from autolog.journal.reader import iter_journal

from ..helpers import clean_env, crashed_run
from .conftest import MLFLOW_WARNINGS, MlflowTarget, WandbTarget


def _finished_run(name: str = "first name") -> autolog.Run:
    with autolog.start_run(name, tags={"team": "vision", "stage": "dev"}) as run:
        run.log_params({"lr": 0.01})
        for step in range(5):
            run.log_metric("loss", 1 / (step + 1), step=step)
    return run


def _edit(run_id: str, **changes: object) -> None:
    path = Path(autolog.get_run(run_id).path)
    edits.append_events(path, edits.edit_events(**changes))  # type: ignore[arg-type]


# -- the journal and RunRecord ----------------------------------------------------------------


def test_edits_are_journal_lines_the_run_record_reads_back(store: Path) -> None:
    run = _finished_run()
    _edit(run.id, name="renamed", tags={"best": "yes"}, remove_tags=["stage"],
          note="lr too high", deleted=True)
    record = autolog.get_run(run.id)
    assert (record.name, record.note, record.deleted) == ("renamed", "lr too high", True)
    assert record.tags["best"] == "yes" and "stage" not in record.tags
    assert record.tags["team"] == "vision" and record.params == {"lr": 0.01}
    assert record.status == "FINISHED" and len(record.history("loss")) == 5
    _edit(run.id, deleted=False, note="")
    record = autolog.get_run(run.id)
    assert (record.deleted, record.note) == (False, None)
    kinds = [r["t"] for _, r in iter_journal(record.path / "events.jsonl")]
    assert kinds[-7:] == ["rename", "untag", "tags", "note", "delete", "note", "restore"]


def test_a_key_both_removed_and_set_ends_up_set(store: Path) -> None:
    run = _finished_run()
    _edit(run.id, tags={"team": "nlp"}, remove_tags=["team"])
    assert autolog.get_run(run.id).tags["team"] == "nlp"


def test_an_edit_after_a_torn_line_starts_on_its_own_line(store: Path) -> None:
    run = _finished_run()
    journal = Path(autolog.get_run(run.id).path) / "events.jsonl"
    with open(journal, "ab") as f:
        f.write(b'{"t":"metrics","d":{"loss":[[9],[0.')  # a writer killed mid-line
    _edit(run.id, name="after the tear")
    assert autolog.get_run(run.id).name == "after the tear"
    assert autolog.get_run(run.id).history("loss")[-1][0] == 4  # the torn line is skipped


_WRITER = """
import autolog, sys
run = autolog.start_run("live")
print(run.id, flush=True)
sys.stdin.readline()
for i in range(20000):
    run.log_metric("loss", float(i), step=i)
    if i % 500 == 0:
        autolog.flush()
run.end()
"""


def test_edits_appended_while_a_process_writes_the_journal_lose_nothing(store: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _WRITER], env=clean_env(store),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        run_id = proc.stdout.readline().strip()  # type: ignore[union-attr]
        proc.stdin.write("go\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
        for i in range(200):
            _edit(run_id, tags={f"k{i}": str(i)})
        assert proc.wait(60) == 0
    finally:
        proc.kill()
    journal = Path(autolog.get_run(run_id).path) / "events.jsonl"
    lines = journal.read_bytes().splitlines()
    assert all(json.loads(line) for line in lines)  # no line torn or interleaved
    record = autolog.get_run(run_id)
    assert [s for s, _, _ in record.history("loss")] == list(range(20000))
    assert all(record.tags[f"k{i}"] == str(i) for i in range(200))
    assert record.status == "FINISHED"


# -- autolog sync carries them ----------------------------------------------------------------


@pytest.mark.filterwarnings(*MLFLOW_WARNINGS)
def test_sync_carries_edits_to_mlflow(mlflow_sqlite: MlflowTarget, store: Path) -> None:
    run = _finished_run()
    assert cli_main(["sync", "--to", "mlflow", run.id]) == 0
    _edit(run.id, name="renamed", remove_tags=["stage"], note="a note")
    assert cli_main(["sync", "--to", "mlflow", run.id]) == 0
    remote = mlflow_sqlite.run_for(run.id)
    assert remote.info.run_name == "renamed" and remote.info.status == "FINISHED"
    assert "stage" not in remote.data.tags and remote.data.tags["team"] == "vision"
    assert remote.data.tags["mlflow.note.content"] == "a note"
    _edit(run.id, deleted=True)
    _edit(run.id, note="noted after the deletion")  # MLflow refuses changes to deleted runs
    assert cli_main(["sync", "--to", "mlflow", run.id]) == 0
    client = mlflow_sqlite.client
    deleted = client.get_run(remote.info.run_id)
    assert deleted.info.lifecycle_stage == "deleted"
    assert deleted.data.tags["mlflow.note.content"] == "noted after the deletion"
    _edit(run.id, deleted=False, tags={"best": "yes"})
    assert cli_main(["sync", "--to", "mlflow", run.id]) == 0
    restored = client.get_run(remote.info.run_id)
    assert restored.info.lifecycle_stage == "active" and restored.data.tags["best"] == "yes"
    assert cli_main(["sync", "--to", "mlflow", run.id]) == 0  # nothing new: nothing sent


@pytest.mark.filterwarnings(*MLFLOW_WARNINGS)
def test_sync_carries_edits_of_a_crashed_run(mlflow_sqlite: MlflowTarget, store: Path) -> None:
    run_id = crashed_run(store, steps=10)
    assert cli_main(["sync", "--to", "mlflow", run_id]) == 0
    _edit(run_id, name="it crashed")
    assert cli_main(["sync", "--to", "mlflow", run_id]) == 0
    remote = mlflow_sqlite.run_for(run_id)
    assert remote.info.run_name == "it crashed" and remote.info.status == "FAILED"


def test_sync_carries_edits_to_wandb_offline(wandb_offline: WandbTarget, store: Path) -> None:
    run = _finished_run()
    assert cli_main(["sync", "--to", "wandb", run.id]) == 0
    _edit(run.id, name="renamed", remove_tags=["stage"], note="a note", deleted=True)
    assert cli_main(["sync", "--to", "wandb", run.id]) == 0
    read = wandb_offline.read(run.id)  # the newest file: the run resumed for the edits
    assert read.run.display_name == "renamed" and read.run.notes == "a note"
    assert read.config["tags.stage"] is None and read.exit_code == 0  # closed as it ended


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    pytest.importorskip("fastapi")
    from ..server.live import LiveServer

    workdir = tmp_path_factory.mktemp("edits-server")
    server = LiveServer(f"sqlite:///{workdir / 'autolog.db'}", workdir)
    server.start()
    yield server.url, server.token("edits", "write")
    server.stop()


def test_sync_carries_edits_to_the_server(live_server: tuple[str, str], store: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import requests

    url, token = live_server
    monkeypatch.setenv("AUTOLOG_HTTP_URL", url)
    monkeypatch.setenv("AUTOLOG_HTTP_TOKEN", token)
    run = _finished_run()
    assert cli_main(["sync", "--to", "http", run.id]) == 0
    _edit(run.id, name="renamed", remove_tags=["stage"], note="a note", deleted=True)
    assert cli_main(["sync", "--to", "http", run.id]) == 0
    _edit(run.id, tags={"best": "yes"})
    assert cli_main(["sync", "--to", "http", run.id]) == 0  # the rename is not undone
    remote = requests.get(f"{url}/api/v1/runs/{run.id}", timeout=30,
                          headers={"Authorization": f"Bearer {token}"}).json()
    assert (remote["name"], remote["note"], remote["deleted"]) == ("renamed", "a note", True)
    assert "stage" not in remote["tags"] and remote["tags"]["best"] == "yes"
    assert remote["status"] == "FINISHED"
