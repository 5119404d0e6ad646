"""The server's tables, as SQLAlchemy Core metadata (the migrations create exactly these).

Core rather than ORM: ingestion is bulk inserts and upserts, and reading builds plain dicts.
There are no foreign keys: a run's existence is checked once per request, and rows are never
deleted, so a per-row constraint check on every metric point would only cost insert time.
Deduplication is the database's job: ``batches`` has a unique key on the idempotency key of a
delivery, so several server processes on one PostgreSQL store a retried batch once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from ..journal.codec import float_from_json, float_to_json

__all__ = ["ROLLUP_SIZES", "artifacts", "batches", "files", "latest_metrics", "media", "metadata",
           "metric_in", "metric_out", "metric_rollups", "metrics", "models", "param_in", "params",
           "runs", "tags", "tokens"]

metadata = MetaData()

#: characters of a param's text kept for filtering and sorting (an index entry stays small)
TEXT_PREFIX = 200



# -- values between JSON and the columns (no pydantic: the CLI reads the index with these) ---


def metric_in(value: float | str) -> float | None:
    """A request's metric value as the database stores it (NULL for NaN)."""
    number = float_from_json(value)
    return None if number != number else number


def metric_out(value: float | None) -> float | str:
    """A stored metric value as JSON can carry it (a NULL value column is NaN)."""
    return "NaN" if value is None else float_to_json(value)


def param_in(value: Any) -> Any:
    """Non-finite float params become their names, as the journal writes them."""
    return float_to_json(value) if isinstance(value, float) else value


#: an auto-incrementing 64-bit key (SQLite only auto-increments an ``INTEGER PRIMARY KEY``)
BigId = BigInteger().with_variant(Integer(), "sqlite")

runs = Table(
    "runs", metadata,
    Column("id", String(32), primary_key=True),
    Column("name", Text, nullable=False),
    Column("project", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("parent_id", String(32)),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger),
    Column("created", BigInteger, nullable=False),
    Column("note", Text),  # a free-text note edited in the UI
    Column("deleted", BigInteger),  # when it was soft-deleted (ms); NULL: not deleted
    # a small integer key: filters join params, metrics and tags through it (an integer probe
    # costs a fraction of a 32-character one); PostgreSQL numbers it, SQLite gets max + 1
    Column("seq", BigInteger, Identity(), nullable=False),
    Index("ix_runs_list", "start_time", "id"),
    Index("ix_runs_project", "project", "start_time"),
    Index("ix_runs_status", "status"),
    Index("ix_runs_parent", "parent_id", "start_time"),
    # covers the scope checks and the tie-break of a sort: an index walk never reads the table
    Index("ix_runs_seq", "seq", "project", "parent_id", "deleted", "start_time", "id"),
)

params = Table(
    "params", metadata,
    Column("run_id", String(32), primary_key=True),
    Column("key", String(500), primary_key=True),
    Column("value", Text, nullable=False),  # JSON text of a scalar
    Column("num", Float),  # the value as a number, when it is one (or a string that reads as one)
    Column("text", String(TEXT_PREFIX)),  # its first characters as filters compare text
    Column("run_seq", BigInteger),  # runs.seq
    Index("ix_params_num", "key", "num", "run_seq"),
    Index("ix_params_text", "key", "text", "run_seq"),
)

tags = Table(
    "tags", metadata,
    Column("run_id", String(32), primary_key=True),
    Column("key", String(500), primary_key=True),
    Column("value", Text, nullable=False),
    Column("text", String(TEXT_PREFIX)),  # the value's first characters, for filters
    Column("run_seq", BigInteger),  # runs.seq
    Index("ix_tags_key_value", "key", "run_id"),
    Index("ix_tags_text", "key", "text", "run_seq"),
)

metrics = Table(
    "metrics", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("run_id", String(32), nullable=False),
    Column("key", String(500), nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("value", Float),  # NULL is NaN (SQLite cannot store NaN)
    Column("timestamp", BigInteger, nullable=False),
    Index("ix_metrics_history", "run_id", "key", "step"),
)

latest_metrics = Table(  # per run and key: the last point, the extremes and the point count
    "latest_metrics", metadata,
    Column("run_id", String(32), primary_key=True),
    Column("key", String(500), primary_key=True),
    Column("value", Float),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("vmin", Float),  # NaN never counts; NULL when every point was NaN
    Column("vmax", Float),
    Column("count", BigInteger, nullable=False, server_default="0"),
    Column("run_seq", BigInteger),  # runs.seq
    Index("ix_latest_value", "key", "value", "run_seq"),
    Index("ix_latest_min", "key", "vmin", "run_seq"),
    Index("ix_latest_max", "key", "vmax", "run_seq"),
)

#: points per rollup block at each level (level 1 is 16 points, level 2 64... level 6 16,384)
ROLLUP_SIZES = (16, 64, 256, 1024, 4096, 16384)

metric_rollups = Table(  # a series' points in blocks of ROLLUP_SIZES[level - 1], logging order
    "metric_rollups", metadata,
    Column("run_id", String(32), primary_key=True),
    Column("key", String(500), primary_key=True),
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("block", BigInteger, primary_key=True, autoincrement=False),
    Column("count", Integer, nullable=False),
    Column("step_min", BigInteger, nullable=False),
    Column("step_max", BigInteger, nullable=False),
    Column("vmin", Float),
    Column("vmax", Float),
    Column("last_step", BigInteger, nullable=False),
    Column("last_value", Float),
    Column("last_ts", BigInteger, nullable=False),
)

batches = Table(
    "batches", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("run_id", String(32), nullable=False),
    Column("offset_start", BigInteger, nullable=False),
    Column("offset_end", BigInteger, nullable=False),
    Column("part", Integer, nullable=False),
    Column("events", Integer, nullable=False),
    Column("received", BigInteger, nullable=False),
    UniqueConstraint("run_id", "offset_start", "offset_end", "part", name="uq_batches_key"),
)

artifacts = Table(  # the names a run logged (a file or a directory each), in logging order
    "artifacts", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("run_id", String(32), nullable=False),
    Column("name", String(1024), nullable=False),
    Column("created", BigInteger, nullable=False),
    UniqueConstraint("run_id", "name", name="uq_artifacts_name"),
)

files = Table(  # the files stored under the artifact root, one row per path
    "files", metadata,
    Column("run_id", String(32), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("updated", BigInteger, nullable=False),
)

models = Table(
    "models", metadata,
    Column("run_id", String(32), primary_key=True),
    Column("name", String(1024), primary_key=True),
    Column("spec", Text, nullable=False),  # JSON object
    Column("updated", BigInteger, nullable=False),
)

media = Table(  # images, histograms, tables, texts, plots: one row per file (migration 0002)
    "media", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("run_id", String(32), nullable=False),
    Column("key", String(500), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("path", String(1024), nullable=False),  # under the run's artifact root
    Column("image", String(1024)),  # a plot's drawing
    Column("meta", Text, nullable=False),  # JSON object
    UniqueConstraint("run_id", "path", name="uq_media_path"),
    Index("ix_media_key", "run_id", "key", "step"),
)

tokens = Table(
    "tokens", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("scope", String(16), nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("revoked", BigInteger),
    Index("ix_tokens_name", "name"),
)
