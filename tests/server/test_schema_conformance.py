"""Issue 15, item 14: the server accepts exactly what its OpenAPI document says, case by case
(the schemathesis run in ``test_fuzz.py`` covers the document as a whole).

A JSON boolean or string is never a number, an upload needs a body, the document states the
byte-length and 64-bit bounds the server applies (so a request inside them is accepted and one
just past them is refused), and a method a path does not serve is 405 with ``Allow``.
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Api, new_run_id
from .live import LiveServer

INT64_MAX = 2**63 - 1


def make_run(api: Api) -> str:
    run_id = new_run_id()
    assert api("PUT", f"/api/v1/runs/{run_id}", json={}).status_code == 200
    return run_id


def column(steps: list[int]) -> dict[str, list[Any]]:
    return {"steps": steps, "values": [1.0] * len(steps), "timestamps": [0] * len(steps)}


@pytest.mark.parametrize("value", [False, True, "5", "x", 1.5, -1, 2**63])
def test_item14_end_time_false_is_refused_not_stored_as_0(api: Api, value: object) -> None:
    run_id = make_run(api)
    response = api("PUT", f"/api/v1/runs/{run_id}", json={"end_time": value})
    assert response.status_code == 422, response.text
    assert "end_time" in response.text
    assert api("GET", f"/api/v1/runs/{run_id}").json()["end_time"] is None


def test_item14_json_numbers_are_strict_everywhere(api: Api) -> None:
    run_id = make_run(api)
    path = f"/api/v1/runs/{run_id}/batches"
    refused = [
        {"start": False, "end": 1},
        {"start": 0, "end": "1"},
        {"start": 0, "end": 1, "part": True},
        {"start": 0, "end": 1, "metrics": {"m": {"steps": [True], "values": [1.0],
                                                 "timestamps": [0]}}},
        {"start": 0, "end": 1, "metrics": {"m": {"steps": [0], "values": [True],
                                                 "timestamps": [0]}}},
        {"start": 0, "end": 1, "metrics": {"m": {"steps": [0], "values": ["1.5"],
                                                 "timestamps": [0]}}},
    ]
    for body in refused:
        response = api("POST", path, json=body)
        assert response.status_code == 422, (body, response.text)
    kept = {"start": 0, "end": 1, "params": {"flag": True, "n": 3, "lr": 0.1, "s": "3"},
            "metrics": {"m": {"steps": [2.0], "values": [1], "timestamps": [5]}}}
    assert api("POST", path, json=kept).status_code == 200  # 2.0 is an integer to JSON Schema
    run = api("GET", f"/api/v1/runs/{run_id}").json()
    assert run["params"] == {"flag": True, "n": 3, "lr": 0.1, "s": "3"}
    history = api("GET", f"/api/v1/runs/{run_id}/history", params={"key": "m"}).json()
    assert (history["steps"], history["values"]) == ([2], [1.0])


def test_item14_an_upload_without_a_body_is_refused(api: Api, server: LiveServer) -> None:
    run_id = make_run(api)
    missing = api("PUT", f"/api/v1/runs/{run_id}/files/none.txt")
    assert missing.status_code == 422, missing.text
    assert "Field required" in missing.text and "no Content-Type" in missing.text
    assert not (server.artifacts / run_id / "none.txt").exists()
    empty = api("PUT", f"/api/v1/runs/{run_id}/files/empty.txt", data=b"",
                headers={"Content-Type": "application/octet-stream"})
    assert empty.status_code == 200, empty.text  # an empty file, said so, is a file
    assert empty.json()["size"] == 0
    assert (server.artifacts / run_id / "empty.txt").read_bytes() == b""


def _schema(server: LiveServer, tokens: dict[str, str]) -> dict[str, Any]:
    response = Api(server.url, tokens["read"])("GET", "/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def test_item14_the_document_states_int64_and_byte_limits(server: LiveServer,
                                                          tokens: dict[str, str]) -> None:
    schemas = _schema(server, tokens)["components"]["schemas"]
    end_time = next(s for s in schemas["RunIn"]["properties"]["end_time"]["anyOf"]
                    if s.get("type") == "integer")
    assert (end_time["minimum"], end_time["exclusiveMaximum"]) == (0, 2**63)
    assert type(end_time["exclusiveMaximum"]) is int  # not 9.223372036854776e18
    steps = schemas["MetricColumn"]["properties"]["steps"]["items"]
    assert (steps["minimum"], steps["exclusiveMaximum"]) == (-(2**63), 2**63)
    keys = schemas["BatchIn"]["properties"]["params"]["propertyNames"]
    assert keys["maxLength"] == 500 and keys["x-max-bytes"] == 1000
    assert "patternProperties" not in schemas["BatchIn"]["properties"]["params"]


def _string_schemas(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The string schemas a parameter's schema allows: itself, its ``anyOf`` choices, its
    items."""
    found = [schema] if schema.get("type") == "string" else []
    for choice in schema.get("anyOf", []):
        found += _string_schemas(choice)
    if "items" in schema:
        found += _string_schemas(schema["items"])
    return found


