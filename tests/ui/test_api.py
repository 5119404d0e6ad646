"""The UI's JSON API over the local store (``autolog ui``'s app, through FastAPI's TestClient):
session, projects, keys, runs, run detail, histories, files and previews, edits, pages."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import autolog
from autolog.server.web import CSP
from autolog.ui.index import Index

from .conftest import TOKEN, local_client


def _run(root: Path, **match: Any) -> autolog.RunRecord:
    for record in autolog.list_runs(root):
        if all(getattr(record, k) == v for k, v in match.items()):
            return record
    raise LookupError(match)


# -- reading ----------------------------------------------------------------------------------


def test_session_projects_and_keys(api: TestClient, ui_store: Path) -> None:
    session = api.get("/api/v1/session").json()
    assert session["mode"] == "local" and session["can_write"] and len(session["csrf"]) >= 32
    projects = {p["name"]: p for p in api.get("/api/v1/projects").json()["projects"]}
    assert set(projects) == {r.project for r in autolog.list_runs(ui_store)}
    assert projects["alpha"]["runs"] == len(autolog.list_runs(ui_store, "alpha"))
    keys = api.get("/api/v1/keys", params={"project": "alpha"}).json()
    alpha = autolog.list_runs(ui_store, "alpha")
    assert keys["params"] == sorted({k for r in alpha for k in r.params})
    assert keys["metrics"] == sorted({k for r in alpha for k in r.metrics})
    assert keys["tags"] == sorted({k for r in alpha for k in r.tags})


def test_the_runs_table(api: TestClient, ui_store: Path) -> None:
    page = api.get("/api/v1/runs", params={
        "project": "alpha", "filter": "params.lr >= 1e-3 and tags.team != speech",
        "sort": "-metrics.loss", "columns": "params.lr,metrics.loss:min", "limit": 5}).json()
    assert page["total"] > 5 and len(page["runs"]) == 5 and page["offset"] == 0
    row = page["runs"][0]
    assert set(row) >= {"id", "name", "project", "status", "parent_id", "start_time",
                        "end_time", "children", "tags", "note", "deleted", "metrics", "values"}
    assert float(row["values"]["params.lr"]) >= 1e-3 and "metrics.loss:min" in row["values"]
    losses = [r["metrics"]["loss"] for r in page["runs"]]
    assert losses == sorted(losses, reverse=True)
    second = api.get("/api/v1/runs", params={"project": "alpha", "sort": "-metrics.loss",
                                             "filter": "params.lr >= 1e-3 and tags.team != "
                                             "speech", "limit": 5, "offset": 5}).json()
    assert not {r["id"] for r in second["runs"]} & {r["id"] for r in page["runs"]}


def test_old_parameters_and_keyset_pages_still_work(api: TestClient) -> None:
    seen, token = [], None
    while True:
        page = api.get("/api/v1/runs", params={"project": "beta", "limit": 4,
                                               "page_token": token}).json()
        seen += [r["id"] for r in page["runs"]]
        token = page["next_page_token"]
        if token is None:
            break
    total = api.get("/api/v1/runs", params={"project": "beta"}).json()["total"]
    assert len(seen) == len(set(seen)) == total
    vision = api.get("/api/v1/runs", params={"tag": "team=vision", "status": "FINISHED"})
    assert vision.json()["runs"] and all(r["tags"]["team"] == "vision"
                                         for r in vision.json()["runs"])


@pytest.mark.parametrize(("expression", "column"), [
    ("params.lr >= ", 14), ("status = FINISHED and", 22), ("metrics.acc > high", 1),
    ("colour = red", 1), ("(name = a", 10), ("name = 'open", 8), ("name ! x", 6)])
def test_a_filter_that_does_not_parse_is_400_naming_the_column(api: TestClient,
                                                               expression: str,
                                                               column: int) -> None:
    response = api.get("/api/v1/runs", params={"filter": expression})
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail["column"] == column and detail["expression"] == expression
    assert f"column {column}" in detail["message"]


def test_bad_sorts_and_columns_are_400(api: TestClient) -> None:
    assert api.get("/api/v1/runs", params={"sort": "colour"}).status_code == 400
    assert api.get("/api/v1/runs", params={"columns": "name"}).status_code == 400
    assert api.get("/api/v1/runs", params={"limit": 0}).status_code == 422
    assert api.get("/api/v1/runs", params={"parent": "nope"}).status_code == 422


def test_run_detail(api: TestClient, ui_store: Path) -> None:
    fit = next(r for r in autolog.list_runs(ui_store, "sk") if r.models)
    detail = api.get(f"/api/v1/runs/{fit.id[:10]}").json()
    assert detail["id"] == fit.id and detail["params"] == fit.params
    assert detail["models"]["model"]["flavor"] == "sklearn"
    assert "requirements.txt" in detail["artifacts"]
    assert detail["tags"]["autolog.python.version"]
    summary = detail["metric_summary"]["training_score"]
    assert summary == {"last": fit.metrics["training_score"], "min": fit.metrics[
        "training_score"], "max": fit.metrics["training_score"], "step": 0, "count": 1}
    assert api.get(f"/api/v1/runs/{'0' * 32}").status_code == 404
    assert api.get("/api/v1/runs/zz").status_code == 422


def test_history_in_buckets_keeps_the_spike(api: TestClient, ui_store: Path) -> None:
    spiky = _run(ui_store, name="run-04")
    got = api.get(f"/api/v1/runs/{spiky.id}/history",
                  params={"key": "spiky", "buckets": 100}).json()
    assert got["total"] == 5000 and got["downsampled"]
    assert 50 <= len(got["steps"]) <= 100 and got["steps"] == sorted(got["steps"])
    assert max(got["max"]) == 100.0  # the one spike survives in the envelope
    assert all(lo <= v <= hi for lo, v, hi in zip(got["min"], got["values"], got["max"],
                                                  strict=True))
    points = dict((s, v) for s, v, _ in spiky.history("spiky"))
    assert all(points[s] == v for s, v in zip(got["steps"], got["values"], strict=True))
    zoom = api.get(f"/api/v1/runs/{spiky.id}/history",
                   params={"key": "spiky", "buckets": 100, "min_step": 2300,
                           "max_step": 2350}).json()
    assert zoom["steps"] == list(range(2300, 2351)) and not zoom["downsampled"]
    assert zoom["values"] == [points[s] for s in range(2300, 2351)]
    tail = api.get(f"/api/v1/runs/{spiky.id}/history",
                   params={"key": "spiky", "min_step": 4990}).json()
    assert tail["steps"] == list(range(4990, 5000)) and tail["min"] == tail["values"]


def test_history_codecs(api: TestClient, ui_store: Path) -> None:
    nan_run = next(r for r in autolog.list_runs(ui_store) if r.name == "run-03")
    assert math.isnan(nan_run.metrics["acc"])
    new = api.get(f"/api/v1/runs/{nan_run.id}/history", params={"key": "acc",
                                                                  "buckets": 10}).json()
    assert new["values"][-1] is None
    old = api.get(f"/api/v1/runs/{nan_run.id}/history", params={"key": "acc"}).json()
    assert old["values"][-1] == "NaN"


def test_histories_for_a_compare_view(api: TestClient, ui_store: Path) -> None:
    alpha = autolog.list_runs(ui_store, "alpha")[:5]
    got = api.get("/api/v1/histories", params={"run": [r.id for r in alpha] + [alpha[0].id],
                                                "key": ["loss", "acc", "missing"],
                                                "buckets": 50}).json()["series"]
    expected = {(r.id, k) for r in alpha for k in ("loss", "acc") if k in r.metrics}
    assert {(s["run_id"], s["key"]) for s in got} == expected
    for series in got:
        record = next(r for r in alpha if r.id == series["run_id"])
        steps = [s for s, _, _ in record.history(series["key"])]
        assert series["steps"] == steps and series["total"] == len(steps)
    many = api.get("/api/v1/histories", params={"run": ["a"] * 51, "key": ["loss"]})
    assert many.status_code == 422


# -- files ------------------------------------------------------------------------------------


def test_files_download_and_preview_safely(api: TestClient, ui_store: Path) -> None:
    run = _run(ui_store, name="with files")
    files = {f["path"]: f for f in api.get(f"/api/v1/runs/{run.id}/files").json()["files"]}
    assert files["notes.md"]["size"] == len("# Notes\n\nbatch size 32 was best\n")
    base = f"/api/v1/runs/{run.id}/files"
    download = api.get(f"{base}/page.html")
    assert download.headers["content-type"] == "application/octet-stream"
    assert "attachment" in download.headers["content-disposition"]
    text = api.get(f"{base}/notes.md", params={"preview": 1})
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    assert text.text.startswith("# Notes") and "x-truncated" not in text.headers
    assert text.headers["content-security-policy"] == "sandbox"
    assert text.headers["x-content-type-options"] == "nosniff"
    image = api.get(f"{base}/plot.png", params={"preview": 1})
    assert image.headers["content-type"] == "image/png" and image.content.startswith(b"\x89PNG")
    assert api.get(f"{base}/fake.png", params={"preview": 1}).status_code == 415
    assert api.get(f"{base}/page.html", params={"preview": 1}).status_code == 415
    big = api.get(f"{base}/big.log", params={"preview": 1})
    assert big.headers["x-truncated"] == "true" and len(big.content) == 2 * 1024 * 1024


@pytest.mark.parametrize("path", ["../meta.json", "..%2Fmeta.json", "%2E%2E/meta.json",
                                  "/etc/passwd", "a/../../meta.json", "notes.md%00",
                                  "outside", "link/secret.txt"])
def test_no_file_outside_the_run(index: Index, tmp_path: Path, path: str) -> None:
    root = tmp_path / "store"
    shutil.copytree(index.root, root, ignore=shutil.ignore_patterns(".index*"))
    run = _run(root, name="with files")
    (tmp_path / "secret.txt").write_text("the-secret-content")
    os.symlink(tmp_path / "secret.txt", run.path / "artifacts" / "outside")
    os.symlink(tmp_path, run.path / "artifacts" / "link")
    copy = Index(root)
    copy.refresh(full=True)
    client = local_client(copy)
    response = client.get(f"/api/v1/runs/{run.id}/files/{path}",
                          headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code in (404, 422), response.text
    assert b"the-secret-content" not in response.content and b'"id"' not in response.content
    listed = client.get(f"/api/v1/runs/{run.id}/files",
                        headers={"Authorization": f"Bearer {TOKEN}"}).json()["files"]
    assert not any(f["path"].startswith(("outside", "link")) for f in listed)
    copy.stop()


# -- edits ------------------------------------------------------------------------------------


@pytest.fixture
def editable(index: Index, tmp_path: Path) -> tuple[TestClient, Path]:
    root = tmp_path / "store"
    shutil.copytree(index.root, root, ignore=shutil.ignore_patterns(".index*"))
    copy = Index(root)
    copy.refresh(full=True)
    client = local_client(copy)
    yield client, root
    copy.stop()


def test_edits_are_journaled_and_shown(editable: tuple[TestClient, Path]) -> None:
    client, root = editable
    client.headers["Authorization"] = f"Bearer {TOKEN}"
    run = _run(root, name="run-05")
    body = {"name": "renamed", "tags": {"best": "indeed"}, "remove_tags": ["team"],
            "note": "lr looks high"}
    detail = client.patch(f"/api/v1/runs/{run.id}", json=body).json()
    assert (detail["name"], detail["note"]) == ("renamed", "lr looks high")
    assert detail["tags"]["best"] == "indeed" and "team" not in detail["tags"]
    record = autolog.get_run(run.id, root)
    assert (record.name, record.note, record.tags.get("team")) == ("renamed", "lr looks high",
                                                                   None)
    found = client.get("/api/v1/runs", params={"q": "LOOKS HIGH"}).json()
    assert [r["id"] for r in found["runs"]] == [run.id]
    assert client.patch(f"/api/v1/runs/{run.id}", json={"deleted": True}).json()["deleted"]
    assert run.id not in {r["id"] for r in client.get(
        "/api/v1/runs", params={"limit": 1000}).json()["runs"]}
    deleted = client.get("/api/v1/runs", params={"deleted": True}).json()["runs"]
    assert [r["id"] for r in deleted] == [run.id]
    client.patch(f"/api/v1/runs/{run.id}", json={"deleted": False})
    assert autolog.get_run(run.id, root).deleted is False
    bad = client.patch(f"/api/v1/runs/{run.id}", json={"name": 5, "colour": "red"})
    assert bad.status_code == 422
    assert client.patch(f"/api/v1/runs/{'0' * 32}", json={"name": "x"}).status_code == 404


def test_ingest_routes_are_closed_in_local_mode(api: TestClient) -> None:
    assert api.put(f"/api/v1/runs/{'a' * 32}", json={}).status_code == 403
    assert api.get("/api/v1/tokens").status_code == 403


# -- authentication, pages, headers -----------------------------------------------------------


def test_without_the_token_everything_but_pages_is_401(index: Index) -> None:
    client = local_client(index)
    assert client.get("/api/v1/session").status_code == 401
    assert client.get("/api/v1/runs").status_code == 401
    assert client.get("/api/v1/runs", headers={"Authorization": "Bearer wrong"}
                      ).status_code == 401
    assert client.get("/", follow_redirects=False).status_code == 200  # the app's page
    wrong = client.get("/?token=wrong", follow_redirects=False)
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers


def test_the_token_in_the_url_becomes_a_cookie_then_leaves_the_url(index: Index) -> None:
    client = local_client(index)
    first = client.get(f"/r/abc?token={TOKEN}&view=charts", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/r/abc?view=charts"
    cookie = first.headers["set-cookie"]
    assert "autolog_session_5050=" in cookie and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie and "Path=/" in cookie
    session = client.get("/api/v1/session")
    assert session.status_code == 200
    csrf = session.json()["csrf"]
    run_id = client.get("/api/v1/runs").json()["runs"][0]["id"]
    assert client.patch(f"/api/v1/runs/{run_id}", json={}).status_code == 403  # no CSRF header
    assert client.patch(f"/api/v1/runs/{run_id}", json={},
                        headers={"X-CSRF-Token": "wrong"}).status_code == 403
    assert client.patch(f"/api/v1/runs/{run_id}", json={},
                        headers={"X-CSRF-Token": csrf}).status_code == 200
    out = client.post("/logout", follow_redirects=False)
    assert out.status_code == 303 and client.get("/api/v1/session").status_code == 401


def test_pages_fall_back_to_the_app_and_carry_the_security_headers(index: Index,
                                                                   tmp_path: Path) -> None:
    bare = local_client(index)
    missing = bare.get("/")
    assert missing.status_code == 200 and "not built" in missing.text
    static = tmp_path / "static"
    (static / "assets").mkdir(parents=True)
    (static / "index.html").write_text("<!doctype html><title>app</title>")
    (static / "assets" / "app-1234.js").write_text("console.log(1)")
    (static / "favicon.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("secret")
    client = local_client(index, static)
    for path in ("/", "/p/alpha", "/r/0123abc", "/compare?runs=a,b", "/deep/er/path"):
        page = client.get(path)
        assert page.text == "<!doctype html><title>app</title>", path
        assert page.headers["cache-control"] == "no-cache"
        assert page.headers["content-security-policy"] == CSP
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert "unsafe-inline" not in CSP
    asset = client.get("/assets/app-1234.js")
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert asset.headers["content-type"].startswith("text/javascript")
    assert client.get("/assets/missing.js").status_code == 404
    assert client.get("/assets/../../secret.txt").text != "secret"
    assert client.get("/assets/%2e%2e/%2e%2e/secret.txt").text != "secret"
    assert client.get("/favicon.svg").text == "<svg/>"
    unknown = client.get("/api/v1/nothing-here")
    assert unknown.status_code == 404 and unknown.json()["detail"]
    login = client.get("/login")
    assert "<form" in login.text and "<script" not in login.text
    assert login.headers["content-security-policy"] == CSP
