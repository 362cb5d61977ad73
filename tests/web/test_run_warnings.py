"""A run that succeeded but could not load everything says so (issue 8 §1, "no silent
loss"): the worker stores its warnings, the job page and the integration's history show
"Succeeded with warnings" and each warning, and the REST API's run carries them."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from ctctsync.control import services as svc
from ctctsync.control.models import Integration, Run, User
from ctctsync.control.schemas import IntegrationCreate
from ctctsync.sandbox import Sandbox
from web.helpers import ADMIN_EMAIL, WebServer, create_admin

pytestmark = pytest.mark.slow


def _campaign_with_clicks(sb: Sandbox) -> str:
    kinds = Counter((r["campaign_id"], r["activity_type"]) for r in sb.truth("contact_tracking"))
    return next(cid for cid, kind in sorted(kinds) if kind == "EMAIL_CLICK")


@pytest.fixture
def cc_web(web_factory: Any, sandbox: Sandbox) -> WebServer:
    """A served app (no background workers) whose Constant Contact is the sandbox."""
    creds = sandbox.credentials
    return web_factory(  # type: ignore[no-any-return]
        workers=0, cc_base_url=sandbox.base_url, api_key=creds.api_key,
        client_secret=creds.client_secret, cc_qps_limit=None,
    )


def test_a_run_with_a_deleted_campaign_succeeds_with_warnings(
    cc_web: WebServer, sandbox: Sandbox
) -> None:
    cid = _campaign_with_clicks(sandbox)
    sandbox.faults.add("404", f"/v2/emailmarketing/campaigns/{cid}*")  # deleted mid-run
    create_admin(cc_web.plane)
    creds = sandbox.credentials
    with cc_web.plane.session() as db:
        owner = db.scalars(sa.select(User).where(User.email == ADMIN_EMAIL)).one()
        integ = svc.create_integration(db, owner, IntegrationCreate(
            name="acme", history_start="2000-01-01",  # type: ignore[arg-type]
            tables={"contact_tracking": None}))
        svc.set_manual_credentials(db, integ, creds.api_key, creds.access_token,
                                   check_access=False)
        run_id = svc.run_now(db, integ, owner).id
        _token, api_token = svc.create_api_token(db, owner, "warnings test")
    assert cc_web.plane.work_once("w1") == run_id

    warning = f"contact_tracking: 1 campaign deleted during the run: {cid}"
    with cc_web.plane.session() as db:
        run = db.get(Run, run_id)
        assert run is not None
        assert (run.status, run.warnings) == ("succeeded", [warning]), run.error
        assert run.status_label == "succeeded with warnings"
        integ_state = db.scalars(sa.select(Integration.state)).one()
    assert integ_state == "active"  # a warning is not a failure: the integration is healthy

    browser = cc_web.client()
    browser.sign_in()
    page = browser.get(f"/jobs/{run_id}").text
    assert "Succeeded with warnings" in page
    assert 'id="job-warnings"' in page and warning in page
    assert "1 campaign deleted during the run" in page.split('id="job-tables"')[1]
    assert "Succeeded with warnings" in browser.get(f"/integrations/{integ.id}").text

    got = httpx.get(f"{cc_web.base_url}/api/v1/runs/{run_id}",
                    headers={"Authorization": f"Bearer {api_token}"}).json()
    assert got["status"] == "succeeded"
    assert got["status_label"] == "succeeded with warnings"
    assert got["warnings"] == [warning]
