"""v3 OAuth 2.0: Constant Contact's Okta authorization server, as plain functions over httpx.

Constant Contact v3 is OAuth2 only -- constant-contact-v3-api.md §1.2:

- endpoints under ``https://authz.constantcontact.com/oauth2/default/v1``: ``/authorize``,
  ``/token``, ``/device/authorize`` (and ``/revoke``, Okta's RFC 7009 endpoint);
- access tokens are JWTs living "a static 24 hours"; refresh tokens come only with the
  ``offline_access`` scope and are **rotating** by default (single-use: each refresh
  returns a new one and voids every earlier one) and expire when unused for 180 days;
- the token endpoint allows **1 request/second** per client id;
- refusals are OAuth-shaped: ``{"error": "invalid_grant", "error_description": ...}``.

The functions here hold no state but the process's token pacing (:data:`PACER`, one token
request per second per client id); :mod:`ctctsync.api.v3.tokens` keeps tokens over time.
Failures raise the project's :class:`~ctctsync.errors.CtctError` subclasses: a refused
grant is :class:`~ctctsync.errors.ReauthorizeRequired` (failure type ``auth``), a wrong
client id or secret :class:`~ctctsync.errors.ConfigError`, a network failure or a second
429 :class:`~ctctsync.errors.RetriesExhausted` (``transient``).

Token values never reach a message, a log line or a ``repr``: every call scrubs its
secrets from httpx's log records while it lasts (:class:`~ctctsync.errors.Redactor`).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Final, Literal, TypeVar
from urllib.parse import quote, urlencode

import httpx
import jwt
import orjson

from ctctsync.api.client import ApiClient
from ctctsync.errors import (
    STANDARD_PATTERNS,
    ConfigError,
    CtctError,
    ErrorRule,
    ReauthorizeRequired,
    Redactor,
    RequestRejected,
    classify_response,
    classify_transport,
    parse_error_body,
    redact,
)
from ctctsync.tables import TABLES

log = logging.getLogger("ctctsync.api.v3.oauth")

SCOPES: Final[tuple[str, ...]] = ("account_read", "contact_data", "campaign_data", "offline_access")
"""What ctctsync asks for: read the account, contacts (with lists and contact reports) and
campaigns (with reports and events), plus ``offline_access`` for a refresh token -- §1.2."""

AUTHORIZE_PATH: Final = "/authorize"
TOKEN_PATH: Final = "/token"  # noqa: S105 -- a path, not a secret
DEVICE_AUTHORIZE_PATH: Final = "/device/authorize"
REVOKE_PATH: Final = "/revoke"
"""Paths below the authorization server's base (``.../oauth2/default/v1``) -- §1.2.
UNCONFIRMED: ``/revoke`` is not in CC's guide; chose it because the server is Okta's, whose
custom authorization servers serve RFC 7009 revocation there."""

DEVICE_GRANT_TYPE: Final = "urn:ietf:params:oauth:grant-type:device_code"
"""The device flow's grant type at the token endpoint (RFC 8628 §3.4; §1.2)."""

TOKEN_REQUEST_INTERVAL: Final = 1.0
"""Seconds between two token requests of one client id: the endpoint allows 1/s -- §1.2."""
MAX_RETRY_WAIT: Final = 10.0
"""The longest wait before the one retry of a 429 from the token endpoint."""
ACCESS_TOKEN_LIFETIME: Final = timedelta(seconds=86_400)
"""Assumed when an answer says neither ``expires_in`` nor a readable JWT ``exp``: "a static
24 hours" -- §1.2."""
REFRESH_IDLE_LIMIT: Final = timedelta(days=180)
"""A refresh token unused this long is dead (rotating and long-lived alike) -- §1.2."""
SLOW_DOWN_STEP: Final = 5.0
"""A ``slow_down`` answer adds 5 s to the device polling interval for good (RFC 8628 §3.5)."""
DEFAULT_DEVICE_INTERVAL: Final = 5.0
"""UNCONFIRMED (§1.2, §7.1): CC does not document the device answer's ``interval``; when it
is missing we poll every 5 s, RFC 8628 §3.2's default."""

