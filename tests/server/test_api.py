"""The server's HTTP API against a live server on SQLite: auth, ingestion, reading, limits."""

from __future__ import annotations

import gzip
import json
import math
import socket
import time
from pathlib import Path

import pytest

from .conftest import Api, files_holding, new_run_id
from .live import LiveServer, schema_head


def make_run(api: Api, **fields: object) -> str:
    run_id = new_run_id()
    body = {"name": "r", "project": "api-tests", "start_time": int(time.time() * 1000), **fields}
    response = api("PUT", f"/api/v1/runs/{run_id}", json=body)
    assert response.status_code == 200, response.text
    return run_id


def batch(start: int, end: int, **content: object) -> dict[str, object]:
    return {"start": start, "end": end, **content}


def column(values: list[object], first_step: int = 0) -> dict[str, list[object]]:
    steps = list(range(first_step, first_step + len(values)))
    return {"steps": steps, "values": values, "timestamps": [1000 + s for s in steps]}


# -- authentication ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/runs", "/api/v1/info",
                                  f"/api/v1/runs/{'a' * 32}", "/api/v1/tokens"])
def test_no_token_or_wrong_token_is_401(server: LiveServer, path: str) -> None:
    for token in (None, "alg_not-a-real-token", ""):
        response = Api(server.url, token)("GET", path)
        assert response.status_code == 401, (token, response.text)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    basic = Api(server.url, None)("GET", path, headers={"Authorization": "Basic dTpw"})
    assert basic.status_code == 401


def test_revoked_token_is_401_at_once(server: LiveServer) -> None:
    token = server.token("soon-revoked", "write")
    api = Api(server.url, token)
    assert api("GET", "/api/v1/runs").status_code == 200
    server.revoke("soon-revoked")
    response = api("GET", "/api/v1/runs")
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]
    assert api("PUT", f"/api/v1/runs/{new_run_id()}", json={}).status_code == 401


def test_scopes_read_write_admin(server: LiveServer, tokens: dict[str, str]) -> None:
    reader, writer, admin = (Api(server.url, tokens[s]) for s in ("read", "write", "admin"))
    run_id = new_run_id()
    refused = reader("PUT", f"/api/v1/runs/{run_id}", json={"name": "x"})
    assert refused.status_code == 403 and "scope" in refused.json()["detail"]
    assert writer("PUT", f"/api/v1/runs/{run_id}", json={"name": "x"}).status_code == 200
    assert reader("GET", f"/api/v1/runs/{run_id}").json()["name"] == "x"
    assert writer("GET", "/api/v1/tokens").status_code == 403
    created = admin("POST", "/api/v1/tokens", json={"name": "made-by-api", "scope": "read"})
    assert created.status_code == 201
    secret = created.json()["token"]
    assert Api(server.url, secret)("GET", "/api/v1/runs").status_code == 200
    listed = admin("GET", "/api/v1/tokens").json()["tokens"]
    assert {"made-by-api", "write-token"} <= {t["name"] for t in listed}
    assert all("token" not in t and "token_hash" not in t for t in listed)
    assert admin("DELETE", "/api/v1/tokens/made-by-api").status_code == 200
    assert Api(server.url, secret)("GET", "/api/v1/runs").status_code == 401
    assert admin("DELETE", "/api/v1/tokens/made-by-api").status_code == 404


def test_only_health_is_public(server: LiveServer, tokens: dict[str, str]) -> None:
    anonymous = Api(server.url, None)
    assert anonymous("GET", "/healthz").json() == {"status": "ok"}
    assert anonymous("GET", "/openapi.json").status_code == 401
    schema = Api(server.url, tokens["read"])("GET", "/openapi.json").json()
    assert "/api/v1/runs/{run}/batches" in schema["paths"]
    assert "HTTPBearer" in schema["components"]["securitySchemes"]


# -- ingestion -----------------------------------------------------------------------------


