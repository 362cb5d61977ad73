"""Bind a pending OAuth authorization to the browser session that started it.

``oauth_states.binding_hash`` holds the SHA-256 of a random nonce kept in that session's
signed cookie; the callback is accepted only from a session presenting the same nonce.
Authorizations started through the REST API have none (the signed-in API user is their
binding). Pending rows from before this revision have none either, so a browser cannot
complete them: they expire within minutes and the user starts again.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("oauth_states") as batch:
        batch.add_column(sa.Column("binding_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("oauth_states") as batch:
        batch.drop_column("binding_hash")
