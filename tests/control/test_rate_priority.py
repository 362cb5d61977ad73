"""Which runs' calls go first at a shared key (quota.rate_priority), and that a run's class
reaches its API clients."""

from __future__ import annotations

import pytest

from ctctsync.config import SourceConfig
from ctctsync.control.services.quota import rate_priority
from ctctsync.sync.engine import make_client


@pytest.mark.parametrize(
    ("trigger", "kind", "expected"),
    [
        pytest.param("schedule", "incremental", "high", id="scheduled-incremental"),
        pytest.param("schedule", None, "high", id="scheduled-before-0007"),
        pytest.param("schedule", "first_load", "low", id="scheduled-first-load"),
        pytest.param("schedule", "full_refresh", "low", id="scheduled-full-refresh"),
        pytest.param("manual", "incremental", "low", id="manual"),
        pytest.param("resync", "resync", "low", id="resync"),
        pytest.param("backfill", "full_refresh", "low", id="backfill"),
    ],
)
def test_scheduled_incremental_runs_go_first(trigger: str, kind: str | None,
                                             expected: str) -> None:
    assert rate_priority(trigger, kind) == expected


@pytest.mark.parametrize("priority", ["high", "low"])
def test_the_runs_class_reaches_its_client(priority: str) -> None:
    source = SourceConfig(api_key="k" * 12, access_token="t" * 12, base_url="http://127.0.0.1:9",
                          rate_priority=priority)  # type: ignore[arg-type]
    with make_client(source) as client:
        assert client.priority == priority
