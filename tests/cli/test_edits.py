"""Editing runs from the shell (rename, tag, note, rm, restore, gc), renaming from Python and
resuming a run: seen by a new process, by `autolog runs`, and by our server after `autolog
sync --to http`."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

import autolog

from ..helpers import clean_env
from ..server.live import LiveServer
from .conftest import cli, ok


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "server").start()
    try:
        yield live
    finally:
        live.stop()


def _env(server: LiveServer) -> dict[str, str]:
    return {"AUTOLOG_HTTP_URL": server.url, "AUTOLOG_HTTP_TOKEN": server.token()}


def _remote(server: LiveServer, env: dict[str, str], run_id: str) -> dict[str, Any]:
    answer = requests.get(f"{server.url}/api/v1/runs/{run_id}", timeout=30,
                          headers={"Authorization": f"Bearer {env['AUTOLOG_HTTP_TOKEN']}"})
    answer.raise_for_status()
    return dict(answer.json())


def _run(store: Path, name: str) -> autolog.RunRecord:
    (found,) = [r for r in autolog.list_runs(store) if r.name == name]
    return found


def test_edits_reach_a_new_process_and_the_server(store_copy: Path,
                                                  server: LiveServer) -> None:
    env = _env(server)
    ok(cli("sync", "--to", "http", store=store_copy, env=env))  # delivered before the edits
    target = _run(store_copy, "plain-2")
    search = next(r for r in autolog.list_runs(store_copy)
                  if r.name.startswith("GridSearchCV") and r.parent_id is None)
    children = [r.id for r in autolog.list_runs(store_copy) if r.parent_id == search.id]

    assert ok(cli("rename", "plain-2", "best-so-far", store=store_copy)) == \
        f"renamed {target.id[:8]}: plain-2 -> best-so-far\n"
    ok(cli("tag", "best-so-far", "stage=prod", "owner=ana", "--rm", "team", store=store_copy))
    ok(cli("note", target.id[:6], "keep this one", store=store_copy))
    out = ok(cli("rm", search.name, "plain-0", "--yes", store=store_copy))
    assert out.startswith(f"deleted {2 + len(children)} runs")
    ok(cli("restore", "plain-0", store=store_copy))

    # a new process: this one, reading the journals
    record = autolog.get_run(target.id, store_copy)
    assert record.name == "best-so-far" and record.note == "keep this one"
    assert record.tags["stage"] == "prod" and "team" not in record.tags
    assert autolog.get_run(search.id, store_copy).deleted
    assert all(autolog.get_run(c, store_copy).deleted for c in children)
    assert not _run(store_copy, "plain-0").deleted
    listed = json.loads(ok(cli("runs", "--json", "--limit", "0", store=store_copy)))
    assert search.id not in {r["id"] for r in listed}
    row = next(r for r in listed if r["id"] == target.id)
    assert row["name"] == "best-so-far" and row["tags"]["stage"] == "prod"
    deleted = json.loads(ok(cli("runs", "--deleted", "--all", "--json", store=store_copy)))
    assert {r["id"] for r in deleted} == {search.id, *children}

    ok(cli("sync", "--to", "http", store=store_copy, env=env))
    remote = _remote(server, env, target.id)
    assert remote["name"] == "best-so-far" and remote["note"] == "keep this one"
    assert remote["tags"]["stage"] == "prod" and "team" not in remote["tags"]
    assert _remote(server, env, search.id)["deleted"] is True
    assert _remote(server, env, _run(store_copy, "plain-0").id)["deleted"] is False
    # the same views from the server
    server_rows = json.loads(ok(cli("runs", "--server", server.url, "--token",
                                    env["AUTOLOG_HTTP_TOKEN"], "--json", "--limit", "0")))
    assert {r["id"] for r in server_rows} == {r["id"] for r in listed}
    shown = json.loads(ok(cli("show", "best-so-far", "--json", "--server", server.url,
                              "--token", env["AUTOLOG_HTTP_TOKEN"])))
    assert shown["id"] == target.id and shown["note"] == "keep this one"


RENAME = """
import autolog
with autolog.start_run("first") as run:
    run.log_metric("loss", 1.0)
    run.name = "second"
