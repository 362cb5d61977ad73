"""The schema page over HTTP: an integration's schema is its owner's (and administrators')
to see; another user gets the same 404 as for an integration that does not exist."""

from __future__ import annotations

from ctctsync.control import services as svc
from web.helpers import WebClient, WebServer
from web.test_quota_api import add_v2_integration


def test_the_schema_page_is_the_owner_s_and_the_admins(web: WebServer, admin: WebClient) -> None:
    integration_id = add_v2_integration(web, "acme")
    own = admin.get(f"/integrations/{integration_id}/schema")
    assert own.status_code == 200 and "acme" in own.text
    with web.plane.session() as db:
        svc.create_user(db, "alice@example.com", "correct horse battery")
    alice = web.client()
    alice.sign_in("alice@example.com", "correct horse battery")
    for path in (f"/integrations/{integration_id}/schema", "/integrations/999999/schema"):
        refused = alice.get(path)
        assert refused.status_code == 404, path
        assert "acme" not in refused.text
