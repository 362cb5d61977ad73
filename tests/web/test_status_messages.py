"""One state, one message (issue 12 §3): ``ctctsync.web.status`` computes the message of an
integration and of a job from their current state, so a message never outlives its state.

Each case names a stale message from the issue and the state that must replace it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ctctsync.web.status import (
    IntegrationFacts,
    JobFacts,
    Message,
    integration_message,
    job_message,
)

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
ACTIVE = IntegrationFacts(
    state="active", has_credentials=True, frequency_hours=6,
    next_run_at=NOW + timedelta(hours=6), activated_at=NOW - timedelta(days=3),
)
PENDING = replace(ACTIVE, state="pending", activated_at=None, next_run_at=NOW)
RESET = datetime(2026, 3, 11, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("facts", "kind", "tone", "words", "at"),
    [
        pytest.param(ACTIVE, "scheduled", "muted", "A job runs every 6 h; the next one starts at",
                     ACTIVE.next_run_at, id="active-scheduled"),
        pytest.param(replace(ACTIVE, frequency_hours=24, next_run_at=NOW + timedelta(hours=24)),
                     "scheduled", "muted", "A job runs every 24 h", NOW + timedelta(hours=24),
                     id="frequency-changed-to-24h"),
        pytest.param(replace(ACTIVE, next_run_at=NOW - timedelta(seconds=5)), "due", "muted",
                     "the next one is due now", None, id="due-not-a-few-seconds-ago"),
        pytest.param(replace(ACTIVE, frequency_hours=1, next_run_at=None), "scheduled", "muted",
                     "A job runs every hour.", None, id="hourly-no-slot"),
        pytest.param(PENDING, "due", "muted", "Waiting for the first job to load data", None,
                     id="pending-first-job-due"),
        pytest.param(replace(PENDING, job_status="queued"), "queued", "info",
                     "A job is queued: it starts as soon as a worker is free. The integration "
                     "becomes Active once a job has loaded data.", None, id="pending-queued"),
        pytest.param(replace(ACTIVE, job_status="queued", quota_spent_until=RESET),
                     "queued_for_quota", "notice", "A job is queued, but the API key's daily "
                     "quota is spent: it waits until the quota resets at", RESET,
                     id="queued-quota-spent"),
        pytest.param(replace(ACTIVE, job_status="running"), "running", "info",
                     "A job is running now.", None, id="active-running"),
        pytest.param(replace(ACTIVE, job_status="deferred", job_resume_at=RESET), "deferred",
                     "notice", "A job waits for the API quota", RESET, id="deferred"),
        pytest.param(replace(ACTIVE, quota_spent_until=RESET, next_run_at=RESET), "quota_spent",
                     "notice", "daily quota is spent: the next job runs after it resets at",
                     RESET, id="quota-spent"),
        pytest.param(replace(ACTIVE, quota_spent_until=NOW - timedelta(minutes=1)), "scheduled",
                     "muted", "the next one starts at", ACTIVE.next_run_at,
                     id="quota-reset-passed"),
        pytest.param(replace(ACTIVE, state="paused"), "paused", "muted", "Paused", None,
                     id="paused"),
        pytest.param(replace(PENDING, state="draft"), "draft", "muted",
                     "The setup is not finished: choose its tables and fields", None,
                     id="draft"),
        pytest.param(replace(PENDING, state="draft", has_credentials=False), "draft", "muted",
                     "authorize Constant Contact, then choose", None, id="draft-unauthorized"),
        pytest.param(replace(ACTIVE, state="needs_reauth", state_reason="Token revoked."),
                     "needs_reauth", "error", "Token revoked.", None, id="needs-reauth"),
        pytest.param(replace(ACTIVE, state="failed", state_reason=None), "failed", "error",
                     "The last job failed.", None, id="failed"),
        pytest.param(replace(PENDING, has_credentials=False), "unauthorized", "muted",
                     "Not authorized yet", None, id="unauthorized"),
    ],
)
def test_integration_message(
    facts: IntegrationFacts, kind: str, tone: str, words: str, at: datetime | None
) -> None:
    m = integration_message(facts, NOW)
    assert (m.kind, m.tone, m.at) == (kind, tone, at)
    assert words in m.text()


def test_an_active_integration_never_reads_pending() -> None:
    # "It stays Pending until its first job loads data" beside an Active badge
    for job in (None, "queued", "running", "deferred"):
        m = integration_message(replace(ACTIVE, job_status=job, job_resume_at=RESET), NOW)
        assert "Pending" not in m.text() and "first job" not in m.text(), job
        assert "becomes Active" not in m.text(), job


def test_the_message_follows_the_state_not_the_request() -> None:
    # the same integration, a job queued then finished: the queued words go with the job
    queued = integration_message(replace(ACTIVE, job_status="queued"), NOW)
    finished = integration_message(ACTIVE, NOW)
    assert "worker is free" in queued.text() and "worker is free" not in finished.text()


def test_text_renders_the_time_in_utc() -> None:
    m = Message("muted", "Next at", datetime(2026, 3, 10, 18, 5, tzinfo=UTC), ".")
    assert m.text() == "Next at 2026-03-10 18:05 UTC."


FINISHED = NOW - timedelta(minutes=1)


@pytest.mark.parametrize(
    ("facts", "kind", "tone", "words"),
    [
        pytest.param(JobFacts("queued"), "queued", "info",
                     "Queued: it starts as soon as a worker is free.", id="queued"),
        pytest.param(JobFacts("queued", guard_reason="next run at 00:00 UTC: today's quota "
                              "is spent"), "queued_for_quota", "notice",
                     "Queued, but the API quota guard will defer it when a worker takes it: "
                     "next run at 00:00 UTC", id="queued-but-the-quota-is-spent"),
        pytest.param(JobFacts("queued", cancel_requested=True), "cancelling", "info",
                     "Cancelling", id="queued-cancelling"),
        pytest.param(JobFacts("running", started_at=NOW), "running", "info", "Running since",
                     id="running"),
        pytest.param(JobFacts("running", cancel_requested=True), "cancelling", "info",
                     "Stopping after the request in flight", id="running-cancelling"),
        pytest.param(JobFacts("deferred", resume_at=RESET, defer_reason="reserved for 3 runs"),
                     "deferred", "notice", "Deferred by the API quota guard: reserved for 3 runs",
                     id="deferred"),
        pytest.param(JobFacts("deferred"), "deferred", "notice", "when the quota allows",
                     id="deferred-no-reset"),
        pytest.param(JobFacts("partial", resume_at=RESET, tables_done=2, rows=1261,
                              error="Constant Contact answered that the quota is spent."),
                     "quota_spent", "notice",
                     "2 tables finished before it (1,261 rows) are kept; the rest is read "
                     "after the quota resets at", id="partial-quota"),
        pytest.param(JobFacts("partial", tables_done=1, rows=5), "quota_spent", "notice",
                     "1 table finished before it (5 rows) is kept; the next job reads the rest",
                     id="partial-no-reset"),
        pytest.param(JobFacts("failed", error="contacts: disk full"), "failed", "error",
                     "contacts: disk full", id="failed"),
        pytest.param(JobFacts("cancelled", error="Cancelled on request."), "cancelled", "info",
                     "Cancelled on request.", id="cancelled"),
        pytest.param(JobFacts("succeeded", finished_at=FINISHED, rows=1_234), "succeeded",
                     "muted", "Finished: 1,234 rows loaded.", id="succeeded"),
    ],
)
def test_job_message(facts: JobFacts, kind: str, tone: str, words: str) -> None:
    m = job_message(facts)
    assert (m.kind, m.tone) == (kind, tone)
    assert words in m.text()


def test_a_quota_stop_is_one_yellow_box_not_a_red_one() -> None:
    m = job_message(JobFacts("partial", resume_at=RESET, tables_done=1, rows=1,
                             error="Constant Contact answered that the quota is spent."))
    assert m.tone == "notice" and m.at == RESET
    assert "Failed" not in m.text() and "failed" not in m.text()
