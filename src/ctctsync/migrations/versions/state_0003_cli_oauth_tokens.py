"""The CLI's Constant Contact v3 tokens: cli_oauth_tokens (branch ``state``).

One row per integration: the token set ``ctctsync auth login`` stored and every refresh
replaced (rotating refresh tokens -- constant-contact-v3-api.md §1.2), whether a person
must re-authorize, and why. Read and written by ``ctctsync.token_store.SqlTokenVault``.

Revision ID: state_0003
Revises: state_0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "state_0003"
down_revision = "state_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cli_oauth_tokens",
        sa.Column("integration", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("access_token", sa.Text(), nullable=False),
        sa.Column("refresh_token", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("obtained_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("needs_reauth", sa.Text(), nullable=True),
        sa.Column("seeded_from", sa.String(length=64), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("integration", name=op.f("pk_cli_oauth_tokens")),
    )


def downgrade() -> None:
    op.drop_table("cli_oauth_tokens")
