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
