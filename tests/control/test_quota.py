"""The API budget (issue 10): estimates from history, the day's reservation, deferral and
resumption after 00:00 UTC, per-key limits -- on SQLite and PostgreSQL stores, driven by the
manual clock and explicit ticks and claims (no sleeps, no network)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ctctsync.api.ratelimit import fingerprint, limiter_for
from ctctsync.control import services as svc
from ctctsync.control.clock import ManualClock
from ctctsync.control.errors import NotFound, PermissionDenied, QuotaWouldDefer, ValidationFailed
from ctctsync.control.models import Integration, Run, RunLog, User
from ctctsync.control.plane import ControlPlane
from ctctsync.control.schemas import IntegrationCreate, KeyLimitsIn, RunPublic
from ctctsync.control.services import quota
from ctctsync.control.settings import ControlSettings
from ctctsync.control.worker import RunExecutor
from ctctsync.sandbox import Sandbox
from ctctsync.state import StateStore

from .conftest import PASSWORD, make_settings, open_plane
from .helpers import counts

TABLES: dict[str, list[str] | None] = {"contacts": None, "contact_lists": None}
SHARED_KEY = "shared-v2-api-key-0001"
KEY = fingerprint(SHARED_KEY)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> ControlSettings:
    """The planner's rules hold on both stores."""
    if request.param == "sqlite":
        return make_settings(tmp_path)
    return make_settings(tmp_path, database_url=request.getfixturevalue("pg_url"))


def _integration(db: Session, user: User, name: str, *, hours: int = 1) -> Integration:
    """A v2 integration on the shared key, activated (its first load is behind it)."""
    integ = svc.create_integration(
        db,
        user,
        IntegrationCreate(name=name, tables=TABLES, api_version="v2", frequency_hours=hours),
    )
    integ = svc.set_manual_credentials(db, integ, SHARED_KEY, "token-" + name, check_access=False)
    integ.activated_at = integ.created_at
    integ.state = "active"
    db.commit()
    store = StateStore(svc.context(db).engine, create=False)
    for table in TABLES:  # bookmarks: its runs read changes, not whole tables
        store.set(name, table, integ.created_at, "r0")
    return integ


def _past_run(
    db: Session,
    integ: Integration,
    table_calls: dict[str, int],
    *,
    finished: datetime,
    kind: str = "incremental",
    trigger: str = "schedule",
    status: str = "succeeded",
    full_refresh: list[str] | None = None,
) -> Run:
    """A finished run as the worker records it (calls per table, on the shared key)."""
    run = Run(
        integration_id=integ.id,
        trigger=trigger,
        status=status,
        kind=kind,
        key_fingerprint=KEY,
        full_refresh=full_refresh or [],
        created_at=finished - timedelta(minutes=5),
        started_at=finished - timedelta(minutes=5),
        finished_at=finished,
        api_calls=sum(table_calls.values()),
        table_calls=table_calls,
        rows={},
        table_status={},
    )
    db.add(run)
    db.commit()
    return run


def _history(db: Session, integ: Integration, now: datetime, contacts: list[int]) -> None:
    """Incremental runs days ago (not today's usage): ``contacts`` calls on contacts, oldest
    first, and one call on contact_lists each."""
    for i, calls in enumerate(contacts):
        finished = now - timedelta(days=3) + timedelta(hours=i)
        _past_run(db, integ, {"contacts": calls, "contact_lists": 1}, finished=finished)


def _get(db: Session, run_id: str) -> Run:
    """A fresh snapshot of a run, read without keeping the session's transaction open (on
    SQLite a service session holds the write lock the plane's calls need)."""
    db.rollback()
    db.expire_all()
    run = db.get(Run, run_id)
    assert run is not None
    db.expunge(run)
    db.rollback()
    return run


def _set_limits(db: Session, admin: User, per_day: int, per_second: float | None = None) -> None:
    svc.set_key_limits(db, admin, KEY, KeyLimitsIn(per_day=per_day, per_second=per_second))


# ----------------------------------------------------------------------------- estimates


