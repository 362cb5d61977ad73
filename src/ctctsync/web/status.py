"""One state, one message (issue 12 §3): what the details page and the job page say about an
integration or a job, computed from their current state on every render.

Messages that were flashed once ("Job queued: it starts as soon as a worker is free") stayed
on screen after they stopped being true, and two boxes said the same thing in two time
formats. Here each state has exactly one message, rebuilt by every render and every poll of
the live fragments, so it changes when the state does. Times are absolute (``at``), shown in
the reader's time zone by the page (UTC without JavaScript): a relative "in 6 h" goes stale
as the page stays open, "a few seconds ago" for a run due now was wrong from the start.

Pure functions of plain values (no request, no store), so every branch is unit-tested.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

Tone = Literal["muted", "info", "notice", "error"]
"""How the message is shown: grey text, a blue box, a yellow box (waiting on something that
needs no action), a red box (someone must act)."""


@dataclass(frozen=True)
class Message:
    """A sentence with at most one absolute time in it: ``lead``, the time, ``tail``."""

    tone: Tone
    lead: str
    at: datetime | None = None
    tail: str = ""
    kind: str = ""
    """A stable name of the case (``due``, ``quota_spent`` ...): tests and CSS hooks."""

    def text(self) -> str:
        """The message as plain text, the time in UTC (what a page shows without scripts)."""
        when = f" {self.at:%Y-%m-%d %H:%M} UTC" if self.at is not None else ""
        return f"{self.lead}{when}{self.tail}"


@dataclass(frozen=True)
class IntegrationFacts:
    """What the integration's message is computed from."""

    state: str
    """The state as the UI reads it (``Integration.shown_state``: ``draft`` included)."""
    has_credentials: bool
    frequency_hours: int
    next_run_at: datetime | None
    activated_at: datetime | None = None
    state_reason: str | None = None
    job_status: str | None = None
    """The integration's job not finished yet, if any: queued, running or deferred."""
    job_resume_at: datetime | None = None
    """When that job, if deferred, goes back to the queue."""
    quota_spent_until: datetime | None = None
    """When the daily quota of the integration's API key resets, if a run said today that
    it is spent (``services.quota.spent_until``)."""


def _every(hours: int) -> str:
    return "every hour" if hours == 1 else f"every {hours} h"


def _blocked(f: IntegrationFacts) -> Message | None:
    """Nothing runs until someone acts: paused, refused, failed, not authorized."""
    if f.state == "draft":
        todo = ("choose its tables and fields" if f.has_credentials
                else "authorize Constant Contact, then choose tables and fields")
        return Message("muted", f"The setup is not finished: {todo}, then Submit. Nothing runs "
                       "until then.", kind="draft")
    if f.state == "paused":
        return Message("muted", "Paused: no job starts until you re-activate it.",
                       kind="paused")
    if f.state in ("needs_reauth", "failed"):
        default = ("Constant Contact refused the authorization: authorize the integration "
                   "again." if f.state == "needs_reauth" else "The last job failed.")
        return Message("error", f.state_reason or default, kind=f.state)
    if not f.has_credentials:
        return Message("muted", "Not authorized yet: authorize Constant Contact to start.",
                       kind="unauthorized")
    return None


def _in_flight(f: IntegrationFacts, becomes: str, now: datetime) -> Message | None:
    """A job not finished yet speaks for the integration."""
    if f.job_status == "running":
        return Message("info", "A job is running now." + becomes, kind="running")
    spent = f.quota_spent_until is not None and f.quota_spent_until > now
    if f.job_status == "queued" and spent:
        return Message("notice", "A job is queued, but the API key's daily quota is spent: it "
                       "waits until the quota resets at", f.quota_spent_until, "." + becomes,
                       kind="queued_for_quota")
    if f.job_status == "queued":
        return Message("info", "A job is queued: it starts as soon as a worker is free."
                       + becomes, kind="queued")
    if f.job_status == "deferred":
        if f.job_resume_at is not None:
            return Message("notice", "A job waits for the API quota: it goes back to the "
                           "queue at", f.job_resume_at, "." + becomes, kind="deferred")
        return Message("notice", "A job waits for the API quota to allow it." + becomes,
                       kind="deferred")
    return None


