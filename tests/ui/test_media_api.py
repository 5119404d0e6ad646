"""Media on both read paths: ``GET /runs/{run}/media`` and ``/media/keys``, and the items' files
(downloads and safe previews), on ``autolog ui`` (the index of a local store) and on
``autolog server`` (its database), for one run a real script delivered to both. Also: the index
follows a run that is still logging media, and a text preview follows a growing log by offset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi.testclient import TestClient

import autolog
from autolog.ui.index import Index

from ..helpers import clean_env
from .conftest import TOKEN, local_client

SCRIPT = r'''
import numpy as np
import autolog
autolog.enable(frameworks=["sklearn"])
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
with autolog.start_run("media") as run:
    for step in range(3):
        run.log_image("samples", np.full((6, 8, 3), 40 * step, dtype=np.uint8), step=step)
        run.log_histogram("weights", np.random.default_rng(step).normal(step, 1, 1000),
                          step=step)
        run.log_text("notes", f"epoch {step}", step=step)
    run.log_table("predictions", [{"id": i, "score": i / 10} for i in range(5)])
    X, y = make_classification(n_samples=200, n_features=5, random_state=0)
    LogisticRegression().fit(X, y)
print(run.id)
'''

PLOTS = {"training_confusion_matrix": "confusion_matrix", "training_roc_curve": "roc_curve",
         "training_precision_recall_curve": "precision_recall_curve"}


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The run, recorded locally and delivered to a live ``autolog server``; a client of each."""
    pytest.importorskip("sklearn")
    from ..server.live import LiveServer

    root = tmp_path_factory.mktemp("media")
    store = root / "autolog-runs"
    live = LiveServer(f"sqlite:///{root / 'server.db'}", root / "server").start()
    index = None
    try:
        token = live.token(scope="read")
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=240,
            env=clean_env(store, AUTOLOG_BACKEND="local,http", AUTOLOG_HTTP_URL=live.url,
                          AUTOLOG_HTTP_TOKEN=live.token(scope="write"),
                          AUTOLOG_EXIT_TIMEOUT="120"))  # a busy machine: wait for delivery
        assert done.returncode == 0, done.stderr[-3000:]
        index = Index(store)
        index.refresh(full=True)
        server = requests.Session()
        server.headers["Authorization"] = f"Bearer {token}"
        local = local_client(index)
        local.headers["Authorization"] = f"Bearer {TOKEN}"
        yield {"id": done.stdout.split()[-1], "store": store, "index": index,
               "local": local, "server": server, "url": live.url}
    finally:
        if index is not None:
            index.stop()
        live.stop()


def get(both: dict[str, Any], mode: str, path: str, **params: Any) -> Any:
    """``GET path`` on ``mode`` ("local" or "server"); the response."""
    if mode == "local":
        return both["local"].get(path, params=params)
    return both["server"].get(both["url"] + path, params=params, timeout=30)


MODES = ["local", "server"]


def test_both_modes_list_the_same_media_as_the_journal(both: dict[str, Any]) -> None:
    run_id = both["id"]
    record = autolog.get_run(run_id, both["store"])
    expected = sorted(({"kind": m.kind, "key": m.key, "step": m.step, "time": m.timestamp,
                        "path": m.path, "image": m.image, "meta": m.meta}
                       for m in record.media), key=lambda m: (m["key"], m["step"], m["path"]))
    answers = {}
    for mode in MODES:
        found = get(both, mode, f"/api/v1/runs/{run_id}/media")
        assert found.status_code == 200, (mode, found.text)
        answers[mode] = found.json()
        assert answers[mode]["run_id"] == run_id
        assert answers[mode]["media"] == expected, mode
    assert {m["key"] for m in expected} == {"samples", "weights", "notes", "predictions",
                                            *PLOTS}


