"""A job (run) page, its live summary fragment and its process log as JSON."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from ctctsync.control import services as svc
from ctctsync.control.errors import ServiceError
from ctctsync.control.models import Run, RunLog
from ctctsync.control.services import quota
from ctctsync.sync.results import TableDone, parse_table_done
from ctctsync.tables import TABLES
from ctctsync.web.deps import CurrentUser, Db, LogSeq, RunId
from ctctsync.web.security import verify_csrf
from ctctsync.web.status import JobFacts, Message, job_message
from ctctsync.web.templating import flash, render

router = APIRouter(prefix="/jobs", dependencies=[Depends(verify_csrf)])

LOG_PAGE = 500
"""Log lines per poll of the log endpoint."""
LOG_FIRST_PAGE = 5000
"""Log lines rendered with the page; the script fetches the rest."""


def _table_rows(run: Run, done: dict[str, TableDone]) -> list[dict[str, Any]]:
    """Per table: status, rows, API calls, its own seconds and retries. Seconds and retries
    come from the engine's per-table log line (``done``): runs do not store them."""
    names = list(run.tables_requested or run.integration.tables or [])
    for extra in [*run.rows, *run.table_status]:
        if extra not in names:
            names.append(extra)
    calls = run.table_calls or {}
    rows = []
    for name in names:
        line = done.get(name)
        rows.append({
            "name": name,
            "known": name in TABLES,
            # Tables the sync has not reached yet have no status: waiting, or never run.
            "status": run.table_status.get(name, "skipped" if run.finished else "waiting"),
            "rows": run.rows.get(name),
            "api_calls": calls.get(name, line.api_calls if line else None),
            "seconds": line.seconds if line else None,
            "retries": line.retries if line else None,
            "full_refresh": name in (run.full_refresh or []),
            # what the table did not load ("no silent loss"): run.warnings are "<table>: ..."
            "warnings": [w.removeprefix(f"{name}: ") for w in run.warnings or []
                         if w.startswith(f"{name}: ")],
        })
    return rows


def tables_done(lines: list[RunLog]) -> dict[str, TableDone]:
    """Each table's "finished" log line, parsed (the last one wins)."""
    found: dict[str, TableDone] = {}
    for ln in lines:
        done = parse_table_done(ln.message) if ln.level == "INFO" else None
        if done is not None:
            found[done.table] = done
    return found


def _message(db: Db, run: Run) -> Message:
    tables_done_ = sum(1 for s in run.table_status.values() if s == "succeeded")
    guard = None
    if run.status == "queued" and not run.cancel_requested:
        # what the claim will decide, so the page does not promise a start it will not get
        guard = quota.admit(db, run.integration, trigger=run.trigger,
                            tables=run.tables_requested, full_refresh=run.full_refresh,
                            run_id=run.id).reason
    return job_message(JobFacts(
        guard_reason=guard,
        status=run.status,
        error=run.error,
        cancel_requested=run.cancel_requested,
        started_at=run.started_at,
        finished_at=run.finished_at,
        resume_at=run.resume_at,
        defer_reason=run.defer_reason,
        tables_done=tables_done_,
        rows=run.total_rows,
    ))


def _waits_for_quota(run: Run) -> bool:
    """Deferred to the quota's reset (hours away): the page stops polling; a reload after
    the reset shows the job running."""
    return run.status == "deferred"


def _ctx(db: Db, run: Run, lines: list[RunLog]) -> dict[str, Any]:
    return {
        "section": "integrations",
        "run": run,
        "integ": run.integration,
        "tables": _table_rows(run, tables_done(lines)),
        "message": _message(db, run),
    }


@router.get("/{run_id}")
def job_page(request: Request, db: Db, user: CurrentUser, run_id: RunId) -> Response:
    """Status, timing, rows per table, API calls, the error, and the process log."""
    run = svc.get_run(db, user, run_id)
    lines = svc.run_logs(db, run, 0, limit=LOG_FIRST_PAGE)
    ctx = _ctx(db, run, lines)
    ctx["lines"] = lines
    ctx["last_seq"] = lines[-1].seq if lines else 0
    ctx["log_follow"] = (not run.finished and not _waits_for_quota(run)) or (
        len(lines) == LOG_FIRST_PAGE
    )
    return render(request, "jobs/job.html", ctx)


@router.get("/{run_id}/summary")
def job_summary(request: Request, db: Db, user: CurrentUser, run_id: RunId) -> Response:
    """The job's summary card alone (polled until the job is finished)."""
    run = svc.get_run(db, user, run_id)
    headers = {"X-Poll-Done": "1"} if run.finished or _waits_for_quota(run) else {}
    lines = svc.run_logs(db, run, 0, limit=LOG_FIRST_PAGE)
    return render(request, "jobs/_summary.html", _ctx(db, run, lines), headers=headers)


@router.get("/{run_id}/log")
def job_log(
    request: Request, db: Db, user: CurrentUser, run_id: RunId, after: LogSeq = 0
) -> Response:
    """Log lines after ``after`` (their seq), and whether the job is finished."""
    run = svc.get_run(db, user, run_id)
    finished = run.finished  # read before the lines so no line written at the end is missed
    lines = svc.run_logs(db, run, max(after, 0), limit=LOG_PAGE)
    more = len(lines) == LOG_PAGE
    return JSONResponse(
        {
            "status": run.status,
            "finished": finished and not more,
            "next": lines[-1].seq if lines else after,
            "lines": [
                {
                    "seq": ln.seq,
                    "at": ln.ts.strftime("%H:%M:%S"),
                    "level": ln.level,
                    "message": ln.message,
                }
                for ln in lines
            ],
        },
        headers={"Cache-Control": "no-store"},
    )


@router.post("/{run_id}/cancel")
def cancel(request: Request, db: Db, user: CurrentUser, run_id: RunId) -> Response:
    """Cancel a queued job, or stop a running one within its request in flight."""
    run = svc.get_run(db, user, run_id)
    try:
        svc.cancel_run(db, run)
        flash(request, "Cancellation requested.", "info")
    except ServiceError as exc:
        flash(request, exc.message, "error")
    return RedirectResponse(f"/jobs/{run.id}", status_code=303)
