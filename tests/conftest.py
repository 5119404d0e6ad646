"""Every test gets its own store, strict mode, and a clean autolog afterwards."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from autolog import testing

# Comet's SDK reports its own errors to Sentry (a network host) unless told not to, whoever
# imports it first (transformers' integrations do): tests never reach a network host.
os.environ.setdefault("COMET_ERROR_TRACKING_ENABLE", "false")
os.environ.setdefault("COMET_DISABLE_AUTO_LOGGING", "1")

# Ctrl-C as a terminal gives it. A non-interactive shell starts a background job (CI's run, a
# `nohup ... &`) with SIGINT ignored, and every process the tests start inherits that: `autolog
# ui` stopped with SIGINT, as a user's Ctrl-C stops it, then ignored it until uvicorn had set a
# handler of its own, and a stop right after the URL waited out its 20 s.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def autolog_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name in list(os.environ):
        if name.startswith("AUTOLOG_"):
            monkeypatch.delenv(name)
    store = tmp_path / "autolog-runs"
    monkeypatch.setenv("AUTOLOG_DIR", str(store))
    monkeypatch.setenv("AUTOLOG_STRICT", "1")
    monkeypatch.setenv("AUTOLOG_SYSTEM_METRICS", "0")
    # scripts the tests start wait for their backends at exit: no delivery process outlives a
    # test unless the test asks for one (and stops it)
    monkeypatch.setenv("AUTOLOG_EXIT_MODE", "wait")
    testing.reset()
    testing.RecordingBackend.clear()
    yield store
    testing.reset()


@pytest.fixture
def store(autolog_env: Path) -> Path:
    """The test's AUTOLOG_DIR."""
    return autolog_env


@pytest.fixture
def lenient(monkeypatch: pytest.MonkeyPatch) -> None:
    """autolog's own errors warn instead of raising, as for a user."""
    monkeypatch.setenv("AUTOLOG_STRICT", "0")
