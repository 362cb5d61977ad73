"""The engine classifies a table's failure by lookup: the failure type, the message a person
reads (unchanged wording), and what it means for the run."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ctctsync.errors import RULES_BY_NAME, ConfigError, DailyQuotaExhausted, ReauthorizeRequired
from ctctsync.sync.engine import Cancelled, _classify
from ctctsync.sync.rows import MalformedRecord
from ctctsync.warehouse import WarehouseError

RESUME = datetime(2026, 11, 28, tzinfo=UTC)
DSN = "postgresql://loader:hunter2-pw@db:5432/x"


@pytest.mark.parametrize(
    ("exc", "failure_type", "status", "stops", "message"),
    [
        pytest.param(Cancelled(), "cancelled", "cancelled", True, "The run was cancelled.",
                     id="cancelled"),
        pytest.param(
            DailyQuotaExhausted("quota spent", resume_at=RESUME, rule=RULES_BY_NAME["daily_quota"]),
            "quota", "partial", True, "quota spent", id="quota",
        ),
        pytest.param(
            ReauthorizeRequired("re-authorize", rule=RULES_BY_NAME["invalid_token"]),
            "auth", "failed", True, "re-authorize", id="auth",
        ),
        pytest.param(
            ConfigError("no permission", rule=RULES_BY_NAME["forbidden"]),
            "config", "failed", False, "contacts: no permission", id="config",
        ),
        pytest.param(  # a rejected API key: every table would fail the same way
            ConfigError("bad key", rule=RULES_BY_NAME["api_key_not_authorized"]),
            "config", "failed", True, "bad key", id="config-rejected-key-stops",
        ),
        pytest.param(
            MalformedRecord("contacts", "id", "x", "not an integer"),
            "system", "failed", False,
            "Constant Contact sent data ctctsync cannot store: table contacts: field 'id' has "
            "str value 'x', not an integer",
            id="malformed-record",
        ),
        pytest.param(WarehouseError("disk full"), "config", "failed", False,
                     "contacts: disk full", id="warehouse"),
        pytest.param(
            RuntimeError(f"could not connect to {DSN}\nsecond line"), "system", "failed", False,
            "contacts: loading into the warehouse failed (RuntimeError: could not connect to ***)",
            id="unexpected-redacted",
        ),
    ],
)
def test_classify(exc: Exception, failure_type: str, status: str, stops: bool,
                  message: str) -> None:
    failure = _classify(exc, (DSN,), "contacts")
    assert (failure.failure_type, failure.status, failure.stop_run) == (failure_type, status, stops)
    assert failure.message == message
    assert failure.resume_at == (RESUME if failure_type == "quota" else None)


def test_a_run_level_failure_names_no_table() -> None:
    failure = _classify(WarehouseError("no credentials"), ())
    assert (failure.message, failure.failure_type) == ("no credentials", "config")
