"""Fixtures of the control-plane tests: a store per test (SQLite file, or a PostgreSQL schema),
a plane driven by a manual clock, users."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ctctsync.api.ratelimit import clear_registry
from ctctsync.control import services as svc
from ctctsync.control.clock import ManualClock
from ctctsync.control.models import User
from ctctsync.control.plane import ControlPlane
from ctctsync.control.settings import ControlSettings

PG_ADMIN_URL = os.environ.get(
    "CTCTSYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
PASSWORD = "correct horse battery"


def _pg_reachable() -> bool:
    try:
        engine = sa.create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def pg_available() -> bool:
    """Whether the test PostgreSQL answers; in CI its absence is a failure, not a skip."""
    ok = _pg_reachable()
    if not ok and os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is unreachable and CI=true")
    return ok


@pytest.fixture
def pg_url(pg_available: bool) -> Iterator[str]:
    """A URL whose search_path is a fresh schema (dropped afterwards)."""
    if not pg_available:
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is not reachable")
    schema = f"ctl_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store under test: a SQLite file, or a PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'control.db'}"
    return str(request.getfixturevalue("pg_url"))


def make_settings(tmp_path: Path, **overrides: object) -> ControlSettings:
    """Settings isolated in ``tmp_path`` (no environment, no real CC)."""
    values: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "cc_base_url": "http://127.0.0.1:9",  # nothing listens: checks count as unreachable
        "workers": 0,
        "heartbeat_seconds": 5,
        "stale_after_seconds": 60,
    }
    values.update(overrides)
    return ControlSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> ManualClock:
    """A clock the test moves by hand."""
    return ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def settings(tmp_path: Path) -> ControlSettings:
    """SQLite-backed settings in a temporary folder."""
    return make_settings(tmp_path)


@pytest.fixture(autouse=True)
def _no_ctctsync_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from each test, never from the developer's or CI's CTCTSYNC_* variables."""
    for name in list(os.environ):
        if name.startswith("CTCTSYNC_") and name != "CTCTSYNC_TEST_PG_URL":
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def _fresh_rate_limiters() -> None:
    """API-key limiters are process-wide (as in production); tests reuse the sandbox's key,
    so one test's spent daily quota must not leak into the next."""
    clear_registry()


@pytest.fixture(autouse=True)
def _cheap_password_hashing(cheap_password_hashing: None) -> None:
    """Every control test hashes cheaply (see ``cheap_password_hashing``)."""


@pytest.fixture
def plane(
    settings: ControlSettings, clock: ManualClock, migrated_template: Path
) -> Iterator[ControlPlane]:
    """A migrated plane on the manual clock, with no threads running."""
    cp = open_plane(settings, clock, migrated_template)
    yield cp
    cp.close()


def open_plane(settings: ControlSettings, clock: ManualClock, template: Path) -> ControlPlane:
    """A plane over a copy of the migrated template store (no migration run per test)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(template, settings.data_dir / "control.db")
    return ControlPlane(settings, clock=clock)


@pytest.fixture
def db(plane: ControlPlane) -> Iterator[Session]:
    """A service session."""
    with plane.session() as session:
        yield session


@pytest.fixture
def admin(db: Session) -> User:
    """The first (admin) user."""
    user = svc.ensure_first_admin(db, "admin@example.com", PASSWORD)
    assert user is not None
    return user


@pytest.fixture
def alice(db: Session, admin: User) -> User:
    """A regular user."""
    return svc.create_user(db, "alice@example.com", PASSWORD)


@pytest.fixture
def bob(db: Session, admin: User) -> User:
    """Another regular user."""
    return svc.create_user(db, "bob@example.com", PASSWORD)


@pytest.fixture
def warehouse_dataset(pg_dsn: str) -> Iterator[str]:
    """A fresh dataset (schema) name in the test PostgreSQL warehouse, dropped afterwards
    with its staging schema."""
    dataset = f"wh_{uuid.uuid4().hex[:12]}"
    yield dataset
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for schema in (dataset, f"{dataset}_staging"):
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
