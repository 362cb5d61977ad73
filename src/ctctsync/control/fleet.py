"""The worker fleet (``CTCTSYNC_QUEUE=procrastinate``): queued runs carried to any number of
``ctctsync worker`` processes by procrastinate jobs in the store's PostgreSQL.

The run rows stay ours (statuses, heartbeats, the sweeper, the UI); a procrastinate job only
says "run X is ready". Each ``execute_run`` job carries the integration's id as both its
``lock`` (no two jobs of one integration run at once) and its ``queueing_lock`` (at most one
waits): procrastinate's two rules are exactly ours, one running and one queued run per
integration. The periodic ``tick`` job (every ``scheduler_interval_seconds``) schedules due
runs and sweeps stale ones; procrastinate defers each periodic timestamp once across the
fleet, so the schedule fires once however many workers run. docs/architecture.md, "The
worker fleet".

This module does not import the plane (the plane imports it): it drives the plane through
:class:`FleetPlane`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

import psycopg
import sqlalchemy as sa
from asgiref.sync import sync_to_async
from procrastinate import App, JobContext, PsycopgConnector
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.schema import SchemaManager
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.engine import Engine, make_url

from ctctsync.control.fleet_worker import FleetWorker
from ctctsync.control.models import Run
from ctctsync.control.settings import ControlSettings

log = logging.getLogger(__name__)

QUEUE = "ctctsync-runs"
"""The procrastinate queue of our jobs (a worker listens to it alone)."""
EXECUTE_RUN = "ctctsync.execute_run"
TICK = "ctctsync.tick"
PRUNE = "ctctsync.prune"
NOTIFY = "ctctsync.notify"

SCHEMA_LOCK_KEY = 0x63746374_6A6F6273  # "ctctjobs": one process applies the schema at a time
"""The advisory lock held while checking for and applying procrastinate's schema."""


