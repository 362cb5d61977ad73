"""API budget (issue 10): per-key limits, run estimates and deferred runs.

- ``api_key_limits``: per API key (v2 key or v3 client id, by ``ctctsync.api.fingerprint``;
  never the key) its per-second and per-day limits (NULL: the installation's default) and a
  label to show.
- ``runs``: ``kind`` (incremental, first load, full refresh, re-sync), ``key_fingerprint``
  (whose quota it spends), ``estimated_calls`` and ``estimate_basis`` (the planner's
  estimate), ``table_calls`` (calls per table, what later estimates are made of) and
  ``defer_reason`` (why the quota guard deferred it; status ``deferred`` needs no schema
  change: ``status`` is a string), plus an index for today's calls per key.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_key_limits",
        sa.Column("fingerprint", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("api_version", sa.String(length=2), nullable=False),
        sa.Column("per_second", sa.Float(), nullable=True),
        sa.Column("per_day", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["users.id"],
            name=op.f("fk_api_key_limits_updated_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("fingerprint", name=op.f("pk_api_key_limits")),
    )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("key_fingerprint", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("estimated_calls", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("estimate_basis", sa.Text(), nullable=True))
        batch.add_column(sa.Column("table_calls", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("defer_reason", sa.Text(), nullable=True))
        batch.create_index("ix_runs_key_finished", ["key_fingerprint", "finished_at"])


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_key_finished")
        batch.drop_column("defer_reason")
        batch.drop_column("table_calls")
        batch.drop_column("estimate_basis")
        batch.drop_column("estimated_calls")
        batch.drop_column("key_fingerprint")
        batch.drop_column("kind")
    op.drop_table("api_key_limits")
