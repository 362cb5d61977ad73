"""The connector's bookmark tables: bookmarks and bookmark_columns (branch ``state``).

Adopts the tables where an older ctctsync created them outside this branch: stand-alone
state stores made them with ``metadata.create_all`` (no ``alembic_version``), and control
stores got them from the single-branch ``0001``. An existing table is kept as it is (same
schema, rows intact); only a missing one is created.

Revision ID: state_0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "state_0001"
down_revision = None
branch_labels = ("state",)
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "bookmarks" not in existing:
        _create_bookmarks()
    if "bookmark_columns" not in existing:
        _create_bookmark_columns()


def _create_bookmarks() -> None:
    op.create_table(
        "bookmarks",
        sa.Column("integration", sa.String(length=64), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("last_run_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("integration", "table_name", name=op.f("pk_bookmarks")),
    )


def _create_bookmark_columns() -> None:
    op.create_table(
        "bookmark_columns",
        sa.Column("integration", sa.String(length=64), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("columns", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("integration", "table_name", name=op.f("pk_bookmark_columns")),
    )


def downgrade() -> None:
    op.drop_table("bookmark_columns")
    op.drop_table("bookmarks")
