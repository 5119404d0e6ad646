"""``autolog demo``, the README's first command: what it trains lands in the local store, whole,
and the listing it prints names those runs."""

from __future__ import annotations

from pathlib import Path

import pytest

import autolog

from .conftest import cli, ok

pytest.importorskip("xgboost")


def test_the_demo_records_every_job_and_lists_them(tmp_path: Path) -> None:
    store = tmp_path / "autolog-runs"
    out = ok(cli("demo", "--dir", str(store), cwd=tmp_path, env={"AUTOLOG_DIR": None},
                 timeout=300))

    assert "3 training job(s) recorded in" in out
    runs = {r.name: r for r in autolog.list_runs(dir=str(store))}
    top = {"demo-manual-loop", "demo-pipeline", "demo-grid-search", "demo-xgboost"}
    assert top <= set(runs), sorted(runs)
    for name in top:
        assert runs[name].status == "FINISHED", (name, runs[name].status)
        assert runs[name].id[:8] in out, (name, out)  # listed by the demo's own `autolog runs`

    loop = runs["demo-manual-loop"]
    assert loop.params["lr"] == 0.1
    loss = [value for _, value, _ in loop.history("loss")]
    assert len(loss) == 20 and loss[-1] < loss[0] / 10  # the SGD fit converged

    pipeline = runs["demo-pipeline"]
    assert pipeline.metrics["training_accuracy_score"] > 0.9
    model = autolog.load_model(pipeline)
    assert type(model).__name__ == "Pipeline" and len(model.steps) == 2

    children = [r for r in autolog.list_runs(dir=str(store))
                if r.parent_id == runs["demo-grid-search"].id]
    assert len(children) == 6  # one per candidate of the 3 x 2 grid
    assert {(c.params["C"], c.params["kernel"]) for c in children} == {
        (c, k) for c in (0.1, 1, 10) for k in ("linear", "rbf")}

    boosted = runs["demo-xgboost"]
    assert len(boosted.history("validation_0-logloss")) == 50  # one per round
    assert autolog.load_model(boosted).get_booster().num_boosted_rounds() == 50