def test_estimate_is_the_median_of_the_last_five_comparable_runs(
    db: Session, admin: User, clock: ManualClock
) -> None:
    integ = _integration(db, admin, "acme")
    fresh = svc.estimate_run(db, integ)
    assert fresh.calls == 2 * quota.DEFAULT_INCREMENTAL_TABLE_CALLS
    assert fresh.basis == quota.DEFAULT_MODEL and not fresh.from_history
    # six incremental runs: the oldest (1000 calls) falls out of the last five
    _history(db, integ, clock.now(), [1000, 10, 30, 20, 50, 40])
    # runs that did not succeed say nothing about a whole run's cost
    _past_run(db, integ, {"contacts": 5000, "contact_lists": 1}, finished=clock.now(),
              status="partial")
    est = svc.estimate_run(db, integ)
    assert est.calls == 30 + 1  # median(10, 30, 20, 50, 40) + contact_lists' 1
    assert est.kind == "incremental" and est.from_history
    assert est.basis == "median of the last 5 incremental runs"


def test_a_resync_is_estimated_from_whole_table_reads_only(
    db: Session, admin: User, clock: ManualClock
) -> None:
    integ = _integration(db, admin, "acme")
    _history(db, integ, clock.now(), [10, 10, 10])
    est = svc.estimate_run(db, integ, trigger="resync", tables=["contacts"],
                           full_refresh=["contacts"])
    # incremental reads of contacts are no evidence for a whole read: the default model
    assert est.kind == "resync" and est.calls == quota.DEFAULT_FULL_TABLE_CALLS
    _past_run(db, integ, {"contacts": 400}, finished=clock.now() - timedelta(days=2),
              kind="resync", trigger="resync", full_refresh=["contacts"])
    est = svc.estimate_run(db, integ, trigger="resync", tables=["contacts"],
                           full_refresh=["contacts"])
    assert est.calls == 400 and est.basis == "median of the last 1 whole-table run"
    # a first load reads every table whole: contacts from history, contact_lists by default
    integ.activated_at = None
    db.commit()
    first = svc.estimate_run(db, integ)
    assert first.kind == "first_load"
    assert first.calls == 400 + quota.DEFAULT_FULL_TABLE_CALLS
    assert "default model for contact_lists" in first.basis


def test_a_table_without_a_bookmark_is_estimated_whole(
    db: Session, admin: User, clock: ManualClock
) -> None:
    integ = _integration(db, admin, "acme")
    _history(db, integ, clock.now(), [7, 7, 7])
    StateStore(svc.context(db).engine, create=False).reset("acme", "contacts")
    est = svc.estimate_run(db, integ)
    assert est.calls == quota.DEFAULT_FULL_TABLE_CALLS + 1
    assert "default model for contacts" in est.basis
    # the day's plan counts the steady state: incremental runs
    assert svc.integration_budget(db, integ).estimate.calls == 8


def test_the_estimate_is_stored_on_the_run(
    plane: ControlPlane, db: Session, admin: User, clock: ManualClock
) -> None:
    integ = _integration(db, admin, "acme")
    _history(db, integ, clock.now(), [7, 7, 7])
    run_id = svc.run_now(db, integ, admin).id
    assert plane.claim_next("w1") == run_id
    db.expire_all()
    run = db.get(Run, run_id)
    assert run is not None
    assert (run.status, run.kind, run.estimated_calls) == ("running", "incremental", 8)
    assert run.key_fingerprint == KEY
    shown = RunPublic.model_validate(run)
    assert shown.estimated_calls == 8
    assert shown.estimate_basis == "median of the last 3 incremental runs"


# ----------------------------------------------------------------------------- the day's plan


def test_runs_left_today_counts_the_slots_before_midnight(
    db: Session, admin: User, clock: ManualClock
) -> None:
    hourly = _integration(db, admin, "hourly", hours=1)
    six = _integration(db, admin, "six", hours=6)
    now = clock.now()  # 09:00, both due now
    assert quota.runs_left_today(hourly, now) == 15  # 09:00 .. 23:00
    assert quota.runs_left_today(six, now) == 3  # 09:00, 15:00, 21:00
    six.next_run_at = now + timedelta(hours=15, minutes=30)  # 00:30 tomorrow
    assert quota.runs_left_today(six, now) == 0
    svc.pause(db, hourly)
    assert quota.runs_left_today(hourly, now) == 0


