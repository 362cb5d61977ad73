"""Each integration's policy for fields the table registry does not know:
``integrations.new_columns`` (``ignore``, the default, or ``add``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("integrations") as batch:
        batch.add_column(
            sa.Column(
                "new_columns", sa.String(length=10), server_default="ignore", nullable=False
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("integrations") as batch:
        batch.drop_column("new_columns")
