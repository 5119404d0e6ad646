"""``autolog diff``: what differs between runs recorded by real trainings."""

from __future__ import annotations

import json
from pathlib import Path

import autolog

from .conftest import cli, ok


def _by_name(store: Path) -> dict[str, autolog.RunRecord]:
    return {r.name: r for r in autolog.list_runs(store)}


def test_diff_two_runs(trained: Path) -> None:
    runs = _by_name(trained)
    a, b = runs["plain-1"], runs["plain-3"]
    out = ok(cli("diff", "plain-1", b.id[:7], store=trained))  # a name and an id prefix
    lines = out.splitlines()
    assert f"plain-1 ({a.id[:8]})" in lines[0] and f"plain-3 ({b.id[:8]})" in lines[0]
    status = next(line for line in lines if line.startswith("status"))
    assert status.split()[1:] == ["FINISHED", "FINISHED"]
    params = {line.split()[0]: line.split()[1:] for line in lines
              if line.split() and line.split()[0] in a.params}
    assert params["lr"] == ["0.1", "0.001"] and params["layers"] == ["2", "4"]
    assert params["model"] == ["mlp", "svm"]
    assert "augment" not in params  # the same in both: left out
    assert "1 param is the same in every run" in out
    team = next(line for line in lines if line.startswith("team "))
    assert team.split()[1:] == ["nlp", "vision"]
    metrics = {line.split()[0]: line.split()[1:] for line in lines
               if line.split() and line.split()[0] in a.metrics}
    # direction from the name; the best marked when not in colour
    assert metrics["val_acc"] == ["higher", "0.58", "0.68", "*"]
    assert metrics["loss"] == ["lower", "0.1667", "0.125", "*"]
    assert metrics["val_loss"] == ["lower", "0.8", "0.6", "*"]


def test_diff_three_runs_json_and_all(trained: Path) -> None:
    runs = _by_name(trained)
    names = ["plain-0", "plain-4", "plain-5"]
    data = json.loads(ok(cli("diff", *names, "--json", store=trained)))
    assert [r["id"] for r in data["runs"]] == [runs[n].id for n in names]
    assert all(r["status"] == "FINISHED" and r["duration_s"] >= 0 for r in data["runs"])
    assert data["params"]["model"] == ["xgb", "xgb", "mlp"]
    assert data["params"]["lr"] == [runs[n].params["lr"] for n in names]
    val_loss = data["metrics"]["val_loss"]  # NaN in plain-4, missing in plain-5
    assert val_loss["values"][0] == runs["plain-0"].metrics["val_loss"]
    assert val_loss["values"][2] is None and val_loss["direction"] == "min"
    assert data["metrics"]["val_acc"]["best"] == [2]
    assert data["metrics"]["loss"]["best"] == [2]
    everything = json.loads(ok(cli("diff", *names, "--json", "--all", store=trained)))
    assert "autolog.python.version" in everything["tags"]
    assert set(everything["params"]) == set().union(*(runs[n].params for n in names))


def test_diff_a_search_candidate_and_mistakes(trained: Path) -> None:
    children = [r for r in autolog.list_runs(trained) if r.name.startswith("GridSearchCV")
                and r.parent_id is not None]
    out = ok(cli("diff", children[0].id[:8], children[1].id[:8], store=trained))
    assert "mean_test_score" in out and "higher" in out
    data = json.loads(ok(cli("diff", children[0].id, children[1].name, "--json",
                             store=trained)))
    ways = {key: m["direction"] for key, m in data["metrics"].items()}
    assert ways["mean_test_score"] == ways["split0_test_score"] == "max"
    assert ways["rank_test_score"] == "min"  # 1 is the best
    # times and spreads: no better side
    assert ways["mean_score_time"] is ways["std_test_score"] is ways["mean_fit_time"] is None
    ranks = [c.metrics["rank_test_score"] for c in children[:2]]
    best = [i for i, rank in enumerate(ranks) if rank == min(ranks)]
    assert data["metrics"]["rank_test_score"]["best"] == best
    done = cli("diff", "plain-1", store=trained)
    assert done.returncode == 2 and "give two runs or more" in done.stderr
    done = cli("diff", "plain-1", "dup", store=trained)
    assert done.returncode == 1 and "'dup' names 2 runs" in done.stderr
