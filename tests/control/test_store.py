"""The store: migrations on SQLite and PostgreSQL, the DB-level run guards, state machines."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import IntegrityError

from ctctsync.control.database import (
    create_store_engine,
    current_revisions,
    downgrade_database,
    head_revisions,
    upgrade_database,
)
from ctctsync.control.errors import InvalidTransition
from ctctsync.control.models import (
    INTEGRATION_TRANSITIONS,
    RUN_STATUSES,
    RUN_TRANSITIONS,
    Integration,
    Run,
)
from ctctsync.db import metadata
from ctctsync.state import StateStore

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_migrations_match_models_and_round_trip(store_url: str) -> None:
    engine = create_store_engine(store_url)
    try:
        assert current_revisions(engine) == frozenset()
        assert upgrade_database(engine)
        assert not upgrade_database(engine)  # idempotent and cheap: every start runs it
        assert current_revisions(engine) == head_revisions() == {"state_0004", "0009"}
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), metadata
            )
        assert diff == [], f"models and migrations disagree: {diff}"
        # The connector's bookmark store works on the migrated schema as-is.
        store = StateStore(engine, create=False)
        store.set("acme", "contacts", NOW, "r1")
        assert store.get("acme", "contacts") is not None
        downgrade_database(engine, "base")
        assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade_database(engine)
        assert "runs" in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def _integration(conn: sa.Connection) -> int:
    return int(
        conn.execute(
            sa.insert(Integration)
            .values(
                name="acme",
                state="active",
                frequency_hours=24,
                history_start=date(2025, 1, 1),
                tables={},
                created_at=NOW,
                updated_at=NOW,
            )
            .returning(Integration.id)
        ).scalar_one()
    )


def _run(conn: sa.Connection, integration_id: int, status: str, run_id: str) -> None:
    conn.execute(
        sa.insert(Run).values(
            id=run_id,
            integration_id=integration_id,
            trigger="manual",
            status=status,
            full_refresh=[],
            rows={},
            table_status={},
            api_calls=0,
            cancel_requested=False,
            created_at=NOW,
        )
    )


@pytest.mark.parametrize("status", ["queued", "running"])
def test_database_allows_one_queued_and_one_running_run(store_url: str, status: str) -> None:
    engine = create_store_engine(store_url)
    try:
        upgrade_database(engine)
        with engine.begin() as conn:
            integ = _integration(conn)
            _run(conn, integ, status, "a" * 32)
            _run(conn, integ, "succeeded", "b" * 32)
            _run(conn, integ, "failed", "c" * 32)
            other = "running" if status == "queued" else "queued"
            _run(conn, integ, other, "d" * 32)
        with pytest.raises(IntegrityError), engine.begin() as conn:
            _run(conn, integ, status, "e" * 32)
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("old", "new"),
    [pytest.param(old, new, id=f"{old}->{new}") for old in RUN_STATUSES for new in RUN_STATUSES],
)
def test_run_state_machine(old: str, new: str) -> None:
    run = Run(status=old)
    if new in RUN_TRANSITIONS[old]:  # type: ignore[index]
        run.transition(new)  # type: ignore[arg-type]
        assert run.status == new
    else:
        with pytest.raises(InvalidTransition):
            run.transition(new)  # type: ignore[arg-type]
        assert run.status == old


def test_run_state_machine_shape() -> None:
    assert RUN_TRANSITIONS["queued"] == {"running", "deferred", "cancelled"}
    # deferred: not started because of the daily API quota; queued again after 00:00 UTC
    assert RUN_TRANSITIONS["deferred"] == {"queued", "cancelled"}
    assert RUN_TRANSITIONS["running"] == {"succeeded", "partial", "failed", "cancelled"}
    assert all(not RUN_TRANSITIONS[s] for s in ("succeeded", "partial", "failed", "cancelled"))


@pytest.mark.parametrize(
    ("old", "new", "allowed"),
    [
        pytest.param("pending", "active", True, id="first-success"),
        pytest.param("active", "paused", True, id="pause"),
        pytest.param("paused", "active", True, id="reactivate"),
        pytest.param("active", "needs_reauth", True, id="revoked"),
        pytest.param("paused", "needs_reauth", False, id="paused-stays-paused"),
        pytest.param("active", "pending", False, id="no-way-back-to-pending"),
    ],
)
def test_integration_state_machine(old: str, new: str, allowed: bool) -> None:
    assert (new in INTEGRATION_TRANSITIONS[old]) is allowed  # type: ignore[index]
    integ = Integration(state=old)
    if allowed:
        integ.transition(new, "why")  # type: ignore[arg-type]
        assert (integ.state, integ.state_reason) == (new, "why")
    else:
        with pytest.raises(InvalidTransition):
            integ.transition(new)  # type: ignore[arg-type]
