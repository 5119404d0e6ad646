"""W&B online without an API key is a permanent misconfiguration (issue 15 item 10): said once
with the fix, not retried, not waited for; the run stays in the journal for `autolog sync`."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

import autolog
from autolog.delivery.sync import pending_by_name

from ..server.live import free_port
from .conftest import WandbTarget

pytest.importorskip("wandb")


def test_wandb_online_without_an_api_key_is_said_once_with_the_fix(
        wandb_offline: WandbTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{free_port()}")  # never reached
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.netrc with a key
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    with caplog.at_level(logging.WARNING, logger="autolog"):
        autolog.enable(backend="local,wandb")
        runs = []
        for i in range(2):
            with autolog.start_run(f"run-{i}") as run:
                run.log_metrics({"loss": 0.5}, step=0)
            runs.append(run)
            autolog.flush(2)
        started = time.monotonic()
        assert not autolog.flush(30)
        assert time.monotonic() - started < 1, "nothing is waited for"
    said = [r.getMessage() for r in caplog.records if r.name == "autolog"]
    assert len(said) == 1, said
    assert "needs an API key" in said[0] and "wandb login" in said[0]
    assert "WANDB_MODE=offline" in said[0] and "autolog sync" in said[0]
    assert [pending_by_name(run.path) for run in runs] == [{"wandb": run.path.joinpath(
        "events.jsonl").stat().st_size} for run in runs]