class FleetPlane(Protocol):
    """What the fleet needs of the control plane (``ControlPlane`` fits)."""

    settings: ControlSettings
    engine: Engine
    process_id: str

    def tick(self) -> object: ...

    def prune(self, max_batches: int = 5) -> int: ...

    def send_notifications(self) -> object: ...

    def work_once(
        self,
        worker_id: str | None = None,
        run_id: str | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> str | None: ...


def job_conninfo(store_url: str) -> str:
    """The libpq URL of the store (SQLAlchemy's ``+driver`` dropped; query options such as a
    ``search_path`` kept, so procrastinate's tables sit beside ours)."""
    return make_url(store_url).set(drivername="postgresql").render_as_string(hide_password=False)


def tick_cron(interval_seconds: float) -> str:
    """A cron line firing about every ``interval_seconds`` (procrastinate takes a sixth
    column for seconds); minute steps from 60 s up, at most hourly."""
    seconds = max(1, round(interval_seconds))
    if seconds < 60:
        return f"* * * * * */{seconds}"
    return f"*/{min(59, seconds // 60)} * * * *"


def ensure_schema(conninfo: str) -> bool:
    """Apply procrastinate's schema unless its tables exist; True when it was applied.

    Idempotent and safe when several processes start together: the check and the apply run
    in one transaction under an advisory lock. procrastinate's ``schema --apply`` is not
    idempotent (it creates types and functions), hence the check.
    """
    with psycopg.connect(conninfo) as conn:  # one transaction, committed on exit
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
        row = conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()
        if row is not None and row[0] is not None:
            return False
        # No parameters: psycopg sends the whole script at once (several statements).
        conn.execute(SchemaManager.get_schema())
        log.info("applied procrastinate's schema to the store")
        return True


class RunQueue:
    """The procrastinate app of one process: defers ``execute_run`` jobs (any process) and
    runs them (``ctctsync worker``)."""

    def __init__(self, plane: FleetPlane) -> None:
        self.plane = plane
        self.conninfo = job_conninfo(plane.settings.resolved_database_url)
        self.app = App(
            connector=PsycopgConnector(
                conninfo=self.conninfo,
                min_size=1,
                max_size=4,
                check=AsyncConnectionPool.check_connection,  # see run_worker
            )
        )
        self._sync_open = False
        self._open_lock = threading.Lock()
        self._register_tasks()

    # ------------------------------------------------------------------ tasks

    def _register_tasks(self) -> None:
        app = self.app

        @app.task(name=EXECUTE_RUN, queue=QUEUE, pass_context=True)
        def execute_run(context: JobContext, run_id: str) -> None:
            self._execute(context, run_id)

        # queueing_lock: ticks missed while no worker ran collapse into one; lock: never
        # two ticks at once.
        @app.periodic(cron=tick_cron(self.plane.settings.scheduler_interval_seconds))
        @app.task(name=TICK, queue=QUEUE, queueing_lock=TICK, lock=TICK)
        async def tick(timestamp: int) -> None:
            await sync_to_async(self.plane.tick, thread_sensitive=False)()
            # Runs queued again without a new run (the quota's reset) and any announcement
            # that failed: every queued run has a job after each tick.
            await sync_to_async(self.announce_queued, thread_sensitive=False)()

        # The notification outbox, as serve's notifier thread does: a job of its own so a
        # slow mail server never holds the tick's lock.
        @app.periodic(cron=tick_cron(self.plane.settings.scheduler_interval_seconds))
        @app.task(name=NOTIFY, queue=QUEUE, queueing_lock=NOTIFY, lock=NOTIFY)
        def notify(timestamp: int) -> None:
            self.plane.send_notifications()

        @app.periodic(cron="*/10 * * * *")  # the threads' PRUNE_EVERY_SECONDS
        @app.task(name=PRUNE, queue=QUEUE, queueing_lock=PRUNE, lock=PRUNE)
        def prune(timestamp: int) -> None:
            self.plane.prune()

    def _execute(self, context: JobContext, run_id: str) -> None:
        job = context.job
        worker = f"{self.plane.process_id}:job-{job.id}"
        # procrastinate's abort (our shutdown on SIGTERM) stops the sync the way serve's does.
        claimed = self.plane.work_once(worker, run_id, should_stop=context.should_abort)
        if claimed is not None or job.lock is None:
            return
        # The announced run is no longer queued (cancelled, or the quota deferred it) but a
        # newer queued run of the integration may have found this job waiting
        # (queueing_lock): serve that one.
        with self.plane.engine.connect() as conn:
            other = conn.scalar(
                # the lock is the integration's id as text
                sa.select(Run.id).where(Run.integration_id == int(job.lock), Run.status == "queued")
            )
        if other is not None:
            self.plane.work_once(worker, other, should_stop=context.should_abort)

    # ------------------------------------------------------------------ deferring

    def _ensure_open(self) -> None:
        """Open the app for synchronous defers (``serve``; a worker is already open)."""
        with self._open_lock:
            if self._sync_open or self.app.connector.get_sync_connector() is self.app.connector:
                return
            ensure_schema(self.conninfo)
            self.app.open()
            self._sync_open = True

    def announce_queued(self) -> list[str]:
        """Defer an ``execute_run`` job for every queued run; returns the ids announced now.

        The plane calls it when a run is queued (``ControlContext.wake``). A run whose
        integration already has a waiting job is skipped by procrastinate
        (``queueing_lock``): that job serves the integration's queued run.
        """
        self._ensure_open()
        with self.plane.engine.connect() as conn:
            queued = conn.execute(
                sa.select(Run.id, Run.integration_id)
                .where(Run.status == "queued")
                .order_by(Run.created_at, Run.id)
            ).all()
        announced: list[str] = []
        for run_id, integration_id in queued:
            deferrer = self.app.configure_task(
                EXECUTE_RUN, lock=integration_id, queueing_lock=integration_id
            )
            try:
                deferrer.defer(run_id=run_id)
            except AlreadyEnqueued:
                continue
            announced.append(run_id)
        return announced

    # ------------------------------------------------------------------ worker

    def run_worker(self, concurrency: int) -> None:
        """Run jobs until SIGTERM/SIGINT: at most ``concurrency`` runs at once.

        On the signal procrastinate stops fetching and, with no grace period, marks the
        running jobs aborted: their syncs stop within the request in flight and end
        ``cancelled`` (bookmarks keep what was committed), as ``serve`` does on shutdown.
        """
        ensure_schema(self.conninfo)
        settings = self.plane.settings

        async def main() -> None:
            # Our pool: each running sync may defer from its thread, plus the listener. Each
            # connection is checked as it leaves the pool: after a restart of the store the
            # idle ones are dead, and a dead one would fail its first query.
            pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
                self.conninfo,
                min_size=1,
                max_size=concurrency + 4,
                open=False,
                check=AsyncConnectionPool.check_connection,
            )
            async with pool, self.app.open_async(pool):
                worker = FleetWorker(
                    app=self.app,
                    queue=QUEUE,
                    concurrency=concurrency,
                    name=self.plane.process_id,
                    shutdown_graceful_timeout=0,
                    install_signal_handlers=True,
                    # Beat as often as a run does: a worker silent for stale_after_seconds
                    # (> 2 beats, validated) is dead, never a live one.
                    update_heartbeat_interval=settings.heartbeat_seconds,
                    stalled_worker_timeout=settings.stale_after_seconds,
                )
                await worker.run()  # type: ignore[no-untyped-call]  # procrastinate: untyped

        asyncio.run(main())

    def close(self) -> None:
        """Release the synchronous connections (``serve``)."""
        with self._open_lock:
            if self._sync_open:
                self.app.close()
                self._sync_open = False


__all__ = [
    "EXECUTE_RUN",
    "NOTIFY",
    "PRUNE",
    "QUEUE",
    "TICK",
    "FleetPlane",
    "RunQueue",
    "ensure_schema",
    "job_conninfo",
    "tick_cron",
]
