"""The worker fleet (CTCTSYNC_QUEUE=procrastinate): real ``ctctsync worker`` processes on the
real PostgreSQL store, syncing from the sandbox into a PostgreSQL warehouse."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from ctctsync.control import services as svc
from ctctsync.control.fleet import EXECUTE_RUN, TICK, ensure_schema, job_conninfo, tick_cron
from ctctsync.control.models import Integration, Run, User
from ctctsync.control.plane import ControlPlane
from ctctsync.control.schemas import IntegrationCreate, WarehouseIn
from ctctsync.control.settings import ControlSettings
from ctctsync.sandbox import Sandbox

from .conftest import PASSWORD, make_settings

FINISHED = ("succeeded", "failed", "partial", "cancelled")


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


@pytest.fixture
def warehouse_dataset(pg_dsn: str) -> Iterator[str]:
    dataset = f"fleet_{uuid.uuid4().hex[:12]}"
    yield dataset
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for schema in (dataset, f"{dataset}_staging"):
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _start_worker(
    settings: ControlSettings, tmp_path: Path, name: str
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTCTSYNC_")}
    env.update(
        CTCTSYNC_DATABASE_URL=settings.resolved_database_url,
        CTCTSYNC_QUEUE="procrastinate",
        CTCTSYNC_DATA_DIR=str(settings.data_dir),  # the same encryption key file
        CTCTSYNC_CC_BASE_URL=settings.cc_base_url,
        CTCTSYNC_CC_QPS_LIMIT="1000",
        CTCTSYNC_SCHEDULER_INTERVAL_SECONDS="1",
        CTCTSYNC_HEARTBEAT_SECONDS=str(settings.heartbeat_seconds),
        CTCTSYNC_STALE_AFTER_SECONDS=str(settings.stale_after_seconds),
    )
    log = (tmp_path / f"{name}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "ctctsync", "worker", "--concurrency", "2"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _connect(plane: ControlPlane, sandbox: Sandbox, user: User, name: str) -> None:
    """An integration of the sandbox's account, due at once (the periodic tick queues it)."""
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


def _runs(plane: ControlPlane) -> list[Run]:
    with plane.session() as db:
        return list(db.scalars(sa.select(Run).order_by(Run.created_at)))


def _wait(plane: ControlPlane, done: object, timeout: float = 40.0) -> list[Run]:
    """Poll the store until ``done(runs)``: waiting for outcomes, not ordering a race."""
    assert callable(done)
    deadline = time.monotonic() + timeout
    while True:
        runs = _runs(plane)
        if done(runs) or time.monotonic() > deadline:
            return runs
        time.sleep(0.1)


@pytest.mark.postgres
def test_two_workers_run_four_integrations(
    sandbox: Sandbox, pg_url: str, pg_dsn: str, warehouse_dataset: str, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path,
        database_url=pg_url,
        queue="procrastinate",
        cc_base_url=sandbox.base_url,
        cc_qps_limit=None,
        scheduler_interval_seconds=1,
    )
    plane = ControlPlane(settings)  # the web process: enqueues only
    plane.start()
    assert plane.dead_threads() == [] and not plane._threads  # no scheduler, no workers here
    # Every request waits a little, so runs overlap and a second request finds one running.
    sandbox.faults.add("latency", "*", latency_ms=40)
    with plane.session() as db:
        user = svc.ensure_first_admin(db, "ops@example.com", PASSWORD)
        assert user is not None
        svc.save_warehouse(
            db, WarehouseIn(destination="postgres", credentials=pg_dsn, dataset=warehouse_dataset)
        )
    workers = [_start_worker(settings, tmp_path, f"worker{i}") for i in (1, 2)]
    try:
        # The first load creates dlt's shared tables of the dataset; concurrent first loads
        # race on them (the loader loads again, test_loader covers that), so "one" goes first
        # and this test stays about the fleet.
        _connect(plane, sandbox, user, "one")
        _wait(plane, lambda rs: len(rs) == 1 and rs[0].status in FINISHED)
        for name in ("two", "three", "four"):
            _connect(plane, sandbox, user, name)
        # The periodic tick (in whichever worker) queues the due integrations' runs.
        runs = _wait(plane, lambda rs: any(r.status == "running" for r in rs))
        running = next(r for r in runs if r.status == "running")
        with plane.session() as db:
            integ = db.get(Integration, running.integration_id)
            assert integ is not None
            again = svc.run_now(db, integ, user)  # queued while its integration runs
        runs = _wait(plane, lambda rs: len(rs) == 5 and all(r.status in FINISHED for r in rs))
    finally:
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(30) for proc in workers]
        plane.close()
    logs = "\n".join((tmp_path / f"worker{i}.log").read_text() for i in (1, 2))
    assert codes == [0, 0], logs
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
        executed = conn.execute(
            "SELECT status, count(*) FROM procrastinate_jobs WHERE task_name = %s GROUP BY 1",
            (EXECUTE_RUN,),
        ).fetchall()
    # Both workers run the periodic deferrer for seconds; each timestamp became one job.
    assert len(ticks) >= 2 and all(count == 1 for _, count in ticks), ticks
    assert dict(executed).get("succeeded", 0) >= 5, executed


