"""Migration 0002 on a database written at 0001: the data is kept and its new summaries filled
in (params' numbers, metric extremes and counts, rollups, run keys), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text

from autolog.server import query, series
from autolog.server.db import MIGRATIONS, Database

from .live import Postgres, postgres_or_skip, schema_head

RUN = "ab" * 16


def _at_0001(url: str) -> None:
    db = Database(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with db.write() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.execute(text("INSERT INTO runs (id, name, project, status, start_time, created) "
                          "VALUES (:id, 'old', 'p', 'FINISHED', 5, 5)"), {"id": RUN})
        conn.execute(text("INSERT INTO params (run_id, key, value) VALUES (:r, 'lr', '0.01'), "
                          "(:r, 'opt', '\"adam\"'), (:r, 'n', '\"12\"')"), {"r": RUN})
        conn.execute(text("INSERT INTO tags (run_id, key, value) VALUES (:r, 'team', 'x')"),
                     {"r": RUN})
        points = [{"r": RUN, "s": i, "v": None if i == 7 else float(i % 50), "t": i}
                  for i in range(1000)]
        conn.execute(text("INSERT INTO metrics (run_id, key, step, value, timestamp) VALUES "
                          "(:r, 'loss', :s, :v, :t)"), points)
        conn.execute(text("INSERT INTO latest_metrics (run_id, key, value, step, timestamp) "
                          "VALUES (:r, 'loss', 49.0, 999, 999)"), {"r": RUN})
    db.dispose()


def _check(url: str) -> None:
    db = Database(url)
    try:
        assert db.migrate() == schema_head()  # 0002 filled the UI columns (and later ones ran)
        detail = query.get_run(db, RUN)
        assert detail["params"] == {"lr": 0.01, "opt": "adam", "n": "12"}
        assert detail["metric_summary"]["loss"] == {"last": 49.0, "min": 0.0, "max": 49.0,
                                                    "step": 999, "count": 1000}
        with db.read() as conn:
            nums = dict(conn.execute(text("SELECT key, num FROM params")).all())
            assert nums == {"lr": 0.01, "opt": None, "n": 12.0}
            seqs = conn.execute(text("SELECT DISTINCT run_seq FROM params")).scalars().all()
            assert seqs == [conn.execute(text("SELECT seq FROM runs")).scalar_one()]
            buckets = series.bucketed(conn, RUN, "loss", 10, None, None)
        assert buckets is not None and buckets["total"] == 1000 and buckets["downsampled"]
        assert max(buckets["max"]) == 49.0 and buckets["steps"][-1] == 999
        assert json.dumps(buckets)  # strict JSON: the NaN point is a null, not a NaN
    finally:
        db.dispose()


def test_upgrade_from_0001_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _at_0001(url)
    _check(url)


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    cluster = postgres_or_skip()
    yield cluster
    cluster.stop()


@pytest.mark.postgres
def test_upgrade_from_0001_on_postgresql(postgres: Postgres) -> None:
    url = postgres.database()
    _at_0001(url)
    _check(url)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda inner: st.lists(inner, max_size=3), max_leaves=5))
def test_param_json_is_json_dumps(value: object) -> None:
    from autolog.server.ingest import json_scalar

    assert json_scalar(value) == json.dumps(value)