def test_overview_shows_limits_usage_reservation_and_a_warning(
    db: Session, admin: User, alice: User, clock: ManualClock
) -> None:
    a = _integration(db, admin, "acme")
    b = _integration(db, admin, "bravo")
    _history(db, a, clock.now(), [99, 99, 99])  # 100 a run, hourly: 2,400 a day
    _history(db, b, clock.now(), [9, 9, 9])  # 10 a run: 240 a day
    _past_run(db, a, {"contacts": 500}, finished=clock.now() - timedelta(hours=1))  # today
    overview = svc.quota_overview(db, admin)
    (key,) = overview.keys
    assert key.key == KEY and SHARED_KEY not in overview.model_dump_json()  # never the key
    assert key.label == f"v2 key #{KEY[:6]}" and "0001" not in key.label  # none of the key
    assert (key.per_day, key.per_day_is_default, key.per_second) == (10_000, True, 4.0)
    assert key.used_today == 500
    assert key.reserved_runs == 30 and key.reserved_today == 15 * 100 + 15 * 10
    assert key.planned_per_day == 2_640 and key.fits and key.warning is None
    assert key.headroom == 10_000 - 500 - 1_650
    assert [i.name for i in key.integrations] == ["acme", "bravo"]
    acme = key.integrations[0]
    assert (acme.estimate.calls, acme.runs_per_day, acme.calls_per_day) == (100, 24, 2_400)
    assert acme.used_today == 500
    _set_limits(db, admin, per_day=2_000)
    key = svc.quota_overview(db, admin).keys[0]
    assert not key.fits and key.per_day == 2_000 and not key.per_day_is_default
    assert key.warning is not None
    assert key.warning.startswith("the hourly schedule needs ~2,640 calls a day of 2,000")
    assert "acme" in key.warning
    # another user sees no key: none of the integrations on it are theirs
    assert svc.quota_overview(db, alice).keys == []
    assert svc.integration_budget(db, a).reserved_today == 1_500


def test_key_limits_are_validated_and_admin_only(
    db: Session, admin: User, alice: User
) -> None:
    _integration(db, admin, "acme")
    (shown,) = svc.list_key_limits(db, admin)
    assert shown.key == KEY and shown.per_day_is_default
    with pytest.raises(PermissionDenied):
        svc.set_key_limits(db, alice, KEY, KeyLimitsIn(per_day=5))
    with pytest.raises(NotFound):
        svc.set_key_limits(db, admin, "0" * 16, KeyLimitsIn(per_day=5))
    bad = KeyLimitsIn.model_construct(per_second=0.0, per_day=0)
    with pytest.raises(ValidationFailed) as err:
        svc.set_key_limits(db, admin, KEY, bad)
    assert set(err.value.errors) == {"per_second", "per_day"}
    saved = svc.set_key_limits(
        db, admin, KEY, KeyLimitsIn(per_second=quota.PARTNER_PER_SECOND,
                                    per_day=quota.PARTNER_PER_DAY)
    )
    assert (saved.per_second, saved.per_day) == (10.0, 250_000)
    assert not saved.per_second_is_default and saved.updated_at is not None
    back = svc.set_key_limits(db, admin, KEY, KeyLimitsIn())
    assert (back.per_second, back.per_day, back.per_day_is_default) == (4.0, 10_000, True)


# ----------------------------------------------------------------------------- the guard


def _busy_day(db: Session, admin: User, clock: ManualClock) -> tuple[Integration, Integration]:
    """Two hourly integrations on one key with 2,000 calls a day: 20 calls a scheduled run
    (30 runs, 600 calls left today at 09:00; 960 a whole day), 700 calls spent this morning,
    and a whole read of contacts known to cost 800."""
    a = _integration(db, admin, "acme")
    b = _integration(db, admin, "bravo")
    now = clock.now()
    for integ in (a, b):
        _history(db, integ, now, [19, 19, 19])
    _past_run(db, a, {"contacts": 800}, finished=now - timedelta(days=2), kind="resync",
              trigger="resync", full_refresh=["contacts"])
    _past_run(db, b, {"contacts": 700}, finished=now - timedelta(hours=2))
    _set_limits(db, admin, per_day=2_000)
    return a, b


