"""Initial schema: runs, params, tags, metrics, latest metrics, batches, artifacts, files,
models, tokens.

Revision ID: 0001
Revises:
Create Date: 2026-05-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _id() -> sa.Column:
    return sa.Column("id", BigId, autoincrement=True, nullable=False)


def _run_id() -> sa.Column:
    return sa.Column("run_id", sa.String(32), nullable=False)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("parent_id", sa.String(32), nullable=True),
        sa.Column("start_time", sa.BigInteger(), nullable=False),
        sa.Column("end_time", sa.BigInteger(), nullable=True),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_runs_list", "runs", ["start_time", "id"])
    op.create_index("ix_runs_project", "runs", ["project", "start_time"])
    op.create_index("ix_runs_status", "runs", ["status"])
    for name in ("params", "tags"):
        op.create_table(
            name,
            _run_id(),
            sa.Column("key", sa.String(500), nullable=False),
            sa.Column("value", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("run_id", "key"),
        )
    op.create_index("ix_tags_key_value", "tags", ["key", "run_id"])
    op.create_table(
        "metrics",
        _id(),
        _run_id(),
        sa.Column("key", sa.String(500), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_metrics_history", "metrics", ["run_id", "key", "step"])
    op.create_table(
        "latest_metrics",
        _run_id(),
        sa.Column("key", sa.String(500), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "key"),
    )
    op.create_table(
        "batches",
        _id(),
        _run_id(),
        sa.Column("offset_start", sa.BigInteger(), nullable=False),
        sa.Column("offset_end", sa.BigInteger(), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("received", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "offset_start", "offset_end", "part",
                            name="uq_batches_key"),
    )
    op.create_table(
        "artifacts",
        _id(),
        _run_id(),
        sa.Column("name", sa.String(1024), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "name", name="uq_artifacts_name"),
    )
    op.create_table(
        "files",
        _run_id(),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("updated", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "path"),
    )
    op.create_table(
        "models",
        _run_id(),
        sa.Column("name", sa.String(1024), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("updated", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "name"),
    )
    op.create_table(
        "tokens",
        _id(),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("revoked", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_tokens_name", "tokens", ["name"])


def downgrade() -> None:
    for name in ("tokens", "models", "files", "artifacts", "batches", "latest_metrics",
                 "metrics", "tags", "params", "runs"):
        op.drop_table(name)
