"""One engine factory and one schema manager for every store: Alembic's ``state`` branch for
a stand-alone bookmark store, every branch for the control plane, and the stores older
versions left behind (``create_all`` state stores, control stores at the single-branch
``0001``) upgraded in place with their rows intact."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ctctsync.control import models  # noqa: F401  (the control tables, on ``metadata``)
from ctctsync.control.database import (
    create_store_engine,
    current_revisions,
    head_revisions,
    upgrade_database,
)
from ctctsync.db import bookmark_columns, bookmarks, metadata, upgrade, writer
from ctctsync.state import StateStore

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
STATE_TABLES = {"bookmarks", "bookmark_columns", "discovered_fields", "cli_oauth_tokens",
                "campaign_ledger"}


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def _assert_matches_models(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), metadata
        )
    assert diff == [], f"models and migrations disagree: {diff}"


def _old_bookmark(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.insert(bookmarks).values(
                integration="acme",
                table_name="contacts",
                last_run_date=NOW,
                run_id="r0",
                updated_at=NOW,
            )
        )


def test_state_store_migrates_only_its_branch(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'not' / 'yet' / 'state.db'}"
    store = StateStore(url)  # creates the folder, then the bookmark tables
    try:
        assert _tables(store.engine) == STATE_TABLES
        assert current_revisions(store.engine) == head_revisions("state") == {"state_0004"}
        store.set("acme", "contacts", NOW, "r1", columns=["id"])
        # The control plane later starting on the same file adds its branch beside it.
        assert upgrade_database(store.engine)
        assert current_revisions(store.engine) == head_revisions()
        _assert_matches_models(store.engine)
        assert StateStore(url).columns("acme", "contacts") == frozenset({"id"})
    finally:
        store.engine.dispose()


@pytest.mark.parametrize(
    "tables",
    [
        pytest.param([bookmarks, bookmark_columns], id="create_all"),
        pytest.param([bookmarks], id="before-bookmark_columns"),
    ],
)
def test_state_store_created_without_alembic_is_adopted(
    store_url: str, tables: list[sa.Table]
) -> None:
    """Stand-alone stores of older versions: ``metadata.create_all``, no alembic_version."""
    engine = create_store_engine(store_url)
    try:
        metadata.create_all(engine, tables=tables)
        _old_bookmark(engine)
        store = StateStore(store_url)
        try:
            mark = store.get("acme", "contacts")
            assert mark is not None and (mark.last_run_date, mark.run_id) == (NOW, "r0")
            assert _tables(engine) == STATE_TABLES
            assert current_revisions(engine) == {"state_0004"}
            store.set("acme", "contacts", NOW, "r1", columns=["id"])
        finally:
            store.engine.dispose()
        assert upgrade_database(engine)
        _assert_matches_models(engine)
    finally:
        engine.dispose()


@pytest.mark.parametrize("first", ["state_store", "control_plane"])
def test_control_store_from_before_the_split_is_adopted(store_url: str, first: str) -> None:
    """Stores migrated by the single-branch ``0001`` (which made the bookmark tables too):
    ``alembic_version`` holds just ``0001``; whichever opens the store first upgrades it."""
    engine = create_store_engine(store_url)
    try:
        # The old single-branch 0001 made today's control 0001 plus the bookmark tables,
        # and recorded just '0001'.
        upgrade(engine, "0001")
        metadata.create_all(engine, tables=[bookmarks, bookmark_columns])
        with engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM alembic_version")
            conn.exec_driver_sql("INSERT INTO alembic_version VALUES ('0001')")
        _old_bookmark(engine)
        if first == "state_store":
            StateStore(engine)
            assert current_revisions(engine) == {"0001", "state_0004"}
        assert upgrade_database(engine)  # the control branch has revisions after 0001
        assert current_revisions(engine) == head_revisions()
        _assert_matches_models(engine)
        mark = StateStore(engine).get("acme", "contacts")
        assert mark is not None and mark.run_id == "r0"
    finally:
        engine.dispose()


def test_stores_opened_at_once_migrate_once(store_url: str) -> None:
    """Several processes (here threads, each with its own engine) starting on a new store."""

    def open_store(_: int) -> bool:
        store = StateStore(store_url)
        try:
            return store.all() == []
        finally:
            store.engine.dispose()

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(open_store, range(4)))
    engine = create_store_engine(store_url)
    try:
        assert current_revisions(engine) == {"state_0004"}
    finally:
        engine.dispose()


def test_sqlite_engine_settings(tmp_path: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'a' / 'store.db'}")
    try:
        with engine.connect() as conn:
            pragmas = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "busy_timeout", "foreign_keys")
            }
        assert pragmas == {"journal_mode": "wal", "busy_timeout": 30000, "foreign_keys": 1}
        # A writer's transaction holds the write lock from BEGIN: a second writer waits,
        # here for a 0 ms busy timeout, so it fails at once instead.
        with writer(engine).connect() as first, writer(engine).connect() as second:
            second.exec_driver_sql("PRAGMA busy_timeout=0")
            second.commit()
            first.begin()
            with pytest.raises(sa.exc.OperationalError, match="locked"):
                second.begin()
            first.rollback()
    finally:
        engine.dispose()


def test_postgres_engine_checks_connections() -> None:
    engine = create_store_engine("postgresql+psycopg://u@127.0.0.1:5432/x")
    assert engine.pool._pre_ping
