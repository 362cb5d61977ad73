"""What stands in front of every ``/v3`` route (constant-contact-v3-api.md §1.2, §1.4, §1.5):
the Bearer token (401 object), the client id's limits (429 objects), scopes and user
privileges (403 array); the v2 gateway stays out of ``/v3``; faults and counters cover it."""

from __future__ import annotations

import httpx
import pytest

from ctctsync.sandbox import Sandbox
from ctctsync.sandbox.clock import SandboxClock
from ctctsync.sandbox.testing import SandboxFactory
from ctctsync.sandbox.v3.tokens import TokenStore

UNAUTHORIZED = {"error_key": "unauthorized", "error_message": "Unauthorized"}
EMAILS = "/v3/emails"
SUMMARIES = "/v3/reports/summary_reports/email_campaign_summaries"


def _get(sb: Sandbox, path: str, token: str | None, **params: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.get(f"{sb.base_url}{path}", headers=headers, params=params, timeout=10)


def _issue(sb: Sandbox, *scopes: str) -> str:
    r = httpx.post(f"{sb.base_url}/_sandbox/v3/tokens/issue", json={"scopes": list(scopes)},
                   timeout=10)
    token: str = r.json()["access_token"]
    return token


def test_v2_gateway_leaves_v3_alone(sandbox: Sandbox) -> None:
    # no api_key on v3 (§1.1): the Mashery check must not answer
    r = _get(sandbox, EMAILS, sandbox.credentials.v3_access_token)
    assert r.status_code == 200
    assert "campaigns" in r.json()
    r = _get(sandbox, EMAILS, None, api_key="unknownkey")
    assert r.status_code == 401
    assert r.json() == UNAUTHORIZED


@pytest.mark.parametrize("token", [
    pytest.param(None, id="missing"),
    pytest.param("basic", id="basic-scheme"),
    pytest.param("not-a-jwt", id="garbage"),
    pytest.param("v2", id="v2-token"),
    pytest.param("other-seed", id="other-sandbox"),
])
def test_bad_tokens_get_the_401_object(sandbox_factory: SandboxFactory,
                                       token: str | None) -> None:
    sb = sandbox_factory()
    if token == "basic":  # a good token under another scheme
        r = httpx.get(f"{sb.v3_url}/emails", timeout=10,
                      headers={"Authorization": f"Basic {sb.credentials.v3_access_token}"})
        assert r.json() == UNAUTHORIZED
        return
    if token == "v2":
        token = sb.credentials.access_token
    elif token == "other-seed":  # same client id and user, another sandbox's signing key
        c = sb.credentials
        token = TokenStore(sb.spec.seed + 1, c.api_key, c.user_name,
                           SandboxClock()).issue_access_token()
    r = _get(sb, EMAILS, token)
    assert r.status_code == 401
    assert r.json() == UNAUTHORIZED


def test_expired_and_revoked_tokens_get_the_401_object(sandbox: Sandbox) -> None:
    revoked, aging = _issue(sandbox, "campaign_data"), _issue(sandbox, "campaign_data")
    r = httpx.post(f"{sandbox.base_url}/_sandbox/v3/tokens/revoke", json={"token": revoked},
                   timeout=10)
    assert r.json() == {"revoked": True}
    assert _get(sandbox, EMAILS, revoked).json() == UNAUTHORIZED
    sandbox.advance(86_400 - 5)
    assert _get(sandbox, EMAILS, aging).status_code == 200
    httpx.post(f"{sandbox.base_url}/_sandbox/clock/advance", json={"seconds": 6}, timeout=10)
    r = _get(sandbox, EMAILS, aging)
    assert r.status_code == 401
    assert r.json() == UNAUTHORIZED


def test_throttled_and_quota_429_objects(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory(qps_limit=1, daily_limit=2)
    token = sb.credentials.v3_access_token
    assert _get(sb, EMAILS, token).status_code == 200
    r = _get(sb, EMAILS, token)
    assert r.status_code == 429
    assert r.json() == {"error_key": "throttled", "error_message": "Too Many Requests"}
    sb.advance(1)
    assert _get(sb, EMAILS, token).status_code == 200
    sb.advance(1)
    r = _get(sb, EMAILS, token)
    assert r.status_code == 429
    assert r.json() == {"error_key": "quota_exceeded", "error_message": "Limit Exceeded"}


def test_missing_scope_is_403(sandbox: Sandbox) -> None:
    r = _get(sandbox, EMAILS, _issue(sandbox, "contact_data", "account_read"))
    assert r.status_code == 403
    body = r.json()
    assert isinstance(body, list)
    assert body[0]["error_key"]
    assert "campaign_data" in body[0]["error_message"]


def test_campaign_creator_lacks_report_privileges(sandbox: Sandbox) -> None:
    admin = f"{sandbox.base_url}/_sandbox/v3/privileges"
    token = sandbox.credentials.v3_access_token
    assert _get(sandbox, SUMMARIES, token).status_code == 200
    r = httpx.post(admin, json={"role": "campaign_creator"}, timeout=10)
    assert "ui:campaign:metrics" not in r.json()["privileges"]
    assert _get(sandbox, EMAILS, token).status_code == 200
    denied = _get(sandbox, SUMMARIES, token)  # the same token: privileges are checked live
    assert denied.status_code == 403
    assert "ui:campaign:metrics" in denied.json()[0]["error_message"]
    httpx.post(admin, json={"privileges": ["campaign:read"]}, timeout=10)
    assert _get(sandbox, EMAILS, token).status_code == 200
    assert httpx.post(admin, json={"role": "boss"}, timeout=10).status_code == 400
    httpx.post(admin, json={"role": "account_owner"}, timeout=10)
    assert _get(sandbox, SUMMARIES, token).status_code == 200


def test_v3_fault_rule_fires(sandbox: Sandbox) -> None:
    token = sandbox.credentials.v3_access_token
    r = httpx.post(f"{sandbox.base_url}/_sandbox/faults", json={"spec": "503:/v3/emails:n=1"},
                   timeout=10)
    assert r.status_code == 201
    failed = _get(sandbox, EMAILS, token)
    assert failed.status_code == 503
    # in v3's own error shape, not v2's
    assert [e["error_key"] for e in failed.json()] == ["server_error"]
    assert _get(sandbox, EMAILS, token).status_code == 200
    sandbox.faults.add("500", "/oauth2/default/v1/token", count=1)
    r = httpx.post(f"{sandbox.authz_url}/token", data={"grant_type": "refresh_token"},
                   timeout=10)
    assert r.status_code == 500
    assert r.json()["error"] == "server_error"  # the OAuth error shape


def test_counters_count_v3_by_route_template(sandbox: Sandbox) -> None:
    token = sandbox.credentials.v3_access_token
    campaigns = _get(sandbox, EMAILS, token, limit="2").json()["campaigns"]
    assert len(campaigns) == 2
    sandbox.counters.reset()
    for c in campaigns:
        assert _get(sandbox, f"{EMAILS}/{c['campaign_id']}", token).status_code == 200
    assert _get(sandbox, EMAILS, None).status_code == 401
    httpx.post(f"{sandbox.authz_url}/revoke", data={"token": "x"}, timeout=10)
    assert sandbox.counters.count("GET /v3/emails/{campaign_id}") == 2
    assert sandbox.counters.count("GET /v3/emails", "401") == 1
    assert sandbox.counters.count("POST /oauth2/default/v1/revoke", "4xx") == 1
    snapshot = httpx.get(f"{sandbox.base_url}/_sandbox/counters", timeout=10).json()
    assert snapshot["total"] == 4
    # v3 calls count against the application (the JWT's client id), as CC's limits do
    client_id = sandbox.credentials.api_key
    assert snapshot["api_keys"][client_id]["total"] == 2


def test_admin_deletes_a_list(sandbox: Sandbox) -> None:
    lid = min(sandbox.account.lists)
    r = httpx.post(f"{sandbox.base_url}/_sandbox/lists/{lid}/delete", timeout=10)
    assert r.json() == {"id": str(lid)}
    assert sandbox.account.lists[lid].deleted_ms is not None
    r = httpx.post(f"{sandbox.base_url}/_sandbox/lists/99999/delete", timeout=10)
    assert r.status_code == 404
    # gone from v2 (which lists no deleted list), listed as deleted by v3
    v2 = {"api_key": sandbox.credentials.api_key}
    auth = {"Authorization": f"Bearer {sandbox.credentials.access_token}"}
    listed = httpx.get(f"{sandbox.base_url}/v2/lists", params=v2, headers=auth, timeout=10)
    assert lid not in {int(x["id"]) for x in listed.json()}
    one = httpx.get(f"{sandbox.base_url}/v2/lists/{lid}", params=v2, headers=auth, timeout=10)
    assert one.status_code == 404
    assert lid not in {int(x["id"]) for x in sandbox.truth("contact_lists")}
