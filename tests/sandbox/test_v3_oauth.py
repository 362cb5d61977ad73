"""The v3 authorization server (constant-contact-v3-api.md §1.2) over real HTTP: the PKCE and
secret-bearing code flows through the sign-in and consent pages, refresh rotation and the
long-lived mode, the device flow, revocation, the token endpoint's 1 request/s and the
180-day refresh-token expiry on the sandbox clock."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from ctctsync.sandbox import Sandbox
from ctctsync.sandbox.testing import (
    HtmlForm,
    SandboxFactory,
    authorize_v3,
    authorize_v3_code,
    pkce_pair,
    v3_tokens_by_pkce,
)
from ctctsync.sandbox.v3.oauth import AUTHZ_PATH, DEVICE_GRANT
from ctctsync.sandbox.v3.tokens import REFRESH_IDLE_LIFETIME_S

CALLBACK = "http://127.0.0.1:8123/oauth/callback"
DAY = 86_400


def _token(sb: Sandbox, data: dict[str, str], *, basic: bool = False,
           query: bool = False) -> httpx.Response:
    """A token-endpoint call: params in the form body (or the query), the client's id and
    secret by HTTP Basic when ``basic``."""
    headers = {}
    if basic:
        c = sb.credentials
        pair = base64.b64encode(f"{c.api_key}:{c.client_secret}".encode()).decode()
        headers["Authorization"] = f"Basic {pair}"
    url = f"{sb.authz_url}/token"
    if query:
        return httpx.post(url, params=data, headers=headers, timeout=10)
    return httpx.post(url, data=data, headers=headers, timeout=10)


def _refresh(sb: Sandbox, refresh_token: str) -> httpx.Response:
    return _token(sb, {"grant_type": "refresh_token", "refresh_token": refresh_token,
                       "client_id": sb.credentials.api_key})


def _oauth_error(r: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] == error
    assert body["error_description"]
    return body


def _redirect_query(r: httpx.Response) -> dict[str, str]:
    assert r.status_code == 302, r.text[:300]
    location = r.headers["location"]
    assert location.startswith(CALLBACK)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def _get_emails(sb: Sandbox, token: str) -> httpx.Response:
    return httpx.get(f"{sb.v3_url}/emails", headers={"Authorization": f"Bearer {token}"},
                     timeout=10)


# -- the code flows ----------------------------------------------------------------------------


def test_authz_base_is_ccs_path(sandbox: Sandbox) -> None:
    assert AUTHZ_PATH == "/oauth2/default/v1"
    assert sandbox.authz_url == f"{sandbox.base_url}/oauth2/default/v1"
    assert sandbox.v3_url == f"{sandbox.base_url}/v3"


def test_pkce_flow_through_the_pages(sandbox: Sandbox) -> None:
    scopes = ("contact_data", "campaign_data", "offline_access")
    body = v3_tokens_by_pkce(sandbox, scopes, CALLBACK)
    assert set(body) == {"token_type", "expires_in", "access_token", "scope", "refresh_token"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 86_400
    assert body["scope"] == "contact_data campaign_data offline_access"
    grant = sandbox.v3_tokens.verify(body["access_token"])
    assert grant is not None
    assert grant.client_id == sandbox.credentials.api_key
    assert grant.scopes == frozenset(scopes)
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 86_400
    assert _get_emails(sandbox, body["access_token"]).status_code == 200


def test_pages_are_labelled_forms(sandbox: Sandbox) -> None:
    c = sandbox.credentials
    params = {"response_type": "code", "client_id": c.api_key, "redirect_uri": CALLBACK,
              "scope": "contact_data", "state": "s1"}
    page = httpx.get(f"{sandbox.authz_url}/authorize", params=params, timeout=10)
    assert page.status_code == 200
    assert page.headers["x-frame-options"] == "DENY"
    form = HtmlForm.parse(page.text, "signin")
    assert form.action == f"{AUTHZ_PATH}/authorize"
    assert {"email", "password"} <= set(form.labels) <= set(form.ids)
    assert form.fields["scope"] == "contact_data"
    assert form.fields["state"] == "s1"
    signed_in = form.submit(httpx.Client(timeout=10), str(page.url), email=c.email,
                            password=c.password)
    consent = HtmlForm.parse(signed_in.text, "consent")
    assert consent.buttons == {"decision": ["allow", "deny"]}
    assert "<code>contact_data</code>: Read or modify contact data." in signed_in.text
    assert c.password not in signed_in.text


def test_secret_client_basic_auth_and_query_params(sandbox: Sandbox) -> None:
    # the shape real integrations use: params in the query, Basic client auth (§1.2)
    code = authorize_v3_code(sandbox, CALLBACK, ["openid", "account_read"])
    r = _token(sandbox, {"grant_type": "authorization_code", "code": code,
                         "redirect_uri": CALLBACK}, basic=True, query=True)
    assert r.status_code == 200, r.text
    body = r.json()
    assert "refresh_token" not in body  # no offline_access
    assert body["scope"] == "openid account_read"
    id_claims = jwt.decode(body["id_token"], options={"verify_signature": False})
    assert id_claims["aud"] == sandbox.credentials.api_key
    assert r.headers["cache-control"] == "no-store"


def test_code_without_pkce_needs_the_secret(sandbox: Sandbox) -> None:
    code = authorize_v3_code(sandbox, CALLBACK, ["contact_data"])
    r = _token(sandbox, {"grant_type": "authorization_code", "code": code,
                         "redirect_uri": CALLBACK, "client_id": sandbox.credentials.api_key})
    _oauth_error(r, 401, "invalid_client")


def test_wrong_verifier_then_reuse(sandbox: Sandbox) -> None:
    verifier, challenge = pkce_pair()
    code = authorize_v3_code(sandbox, CALLBACK, ["contact_data"], code_challenge=challenge)
    exchange = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK,
                "client_id": sandbox.credentials.api_key}
    wrong = _token(sandbox, {**exchange, "code_verifier": pkce_pair()[0]})
    _oauth_error(wrong, 400, "invalid_grant")
    # the failed attempt consumed the code: the right verifier comes too late
    _oauth_error(_token(sandbox, {**exchange, "code_verifier": verifier}), 400, "invalid_grant")


def test_code_is_single_use(sandbox: Sandbox) -> None:
    verifier, challenge = pkce_pair()
    code = authorize_v3_code(sandbox, CALLBACK, ["contact_data"], code_challenge=challenge)
    exchange = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK,
                "client_id": sandbox.credentials.api_key, "code_verifier": verifier}
    assert _token(sandbox, exchange).status_code == 200
    _oauth_error(_token(sandbox, exchange), 400, "invalid_grant")


@pytest.mark.parametrize(("change", "status", "error"), [
    pytest.param({"redirect_uri": "http://127.0.0.1:8123/other"}, 400, "invalid_grant",
                 id="other-redirect"),
    pytest.param({"code_verifier": ""}, 400, "invalid_request", id="no-verifier"),
    pytest.param({"client_id": "nobody"}, 401, "invalid_client", id="unknown-client"),
    pytest.param({"client_secret": "wrong"}, 401, "invalid_client", id="wrong-secret"),
    pytest.param({"grant_type": "password"}, 400, "unsupported_grant_type", id="grant-type"),
    pytest.param({"grant_type": ""}, 400, "invalid_request", id="no-grant-type"),
    pytest.param({"code": ""}, 400, "invalid_request", id="no-code"),
])
def test_token_refusals(sandbox: Sandbox, change: dict[str, str], status: int,
                        error: str) -> None:
    verifier, challenge = pkce_pair()
    code = authorize_v3_code(sandbox, CALLBACK, ["contact_data"], code_challenge=challenge)
    exchange = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK,
                "client_id": sandbox.credentials.api_key, "code_verifier": verifier}
    _oauth_error(_token(sandbox, {**exchange, **change}), status, error)


def test_bad_basic_auth_is_challenged(sandbox: Sandbox) -> None:
    bad = base64.b64encode(f"{sandbox.credentials.api_key}:nope".encode()).decode()
    r = httpx.post(f"{sandbox.authz_url}/token", headers={"Authorization": f"Basic {bad}"},
                   data={"grant_type": "refresh_token", "refresh_token": "x"}, timeout=10)
    _oauth_error(r, 401, "invalid_client")
    assert r.headers["www-authenticate"].startswith("Basic")


# -- the authorize page's refusals -------------------------------------------------------------


@pytest.mark.parametrize(("client_id", "redirect_uri"), [
    pytest.param("nobody", CALLBACK, id="unknown-client"),
    pytest.param(None, "https://evil.example/cb", id="unregistered-redirect"),
    pytest.param(None, "", id="no-redirect"),
])
def test_unverified_client_or_redirect_gets_an_error_page(
        sandbox: Sandbox, client_id: str | None, redirect_uri: str) -> None:
    params = {"response_type": "code", "client_id": client_id or sandbox.credentials.api_key,
              "redirect_uri": redirect_uri, "scope": "contact_data", "state": "s"}
    r = httpx.get(f"{sandbox.authz_url}/authorize", params=params, timeout=10)
    assert r.status_code == 400
    assert "location" not in r.headers
    assert 'role="alert"' in r.text


def test_registered_redirect_uri(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory(redirect_uris=["https://app.example/cb"])
    r = authorize_v3(sb, "https://app.example/cb", ["contact_data"])
    assert r.status_code == 302
    assert r.headers["location"].startswith("https://app.example/cb?code=")


@pytest.mark.parametrize(("extra", "error"), [
    pytest.param({"code_challenge": "a" * 43, "code_challenge_method": "plain"},
                 "invalid_request", id="plain-pkce"),
    pytest.param({"code_challenge": "a" * 43}, "invalid_request", id="pkce-no-method"),
    pytest.param({"code_challenge": "short", "code_challenge_method": "S256"},
                 "invalid_request", id="malformed-challenge"),
    pytest.param({"scope": "contact_data billing_data"}, "invalid_scope", id="unknown-scope"),
    pytest.param({"scope": ""}, "invalid_scope", id="no-scope"),
    pytest.param({"response_type": "token"}, "unsupported_response_type", id="implicit"),
])
def test_bad_request_redirects_the_error(sandbox: Sandbox, extra: dict[str, str],
                                         error: str) -> None:
    params = {"response_type": "code", "client_id": sandbox.credentials.api_key,
              "redirect_uri": CALLBACK, "scope": "contact_data", "state": "st8", **extra}
    r = httpx.get(f"{sandbox.authz_url}/authorize", params=params, timeout=10)
    q = _redirect_query(r)
    assert q["error"] == error
    assert q["error_description"]
    assert q["state"] == "st8"


def test_deny_redirects_access_denied(sandbox: Sandbox) -> None:
    q = _redirect_query(authorize_v3(sandbox, CALLBACK, ["contact_data"], state="d1",
                                     decision="deny"))
    assert q["error"] == "access_denied"
    assert q["error_description"]
    assert q["state"] == "d1"
    assert "code" not in q


def test_wrong_password_shows_the_page_again(sandbox: Sandbox) -> None:
    r = authorize_v3(sandbox, CALLBACK, ["contact_data"], password="wrong")
    assert r.status_code == 200
    assert 'role="alert"' in r.text
    assert HtmlForm.parse(r.text, "signin").fields["email"] == sandbox.credentials.email


def test_consent_ticket_is_single_use(sandbox: Sandbox) -> None:
    c = sandbox.credentials
    url = f"{sandbox.authz_url}/authorize"
    params = {"response_type": "code", "client_id": c.api_key, "redirect_uri": CALLBACK,
              "scope": "contact_data"}
    with httpx.Client(timeout=10) as client:
        page = client.get(url, params=params)
        signed_in = HtmlForm.parse(page.text, "signin").submit(
            client, url, email=c.email, password=c.password)
        consent = HtmlForm.parse(signed_in.text, "consent")
        assert consent.submit(client, url, ("decision", "allow")).status_code == 302
        again = consent.submit(client, url, ("decision", "allow"))
    assert again.status_code == 400
    assert "location" not in again.headers


# -- refresh tokens ----------------------------------------------------------------------------


def test_refresh_rotates_and_old_tokens_die(sandbox: Sandbox) -> None:
    first = v3_tokens_by_pkce(sandbox)
    r1 = _refresh(sandbox, first["refresh_token"])  # PKCE chain: no secret needed
    assert r1.status_code == 200, r1.text
    second = r1.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["scope"] == first["scope"]
    assert _get_emails(sandbox, second["access_token"]).status_code == 200
    body = _oauth_error(_refresh(sandbox, first["refresh_token"]), 400, "invalid_grant")
    assert body["error_description"] == "The refresh token is invalid or expired."
    r2 = _refresh(sandbox, second["refresh_token"])  # the reuse did not kill the chain
    assert r2.status_code == 200
    _oauth_error(_refresh(sandbox, second["refresh_token"]), 400, "invalid_grant")
    assert _refresh(sandbox, r2.json()["refresh_token"]).status_code == 200


def test_confidential_chain_refresh_needs_the_secret(sandbox: Sandbox) -> None:
    code = authorize_v3_code(sandbox, CALLBACK, ["contact_data", "offline_access"])
    first = _token(sandbox, {"grant_type": "authorization_code", "code": code,
                             "redirect_uri": CALLBACK}, basic=True).json()
    _oauth_error(_refresh(sandbox, first["refresh_token"]), 401, "invalid_client")
    r = _token(sandbox, {"grant_type": "refresh_token",
                         "refresh_token": first["refresh_token"]}, basic=True, query=True)
    assert r.status_code == 200, r.text


def test_refresh_may_narrow_but_not_widen(sandbox: Sandbox) -> None:
    first = v3_tokens_by_pkce(sandbox, ["contact_data", "offline_access"])
    grant = {"grant_type": "refresh_token", "client_id": sandbox.credentials.api_key,
             "refresh_token": first["refresh_token"]}
    wider = _token(sandbox, {**grant, "scope": "contact_data campaign_data offline_access"})
    _oauth_error(wider, 400, "invalid_scope")
    narrow = _token(sandbox, {**grant, "scope": "contact_data"})
    assert narrow.status_code == 200
    assert narrow.json()["scope"] == "contact_data"


def test_long_lived_mode_via_admin(sandbox: Sandbox) -> None:
    r = httpx.post(f"{sandbox.base_url}/_sandbox/v3/application",
                   json={"refresh_token_mode": "long_lived"}, timeout=10)
    assert r.json()["refresh_token_mode"] == "long_lived"
    first = v3_tokens_by_pkce(sandbox)
    for _ in range(2):
        r = _refresh(sandbox, first["refresh_token"])
        assert r.status_code == 200
        assert r.json()["refresh_token"] == first["refresh_token"]
        assert r.json()["access_token"] != first["access_token"]
    bad = httpx.post(f"{sandbox.base_url}/_sandbox/v3/application",
                     json={"refresh_token_mode": "forever"}, timeout=10)
    assert bad.status_code == 400


@pytest.mark.parametrize("mode", ["rotating", "long_lived"])
def test_refresh_token_expires_after_180_idle_days(sandbox: Sandbox, mode: str) -> None:
    httpx.post(f"{sandbox.base_url}/_sandbox/v3/application",
               json={"refresh_token_mode": mode}, timeout=10).raise_for_status()
    tokens = v3_tokens_by_pkce(sandbox)
    refresh = tokens["refresh_token"]
    # 179 idle days, a use, 179 more: each use restarts the idle clock
    for _ in range(2):
        httpx.post(f"{sandbox.base_url}/_sandbox/clock/advance",
                   json={"seconds": REFRESH_IDLE_LIFETIME_S - DAY}, timeout=10)
        r = _refresh(sandbox, refresh)
        assert r.status_code == 200, r.text
        refresh = r.json()["refresh_token"]
    assert sandbox.v3_tokens.verify(tokens["access_token"]) is None  # 24 h access token
    assert _get_emails(sandbox, tokens["access_token"]).status_code == 401
    sandbox.advance(REFRESH_IDLE_LIFETIME_S + 1)
    _oauth_error(_refresh(sandbox, refresh), 400, "invalid_grant")


# -- the token endpoint's limit ----------------------------------------------------------------


def test_token_endpoint_one_request_per_second(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory(token_qps_limit=1)
    first = _refresh(sb, "not-a-token")  # refused, but counted against the client
    _oauth_error(first, 400, "invalid_grant")
    second = _refresh(sb, "not-a-token")
    body = _oauth_error(second, 429, "rate_limit_exceeded")
    assert "1 request per second" in body["error_description"]
    sb.advance(1)  # the limiter's window follows the sandbox clock: no sleeping
    _oauth_error(_refresh(sb, "not-a-token"), 400, "invalid_grant")
    # the limit is the token endpoint's only: the API is not affected
    assert _get_emails(sb, sb.credentials.v3_access_token).status_code == 200


def test_token_limit_settable_via_admin(sandbox: Sandbox) -> None:
    admin = f"{sandbox.base_url}/_sandbox/v3/application"
    assert httpx.get(admin, timeout=10).json()["token_qps_limit"] is None
    assert httpx.post(admin, json={"token_qps_limit": 1}, timeout=10).json()[
        "token_qps_limit"] == 1
    assert _refresh(sandbox, "x").status_code == 400
    assert _refresh(sandbox, "x").status_code == 429


# -- the device flow ---------------------------------------------------------------------------


def _device(sb: Sandbox, scope: str = "contact_data offline_access") -> dict[str, Any]:
    r = httpx.post(f"{sb.authz_url}/device/authorize", timeout=10,
                   data={"client_id": sb.credentials.api_key, "scope": scope})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _poll(sb: Sandbox, device_code: str) -> httpx.Response:
    # CC's documented shape: everything in the query (§1.2)
    return _token(sb, {"client_id": sb.credentials.api_key, "device_code": device_code,
                       "grant_type": DEVICE_GRANT}, query=True)


def test_device_flow_with_the_activation_page(sandbox: Sandbox) -> None:
    d = _device(sandbox)
    assert set(d) == {"device_code", "user_code", "verification_uri",
                      "verification_uri_complete", "expires_in", "interval"}
    assert (d["expires_in"], d["interval"]) == (600, 5)
    assert d["verification_uri"] == f"{sandbox.base_url}/activate"
    assert d["verification_uri_complete"] == f"{d['verification_uri']}?user_code={d['user_code']}"
    _oauth_error(_poll(sandbox, d["device_code"]), 400, "authorization_pending")
    slow = _oauth_error(_poll(sandbox, d["device_code"]), 400, "slow_down")
    assert "10 seconds" in slow["error_description"]  # the interval grew by 5 s
    sandbox.advance(10)
    _oauth_error(_poll(sandbox, d["device_code"]), 400, "authorization_pending")

    c = sandbox.credentials
    with httpx.Client(timeout=10) as client:
        page = client.get(d["verification_uri_complete"])
        form = HtmlForm.parse(page.text, "activate")
        assert form.fields["user_code"] == d["user_code"]
        assert {"user_code", "email", "password"} <= set(form.labels)
        signed_in = form.submit(client, str(page.url), email=c.email, password=c.password)
        done = HtmlForm.parse(signed_in.text, "consent").submit(
            client, str(page.url), ("decision", "allow"))
    assert done.status_code == 200
    assert "Device activated" in done.text

    sandbox.advance(10)
    r = _poll(sandbox, d["device_code"])
    assert r.status_code == 200, r.text
    tokens = r.json()
    assert tokens["scope"] == "contact_data offline_access"
    assert _refresh(sandbox, tokens["refresh_token"]).status_code == 200  # public chain
    sandbox.advance(10)
    _oauth_error(_poll(sandbox, d["device_code"]), 400, "invalid_grant")  # redeemed


def test_device_user_code_typed_loosely_and_wrong(sandbox: Sandbox) -> None:
    d = _device(sandbox)
    c = sandbox.credentials
    url = f"{sandbox.base_url}/activate"
    with httpx.Client(timeout=10) as client:
        form = HtmlForm.parse(client.get(url).text, "activate")
        wrong = form.submit(client, url, user_code="BBBB-BBBB", email=c.email,
                            password=c.password)
        assert 'role="alert"' in wrong.text
        assert 'id="consent"' not in wrong.text
        code = d["user_code"].lower()
        loose = form.submit(client, url, user_code=f"{code[:4]}-{code[4:]}", email=c.email,
                            password=c.password)
        assert 'id="consent"' in loose.text


def test_device_denied_and_expired(sandbox: Sandbox) -> None:
    denied, expiring = _device(sandbox), _device(sandbox)
    r = httpx.post(f"{sandbox.base_url}/_sandbox/v3/device/decide", timeout=10,
                   json={"user_code": denied["user_code"], "decision": "deny"})
    assert r.json() == {"decided": True}
    _oauth_error(_poll(sandbox, denied["device_code"]), 400, "access_denied")
    sandbox.advance(601)
    _oauth_error(_poll(sandbox, expiring["device_code"]), 400, "expired_token")
    r = httpx.post(f"{sandbox.base_url}/_sandbox/v3/device/decide", timeout=10,
                   json={"user_code": expiring["user_code"]})
    assert r.json() == {"decided": False}


def test_device_authorize_refusals(sandbox: Sandbox) -> None:
    url = f"{sandbox.authz_url}/device/authorize"
    r = httpx.post(url, data={"client_id": "nobody", "scope": "contact_data"}, timeout=10)
    _oauth_error(r, 401, "invalid_client")
    r = httpx.post(url, data={"client_id": sandbox.credentials.api_key, "scope": "everything"},
                   timeout=10)
    _oauth_error(r, 400, "invalid_scope")


# -- revocation --------------------------------------------------------------------------------


def _revoke(sb: Sandbox, data: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{sb.authz_url}/revoke", timeout=10,
                      data={"client_id": sb.credentials.api_key, **data})


def test_revoke_access_token(sandbox: Sandbox) -> None:
    tokens = v3_tokens_by_pkce(sandbox)
    assert _get_emails(sandbox, tokens["access_token"]).status_code == 200
    r = _revoke(sandbox, {"token": tokens["access_token"], "token_type_hint": "access_token"})
    assert (r.status_code, r.content) == (200, b"")
    assert sandbox.v3_tokens.verify(tokens["access_token"]) is None
    denied = _get_emails(sandbox, tokens["access_token"])
    assert denied.status_code == 401
    assert denied.json() == {"error_key": "unauthorized", "error_message": "Unauthorized"}
    assert _refresh(sandbox, tokens["refresh_token"]).status_code == 200  # grant lives on


def test_revoke_refresh_token_ends_the_grant(sandbox: Sandbox) -> None:
    tokens = v3_tokens_by_pkce(sandbox)
    later = _refresh(sandbox, tokens["refresh_token"]).json()
    r = _revoke(sandbox, {"token": later["refresh_token"], "token_type_hint": "refresh_token"})
    assert r.status_code == 200
    _oauth_error(_refresh(sandbox, later["refresh_token"]), 400, "invalid_grant")
    for access in (tokens["access_token"], later["access_token"]):  # RFC 7009 §2.1
        assert sandbox.v3_tokens.verify(access) is None


def test_revoke_unknown_token_is_200_but_needs_a_client(sandbox: Sandbox) -> None:
    assert _revoke(sandbox, {"token": "never-issued"}).status_code == 200
    _oauth_error(_revoke(sandbox, {"token": ""}), 400, "invalid_request")
    r = httpx.post(f"{sandbox.authz_url}/revoke", data={"token": "x", "client_id": "nobody"},
                   timeout=10)
    _oauth_error(r, 401, "invalid_client")


# -- the admin API -----------------------------------------------------------------------------


def test_admin_issues_and_revokes_tokens(sandbox: Sandbox) -> None:
    admin = f"{sandbox.base_url}/_sandbox/v3"
    r = httpx.post(f"{admin}/tokens/issue", json={"scopes": "contact_data offline_access"},
                   timeout=10)
    body = r.json()
    assert body["scope"] == "contact_data offline_access"
    assert body["refresh_token"]
    grant = sandbox.v3_tokens.verify(body["access_token"])
    assert grant is not None
    assert grant.scopes == {"contact_data", "offline_access"}
    everything = httpx.post(f"{admin}/tokens/issue", timeout=10).json()
    assert "campaign_data" in everything["scope"].split()
    assert httpx.post(f"{admin}/tokens/issue", json={"scopes": ["nope"]},
                      timeout=10).status_code == 400
    r = httpx.post(f"{admin}/tokens/revoke", json={"token": body["refresh_token"]}, timeout=10)
    assert r.json() == {"revoked": True}
    assert sandbox.v3_tokens.verify(body["access_token"]) is None


def test_start_up_token_has_every_api_scope(sandbox: Sandbox) -> None:
    grant = sandbox.v3_tokens.verify(sandbox.credentials.v3_access_token)
    assert grant is not None
    assert grant.scopes == {"account_read", "account_update", "contact_data", "campaign_data",
                            "offline_access"}
