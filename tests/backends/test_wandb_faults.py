"""W&B online without an API key is a permanent misconfiguration (issue 15 item 10): said once
with the fix, not retried, not waited for; the runs stay in the journal for `autolog sync`.

In a process of its own: W&B keeps process-wide settings (its service, its mode) once set up.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from autolog.delivery.sync import pending_by_name

from ..helpers import clean_env
from ..server.live import free_port
from .conftest import WandbTarget

pytest.importorskip("wandb")

SCRIPT = """
import autolog
autolog.enable(backend="local,wandb")
for i in range(2):
    with autolog.start_run(f"run-{i}") as run:
        run.log_metrics({"loss": 0.5}, step=0)
    autolog.flush(5)
    print(run.id, flush=True)
"""


def test_wandb_online_without_an_api_key_is_said_once_with_the_fix(
        wandb_offline: WandbTarget, tmp_path: Path, store: Path) -> None:
    env = clean_env(store, WANDB_MODE="online", HOME=str(tmp_path / "home"),  # no ~/.netrc
                    WANDB_BASE_URL=f"http://127.0.0.1:{free_port()}",  # never reached
                    AUTOLOG_EXIT_TIMEOUT="60")
    env.pop("WANDB_API_KEY", None)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 40, "the exit did not wait for W&B"
    said = [line for line in done.stderr.splitlines() if "backend off" in line]
    assert len(said) == 1, done.stderr
    assert "needs an API key" in said[0] and "wandb login" in said[0]
    assert "WANDB_MODE=offline" in said[0] and "autolog sync" in said[0]
    assert "not delivered to wandb" in done.stderr  # the exit says it, with the cause
    for run_id in done.stdout.split():
        run_dir = store / run_id
        assert pending_by_name(run_dir) == {"wandb": (run_dir / "events.jsonl").stat().st_size}