@pytest.mark.postgres
def test_sigterm_cancels_the_running_sync(
    sandbox: Sandbox, pg_url: str, pg_dsn: str, warehouse_dataset: str, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path,
        database_url=pg_url,
        queue="procrastinate",
        cc_base_url=sandbox.base_url,
        cc_qps_limit=None,
        scheduler_interval_seconds=1,
    )
    plane = ControlPlane(settings)
    sandbox.faults.add("latency", "*", latency_ms=400)  # a run that lasts seconds
    with plane.session() as db:
        user = svc.ensure_first_admin(db, "ops@example.com", PASSWORD)
        assert user is not None
        svc.save_warehouse(
            db, WarehouseIn(destination="postgres", credentials=pg_dsn, dataset=warehouse_dataset)
        )
    worker = _start_worker(settings, tmp_path, "worker")
    try:
        _connect(plane, sandbox, user, "one")
        runs = _wait(plane, lambda rs: any(r.status == "running" for r in rs))
        assert [r.status for r in runs] == ["running"]
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(30)
    runs = _runs(plane)
    plane.close()
    assert code == 0, (tmp_path / "worker.log").read_text()
    assert [r.status for r in runs] == ["cancelled"]  # as serve's shutdown leaves it


@pytest.mark.postgres
def test_a_killed_worker_releases_its_integration(
    sandbox: Sandbox, pg_url: str, pg_dsn: str, warehouse_dataset: str, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path,
        database_url=pg_url,
        queue="procrastinate",
        cc_base_url=sandbox.base_url,
        cc_qps_limit=None,
        scheduler_interval_seconds=1,
        heartbeat_seconds=0.5,
        stale_after_seconds=2,
    )
    plane = ControlPlane(settings)
    latency = sandbox.faults.add("latency", "*", latency_ms=400)
    with plane.session() as db:
        user = svc.ensure_first_admin(db, "ops@example.com", PASSWORD)
        assert user is not None
        svc.save_warehouse(
            db, WarehouseIn(destination="postgres", credentials=pg_dsn, dataset=warehouse_dataset)
        )
    doomed = _start_worker(settings, tmp_path, "doomed")
    survivor = None
    try:
        _connect(plane, sandbox, user, "one")
        runs = _wait(plane, lambda rs: any(r.status == "running" for r in rs))
        assert [r.status for r in runs] == ["running"]
        doomed.kill()  # no SIGTERM: its job stays `doing`, holding the integration's lock
        doomed.wait(10)
        sandbox.faults.remove(latency.id)
        survivor = _start_worker(settings, tmp_path, "survivor")
        runs = _wait(plane, lambda rs: len(rs) == 2 and rs[1].status in FINISHED)
    finally:
        if survivor is not None:
            survivor.send_signal(signal.SIGTERM)
            survivor.wait(30)
        plane.close()
    logs = (tmp_path / "survivor.log").read_text()
    assert [r.status for r in runs] == ["failed", "succeeded"], logs
    assert "worker died" in (runs[0].error or "")