def test_keys_sum_up_each_key(both: dict[str, Any]) -> None:
    run_id = both["id"]
    for mode in MODES:
        keys = get(both, mode, f"/api/v1/runs/{run_id[:10]}/media/keys").json()
        assert keys["run_id"] == run_id
        by_key = {k["key"]: k for k in keys["keys"]}
        assert [k["key"] for k in keys["keys"]] == sorted(by_key)
        assert {k: (v["kind"], v["count"], v["first_step"], v["last_step"])
                for k, v in by_key.items()} == {
            "samples": ("image", 3, 0, 2), "weights": ("histogram", 3, 0, 2),
            "notes": ("text", 3, 0, 2), "predictions": ("table", 1, 0, 0),
            **{key: ("plot", 1, 0, 0) for key in PLOTS}}, mode


def test_filters_by_key_and_kind(both: dict[str, Any]) -> None:
    run_id = both["id"]
    for mode in MODES:
        images = get(both, mode, f"/api/v1/runs/{run_id}/media", key="samples").json()["media"]
        assert [(m["step"], m["meta"]["width"], m["meta"]["height"]) for m in images] == [
            (0, 8, 6), (1, 8, 6), (2, 8, 6)]
        plots = get(both, mode, f"/api/v1/runs/{run_id}/media", kind="plot").json()["media"]
        assert {m["key"]: m["meta"]["plot"] for m in plots} == PLOTS
        assert all(m["image"].endswith(".png") for m in plots)
        assert get(both, mode, f"/api/v1/runs/{run_id}/media", kind="video").status_code == 422
        assert get(both, mode, f"/api/v1/runs/{'0' * 32}/media").status_code == 404
        assert get(both, mode, f"/api/v1/runs/{'0' * 32}/media/keys").status_code == 404


def test_files_download_and_preview_safely_on_both(both: dict[str, Any]) -> None:
    run_id = both["id"]
    record = autolog.get_run(run_id, both["store"])
    for mode in MODES:
        for item in record.media:
            for name in filter(None, (item.path, item.image)):
                base = f"/api/v1/runs/{run_id}/files/{name}"
                download = get(both, mode, base)
                assert download.status_code == 200, (mode, name, download.text)
                assert download.content == record.artifact_path(name).read_bytes()
                assert download.headers["content-type"] == "application/octet-stream"
                shown = get(both, mode, base, preview=1)
                assert shown.headers["x-content-type-options"] == "nosniff"
                assert shown.headers["content-security-policy"] == "sandbox"
                kind = "image/png" if name.endswith(".png") else "text/plain; charset=utf-8"
                assert shown.headers["content-type"] == kind, (mode, name)
        table = record.media_for("predictions")[0]
        shown = get(both, mode, f"/api/v1/runs/{run_id}/files/{table.path}", preview=1)
        assert json.loads(shown.text)["data"][4] == [4, 0.4]
        matrix = record.media_for("training_confusion_matrix")[0]
        data = get(both, mode, f"/api/v1/runs/{run_id}/files/{matrix.path}").json()
        assert data["plot"] == "confusion_matrix" and sum(map(sum, data["matrix"])) == 200


# -- the local index follows media as they are logged -------------------------------------------


def test_the_index_follows_media_logged_while_it_runs(store: Path) -> None:
    pytest.importorskip("PIL")
    import numpy as np

    with autolog.start_run("growing") as run:
        run.log_image("frames", np.zeros((4, 4), dtype=np.uint8), step=0)
        assert autolog.flush(10)
        index = Index(store)
        index.refresh(full=True)
        index.start(interval=0.1)
        try:
            client = local_client(index)
            client.headers["Authorization"] = f"Bearer {TOKEN}"
            url = f"/api/v1/runs/{run.id}/media"
            assert [m["step"] for m in client.get(url).json()["media"]] == [0]
            run.log_image("frames", np.ones((4, 4), dtype=np.uint8), step=1)
            run.log_histogram("acts", [1.0, 2.0, 2.5], step=1, bins=2)
            assert autolog.flush(10)
            deadline = time.monotonic() + 10
            while len(client.get(url).json()["media"]) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            found = client.get(url).json()["media"]
            assert [(m["key"], m["step"]) for m in found] == [("acts", 1), ("frames", 0),
                                                              ("frames", 1)]
            assert found[0]["meta"]["count"] == 3
        finally:
            index.stop()


