"""A backend whose SDK is missing: one message with the `pip install` line, nothing retried, no
wait at exit, the journal kept; `autolog sync` delivers it all once the SDK is installed.

The SDK is made missing the way Python itself does it: ``sys.modules[name] = None`` makes
``import name`` raise ``ImportError``.
"""

from __future__ import annotations

import logging
import sys
import time

import pytest

import autolog
from autolog.cli import main as cli_main
from autolog.delivery import replay as delivery
from autolog.runs import make_backend

from .conftest import MLFLOW_WARNINGS

pytestmark = [pytest.mark.filterwarnings(f) for f in MLFLOW_WARNINGS]

CASES = [  # backend, module to hide, extra, fixture that points it at the test's directory
    ("tensorboard", "tensorboard.compat.proto.event_pb2", "tensorboard", "tensorboard_dir"),
    ("aim", "aim", "aim", "aim_repo"),
    ("comet", "comet_ml", "comet", "comet_offline"),
    ("mlflow", "mlflow", "mlflow", "mlflow_sqlite"),
    ("wandb", "wandb", "wandb", "wandb_offline"),
]


@pytest.mark.parametrize(("backend", "module", "extra", "target"), CASES,
                         ids=[c[0] for c in CASES])
def test_a_missing_sdk_is_said_once_and_sync_delivers_later(
        backend: str, module: str, extra: str, target: str, request: pytest.FixtureRequest,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str]):
    request.getfixturevalue(target)
    with monkeypatch.context() as hidden, caplog.at_level(logging.WARNING, logger="autolog"):
        hidden.setitem(sys.modules, module, None)
        autolog.enable(backend=f"local,{backend}")
        runs = []
        for i in range(3):
            with autolog.start_run(f"run-{i}") as run:
                run.log_params({"i": i})
                run.log_metrics({"loss": 1.0 / (i + 1)}, step=0)
            runs.append(run)
            autolog.flush(0.5)  # let the worker try each run
        started = time.monotonic()
        assert not autolog.flush(30), "the backend does not have the runs"
        assert time.monotonic() - started < 1, "nothing is waited for"
        assert cli_main(["sync", "--to", backend]) == 1  # still missing: said, not retried
    said = [r.getMessage() for r in caplog.records if "pip install" in r.getMessage()]
    assert len(said) == 1, said
    assert f"pip install 'autolog-ml[{extra}]'" in said[0] and "autolog sync" in said[0]
    assert [r.params for r in autolog.list_runs()] == [{"i": 2}, {"i": 1}, {"i": 0}]

    assert capsys.readouterr().err.count("pip install") == 1  # sync said it once, and stopped

    autolog.testing.reset()  # the process ends; then the SDK is installed
    assert cli_main(["sync", "--to", backend]) == 0
    key = make_backend(backend).cursor_key()
    assert [delivery.pending_lines(run.path, key) for run in runs] == [0, 0, 0]
