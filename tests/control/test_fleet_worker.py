"""The fleet worker's janitor on the real PostgreSQL store: which ``doing`` jobs it releases
(a dead worker's, its own orphans) and which it must leave (its own running ones, a live
worker's). The processes around it: test_fleet.py and test_fleet_restart.py."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from procrastinate import App, PsycopgConnector

from ctctsync.control.fleet import QUEUE, ensure_schema, job_conninfo
from ctctsync.control.fleet_worker import FleetWorker, connection_lost

pytestmark = pytest.mark.postgres

STALE = 30.0


def _status(conninfo: str, job_id: int) -> str:
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(
            "SELECT status::text FROM procrastinate_jobs WHERE id = %s", (job_id,)
        ).fetchone()
    assert row is not None
    return str(row[0])


def test_the_janitor_releases_dead_and_orphaned_jobs_only(pg_url: str) -> None:
    conninfo = job_conninfo(pg_url)
    ensure_schema(conninfo)
    app = App(connector=PsycopgConnector(conninfo=conninfo))

    @app.task(name="held", queue=QUEUE)
    def held(n: int) -> None:  # never run here: the test moves the jobs by hand
        raise AssertionError(n)

    async def scenario() -> dict[str, object]:
        async with app.open_async():
            manager = app.job_manager
            me = FleetWorker(app=app, queue=QUEUE, stalled_worker_timeout=STALE)
            me.worker_id = await manager.register_worker()
            dead = await manager.register_worker()
            alive = await manager.register_worker()
            jobs: dict[str, int] = {}
            for name, worker in (("dead", dead), ("alive", alive), ("orphan", me.worker_id)):
                job_id = await app.configure_task("held", lock=name).defer_async(n=1)
                fetched = await manager.fetch_job(queues=[QUEUE], worker_id=worker)
                assert fetched is not None and fetched.id == job_id
                jobs[name] = job_id
            # `dead` stopped beating; so did this worker, as far as the store knows (its beat
            # waited for a lost store): it must not take itself for dead
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute(
                    "UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 hour'"
                    " WHERE id = ANY(%s)",
                    ([dead, me.worker_id],),
                )
            stalled = await me.release_stalled_jobs()
            again = await me.release_stalled_jobs()  # a second janitor finds nothing to do
            orphans = await me.release_own_orphans()
            return {"jobs": jobs, "stalled": stalled, "again": again, "orphans": orphans}

    out = asyncio.run(scenario())
    jobs = out["jobs"]
    assert isinstance(jobs, dict)
    assert out["stalled"] == [jobs["dead"]]
    assert out["again"] == []
    assert out["orphans"] == [jobs["orphan"]]  # not running in this worker: released
    assert _status(conninfo, jobs["dead"]) == "failed"
    assert _status(conninfo, jobs["orphan"]) == "failed"
    assert _status(conninfo, jobs["alive"]) == "doing"  # a live worker's job stays


def test_connection_lost_tells_a_cut_store_from_a_bad_statement() -> None:
    from procrastinate.exceptions import ConnectorException

    def wrapped(cause: Exception) -> ConnectorException:
        try:
            raise ConnectorException() from cause
        except ConnectorException as exc:
            return exc

    assert connection_lost(wrapped(psycopg.errors.AdminShutdown("restarting")))
    assert connection_lost(wrapped(psycopg.OperationalError("connection refused")))
    assert not connection_lost(wrapped(psycopg.errors.UndefinedTable("no such table")))
    assert not connection_lost(wrapped(psycopg.errors.RaiseException("not doing")))
