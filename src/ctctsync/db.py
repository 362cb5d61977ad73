"""The metadata store's bottom layer: its engines, its tables, its migrations.

- :func:`create_engine` is the one engine factory for every store (the connector's
  bookmarks and the control plane, SQLite file or PostgreSQL).
- ``metadata`` is the one ``MetaData``: the connector's tables (bookmarks, discovered
  fields) are declared here,
  the control plane adds its tables in ``ctctsync.control.models`` on the same object.
- Alembic manages every table. The revisions in ``ctctsync/migrations`` form two branches:
  ``state`` (the bookmark tables, all a stand-alone ``StateStore`` needs) and ``control``
  (users, integrations, runs, ...). :func:`ensure_schema` brings one branch, or both, to
  head; it costs one query when the store is already there, so it runs at every open.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
"""Alembic's script directory (``env.py`` and ``versions/``), shipped in the package."""

BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite connection waits for another writer's lock before "database is locked".

Long enough for a worker's bookmark write behind a web request's session, or a second
process migrating the same file."""

IMMEDIATE = "ctctsync_immediate"
"""Execution option: on SQLite, begin the transaction with the write lock (see :func:`writer`)."""

Branch = Literal["state", "control"]
"""The migration branches: ``state`` holds the bookmark tables, ``control`` the rest."""

_MIGRATION_LOCK = 0x63746374
"""PostgreSQL advisory lock held while migrating, so two processes starting at once on one
empty store do not both create its tables (any fixed number; this one spells "ctct")."""


# ---------------------------------------------------------------------------- private files

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
"""The modes of what ctctsync creates (stores, warehouse files, keys): the data of a
Constant Contact account and its credentials are not for the machine's other users."""

_umask_lock = threading.Lock()
_umask_depth = 0
_umask_saved = 0


def make_private_dirs(folder: Path) -> None:
    """Create ``folder`` and its missing parents with mode 0700. Folders that exist already
    (a user's own) are left as they are."""
    missing: list[Path] = []
    current = folder
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            continue  # made meanwhile by another process or thread: theirs
        path.chmod(PRIVATE_DIR_MODE)  # mkdir's mode is narrowed by the umask, never widened


