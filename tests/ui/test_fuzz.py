"""Issue 15, item 14, for ``autolog ui``: its OpenAPI document says exactly what the real
process accepts (schemathesis ``--checks all``, edits included; path parameters pinned to a
run of the store), and the store still reads back."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import autolog

from ..server.fuzzing import run_schemathesis
from ..server.live import free_port
from .test_cli import Ui

pytest.importorskip("schemathesis")


def test_the_local_api_holds_under_fuzzing(ui_store: Path, tmp_path: Path) -> None:
    root = tmp_path / "autolog-runs"
    shutil.copytree(ui_store, root, ignore=shutil.ignore_patterns(".index*"))
    run_id = autolog.list_runs(root, "files")[0].id
    ui = Ui(root, "--no-browser", "--port", str(free_port()))
    try:
        base, token = ui.wait_url().split("/?token=")
        result = run_schemathesis(base, token, run_id, tmp_path)
        summary = result.stdout[-6000:]
        assert result.returncode == 0, summary + result.stderr[-2000:]
        assert "generated" in summary and "No issues found" in summary
        assert autolog.get_run(run_id, root).status == "FINISHED"  # still reads back
    finally:
        _, err = ui.stop()
    assert "Traceback" not in err, err[-4000:]