def test_a_batch_is_stored_once_per_idempotency_key(api: Api) -> None:
    run_id = make_run(api)
    body = batch(0, 120, params={"lr": 0.1}, tags={"team": "a"},
                 metrics={"loss": column([1.0, 0.5, "NaN", "Infinity"])})
    first = api("POST", f"/api/v1/runs/{run_id}/batches", json=body).json()
    again = api("POST", f"/api/v1/runs/{run_id}/batches", json=body).json()
    assert (first["stored"], again["stored"]) == (True, False)
    assert first["events"] == 6
    part = batch(0, 120, part=1, metrics={"loss": column([0.25], first_step=4)})
    assert api("POST", f"/api/v1/runs/{run_id}/batches", json=part).json()["stored"]
    nxt = batch(120, 200, params={"lr": 0.2}, metrics={"loss": column([0.125], first_step=5)})
    assert api("POST", f"/api/v1/runs/{run_id}/batches", json=nxt).json()["stored"]
    history = api("GET", f"/api/v1/runs/{run_id}/history", params={"key": "loss"}).json()
    assert history["total"] == 6 and history["steps"] == [0, 1, 2, 3, 4, 5]
    assert history["values"] == [1.0, 0.5, "NaN", "Infinity", 0.25, 0.125]
    run = api("GET", f"/api/v1/runs/{run_id}").json()
    assert run["params"] == {"lr": 0.2} and run["tags"] == {"team": "a"}
    assert run["metrics"] == {"loss": 0.125}


