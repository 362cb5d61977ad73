"""The ``ctctsync worker`` loop: procrastinate's worker, kept alive through a lost store and
cleaning up after dead workers.

procrastinate 3.10's worker stops at the first database error of a side task (its
heartbeat, the periodic deferrer) or of a fetch, and a job whose final status could not be
written stays ``doing``, holding its lock, while the worker lives on. A PostgreSQL restart
would stop the whole fleet. :class:`FleetWorker` rides it out: on a lost connection (psycopg's
``OperationalError``: the server shutting down, a refused or cut connection, the pool's
timeout) each of those waits and tries again, and every other error stops the worker as
before. The overrides follow procrastinate's own methods of the pinned version (constraints
.txt); upgrading procrastinate means reading them again.

Each worker also runs a janitor (every heartbeat): it fails the jobs of workers that stopped
beating, and the jobs of its own it no longer runs (a final status that could not be
written). Not a job of ours, since a dead worker's job may be the very tick that would do it.
docs/architecture.md, "The worker fleet".
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import psycopg
from procrastinate import JobContext, RetryDecision
from procrastinate.exceptions import ConnectorException
from procrastinate.job_context import JobResult
from procrastinate.jobs import Job, Status
from procrastinate.worker import Worker

log = logging.getLogger(__name__)

RETRY_DELAYS_SECONDS = (0.5, 1.0, 2.0, 4.0)
"""Waits between attempts while the store is unreachable; the last one repeats."""

OWN_JOBS_QUERY = """
SELECT id FROM procrastinate_jobs
 WHERE worker_id = %(worker_id)s AND status = 'doing' AND queue_name = %(queue)s
"""


def connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` (procrastinate wraps psycopg's errors) says the store could not be
    reached, rather than that a statement was wrong."""
    cause = exc.__cause__ if isinstance(exc, ConnectorException) else exc
    return isinstance(cause, psycopg.OperationalError)


def _refused_by_procrastinate(exc: BaseException) -> bool:
    """procrastinate's own functions RAISE when a job is not in the state they expect (a job
    finished twice: another worker released it first)."""
    return isinstance(exc, ConnectorException) and isinstance(
        exc.__cause__, psycopg.errors.RaiseException
    )


def _delay(attempt: int) -> float:
    return RETRY_DELAYS_SECONDS[min(attempt, len(RETRY_DELAYS_SECONDS) - 1)]


