"""The campaign ledger: campaign_ledger (branch ``state``).

Per integration, table and sent campaign: what the campaign planner knew at the campaign's
last check (its counts per tracking kind, the instant each kind was read up to, when it was
last read whole, its summary row), as one JSON entry. Saved with the table's bookmark, in
the same transaction, after the warehouse commit (``StateStore.set(..., ledger=...)``).

Revision ID: state_0004
Revises: state_0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "state_0004"
down_revision = "state_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaign_ledger",
        sa.Column("integration", sa.String(length=64), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("entry", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "integration", "table_name", "campaign_id", name=op.f("pk_campaign_ledger")
        ),
    )


def downgrade() -> None:
    op.drop_table("campaign_ledger")