REFRESH_REFUSED_MESSAGE: Final = (
    "Constant Contact refused the refresh token (it was used already, revoked, or unused for "
    "180 days): re-authorize the integration."
)
"""The message of a refused refresh token (``invalid_grant`` on ``grant_type=refresh_token``)."""

Grant = Literal["authorization_code", "refresh_token", "device_code", "device_authorize",
                "revoke"]
"""Which call to the authorization server failed (messages differ per call)."""


_D = TypeVar("_D", float, None)


def _utcnow() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------- values


@dataclass(frozen=True)
class TokenSet:
    """What a successful token request gave us (§1.2), as stored by a vault.

    ``expires_at`` is the earlier of ``now + expires_in`` and the access token's JWT ``exp``
    (read without verifying the signature: we only need the date). ``obtained_at`` is when
    the token endpoint issued this set -- for a refresh token, when it was last used (each
    refresh restarts its 180-day idle clock). ``scope`` is what was granted: the answer's
    ``scope``, else the JWT's ``scp``, else what was asked for (RFC 6749 §5.1: an omitted
    scope means the requested one).
    """

    access_token: str
    refresh_token: str | None
    expires_at: datetime
    scope: tuple[str, ...]
    obtained_at: datetime

    def __repr__(self) -> str:
        # never the token values: a TokenSet ends up in tracebacks and debug logs
        return (
            f"TokenSet(expires_at={self.expires_at.isoformat()}, scope={' '.join(self.scope)!r}, "
            f"refresh_token={'set' if self.refresh_token else 'none'}, "
            f"obtained_at={self.obtained_at.isoformat()})"
        )

    def valid_for(self, margin: timedelta, now: datetime) -> bool:
        """Whether the access token stays valid for at least ``margin`` after ``now``."""
        return self.expires_at - now >= margin

    def refresh_expired(self, now: datetime) -> bool:
        """Whether the refresh token has been unused for more than 180 days (§1.2)."""
        return now - self.obtained_at > REFRESH_IDLE_LIMIT


@dataclass(frozen=True)
class OAuthApp:
    """The application ctctsync is registered as: where its authorization server is, its
    client id (the developer portal's "API key" -- §1.2) and, for the server flow, its secret.
    Device and PKCE clients are public: no secret."""

    auth_base_url: str
    client_id: str
    client_secret: str | None = None

    def __repr__(self) -> str:
        return f"OAuthApp(auth_base_url={self.auth_base_url!r})"


@dataclass(frozen=True)
class DeviceGrant:
    """A started device authorization (RFC 8628 §3.2; §1.2): show ``verification_uri`` and
    ``user_code`` (or ``verification_uri_complete``) to the person, then poll with
    ``device_code`` every ``interval`` seconds until ``expires_at``."""

    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_at: datetime
    interval: float

    def __repr__(self) -> str:
        return (f"DeviceGrant(user_code={self.user_code!r}, expires_at="
                f"{self.expires_at.isoformat()}, interval={self.interval})")


# ---------------------------------------------------------------------------- PKCE, URLs


def pkce_pair() -> tuple[str, str]:
    """A fresh ``(code_verifier, code_challenge)`` for PKCE with S256 (RFC 7636 §4.1-4.2).

    The verifier is 64 URL-safe characters (48 random bytes); the challenge is the unpadded
    base64url SHA-256 of it. UNCONFIRMED (§1.2): CC's excerpt does not spell
    ``code_challenge_method=S256``; we send it, as RFC 7636 and Okta require.
    """
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize_url(
    auth_base: str,
    client_id: str,
    redirect_uri: str,
    scopes: Iterable[str],
    state: str,
    code_challenge: str | None = None,
) -> str:
    """The URL to send the person's browser to (authorization code flow, with PKCE when
    ``code_challenge`` is given) -- §1.2. Scopes are space-separated (``%20`` here)."""
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(scopes),
        "state": state,
    }
    if code_challenge is not None:
        query["code_challenge"] = code_challenge
        query["code_challenge_method"] = "S256"
    # ``%20`` between scopes, as CC's examples (urlencode's default would write ``+``)
    return f"{auth_base.rstrip('/')}{AUTHORIZE_PATH}?{urlencode(query, quote_via=quote)}"



