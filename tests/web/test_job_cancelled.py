"""A cancelled job is shown as stopped on purpose, not as a failure (issue 8)."""

from __future__ import annotations

import re

import sqlalchemy as sa

from ctctsync.control import services as svc
from ctctsync.control.models import Integration, User
from ctctsync.control.schemas import IntegrationCreate
from web.helpers import ADMIN_EMAIL, WebClient, WebServer


def _job(web: WebServer, status: str, error: str, failure_type: str | None) -> str:
    with web.plane.session() as db:
        user = db.scalar(sa.select(User).where(User.email == ADMIN_EMAIL))
        assert user is not None
        integ = svc.create_integration(db, user, IntegrationCreate(name=f"acme_{status}"))
        run = svc.enqueue_run(db, db.get(Integration, integ.id), "manual")  # type: ignore[arg-type]
        run.transition("running")
        run.transition(status)  # type: ignore[arg-type]
        run.error, run.failure_type = error, failure_type
        run.table_status = {"contacts": "succeeded", "contact_lists": "cancelled"}
        db.commit()
        return run.id


def _flash(page: str) -> str:
    match = re.search(
        r'<p class="flash ([a-z-]+) state-message" id="job-message" data-message="\w+" '
        r'role="(\w+)"', page)
    assert match is not None, page
    return f"{match.group(1)} {match.group(2)}"


def test_a_cancelled_job_is_a_notice_and_a_failed_one_an_error(
    admin: WebClient, web: WebServer
) -> None:
    cancelled = _job(web, "cancelled", "Cancelled on request.", "cancelled")
    page = admin.get(f"/jobs/{cancelled}").text
    assert _flash(page) == "flash-info status"  # before issue 8: "flash-error alert", red
    assert "Cancelled on request." in page
    failed = _job(web, "failed", "contacts: the warehouse refused the load", "config")
    assert _flash(admin.get(f"/jobs/{failed}").text) == "flash-error alert"
