"""The metadata store's shared SQLAlchemy ``MetaData``.

Tables used by both the connector (bookmarks) and the control plane (users, integrations,
runs, logs) are declared on this one ``metadata`` so Alembic migrations cover them all.
The control plane adds its tables in ``ctctsync.control.models`` on the same object.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

bookmarks = sa.Table(
    "bookmarks",
    metadata,
    sa.Column("integration", sa.String(64), primary_key=True),
    sa.Column("table_name", sa.String(64), primary_key=True),
    sa.Column("last_run_date", sa.DateTime(timezone=True), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
"""Per integration and table: the ``lastRunDate`` the next incremental run starts from."""

bookmark_columns = sa.Table(
    "bookmark_columns",
    metadata,
    sa.Column("integration", sa.String(64), primary_key=True),
    sa.Column("table_name", sa.String(64), primary_key=True),
    sa.Column("columns", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
"""Per integration and table: the columns (a JSON list) loaded up to its bookmark.

A key-based table whose selected columns grow must be re-read from the history start (the
rows merged before hold NULL in the new column); comparing the selection with this record
tells the sync when. Written in the same transaction as the bookmark."""