def test_item14_every_free_text_query_parameter_says_nul_is_refused(
        api: Api, server: LiveServer, tokens: dict[str, str]) -> None:
    """The server refuses a NUL character in any free text (422); the document says so on each
    text query parameter, on every supported FastAPI (0.110 dropped a bare ``Key``'s pattern)."""
    unstated = []
    for path, operations in _schema(server, tokens)["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                for string in _string_schemas(parameter["schema"]):
                    opaque = "enum" in string or parameter["name"] == "page_token"
                    if parameter["in"] == "query" and not opaque and "pattern" not in string:
                        unstated.append((method, path, parameter["name"]))
    assert unstated == []
    history = _schema(server, tokens)["paths"]["/api/v1/runs/{run}/history"]["get"]
    key = next(p for p in history["parameters"] if p["name"] == "key")["schema"]
    assert (key["pattern"], key["x-max-bytes"]) == (r"^[^\x00]*$", 1000)
    run_id = new_run_id()
    assert api("PUT", f"/api/v1/runs/{run_id}", json={}).ok
    response = api("GET", f"/api/v1/runs/{run_id}/history", params={"key": "loss\x00"})
    assert response.status_code == 422, response.text
    assert "NUL" in response.text


def test_item14_requests_at_the_stated_limits_are_accepted(api: Api) -> None:
    run_id = make_run(api)
    assert api("PUT", f"/api/v1/runs/{run_id}", json={"end_time": INT64_MAX}).status_code == 200
    assert api("GET", f"/api/v1/runs/{run_id}").json()["end_time"] == INT64_MAX
    path = f"/api/v1/runs/{run_id}/batches"
    edges = {"start": 0, "end": INT64_MAX,
             "params": {"é" * 500: 1},  # 500 characters, 1,000 bytes of UTF-8
             "metrics": {"m": column([-(2**63), INT64_MAX])}}
    assert api("POST", path, json=edges).status_code == 200
    past = [{"start": 0, "end": 2**63},
            {"start": 0, "end": 1, "params": {"€" * 334: 1}},  # 334 characters, 1,002 bytes
            {"start": 0, "end": 1, "metrics": {"m": column([-(2**63) - 1])}}]
    for body in past:
        response = api("POST", path, json=body)
        assert response.status_code == 422, (body, response.text)
    history = api("GET", f"/api/v1/runs/{run_id}/history", params={"key": "m"}).json()
    assert history["steps"] == [-(2**63), INT64_MAX]


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("OPTIONS", "/api/v1/runs/{run}", "GET, PATCH, PUT"),
    ("DELETE", "/api/v1/runs/{run}", "GET, PATCH, PUT"),
    ("OPTIONS", "/api/v1/runs", "GET"),
    ("GET", "/api/v1/runs/{run}/batches", "POST"),
    ("OPTIONS", "/api/v1/runs/{run}/files/a/b.txt", "GET, PUT"),
])
def test_item14_a_method_not_served_is_405_with_allow(api: Api, method: str, path: str,
                                                      allowed: str) -> None:
    response = api(method, path.format(run=make_run(api)))
    assert response.status_code == 405, response.text
    assert response.headers["Allow"] == allowed
    assert response.json() == {"detail": "Method Not Allowed"}


@pytest.mark.parametrize("method", ["PUT", "POST", "OPTIONS"])
def test_item14_a_path_no_endpoint_serves_is_404_whatever_the_method(api: Api,
                                                                     method: str) -> None:
    # e.g. AUTOLOG_HTTP_URL with /api/v1 in it: the client must read "wrong URL", not 405
    response = api(method, "/api/v1/api/v1/runs/abc", json={})
    assert response.status_code == 404, response.text
    assert "Allow" not in response.headers
