"""The web process's credential check spends the fleet's rate budget, not one of its own.

A real PostgreSQL store (so ``CTCTSYNC_RATE_BUDGET=auto`` shares the budget), a real sandbox,
and a second budget handle on its own connection standing for a worker in another process.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ctctsync.api.ratelimit import fingerprint
from ctctsync.api.shared_budget import DEFAULT_TABLE, SharedRateLimiter
from ctctsync.control import services as svc
from ctctsync.control.clock import ManualClock
from ctctsync.control.models import Integration
from ctctsync.control.plane import ControlPlane
from ctctsync.control.schemas import IntegrationCreate
from ctctsync.sandbox import Sandbox

from .conftest import PASSWORD, make_settings

pytestmark = pytest.mark.postgres


@pytest.fixture
def web(pg_url: str, tmp_path: Path, clock: ManualClock,
        sandbox: Sandbox) -> Iterator[ControlPlane]:
    """The web process's plane on a PostgreSQL store, checking credentials on the sandbox."""
    settings = make_settings(tmp_path, database_url=pg_url, cc_base_url=sandbox.base_url)
    assert settings.resolved_rate_budget == "postgres"
    plane = ControlPlane(settings, clock=clock)
    yield plane
    plane.close()


@pytest.fixture
def worker_side(web: ControlPlane, sandbox: Sandbox) -> Iterator[SharedRateLimiter]:
    """The key's budget as a worker elsewhere sees it (its own connection)."""
    dsn = web.settings.resolved_database_url
    limiter = SharedRateLimiter(dsn, fingerprint(sandbox.credentials.api_key), 4.0, 10_000,
                                table=DEFAULT_TABLE)
    yield limiter
    limiter.close()


def _integration(web: ControlPlane) -> Integration:
    with web.session() as db:
        admin = svc.ensure_first_admin(db, "ops@example.com", PASSWORD)
        assert admin is not None
        integ = svc.create_integration(db, admin, IntegrationCreate(name="acme"))
        db.expunge(integ)
        return integ


def _calls_of(sandbox: Sandbox) -> int:
    counts = sandbox.counters.snapshot()["api_keys"].get(sandbox.credentials.api_key, {})
    return int(counts.get("total", 0))


def test_the_check_is_counted_in_the_fleets_budget(
    web: ControlPlane, worker_side: SharedRateLimiter, sandbox: Sandbox
) -> None:
    integ = _integration(web)
    creds = sandbox.credentials
    with web.session() as db:
        svc.set_manual_credentials(db, db.merge(integ), creds.api_key, creds.access_token)
    assert _calls_of(sandbox) == 1
    assert worker_side.used_today == 1  # the worker sees the web's call in the key's count


def test_a_key_the_fleet_has_spent_is_not_called_by_the_web(
    web: ControlPlane, worker_side: SharedRateLimiter, sandbox: Sandbox
) -> None:
    # a worker heard "daily quota spent" from Constant Contact: the whole fleet stops calling
    # the key until 00:00 UTC, the web's check included (it stores the credentials unchecked,
    # as when CC cannot be reached)
    worker_side.mark_exhausted()
    integ = _integration(web)
    creds = sandbox.credentials
    with web.session() as db:
        stored = svc.set_manual_credentials(db, db.merge(integ), creds.api_key,
                                            creds.access_token)
        assert stored.credentials_encrypted
    assert _calls_of(sandbox) == 0