class FleetWorker(Worker):
    """procrastinate's worker for one queue, kept running through a lost store; see the
    module's docstring. ``stalled_worker_timeout`` is also the janitor's: a worker silent
    that long is dead."""

    def __init__(self, *, queue: str, **options: Any) -> None:
        super().__init__(queues=[queue], **options)
        self.queue = queue

    # ------------------------------------------------------------ side tasks

    def _start_side_tasks(self) -> list[asyncio.Task[Any]]:
        # procrastinate's side tasks, with a listener that reconnects and the janitor
        return [
            asyncio.create_task(self._update_heartbeat(), name="update_heartbeats"),
            asyncio.create_task(self._periodic_deferrer(), name="deferrer"),
            asyncio.create_task(self._poll_jobs_to_abort(), name="poll_jobs_to_abort"),  # type: ignore[no-untyped-call]
            asyncio.create_task(self._listen(), name="listener"),
            asyncio.create_task(self._janitor(), name="janitor"),
        ]

    async def _listen(self) -> None:
        """procrastinate's listener (new jobs, abort requests), listening again after the
        store comes back: its own reconnect gives up when the first statement fails."""
        attempt = 0
        while True:
            try:
                await self.app.job_manager.listen_for_jobs(
                    on_notification=self._handle_notification, queues=self.queues
                )
                return
            except ConnectorException as exc:
                if not connection_lost(exc):
                    raise
                log.warning("listening for jobs: the store is unreachable (%s)", exc.__cause__)
                await asyncio.sleep(_delay(attempt))
                attempt += 1
                # notifications sent meanwhile are lost: fetch at once, not at the next poll
                self._new_job_event.set()

    async def _update_heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.update_heartbeat_interval)
            assert self.worker_id is not None
            try:
                await self.app.job_manager.update_heartbeat(self.worker_id)
            except ConnectorException as exc:
                if not connection_lost(exc):
                    raise
                # The next beat tries again; silent past stalled_worker_timeout, the other
                # workers take this one for dead (as the sweeper does its runs).
                log.warning("worker heartbeat: the store is unreachable (%s)", exc.__cause__)

    async def _periodic_deferrer(self) -> None:
        attempt = 0
        while True:
            try:
                await super()._periodic_deferrer()  # type: ignore[no-untyped-call]
                return
            except ConnectorException as exc:
                if not connection_lost(exc):
                    raise
                # A new deferrer defers the timestamps missed meanwhile (within its
                # max_delay); ticks deferred twice are one job (the periodic defer is unique).
                log.warning("periodic defer: the store is unreachable (%s)", exc.__cause__)
                await asyncio.sleep(_delay(attempt))
                attempt += 1

    async def _fetch_and_process_jobs(self) -> None:
        try:
            await super()._fetch_and_process_jobs()  # type: ignore[no-untyped-call]
        except ConnectorException as exc:
            if not connection_lost(exc):
                raise
            # The worker's loop fetches again at the next notification or poll.
            log.warning("fetching jobs: the store is unreachable (%s)", exc.__cause__)
            await asyncio.sleep(RETRY_DELAYS_SECONDS[0])

    async def _persist_job_status(
        self,
        job: Job,
        status: Status,
        retry_decision: RetryDecision | None,
        context: JobContext,
        job_result: JobResult | None,
    ) -> None:
        """Write the job's final status, trying again for ``stalled_worker_timeout`` while the
        store is unreachable; beyond, the janitor finishes the job once the store is back."""
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + self.stalled_worker_timeout
        attempt = 0
        while True:
            try:
                await super()._persist_job_status(
                    job=job,
                    status=status,
                    retry_decision=retry_decision,
                    context=context,
                    job_result=job_result,
                )
                return
            except ConnectorException as exc:
                if _refused_by_procrastinate(exc):
                    log.warning("job %s was released meanwhile (its worker seemed dead)", job.id)
                    return
                if not connection_lost(exc) or loop.time() >= give_up_at:
                    raise
                log.warning(
                    "job %s: the store is unreachable (%s); writing its end again",
                    job.id,
                    exc.__cause__,
                )
                await asyncio.sleep(_delay(attempt))
                attempt += 1

    # ------------------------------------------------------------ janitor

    async def _janitor(self) -> None:
        while True:
            try:
                await self.release_stalled_jobs()
                await self.release_own_orphans()
            except Exception:  # the store unreachable: the next beat tries again
                log.warning("could not release stalled jobs; trying again", exc_info=True)
            await asyncio.sleep(self.update_heartbeat_interval)

    async def release_stalled_jobs(self) -> list[int]:
        """Fail the jobs of workers that stopped beating (SIGKILL, a lost machine); returns
        their ids. Every job of ours holds a lock: a dead worker's ``execute_run`` would keep
        its integration, its ``tick`` the whole fleet's schedule, forever. The sweeper fails
        the run itself; a released tick just waits for its next timestamp."""
        stalled = await self.app.job_manager.get_stalled_jobs(
            queue=self.queue, seconds_since_heartbeat=self.stalled_worker_timeout
        )
        # Never this worker's own: its heartbeat may have waited for the store longer than
        # the others'; it is alive, it says so.
        return await self._fail(
            [
                (job.id, job.task_name)
                for job in stalled
                if job.id is not None and (job.worker_id is None or job.worker_id != self.worker_id)
            ],
            "of a stalled worker",
        )

    async def release_own_orphans(self) -> list[int]:
        """Fail this worker's ``doing`` jobs it no longer runs (a final status that could not
        be written while the store was away); returns their ids."""
        if self.worker_id is None:
            return []
        rows = await self.app.connector.execute_query_all_async(
            OWN_JOBS_QUERY, worker_id=self.worker_id, queue=self.queue
        )
        # read after the query: a job fetched meanwhile is running, not an orphan
        running = {context.job.id for context in self._running_jobs.values()}
        return await self._fail(
            [(row["id"], "") for row in rows if row["id"] not in running], "of this worker's"
        )

    async def _fail(self, jobs: list[tuple[int, str]], whose: str) -> list[int]:
        failed: list[int] = []
        for job_id, task_name in jobs:
            try:
                await self.app.job_manager.finish_job_by_id_async(
                    job_id=job_id, status=Status.FAILED, delete_job=False
                )
            except ConnectorException as exc:
                if _refused_by_procrastinate(exc):
                    continue  # not `doing` any more: finished or released meanwhile
                raise
            log.warning(
                "job %s %s%s: failed, releasing its lock",
                job_id,
                f"({task_name}) " if task_name else "",
                whose,
            )
            failed.append(job_id)
        return failed


__all__ = ["RETRY_DELAYS_SECONDS", "FleetWorker", "connection_lost"]
