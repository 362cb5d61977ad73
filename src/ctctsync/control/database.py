"""The store's engine and its migrations (Alembic ``upgrade head``, run at every start)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
IMMEDIATE = "ctctsync_immediate"
"""Execution option: on SQLite, begin the transaction with the write lock (see below)."""


def writer(engine: Engine) -> Engine:
    """``engine`` whose transactions take SQLite's write lock up front (no-op elsewhere)."""
    return engine.execution_options(**{IMMEDIATE: True})


def create_store_engine(url: str) -> Engine:
    """An engine for the control store at ``url`` (SQLite file or PostgreSQL).

    SQLite is tuned for one process with many threads: WAL so readers never wait for the
    writer, a busy timeout, and foreign keys on. Connections with the execution option
    ``immediate=True`` (every service session, see :data:`IMMEDIATE`) begin with ``BEGIN
    IMMEDIATE``: they take the write lock up front and wait for it, instead of failing with
    "database is locked" when a read-then-write transaction finds another writer ahead.
    """
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and not path.startswith(":memory:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
    engine = sa.create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event below issue BEGIN itself.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: sa.Connection) -> None:
            immediate = conn.get_execution_options().get(IMMEDIATE, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _alembic_config(connection: sa.Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade_database(engine: Engine, revision: str = "head") -> None:
    """Bring the store's schema to ``revision`` (idempotent; safe on every start)."""
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), revision)


def downgrade_database(engine: Engine, revision: str) -> None:
    """Roll the schema back to ``revision`` ("base" drops every table)."""
    with engine.begin() as conn:
        command.downgrade(_alembic_config(conn), revision)


def current_revision(engine: Engine) -> str | None:
    """The schema revision the store is at (None for an empty database)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with this version of ctctsync."""
    with sa.create_engine("sqlite://").connect() as conn:
        return ScriptDirectory.from_config(_alembic_config(conn)).get_current_head()