run.name = "third"  # after its end: still recorded
print(run.id)
"""

RESUME = """
import sys, autolog
run = autolog.start_run(run_id=sys.argv[1])
for value in (0.5, 0.25):
    run.log_metric("loss", value)
run.log_metric("val_acc", 0.99, step=100)
autolog.flush()
print(autolog.get_run(run.id).status, flush=True)
sys.stdin.readline()  # the test looks at the store while the run is open
run.end()
"""


def _python(store: Path, code: str, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", code, *args], env=clean_env(store),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **kwargs)


def test_renaming_from_python_persists(store_copy: Path, server: LiveServer) -> None:
    proc = _python(store_copy, RENAME)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    run_id = out.strip()
    assert autolog.get_run(run_id, store_copy).name == "third"
    listed = json.loads(ok(cli("runs", "--json", "--filter", "name = third", store=store_copy)))
    assert [r["id"] for r in listed] == [run_id]
    env = _env(server)
    ok(cli("sync", "--to", "http", "third", store=store_copy, env=env))  # a run's name
    assert _remote(server, env, run_id)["name"] == "third"
    done = cli("sync", "--to", "http", "no-such-run", store=store_copy, env=env)
    assert done.returncode == 1 and "no run 'no-such-run'" in done.stderr


def test_resume_continues_the_run(store_copy: Path, server: LiveServer) -> None:
    env = _env(server)
    before = _run(store_copy, "plain-1")
    ok(cli("runs", store=store_copy))  # the index knows it ended
    ok(cli("sync", "--to", "http", before.id, store=store_copy, env=env))
    proc = _python(store_copy, RESUME, before.id[:10], stdin=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdin is not None
    assert proc.stdout.readline().strip() == "RUNNING"
    live = json.loads(ok(cli("runs", "--json", "--filter", "name = plain-1", store=store_copy)))
    assert live[0]["status"] == "RUNNING" and live[0]["end_time"] is None
    assert autolog.get_run(before.id, store_copy).status == "RUNNING"
    proc.stdin.write("\n")
    proc.stdin.flush()
    assert proc.wait(60) == 0, proc.stderr.read() if proc.stderr else ""

    after = autolog.get_run(before.id, store_copy)
    old = before.history("loss")
    assert after.status == "FINISHED" and after.end_time > before.end_time
    assert after.history("loss")[:len(old)] == old  # appended, same id
    assert [(s, v) for s, v, _ in after.history("loss")[len(old):]] == \
        [(old[-1][0] + 1, 0.5), (old[-1][0] + 2, 0.25)]  # steps go on
    listed = json.loads(ok(cli("runs", "--json", "--filter", "name = plain-1", store=store_copy)))
    assert listed[0]["status"] == "FINISHED" and listed[0]["metrics"]["loss"] == 0.25
    assert listed[0]["end_time"] == after.end_time

    ok(cli("sync", "--to", "http", before.id, store=store_copy, env=env))
    remote = _remote(server, env, before.id)
    assert remote["status"] == "FINISHED" and remote["end_time"] == after.end_time
    assert remote["metrics"]["loss"] == 0.25 and remote["metrics"]["val_acc"] == 0.99
    points = requests.get(f"{server.url}/api/v1/runs/{before.id}/history",
                          params={"key": "loss"}, timeout=30,
                          headers={"Authorization": f"Bearer {env['AUTOLOG_HTTP_TOKEN']}"})
    assert points.json()["values"] == [v for _, v, _ in after.history("loss")]


def test_resume_refuses_a_run_still_running(store_copy: Path) -> None:
    target = _run(store_copy, "plain-3")
    holder = _python(store_copy, RESUME, target.id, stdin=subprocess.PIPE)
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline().strip() == "RUNNING"
    try:
        second = _python(store_copy, RESUME, target.id)
        _, err = second.communicate(timeout=60)
        assert second.returncode == 1
        assert f"RunInUse: run {target.id} (plain-3) is running in another process" in err
    finally:
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(60)


def test_rm_asks_on_a_terminal_and_refuses_without_one(store_copy: Path) -> None:
    done = cli("rm", "plain-4", store=store_copy)  # stdin is /dev/null here
    assert done.returncode == 2 and "add --yes" in done.stderr
    assert not _run(store_copy, "plain-4").deleted
    for answer, deleted in (("n", False), ("y", True)):
        assert _answer_on_a_terminal(store_copy, ["rm", "plain-4"], answer) == \
            (0 if deleted else 1)
        assert _run(store_copy, "plain-4").deleted is deleted


def _answer_on_a_terminal(store: Path, args: list[str], answer: str) -> int:
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "autolog", *args], stdin=follower,
                            stdout=follower, stderr=follower, env=clean_env(store))
    os.close(follower)
    seen = b""
    while b"[y/N]" not in seen:
        seen += os.read(leader, 4096)
    assert b"Delete 1 run: plain-4" in seen
    os.write(leader, answer.encode() + b"\n")
    code = proc.wait(60)
    try:
        while os.read(leader, 4096):
            pass
    except OSError:
        pass
    os.close(leader)
    return code


UNDELIVERED = """
import autolog
with autolog.start_run("unsent") as run:
    run.log_metric("loss", 1.0)