# ---------------------------------------------------------------------------- pacing


class TokenPacer:
    """At most one token request per :data:`TOKEN_REQUEST_INTERVAL` per client id, in this
    process (the endpoint allows 1/s -- §1.2). Thread-safe: each caller reserves the next
    free slot, then waits for it outside the lock."""

    def __init__(
        self,
        interval: float = TOKEN_REQUEST_INTERVAL,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}

    def wait_turn(self, client_id: str) -> float:
        """Wait until ``client_id`` may send its next token request; returns the wait."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next.get(client_id, now))
            self._next[client_id] = slot + self.interval
        wait = slot - now
        if wait > 0:
            self._sleep(wait)
        return wait


PACER: Final = TokenPacer()
"""The process's token pacing, shared by every caller of this module."""


# ---------------------------------------------------------------------------- refusals


@dataclass(frozen=True)
class _Refusal:
    rule: ErrorRule
    raises: type[CtctError]


def _refusal(name: str, action: Literal["reauthorize", "fail"], failure: Literal[
        "auth", "config", "system"], message: str, raises: type[CtctError], *,
        stops_run: bool = False) -> _Refusal:
    rule = ErrorRule(name=name, action=action, failure_type=failure, message=message,
                     stops_run=stops_run)
    return _Refusal(rule, raises)


OAUTH_REFUSALS: Final[Mapping[str, _Refusal]] = MappingProxyType({
    # RFC 6749 §5.2 and RFC 8628 §3.5 error codes -> our error table (action, failure type)
    "invalid_grant": _refusal(
        "oauth_invalid_grant", "reauthorize", "auth",
        "Constant Contact refused the grant: re-authorize the integration.",
        ReauthorizeRequired, stops_run=True),
    "access_denied": _refusal(
        "oauth_access_denied", "reauthorize", "auth",
        "The Constant Contact user denied the authorization: start it again and allow access.",
        ReauthorizeRequired, stops_run=True),
    "expired_token": _refusal(
        "oauth_expired_token", "reauthorize", "auth",
        "The sign-in code expired before it was approved: start the sign-in again.",
        ReauthorizeRequired, stops_run=True),
    "invalid_client": _refusal(
        "oauth_invalid_client", "fail", "config",
        "Constant Contact did not accept the client id (the application's API key) or its "
        "client secret (invalid_client): check them in the integration settings.",
        ConfigError, stops_run=True),
    "unauthorized_client": _refusal(
        "oauth_unauthorized_client", "fail", "config",
        "Constant Contact does not allow this application the {grant} grant "
        "(unauthorized_client): enable it for the application in Constant Contact's "
        "developer portal.",
        ConfigError, stops_run=True),
    "invalid_scope": _refusal(
        "oauth_invalid_scope", "fail", "config",
        "Constant Contact refused the requested scopes (invalid_scope): {description}",
        ConfigError, stops_run=True),
    "invalid_request": _refusal(
        "oauth_invalid_request", "fail", "system",
        "Constant Contact rejected the {grant} request as malformed (invalid_request: "
        "{description}); this is a ctctsync bug, please report it.",
        RequestRejected),
    "unsupported_grant_type": _refusal(
        "oauth_unsupported_grant_type", "fail", "system",
        "Constant Contact does not support the {grant} grant (unsupported_grant_type); "
        "this is a ctctsync bug, please report it.",
        RequestRejected),
})
"""The authorization server's ``error`` codes, each with its row of the error table and the
exception it raises. Anything else (5xx, a 429 that came back, an unknown body) goes
through the ordinary table (:func:`~ctctsync.errors.classify_response`)."""

