"""API key, bearer token and OAuth2 (authorize page, code exchange, tokeninfo) over HTTP."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from ctctsync.sandbox import Sandbox
from ctctsync.sandbox.testing import authorize_code

CALLBACK = "http://localhost:9999/callback"


def _get(sb: Sandbox, *, key: str | None, token: str | None, accept: str | None = None,
         path: str = "/v2/contacts") -> httpx.Response:
    params = {"api_key": key} if key is not None else {}
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    if accept:
        headers["Accept"] = accept
    return httpx.get(f"{sb.base_url}{path}", params=params, headers=headers)


@pytest.mark.parametrize(
    ("key", "token", "status", "error_key"),
    [
        pytest.param(None, "good", 403, "mashery.not.authorized.inactive", id="no-key"),
        pytest.param("unknownkey", "good", 403, "mashery.not.authorized.inactive",
                     id="unknown-key"),
        pytest.param("good", None, 401, "http.status.authentication.invalid_token",
                     id="no-token"),
        pytest.param("good", "not-a-token", 401, "http.status.authentication.invalid_token",
                     id="bad-token"),
        pytest.param("good", "good", 200, None, id="ok"),
    ],
)
def test_key_and_token(sandbox: Sandbox, key: str | None, token: str | None, status: int,
                       error_key: str | None) -> None:
    c = sandbox.credentials
    r = _get(sandbox, key=c.api_key if key == "good" else key,
             token=c.access_token if token == "good" else token)
    assert r.status_code == status
    if error_key:
        body = r.json()
        assert body[0]["error_key"] == error_key
        assert body[0]["error_message"]


def test_revoked_token_and_new_token(sandbox: Sandbox) -> None:
    c = sandbox.credentials
    assert _get(sandbox, key=c.api_key, token=c.access_token).status_code == 200
    fresh = sandbox.issue_token()
    assert sandbox.revoke_token(c.access_token)
    r = _get(sandbox, key=c.api_key, token=c.access_token)
    assert r.status_code == 401
    assert r.json()[0]["error_key"] == "http.status.authentication.invalid_token"
    assert _get(sandbox, key=c.api_key, token=fresh).status_code == 200


def test_revoke_and_issue_via_admin(sandbox: Sandbox) -> None:
    c = sandbox.credentials
    fresh = httpx.post(f"{sandbox.base_url}/_sandbox/tokens/issue").json()["access_token"]
    assert _get(sandbox, key=c.api_key, token=fresh).status_code == 200
    r = httpx.post(f"{sandbox.base_url}/_sandbox/tokens/revoke", json={"token": fresh})
    assert r.json() == {"revoked": True}
    assert _get(sandbox, key=c.api_key, token=fresh).status_code == 401


@pytest.mark.parametrize(("accept", "status"), [("text/html", 406), ("application/xml", 406),
                                                ("application/json", 200), ("*/*", 200)])
def test_accept_header(sandbox: Sandbox, accept: str, status: int) -> None:
    c = sandbox.credentials
    r = _get(sandbox, key=c.api_key, token=c.access_token, accept=accept)
    assert r.status_code == status
    if status == 406:
        assert r.json()[0]["error_message"].startswith("Unsupported Accept Header")


def test_oauth_code_flow_end_to_end(sandbox: Sandbox) -> None:
    c = sandbox.credentials
    url = f"{sandbox.base_url}/oauth2/oauth/siteowner/authorize"
    params = {"response_type": "code", "client_id": c.api_key, "redirect_uri": CALLBACK,
              "state": "s-123"}
    page = httpx.get(url, params=params)
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert re.search(r'<input type="email" [^>]*name="email"', page.text)
    assert 'type="password"' in page.text
    login = httpx.post(url, data={**params, "email": c.email.upper(), "password": c.password,
                                  "action": "allow"})
    assert login.status_code == 302
    location = urlsplit(login.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == CALLBACK
    query = parse_qs(location.query)
    assert query["state"] == ["s-123"]
    code = query["code"][0]
    exchange = {"grant_type": "authorization_code", "client_id": c.api_key,
                "client_secret": c.client_secret, "code": code, "redirect_uri": CALLBACK}
    tok = httpx.post(f"{sandbox.base_url}/oauth2/oauth/token", params=exchange)
    assert tok.status_code == 200
    body = tok.json()
    assert body["token_type"] == "Bearer"
    assert isinstance(body["expires_in"], str)
    assert int(body["expires_in"]) > 300_000_000
    new_token = body["access_token"]
    assert _get(sandbox, key=c.api_key, token=new_token).status_code == 200
    # the code is single-use
    again = httpx.post(f"{sandbox.base_url}/oauth2/oauth/token", params=exchange)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    info = httpx.post(f"{sandbox.base_url}/oauth2/tokeninfo.htm",
                      data={"access_token": new_token})
    assert info.status_code == 200
    assert info.json()["client_id"] == c.api_key
    assert info.json()["user_name"] == c.user_name


def test_token_exchange_with_form_body(sandbox: Sandbox) -> None:
    c = sandbox.credentials
    code = authorize_code(sandbox, CALLBACK)
    r = httpx.post(f"{sandbox.base_url}/oauth2/oauth/token", data={
        "grant_type": "authorization_code", "client_id": c.api_key,
        "client_secret": c.client_secret, "code": code, "redirect_uri": CALLBACK})
    assert r.status_code == 200
    assert r.json()["access_token"]


def test_wrong_password_reshows_form(sandbox: Sandbox) -> None:
    c = sandbox.credentials
    url = f"{sandbox.base_url}/oauth2/oauth/siteowner/authorize"
    r = httpx.post(url, data={"response_type": "code", "client_id": c.api_key,
                              "redirect_uri": CALLBACK, "email": c.email,
                              "password": "wrong", "action": "allow"})
    assert r.status_code == 200
    assert 'id="error"' in r.text
    assert 'type="password"' in r.text
    assert "location" not in r.headers


def test_unknown_client_gets_error_page(sandbox: Sandbox) -> None:
    r = httpx.get(f"{sandbox.base_url}/oauth2/oauth/siteowner/authorize",
                  params={"response_type": "code", "client_id": "nope",
                          "redirect_uri": CALLBACK})
    assert r.status_code == 400
    assert 'id="error"' in r.text
    assert 'type="password"' not in r.text


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        pytest.param({"client_secret": "wrong"}, 401, "invalid_client", id="bad-secret"),
        pytest.param({"grant_type": "password"}, 400, "unsupported_grant_type", id="bad-grant"),
        pytest.param({"redirect_uri": "http://elsewhere/cb"}, 400, "invalid_grant",
                     id="other-redirect"),
        pytest.param({"code": "made-up"}, 400, "invalid_grant", id="unknown-code"),
    ],
)
def test_token_errors(sandbox: Sandbox, change: dict[str, str], status: int, error: str) -> None:
    c = sandbox.credentials
    code = authorize_code(sandbox, CALLBACK)
    params = {"grant_type": "authorization_code", "client_id": c.api_key,
              "client_secret": c.client_secret, "code": code, "redirect_uri": CALLBACK, **change}
    r = httpx.post(f"{sandbox.base_url}/oauth2/oauth/token", params=params)
    assert r.status_code == status
    assert r.json()["error"] == error
    assert r.json()["error_description"]


def test_implicit_flow_returns_token_in_fragment(sandbox: Sandbox) -> None:
    c = sandbox.credentials
    r = httpx.post(f"{sandbox.base_url}/oauth2/oauth/siteowner/authorize", data={
        "response_type": "token", "client_id": c.api_key, "redirect_uri": CALLBACK,
        "state": "z", "email": c.email, "password": c.password, "action": "allow"})
    assert r.status_code == 302
    frag = parse_qs(urlsplit(r.headers["location"]).fragment)
    assert frag["state"] == ["z"]
    assert _get(sandbox, key=c.api_key, token=frag["access_token"][0]).status_code == 200


def test_deny_redirects_with_access_denied(sandbox: Sandbox) -> None:
    c = sandbox.credentials
    r = httpx.post(f"{sandbox.base_url}/oauth2/oauth/siteowner/authorize", data={
        "response_type": "code", "client_id": c.api_key, "redirect_uri": CALLBACK,
        "action": "deny"})
    assert r.status_code == 302
    assert parse_qs(urlsplit(r.headers["location"]).query)["error"] == ["access_denied"]


def test_tokeninfo_errors(sandbox: Sandbox) -> None:
    url = f"{sandbox.base_url}/oauth2/tokeninfo.htm"
    assert httpx.post(url, data={"access_token": "nope"}).status_code == 404
    assert httpx.get(url, params={"access_token": sandbox.credentials.access_token}
                     ).status_code == 405
    by_query = httpx.post(url, params={"access_token": sandbox.credentials.access_token})
    assert by_query.status_code == 200
    sandbox.revoke_token()
    assert httpx.post(url, data={"access_token": sandbox.credentials.access_token}
                      ).status_code == 404