def test_a_resync_is_deferred_while_the_scheduled_runs_fit(
    plane: ControlPlane, db: Session, admin: User, clock: ManualClock
) -> None:
    a, _b = _busy_day(db, admin, clock)
    resync_id = svc.resync_table(db, a, "contacts", admin).id
    assert plane.claim_next("w1") is None  # 800 > 2,000 - 700 used - 600 reserved
    run = _get(db, resync_id)
    assert run.status == "deferred" and run.started_at is None
    assert run.resume_at == datetime(2026, 3, 3, tzinfo=UTC)
    assert run.defer_reason is not None
    assert run.defer_reason.startswith(
        "next run at 00:00 UTC: today's quota is reserved for 30 scheduled runs"
    )
    assert run.estimated_calls == 800 and run.kind == "resync"
    # deferred: the bookmark stays until the re-sync starts, so the scheduled runs meanwhile
    # read changes only (as planned), not the whole table
    assert StateStore(plane.engine, create=False).get("acme", "contacts") is not None
    logs = list(db.scalars(sa.select(RunLog.message).where(RunLog.run_id == run.id)))
    db.rollback()  # a service session holds SQLite's write lock: release it for the plane
    assert any(m.startswith("Deferred: next run at 00:00 UTC") for m in logs)
    # the scheduled runs still start: they are what the quota is reserved for
    enqueued = plane.tick().enqueued
    assert len(enqueued) == 2 and resync_id not in enqueued
    started = {plane.claim_next("w1"), plane.claim_next("w2")}
    assert started == set(enqueued)
    # a request deferred just the same folds into the deferred run instead of piling up...
    assert svc.resync_table(db, a, "contacts", admin).id == resync_id
    assert _get(db, resync_id).status == "deferred"
    # ...while one that fits now (a small table: ~20 calls) does not wait for it
    small = svc.resync_table(db, a, "contact_lists", admin)
    assert small.id != resync_id and small.status == "queued"
    assert small.estimated_calls == quota.DEFAULT_FULL_TABLE_CALLS


def test_run_now_says_the_quota_is_spent_before_creating_a_job(
    plane: ControlPlane, db: Session, admin: User, clock: ManualClock
) -> None:
    a, _b = _busy_day(db, admin, clock)
    assert svc.run_now_check(db, a) is None  # 20 calls fit in the 700 left after reserving
    _past_run(db, a, {"contacts": 690}, finished=clock.now() - timedelta(minutes=30))
    reason = svc.run_now_check(db, a)
    assert reason is not None
    assert reason.startswith("next run at 00:00 UTC: today's quota is reserved for 30")
    before = counts(db)
    with pytest.raises(QuotaWouldDefer) as err:
        svc.run_now(db, a, admin)
    assert "today's quota is reserved for 30 scheduled runs" in str(err.value)
    assert counts(db) == before
    # asked to, it queues the run and the guard defers it
    run = svc.run_now(db, a, admin, when_quota_allows=True)
    assert plane.claim_next("w1") is None
    assert _get(db, run.id).status == "deferred"


def test_a_scheduled_run_is_deferred_only_when_the_quota_is_spent(
    plane: ControlPlane, db: Session, admin: User, clock: ManualClock
) -> None:
    a, _b = _busy_day(db, admin, clock)
    _past_run(db, a, {"contacts": 1_290}, finished=clock.now() - timedelta(minutes=30))
    # 1,990 of 2,000 used: a scheduled run of 20 does not fit either
    (run_id, other) = plane.tick().enqueued
    assert plane.claim_next("w1") is None
    deferred = _get(db, run_id)
    assert deferred.status == "deferred" and deferred.defer_reason is not None
    assert "today's quota is spent (1,990 of 2,000" in deferred.defer_reason
    assert _get(db, other).status == "deferred"
    # the next slot is served by the deferred run: no pile of scheduled runs
    clock.advance(timedelta(hours=1))
    assert plane.tick().enqueued == []


