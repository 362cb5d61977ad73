"""The scheduler and sweeper, driven by a manual clock and explicit ticks (no sleeps)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ctctsync.control import services as svc
from ctctsync.control.clock import ManualClock
from ctctsync.control.models import Integration, Run, RunLog, User
from ctctsync.control.plane import WORKER_DIED, ControlPlane, next_slot
from ctctsync.control.schemas import IntegrationCreate
from ctctsync.control.services.integrations import enqueue_run
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


def _finished_run(
    db: Session, integ: Integration, clock: ManualClock, status: str = "succeeded"
) -> str:
    run = enqueue_run(db, integ, "schedule")
    run.transition("running")
    run.transition(status)  # type: ignore[arg-type]
    run.finished_at = clock.now()
    db.add(RunLog(run_id=run.id, seq=1, ts=clock.now(), level="INFO", message="a line"))
    db.commit()
    return run.id


def test_retention_prunes_old_and_excess_runs_in_batches(
    plane: ControlPlane, db: Session, alice: User, clock: ManualClock
) -> None:
    # issue 8: runs and their logs were kept forever
    plane.settings = plane.settings.model_copy(
        update={"run_retention_days": 30, "run_retention_count": 2, "prune_batch_size": 2}
    )
    busy = connected(db, alice, name="busy")
    lone = connected(db, alice, name="lone")
    old = connected(db, alice, name="old")
    lone_run = _finished_run(db, lone, clock, "failed")  # its only run: kept, however old
    old_runs = []
    for _ in range(3):
        old_runs.append(_finished_run(db, old, clock))
        clock.advance(timedelta(seconds=1))
    busy_runs = []
    for _ in range(6):  # one run every 10 days
        busy_runs.append(_finished_run(db, busy, clock))
        clock.advance(timedelta(days=10))
    queued = enqueue_run(db, busy, "manual").id
    # now: busy's runs finished 60, 50, 40, 30, 20 and 10 days ago
    assert plane.prune(max_batches=1) == 2  # one short transaction of prune_batch_size runs
    pruned_total = 2 + plane.prune()
    assert plane.prune() == 0

    db.rollback()
    db.expire_all()
    left = set(db.scalars(sa.select(Run.id)))
    # busy: older than 30 days (60, 50, 40) or beyond the newest 2 (30) go; 20 and 10 stay
    assert busy_runs[4] in left and busy_runs[5] in left
    assert not left & set(busy_runs[:4])
    assert queued in left  # never an active run
    assert lone_run in left  # never an integration's newest finished run
    assert old_runs[2] in left and not left & set(old_runs[:2])
    assert pruned_total == 4 + 2
    logs = set(db.scalars(sa.select(RunLog.run_id)))
    assert logs == left - {queued}


def test_retention_zero_keeps_everything(
    plane: ControlPlane, db: Session, alice: User, clock: ManualClock
) -> None:
    plane.settings = plane.settings.model_copy(
        update={"run_retention_days": 0, "run_retention_count": 0}
    )
    integ = connected(db, alice)
    for _ in range(3):
        _finished_run(db, integ, clock)
        clock.advance(timedelta(days=400))
    assert plane.prune() == 0
    assert len(_runs(db, integ)) == 3


def test_retention_defaults() -> None:
    settings = ControlSettings()
    assert (settings.run_retention_days, settings.run_retention_count) == (90, 500)
