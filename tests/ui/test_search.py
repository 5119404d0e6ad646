"""Filters and sorts of the runs table against a reference computed in Python from
``autolog.list_runs()`` (``autolog.filters.matches``), on the SQLite index and on PostgreSQL."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import autolog
from autolog import filters
from autolog.server import query as reading
from autolog.server import search
from autolog.ui.index import Index

EXPRESSIONS = [
    "params.lr >= 1e-3",
    "params.lr < 0.001 or params.batch = 64",
    "params.lr = '0.5'",
    "params.lr > 0.2",  # the string "0.5" reads as a number
    "params.opt = adam",
    "params.opt ~ ADAM",
    "params.opt in (sgd, 'Adam W')",
    "params.opt != sgd",
    "not params.opt = sgd",
    "params.flag = true and params.batch exists",
    "params.`model.depth` >= 11",
    "params.model.depth exists",
    "not params.lr exists",
    "metrics.acc > 0.5",
    "metrics.acc exists and not metrics.acc <= 0.5",
    "metrics.loss:min < 0.05",
    "metrics.loss:max >= 0.5 or metrics.acc < 0.1",
    "metrics.loss < 0.1 and tags.team = vision",
    "tags.best = yes",
    "tags.team in (nlp, speech) and not tags.best exists",
    "tags.team ~ IS",
    "status = finished and project = alpha",
    "status in (CRASHED, RUNNING)",
    "name ~ run-1",
    "name = 'run-07' or name = \"run-08\"",
    "(params.lr >= 1e-3 or params.batch = 16) and (tags.team != vision)",
    "duration >= 0",
    "end_time exists and start_time > 2020-01-01",
    "not (end_time < 1)",
]


def _top_level(root: Path) -> list[autolog.RunRecord]:
    """The top-level runs; a crashed run ends when its journal was last written (the end the
    index, like ``autolog sync``, gives it)."""
    found = [r for r in autolog.list_runs(root) if r.parent_id is None]
    for record in found:
        if record.status == "CRASHED":
            record.end_time = int((record.path / "events.jsonl").stat().st_mtime * 1000)
    return found


def _ids(db: Any, expression: str, **extra: Any) -> tuple[list[str], int]:
    query = search.RunQuery(filter=filters.parse(expression), limit=1000, **extra)
    page = search.search(db, query)
    return [r["id"] for r in page["runs"]], page["total"]


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_a_filter_selects_what_the_python_reference_selects(ui_store: Path, index: Index,
                                                            expression: str) -> None:
    node = filters.parse(expression)
    expected = {r.id for r in _top_level(ui_store) if filters.matches(node, r)}
    found, total = _ids(index.db, expression)
    assert set(found) == expected and total == len(expected), expression


def test_the_reference_is_not_trivial(ui_store: Path) -> None:
    runs = _top_level(ui_store)
    sizes = [sum(filters.matches(filters.parse(e), r) for r in runs) for e in EXPRESSIONS]
    counts = dict(zip(EXPRESSIONS, sizes, strict=True))
    assert all(0 < size < len(runs) for size in sizes[:-3]), counts


def _sort_value(record: autolog.RunRecord, key: str) -> Any:
    field = filters.parse_sort(key).field
    value = filters.field_value(field, record)
    if field.kind == "params" and value is not None:
        number = filters.number_of(value)
        return (0, number) if number is not None else (1, filters.text_of(value))
    return value


@pytest.mark.parametrize("sort", ["-metrics.acc", "metrics.acc", "metrics.loss:min",
                                  "-metrics.loss:max", "params.lr", "-params.lr", "-params.opt",
                                  "tags.team", "name", "-name", "start_time", "-duration",
                                  "status"])
def test_sorting_puts_runs_in_the_reference_order_missing_keys_last(
        ui_store: Path, index: Index, sort: str) -> None:
    records = {r.id: r for r in _top_level(ui_store)}
    query = search.RunQuery(sort=filters.parse_sort(sort), limit=1000)
    ids = [r["id"] for r in search.search(index.db, query)["runs"]]
    assert set(ids) == set(records)
    values = [_sort_value(records[i], sort.lstrip("-")) for i in ids]
    present = [v for v in values if v is not None]
    assert values[:len(present)] == present, "runs lacking the key come last"
    descending = sort.startswith("-")
    assert present == sorted(present, reverse=descending), sort


def test_pages_cover_every_run_once_in_order(ui_store: Path, index: Index) -> None:
    everything = search.search(index.db, search.RunQuery(
        sort=filters.parse_sort("-metrics.acc"), limit=1000, all=True))["runs"]
    seen = []
    for offset in range(0, len(everything) + 7, 7):
        page = search.search(index.db, search.RunQuery(
            sort=filters.parse_sort("-metrics.acc"), limit=7, offset=offset, all=True))
        assert page["total"] == len(everything)
        seen += [r["id"] for r in page["runs"]]
    assert seen == [r["id"] for r in everything]


def test_top_level_children_parent_and_all(ui_store: Path, index: Index) -> None:
    runs = autolog.list_runs(ui_store)
    parent = next(r for r in runs if any(c.parent_id == r.id for c in runs))
    children = {r.id for r in runs if r.parent_id == parent.id}
    top = search.search(index.db, search.RunQuery(limit=1000))
    row = next(r for r in top["runs"] if r["id"] == parent.id)
    assert row["children"] == len(children) >= 3
    assert all(r["parent_id"] is None for r in top["runs"])
    page = search.search(index.db, search.RunQuery(parent=parent.id, limit=1000))
    assert {r["id"] for r in page["runs"]} == children
    assert search.search(index.db, search.RunQuery(all=True, limit=1))["total"] == len(runs)


def test_columns_and_full_text(ui_store: Path, index: Index) -> None:
    columns = [filters.parse_field(c) for c in
               ("params.lr", "metrics.loss:min", "metrics.loss:max", "metrics.acc", "tags.team")]
    page = search.search(index.db, search.RunQuery(columns=columns, limit=1000))
    records = {r.id: r for r in _top_level(ui_store)}
    for row in page["runs"]:
        record = records[row["id"]]
        losses = [v for _, v, _ in record.history("loss")] if "loss" in record.metrics else []
        if "lr" in record.params:
            assert row["values"]["params.lr"] == record.params["lr"]
        else:
            assert "params.lr" not in row["values"]
        if losses:
            assert row["values"]["metrics.loss:min"] == min(losses)
            assert row["values"]["metrics.loss:max"] == max(losses)
        acc = record.metrics.get("acc")
        if acc is not None:
            assert row["values"]["metrics.acc"] == ("NaN" if math.isnan(acc) else acc)
    found = search.search(index.db, search.RunQuery(q="SPEECH", limit=1000))["runs"]
    assert {r["id"] for r in found} == {r.id for r in records.values()
                                        if r.tags.get("team") == "speech"}


# -- PostgreSQL: the same runs, delivered by `autolog sync` to a server on PostgreSQL ----------


@pytest.fixture(scope="module")
def postgres_db(ui_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from autolog.cli import main as cli_main
    from autolog.server.db import Database

    from ..server.live import LiveServer, postgres_or_skip

    cluster = postgres_or_skip()
    url = cluster.database()
    workdir = tmp_path_factory.mktemp("pg-search")
    store = workdir / "autolog-runs"
    import shutil

    shutil.copytree(ui_store, store, ignore=shutil.ignore_patterns(".index*", "delivery"))
    server = LiveServer(url, workdir)
    server.start()
    mp = pytest.MonkeyPatch()
    try:
        mp.setenv("AUTOLOG_HTTP_URL", server.url)
        mp.setenv("AUTOLOG_HTTP_TOKEN", server.token("sync", "write"))
        assert cli_main(["sync", "--to", "http", "--dir", str(store), "--json"]) == 0
        db = Database(url)
        yield db
        db.dispose()
    finally:
        mp.undo()
        server.stop()
        cluster.stop()


@pytest.mark.postgres
def test_filters_and_sorts_on_postgresql_match_sqlite(postgres_db: Any, index: Index,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    capsys.readouterr()
    for expression in EXPRESSIONS:
        sqlite_ids, sqlite_total = _ids(index.db, expression, sort=filters.parse_sort("name"))
        pg_ids, pg_total = _ids(postgres_db, expression, sort=filters.parse_sort("name"))
        assert (pg_ids, pg_total) == (sqlite_ids, sqlite_total), expression
    for sort in ("-metrics.acc", "params.lr", "-params.opt", "metrics.loss:min"):
        query = search.RunQuery(sort=filters.parse_sort(sort), limit=1000)
        pg = [r["id"] for r in search.search(postgres_db, query)["runs"]]
        lite = [r["id"] for r in search.search(index.db, query)["runs"]]
        assert pg == lite, sort


@pytest.mark.postgres
def test_keys_and_default_columns_on_postgresql_match_sqlite(postgres_db: Any,
                                                             index: Index) -> None:
    projects = [p["name"] for p in reading.projects(index.db)]
    chosen = 0
    for project in [*projects, None]:
        lite, pg = reading.keys(index.db, project), reading.keys(postgres_db, project)
        assert pg["columns"] == lite["columns"], project
        assert {k: set(v) for k, v in pg.items()} == {k: set(v) for k, v in lite.items()}
        chosen += len(lite["columns"])
    assert chosen >= len(projects)  # most projects have metrics
