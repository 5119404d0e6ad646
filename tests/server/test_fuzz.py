"""Issue 15, item 14: the OpenAPI document says exactly what the live server accepts.

Schemathesis with ``--checks all`` against a real ``autolog server`` process (``fuzzing.py``
says what that covers), then the run the fuzzer wrote into still reads back whole, and the
server logged no traceback.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import Api, new_run_id
from .fuzzing import run_schemathesis
from .live import LiveServer

pytest.importorskip("schemathesis")


def test_the_openapi_document_holds_under_fuzzing(server: LiveServer, tokens: dict[str, str],
                                                  tmp_path: Path) -> None:
    run_id = new_run_id()
    assert Api(server.url, tokens["write"])("PUT", f"/api/v1/runs/{run_id}", json={}).ok
    result = run_schemathesis(server.url, tokens["admin"], run_id, tmp_path)
    summary = result.stdout[-6000:]
    assert result.returncode == 0, summary + result.stderr[-2000:]
    assert "generated" in summary and "No issues found" in summary
    assert "Traceback" not in server.log.read_text(), server.log.read_text()[-4000:]
    reader = server.token("after-fuzzing", "read")  # the fuzzer may have revoked the others
    response = Api(server.url, reader)("GET", f"/api/v1/runs/{run_id}")
    detail = response.json()
    assert response.ok, (response.status_code, detail)
    assert detail["id"] == run_id  # the run the fuzzer wrote into still reads back whole
