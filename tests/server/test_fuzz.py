"""Schemathesis, property-based, against the live server's OpenAPI document: no 5xx, and every
response conforms to the documented schema (bounded: 20 examples per operation).

Path parameters naming a run are pinned to a run that exists, so generated batches, uploads and
models reach the database and the artifact store instead of stopping at a 404.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import Api, new_run_id
from .live import LiveServer

pytest.importorskip("schemathesis")


def test_the_openapi_document_holds_under_fuzzing(server: LiveServer, tokens: dict[str, str],
                                                  tmp_path: Path) -> None:
    run_id = new_run_id()
    assert Api(server.url, tokens["write"])("PUT", f"/api/v1/runs/{run_id}", json={}).ok
    (tmp_path / "schemathesis.toml").write_text(
        f'[parameters]\n"path.run_id" = "{run_id}"\n"path.run" = "{run_id}"\n')
    command = [sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/openapi.json",
               "--header", f"Authorization: Bearer {tokens['admin']}",
               "--checks", "not_a_server_error,response_schema_conformance",
               "--max-examples", "20", "--workers", "1", "--request-timeout", "30"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=240,
                            cwd=tmp_path)
    summary = result.stdout[-6000:]
    assert result.returncode == 0, summary + result.stderr[-2000:]
    assert "generated" in summary and "passed" in summary
    assert "Traceback" not in server.log.read_text(), server.log.read_text()[-4000:]
    reader = server.token("after-fuzzing", "read")  # the fuzzer may have revoked the others
    response = Api(server.url, reader)("GET", f"/api/v1/runs/{run_id}")
    detail = response.json()
    assert response.ok, (response.status_code, detail)
    assert detail["id"] == run_id  # the run the fuzzer wrote into still reads back whole
