"""Schemathesis over ``autolog ui``'s OpenAPI document, against the real process: no 5xx, every
answer as documented, edits included (path parameters pinned to a run of the store)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import autolog

from ..server.live import free_port
from .test_cli import Ui

pytest.importorskip("schemathesis")


def test_the_local_api_holds_under_fuzzing(ui_store: Path, tmp_path: Path) -> None:
    root = tmp_path / "autolog-runs"
    shutil.copytree(ui_store, root, ignore=shutil.ignore_patterns(".index*"))
    run_id = autolog.list_runs(root, "files")[0].id
    ui = Ui(root, "--no-browser", "--port", str(free_port()))
    try:
        url = ui.wait_url()
        base, token = url.split("/?token=")
        (tmp_path / "schemathesis.toml").write_text(
            f'[parameters]\n"path.run" = "{run_id}"\n"path.run_id" = "{run_id}"\n')
        command = [sys.executable, "-m", "schemathesis.cli", "run", f"{base}/openapi.json",
                   "--header", f"Authorization: Bearer {token}",
                   "--checks", "not_a_server_error,response_schema_conformance",
                   "--max-examples", "20", "--workers", "1", "--request-timeout", "30"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=280,
                                cwd=tmp_path)
        summary = result.stdout[-6000:]
        assert result.returncode == 0, summary + result.stderr[-2000:]
        assert "generated" in summary and "passed" in summary
        assert autolog.get_run(run_id, root).status == "FINISHED"  # still reads back
    finally:
        _, err = ui.stop()
    assert "Traceback" not in err, err[-4000:]
