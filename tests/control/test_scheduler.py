"""The scheduler and sweeper, driven by a manual clock and explicit ticks (no sleeps)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ctctsync.control import services as svc
from ctctsync.control.clock import ManualClock
from ctctsync.control.models import Integration, Run, User
from ctctsync.control.plane import WORKER_DIED, ControlPlane, next_slot
from ctctsync.control.schemas import IntegrationCreate
from ctctsync.control.settings import ControlSettings

from .conftest import make_settings
from .helpers import connected, finish


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> ControlSettings:
    """The scheduler's guarantees hold on both stores."""
    if request.param == "sqlite":
        return make_settings(tmp_path)
    return make_settings(tmp_path, database_url=request.getfixturevalue("pg_url"))


def _runs(db: Session, integ: Integration) -> list[Run]:
    db.rollback()
    db.expire_all()
    return list(
        db.scalars(sa.select(Run).where(Run.integration_id == integ.id).order_by(Run.created_at))
    )


@pytest.mark.parametrize(
    ("minutes_late", "expected_hours_after_previous"),
    [
        pytest.param(0, 6, id="on-time"),
        pytest.param(5, 6, id="a-little-late"),
        pytest.param(6 * 60, 12, id="exactly-one-missed"),
        pytest.param(3 * 24 * 60 + 1, 78, id="days-missed"),
    ],
)
def test_next_slot(minutes_late: int, expected_hours_after_previous: int) -> None:
    prev = datetime(2026, 1, 1, tzinfo=UTC)
    now = prev + timedelta(minutes=minutes_late)
    assert next_slot(prev, now, timedelta(hours=6)) == prev + timedelta(
        hours=expected_hours_after_previous
    )


@pytest.mark.parametrize("hours", [1, 6, 24])
def test_frequency_is_honoured(
    plane: ControlPlane, db: Session, alice: User, clock: ManualClock, hours: int
) -> None:
    integ = connected(db, alice, frequency_hours=hours)
    first = plane.tick().enqueued
    assert len(first) == 1
    finish(db, first[0])
    clock.advance(timedelta(hours=hours) - timedelta(seconds=1))
    assert plane.tick().enqueued == []
    clock.advance(timedelta(seconds=1))
    second = plane.tick().enqueued
    assert len(second) == 1 and second != first
    assert [r.trigger for r in _runs(db, integ)] == ["schedule", "schedule"]


def test_nothing_runs_without_credentials_or_when_paused(
    plane: ControlPlane, db: Session, alice: User, clock: ManualClock
) -> None:
    svc.create_integration(db, alice, IntegrationCreate(name="nocreds"))
    paused = connected(db, alice, name="paused")
    svc.pause(db, paused)
    for _ in range(3):
        assert plane.tick().enqueued == []
        clock.advance(timedelta(days=1))
    svc.reactivate(db, paused)
    assert len(plane.tick().enqueued) == 1


def test_no_overlap(plane: ControlPlane, db: Session, alice: User, clock: ManualClock) -> None:
    integ = connected(db, alice, frequency_hours=1)
    (run_id,) = plane.tick().enqueued
    assert plane.claim_next("w1") == run_id
    # Due again while the first run is still going: the run in flight serves the slot.
    clock.advance(timedelta(hours=1))
    # (the worker is alive: its heartbeat is fresh)
    with plane.session() as db2:
        db2.execute(sa.update(Run).where(Run.id == run_id).values(heartbeat_at=clock.now()))
        db2.commit()
    assert plane.tick().enqueued == []
    # A manual run can be queued, but no worker may start it while the first one runs.
    manual = svc.run_now(db, integ, alice)
    assert plane.claim_next("w2") is None
    finish(db, run_id)
    assert plane.claim_next("w2") == manual.id
    assert [r.status for r in _runs(db, integ)] == ["succeeded", "running"]


def test_missed_runs_collapse_into_one(
    plane: ControlPlane, db: Session, alice: User, clock: ManualClock
) -> None:
    integ = connected(db, alice, frequency_hours=2)
    finish(db, plane.tick().enqueued[0])
    start = clock.now()
    clock.advance(timedelta(days=3, minutes=30))  # the service was down: 36 slots missed
    assert len(plane.tick().enqueued) == 1
    assert plane.tick().enqueued == []
    db.refresh(integ)
    assert integ.next_run_at == start + timedelta(days=3, hours=2)
    assert len(_runs(db, integ)) == 2


def test_stale_run_is_failed_and_rescheduled(
    plane: ControlPlane, db: Session, alice: User, clock: ManualClock
) -> None:
    integ = connected(db, alice)
    (run_id,) = plane.tick().enqueued
    assert plane.claim_next("doomed-worker") == run_id
    clock.advance(timedelta(seconds=59))
    assert plane.sweep() == []
    clock.advance(timedelta(seconds=2))
    report = plane.tick()
    assert report.swept == [run_id]
    run = db.get(Run, run_id)
    db.refresh(run)
    assert run is not None
    assert (run.status, run.failure_type, run.error) == ("failed", "system", WORKER_DIED)
    assert [line.message for line in svc.run_logs(db, run)] == [WORKER_DIED]
    # The crash is not the user's doing: the next run is queued right away.
    assert len(report.enqueued) == 1
    db.rollback()  # release SQLite's write lock before the plane opens its own session
    assert plane.claim_next("w2") == report.enqueued[0]
    db.refresh(integ)
    assert integ.state == "pending"
