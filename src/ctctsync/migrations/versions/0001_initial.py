"""Initial schema of the control plane (branch ``control``): users, API tokens,
integrations, OAuth states, runs, run logs, warehouse settings.

The connector's bookmark tables are on the ``state`` branch (``state_0001``). Stores
migrated before the split have them from an older version of this revision; ``state_0001``
adopts them.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = ("control",)
depends_on = None


def upgrade() -> None:
    # Parents before children: the foreign keys need their referred tables.
    _create_users()
    _create_warehouse_settings()
    _create_api_tokens()
    _create_integrations()
    _create_oauth_states()
    _create_runs()
    _create_run_logs()


def _create_users() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )


def _create_warehouse_settings() -> None:
    op.create_table(
        "warehouse_settings",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("destination", sa.String(length=40), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("dataset", sa.String(length=63), nullable=False),
        sa.Column("credentials_encrypted", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warehouse_settings")),
    )


def _create_api_tokens() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )


def _create_integrations() -> None:
    op.create_table(
        "integrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("state_reason", sa.Text(), nullable=True),
        sa.Column("frequency_hours", sa.Integer(), nullable=False),
        sa.Column("history_start", sa.Date(), nullable=False),
        sa.Column("tables", sa.JSON(), nullable=False),
        sa.Column("auth_method", sa.String(length=10), nullable=True),
        sa.Column("credentials_encrypted", sa.Text(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_run_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_integrations_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integrations")),
        sa.UniqueConstraint("name", name=op.f("uq_integrations_name")),
    )


def _create_oauth_states() -> None:
    op.create_table(
        "oauth_states",
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integrations.id"],
            name=op.f("fk_oauth_states_integration_id_integrations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("state", name=op.f("pk_oauth_states")),
    )


def _create_runs() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("tables_requested", sa.JSON(), nullable=True),
        sa.Column("full_refresh", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("worker_id", sa.String(length=100), nullable=True),
        sa.Column("rows", sa.JSON(), nullable=False),
        sa.Column("table_status", sa.JSON(), nullable=False),
        sa.Column("api_calls", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("failure_type", sa.String(length=20), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("resume_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integrations.id"],
            name=op.f("fk_runs_integration_id_integrations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"],
            ["users.id"],
            name=op.f("fk_runs_requested_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    op.create_index(
        "ix_runs_integration_created", "runs", ["integration_id", "created_at"], unique=False
    )
    op.create_index("ix_runs_status_created", "runs", ["status", "created_at"], unique=False)
    _create_run_guards()


GUARDED_STATUSES = ("queued", "running")
"""At most one run per integration in each of these statuses: partial unique indexes, so the
database, not the scheduler's care, rules out a double queue or a double claim."""


def _create_run_guards() -> None:
    for status in GUARDED_STATUSES:
        where = sa.text(f"status = '{status}'")
        op.create_index(
            f"uq_runs_one_{status}",
            "runs",
            ["integration_id"],
            unique=True,
            sqlite_where=where,
            postgresql_where=where,
        )


def _drop_run_guards() -> None:
    for status in reversed(GUARDED_STATUSES):
        where = sa.text(f"status = '{status}'")
        op.drop_index(
            f"uq_runs_one_{status}", table_name="runs", sqlite_where=where, postgresql_where=where
        )


def _create_run_logs() -> None:
    op.create_table(
        "run_logs",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_run_logs_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "seq", name=op.f("pk_run_logs")),
    )


def downgrade() -> None:
    op.drop_table("run_logs")
    _drop_run_guards()
    op.drop_index("ix_runs_status_created", table_name="runs")
    op.drop_index("ix_runs_integration_created", table_name="runs")
    # Children before parents, the reverse of upgrade().
    for table in ("runs", "oauth_states", "integrations", "api_tokens", "warehouse_settings"):
        op.drop_table(table)
    op.drop_table("users")