_INVALID_GRANT_MESSAGES: Final[Mapping[Grant, str]] = MappingProxyType({
    "refresh_token": REFRESH_REFUSED_MESSAGE,
    "authorization_code": (
        "Constant Contact refused the authorization code (used already, expired, or issued for "
        "another redirect URI or PKCE verifier): start the authorization again."),
    "device_code": (
        "Constant Contact refused the sign-in code (used already or expired): start the "
        "sign-in again."),
})


def _refused(response: httpx.Response, grant: Grant, endpoint: str) -> CtctError:
    """The exception for a non-2xx answer of the authorization server."""
    error, description = parse_error_body(response.content)
    refusal = OAUTH_REFUSALS.get(error or "") if response.status_code < 500 else None
    if refusal is None:
        return classify_response(response.status_code, response.content, endpoint).to_exception()
    template = _INVALID_GRANT_MESSAGES.get(grant) if error == "invalid_grant" else None
    message = (template or refusal.rule.message).format(
        grant=grant, description=redact(description or "no description"))
    return refusal.raises(
        message,
        rule=refusal.rule,
        detail=f"HTTP {response.status_code} from {endpoint}: {error}: {description or ''}",
        status=response.status_code,
        error_key=error,
        endpoint=endpoint,
    )


# ---------------------------------------------------------------------------- HTTP


def _send(
    http: httpx.Client,
    url: str,
    form: Mapping[str, str],
    *,
    endpoint: str,
    basic: tuple[str, str] | None,
    secrets_: tuple[str, ...],
) -> httpx.Response:
    """One POST of a form; a failure without an answer is a transient error (not retried:
    a refresh the server carried out but whose answer was lost has rotated the token away,
    and sending the old one again could only earn ``invalid_grant``)."""
    # the call's secrets are scrubbed from httpx's log lines while it lasts, then forgotten
    try:
        with Redactor(secrets_, patterns=STANDARD_PATTERNS).in_use():
            return http.post(
                url,
                data=dict(form),
                auth=basic if basic is not None else httpx.USE_CLIENT_DEFAULT,
                headers={"Accept": "application/json"},
            )
    except httpx.TimeoutException as exc:
        failure = classify_transport("timeout", endpoint, redact(f"{exc!r}", secrets_))
    except httpx.TransportError as exc:
        failure = classify_transport("connection", endpoint, redact(f"{exc!r}", secrets_),
                                     reason=f"{httpx.URL(url).host}: {type(exc).__name__}")
    raise failure.to_exception()


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "0")))
    except ValueError:
        return 0.0


@dataclass(frozen=True)
class _Call:
    """One request to the token endpoint (or a sibling), with what it needs to be sent."""

    http: httpx.Client
    auth_base: str
    client_id: str
    client_secret: str | None
    grant: Grant
    path: str = TOKEN_PATH
    pacer: TokenPacer | None = PACER
    sleep: Callable[[float], None] = time.sleep

    @property
    def endpoint(self) -> str:
        return f"POST {self.path}"

    def post(self, form: Mapping[str, str], secret_values: Iterable[str]) -> httpx.Response:
        """Send ``form`` (client auth added); a 429 waits at least 1 s and is sent once more
        (the endpoint allows 1 request/s -- §1.2). A refused request changed nothing at the
        server, so sending it again is safe even for a rotating refresh token.

        UNCONFIRMED (§1.2, §7.8): CC documents the limit, not its answer; any 429 is taken as
        "too soon", waiting its ``Retry-After`` if sent (capped: the caller may hold the token
        lock) and at least 1 s."""
        body = dict(form)
        basic = None
        if self.client_secret:
            # confidential client: HTTP Basic, as CC's examples -- §1.2
            basic = (self.client_id, self.client_secret)
        else:
            body["client_id"] = self.client_id  # public client (PKCE, device) -- §1.2
        hidden = tuple(v for v in (*secret_values, self.client_secret) if v)
        url = self.auth_base.rstrip("/") + self.path
        response = self._paced(url, body, basic, hidden)
        if response.status_code == 429:
            wait = min(max(TOKEN_REQUEST_INTERVAL, _retry_after(response)), MAX_RETRY_WAIT)
            log.info("%s: 429 from the authorization server; retrying once in %.1f s",
                     self.endpoint, wait)
            self.sleep(wait)
            response = self._paced(url, body, basic, hidden)
        return response

    def _paced(self, url: str, body: Mapping[str, str], basic: tuple[str, str] | None,
               hidden: tuple[str, ...]) -> httpx.Response:
        if self.pacer is not None:
            self.pacer.wait_turn(self.client_id)
        return _send(self.http, url, body, endpoint=self.endpoint, basic=basic, secrets_=hidden)

    def json(self, response: httpx.Response) -> dict[str, Any]:
        """The answer's JSON object, or the exception its refusal maps to."""
        if not response.is_success:
            raise _refused(response, self.grant, self.endpoint)
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            raise classify_transport("malformed", self.endpoint,
                                     "not a JSON object").to_exception()
        return body


