"""The ``autolog`` command: runs, show, sync, doctor, --json, id prefixes."""

from __future__ import annotations

import json
import subprocess
import sys

import autolog
from autolog import testing
from autolog.cli import main


def _runs(n: int) -> list[autolog.Run]:
    made = []
    for i in range(n):
        with autolog.start_run(f"run-{i}", project="cli") as run:
            run.log_params({"i": i})
            run.log_metrics({"loss": 1.0 / (i + 1), "system/cpu_percent": 3.0}, step=0)
        made.append(run)
    return made


def test_runs_table_and_json(capsys):
    made = _runs(3)
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:5] == ["ID", "NAME", "STATUS", "START", "DURATION"]
    assert all(r.id[:8] in out for r in made) and "FINISHED" in out and "loss=" in out
    assert "system/" not in out
    assert main(["runs", "--json", "--limit", "2"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == [made[2].id, made[1].id]
    assert rows[0]["metrics"]["loss"] == 1 / 3


def test_show_by_prefix(capsys):
    (run,) = _runs(1)
    assert main(["show", run.id[:6]]) == 0
    out = capsys.readouterr().out
    assert run.id in out and "params:" in out and "loss" in out
    assert main(["show", run.id[:6], "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["params"] == {"i": 0} and data["status"] == "FINISHED"
    assert "requirements.txt" in data["artifacts"]


def test_unknown_or_ambiguous_run_is_a_clear_error(capsys):
    _runs(2)
    assert main(["show", "zz"]) == 1
    assert "no run 'zz'" in capsys.readouterr().err
    assert main(["show", "0123456789abcdef"]) == 1
    assert "not a run id, a unique id prefix or a run name" in capsys.readouterr().err


def test_sync_to_another_backend_json(capsys):
    made = _runs(2)
    with testing.registered(testing.RecordingBackend):
        assert main(["sync", "--to", "recording", "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
    assert {r["run"] for r in report} == {r.id for r in made}
    assert all(r["status"] == "done" for r in report)
    assert testing.RecordingBackend.runs[made[0].id].params == {"i": 0}


def test_sync_with_nothing_to_do(capsys):
    _runs(1)
    assert main(["sync"]) == 0  # local-only runs: nothing to deliver
    assert "nothing to sync" in capsys.readouterr().out


def test_doctor_json(capsys):
    assert main(["doctor", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["autolog"] == autolog.__version__
    assert {"frameworks", "backends", "samplers", "plugins", "failed_plugins"} <= set(data)
    assert data["backends"][0] == {"name": "local", "installed": autolog.__version__,
                                   "configured": True}
    assert data["problems"] == []


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "autolog.cli", "--version"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == f"autolog {autolog.__version__}"


def test_sync_to_a_backend_that_cannot_be_made_says_why(capsys):
    _runs(1)
    assert main(["sync", "--to", "local"]) == 1
    assert "is the local store itself" in capsys.readouterr().err


def test_sync_status_with_nothing_pending(capsys):
    _runs(1)
    assert main(["sync", "--status"]) == 0
    out = capsys.readouterr().out
    assert "nothing pending" in out and "no delivery process running" in out
    assert main(["sync", "--status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pending"] == {}
