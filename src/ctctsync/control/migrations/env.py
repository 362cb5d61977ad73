"""Alembic environment: always run programmatically by ``upgrade_database`` with a connection."""

from __future__ import annotations

from alembic import context

from ctctsync.control import models  # noqa: F401  (registers the tables on the metadata)
from ctctsync.db import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - the CLI path is not supported
    raise RuntimeError("run migrations through ctctsync.control.database.upgrade_database")

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