def _scheduled(f: IntegrationFacts, now: datetime) -> Message:
    """Nothing in flight: when the next job starts (or why it waits)."""
    if f.quota_spent_until is not None and f.quota_spent_until > now:
        return Message("notice", "The API key's daily quota is spent: the next job runs after "
                       "it resets at", f.quota_spent_until, ".", kind="quota_spent")
    first = "Waiting for the first job to load data into the warehouse. " if (
        f.state == "pending") else ""
    schedule = f"{first}A job runs {_every(f.frequency_hours)}"
    if f.next_run_at is None:
        return Message("muted", f"{schedule}.", kind="scheduled")
    if f.next_run_at <= now:
        # not "the next one a few seconds ago": it is due, and the scheduler queues it
        return Message("muted", f"{schedule}; the next one is due now and starts at the "
                       "scheduler's next check.", kind="due")
    return Message("muted", f"{schedule}; the next one starts at", f.next_run_at, ".",
                   kind="scheduled")


def integration_message(f: IntegrationFacts, now: datetime) -> Message:
    """The one message beside the integration's state badge: the first of these that
    applies -- blocked (someone must act), a job in flight, the schedule."""
    becomes = (" The integration becomes Active once a job has loaded data."
               if f.state == "pending" else "")
    return _blocked(f) or _in_flight(f, becomes, now) or _scheduled(f, now)


@dataclass(frozen=True)
class JobFacts:
    """What a job's message is computed from (the ``Run`` row's fields)."""

    status: str
    error: str | None = None
    cancel_requested: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None
    resume_at: datetime | None = None
    defer_reason: str | None = None
    guard_reason: str | None = None
    """Why the quota guard would defer a queued job if a worker took it now (None: it
    would start): ``services.quota.admit``'s reason."""
    tables_done: int = 0
    """Tables that finished (their data committed)."""
    rows: int = 0


def _waiting(f: JobFacts) -> Message:
    if f.status == "queued":
        if f.cancel_requested:
            return Message("info", "Cancelling: the job is stopped before it starts.",
                           kind="cancelling")
        if f.guard_reason is not None:
            # not "it starts as soon as a worker is free": the guard will not let it
            return Message("notice", f"Queued, but the API quota guard will defer it when a "
                           f"worker takes it: {f.guard_reason}.", kind="queued_for_quota")
        return Message("info", "Queued: it starts as soon as a worker is free.", kind="queued")
    reason = f.defer_reason or "today's API quota will not cover this job"
    if f.resume_at is None:
        return Message("notice", f"Deferred by the API quota guard: {reason}. Nothing was read "
                       "yet; it starts when the quota allows.", kind="deferred")
    return Message("notice", f"Deferred by the API quota guard: {reason}. Nothing was read "
                   "yet; it goes back to the queue at", f.resume_at,
                   " and starts when the quota allows.", kind="deferred")


def _running(f: JobFacts) -> Message:
    if f.cancel_requested:
        return Message("info", "Stopping after the request in flight…", kind="cancelling")
    return Message("info", "Running since", f.started_at, ".", kind="running")


def _partial(f: JobFacts) -> Message:
    # One box in one time format: the run's error said the same in another (issue 12).
    kept = (f"{f.tables_done} table{'s' if f.tables_done != 1 else ''} finished before it "
            f"({f.rows:,} rows) {'are' if f.tables_done != 1 else 'is'} kept")
    if f.resume_at is None:
        return Message("notice", f"Stopped: the API key's daily quota ran out. {kept}; the next "
                       "job reads the rest.", kind="quota_spent")
    return Message("notice", f"Stopped: the API key's daily quota ran out. {kept}; the rest is "
                   "read after the quota resets at", f.resume_at, ".", kind="quota_spent")


def _ended(f: JobFacts) -> Message:
    if f.status == "cancelled":
        return Message("info", f.error or "Cancelled.", kind="cancelled")
    if f.status == "failed":
        return Message("error", f.error or "The job failed.", kind="failed")
    # succeeded: the badge and the facts below say when; this says what it came to
    return Message("muted", f"Finished: {f.rows:,} row{'s' if f.rows != 1 else ''} loaded.",
                   kind="succeeded")


_JOB_MESSAGES: Final[dict[str, Callable[[JobFacts], Message]]] = {
    "queued": _waiting,
    "deferred": _waiting,
    "running": _running,
    "partial": _partial,
}


def job_message(f: JobFacts) -> Message:
    """The one message at the top of a job's page (its status badge says the rest)."""
    return _JOB_MESSAGES.get(f.status, _ended)(f)
