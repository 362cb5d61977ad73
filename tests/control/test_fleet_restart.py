"""A PostgreSQL restart under a running fleet: every connection of the workers is cut in the
middle of a run, and stays refused for a while, as a server restart looks to its clients.

The machine's PostgreSQL is shared (other tests, other checkouts), so it is not restarted:
the test ends every backend of its own store and warehouse (found by an ``application_name``
of the test's own) with ``pg_terminate_backend``, again and again for :data:`OUTAGE_SECONDS`,
so reconnections made meanwhile are cut too. To the workers that is a restart: the sockets
close under them with ``57P01 terminating connection due to administrator command``.
"""

from __future__ import annotations

import time
import uuid
from datetime import date
from pathlib import Path

import psycopg
import pytest
from pydantic import SecretStr

from ctctsync.config import WarehouseConfig
from ctctsync.control import services as svc
from ctctsync.control.fleet import EXECUTE_RUN, TICK
from ctctsync.control.models import User
from ctctsync.control.plane import ControlPlane
from ctctsync.control.schemas import IntegrationCreate
from ctctsync.sandbox import Sandbox
from e2e.sync_truth import assert_matches_truth

from .fleet_helpers import (
    FINISHED,
    fleet_plane,
    jobs_by_status,
    start_worker,
    stop_workers,
    wait_runs,
    worker_logs,
)

pytestmark = pytest.mark.postgres

OUTAGE_SECONDS = 3.0
"""How long every new connection is cut: a quick restart (a server's shutdown and start)."""
TABLES = ("contact_lists", "contacts")


def _with_app_name(url: str, name: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}application_name={name}"


def _cut_connections(admin_dsn: str, app_name: str, seconds: float) -> int:
    """End every backend named ``app_name``, repeatedly for ``seconds``; returns how many."""
    ended = 0
    deadline = time.monotonic() + seconds
    with psycopg.connect(admin_dsn, autocommit=True, application_name="fleet-restarter") as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))"
                " FROM pg_stat_activity WHERE application_name = %s AND pid <> pg_backend_pid()",
                (app_name,),
            ).fetchone()
            ended += int(row[0]) if row else 0
            time.sleep(0.05)
    return ended


def _connect(plane: ControlPlane, sandbox: Sandbox, user: User, name: str) -> int:
    """A v2 integration of the sandbox's account reading :data:`TABLES`, due at once."""
    with plane.session() as db:
        integ = svc.create_integration(
            db,
            user,
            IntegrationCreate(
                name=name,
                api_version="v2",
                history_start=date(2000, 1, 1),
                tables=dict.fromkeys(TABLES, None),
            ),
        )
        creds = sandbox.credentials
        svc.set_manual_credentials(db, integ, creds.api_key, creds.access_token)
        return integ.id


def _settled_jobs(pg_url: str, timeout: float) -> tuple[dict[str, int], dict[str, int]]:
    """The run and tick jobs by status once no run job is doing or to do and no tick job is
    doing, or as they are at the deadline (the caller's assertion then names them)."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = jobs_by_status(pg_url, EXECUTE_RUN)
        ticks = jobs_by_status(pg_url, TICK)
        settled = not {"doing", "todo"} & jobs.keys() and "doing" not in ticks
        if settled or time.monotonic() > deadline:
            return jobs, ticks
        time.sleep(0.2)


@pytest.mark.timeout(180)
def test_workers_ride_out_a_postgresql_restart_mid_run(
    sandbox: Sandbox, pg_url: str, pg_dsn: str, warehouse_dataset: str, tmp_path: Path
) -> None:
    app_name = f"ctctsync-restart-{uuid.uuid4().hex[:8]}"
    plane, user = fleet_plane(
        tmp_path,
        _with_app_name(pg_url, app_name),
        sandbox.base_url,
        _with_app_name(pg_dsn, app_name),
        warehouse_dataset,
        # The pool reconnects with a growing wait (1 s, 2 s, ...): a worker's first beat after
        # the outage may come a few seconds late; 10 s leaves it the time.
        heartbeat_seconds=0.5,
        stale_after_seconds=10,
    )
    latency = sandbox.faults.add("latency", "*", latency_ms=150)  # a run of seconds
    workers = [start_worker(plane.settings, tmp_path, f"worker{i}") for i in (1, 2)]
    names = ["worker1", "worker2"]
    try:
        first = _connect(plane, sandbox, user, "one")
        wait_runs(
            plane,
            lambda rs: len(rs) == 1 and rs[0].status == "running" and (rs[0].api_calls or 0) > 1,
            "the first run to be part way",
        )
        ended = _cut_connections(pg_dsn, app_name, OUTAGE_SECONDS)
        alive = [w.poll() is None for w in workers]
        sandbox.faults.remove(latency.id)
        # The schedule goes on after the restart: a new integration is queued by a tick.
        second = _connect(plane, sandbox, user, "two")
        runs = wait_runs(
            plane,
            lambda rs: all(r.status in FINISHED for r in rs)
            and {r.integration_id for r in rs if r.status == "succeeded"} == {first, second},
            "both integrations to succeed after the restart",
            60,
        )
        # The runs' rows are final, but a worker may still be writing the end of a job it
        # ran across the outage (it retries that write until the stalled-worker timeout),
        # and a job the outage failed may be queued again (it then finds its run finished).
        # What must hold is that the queue settles: nothing left doing or to do.
        jobs, ticks = _settled_jobs(pg_url, timeout=30.0)
    finally:
        codes = stop_workers(workers)
        plane.close()
    logs = worker_logs(tmp_path, names)
    assert ended >= 2, f"the outage cut {ended} connections: the test missed the workers"
    assert alive == [True, True], logs  # they rode it out: no process restarted them
    assert codes == [0, 0], logs
    # the run in flight completed, or failed and was run again; none is left running
    statuses = [(r.integration_id, r.status) for r in runs]
    assert statuses.count((second, "succeeded")) == 1, statuses
    assert all(s in ("succeeded", "failed") for _, s in statuses), (statuses, logs)
    assert not {"doing", "todo"} & jobs.keys() and "doing" not in ticks, (jobs, ticks, logs)
    wcfg = WarehouseConfig(
        destination="postgres", credentials=SecretStr(pg_dsn), dataset=warehouse_dataset
    )
    for table in TABLES:  # each integration's tables equal the truth: nothing lost or twice
        for name in ("one", "two"):
            assert_matches_truth(sandbox, wcfg, table, integration=name)
    print(f"\n{ended} connections cut; runs: {statuses}; execute_run jobs: {jobs}")