def test_gzip_bodies_are_accepted(api: Api) -> None:
    run_id = make_run(api)
    body = gzip.compress(json.dumps(batch(0, 10, metrics={"m": column([1.5] * 50)})).encode())
    response = api("POST", f"/api/v1/runs/{run_id}/batches", data=body,
                   headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert response.status_code == 200 and response.json()["events"] == 50


def test_run_fields_update_and_status(api: Api) -> None:
    run_id = make_run(api, name="first")
    api("PUT", f"/api/v1/runs/{run_id}", json={"status": "FINISHED", "end_time": 5})
    api("PUT", f"/api/v1/runs/{run_id}", json={})  # a repeated start changes nothing
    run = api("GET", f"/api/v1/runs/{run_id}").json()
    assert (run["name"], run["status"], run["end_time"]) == ("first", "FINISHED", 5)


def test_artifacts_and_models_are_recorded(api: Api, server: LiveServer) -> None:
    run_id = make_run(api)
    assert api("PUT", f"/api/v1/runs/{run_id}/files/plots/a.txt", data=b"one").ok
    assert api("PUT", f"/api/v1/runs/{run_id}/files/plots/a.txt", data=b"two").ok  # replaced
    for _ in range(2):  # recorded once
        api("POST", f"/api/v1/runs/{run_id}/artifacts",
            json={"name": "plots", "files": ["plots/a.txt"]})
    api("POST", f"/api/v1/runs/{run_id}/artifacts", json={"name": "notes.txt"})
    spec = {"flavor": "tiny", "format": "json", "framework_version": "1", "path": "model",
            "files": ["w.json"]}
    assert api("POST", f"/api/v1/runs/{run_id}/models", json={"name": "model", "spec": spec}).ok
    run = api("GET", f"/api/v1/runs/{run_id}").json()
    assert run["artifacts"] == ["plots/a.txt", "notes.txt", "model/w.json"]
    assert run["models"] == {"model": spec}
    download = api("GET", f"/api/v1/runs/{run_id}/files/plots/a.txt")
    assert download.content == b"two"
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    files = api("GET", f"/api/v1/runs/{run_id}/files").json()["files"]
    assert [(f["path"], f["size"]) for f in files] == [("plots/a.txt", 3)]
    assert (server.artifacts / run_id / "plots" / "a.txt").read_bytes() == b"two"
    assert api("GET", f"/api/v1/runs/{run_id}/files/plots/missing").status_code == 404
    assert api("GET", f"/api/v1/runs/{run_id}/files/plots").status_code == 404


# -- validation: 4xx with a message, never 500 ---------------------------------------------


@pytest.mark.parametrize("body", [
    {"start": 0, "end": 1, "metrics": {"m": {"steps": [0, 1], "values": [1.0],
                                             "timestamps": [0, 1]}}},
    {"start": 0, "end": 1, "metrics": {"m": {"steps": [2**63], "values": [1.0],
                                             "timestamps": [0]}}},
    {"start": 0, "end": 1, "metrics": {"m": {"steps": [0], "values": ["high"],
                                             "timestamps": [0]}}},
    {"start": 0, "end": 1, "params": {"a\x00b": 1}},
    {"start": 0, "end": 1, "tags": {"k": "v\x00"}},
    {"start": 0, "end": 1, "params": {"": 1}},
    {"start": 0, "end": 1, "params": {"x" * 501: 1}},
    {"start": 5, "end": 1},
    {"start": -1, "end": 1},
    {"start": 0, "end": 1, "unknown": True},
    {"end": 1},
    [1, 2, 3],
])
def test_invalid_batches_are_422(api: Api, body: object) -> None:
    run_id = make_run(api)
    response = api("POST", f"/api/v1/runs/{run_id}/batches", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]


def test_malformed_bodies_are_4xx(api: Api) -> None:
    run_id = make_run(api)
    path = f"/api/v1/runs/{run_id}/batches"
    json_headers = {"Content-Type": "application/json"}
    cases = [
        (b"{not json", json_headers, 422),
        (b"\xff\xfe garbage", json_headers, 422),
        (b"not gzip", {**json_headers, "Content-Encoding": "gzip"}, 400),
        (gzip.compress(b'{"start": 0, "end": 1}')[:-8], {**json_headers,
                                                        "Content-Encoding": "gzip"}, 400),
        (b"{}", {**json_headers, "Content-Encoding": "br"}, 415),
        (b'"\\ud800"', json_headers, 422),
    ]
    for data, headers, status in cases:
        response = api("POST", path, data=data, headers=headers)
        assert response.status_code == status, (data, response.status_code, response.text)
    lone = '{"start": 0, "end": 1, "tags": {"k": "\\ud800"}}'
    assert api("POST", path, data=lone, headers=json_headers).status_code == 422
    assert api("PUT", f"/api/v1/runs/{'z' * 32}", json={}).status_code == 422
    assert api("GET", "/api/v1/runs", params={"limit": 0}).status_code == 422
    assert api("GET", "/api/v1/runs", params={"page_token": "garbage!"}).status_code == 400
    assert api("GET", "/api/v1/runs", params={"tag": "no-equals"}).status_code == 400
    assert api("GET", "/api/v1/runs", params={"project": "a\x00"}).status_code == 422
    nan_spec = '{"name": "m", "spec": {"x": NaN}}'
    assert api("POST", f"/api/v1/runs/{run_id}/models", data=nan_spec,
               headers=json_headers).status_code == 422


def test_unknown_run_is_404(api: Api) -> None:
    missing = new_run_id()
    assert api("GET", f"/api/v1/runs/{missing}").status_code == 404
    response = api("POST", f"/api/v1/runs/{missing}/batches", json=batch(0, 1))
    assert response.status_code == 404 and "create it first" in response.json()["detail"]
    assert api("PUT", f"/api/v1/runs/{missing}/files/a.txt", data=b"x").status_code == 404


def test_request_size_limits_are_413(api: Api) -> None:
    run_id = make_run(api)
    big = {"start": 0, "end": 1, "params": {"p": "x" * (3 * 1024 * 1024)}}
    assert api("POST", f"/api/v1/runs/{run_id}/batches", json=big).status_code == 413
    bomb = gzip.compress(json.dumps(big).encode())  # ~3 KiB that inflates past the limit
    response = api("POST", f"/api/v1/runs/{run_id}/batches", data=bomb,
                   headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert response.status_code == 413
    chunked = api("POST", f"/api/v1/runs/{run_id}/batches",
                  data=iter([json.dumps(big).encode()]),
                  headers={"Content-Type": "application/json"})
    assert chunked.status_code == 413
    upload = api("PUT", f"/api/v1/runs/{run_id}/files/big.bin", data=b"0" * (1024 * 1024 + 1))
    assert upload.status_code == 413
    too_many = {"start": 0, "end": 1, "metrics": {"m": column([0.0] * 100_001)}}
    compressed = gzip.compress(json.dumps(too_many).encode())
    response = api("POST", f"/api/v1/runs/{run_id}/batches", data=compressed,
                   headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert response.status_code in (413, 422)


# -- path traversal ------------------------------------------------------------------------


@pytest.mark.parametrize("path", [
    "../escape.txt", "a/../../escape.txt", "%2e%2e/escape.txt", "a/%2E%2E/%2e%2e/escape.txt",
    "..%2Fescape.txt", "/etc/escape.txt", "%2Fetc%2Fescape.txt", "a//b.txt", "./a.txt",
    "a\\..\\escape.txt", "a%00b.txt", ".upload-1234",
])
def test_artifact_paths_cannot_escape_the_root(api: Api, server: LiveServer, path: str) -> None:
    run_id = make_run(api)
    url = f"{api.url}/api/v1/runs/{run_id}/files/{path}"
    prepared = api.session.prepare_request(__import__("requests").Request("PUT", url,
                                                                         data=b"evil"))
    prepared.url = url  # exactly as written: requests would normalise the dots away
    response = api.session.send(prepared, timeout=30)
    assert 400 <= response.status_code < 500, (path, response.status_code, response.text)
    # nowhere in this session's files, not even inside the root; and in no directory above the
    # run's (where a path climbing out would land; the other sessions' files are not searched)
    assert not files_holding(server.workdir.parent, b"evil")
    for ancestor in (server.artifacts / run_id).parents:
        assert not [p for p in ancestor.glob("*escape.txt") if p.is_file()], ancestor
    assert not Path("/etc/escape.txt").exists()


def test_a_symlink_in_the_artifact_tree_cannot_lead_outside(api: Api, server: LiveServer,
                                                            tmp_path: Path) -> None:
    run_id = make_run(api)
    outside = tmp_path / "outside"
    outside.mkdir()
    (server.artifacts / run_id).mkdir(parents=True, exist_ok=True)
    (server.artifacts / run_id / "link").symlink_to(outside, target_is_directory=True)
    (server.artifacts / run_id / "file-link").symlink_to(outside / "target.txt")
    for path in ("link/escape.txt", "file-link"):
        response = api("PUT", f"/api/v1/runs/{run_id}/files/{path}", data=b"evil")
        assert response.status_code == 400, response.text
        assert "outside" in response.json()["detail"]
        assert api("GET", f"/api/v1/runs/{run_id}/files/{path}").status_code in (400, 404)
    assert list(outside.iterdir()) == []
    # this session's files, `outside` among them; not /tmp/pytest-of-<user>, where another
    # pytest session on the machine removes its old directories while this one walks them
    assert not files_holding(server.workdir.parent, b"evil")
    assert tmp_path.is_relative_to(server.workdir.parent)


def test_file_and_directory_clash_is_409(api: Api) -> None:
    run_id = make_run(api)
    assert api("PUT", f"/api/v1/runs/{run_id}/files/a", data=b"file").ok
    assert api("PUT", f"/api/v1/runs/{run_id}/files/a/b", data=b"x").status_code == 409
    assert api("PUT", f"/api/v1/runs/{run_id}/files/d/e", data=b"x").ok
    assert api("PUT", f"/api/v1/runs/{run_id}/files/d", data=b"x").status_code == 409


# -- reading ---------------------------------------------------------------------------------


def test_list_filters_and_pages(api: Api) -> None:
    project = f"paging-{new_run_id()[:8]}"
    ids = [make_run(api, project=project, start_time=1000 + i) for i in range(7)]
    for i, run_id in enumerate(ids):
        api("POST", f"/api/v1/runs/{run_id}/batches",
            json=batch(0, 1, tags={"parity": "even" if i % 2 == 0 else "odd", "all": "yes"}))
    api("PUT", f"/api/v1/runs/{ids[0]}", json={"status": "FAILED"})
    seen, token = [], None
    while True:
        page = api("GET", "/api/v1/runs", params={"project": project, "limit": 3,
                                                  "page_token": token}).json()
        seen += [r["id"] for r in page["runs"]]
        token = page["next_page_token"]
        if token is None:
            break
    assert seen == ids[::-1]
    odd = api("GET", "/api/v1/runs", params={"project": project, "tag": ["parity=odd",
                                                                         "all=yes"]}).json()
    assert [r["id"] for r in odd["runs"]] == [ids[5], ids[3], ids[1]]
    failed = api("GET", "/api/v1/runs", params={"project": project, "status": "FAILED"}).json()
    assert [r["id"] for r in failed["runs"]] == [ids[0]]


def test_run_by_unique_prefix(api: Api) -> None:
    run_id = make_run(api)
    assert api("GET", f"/api/v1/runs/{run_id[:12]}").json()["id"] == run_id
    assert api("GET", f"/api/v1/runs/{run_id[:12].upper()}").json()["id"] == run_id
    other = run_id[0] + new_run_id()[1:]  # a second run sharing the first hex digit
    assert api("PUT", f"/api/v1/runs/{other}", json={}).ok
    response = api("GET", f"/api/v1/runs/{run_id[0]}")
    assert response.status_code == 400 and "several" in response.json()["detail"]


def test_history_downsampling_keeps_ends_and_extremes(api: Api) -> None:
    run_id = make_run(api)
    values = [math.sin(i / 50) for i in range(5000)]
    values[2345] = 99.0  # a spike
    values[777] = "NaN"  # type: ignore[call-overload]
    body = batch(0, 1, metrics={"wave": column(values)})
    assert api("POST", f"/api/v1/runs/{run_id}/batches", json=body).ok
    full = api("GET", f"/api/v1/runs/{run_id}/history", params={"key": "wave"}).json()
    assert full["total"] == 5000 and not full["downsampled"] and len(full["steps"]) == 5000
    small = api("GET", f"/api/v1/runs/{run_id}/history",
                params={"key": "wave", "max_points": 100}).json()
    assert small["downsampled"] and small["total"] == 5000
    assert 50 <= len(small["steps"]) <= 100
    assert small["steps"][0] == 0 and small["steps"][-1] == 4999
    assert small["steps"] == sorted(small["steps"])
    assert 99.0 in small["values"]
    numbers = [v for v in values if isinstance(v, float)]
    assert min(numbers) in small["values"]
    assert "NaN" not in small["values"]
    missing = api("GET", f"/api/v1/runs/{run_id}/history", params={"key": "nope"}).json()
    assert missing["total"] == 0 and missing["steps"] == []


def test_info_reports_limits(api: Api) -> None:
    info = api("GET", "/api/v1/info").json()
    assert info["max_upload_bytes"] == 1024 * 1024
    assert info["max_request_bytes"] == 2 * 1024 * 1024
    assert info["schema_revision"] == schema_head() and info["database"] == "sqlite"


# -- overload --------------------------------------------------------------------------------


def test_overload_is_503_with_retry_after(api: Api, server: LiveServer) -> None:
    run_id = make_run(api)
    held = []
    try:
        for _ in range(6):  # the server's --max-in-flight: uploads that never send their body
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.sendall(f"PUT /api/v1/runs/{run_id}/files/slow.bin HTTP/1.1\r\n"
                         f"Host: x\r\nAuthorization: {api.session.headers['Authorization']}\r\n"
                         "Content-Length: 1000\r\n\r\n".encode())
            held.append(sock)
        time.sleep(0.5)  # let the server take them all in before the request that is refused
        deadline = time.monotonic() + 10
        while True:
            response = api("GET", "/api/v1/runs", params={"limit": 1})
            if response.status_code == 503 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "1"
        assert "busy" in response.json()["detail"]
        assert api("GET", "/healthz").status_code == 200  # busy is not dead
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 10
    while api("GET", "/api/v1/runs", params={"limit": 1}).status_code != 200:
        assert time.monotonic() < deadline, "the server did not recover from overload"
        time.sleep(0.05)
    assert not (server.artifacts / run_id / "slow.bin").exists()
