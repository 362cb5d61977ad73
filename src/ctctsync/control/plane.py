"""The control plane at run time: sessions, the scheduler, the sweeper and the workers.

Everything that decides *what* happens is a plain method driven by the plane's clock --
:meth:`ControlPlane.tick` (schedule due runs, fail stale ones) and
:meth:`ControlPlane.work_once` (claim and execute one queued run) -- so tests call them
directly with a ``ManualClock``; :meth:`ControlPlane.start` merely calls them from threads.

Guarantees come from the database, not from in-process locks, so they hold when several
processes share one PostgreSQL store: a partial unique index allows one running run per
integration (claiming a second fails), and another allows one queued run (a second request
merges into it).
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ctctsync.control.clock import Clock, SystemClock
from ctctsync.control.context import ControlContext, attach
from ctctsync.control.crypto import SecretBox
from ctctsync.control.database import create_store_engine, upgrade_database, writer
from ctctsync.control.models import FINISHED_RUN_STATUSES, Integration, Run, RunLog
from ctctsync.control.notify import Notifier, SendReport
from ctctsync.control.services import notifications, quota
from ctctsync.control.services.integrations import enqueue_run
from ctctsync.control.settings import ControlSettings
from ctctsync.control.worker import ProgressListener, RunExecutor

if TYPE_CHECKING:
    from ctctsync.control.fleet import RunQueue

log = logging.getLogger(__name__)

PRUNE_EVERY_SECONDS = 600.0
"""How often the scheduler thread prunes old runs (sooner while a backlog remains): the
query ranks every finished run, so it is not worth running on every 15 s tick."""

WORKER_DIED = (
    "The worker running this job stopped responding (worker died). Tables finished before "
    "that are saved; the next run resumes from there."
)


@dataclass
class TickReport:
    """What one scheduler tick did."""

    enqueued: list[str] = field(default_factory=list)
    """Ids of runs queued (or merged into) for integrations that were due."""
    swept: list[str] = field(default_factory=list)
    """Ids of running runs failed because their heartbeat went stale."""
    resumed: list[str] = field(default_factory=list)
    """Ids of deferred runs queued again (the daily quota has reset)."""


def next_slot(previous: datetime, now: datetime, every: timedelta) -> datetime:
    """The first slot ``previous + k * every`` (k >= 1) after ``now``.

    Slots missed while the service was down collapse: one run now, then back on the grid.
    """
    if previous > now:
        return previous
    missed = math.floor((now - previous) / every)
    return previous + (missed + 1) * every


class ControlPlane:
    """The running control plane (one per process)."""

    def __init__(
        self,
        settings: ControlSettings,
        *,
        clock: Clock | None = None,
        engine: Engine | None = None,
        migrate: bool = True,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.engine = engine or create_store_engine(settings.resolved_database_url)
        if migrate:
            upgrade_database(self.engine)
        self._wake = threading.Event()
        self.fleet: RunQueue | None = None
        """The procrastinate queue (``CTCTSYNC_QUEUE=procrastinate``): queued runs are
        announced to ``ctctsync worker`` processes instead of this process's threads."""
        if settings.queue == "procrastinate":
            from ctctsync.control.fleet import RunQueue  # only the fleet needs procrastinate

            self.fleet = RunQueue(self)
        self.context = ControlContext(
            settings=settings,
            box=SecretBox(settings.fernet_key()),
            clock=self.clock,
            engine=self.engine,
            wake=self._wake.set if self.fleet is None else self._announce_queued,
            cancel=self.cancel_local,
        )
        # Sessions read, then write: on SQLite they must hold the write lock from the start.
        self.write_engine = writer(self.engine)
        self._sessions = sessionmaker(self.write_engine, expire_on_commit=False)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listeners: list[ProgressListener] = []
        self._executing: dict[str, RunExecutor] = {}
        """Runs this process executes now, by id (guarded by ``_executing_lock``)."""
        self._executing_lock = threading.Lock()
        self.process_id = f"{socket.gethostname()}:{os.getpid()}"
        self.notifier = Notifier(self)
        """Sends the notification outbox (its own thread here, a periodic job in a fleet)."""
        self._notify_wake = threading.Event()

    # ------------------------------------------------------------------ sessions

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session for service calls (rolled back if left uncommitted, then closed).

        On SQLite an open transaction holds the store's write lock: keep sessions short and
        never hold one across slow work (HTTP calls, syncs).
        """
        db = attach(self._sessions(), self.context)
        try:
            yield db
        finally:
            db.close()

    def _announce_queued(self) -> None:
        assert self.fleet is not None
        try:
            self.fleet.announce_queued()
        except Exception:
            # The run is queued all the same: the fleet's next tick announces it again.
            log.exception("could not announce the queued runs to the workers; the next tick will")

    def add_progress_listener(self, listener: ProgressListener) -> None:
        """Call ``listener(run_id, event)`` on every progress event of every run."""
        self._listeners.append(listener)

    def remove_progress_listener(self, listener: ProgressListener) -> None:
        """Stop calling ``listener``."""
        self._listeners.remove(listener)

    # ------------------------------------------------------------------ scheduler

    def tick(self) -> TickReport:
        """Fail stale runs, then queue a run for every integration that is due."""
        report = TickReport(swept=self.sweep())
        report.resumed = self.resume_deferred()
        now = self.clock.now()
        with self.session() as db:
            due = list(
                db.scalars(
                    sa.select(Integration)
                    .where(
                        Integration.state.in_(("pending", "active")),
                        Integration.credentials_encrypted.is_not(None),
                        Integration.next_run_at.is_not(None),
                        Integration.next_run_at <= now,
                    )
                    .order_by(Integration.next_run_at)
                )
            )
            for integ in due:
                assert integ.next_run_at is not None
                integ.next_run_at = next_slot(
                    integ.next_run_at, now, timedelta(hours=integ.frequency_hours)
                )
                busy = db.scalar(
                    sa.select(Run.id).where(
                        Run.integration_id == integ.id,
                        sa.or_(
                            Run.status.in_(("queued", "running")),
                            # A scheduled run deferred to the quota's reset serves this slot.
                            sa.and_(Run.status == "deferred", Run.trigger == "schedule"),
                        ),
                    )
                )
                db.commit()
                if busy is not None:
                    # The job in flight serves this slot: never two jobs of one integration.
                    log.info("%s is due but run %s is in flight; not queuing", integ.name, busy)
                    continue
                report.enqueued.append(enqueue_run(db, integ, "schedule").id)
        return report

    def resume_deferred(self) -> list[str]:
        """Queue again the deferred runs whose ``resume_at`` has passed (the daily quota
        reset); the claim checks the quota again. A run waits while another run of its
        integration is queued (one queued run per integration)."""
        now = self.clock.now()
        resumed: list[str] = []
        with self.session() as db:
            due = list(
                db.scalars(
                    sa.select(Run)
                    .where(
                        Run.status == "deferred",
                        sa.or_(Run.resume_at.is_(None), Run.resume_at <= now),
                    )
                    .order_by(Run.created_at, Run.id)
                )
            )
            for run in due:
                queued = db.scalar(
                    sa.select(Run.id).where(
                        Run.integration_id == run.integration_id, Run.status == "queued"
                    )
                )
                if queued is not None:
                    continue
                run.transition("queued")
                run.defer_reason = None
                run.resume_at = None
                try:
                    db.commit()
                except IntegrityError:  # another scheduler queued one meanwhile
                    db.rollback()
                    continue
                resumed.append(run.id)
        for run_id in resumed:
            RunExecutor.append_log(
                self, run_id, logging.INFO, "The daily API quota has reset: queued again."
            )
        if resumed:
            self._wake.set()
        return resumed

    def sweep(self) -> list[str]:
        """Fail running runs whose heartbeat is older than ``stale_after_seconds``."""
        now = self.clock.now()
        cutoff = now - timedelta(seconds=self.settings.stale_after_seconds)
        swept: list[str] = []
        with self.session() as db:
            stale = list(
                db.scalars(
                    sa.select(Run)
                    .where(
                        Run.status == "running",
                        sa.func.coalesce(Run.heartbeat_at, Run.started_at) < cutoff,
                    )
                    .with_for_update(skip_locked=True)
                )
            )
            for run in stale:
                run.transition("failed")
                run.finished_at = now
                run.error = WORKER_DIED
                run.failure_type = "system"
                integ = run.integration
                # Resume soon: the crash was not the user's doing.
                if integ.next_run_at is None or integ.next_run_at > now:
                    integ.next_run_at = now
                swept.append(run.id)
                log.warning("run %s of %s: heartbeat stale, marked failed", run.id, integ.name)
                notifications.run_finished(db, run)
            db.commit()
        for run_id in swept:
            RunExecutor.append_log(self, run_id, logging.ERROR, WORKER_DIED)
        return swept

    # ------------------------------------------------------------------ notifications

    def send_notifications(self) -> SendReport:
        """One pass of the notification sender: queue the day's digests when due, send the
        deliveries due (``ctctsync.control.notify``)."""
        return self.notifier.run_pass()

    # ------------------------------------------------------------------ retention

    def prune(self, max_batches: int = 5) -> int:
        """Delete finished runs (and their logs) past the retention settings; returns how
        many. A run goes when it finished more than ``run_retention_days`` ago or is beyond
        the newest ``run_retention_count`` finished runs of its integration; queued and
        running runs, and each integration's newest finished run, always stay.

        Deletes at most ``prune_batch_size`` runs per transaction and ``max_batches``
        transactions per call (the scheduler calls it every tick), so a large backlog
        drains over a few ticks without holding the store's write lock for long.
        """
        settings = self.settings
        # notifications sent or given up on go after run_retention_days, as job history does
        self.notifier.prune(max_batches)
        if not settings.run_retention_days and not settings.run_retention_count:
            return 0
        pruned = 0
        for _ in range(max_batches):
            ids = self._prunable(settings.prune_batch_size)
            if not ids:
                break
            with self.write_engine.begin() as conn:
                conn.execute(sa.delete(RunLog).where(RunLog.run_id.in_(ids)))
                deleted = conn.execute(
                    sa.delete(Run).where(Run.id.in_(ids), Run.status.in_(FINISHED_RUN_STATUSES))
                ).rowcount
            pruned += deleted
            if len(ids) < settings.prune_batch_size:
                break
        if pruned:
            log.info("pruned %d finished run(s) past the retention settings", pruned)
        return pruned

    def _prunable(self, limit: int) -> list[str]:
        """Ids of up to ``limit`` finished runs past retention (oldest first)."""
        settings = self.settings
        finished = sa.func.coalesce(Run.finished_at, Run.created_at)
        newest_first = (
            sa.func.row_number()
            .over(partition_by=Run.integration_id, order_by=(Run.created_at.desc(), Run.id.desc()))
            .label("rank")
        )
        ranked = (
            sa.select(Run.id, Run.created_at, finished.label("finished"), newest_first)
            .where(Run.status.in_(FINISHED_RUN_STATUSES))
            .subquery()
        )
        expired = []
        if settings.run_retention_days:
            cutoff = self.clock.now() - timedelta(days=settings.run_retention_days)
            expired.append(ranked.c.finished < cutoff)
        if settings.run_retention_count:
            expired.append(ranked.c.rank > settings.run_retention_count)
        last_runs = sa.select(Integration.last_run_id).where(
            Integration.last_run_id.is_not(None)
        )
        query = (
            sa.select(ranked.c.id)
            .where(
                ranked.c.rank > 1,  # each integration's newest finished run stays
                sa.or_(*expired),
                ranked.c.id.not_in(last_runs),
            )
            .order_by(ranked.c.created_at, ranked.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return list(conn.scalars(query))

    # ------------------------------------------------------------------ workers

    def claim_next(self, worker_id: str, run_id: str | None = None) -> str | None:
        """Move the oldest claimable queued run (or ``run_id``) to ``running`` for
        ``worker_id``; None when there is nothing it may start."""
        now = self.clock.now()
        with self.session() as db:
            running = sa.select(Run.integration_id).where(Run.status == "running")
            query = sa.select(Run.id).where(
                Run.status == "queued", Run.integration_id.not_in(running)
            )
            if run_id is not None:
                query = query.where(Run.id == run_id)
            candidates = list(db.scalars(query.order_by(Run.created_at, Run.id).limit(20)))
            db.rollback()
            for candidate in candidates:
                run = db.get(Run, candidate, with_for_update={"skip_locked": True})
                if run is None or run.status != "queued":
                    db.rollback()
                    continue
                admission = quota.admit(
                    db,
                    run.integration,
                    trigger=run.trigger,
                    tables=run.tables_requested,
                    full_refresh=run.full_refresh,
                    run_id=run.id,
                    claim=True,
                )
                estimate = admission.estimate
                run.kind, run.estimated_calls, run.estimate_basis = (
                    estimate.kind,
                    estimate.calls,
                    estimate.basis,
                )
                run.key_fingerprint = admission.key.fingerprint if admission.key else None
                if not admission.start:
                    # Not started rather than cut off half-way when the quota runs out.
                    run.transition("deferred")
                    run.defer_reason = admission.reason
                    run.resume_at = admission.resume_at
                    notifications.run_deferred(db, run)
                    db.commit()
                    log.info("run %s deferred: %s", run.id, admission.reason)
                    RunExecutor.append_log(
                        self, run.id, logging.WARNING, f"Deferred: {admission.reason}."
                    )
                    continue
                run.transition("running")
                run.worker_id = worker_id
                run.started_at = now
                run.heartbeat_at = now
                try:
                    db.commit()
                except IntegrityError:
                    # Another worker started a run of this integration first.
                    db.rollback()
                    continue
                if admission.warning:
                    RunExecutor.append_log(self, candidate, logging.WARNING, admission.warning)
                return candidate
        return None

    def work_once(
        self,
        worker_id: str | None = None,
        run_id: str | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> str | None:
        """Claim one queued run (or ``run_id``) and execute it on this thread; returns its
        id, or None when there was nothing to claim. The run stops (``cancelled``) when
        ``should_stop`` (default: this plane is stopping) returns True."""
        worker = worker_id or f"{self.process_id}:{threading.current_thread().name}"
        claimed = self.claim_next(worker, run_id)
        if claimed is None:
            return None
        executor = RunExecutor(self, claimed, worker, self._listeners)
        with self._executing_lock:
            self._executing[claimed] = executor
        try:
            executor.execute(should_stop or self._stop.is_set)
        finally:
            with self._executing_lock:
                self._executing.pop(claimed, None)
            self._notify_wake.set()  # its outcome may have queued notifications
        return claimed

    def cancel_local(self, run_id: str) -> bool:
        """Stop ``run_id`` now if this process executes it; False if it does not (then its
        worker, wherever it is, reads the stored ``cancel_requested`` flag)."""
        with self._executing_lock:
            executor = self._executing.get(run_id)
        if executor is None:
            return False
        executor.cancel()
        return True

    # ------------------------------------------------------------------ threads

    def start(self) -> None:
        """Start the scheduler thread and ``settings.workers`` worker threads."""
        if self._threads:
            return
        if self.fleet is not None:
            # The fleet's workers execute runs and its periodic job schedules them (once
            # across the fleet): this process only enqueues.
            log.info("control plane started: runs go to `ctctsync worker` processes")
            return
        self._stop.clear()
        self._threads.append(
            threading.Thread(target=self._scheduler_loop, name="ctctsync-scheduler", daemon=True)
        )
        # Its own thread, not the scheduler's: a slow mail server never delays a tick.
        self._threads.append(
            threading.Thread(target=self._notifier_loop, name="ctctsync-notifier", daemon=True)
        )
        for i in range(self.settings.workers):
            self._threads.append(
                threading.Thread(
                    target=self._worker_loop, name=f"ctctsync-worker-{i + 1}", daemon=True
                )
            )
        for thread in self._threads:
            thread.start()
        log.info("control plane started: %d worker(s)", self.settings.workers)

    def dead_threads(self) -> list[str]:
        """The names of the started scheduler/worker threads that are no longer alive (a
        thread that died of an unexpected error): ``/readyz`` reports them. Empty when the
        threads were never started (the web process alone) or all are alive."""
        return [t.name for t in self._threads if not t.is_alive()]

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the threads; running syncs end ``cancelled`` within their request in flight."""
        self._stop.set()
        self._wake.set()
        self._notify_wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def close(self) -> None:
        """Stop the threads and release the store's connections."""
        self.stop()
        if self.fleet is not None:
            self.fleet.close()
        self.engine.dispose()

    def _scheduler_loop(self) -> None:
        next_prune = time.monotonic()
        while not self._stop.is_set():
            try:
                if self.tick().enqueued:
                    self._wake.set()
            except Exception:
                log.exception("scheduler tick failed; retrying")
            if time.monotonic() >= next_prune:
                next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
                try:
                    if self.prune() >= self.settings.prune_batch_size:
                        next_prune = time.monotonic()  # a backlog: go on at the next tick
                except Exception:
                    log.exception("pruning old runs failed; retrying at the next tick")
                    next_prune = time.monotonic()
            self._stop.wait(self.settings.scheduler_interval_seconds)

    def _notifier_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.send_notifications()
            except Exception:
                log.exception("sending notifications failed; retrying at the next pass")
            self._notify_wake.wait(self.settings.scheduler_interval_seconds)
            self._notify_wake.clear()

    def _worker_loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.work_once() is not None:
                    continue
            except Exception:
                log.exception("worker failed; continuing")
            self._wake.wait(self.settings.scheduler_interval_seconds)
            self._wake.clear()


__all__ = ["PRUNE_EVERY_SECONDS", "WORKER_DIED", "ControlPlane", "TickReport", "next_slot"]
