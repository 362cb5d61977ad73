"""Each run's warnings: what a ``succeeded`` run could not load (issue 8 §1, "no silent
loss"), e.g. ``contact_tracking: 1 campaign deleted during the run: 11``. NULL for runs
recorded before: they had none to show.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("warnings", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("warnings")
