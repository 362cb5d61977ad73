"""The worker fleet (CTCTSYNC_QUEUE=procrastinate): real ``ctctsync worker`` processes on the
real PostgreSQL store, syncing from the sandbox into a PostgreSQL warehouse."""

from __future__ import annotations

import itertools
import signal
import time
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from pydantic import ValidationError

from ctctsync.control import services as svc
from ctctsync.control.fleet import EXECUTE_RUN, TICK, ensure_schema, job_conninfo, tick_cron
from ctctsync.control.models import Integration, User
from ctctsync.control.plane import ControlPlane
from ctctsync.control.schemas import IntegrationCreate
from ctctsync.sandbox import Sandbox

from .conftest import PASSWORD, make_settings
from .fleet_helpers import (
    FINISHED,
    all_runs,
    fleet_plane,
    jobs_by_status,
    start_worker,
    stop_workers,
    wait_runs,
    worker_logs,
)


def test_procrastinate_needs_a_postgresql_store(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="CTCTSYNC_QUEUE=procrastinate"):
        make_settings(tmp_path, queue="procrastinate")
    assert make_settings(tmp_path).queue == "threads"


@pytest.mark.parametrize(
    ("seconds", "cron"),
    [
        pytest.param(1, "* * * * * */1", id="seconds"),
        pytest.param(15, "* * * * * */15", id="default"),
        pytest.param(300, "*/5 * * * *", id="minutes"),
        pytest.param(7200, "*/59 * * * *", id="capped"),
    ],
)
def test_tick_cron(seconds: float, cron: str) -> None:
    assert tick_cron(seconds) == cron


@pytest.mark.postgres
def test_schema_applied_once(pg_url: str) -> None:
    conninfo = job_conninfo(pg_url)
    assert ensure_schema(conninfo) is True
    assert ensure_schema(conninfo) is False  # idempotent: a second process finds it there