def create_private_file(path: Path) -> bool:
    """Create ``path`` empty with mode 0600 (and its missing folders 0700) unless it exists;
    True when this call created it. Other processes cannot open it in between: it is born
    0600 (``O_EXCL``), not narrowed later."""
    make_private_dirs(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return False
    os.close(fd)
    return True


@contextmanager
def private_umask() -> Iterator[None]:
    """Within: files the process creates get no group or other permissions (umask 077).

    For files a library creates with its own mode, such as DuckDB's database file and its
    WAL (created at each write, deleted at each checkpoint). The umask is the process's, so
    nested and concurrent uses share one: the first sets it, the last restores it.
    """
    global _umask_depth, _umask_saved  # noqa: PLW0603 -- one umask per process
    with _umask_lock:
        if _umask_depth == 0:
            _umask_saved = os.umask(0o077)
        _umask_depth += 1
    try:
        yield
    finally:
        with _umask_lock:
            _umask_depth -= 1
            if _umask_depth == 0:
                os.umask(_umask_saved)


# ---------------------------------------------------------------------------- engines


def create_engine(url: str | URL) -> Engine:
    """An engine for the store at ``url`` (any SQLAlchemy URL; SQLite and PostgreSQL tested).

    SQLite is tuned for one process with many threads, plus the odd second process: WAL so
    readers never wait for the writer, a busy timeout (:data:`BUSY_TIMEOUT_MS`), foreign
    keys on, and the file created 0600 (its -wal and -shm too) in 0700 folders.
    Transactions begin with plain ``BEGIN``; those of a :func:`writer` engine with
    ``BEGIN IMMEDIATE``.

    PostgreSQL connections are checked before use (``pool_pre_ping``): a long-running
    server outlives connections the database or a proxy closed meanwhile.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    return sa.create_engine(parsed, pool_pre_ping=True)


def writer(engine: Engine) -> Engine:
    """``engine`` whose transactions take SQLite's write lock up front (no-op elsewhere).

    Use it for transactions that read, then write: a deferred SQLite transaction that has
    read cannot later take the write lock while another writer is ahead ("database is
    locked" at once, whatever the busy timeout). ``BEGIN IMMEDIATE`` waits for it instead.
    """
    return engine.execution_options(**{IMMEDIATE: True})


def sqlite_file(url: str | URL) -> Path | None:
    """The file a SQLite URL names; None for in-memory databases, URI filenames and
    other databases."""
    parsed = make_url(url)
    name = parsed.database
    if parsed.get_backend_name() != "sqlite" or not name or name == ":memory:":
        return None
    if name.startswith("file:") or parsed.query.get("mode") == "memory":
        return None
    return Path(name)


def _sqlite_engine(url: URL) -> Engine:
    path = sqlite_file(url)
    if path is not None:
        # Born 0600 in 0700 folders; SQLite gives its -wal and -shm files the mode of the
        # database file, and takes an empty file for a new database.
        create_private_file(path)
    # Threads share pooled connections (control-plane workers, web requests, StateStore).
    engine = sa.create_engine(url, connect_args={"check_same_thread": False})
    sa.event.listen(engine, "connect", _sqlite_connect)
    sa.event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_conn: Any, _record: object) -> None:
    # The driver's own transaction handling would BEGIN (deferred) behind SQLAlchemy's
    # back; switch it off so the "begin" listener decides how each transaction starts.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    _use_wal(cur)
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _use_wal(cur: Any) -> None:
    """Switch the database to WAL (it stays so: the mode is kept in the file).

    Only a new store needs the switch, and it needs the database to itself: when several
    processes or threads open a new store at once, SQLite may answer "database is locked"
    at once instead of calling the busy handler (it does so where waiting could deadlock).
    So the switch is retried for up to the busy timeout, and skipped when already done.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)  # another connection is switching it right now


def _sqlite_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get(IMMEDIATE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


# ---------------------------------------------------------------------------- tables

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

bookmarks = sa.Table(
    "bookmarks",
    metadata,
    sa.Column("integration", sa.String(64), primary_key=True),
    sa.Column("table_name", sa.String(64), primary_key=True),
    sa.Column("last_run_date", sa.DateTime(timezone=True), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
"""Per integration and table: the ``lastRunDate`` the next incremental run starts from."""

bookmark_columns = sa.Table(
    "bookmark_columns",
    metadata,
    sa.Column("integration", sa.String(64), primary_key=True),
    sa.Column("table_name", sa.String(64), primary_key=True),
    sa.Column("columns", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
"""Per integration and table: the columns (a JSON list) loaded up to its bookmark.

A key-based table whose selected columns grow must be re-read from the history start (the
rows merged before hold NULL in the new column); comparing the selection with this record
tells the sync when. Written in the same transaction as the bookmark."""

discovered_fields = sa.Table(
    "discovered_fields",
    metadata,
    sa.Column("integration", sa.String(64), primary_key=True),
    sa.Column("table_name", sa.String(64), primary_key=True),
    sa.Column("field", sa.String(255), primary_key=True),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
)
"""Per integration and table: record fields the registry does not know (schema drift), when
a run first and last saw each. ``discover`` and the UI show them as "new field available"."""


# ---------------------------------------------------------------------------- migrations


def _target(branch: Branch | None) -> str:
    """Alembic's name for the newest revision(s) of ``branch`` (None: every branch)."""
    return "heads" if branch is None else f"{branch}@head"


# Alembic is imported inside the functions below: it adds ~0.2 s to every process that
# imports this module (the CLI's --help, the web app's models), and only opening a store
# needs it.


@cache
def _scripts() -> ScriptDirectory:
    # Parsed once per process: every StateStore open compares the store against it.
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS_DIR))


def head_revisions(branch: Branch | None = None) -> frozenset[str]:
    """The newest revision of ``branch`` (None: of every branch) shipped with this version."""
    return frozenset(
        rev.revision for rev in _scripts().get_revisions(_target(branch)) if rev is not None
    )


def current_revisions(engine: Engine) -> frozenset[str]:
    """The revisions the store is at, one per branch it has (empty for a new database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return frozenset(MigrationContext.configure(conn).get_current_heads())


def ensure_schema(engine: Engine, branch: Branch | None = None) -> bool:
    """Bring ``branch`` (None: every branch) to head unless the store is there already.

    Safe on every start and from several processes at once. Stores created before the
    schema was split into branches (by the old single-branch ``0001``, or by
    ``metadata.create_all`` in a stand-alone ``StateStore``) are adopted as they are.
    Returns whether migrations ran.
    """
    if head_revisions(branch) <= current_revisions(engine):
        return False
    upgrade(engine, _target(branch))
    return True


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Run Alembic ``upgrade revision`` (idempotent) in one transaction."""
    from alembic import command

    with writer(engine).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
        command.upgrade(_alembic_config(conn), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Run Alembic ``downgrade revision`` ("base" drops every table) in one transaction."""
    from alembic import command

    with writer(engine).begin() as conn:
        command.downgrade(_alembic_config(conn), revision)


def _alembic_config(connection: Connection) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # env.py runs on this connection, inside the caller's transaction.
    cfg.attributes["connection"] = connection
    return cfg
