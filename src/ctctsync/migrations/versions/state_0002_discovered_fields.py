"""The connector's record of schema drift: discovered_fields (branch ``state``).

A field a run met that the table registry does not know, per integration and table, with
when it was first and last seen (``ctctsync discover`` and the UI show it as "new field
available").

Revision ID: state_0002
Revises: state_0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "state_0002"
down_revision = "state_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "discovered_fields",
        sa.Column("integration", sa.String(length=64), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("field", sa.String(length=255), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "integration", "table_name", "field", name=op.f("pk_discovered_fields")
        ),
    )


def downgrade() -> None:
    op.drop_table("discovered_fields")