print(run.id)
"""


def test_gc_removes_deleted_runs_for_good(store_copy: Path, server: LiveServer) -> None:
    # a run recorded for a server that was down: not delivered yet
    env = {**clean_env(store_copy), "AUTOLOG_BACKEND": "local,http",
           "AUTOLOG_HTTP_URL": "http://127.0.0.1:9", "AUTOLOG_EXIT_TIMEOUT": "1"}
    done = subprocess.run([sys.executable, "-c", UNDELIVERED], env=env, capture_output=True,
                          text=True, timeout=120)
    unsent = done.stdout.strip()
    assert "names 2 runs" in cli("rm", "dup", "--yes", store=store_copy).stderr
    ok(cli("rm", "unsent", _run(store_copy, "plain-5").id, "--yes", store=store_copy))
    dups = [r.id for r in autolog.list_runs(store_copy) if r.name == "dup"]
    ok(cli("rm", *dups, "--yes", store=store_copy))
    done = cli("gc", "--yes", store=store_copy)
    assert done.returncode == 0, done.stderr
    assert "kept 1 run whose backends have not received everything" in done.stderr
    assert done.stdout.startswith("removed 3 runs: ") and "KiB freed" in done.stdout
    assert not any((store_copy / d).exists() for d in dups)
    assert (store_copy / unsent).is_dir()
    assert "dup" not in ok(cli("runs", "--all", "--deleted", store=store_copy))
    # delivered now (the deletion too): gc may remove it
    ok(cli("sync", unsent, store=store_copy, env=_env(server)))
    assert ok(cli("gc", "--yes", store=store_copy)).startswith("removed 1 run")
    assert not (store_copy / unsent).exists()
    assert ok(cli("gc", "--yes", store=store_copy)).startswith("nothing to remove")


def test_edits_wait_for_nothing_while_autolog_ui_owns_the_index(store_copy: Path) -> None:
    """With `autolog ui` indexing the store, a CLI edit reaches the UI's index (through the
    store's `.changed` list) and the next `autolog runs` shows it."""
    from autolog.ui.index import Index

    index = Index(store_copy)
    index.refresh(full=True)
    assert index.owner
    try:
        began = time.monotonic()
        ok(cli("rename", "plain-3", "renamed-under-ui", store=store_copy))
        assert time.monotonic() - began < 30
        index.refresh(full=False)  # what the UI's thread does every second
        listed = json.loads(ok(cli("runs", "--json", "--filter", "name = renamed-under-ui",
                                   store=store_copy)))
        assert [r["name"] for r in listed] == ["renamed-under-ui"]
    finally:
        index.stop()
