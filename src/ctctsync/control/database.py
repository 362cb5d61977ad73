"""The control store's engine and migrations: the names the control plane and its tests use
for the one engine factory and migration runner in :mod:`ctctsync.db`.

The control plane needs both migration branches (``state`` for the bookmarks its workers
write, ``control`` for its own tables): :func:`upgrade_database` brings every branch to head.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from ctctsync.db import (
    IMMEDIATE,
    MIGRATIONS_DIR,
    current_revisions,
    downgrade,
    ensure_schema,
    head_revisions,
    writer,
)
from ctctsync.db import create_engine as create_store_engine

__all__ = [
    "IMMEDIATE",
    "MIGRATIONS_DIR",
    "create_store_engine",
    "current_revisions",
    "downgrade_database",
    "head_revisions",
    "upgrade_database",
    "writer",
]


def upgrade_database(engine: Engine) -> bool:
    """Bring every branch of the store's schema to head (idempotent; runs at every start).

    Returns whether migrations ran (False when the store was already at head)."""
    return ensure_schema(engine)


def downgrade_database(engine: Engine, revision: str) -> None:
    """Roll the schema back to ``revision`` ("base" drops every table)."""
    downgrade(engine, revision)
