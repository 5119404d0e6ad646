"""Alembic environment: the server hands over an open connection inside its own transaction.

Run through :meth:`autolog.server.db.Database.migrate` (``autolog server migrate``); the caller
holds the migration lock and commits.
"""

from __future__ import annotations

from alembic import context

from autolog.server.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
