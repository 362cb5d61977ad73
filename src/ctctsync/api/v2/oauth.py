"""v2 OAuth 2.0 helpers and the connection check.

v2 uses the server (authorization-code) flow against ``oauth2.constantcontact.com``; tokens
live ~10 years and there is no refresh token -- constant-contact-api.md §1.2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson

from ctctsync.api.client import ApiClient
from ctctsync.api.v2.endpoints import AUTH_BASE_URL
from ctctsync.errors import (
    RULES_BY_NAME,
    STANDARD_PATTERNS,
    ConfigError,
    ReauthorizeRequired,
    Redactor,
    classify_response,
    classify_transport,
    parse_error_body,
    redact,
)

AUTHORIZE_PATH = "/oauth2/oauth/siteowner/authorize"
TOKEN_PATH = "/oauth2/oauth/token"  # noqa: S105 -- a path, not a secret
TOKEN_INFO_PATH = "/oauth2/tokeninfo.htm"  # noqa: S105 -- a path


@dataclass(frozen=True)
class AccessToken:
    """A v2 access token. ``expires_in`` is seconds (sent as a *string* -- §1.2)."""

    access_token: str
    token_type: str
    expires_in: int | None

    def __repr__(self) -> str:
        return f"AccessToken(token_type={self.token_type!r}, expires_in={self.expires_in})"


@dataclass(frozen=True)
class TokenInfo:
    """What ``tokeninfo.htm`` says about a token: the app (client_id = API key), the user."""

    client_id: str
    user_name: str
    expires_in: int | None

    def __repr__(self) -> str:
        return f"TokenInfo(user_name={self.user_name!r}, expires_in={self.expires_in})"


@dataclass(frozen=True)
class AccountCheck:
    """What ``ctctsync check`` shows about a working connection."""

    organization_name: str | None
    email: str | None
    calls: int


def authorize_url(
    api_key: str,
    redirect_uri: str,
    state: str | None = None,
    auth_base_url: str = AUTH_BASE_URL,
) -> str:
    """The URL to send the user's browser to (server flow, ``response_type=code``) -- §1.2."""
    query = {"response_type": "code", "client_id": api_key, "redirect_uri": redirect_uri}
    if state is not None:
        query["state"] = state
    return f"{auth_base_url.rstrip('/')}{AUTHORIZE_PATH}?{urlencode(query)}"


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _post(
    url: str,
    *,
    params: dict[str, str] | None = None,
    data: dict[str, str] | None = None,
    endpoint: str,
    http: httpx.Client | None,
    secrets: tuple[str, ...],
) -> httpx.Response:
    client = http or httpx.Client(timeout=httpx.Timeout(30.0, connect=10.0))
    # the call's secrets are scrubbed from httpx's log lines while it lasts, then forgotten
    try:
        with Redactor(secrets, patterns=STANDARD_PATTERNS).in_use():
            return client.post(
                url, params=params, data=data, headers={"Accept": "application/json"}
            )
    except httpx.TransportError as exc:
        failure = classify_transport("connection", endpoint, redact(f"{exc}", secrets))
        raise failure.to_exception() from None
    finally:
        if http is None:
            client.close()


def exchange_code(
    code: str,
    *,
    api_key: str,
    client_secret: str,
    redirect_uri: str,
    auth_base_url: str = AUTH_BASE_URL,
    http: httpx.Client | None = None,
) -> AccessToken:
    """Trade an authorization code for an access token (server flow) -- §1.2.

    The PHP SDK sends the parameters in the query string of the POST; so do we. A refused
    code (``{"error":"invalid_grant",...}``) raises :class:`ReauthorizeRequired`; a wrong
    API key or client secret (``invalid_client``) raises :class:`ConfigError`.
    """
    endpoint = f"POST {TOKEN_PATH}"
    response = _post(
        auth_base_url.rstrip("/") + TOKEN_PATH,
        params={
            "grant_type": "authorization_code",
            "client_id": api_key,
            "client_secret": client_secret,
            "code": code,
            "redirect_uri": redirect_uri,
        },
        endpoint=endpoint,
        http=http,
        secrets=(api_key, client_secret, code),
    )
    if response.status_code in (400, 401, 403):
        error, description = parse_error_body(response.content)
        if error == "invalid_client":
            # The app's own credentials are wrong: re-authorizing would not help.
            raise ConfigError(
                "Constant Contact did not accept the API key or client secret "
                "(invalid_client). Check them in the integration settings.",
                rule=RULES_BY_NAME["api_key_not_authorized"],
                detail=description or "",
                status=response.status_code,
                error_key=error,
                endpoint=endpoint,
            )
        raise ReauthorizeRequired(
            "Constant Contact did not accept the authorization "
            f"({error or response.status_code}). Start the authorization again.",
            rule=RULES_BY_NAME["invalid_token"],
            detail=description or "",
            status=response.status_code,
            error_key=error,
            endpoint=endpoint,
        )
    body = _json_object(response, endpoint)
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise classify_transport("malformed", endpoint, "no access_token").to_exception()
    return AccessToken(
        access_token=token,
        token_type=str(body.get("token_type", "Bearer")),
        expires_in=_as_int(body.get("expires_in")),
    )


def token_info(
    access_token: str,
    *,
    auth_base_url: str = AUTH_BASE_URL,
    http: httpx.Client | None = None,
) -> TokenInfo:
    """``POST /oauth2/tokeninfo.htm`` (form field ``access_token``) -- §1.2.

    404 means invalid or expired: raises :class:`ReauthorizeRequired`.
    """
    endpoint = f"POST {TOKEN_INFO_PATH}"
    response = _post(
        auth_base_url.rstrip("/") + TOKEN_INFO_PATH,
        data={"access_token": access_token},
        endpoint=endpoint,
        http=http,
        secrets=(access_token,),
    )
    if response.status_code in (401, 404):
        raise ReauthorizeRequired(
            RULES_BY_NAME["invalid_token"].message,
            rule=RULES_BY_NAME["invalid_token"],
            status=response.status_code,
            endpoint=endpoint,
        )
    body = _json_object(response, endpoint)
    return TokenInfo(
        client_id=str(body.get("client_id", "")),
        user_name=str(body.get("user_name", "")),
        expires_in=_as_int(body.get("expires_in")),
    )


def _json_object(response: httpx.Response, endpoint: str) -> dict[str, Any]:
    if not response.is_success:
        raise classify_response(response.status_code, response.content, endpoint).to_exception()
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        raise classify_transport("malformed", endpoint, "not a JSON object").to_exception()
    return body


def check(client: ApiClient) -> AccountCheck:
    """Prove the key and token work: ``GET /v2/account/info`` (1 call) -- §5.

    Raises the usual :class:`~ctctsync.errors.CtctError` subclasses
    (``ReauthorizeRequired``, ``ConfigError``...), whose ``user_message`` says what to fix.
    """
    before = client.calls.total
    info = client.get_json("/v2/account/info")
    if not isinstance(info, dict):
        raise classify_transport(
            "malformed", "GET /v2/account/info", "not a JSON object"
        ).to_exception()
    name, email = info.get("organization_name"), info.get("email")
    return AccountCheck(
        organization_name=str(name) if name is not None else None,
        email=str(email) if email is not None else None,
        calls=client.calls.total - before,
    )


__all__ = [
    "AccessToken",
    "AccountCheck",
    "TokenInfo",
    "authorize_url",
    "check",
    "exchange_code",
    "token_info",
]