def test_a_bad_media_line_is_skipped_and_the_rest_indexed(store: Path) -> None:
    pytest.importorskip("PIL")
    import numpy as np

    with autolog.start_run("bad line") as run:
        run.log_image("ok", np.zeros((2, 2), dtype=np.uint8))
    journal = run.path / "events.jsonl"
    with open(journal, "a") as f:  # a media line of the wrong shape, then one with a NaN meta
        f.write(json.dumps({"t": "media", "kind": "image", "key": "", "step": 0, "time": 1,
                            "path": "media/x.png", "meta": {}}) + "\n")
        f.write('{"t": "media", "kind": "video", "key": "v", "step": 0, "time": 1, '
                '"path": "media/v.mp4", "meta": {}}\n')
    index = Index(store)
    try:
        index.refresh(full=True)
        client = local_client(index)
        client.headers["Authorization"] = f"Bearer {TOKEN}"
        found = client.get(f"/api/v1/runs/{run.id}/media").json()["media"]
        assert [m["key"] for m in found] == ["ok"]
        assert client.get(f"/api/v1/runs/{run.id}").json()["name"] == "bad line"
    finally:
        index.stop()


# -- following a growing text file ----------------------------------------------------------------


@pytest.fixture
def growing_log(store: Path) -> Iterator[tuple[TestClient, str, Path]]:
    with autolog.start_run("log") as run:
        run.log_text_artifact("".join(f"line {i}\n" for i in range(100)), "train.log")
    path = run.path / "artifacts" / "train.log"
    index = Index(store)
    index.refresh(full=True)
    client = local_client(index)
    client.headers["Authorization"] = f"Bearer {TOKEN}"
    yield client, f"/api/v1/runs/{run.id}/files/train.log", path
    index.stop()


def test_a_text_preview_follows_a_growing_log_by_offset(
        growing_log: tuple[TestClient, str, Path]) -> None:
    client, url, path = growing_log
    size = path.stat().st_size
    tail = client.get(url, params={"preview": 1, "offset": -25})
    # the last 25 bytes, from the start of the first whole line among them
    assert tail.text == "line 97\nline 98\nline 99\n"
    assert int(tail.headers["x-offset"]) == size - len(tail.content)
    assert int(tail.headers["x-end"]) == int(tail.headers["x-file-size"]) == size
    assert tail.headers["content-security-policy"] == "sandbox"
    with open(path, "a") as f:
        f.write("line 100\nline 1")  # the second line is still being written
    more = client.get(url, params={"preview": 1, "offset": tail.headers["x-end"]})
    assert more.text == "line 100\n"
    assert int(more.headers["x-end"]) == size + len("line 100\n")
    with open(path, "a") as f:
        f.write("01\n")
    rest = client.get(url, params={"preview": 1, "offset": more.headers["x-end"]})
    assert rest.text == "line 101\n"
    same = rest.headers["x-file-id"]
    assert client.get(url, params={"preview": 1, "offset": -9}).headers["x-file-id"] == same
    replaced = path.with_name("train.log.tmp")  # trimmed as console.log is: a new file
    replaced.write_text("line 101\n")
    os.replace(replaced, path)
    again = client.get(url, params={"preview": 1, "offset": 0})
    assert again.headers["x-file-id"] != same and again.text == "line 101\n"
    alone = client.get(url, params={"offset": 0})  # an offset is a preview by itself
    assert alone.status_code == 200 and alone.content == again.content


def test_offsets_apply_to_text_previews_only(store: Path) -> None:
    pytest.importorskip("PIL")
    import numpy as np

    with autolog.start_run("img") as run:
        run.log_image("x", np.zeros((2, 2), dtype=np.uint8))
    index = Index(store)
    try:
        index.refresh(full=True)
        client = local_client(index)
        client.headers["Authorization"] = f"Bearer {TOKEN}"
        url = f"/api/v1/runs/{run.id}/files/{autolog.get_run(run.id).media[0].path}"
        assert client.get(url, params={"preview": 1}).headers["content-type"] == "image/png"
        assert client.get(url, params={"preview": 1, "offset": 0}).status_code == 415
    finally:
        index.stop()
