"""``autolog server``'s UI side, live on loopback: the login form and session cookie, CSRF on
cookie writes, scopes, edits stored in the database, the runs table API, the pages."""

from __future__ import annotations

import time
from typing import Any

import requests

from .conftest import Api
from .live import LiveServer
from .test_api import batch, column, make_run

CSP_START = "default-src 'self'; script-src 'self'"


def _login(server: LiveServer, token: str) -> requests.Session:
    session = requests.Session()
    response = session.post(f"{server.url}/login", data={"token": token},
                            allow_redirects=False, timeout=30)
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("autolog_session=") and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    return session


def test_the_login_form_signs_in_with_a_token(server: LiveServer, tokens: dict[str, str]
                                              ) -> None:
    form = requests.get(f"{server.url}/login", timeout=30)
    assert form.status_code == 200 and '<form method="post" action="/login">' in form.text
    assert "<script" not in form.text and "style=" not in form.text
    assert form.headers["content-security-policy"].startswith(CSP_START)
    wrong = requests.post(f"{server.url}/login", data={"token": "alg_wrong"}, timeout=30,
                          allow_redirects=False)
    assert wrong.status_code == 401 and "unknown or revoked" in wrong.text
    assert "set-cookie" not in wrong.headers
    session = _login(server, tokens["read"])
    me = session.get(f"{server.url}/api/v1/session", timeout=30).json()
    assert me["mode"] == "server" and me["user"] == "read-token" and not me["can_write"]
    assert session.get(f"{server.url}/api/v1/runs", timeout=30).status_code == 200
    out = session.post(f"{server.url}/logout", allow_redirects=False, timeout=30)
    assert out.status_code == 303
    assert session.get(f"{server.url}/api/v1/session", timeout=30).status_code == 401


def test_cookie_writes_need_the_csrf_header_and_write_scope(server: LiveServer,
                                                           tokens: dict[str, str],
                                                           api: Api) -> None:
    run_id = make_run(api, name="to edit")
    reader = _login(server, tokens["read"])
    csrf = reader.get(f"{server.url}/api/v1/session", timeout=30).json()["csrf"]
    refused = reader.patch(f"{server.url}/api/v1/runs/{run_id}", json={"name": "x"},
                           headers={"X-CSRF-Token": csrf}, timeout=30)
    assert refused.status_code == 403 and "'read'" in refused.json()["detail"]
    writer = _login(server, tokens["write"])
    csrf = writer.get(f"{server.url}/api/v1/session", timeout=30).json()["csrf"]
    url = f"{server.url}/api/v1/runs/{run_id}"
    assert writer.patch(url, json={"name": "x"}, timeout=30).status_code == 403
    assert writer.patch(url, json={"name": "x"}, headers={"X-CSRF-Token": csrf + "0"},
                        timeout=30).status_code == 403
    done = writer.patch(url, json={"name": "renamed"}, headers={"X-CSRF-Token": csrf},
                        timeout=30)
    assert done.status_code == 200 and done.json()["name"] == "renamed"
    bearer = api("PATCH", f"/api/v1/runs/{run_id}", json={"note": "by bearer"})  # no CSRF
    assert bearer.status_code == 200 and bearer.json()["note"] == "by bearer"
    read_bearer = Api(server.url, tokens["read"])("PATCH", f"/api/v1/runs/{run_id}", json={})
    assert read_bearer.status_code == 403


def test_edits_are_stored_and_the_runs_table_reads_them(api: Api) -> None:
    project = f"ui-{time.time_ns()}"
    ids = [make_run(api, project=project, start_time=1000 + i) for i in range(4)]
    for i, run_id in enumerate(ids):
        api("POST", f"/api/v1/runs/{run_id}/batches", json=batch(
            0, 1, params={"lr": [0.1, 0.01, "0.5", 1e-4][i], "opt": "adam"},
            tags={"team": "vision", "stage": "dev"},
            metrics={"loss": column([1.0, 0.5, 0.25 * (i + 1)])}))
    child = make_run(api, project=project, parent_id=ids[0])
    api("PATCH", f"/api/v1/runs/{ids[1]}",
        json={"name": "best", "tags": {"best": "yes"}, "remove_tags": ["stage"],
              "note": "keep", "deleted": False})
    api("PATCH", f"/api/v1/runs/{ids[2]}", json={"deleted": True})

    def table(**params: Any) -> dict[str, Any]:
        response = api("GET", "/api/v1/runs", params={"project": project, **params})
        assert response.status_code == 200, response.text
        return response.json()

    page = table(sort="metrics.loss", columns="params.lr,metrics.loss:max")
    assert [r["id"] for r in page["runs"]] == [ids[0], ids[1], ids[3]] and page["total"] == 3
    first = page["runs"][0]
    assert first["children"] == 1 and first["values"] == {"params.lr": 0.1,
                                                          "metrics.loss:max": 1.0}
    best = page["runs"][1]
    assert (best["name"], best["note"], best["tags"].get("stage")) == ("best", "keep", None)
    assert [r["id"] for r in table(filter="params.lr >= 0.05")["runs"]] == [ids[0]]
    assert [r["id"] for r in table(deleted="true")["runs"]] == [ids[2]]
    assert [r["id"] for r in table(parent=ids[0])["runs"]] == [child]
    assert table(q="KEEP")["total"] == 1
    assert table(all="true")["total"] == 4
    bad = api("GET", "/api/v1/runs", params={"filter": "params.lr >="})
    assert bad.status_code == 400 and bad.json()["detail"]["column"] == 13
    keys = api("GET", "/api/v1/keys", params={"project": project}).json()
    assert keys == {"params": ["lr", "opt"], "metrics": ["loss"],
                    "tags": ["best", "stage", "team"], "columns": ["metrics.loss"]}
    projects = {p["name"]: p for p in api("GET", "/api/v1/projects").json()["projects"]}
    assert projects[project]["runs"] == 4  # the deleted one left out
    detail = api("GET", f"/api/v1/runs/{ids[3]}").json()
    assert detail["metric_summary"]["loss"] == {"last": 1.0, "min": 0.5, "max": 1.0,
                                                "step": 2, "count": 3}


def test_bucketed_history_on_the_server(api: Api) -> None:
    run_id = make_run(api)
    values = [float(i % 100) for i in range(30_000)]
    values[12_345] = 1e6
    for part in range(3):
        chunk = values[part * 10_000:(part + 1) * 10_000]
        api("POST", f"/api/v1/runs/{run_id}/batches",
            json=batch(part, part + 1, metrics={"wave": column(chunk, part * 10_000)}))
    got = api("GET", f"/api/v1/runs/{run_id}/history",
              params={"key": "wave", "buckets": 200}).json()
    assert got["total"] == 30_000 and got["downsampled"] and len(got["steps"]) <= 200
    assert max(got["max"]) == 1e6 and min(got["min"]) == 0.0
    both = api("GET", "/api/v1/histories", params={"run": [run_id], "key": ["wave", "none"],
                                                   "buckets": 200}).json()["series"]
    assert [s["key"] for s in both] == ["wave"] and both[0]["steps"] == got["steps"]


def test_pages_and_headers(server: LiveServer) -> None:
    page = requests.get(f"{server.url}/r/0123", timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"].startswith(CSP_START)
    assert page.headers["referrer-policy"] == "no-referrer"
    assert requests.get(f"{server.url}/?token=anything", timeout=30,
                        allow_redirects=False).status_code == 200  # no URL tokens here
    assert requests.get(f"{server.url}/api/v1/unknown", timeout=30).status_code == 404