@pytest.mark.postgres
def test_a_failed_announcement_still_queues_the_run(
    pg_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plane = ControlPlane(make_settings(tmp_path, database_url=pg_url, queue="procrastinate"))
    conninfo = job_conninfo(pg_url)
    ensure_schema(conninfo)
    with psycopg.connect(conninfo) as conn:  # a broken job store: deferring raises
        conn.execute("DROP FUNCTION procrastinate_defer_jobs_v1")
    try:
        with plane.session() as db:
            user = svc.ensure_first_admin(db, "ops@example.com", PASSWORD)
            assert user is not None
            integ = svc.create_integration(db, user, IntegrationCreate(name="one"))
            svc.set_manual_credentials(db, integ, "k", "t", check_access=False)
            run = svc.run_now(db, integ, user)
        assert run.status == "queued"  # the request succeeds; the next tick announces it
        assert "could not announce the queued runs" in caplog.text
    finally:
        plane.close()


def _connect(plane: ControlPlane, sandbox: Sandbox, user: User, name: str) -> int:
    """An integration of the sandbox's account, due at once (the periodic tick queues it);
    returns its id."""
    with plane.session() as db:
        integ = svc.create_integration(
            db,
            user,
            IntegrationCreate(
                name=name, history_start="2000-01-01", tables={"contact_lists": None}
            ),
        )
        creds = sandbox.credentials
        svc.set_manual_credentials(db, integ, creds.api_key, creds.access_token)
        return integ.id


@pytest.mark.postgres
def test_two_workers_run_four_integrations(
    sandbox: Sandbox, pg_url: str, pg_dsn: str, warehouse_dataset: str, tmp_path: Path
) -> None:
    plane, user = fleet_plane(tmp_path, pg_url, sandbox.base_url, pg_dsn, warehouse_dataset)
    plane.start()  # the web process: enqueues only
    assert plane.dead_threads() == [] and not plane._threads  # no scheduler, no workers here
    # Every request waits a little, so runs overlap and a second request finds one running.
    sandbox.faults.add("latency", "*", latency_ms=40)
    workers = [start_worker(plane.settings, tmp_path, f"worker{i}") for i in (1, 2)]
    try:
        # The first load creates dlt's shared tables of the dataset; concurrent first loads
        # race on them (the loader loads again, test_loader covers that), so "one" goes first
        # and this test stays about the fleet.
        _connect(plane, sandbox, user, "one")
        wait_runs(plane, lambda rs: len(rs) == 1 and rs[0].status in FINISHED, "the first run")
        for name in ("two", "three", "four"):
            _connect(plane, sandbox, user, name)
        # The periodic tick (in whichever worker) queues the due integrations' runs.
        runs = wait_runs(plane, lambda rs: any(r.status == "running" for r in rs), "a run")
        running = next(r for r in runs if r.status == "running")
        with plane.session() as db:
            integ = db.get(Integration, running.integration_id)
            assert integ is not None
            again = svc.run_now(db, integ, user)  # queued while its integration runs
        runs = wait_runs(
            plane, lambda rs: len(rs) == 5 and all(r.status in FINISHED for r in rs), "5 runs"
        )
    finally:
        codes = stop_workers(workers)
        plane.close()
    assert codes == [0, 0], worker_logs(tmp_path, ["worker1", "worker2"])
    assert [r.status for r in runs] == ["succeeded"] * 5, [r.error for r in runs]
    assert sorted(r.trigger for r in runs) == ["manual"] + ["schedule"] * 4
    by_integration: dict[int, list[tuple[datetime, datetime]]] = {}
    for run in runs:
        assert run.started_at is not None and run.finished_at is not None
        by_integration.setdefault(run.integration_id, []).append((run.started_at, run.finished_at))
    for spans in by_integration.values():  # never two runs of one integration at once
        spans.sort()
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))
    second = next(r for r in runs if r.id == again.id)
    first = next(r for r in runs if r.id == running.id)
    assert first.finished_at is not None and second.started_at is not None
    assert second.started_at >= first.finished_at  # it waited for the running one

    with psycopg.connect(job_conninfo(pg_url)) as conn:
        ticks = conn.execute(
            "SELECT args->>'timestamp', count(*) FROM procrastinate_jobs WHERE task_name = %s"
            " GROUP BY 1",
            (TICK,),
        ).fetchall()
    # Both workers run the periodic deferrer for seconds; each timestamp became one job.
    assert len(ticks) >= 2 and all(count == 1 for _, count in ticks), ticks
    executed = jobs_by_status(pg_url, EXECUTE_RUN)
    assert executed.get("succeeded", 0) >= 5, executed


@pytest.mark.postgres
def test_sigterm_cancels_the_running_sync(
    sandbox: Sandbox, pg_url: str, pg_dsn: str, warehouse_dataset: str, tmp_path: Path
) -> None:
    plane, user = fleet_plane(tmp_path, pg_url, sandbox.base_url, pg_dsn, warehouse_dataset)
    sandbox.faults.add("latency", "*", latency_ms=400)  # a run that lasts seconds
    worker = start_worker(plane.settings, tmp_path, "worker")
    try:
        _connect(plane, sandbox, user, "one")
        runs = wait_runs(plane, lambda rs: any(r.status == "running" for r in rs), "a run")
        assert [r.status for r in runs] == ["running"]
    finally:
        codes = stop_workers([worker])
    runs = all_runs(plane)
    plane.close()
    assert codes == [0], worker_logs(tmp_path, ["worker"])
    assert [r.status for r in runs] == ["cancelled"]  # as serve's shutdown leaves it


