"""Switching a loaded v2 integration to API v3 from the UI and the REST API: the integration
reads v3 and must be authorized with v3 (its v2 credentials do not open v3); its selection
follows; its next job moves the warehouse (tests/e2e/test_v3_switch.py proves that part)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import sqlalchemy as sa

from ctctsync.control import services as svc
from ctctsync.control.context import context
from ctctsync.control.models import Integration, User
from ctctsync.control.schemas import IntegrationCreate
from ctctsync.tables import tables_for
from web.helpers import ADMIN_EMAIL, WebClient, WebServer


def _loaded_v2(web: WebServer, name: str) -> int:
    """A v2 integration that has run (credentials stored, activated)."""
    with web.plane.session() as db:
        user = db.scalar(sa.select(User).where(User.email == ADMIN_EMAIL))
        assert user is not None
        integ = svc.create_integration(db, user, IntegrationCreate(name=name, api_version="v2"))
        integ.tables = dict.fromkeys(tables_for("v2"))
        integ.credentials_encrypted = context(db).box.encrypt_json(
            {"api_key": "k" * 24, "access_token": "t" * 24})
        integ.auth_method = "manual"
        integ.activated_at = datetime.now(UTC)
        integ.state = "active"
        db.commit()
        return integ.id


def test_switch_button_makes_a_loaded_v2_integration_read_v3(admin: WebClient,
                                                             web: WebServer) -> None:
    integ_id = _loaded_v2(web, "acme")
    details = f"/integrations/{integ_id}"
    assert 'id="switch-v3"' in admin.get(details).text
    r = admin.post(f"{details}/switch-to-v3", form_page=details)
    assert r.status_code == 303 and r.headers["location"] == details
    page = admin.get(details).text
    assert "now reads Constant Contact" in page and "v2_id" in page
    assert 'id="switch-v3"' not in page and 'id="authorize"' in page
    with web.plane.session() as db:
        integ = db.get(Integration, integ_id)
        assert integ is not None
        assert integ.api_version == "v3"
        assert integ.credentials_encrypted is None  # a v2 key does not open v3
        assert set(integ.tables) == set(tables_for("v3"))  # every table before: every one now


def test_rest_switch_and_refusal(admin: WebClient, web: WebServer) -> None:
    integ_id = _loaded_v2(web, "acme")
    with web.plane.session() as db:
        user = db.scalar(sa.select(User).where(User.email == ADMIN_EMAIL))
        assert user is not None
        _token, plaintext = svc.create_api_token(db, user, "test")
    with httpx.Client(base_url=web.base_url + "/api/v1", timeout=20,
                      headers={"Authorization": f"Bearer {plaintext}"}) as api:
        first = api.post(f"/integrations/{integ_id}/switch-to-v3")
        assert first.status_code == 200, first.text
        assert first.json()["api_version"] == "v3"
        again = api.post(f"/integrations/{integ_id}/switch-to-v3")
        assert again.status_code == 409  # only v2 -> v3 exists
