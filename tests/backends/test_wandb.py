"""The W&B backend in offline mode, read back from its run files (``run-<id>.wandb``)."""

from __future__ import annotations

import json
import math
import struct
import time
import zlib

import pytest

import autolog
from autolog.backends.base import Metric
from autolog.backends.wandb import STEP_KEY, WandbBackend, artifact_name, history_rows
from autolog.cli import main as cli_main

from ..helpers import crashed_run
from . import wandb_reader
from .conftest import WandbTarget

pytest.importorskip("wandb")


def _points(read, key: str) -> list[tuple[int, float]]:
    return read.metric(key, STEP_KEY)


def test_history_rows_follow_steps_and_never_merge_a_repeated_key():
    metrics = [Metric("loss", 1.0, 0, 1000), Metric("acc", 0.5, 0, 1000),
               Metric("loss", 0.9, 1, 1001), Metric("loss", 0.8, 1, 1002),
               Metric("val", 0.1, 0, 1003)]
    assert history_rows(metrics) == [
        {STEP_KEY: 0, "_timestamp": 1.0, "loss": 1.0, "acc": 0.5},
        {STEP_KEY: 1, "_timestamp": 1.001, "loss": 0.9},
        {STEP_KEY: 1, "_timestamp": 1.002, "loss": 0.8},
        {STEP_KEY: 0, "_timestamp": 1.003, "val": 0.1},
    ]
    assert artifact_name("run", "abc", "plots/a b.png") == "run-abc-plots-a-b.png"