# ---------------------------------------------------------------------------- token answers


def jwt_claims(token: str) -> dict[str, Any] | None:
    """The claims of a JWT access token, read **without verifying its signature** (only to
    learn ``exp`` and ``scp``; the API verifies the token) -- §1.2. None if unreadable."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    return claims if isinstance(claims, dict) else None


def token_scopes(access_token: str) -> tuple[str, ...] | None:
    """The scopes an access token carries (its ``scp`` claim: a list, or a space-separated
    string), or None when the token is not a readable JWT."""
    claims = jwt_claims(access_token)
    scp = claims.get("scp") if claims else None
    if isinstance(scp, str):
        return tuple(scp.split())
    if isinstance(scp, list):
        return tuple(str(s) for s in scp)
    return None


def _expires_at(body: Mapping[str, Any], claims: Mapping[str, Any] | None,
                now: datetime) -> datetime:
    candidates = []
    expires_in = _number(body.get("expires_in"), None)
    if expires_in is not None:
        candidates.append(now + timedelta(seconds=expires_in))
    exp = claims.get("exp") if claims else None
    if isinstance(exp, int | float):
        candidates.append(datetime.fromtimestamp(exp, UTC))
    # the earlier one: a token refreshed too early costs a call, one used too late a failure
    return min(candidates) if candidates else now + ACCESS_TOKEN_LIFETIME


def token_set_from(body: Mapping[str, Any], *, requested: Iterable[str] = (),
                   previous_refresh: str | None = None, now: datetime | None = None,
                   endpoint: str = f"POST {TOKEN_PATH}") -> TokenSet:
    """A :class:`TokenSet` from a token endpoint's success body (§1.2).

    Without a ``refresh_token`` in the answer, ``previous_refresh`` is kept: RFC 6749 §6
    lets a server keep the refresh token as it is (CC's long-lived mode returns the same
    one; UNCONFIRMED whether it ever omits it, so both are handled).
    """
    when = now or _utcnow()
    access = body.get("access_token")
    if not isinstance(access, str) or not access:
        raise classify_transport("malformed", endpoint, "no access_token").to_exception()
    claims = jwt_claims(access)
    scope_text = body.get("scope")
    scope = (tuple(scope_text.split()) if isinstance(scope_text, str) and scope_text
             else token_scopes(access) or tuple(requested))
    refresh_token = body.get("refresh_token")
    return TokenSet(
        access_token=access,
        refresh_token=refresh_token if isinstance(refresh_token, str) and refresh_token
        else previous_refresh,
        expires_at=_expires_at(body, claims, when),
        scope=scope,
        obtained_at=when,
    )


# ---------------------------------------------------------------------------- grants


def exchange_code(
    http: httpx.Client,
    auth_base: str,
    client_id: str,
    client_secret: str | None,
    code: str,
    redirect_uri: str,
    code_verifier: str | None,
    *,
    pacer: TokenPacer | None = PACER,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = _utcnow,
) -> TokenSet:
    """Trade an authorization code for tokens (server flow, or PKCE with ``code_verifier``)
    -- §1.2. The code is single-use: a second exchange is ``invalid_grant``
    (:class:`~ctctsync.errors.ReauthorizeRequired`).

    UNCONFIRMED (§1.2): CC's examples put the parameters in the query string; we send them
    in the form body (RFC 6749 §4.1.3), which keeps codes and tokens out of URL logs.
    """
    call = _Call(http, auth_base, client_id, client_secret, "authorization_code",
                 pacer=pacer, sleep=sleep)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if code_verifier is not None:
        form["code_verifier"] = code_verifier
    body = call.json(call.post(form, (code, code_verifier or "")))
    return token_set_from(body, now=now(), endpoint=call.endpoint)


def refresh(
    http: httpx.Client,
    auth_base: str,
    client_id: str,
    client_secret: str | None,
    refresh_token: str,
    *,
    pacer: TokenPacer | None = PACER,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = _utcnow,
) -> TokenSet:
    """A new access token (and, rotating, a new refresh token) -- §1.2.

    The answer's refresh token replaces ``refresh_token``, which is void from now on:
    persist the result **before** using its access token (see
    :class:`~ctctsync.api.v3.tokens.TokenKeeper`). A refused refresh token raises
    :class:`~ctctsync.errors.ReauthorizeRequired` with :data:`REFRESH_REFUSED_MESSAGE`
    (``error_key`` ``invalid_grant``).
    """
    call = _Call(http, auth_base, client_id, client_secret, "refresh_token",
                 pacer=pacer, sleep=sleep)
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    body = call.json(call.post(form, (refresh_token,)))
    return token_set_from(body, previous_refresh=refresh_token, now=now(),
                          endpoint=call.endpoint)


def device_authorize(
    http: httpx.Client,
    auth_base: str,
    client_id: str,
    scopes: Iterable[str] = SCOPES,
    *,
    now: Callable[[], datetime] = _utcnow,
) -> DeviceGrant:
    """Start the device flow (RFC 8628 §3.1; ``POST .../device/authorize`` with
    ``client_id`` and ``scope`` -- §1.2). A public client: no secret.

    UNCONFIRMED (§1.2, §7.1): the answer's ``expires_in`` and ``interval``; when missing we
    assume 600 s (Okta's default) and :data:`DEFAULT_DEVICE_INTERVAL`.
    """
    call = _Call(http, auth_base, client_id, None, "device_authorize",
                 path=DEVICE_AUTHORIZE_PATH, pacer=None)
    body = call.json(call.post({"scope": " ".join(scopes)}, ()))
    fields = ("device_code", "user_code", "verification_uri")
    if not all(isinstance(body.get(f), str) and body.get(f) for f in fields):
        raise classify_transport("malformed", call.endpoint,
                                 "device answer without device_code/user_code/"
                                 "verification_uri").to_exception()
    complete = body.get("verification_uri_complete")
    return DeviceGrant(
        device_code=str(body["device_code"]),
        user_code=str(body["user_code"]),
        verification_uri=str(body["verification_uri"]),
        verification_uri_complete=complete if isinstance(complete, str) else None,
        expires_at=now() + timedelta(seconds=_number(body.get("expires_in"), 600.0)),
        interval=_number(body.get("interval"), DEFAULT_DEVICE_INTERVAL),
    )


def _number(value: Any, default: _D) -> float | _D:
    """``value`` as a number of seconds (CC's v2 sent numbers as strings), else ``default``."""
    try:
        return float(value) if value is not None else default
    except (TypeError, ValueError):
        return default


DevicePoll = Literal["authorization_pending", "slow_down"]
"""A device poll that must be repeated: not yet approved, or too soon (RFC 8628 §3.5)."""


def poll_device_once(
    http: httpx.Client,
    auth_base: str,
    client_id: str,
    device_code: str,
    *,
    pacer: TokenPacer | None = PACER,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = _utcnow,
) -> TokenSet | DevicePoll:
    """One poll of the token endpoint for a device code (RFC 8628 §3.4; §1.2): the tokens
    once approved, else ``"authorization_pending"`` or ``"slow_down"``. ``access_denied``,
    ``expired_token`` and a refused code raise :class:`~ctctsync.errors.ReauthorizeRequired`."""
    call = _Call(http, auth_base, client_id, None, "device_code", pacer=pacer, sleep=sleep)
    response = call.post({"grant_type": DEVICE_GRANT_TYPE, "device_code": device_code},
                         (device_code,))
    if response.status_code == 400:
        error, _ = parse_error_body(response.content)
        if error in ("authorization_pending", "slow_down"):
            return "slow_down" if error == "slow_down" else "authorization_pending"
    return token_set_from(call.json(response), now=now(), endpoint=call.endpoint)


def poll_device(
    http: httpx.Client,
    auth_base: str,
    client_id: str,
    grant: DeviceGrant,
    *,
    wait: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = _utcnow,
    pacer: TokenPacer | None = PACER,
    on_poll: Callable[[TokenSet | DevicePoll], None] | None = None,
) -> TokenSet:
    """Poll until the person approves (or denies, or the code expires) -- RFC 8628 §3.4-3.5.

    Waits ``grant.interval`` before each poll through ``wait`` (inject one in tests: e.g.
    advancing a sandbox clock); ``slow_down`` adds :data:`SLOW_DOWN_STEP` to the interval for
    good. Past ``grant.expires_at`` it stops without asking (``expired_token``).
    """
    interval = grant.interval
    while True:
        if now() >= grant.expires_at:
            raise _local_refusal("expired_token", f"POST {TOKEN_PATH}")
        wait(interval)
        outcome = poll_device_once(http, auth_base, client_id, grant.device_code,
                                   pacer=pacer, sleep=wait, now=now)
        if on_poll is not None:
            on_poll(outcome)
        if isinstance(outcome, TokenSet):
            return outcome
        if outcome == "slow_down":
            interval += SLOW_DOWN_STEP


def _local_refusal(error: str, endpoint: str) -> CtctError:
    refusal = OAUTH_REFUSALS[error]
    return refusal.raises(refusal.rule.message, rule=refusal.rule, error_key=error,
                          endpoint=endpoint)


def revoke(
    http: httpx.Client,
    auth_base: str,
    client_id: str,
    client_secret: str | None,
    token: str,
    token_type_hint: Literal["refresh_token", "access_token"] | None = None,
) -> None:
    """Revoke an access or refresh token (RFC 7009; revoking a refresh token ends its whole
    grant). An unknown or already dead token is success too (RFC 7009 §2.2)."""
    call = _Call(http, auth_base, client_id, client_secret, "revoke", path=REVOKE_PATH,
                 pacer=None)
    form = {"token": token}
    if token_type_hint is not None:
        form["token_type_hint"] = token_type_hint
    response = call.post(form, (token,))
    if not response.is_success:
        raise _refused(response, "revoke", call.endpoint)


# ---------------------------------------------------------------------------- access check


@dataclass(frozen=True)
class Access:
    """What reading one table takes: an OAuth scope of the token and a privilege of the
    authorizing user (§1.2; the contract's ``security`` and ``x-authorization-privileges``)."""

    scope: str
    privilege: str


TABLE_ACCESS: Final[Mapping[str, Access]] = MappingProxyType({
    # per table, its v3 endpoints' scope and privilege -- §3.1, §3.2, §3.6, §3.8-§3.11
    "contacts": Access("contact_data", "contacts:read"),
    "contact_lists": Access("contact_data", "contacts:lists:read"),
    "email_campaigns": Access("campaign_data", "campaign:read"),
    "contact_tracking": Access("campaign_data", "ui:campaign:metrics"),
    "email_campaign_summary": Access("campaign_data", "ui:campaign:metrics"),
    "account_info": Access("account_read", "account:read"),
    "events": Access("campaign_data", "campaign:read"),
    "contact_tags": Access("contact_data", "contacts:read"),
    "contact_custom_fields": Access("contact_data", "contacts:read"),
    "segments": Access("contact_data", "contacts:lists:read"),
    "email_campaign_activities": Access("campaign_data", "campaign:read"),
    "event_registrations": Access("campaign_data", "campaign:read"),
})
"""The v3 tables and what reading each takes (the contract's ``security`` scope and
``x-authorization-privileges`` of each table's endpoint). Every report needs
``ui:campaign:metrics``."""

PRIVILEGES_PATH: Final = "/v3/account/user/privileges"
"""The authorizing user's privileges: a bare array of ``{privilege_id, privilege_name}``,
served for any scope -- §3.10."""


def _spec_names(tables: Iterable[str]) -> str:
    return ", ".join(TABLES[t].spec_name if t in TABLES else t for t in tables)


def user_privileges(client: ApiClient) -> frozenset[str]:
    """The authorizing user's privilege names (``GET /v3/account/user/privileges``, 1 call)."""
    body = client.get_json(PRIVILEGES_PATH)
    if not isinstance(body, list):
        raise classify_transport("malformed", f"GET {PRIVILEGES_PATH}",
                                 "not a JSON array").to_exception()
    return frozenset(str(p["privilege_name"]) for p in body
                     if isinstance(p, dict) and "privilege_name" in p)


def missing_access(
    client: ApiClient,
    scopes: Iterable[str],
    tables: Iterable[str] = tuple(TABLE_ACCESS),
) -> list[str]:
    """What keeps ``tables`` from being read, one line a person can act on each; empty when
    nothing does. ``scopes``: the token's (:func:`token_scopes`, or the token answer's
    ``scope``). One call: the user's privileges (§3.10).

    >>> # ["missing scope contact_data: Contacts, ContactLists cannot be read; ..."]
    """
    granted = set(scopes)
    privileges = user_privileges(client)
    wanted = [t for t in tables if t in TABLE_ACCESS]
    problems: list[str] = []
    by_scope: dict[str, list[str]] = {}
    by_privilege: dict[str, list[str]] = {}
    for table in wanted:
        need = TABLE_ACCESS[table]
        if need.scope not in granted:
            by_scope.setdefault(need.scope, []).append(table)
        elif need.privilege not in privileges:
            by_privilege.setdefault(need.privilege, []).append(table)
    problems.extend(
        f"missing scope {scope}: {_spec_names(names)} cannot be read; re-authorize the "
        f"integration granting {scope}"
        for scope, names in by_scope.items()
    )
    problems.extend(
        f"the authorizing user lacks the privilege {privilege}: {_spec_names(names)} cannot "
        "be read; re-authorize as a user who has it (e.g. the account owner)"
        for privilege, names in by_privilege.items()
    )
    if "offline_access" not in granted:
        problems.append("missing scope offline_access: no refresh token, so access ends when "
                        "the access token expires (24 h); re-authorize granting it")
    return problems


__all__ = [
    "ACCESS_TOKEN_LIFETIME",
    "OAUTH_REFUSALS",
    "PACER",
    "REFRESH_IDLE_LIMIT",
    "REFRESH_REFUSED_MESSAGE",
    "SCOPES",
    "TABLE_ACCESS",
    "Access",
    "DeviceGrant",
    "DevicePoll",
    "OAuthApp",
    "TokenPacer",
    "TokenSet",
    "authorize_url",
    "device_authorize",
    "exchange_code",
    "jwt_claims",
    "missing_access",
    "pkce_pair",
    "poll_device",
    "poll_device_once",
    "refresh",
    "revoke",
    "token_scopes",
    "token_set_from",
    "user_privileges",
]