@pytest.mark.postgres
def test_a_killed_worker_releases_its_integration(
    sandbox: Sandbox, pg_url: str, pg_dsn: str, warehouse_dataset: str, tmp_path: Path
) -> None:
    plane, user = fleet_plane(
        tmp_path,
        pg_url,
        sandbox.base_url,
        pg_dsn,
        warehouse_dataset,
        heartbeat_seconds=0.5,
        stale_after_seconds=2,
    )
    latency = sandbox.faults.add("latency", "*", latency_ms=400)
    doomed = start_worker(plane.settings, tmp_path, "doomed")
    workers = [doomed]
    try:
        _connect(plane, sandbox, user, "one")
        runs = wait_runs(plane, lambda rs: any(r.status == "running" for r in rs), "a run")
        assert [r.status for r in runs] == ["running"]
        doomed.kill()  # no SIGTERM: its job stays `doing`, holding the integration's lock
        doomed.wait(10)
        sandbox.faults.remove(latency.id)
        workers.append(start_worker(plane.settings, tmp_path, "survivor"))
        runs = wait_runs(
            plane, lambda rs: len(rs) == 2 and rs[1].status in FINISHED, "the second run"
        )
    finally:
        stop_workers(workers)
        plane.close()
    logs = worker_logs(tmp_path, ["survivor"])
    assert [r.status for r in runs] == ["failed", "succeeded"], logs
    assert "worker died" in (runs[0].error or "")


@pytest.mark.postgres
def test_a_worker_killed_during_the_tick_leaves_the_schedule_to_the_others(
    sandbox: Sandbox, pg_url: str, pg_dsn: str, warehouse_dataset: str, tmp_path: Path
) -> None:
    """The tick job holds the fleet's one tick lock: a worker SIGKILLed inside it must not
    stop the schedule. A survivor releases the dead worker's tick, then ticks itself."""
    plane, user = fleet_plane(
        tmp_path,
        pg_url,
        sandbox.base_url,
        pg_dsn,
        warehouse_dataset,
        heartbeat_seconds=0.5,
        stale_after_seconds=2,
    )
    conninfo = job_conninfo(pg_url)
    ensure_schema(conninfo)  # what the worker does first; the test reads the jobs at once
    doomed = start_worker(plane.settings, tmp_path, "doomed")
    workers = [doomed]
    try:
        # Hold the tick inside its job: it waits on a lock of the integrations table (its
        # query of the due integrations), so the worker dies with its tick `doing`.
        with psycopg.connect(conninfo) as blocker:
            blocker.execute("LOCK TABLE integrations IN ACCESS EXCLUSIVE MODE")
            ticking = _wait_for_doing_tick(conninfo)
            doomed.kill()
            doomed.wait(10)
        # the lock released (the transaction committed): the dead worker's tick stays `doing`
        workers.append(start_worker(plane.settings, tmp_path, "survivor"))
        integration = _connect(plane, sandbox, user, "one")
        runs = wait_runs(
            plane,
            lambda rs: len(rs) == 1 and rs[0].status in FINISHED,
            "a scheduled run after the tick's worker died",
            30,
        )
    finally:
        codes = stop_workers(workers)
        plane.close()
    logs = worker_logs(tmp_path, ["doomed", "survivor"])
    assert codes == [-signal.SIGKILL, 0], logs
    assert [(r.integration_id, r.trigger, r.status) for r in runs] == [
        (integration, "schedule", "succeeded")
    ], logs
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(
            "SELECT status::text FROM procrastinate_jobs WHERE id = %s", (ticking,)
        ).fetchone()
    assert row == ("failed",), logs  # released by the survivor, not left `doing`
    assert f"job {ticking} ({TICK}) of a stalled worker" in logs


def _wait_for_doing_tick(conninfo: str, timeout: float = 20.0) -> int:
    """The id of the tick job a worker is running (polled from another connection)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(conninfo, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT id FROM procrastinate_jobs WHERE task_name = %s AND status = 'doing'",
                (TICK,),
            ).fetchone()
            if row is not None:
                return int(row[0])
            time.sleep(0.05)
    pytest.fail(f"no tick job started within {timeout:.0f} s")