def test_deferred_runs_resume_after_the_utc_day_rolls(
    plane: ControlPlane, db: Session, admin: User, clock: ManualClock
) -> None:
    a, _b = _busy_day(db, admin, clock)
    resync_id = svc.resync_table(db, a, "contacts", admin).id
    assert plane.claim_next("w1") is None
    clock.advance(timedelta(hours=14, minutes=59, seconds=59))  # 23:59:59
    report = plane.tick()
    assert report.resumed == [] and _get(db, resync_id).status == "deferred"
    db.rollback()
    # the scheduled runs queued by that tick start; finish them so a new day begins clean
    claimed = {plane.claim_next("w1") for _ in report.enqueued}
    assert claimed == set(report.enqueued)
    for run_id in report.enqueued:
        run = db.get(Run, run_id)
        assert run is not None
        run.transition("succeeded")
        run.finished_at = clock.now()
        run.api_calls = 20
        db.commit()
    clock.advance(timedelta(seconds=2))  # 00:00:01 UTC: a new quota
    report = plane.tick()
    assert report.resumed == [resync_id]
    run = _get(db, resync_id)
    assert run.status == "queued" and run.defer_reason is None and run.resume_at is None
    db.rollback()
    # a fresh day: 2,000 - 960 reserved for the day's 48 scheduled runs leaves room for 800
    claimed_now = [plane.claim_next("w1") for _ in range(3)]
    assert resync_id in claimed_now
    assert _get(db, resync_id).status == "running"


def test_a_cancelled_deferred_run_does_not_resume(
    plane: ControlPlane, db: Session, admin: User, clock: ManualClock
) -> None:
    a, _b = _busy_day(db, admin, clock)
    resync_id = svc.resync_table(db, a, "contacts", admin).id
    assert plane.claim_next("w1") is None
    svc.cancel_run(db, svc.get_run(db, admin, resync_id))
    clock.advance(timedelta(days=1))
    assert plane.tick().resumed == []
    assert _get(db, resync_id).status == "cancelled"


def test_the_worker_paces_and_counts_with_the_keys_limits(
    plane: ControlPlane, db: Session, admin: User, clock: ManualClock
) -> None:
    a, _b = _busy_day(db, admin, clock)  # 700 calls today on the key, from the store
    _set_limits(db, admin, per_day=2_000, per_second=2.5)
    run = svc.run_now(db, a, admin)
    assert plane.claim_next("w1") == run.id
    prepared = RunExecutor(plane, run.id, "w1")._prepare()
    assert prepared.config.source.qps_limit == 2.5
    assert prepared.config.source.daily_limit == 2_000
    # the key's process-wide limiter: the key's limits and the store's count for today
    limiter = limiter_for(KEY, 2.5, 2_000)
    assert limiter.used_today == 700 and limiter.remaining_today == 1_300
    # a key without its own limits: the installation's defaults
    svc.set_key_limits(db, admin, KEY, KeyLimitsIn())
    prepared = RunExecutor(plane, run.id, "w1")._prepare()
    assert (prepared.config.source.qps_limit, prepared.config.source.daily_limit) == (
        plane.settings.cc_qps_limit,
        10_000,
    )
    assert prepared.config.tracking == plane.settings.tracking_policy()


def test_tracking_tiers_follow_the_settings(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, tracking_recent_days=14, tracking_oldest_every_hours=336,
                             tracking_events_every_hours=6)
    tiers = quota.tracking_tiers(settings=settings)
    assert (tiers.recent_days, tiers.older_days, tiers.oldest_every_hours) == (14, 90, 336)
    assert tiers.describe()[0] == "Campaigns sent in the last 14 days: checked on every run."
    assert tiers.describe()[2] == "Sent more than 90 days ago: checked every 14 days."
    assert tiers.events_every_hours == 6 == settings.tracking_policy().events_every_hours
    assert tiers.describe()[4].endswith("on every run while it is live, otherwise every 6 hours.")
    policy = settings.tracking_policy()
    assert [(t.older_than_days, t.every_hours) for t in policy.tiers] == [
        (0, 0), (14, 24), (90, 336)
    ]
    with pytest.raises(ValueError, match="CTCTSYNC_TRACKING_OLDER_DAYS must exceed"):
        make_settings(tmp_path, tracking_recent_days=90)


