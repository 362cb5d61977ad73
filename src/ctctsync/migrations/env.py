"""Alembic environment: always run by ``ctctsync.db`` (``ensure_schema``, ``upgrade``,
``downgrade``) on a connection it passes in, inside its transaction.

``target_metadata`` matters only to autogenerate and comparisons; the caller imports
``ctctsync.control.models`` first so the control plane's tables are on it. This file does
not, so that the bottom of the store layer never imports the control plane.
"""

from __future__ import annotations

from alembic import context

from ctctsync.db import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - the alembic CLI is not supported
    raise RuntimeError("run migrations through ctctsync.db.ensure_schema")

# Tables in the store that are not the control plane's models, kept out of autogenerate and
# comparisons (which would otherwise propose dropping them): the fleet's shared rate budget,
# created on first use by ctctsync.api.shared_budget (DEFAULT_TABLE), and the job engine's.
UNMODELLED_TABLES = frozenset({
    "ctctsync_rate_budget",
    # procrastinate's own tables (the worker fleet, ctctsync.control.fleet.ensure_schema)
    "procrastinate_jobs", "procrastinate_events", "procrastinate_periodic_defers",
    "procrastinate_workers",
})


def _include(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object,
             ) -> bool:
    return not (type_ == "table" and reflected and name in UNMODELLED_TABLES)


context.configure(
    connection=connection,
    target_metadata=metadata,
    include_object=_include,
    # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
