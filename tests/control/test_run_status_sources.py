"""Where the status pages' words come from (issue 12 §2-3), checked against real runs on the
sandbox over loopback HTTP into DuckDB:

- each table's seconds in the run log are its own, not the run's so far ("events: ... 32.8 s"
  in a 33 s run);
- a run the daily quota stops is ``partial`` with the table it stopped in ``stopped`` (not
  ``failed``), its message claims no call count it does not know, and "Run now" is refused
  before a job of 0 calls is created;
- changing the frequency moves the next run to the last scheduled run plus the new interval.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ctctsync.control import services as svc
from ctctsync.control.clock import ManualClock
from ctctsync.control.errors import QuotaWouldDefer
from ctctsync.control.models import Run, User
from ctctsync.control.plane import ControlPlane
from ctctsync.control.schemas import IntegrationCreate, IntegrationUpdate
from ctctsync.control.services import quota
from ctctsync.sandbox import Sandbox
from ctctsync.sync import ProgressEvent
from ctctsync.sync.results import parse_table_done

from .conftest import make_settings, open_plane

TABLES = {"contacts": None, "contact_lists": None, "events": None, "account_info": None}


def _plane(sandbox: Sandbox, tmp_path: Path, template: Path) -> ControlPlane:
    settings = make_settings(tmp_path, cc_base_url=sandbox.base_url, cc_qps_limit=None)
    return open_plane(settings, ManualClock(datetime.now(UTC).replace(microsecond=0)), template)


def _owner(db: Session) -> User:
    """The administrator, owner of a v2 integration of four tables."""
    user = svc.ensure_first_admin(db, "owner@example.com", "long enough password")
    assert user is not None
    svc.create_integration(db, user, IntegrationCreate(  # type: ignore[arg-type]
        name="acme", history_start="2000-01-01", tables=TABLES, api_version="v2"))
    return user


def _work(cp: ControlPlane, db: Session, user: User, sandbox: Sandbox) -> tuple[Run, float]:
    """Authorize the integration on ``sandbox`` and work its first scheduled run; the run and
    the wall time it took (the plane's clock is a manual one)."""
    integ = svc.list_integrations(db, user)[0]
    creds = sandbox.credentials
    svc.set_manual_credentials(db, integ, creds.api_key, creds.access_token, check_access=False)
    db.rollback()
    (run_id,) = cp.tick().enqueued
    db.rollback()
    began = time.monotonic()
    cp.work_once("w1")
    took = time.monotonic() - began
    db.expire_all()
    run = db.get(Run, run_id)
    assert run is not None
    return run, took


def test_table_seconds_are_each_tables_own(
    sandbox: Sandbox, tmp_path: Path, migrated_template: Path
) -> None:
    cp = _plane(sandbox, tmp_path, migrated_template)
    with ExitStack() as stack:
        stack.callback(cp.close)
        db = stack.enter_context(cp.session())
        user = _owner(db)
        seen: dict[str, dict[str, int] | None] = {}

        def calls_while_running(run_id: str, event: ProgressEvent) -> None:
            if event.phase == "done":  # the heartbeat at each table's end stored them
                with cp.session() as peek:
                    seen[event.table] = peek.scalar(
                        sa.select(Run.table_calls).where(Run.id == run_id))

        cp.add_progress_listener(calls_while_running)
        run, took = _work(cp, db, user, sandbox)
        # the job page can show each table's calls before the job ends
        assert (seen["contacts"] or {}).get("contacts") == 1  # tables read ahead may be there too
        assert seen["events"] is not None and set(seen["events"]) == set(TABLES)
        assert run.status == "succeeded"
        done = {d.table: d for d in (parse_table_done(ln.message)
                                     for ln in svc.run_logs(db, run)) if d is not None}
        assert set(done) == set(TABLES)
        assert {t: d.rows for t, d in done.items()} == run.rows
        assert {t: d.api_calls for t, d in done.items()} == run.table_calls
        # tables take turns: their own seconds add up to at most the run's (log lines round
        # to 0.1 s each); counted from when each read began, they added up to twice as much
        assert sum(d.seconds for d in done.values()) <= took + 0.05 * len(done), (done, took)


@pytest.fixture
def spent(sandbox_factory: object, tmp_path: Path, migrated_template: Path) -> object:
    return sandbox_factory(daily_limit=2)  # type: ignore[operator]


def test_a_spent_quota_stops_without_failing_and_run_now_warns_first(
    spent: Sandbox, tmp_path: Path, migrated_template: Path
) -> None:
    cp = _plane(spent, tmp_path, migrated_template)
    with ExitStack() as stack:
        stack.callback(cp.close)
        db = stack.enter_context(cp.session())
        user = _owner(db)
        run, _ = _work(cp, db, user, spent)
        assert run.status == "partial" and run.resume_at is not None
        # two calls answered, the third refused: contacts and account_info are kept
        assert run.table_status == {"contacts": "succeeded", "account_info": "succeeded",
                                    "contact_lists": "stopped", "events": "skipped"}
        assert run.error is not None and "10,000" not in run.error  # CC's answer, not our count
        assert "daily quota is spent" in run.error
        integ = svc.list_integrations(db, user)[0]
        assert quota.spent_until(db, run.key_fingerprint or "", cp.clock.now()) == (
            run.resume_at, run.finished_at)
        before = db.query(Run).count()
        with pytest.raises(QuotaWouldDefer, match="daily quota is spent") as refused:
            svc.run_now(db, integ, user)
        assert "would make no call" in str(refused.value)
        assert db.query(Run).count() == before  # no job of 0 calls
        # asked to anyway, it waits as deferred until the reset
        waiting = svc.run_now(db, integ, user, when_quota_allows=True)
        db.rollback()
        assert cp.claim_next("w1") is None
        db.expire_all()
        deferred = db.get(Run, waiting.id)
        assert deferred is not None and deferred.status == "deferred"
        assert deferred.resume_at == run.resume_at


def test_a_new_frequency_moves_the_next_run(plane: ControlPlane, clock: ManualClock) -> None:
    with plane.session() as db:
        user = svc.ensure_first_admin(db, "owner@example.com", "long enough password")
        assert user is not None
        integ = svc.create_integration(db, user, IntegrationCreate(  # type: ignore[arg-type]
            name="acme", frequency_hours=6, tables=TABLES, api_version="v2"))
        now = clock.now()
        last = now - timedelta(hours=1)
        db.add(Run(integration_id=integ.id, trigger="schedule", status="succeeded",
                   created_at=last, started_at=last, finished_at=last + timedelta(minutes=2),
                   rows={}, table_status={}))
        integ.next_run_at = last + timedelta(hours=6)
        db.commit()
        # 6 h -> 24 h: not "the next one in 5 h" any more, but 23 h from now
        svc.update_integration(db, integ, IntegrationUpdate(frequency_hours=24))
        assert integ.next_run_at == last + timedelta(hours=24)
        # 24 h -> 12 h: the last run plus 12 h
        svc.update_integration(db, integ, IntegrationUpdate(frequency_hours=12))
        assert integ.next_run_at == last + timedelta(hours=12)
        # 12 h -> 1 h: an hour after the last run is now: due (never in the past)
        svc.update_integration(db, integ, IntegrationUpdate(frequency_hours=1))
        assert integ.next_run_at == now