def test_a_v3_integration_spends_the_applications_key(
    tmp_path: Path, clock: ManualClock, migrated_template: Path
) -> None:
    client_id = "a1b2c3d4-app-client-id"
    settings = make_settings(tmp_path, client_id=client_id)
    plane = open_plane(settings, clock, migrated_template)
    try:
        with plane.session() as db:
            admin = svc.ensure_first_admin(db, "ops@example.com", PASSWORD)
            assert admin is not None
            integ = svc.create_integration(db, admin, IntegrationCreate(name="modern"))
            ref = quota.key_of(db, integ)
            label = f"v3 application #{fingerprint(client_id)[:6]}"
            assert ref == quota.KeyRef(fingerprint(client_id), label, "v3")
            # not authorized yet: on the key, not scheduled
            (key,) = svc.quota_overview(db, admin).keys
            assert key.label == label and "a1b2" not in key.model_dump_json()
            assert key.integrations[0].runs_per_day == 0 and key.reserved_today == 0
    finally:
        plane.close()


# ----------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_runs_record_calls_per_table_and_estimates_follow_them(
    sandbox: Sandbox, tmp_path: Path, migrated_template: Path
) -> None:
    """Over real HTTP (the sandbox) into DuckDB: the worker stores each table's calls, and
    the next estimate of the same kind is made of them."""
    settings = make_settings(tmp_path, cc_base_url=sandbox.base_url, cc_qps_limit=None)
    plane = open_plane(settings, ManualClock(datetime.now(UTC)), migrated_template)
    creds = sandbox.credentials
    try:
        with plane.session() as db:
            admin = svc.ensure_first_admin(db, "ops@example.com", PASSWORD)
            assert admin is not None
            integ = svc.create_integration(
                db, admin, IntegrationCreate(name="acme", tables=TABLES, api_version="v2",
                                             history_start=date(2000, 1, 1)),
            )
            integ = svc.set_manual_credentials(db, integ, creds.api_key, creds.access_token,
                                               check_access=False)
            assert svc.estimate_run(db, integ).kind == "first_load"
            db.rollback()  # release SQLite's write lock for the plane
            (first,) = plane.tick().enqueued
            db.rollback()
            assert plane.work_once("w1") == first
            run = _get(db, first)
            assert run.status == "succeeded", run.error
            assert run.kind == "first_load" and run.key_fingerprint == fingerprint(creds.api_key)
            assert run.table_calls is not None and set(run.table_calls) == set(TABLES)
            assert sum(run.table_calls.values()) == run.api_calls > 0
            db.expire_all()
            integ = svc.get_integration(db, admin, integ.id)
            # an incremental run has no incremental history yet: the default model
            assert svc.estimate_run(db, integ).basis == quota.DEFAULT_MODEL
            second = svc.run_now(db, integ, admin).id
            assert plane.work_once("w1") == second
            done = _get(db, second)
            assert done.status == "succeeded" and done.kind == "incremental"
            assert done.table_calls is not None
            est = svc.estimate_run(db, svc.get_integration(db, admin, integ.id))
            assert est.calls == done.api_calls
            assert est.basis == "median of the last 1 incremental run"
            used = svc.integration_budget(db, integ).used_today
            assert used == run.api_calls + done.api_calls
    finally:
        plane.close()


@pytest.mark.postgres
def test_claims_on_one_key_are_serialised_on_postgresql(
    pg_url: str, tmp_path: Path, clock: ManualClock
) -> None:
    plane = ControlPlane(make_settings(tmp_path, database_url=pg_url), clock=clock)
    lock_key = int(KEY[:15], 16)
    probe = sa.select(sa.func.pg_try_advisory_xact_lock(lock_key))
    try:
        with plane.session() as db:
            admin = svc.ensure_first_admin(db, "ops@example.com", PASSWORD)
            assert admin is not None
            integ = _integration(db, admin, "acme")
            assert quota.admit(db, integ, trigger="schedule").start  # a check: no lock
            with plane.engine.connect() as other:
                assert other.scalar(probe) is True
                other.rollback()
            assert quota.admit(db, integ, trigger="schedule", claim=True).start
            with plane.engine.connect() as other:  # another process's claim would wait
                assert other.scalar(probe) is False
                other.rollback()
            db.commit()
            with plane.engine.connect() as other:
                assert other.scalar(probe) is True
    finally:
        plane.close()
