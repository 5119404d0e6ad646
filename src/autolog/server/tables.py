"""The server's tables, as SQLAlchemy Core metadata (the migrations create exactly these).

Core rather than ORM: ingestion is bulk inserts and upserts, and reading builds plain dicts.
There are no foreign keys: a run's existence is checked once per request, and rows are never
deleted, so a per-row constraint check on every metric point would only cost insert time.
Deduplication is the database's job: ``batches`` has a unique key on the idempotency key of a
delivery, so several server processes on one PostgreSQL store a retried batch once.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = ["artifacts", "batches", "files", "latest_metrics", "media", "metadata", "metrics",
           "models", "params", "runs", "tags", "tokens"]

metadata = MetaData()

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
    Index("ix_runs_list", "start_time", "id"),
    Index("ix_runs_project", "project", "start_time"),
    Index("ix_runs_status", "status"),
)

params = Table(
    "params", metadata,
    Column("run_id", String(32), primary_key=True),
    Column("key", String(500), primary_key=True),
    Column("value", Text, nullable=False),  # JSON text of a scalar
)

tags = Table(
    "tags", metadata,
    Column("run_id", String(32), primary_key=True),
    Column("key", String(500), primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_tags_key_value", "key", "run_id"),
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

latest_metrics = Table(
    "latest_metrics", metadata,
    Column("run_id", String(32), primary_key=True),
    Column("key", String(500), primary_key=True),
    Column("value", Float),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
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
