"""For the web UI: run notes and soft deletion, an integer run key that filters join through,
params as numbers and text, metric extremes and counts, rollup blocks of every series, and the
covering indexes that sorting and filtering use.

Existing data is filled in: params' number and text from their JSON value, each series' extremes,
count and rollup blocks from its points.

Revision ID: 0002
Revises: 0001
Create Date: 2026-06-01
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


TEXT_PREFIX = 200


def upgrade() -> None:
    _add_run_seq()
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("note", sa.Text(), nullable=True))
        batch.add_column(sa.Column("deleted", sa.BigInteger(), nullable=True))
    op.create_index("ix_runs_parent", "runs", ["parent_id", "start_time"])
    op.create_index("ix_runs_seq", "runs", ["seq", "project", "parent_id", "deleted", "start_time",
                                           "id"])
    with op.batch_alter_table("params") as batch:
        batch.add_column(sa.Column("num", sa.Float(), nullable=True))
        batch.add_column(sa.Column("text", sa.String(TEXT_PREFIX), nullable=True))
        batch.add_column(sa.Column("run_seq", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("tags") as batch:
        batch.add_column(sa.Column("text", sa.String(TEXT_PREFIX), nullable=True))
        batch.add_column(sa.Column("run_seq", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("latest_metrics") as batch:
        batch.add_column(sa.Column("vmin", sa.Float(), nullable=True))
        batch.add_column(sa.Column("vmax", sa.Float(), nullable=True))
        batch.add_column(sa.Column("count", sa.BigInteger(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("run_seq", sa.BigInteger(), nullable=True))
    for table in ("params", "tags", "latest_metrics"):
        op.execute(f"UPDATE {table} SET run_seq = (SELECT seq FROM runs "
                   f"WHERE runs.id = {table}.run_id)")
    op.execute(f"UPDATE tags SET text = substr(value, 1, {TEXT_PREFIX})")
    op.create_index("ix_tags_text", "tags", ["key", "text", "run_seq"])
    op.create_index("ix_params_num", "params", ["key", "num", "run_seq"])
    op.create_index("ix_params_text", "params", ["key", "text", "run_seq"])
    for name, column in (("ix_latest_value", "value"), ("ix_latest_min", "vmin"),
                         ("ix_latest_max", "vmax")):
        op.create_index(name, "latest_metrics", ["key", column, "run_seq"])
    op.create_table(
        "metric_rollups",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("key", sa.String(500), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("block", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("step_min", sa.BigInteger(), nullable=False),
        sa.Column("step_max", sa.BigInteger(), nullable=False),
        sa.Column("vmin", sa.Float(), nullable=True),
        sa.Column("vmax", sa.Float(), nullable=True),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
        sa.Column("last_value", sa.Float(), nullable=True),
        sa.Column("last_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "key", "level", "block"),
    )
    conn = op.get_bind()
    _fill_params(conn)
    _fill_series(conn)


def _add_run_seq() -> None:
    """``runs.seq``: PostgreSQL numbers existing rows as it adds the identity column; SQLite
    takes the rowid order, then the column becomes NOT NULL (a table copy, in batch mode)."""
    if op.get_bind().dialect.name == "postgresql":
        op.add_column("runs", sa.Column("seq", sa.BigInteger(), sa.Identity(), nullable=False))
        return
    op.add_column("runs", sa.Column("seq", sa.BigInteger(), nullable=True))
    op.execute("UPDATE runs SET seq = rowid")
    with op.batch_alter_table("runs") as batch:
        batch.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)


def _fill_params(conn: Any) -> None:
    from autolog.filters import number_of, text_of

    params = sa.table("params", sa.column("run_id"), sa.column("key"), sa.column("value"),
                      sa.column("num"), sa.column("text"))
    rows = conn.execute(sa.select(params.c.run_id, params.c.key, params.c.value)).all()
    updates = [{"r": run_id, "k": key, "n": number_of(json.loads(value)),
                "t": text_of(json.loads(value))[:TEXT_PREFIX]} for run_id, key, value in rows]
    if updates:
        conn.execute(params.update().where(params.c.run_id == sa.bindparam("r"),
                                           params.c.key == sa.bindparam("k"))
                     .values(num=sa.bindparam("n"), text=sa.bindparam("t")), updates)


def _fill_series(conn: Any) -> None:
    """Recompute extremes, counts and rollups from the points, one series at a time."""
    from autolog.server import series

    metrics = sa.table("metrics", sa.column("id"), sa.column("run_id"), sa.column("key"),
                       sa.column("step"), sa.column("value"), sa.column("timestamp"))
    latest = sa.table("latest_metrics", sa.column("run_id"), sa.column("key"),
                      sa.column("vmin"), sa.column("vmax"), sa.column("count"))
    keys = conn.execute(sa.select(latest.c.run_id, latest.c.key)).all()
    for run_id, key in keys:
        points = conn.execute(sa.select(metrics.c.step, metrics.c.value, metrics.c.timestamp)
                              .where(metrics.c.run_id == run_id, metrics.c.key == key)
                              .order_by(metrics.c.id)).all()
        if not points:
            continue
        steps, values, stamps = (list(c) for c in zip(*points, strict=True))
        numbers = [v for v in values if v is not None]
        conn.execute(latest.update().where(latest.c.run_id == run_id, latest.c.key == key)
                     .values(vmin=min(numbers, default=None), vmax=max(numbers, default=None),
                             count=len(points)))
        series.upsert_rollups(conn, series.rollup_rows(run_id, key, 0,
                                                       (steps, values, stamps)))


def downgrade() -> None:
    op.drop_table("metric_rollups")
    for name in ("ix_latest_value", "ix_latest_min", "ix_latest_max"):
        op.drop_index(name, "latest_metrics")
    with op.batch_alter_table("latest_metrics") as batch:
        for column in ("vmin", "vmax", "count", "run_seq"):
            batch.drop_column(column)
    op.drop_index("ix_params_num", "params")
    op.drop_index("ix_params_text", "params")
    with op.batch_alter_table("params") as batch:
        for column in ("num", "text", "run_seq"):
            batch.drop_column(column)
    op.drop_index("ix_tags_text", "tags")
    with op.batch_alter_table("tags") as batch:
        batch.drop_column("text")
        batch.drop_column("run_seq")
    op.drop_index("ix_runs_parent", "runs")
    op.drop_index("ix_runs_seq", "runs")
    with op.batch_alter_table("runs") as batch:
        for column in ("note", "deleted", "seq"):
            batch.drop_column(column)