def test_round_trip(wandb_offline: WandbTarget, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    autolog.enable(backend="local,wandb")
    with autolog.start_run("offline", project="proj", tags={"team": "vision"}) as run:
        run.log_params({"lr": 0.1, "optimizer": {"name": "adam"}})
        for step in range(300):
            run.log_metrics({"loss": 1 / (step + 1), "acc": step / 300}, step=step)
        for epoch in range(3):  # a lower step than the last row: must not be dropped
            run.log_metrics({"val_loss": 0.5 - epoch / 10}, step=epoch)
        run.log_metrics({"system/cpu_percent": 12.5})
        run.log_metric("odd", math.nan, step=0)
        run.log_artifact(notes)
        run.log_model({"weights": [1, 2, 3]}, "table")
    assert autolog.flush(60)
    read = wandb_offline.read(run.id)
    assert (read.run.run_id, read.run.display_name, read.run.project) == (run.id, "offline",
                                                                          "proj")
    assert read.config["lr"] == 0.1 and read.config["optimizer.name"] == "adam"
    assert read.config["tags.team"] == "vision"
    assert _points(read, "loss") == [(s, 1 / (s + 1)) for s in range(300)]
    assert len(_points(read, "acc")) == 300
    assert _points(read, "val_loss") == [(e, 0.5 - e / 10) for e in range(3)]
    assert _points(read, "system/cpu_percent") == [(0, 12.5)]
    assert math.isnan(_points(read, "odd")[0][1])
    local = autolog.get_run(run.id)
    rows = [row for row in read.history if "loss" in row]
    assert [row["_timestamp"] for row in rows] == [ts / 1000 for _, _, ts in local.history("loss")]
    assert read.summary["loss"] == local.metrics["loss"]
    assert read.summary["val_loss"] == local.metrics["val_loss"]
    defined = {(m.glob_name or m.name, m.step_metric) for m in read.metric_defs}
    assert ("*", STEP_KEY) in defined
    artifacts = {a.name: a for a in read.artifacts}
    notes_artifact = artifacts[f"run-{run.id}-notes.txt"]
    assert notes_artifact.type == "file"
    assert [entry.path for entry in notes_artifact.manifest.contents] == ["notes.txt"]
    model = artifacts[f"model-{run.id}-table"]
    assert model.type == "model"
    assert json.loads(model.metadata)["flavor"] == "pickle"
    assert {e.path for e in model.manifest.contents} == {"model.pkl", "autolog-model.json"}
    assert read.exit_code == 0


def test_children_are_grouped_under_their_parent_and_exit_codes_follow_status(wandb_offline):
    autolog.enable(backend="local,wandb")
    with autolog.start_run("parent") as parent, pytest.raises(ValueError), \
            autolog.start_run("child") as child:
        raise ValueError("diverged")
    with pytest.raises(KeyboardInterrupt), autolog.start_run("stopped") as stopped:
        raise KeyboardInterrupt
    assert autolog.flush(60)
    assert wandb_offline.read(parent.id).exit_code == 0
    child_read = wandb_offline.read(child.id)
    assert child_read.exit_code == 1 and child_read.run.run_group == parent.id
    assert wandb_offline.read(stopped.id).exit_code == 255


def test_sync_to_wandb_publishes_a_local_run(wandb_offline):
    with autolog.start_run("recorded offline") as run:  # the local backend alone
        run.log_params({"seed": 7})
        for step in range(20):
            run.log_metric("loss", step * 0.5, step=step)
    assert cli_main(["sync", "--to", "wandb"]) == 0
    read = wandb_offline.read(run.id)
    assert {k: v for k, v in read.config.items() if not k.startswith("tags.")} == {"seed": 7}
    assert _points(read, "loss") == [(s, s * 0.5) for s in range(20)]
    assert read.exit_code == 0


def test_sync_ends_a_crashed_run_with_exit_code_1(wandb_offline, store):
    run_id = crashed_run(store, steps=50)
    assert cli_main(["sync", "--to", "wandb", run_id]) == 0
    read = wandb_offline.read(run_id)
    assert _points(read, "loss") == [(i, 1.0 / (i + 1)) for i in range(50)]
    assert read.exit_code == 1
    [cursor] = (store / run_id / "delivery").glob("wandb*.json")
    assert json.loads(cursor.read_text())["done"]  # ended by sync, not left open for the next


def test_cursor_key_names_the_destination(monkeypatch, wandb_offline):
    settings = autolog.api.get_settings()
    offline = WandbBackend(settings).cursor_key()
    monkeypatch.setenv("WANDB_PROJECT", "other")
    assert WandbBackend(settings).cursor_key() != offline
    assert offline.startswith("wandb-")


def test_reader_joins_records_split_across_blocks(wandb_offline):
    autolog.enable(backend="local,wandb")
    with autolog.start_run() as run:
        run.log_params({"big": "x" * 100_000})  # one record over three 32 KiB blocks
        run.log_metric("after", 1.0, step=0)
    assert autolog.flush(60)
    path = wandb_reader.find_run_file(wandb_offline.dir, run.id)
    kinds = [kind for kind, _ in wandb_reader.iter_chunks(path.read_bytes())]
    assert wandb_reader.FIRST in kinds and wandb_reader.MIDDLE in kinds
    read = wandb_reader.read_run(path)
    deadline = time.monotonic() + 20  # W&B's own service process may still be writing the file
    while "big" not in read.config and time.monotonic() < deadline:
        time.sleep(0.2)
        read = wandb_reader.read_run(path)
    assert read.config["big"] == "x" * 100_000
    assert _points(read, "after") == [(0, 1.0)]


def test_reader_checks_the_header_and_checksums(tmp_path):
    payload = b"not a record"
    chunk = struct.pack("<IHB", zlib.crc32(bytes([1]) + payload), len(payload), 1) + payload
    good = tmp_path / "good.wandb"
    good.write_bytes(wandb_reader.HEADER + chunk)
    assert list(wandb_reader.iter_chunks(good.read_bytes())) == [(1, payload)]
    with pytest.raises(wandb_reader.CorruptFile):
        list(wandb_reader.iter_chunks(wandb_reader.HEADER + chunk[:-1] + b"X"))
    with pytest.raises(wandb_reader.CorruptFile):
        list(wandb_reader.iter_chunks(b"LEVELDB" + chunk))
    assert list(wandb_reader.iter_chunks(b"")) == []  # created, not yet written
    assert list(wandb_reader.iter_chunks(wandb_reader.HEADER[:3])) == []
    with pytest.raises(wandb_reader.CorruptFile):
        list(wandb_reader.iter_chunks(b"LEV"))
