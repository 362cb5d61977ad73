"""API v3 (issue 9): the API version of each integration, PKCE verifiers of pending
authorizations, what a v3 authorization lacks, and the installation's application.

- ``integrations.api_version``: ``v2`` for every existing row (the server default: they were
  authorized with v2 credentials); new integrations are created ``v3`` by the services.
- ``integrations.access_problems``: the scopes/privileges a v3 authorization lacks.
- ``oauth_states.code_verifier_encrypted``: the PKCE verifier (Fernet), kept server-side.
- ``app_registration``: the client id, secret (Fernet) and redirect URI entered once by an
  administrator.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("integrations") as batch:
        batch.add_column(
            sa.Column("api_version", sa.String(length=2), server_default="v2", nullable=False)
        )
        batch.add_column(sa.Column("access_problems", sa.JSON(), nullable=True))
    with op.batch_alter_table("oauth_states") as batch:
        batch.add_column(sa.Column("code_verifier_encrypted", sa.Text(), nullable=True))
    op.create_table(
        "app_registration",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("client_id", sa.String(length=200), nullable=False),
        sa.Column("client_secret_encrypted", sa.Text(), nullable=True),
        sa.Column("redirect_uri", sa.Text(), nullable=True),
        sa.Column("authz_base_url", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["users.id"],
            name=op.f("fk_app_registration_updated_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_registration")),
    )


def downgrade() -> None:
    op.drop_table("app_registration")
    with op.batch_alter_table("oauth_states") as batch:
        batch.drop_column("code_verifier_encrypted")
    with op.batch_alter_table("integrations") as batch:
        batch.drop_column("access_problems")
        batch.drop_column("api_version")
