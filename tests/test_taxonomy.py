"""One failure taxonomy: every failure type maps, once, to a run status, an exit code and an
HTTP status, and every command reads that one table."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

import pytest

from ctctsync.cli import control_commands
from ctctsync.cli.output import exit_code as sync_exit_code
from ctctsync.control.models import FINISHED_RUN_STATUSES, RUN_STATUSES
from ctctsync.control.schemas import RunPublic
from ctctsync.errors import (
    FAILURES,
    RULES,
    ExitCode,
    FailureType,
    RunOutcome,
    classify_response,
    exit_code,
)
from ctctsync.sync import SyncResult

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_every_failure_type_has_one_outcome() -> None:
    assert set(FAILURES) == set(get_args(FailureType))
    for outcome in FAILURES.values():
        assert outcome.run_status in get_args(RunOutcome)
        assert outcome.run_status != "succeeded"
        assert isinstance(outcome.exit_code, ExitCode) and outcome.exit_code != ExitCode.OK
        assert 400 <= outcome.http_status < 600


def test_a_run_that_does_not_end_failed_was_stopped() -> None:
    # partial and cancelled runs stop early with their progress saved: exit 3, nothing else
    for outcome in FAILURES.values():
        stopped = outcome.run_status in ("partial", "cancelled")
        assert stopped == (outcome.exit_code == ExitCode.STOPPED)
        if stopped:
            assert outcome.stops_run


def test_the_control_plane_statuses_are_the_sync_outcomes() -> None:
    assert set(FINISHED_RUN_STATUSES) == set(get_args(RunOutcome))
    # deferred: a job the daily API quota cannot cover, not started (queued again at 00:00 UTC)
    assert set(RUN_STATUSES) == {"queued", "deferred", "running", *get_args(RunOutcome)}


def test_every_error_rule_has_a_known_failure_type() -> None:
    assert {rule.failure_type for rule in RULES} <= set(FAILURES)


OUTCOMES = [
    pytest.param("succeeded", None, 0, id="succeeded"),
    pytest.param("failed", "config", 2, id="config"),
    pytest.param("failed", "auth", 4, id="auth"),
    pytest.param("failed", "transient", 1, id="transient"),
    pytest.param("failed", "system", 1, id="system"),
    pytest.param("failed", None, 1, id="failed-untyped"),
    pytest.param("partial", "quota", 3, id="quota"),
    pytest.param("cancelled", "cancelled", 3, id="cancelled"),
    pytest.param("cancelled", None, 3, id="cancelled-while-queued"),
    pytest.param("cancelled", "transient", 3, id="cancelled-older-record"),
]


@pytest.mark.parametrize(("status", "failure_type", "expected"), OUTCOMES)
def test_exit_code(status: str, failure_type: str | None, expected: int) -> None:
    assert exit_code(status, failure_type) == expected


@pytest.mark.parametrize(("status", "failure_type", "expected"), OUTCOMES)
def test_sync_and_runs_commands_agree(status: str, failure_type: str | None, expected: int) -> None:
    result = SyncResult(
        run_id="r1",
        started_at=NOW,
        finished_at=NOW,
        status=status,  # type: ignore[arg-type]
        failure_type=failure_type,  # type: ignore[arg-type]
    )
    run = RunPublic.model_construct(status=status, failure_type=failure_type)
    assert sync_exit_code(result) == control_commands._exit_code(run) == expected


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        pytest.param(401, b"", ExitCode.REAUTH, id="revoked-token"),
        pytest.param(
            403,
            b'[{"error_key":"mashery.not.authorized.inactive"}]',
            ExitCode.CONFIG,
            id="inactive-key",
        ),
        pytest.param(
            403,
            b'[{"error_key":"mashery.not.authorized.over.ratelimit"}]',
            ExitCode.STOPPED,
            id="quota-spent",
        ),
        pytest.param(503, b"", ExitCode.FAILED, id="server-error"),
        pytest.param(404, b"", ExitCode.FAILED, id="not-found"),
    ],
)
def test_check_exits_by_the_same_table(status: int, body: bytes, expected: ExitCode) -> None:
    # `ctctsync check` exits with FAILURES[exc.failure_type].exit_code
    exc = classify_response(status, body, "GET /v2/account/info").to_exception(now=NOW)
    assert FAILURES[exc.failure_type].exit_code == expected


def test_the_architecture_doc_shows_the_table() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "architecture.md").read_text()
    rows = {
        cells[0].strip("`"): cells[1:]
        for line in doc.splitlines()
        if line.startswith("| `")
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
        if cells[0].strip("`") in FAILURES
    }
    expected = {
        ftype: [o.run_status, "yes" if o.stops_run else "no", str(int(o.exit_code)),
                str(o.http_status)]
        for ftype, o in FAILURES.items()
    }
    assert rows == expected
