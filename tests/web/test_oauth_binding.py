"""The OAuth callback is bound to the browser session that started the authorization.

Issue 8 §2: a victim who approves an authorize URL someone else started must not attach
their Constant Contact account to that someone's integration. Real parts: the app served on
loopback, the sandbox's OAuth login page, one httpx cookie jar per browser.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa

from ctctsync.control import services as svc
from ctctsync.control.models import Integration, OAuthState
from ctctsync.sandbox.testing import authorize_code
from web.helpers import ADMIN_EMAIL, WebClient, WebServer, create_admin

VICTIM_EMAIL = "victim@example.com"
VICTIM_PASSWORD = "another long password"


@pytest.fixture
def cc_web(web_factory: Any, sandbox: Any) -> WebServer:
    """A served app (no workers) whose Constant Contact is the sandbox."""
    creds = sandbox.credentials
    return web_factory(  # type: ignore[no-any-return]
        workers=0,
        cc_base_url=sandbox.base_url,
        api_key=creds.api_key,
        client_secret=creds.client_secret,
        cc_qps_limit=None,
    )


def _integration(web: WebServer) -> Integration:
    with web.plane.session() as db:
        return db.scalars(sa.select(Integration)).one()


def _start(web: WebServer, client: WebClient) -> str:
    """Create a v2 integration in ``client``'s session and start its (v2 OAuth)
    authorization there; the ``state`` of the authorize URL."""
    client.post(
        "/integrations/new/constant-contact",
        {"name": "acme", "frequency_hours": "24", "history_start": "", "api_version": "v2"},
    )
    integ_id = _integration(web).id
    assert _integration(web).api_version == "v2"
    r = client.post(
        f"/integrations/{integ_id}/authorize",
        form_page=f"/integrations/{integ_id}/setup/authorize",
    )
    assert r.status_code == 303, r.text
    match = re.search(r"[?&]state=([^&]+)", r.headers["location"])
    assert match
    return match.group(1)


def test_callback_from_another_session_is_refused(cc_web: WebServer, sandbox: Any) -> None:
    create_admin(cc_web.plane)
    with cc_web.plane.session() as db:
        svc.create_user(db, VICTIM_EMAIL, VICTIM_PASSWORD)
    starter = cc_web.client()  # session A: e.g. an attacker who sends the URL to a victim
    starter.sign_in(ADMIN_EMAIL)
    state = _start(cc_web, starter)
    # The victim approves on Constant Contact; CC sends *their* browser to the callback.
    code = authorize_code(sandbox, cc_web.settings.oauth_redirect_uri, state=state)
    victim = cc_web.client()  # session B, signed in to ctctsync as someone else
    victim.sign_in(VICTIM_EMAIL, VICTIM_PASSWORD)
    signed_out = cc_web.client()  # session C, no ctctsync session at all
    for other in (victim, signed_out):
        r = other.get("/oauth/callback", params={"state": state, "code": code})
        assert r.status_code == 403, r.text
        assert "another browser session" in r.text  # says what happened
        assert 'href="/integrations"' in r.text and "Start the authorization again" in r.text
        integ = _integration(cc_web)
        assert not integ.has_credentials and integ.auth_method is None

    # The session that started it still completes it (the refusals consumed nothing).
    r = starter.get("/oauth/callback", params={"state": state, "code": code})
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"/integrations/{_integration(cc_web).id}/setup/tables"
    integ = _integration(cc_web)
    assert integ.has_credentials and integ.auth_method == "oauth"
    with cc_web.plane.session() as db:
        assert db.scalars(sa.select(OAuthState)).all() == []  # single use


def test_state_stores_only_a_hash_of_the_session_nonce(cc_web: WebServer) -> None:
    create_admin(cc_web.plane)
    client = cc_web.client()
    client.sign_in()
    _start(cc_web, client)
    with cc_web.plane.session() as db:
        pending = db.scalars(sa.select(OAuthState)).one()
        assert pending.binding_hash is not None and len(pending.binding_hash) == 64
