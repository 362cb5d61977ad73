"""Job history: list runs, show one, read its process log, cancel it, a history."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ctctsync.control.context import context
from ctctsync.control.errors import Conflict, NotFound
from ctctsync.control.models import (
    FINISHED_RUN_STATUSES,
    WAITING_RUN_STATUSES,
    Integration,
    Run,
    RunLog,
    User,
)


def list_runs(
    db: Session, user: User, integration: Integration | None = None, *, limit: int = 50
) -> list[Run]:
    """The newest runs the user may see, of one integration or of all."""
    query = sa.select(Run).join(Integration, Run.integration_id == Integration.id)
    if integration is not None:
        query = query.where(Run.integration_id == integration.id)
    if not user.is_admin:
        query = query.where(Integration.created_by_id == user.id)
    query = query.order_by(Run.created_at.desc(), Run.id.desc()).limit(max(1, min(limit, 1000)))
    return list(db.scalars(query))


def get_run(db: Session, user: User, run_id: str) -> Run:
    """One run; ``NotFound`` if it does not exist or its integration is someone else's."""
    run = db.get(Run, run_id)
    if run is None or (not user.is_admin and run.integration.created_by_id != user.id):
        raise NotFound(f"No run with id {run_id}.")
    return run


def run_logs(db: Session, run: Run, after_seq: int = 0, *, limit: int = 1000) -> list[RunLog]:
    """Log lines of ``run`` with ``seq > after_seq`` (poll with the last seq seen)."""
    return list(
        db.scalars(
            sa.select(RunLog)
            .where(RunLog.run_id == run.id, RunLog.seq > after_seq)
            .order_by(RunLog.seq)
            .limit(max(1, min(limit, 10_000)))
        )
    )


def cancel_run(db: Session, run: Run) -> Run:
    """Cancel a queued (or deferred) run now, or stop a running one within the request it
    has in flight.

    The flag is stored (a worker in another process reads it within a second) and, when this
    process runs the job, its worker is told at once.
    """
    if run.status in WAITING_RUN_STATUSES:
        run.transition("cancelled")
        run.finished_at = context(db).now()
        run.error = "Cancelled before it started."
    elif run.status == "running":
        run.cancel_requested = True
    else:
        raise Conflict(f"Run {run.id[:8]} has already finished ({run.status}).")
    db.commit()
    if run.status == "running":
        context(db).cancel(run.id)
    return run


def finished_runs(db: Session, integration: Integration, *, limit: int = 1000) -> list[Run]:
    """The newest finished runs of ``integration``, newest first (its history)."""
    return list(
        db.scalars(
            sa.select(Run)
            .where(Run.integration_id == integration.id, Run.finished_at.is_not(None),
                   Run.status.in_(FINISHED_RUN_STATUSES))
            .order_by(Run.finished_at.desc(), Run.id.desc())
            .limit(max(1, min(limit, 10_000)))
        )
    )
