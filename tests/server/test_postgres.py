"""The server on PostgreSQL: the migrated schema, and several stateless processes on one
database storing each batch exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import Api, new_run_id
from .live import LiveServer, Postgres, postgres_or_skip, schema_head

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    cluster = postgres_or_skip()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def two_servers(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[tuple[LiveServer, LiveServer]]:
    url = postgres.database()
    shared = tmp_path_factory.mktemp("shared")  # both serve the same artifact directory
    first = LiveServer(url, shared / "a")
    second = LiveServer(url, shared / "b", "--workers", "2")  # uvicorn's worker processes
    second.artifacts = first.artifacts
    first.start()
    second.start()
    yield first, second
    first.stop()
    second.stop()


def test_the_migrated_schema_matches_the_models(postgres: Postgres) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from autolog.server.db import Database
    from autolog.server.tables import metadata

    db = Database(postgres.database())
    try:
        assert db.migrate() == schema_head()
        assert db.migrate() == schema_head()  # a second start changes nothing
        with db.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        db.dispose()


def test_concurrent_migrations_from_several_processes(postgres: Postgres, tmp_path: Path) -> None:
    url = postgres.database()
    servers = [LiveServer(url, tmp_path / str(i)) for i in range(3)]
    try:
        with ThreadPoolExecutor(3) as pool:  # together: each migrates under the advisory lock
            list(pool.map(lambda s: s.start(), servers))
        token = servers[0].token("migrated", "read")
        for server in servers:
            assert Api(server.url, token)("GET", "/api/v1/info").json()["schema_revision"] == \
                schema_head()
    finally:
        for server in servers:
            server.stop()


def test_several_servers_store_a_batch_once(two_servers: tuple[LiveServer, LiveServer]) -> None:
    first, second = two_servers
    token = first.token(scope="write")
    a, b = Api(first.url, token), Api(second.url, token)
    run_id = new_run_id()
    assert a("PUT", f"/api/v1/runs/{run_id}", json={"name": "shared", "project": "pg"}).ok
    body = {"start": 0, "end": 500, "params": {"lr": 0.5},
            "metrics": {"loss": {"steps": list(range(1000)), "values": [1.0] * 1000,
                                 "timestamps": [1] * 1000}}}
    with ThreadPoolExecutor(8) as pool:  # the same retried batch, racing on both servers
        results = list(pool.map(lambda api: api("POST", f"/api/v1/runs/{run_id}/batches",
                                                json=body).json(), [a, b] * 4))
    assert sum(r["stored"] for r in results) == 1
    for i in range(1, 11):  # later batches, alternating between the servers
        api = (a, b)[i % 2]
        nxt = {"start": 500 * i, "end": 500 * (i + 1),
               "metrics": {"loss": {"steps": [1000 + i], "values": [0.5], "timestamps": [2]}}}
        assert api("POST", f"/api/v1/runs/{run_id}/batches", json=nxt).json()["stored"]
    history = b("GET", f"/api/v1/runs/{run_id}/history", params={"key": "loss"}).json()
    assert history["total"] == 1010
    assert history["steps"] == list(range(1000)) + list(range(1001, 1011))
    assert a("GET", f"/api/v1/runs/{run_id[:10]}").json()["metrics"] == {"loss": 0.5}


def test_a_file_uploaded_through_one_server_downloads_from_the_other(
        two_servers: tuple[LiveServer, LiveServer]) -> None:
    first, second = two_servers
    token = first.token(scope="write")
    run_id = new_run_id()
    Api(first.url, token)("PUT", f"/api/v1/runs/{run_id}", json={})
    assert Api(first.url, token)("PUT", f"/api/v1/runs/{run_id}/files/m/w.bin",
                                 data=b"weights").ok
    assert Api(second.url, token)("GET", f"/api/v1/runs/{run_id}/files/m/w.bin").content == \
        b"weights"


def test_a_token_revoked_through_one_server_is_refused_by_all(
        two_servers: tuple[LiveServer, LiveServer]) -> None:
    first, second = two_servers
    admin = Api(first.url, first.token(scope="admin"))
    made = admin("POST", "/api/v1/tokens", json={"name": "short-lived", "scope": "read"}).json()
    reader = Api(second.url, made["token"])
    assert reader("GET", "/api/v1/runs").status_code == 200
    assert admin("DELETE", "/api/v1/tokens/short-lived").status_code == 200
    assert reader("GET", "/api/v1/runs").status_code == 401


def test_nul_and_huge_values_are_4xx_on_postgres(two_servers: tuple[LiveServer, LiveServer]
                                                 ) -> None:
    first, _ = two_servers
    api = Api(first.url, first.token(scope="write"))
    run_id = new_run_id()
    api("PUT", f"/api/v1/runs/{run_id}", json={})
    for body in ({"start": 0, "end": 1, "tags": {"k": "a\x00b"}},
                 {"start": 0, "end": 1, "params": {"p": "\x00"}},
                 {"start": 2**63, "end": 2**63 + 1}):
        response = api("POST", f"/api/v1/runs/{run_id}/batches", json=body)
        assert response.status_code == 422, response.text
    assert api("PUT", f"/api/v1/runs/{run_id}", json={"name": "a\x00"}).status_code == 422
    assert api("GET", "/api/v1/runs", params={"project": "\x00"}).status_code == 422
    big = {"start": 0, "end": 1, "params": {"big": 10**40, "neg": -(10**40)}}
    assert api("POST", f"/api/v1/runs/{run_id}/batches", json=big).json()["stored"]
    assert api("GET", f"/api/v1/runs/{run_id}").json()["params"] == {"big": 10**40,
                                                                     "neg": -(10**40)}
