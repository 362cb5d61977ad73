"""v2 OAuth helpers against the sandbox's OAuth server, over real HTTP."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from ctctsync.api import ApiClient, RateLimiter
from ctctsync.api.v2 import authorize_url, check, exchange_code, token_info
from ctctsync.errors import ConfigError, ReauthorizeRequired

REDIRECT = "http://127.0.0.1:9/callback"


def log_in(sb, url: str) -> str:
    """Submit the sandbox's login form for ``url``; return the code from the redirect."""
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    creds = sb.credentials
    form = {**query, "email": creds.email, "password": creds.password, "action": "allow"}
    response = httpx.post(urlsplit(url)._replace(query="").geturl(), data=form)
    assert response.status_code == 302
    location = parse_qs(urlsplit(response.headers["location"]).query)
    assert location["state"] == ["st-1"]
    return location["code"][0]


def test_server_flow_end_to_end(sandbox):
    creds = sandbox.credentials
    url = authorize_url(creds.api_key, REDIRECT, "st-1", auth_base_url=sandbox.base_url)
    code = log_in(sandbox, url)
    token = exchange_code(
        code,
        api_key=creds.api_key,
        client_secret=creds.client_secret,
        redirect_uri=REDIRECT,
        auth_base_url=sandbox.base_url,
    )
    assert token.token_type == "Bearer"
    assert token.expires_in is not None
    assert token.expires_in > 86_400  # v2 tokens live for years -- §1.2
    assert token.access_token not in repr(token)
    info = token_info(token.access_token, auth_base_url=sandbox.base_url)
    assert info.client_id == creds.api_key
    assert info.user_name
    with ApiClient(
        sandbox.base_url, creds.api_key, token.access_token, limiter=RateLimiter(None, None)
    ) as client:
        assert check(client).email == sandbox.truth("account_info")[0]["email"]


def test_a_code_works_once(sandbox):
    creds = sandbox.credentials
    code = log_in(sandbox, authorize_url(creds.api_key, REDIRECT, "st-1", sandbox.base_url))
    kw = {
        "api_key": creds.api_key,
        "client_secret": creds.client_secret,
        "redirect_uri": REDIRECT,
        "auth_base_url": sandbox.base_url,
    }
    exchange_code(code, **kw)
    with pytest.raises(ReauthorizeRequired) as info:
        exchange_code(code, **kw)
    assert "invalid_grant" in info.value.user_message
    for secret in (code, creds.client_secret, creds.api_key):
        assert secret not in str(info.value)


def test_wrong_client_secret_is_refused_without_echoing_it(sandbox):
    creds = sandbox.credentials
    code = log_in(sandbox, authorize_url(creds.api_key, REDIRECT, "st-1", sandbox.base_url))
    with pytest.raises(ConfigError) as info:
        exchange_code(
            code,
            api_key=creds.api_key,
            client_secret="wrong-secret-value",
            redirect_uri=REDIRECT,
            auth_base_url=sandbox.base_url,
        )
    assert "client secret" in info.value.user_message
    assert "wrong-secret-value" not in str(info.value)


def test_token_info_of_a_revoked_token(sandbox):
    token = sandbox.credentials.access_token
    assert token_info(token, auth_base_url=sandbox.base_url).client_id
    sandbox.revoke_token()
    with pytest.raises(ReauthorizeRequired) as info:
        token_info(token, auth_base_url=sandbox.base_url)
    assert token not in str(info.value)
