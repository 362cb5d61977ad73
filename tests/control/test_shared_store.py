"""Two control planes sharing one PostgreSQL store (two server processes), and the threaded
plane end to end."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from ctctsync.control import services as svc
from ctctsync.control.clock import ManualClock
from ctctsync.control.models import Run
from ctctsync.control.plane import ControlPlane
from ctctsync.control.schemas import IntegrationCreate
from ctctsync.sandbox import Sandbox

from .conftest import PASSWORD, make_settings


@pytest.fixture
def two_planes(
    pg_url: str, tmp_path: Path, clock: ManualClock
) -> Iterator[tuple[ControlPlane, ControlPlane]]:
    settings = make_settings(tmp_path, database_url=pg_url)
    a = ControlPlane(settings, clock=clock)
    b = ControlPlane(settings, clock=clock)
    yield a, b
    a.close()
    b.close()


@pytest.mark.postgres
def test_two_planes_never_double_queue_or_double_claim(
    two_planes: tuple[ControlPlane, ControlPlane],
) -> None:
    a, b = two_planes
    with a.session() as db:
        user = svc.ensure_first_admin(db, "ops@example.com", PASSWORD)
        assert user is not None
        for name in ("one", "two"):
            integ = svc.create_integration(db, user, IntegrationCreate(name=name))
            svc.set_manual_credentials(db, integ, "k", "t", check_access=False)
    queued = a.tick().enqueued + b.tick().enqueued
    assert len(queued) == 2  # one per integration, whichever plane ticked first
    claims = [a.claim_next("a1"), b.claim_next("b1"), a.claim_next("a2"), b.claim_next("b2")]
    assert sorted(c for c in claims if c) == sorted(queued)
    with b.session() as db:
        statuses = db.scalars(sa.select(Run.status)).all()
    assert sorted(statuses) == ["running", "running"]


@pytest.mark.slow
def test_threads_schedule_and_run(sandbox: Sandbox, tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        cc_base_url=sandbox.base_url,
        cc_qps_limit=None,
        workers=1,
        scheduler_interval_seconds=0.05,
    )
    plane = ControlPlane(settings)
    plane.start()
    try:
        with plane.session() as db:
            user = svc.ensure_first_admin(db, "ops@example.com", PASSWORD)
            assert user is not None
            integ = svc.create_integration(
                db,
                user,
                IntegrationCreate(
                    name="acme", history_start="2000-01-01", tables={"contact_lists": None}
                ),
            )
            creds = sandbox.credentials
            svc.set_manual_credentials(db, integ, creds.api_key, creds.access_token)
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline:  # waiting for an outcome, not ordering a race
            with plane.session() as db:
                status = db.scalar(sa.select(Run.status))
            if status in ("succeeded", "failed", "partial", "cancelled"):
                break
            time.sleep(0.05)
        assert status == "succeeded"
    finally:
        plane.stop()
        plane.close()
