"""The v3 OAuth2 server, standing in for ``authz.constantcontact.com`` (§1.2, §1.5).

Paths are CC's, on the sandbox host (the authorization base is :data:`AUTHZ_PATH`):

* ``GET|POST /oauth2/default/v1/authorize`` -- the authorization-code flow, with PKCE (S256
  only). A sign-in page (the owner's email and password), then a consent page listing the
  scopes (Allow / Deny); Allow redirects to ``redirect_uri?code=..&state=..``, Deny to
  ``redirect_uri?error=access_denied&error_description=..&state=..``. An unknown client or an
  unregistered redirect URI gets an error page: the browser is never sent to an unverified URI.
* ``POST /oauth2/default/v1/token`` -- grants ``authorization_code``, ``refresh_token`` and
  the device code; parameters in the form body or the query; client authentication by HTTP
  Basic or ``client_id`` (+ ``client_secret``) in the body, PKCE and device clients without a
  secret. Limited to 1 request/s per client id (§1.2).
* ``POST /oauth2/default/v1/device/authorize`` and the verification page ``/activate``.
* ``POST /oauth2/default/v1/revoke`` (RFC 7009).

The v2-era server (``sandbox.v2.oauth``, ``/oauth2/oauth/...``) is separate and unchanged.
The sign-in and consent pages carry no session: every authorization signs in anew, and the
consent form holds a single-use server-side ticket binding it to the checked request.
"""

from __future__ import annotations

import base64
import binascii
import html
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote_plus, urlencode

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ctctsync.sandbox.context import SandboxContext
from ctctsync.sandbox.v3.tokens import (
    DEVICE_CODE_LIFETIME_S,
    DEVICE_POLL_INTERVAL_S,
    SCOPE_DESCRIPTIONS,
    OAuthError,
    TokenSet,
    TokenStore,
    is_valid_challenge,
    parse_scopes,
)

AUTHZ_PATH = "/oauth2/default/v1"
"""The authorization server's base path: a client's authz base URL is ``<sandbox>`` + this
(CC: ``https://authz.constantcontact.com/oauth2/default/v1``, §1.2)."""
AUTHORIZE_PATH = f"{AUTHZ_PATH}/authorize"
TOKEN_PATH = f"{AUTHZ_PATH}/token"
DEVICE_AUTHORIZE_PATH = f"{AUTHZ_PATH}/device/authorize"
REVOKE_PATH = f"{AUTHZ_PATH}/revoke"
ACTIVATE_PATH = "/activate"
"""The device flow's ``verification_uri`` path. UNCONFIRMED: CC's page is not documented;
chose Okta's ``/activate``, on the authorization host like Okta's."""
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
CONSENT_LIFETIME_S = 600
"""How long a signed-in user has to answer the consent page."""

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 §5.1
_PAGE_HEADERS = {**_NO_STORE, "X-Frame-Options": "DENY"}  # consent pages are not framable
_BAD_CLIENT = "Client authentication failed."


# -- requests and answers ----------------------------------------------------------------------


async def _params(request: Request) -> dict[str, str]:
    """Query parameters merged with an urlencoded form body (the body wins): CC's token calls
    are seen with either (§1.2)."""
    params = dict(request.query_params)
    if "application/x-www-form-urlencoded" in request.headers.get("content-type", ""):
        body = (await request.body()).decode("utf-8", "replace")
        params.update(parse_qsl(body, keep_blank_values=True))
    return params


def _required(p: Mapping[str, str], name: str) -> str:
    value = p.get(name, "")
    if not value:
        raise OAuthError("invalid_request", f"The '{name}' parameter is required.")
    return value


def _json(body: object, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json",
                    headers={**_NO_STORE, **(headers or {})})


def oauth_error(error: OAuthError, *, basic: bool = False) -> Response:
    """``{"error", "error_description"}`` with its status (§1.2, RFC 6749 §5.2); a failed
    HTTP Basic authentication also gets the ``WWW-Authenticate`` challenge."""
    headers = {"WWW-Authenticate": 'Basic realm="authz"'} if basic and error.status == 401 \
        else None
    return _json({"error": error.error, "error_description": error.description},
                 error.status, headers)


def token_rate_limited() -> Response:
    """The token endpoint's over-limit answer (more than 1 request/s per client id, §1.2).

    UNCONFIRMED: CC documents the limit, not the answer. Chose 429 (as the API's own limits,
    §1.5) with an OAuth-shaped body, since token clients parse ``error``; no ``Retry-After``
    (the API sends none either) -- a client backs off at least 1 s."""
    return _json({"error": "rate_limit_exceeded",
                  "error_description": "Too many requests to the token endpoint: at most 1 "
                                       "request per second per client."}, 429)


def _with_query(uri: str, params: Mapping[str, str]) -> str:
    return f"{uri}{'&' if '?' in uri else '?'}{urlencode(dict(params))}"


@dataclass(frozen=True)
class _Client:
    """Who calls the token endpoint, as the request says (not yet checked)."""

    client_id: str
    secret: str | None
    basic: bool


def _client(request: Request, p: Mapping[str, str]) -> _Client:
    """The client's credentials: HTTP Basic (CC's documented way, §1.2) or the body's
    ``client_id`` and ``client_secret`` (RFC 6749 §2.3.1)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return _Client(p.get("client_id", ""), p.get("client_secret") or None, False)
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError("invalid_client", _BAD_CLIENT, 401) from None
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise OAuthError("invalid_client", _BAD_CLIENT, 401)
    # RFC 6749 §2.3.1: both halves are form-encoded before being joined
    return _Client(unquote_plus(client_id), unquote_plus(secret) or None, True)


# -- pages -------------------------------------------------------------------------------------

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:28em;margin:3em auto;padding:0 1em}}
label{{display:block;margin:.8em 0 .2em}}input:not([type=hidden]){{width:100%;padding:.3em}}
button{{margin:1em .5em 0 0;padding:.4em 1.2em}}.error{{color:#b00020}}
code{{background:#eee;padding:0 .2em}}</style></head>
<body><main><h1>{title}</h1>{body}</main></body></html>"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=html.escape(title), body=body), status_code=status,
                        headers=_PAGE_HEADERS)


def _error_page(message: str, status: int = 400) -> HTMLResponse:
    return _page("Authorization error",
                 f'<p class="error" id="error" role="alert">{html.escape(message)}</p>', status)


def _hidden(fields: Mapping[str, str]) -> str:
    return "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                   for k, v in fields.items() if v)


def _alert(error: str | None) -> str:
    return f'<p class="error" id="error" role="alert">{html.escape(error)}</p>' if error else ""


_SIGN_IN_FIELDS = (
    '<label for="email">Email</label>'
    '<input type="email" id="email" name="email" autocomplete="username" value="{email}" '
    "required>"
    '<label for="password">Password</label>'
    '<input type="password" id="password" name="password" autocomplete="current-password" '
    "required>"
)


def _sign_in_fields(email: str) -> str:
    return _SIGN_IN_FIELDS.format(email=html.escape(email))


# -- the authorize request and the consent tickets ---------------------------------------------


@dataclass(frozen=True)
class AuthorizeRequest:
    """A checked authorize request: its client and redirect URI are verified."""

    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str
    code_challenge: str | None
    nonce: str | None

    def form_fields(self) -> dict[str, str]:
        """The request as the sign-in form carries it to its POST."""
        fields = {"response_type": "code", "client_id": self.client_id,
                  "redirect_uri": self.redirect_uri, "scope": " ".join(self.scopes),
                  "state": self.state, "nonce": self.nonce or ""}
        if self.code_challenge:
            fields |= {"code_challenge": self.code_challenge, "code_challenge_method": "S256"}
        return fields

    def redirect(self, params: Mapping[str, str]) -> RedirectResponse:
        """Back to the client with ``params`` (and the ``state``, if one was sent)."""
        state = {"state": self.state} if self.state else {}
        return RedirectResponse(_with_query(self.redirect_uri, {**params, **state}), 302,
                                headers=_NO_STORE)


@dataclass(frozen=True)
class _Ticket:
    """A signed-in user's pending consent: to an authorize request or to a device's code."""

    client_id: str
    scopes: tuple[str, ...]
    request: AuthorizeRequest | None
    user_code: str | None
    issued_ms: int


class _Tickets:
    """Single-use consent tickets, valid :data:`CONSENT_LIFETIME_S` on the sandbox clock."""

    def __init__(self, now_ms: Callable[[], int]) -> None:
        self._now_ms = now_ms
        self._lock = threading.Lock()
        self._tickets: dict[str, _Ticket] = {}

    def issue(self, client_id: str, scopes: tuple[str, ...], *,
              request: AuthorizeRequest | None = None, user_code: str | None = None) -> str:
        ticket = secrets.token_urlsafe(24)
        now = self._now_ms()
        with self._lock:
            # forget abandoned consents so a long-running sandbox does not accumulate them
            self._tickets = {k: t for k, t in self._tickets.items()
                             if now - t.issued_ms <= CONSENT_LIFETIME_S * 1000}
            self._tickets[ticket] = _Ticket(client_id, scopes, request, user_code, now)
        return ticket

    def take(self, ticket: str) -> _Ticket | None:
        with self._lock:
            found = self._tickets.pop(ticket, None)
        if found is None or self._now_ms() - found.issued_ms > CONSENT_LIFETIME_S * 1000:
            return None
        return found


# -- the server --------------------------------------------------------------------------------

_TokenGrant = Callable[["V3OAuthServer", Mapping[str, str], str, bool], TokenSet]


class V3OAuthServer:
    """Handlers of the v3 authorization server over one sandbox's owner login and tokens."""

    def __init__(self, ctx: SandboxContext, tokens: TokenStore) -> None:
        self.ctx = ctx
        self.tokens = tokens
        self.tickets = _Tickets(tokens.clock.now_ms)

    def routes(self) -> list[Route]:
        """The Starlette routes of the authorization server."""
        return [
            Route(AUTHORIZE_PATH, self.authorize, methods=["GET", "POST"]),
            Route(TOKEN_PATH, self.token, methods=["POST"]),
            Route(DEVICE_AUTHORIZE_PATH, self.device_authorize, methods=["POST"]),
            Route(REVOKE_PATH, self.revoke, methods=["POST"]),
            Route(ACTIVATE_PATH, self.activate, methods=["GET", "POST"]),
        ]

    # ------------------------------------------------------------------ client checks
    def _known_client(self, client_id: str) -> bool:
        return bool(client_id) and self.ctx.auth.is_known_client(client_id)

    def _authenticate(self, client: _Client) -> bool:
        """Check the client; True if it proved its secret, False for a public client (no
        secret sent); a wrong secret or unknown id is ``invalid_client`` (401)."""
        if not self._known_client(client.client_id):
            raise OAuthError("invalid_client", _BAD_CLIENT, 401)
        if client.secret is None:
            return False
        if not self.ctx.auth.check_client_secret(client.secret):
            raise OAuthError("invalid_client", _BAD_CLIENT, 401)
        return True

    # ------------------------------------------------------------------ authorize
    async def authorize(self, request: Request) -> Response:
        """The sign-in page (GET), its submission, and the consent page's answer (POST)."""
        p = await _params(request)
        if request.method == "POST" and p.get("step") == "consent":
            return self._consent(p)
        req = self._checked_request(p)
        if isinstance(req, Response):
            return req
        if request.method == "GET" or p.get("step") != "signin":
            return self._sign_in_page(req)
        return self._sign_in(req, p)

    def _checked_request(self, p: Mapping[str, str]) -> AuthorizeRequest | Response:
        """The authorize request, or the answer refusing it: an error page while the client
        or its redirect URI is unverified, a redirect with the error afterwards."""
        client_id, redirect_uri = p.get("client_id", ""), p.get("redirect_uri", "")
        if not self._known_client(client_id):
            return _error_page("The client_id is not a known application.")
        if not redirect_uri or not self.tokens.settings.is_redirect_allowed(redirect_uri):
            return _error_page("The redirect_uri is not registered for this application.")
        state = p.get("state", "")
        try:
            return self._authorize_request(p, client_id, redirect_uri, state)
        except OAuthError as exc:
            back = AuthorizeRequest(client_id, redirect_uri, (), state, None, None)
            return back.redirect({"error": exc.error, "error_description": exc.description})

    def _sign_in(self, req: AuthorizeRequest, p: Mapping[str, str]) -> Response:
        """The submitted sign-in form: the page again with an error, or the consent page."""
        if not self.ctx.auth.check_login(p.get("email", ""), p.get("password", "")):
            return self._sign_in_page(req, p.get("email", ""),
                                      "The email or password you entered is incorrect.")
        ticket = self.tickets.issue(req.client_id, req.scopes, request=req)
        return self._consent_page(ticket, req.scopes, AUTHORIZE_PATH)

    @staticmethod
    def _authorize_request(p: Mapping[str, str], client_id: str, redirect_uri: str,
                           state: str) -> AuthorizeRequest:
        """The checked authorize parameters (RFC 6749 §4.1.1, RFC 7636 §4.3)."""
        if p.get("response_type") != "code":
            raise OAuthError("unsupported_response_type",
                             "The response type is not supported: only 'code'.")
        if p.get("prompt") == "none":  # no sessions here: the user must always sign in
            raise OAuthError("login_required", "The user is not signed in.")
        scopes = parse_scopes(p.get("scope", ""))
        challenge = p.get("code_challenge") or None
        method = p.get("code_challenge_method", "")
        if challenge is None and method:
            raise OAuthError("invalid_request", "code_challenge_method without code_challenge.")
        if challenge is not None and method != "S256":
            # RFC 7636: an absent method means 'plain', which this server refuses
            raise OAuthError("invalid_request", "PKCE code_challenge_method must be 'S256'.")
        if challenge is not None and not is_valid_challenge(challenge):
            raise OAuthError("invalid_request", "The PKCE code_challenge is malformed.")
        return AuthorizeRequest(client_id, redirect_uri, scopes, state, challenge,
                                p.get("nonce") or None)

    def _sign_in_page(self, req: AuthorizeRequest, email: str = "",
                      error: str | None = None) -> HTMLResponse:
        body = (
            "<p>An application wants to access your Constant Contact account. "
            "Sign in to continue.</p>"
            f'{_alert(error)}<form method="post" action="{AUTHORIZE_PATH}" id="signin">'
            f'{_hidden({**req.form_fields(), "step": "signin"})}{_sign_in_fields(email)}'
            '<button type="submit" id="sign-in">Sign in</button></form>'
        )
        return _page("Sign in to Constant Contact (sandbox)", body)

    def _consent_page(self, ticket: str, scopes: tuple[str, ...], action: str) -> HTMLResponse:
        items = "".join(
            f'<li><code>{html.escape(s)}</code>: {html.escape(SCOPE_DESCRIPTIONS[s])}</li>'
            for s in scopes)
        body = (
            f"<p>Application <code>{html.escape(self.tokens.client_id)}</code> asks for:</p>"
            f'<ul id="scopes">{items}</ul>'
            f'<form method="post" action="{action}" id="consent">'
            f'{_hidden({"step": "consent", "ticket": ticket})}'
            '<button type="submit" name="decision" value="allow" id="allow">Allow</button>'
            '<button type="submit" name="decision" value="deny" id="deny">Deny</button>'
            "</form>"
        )
        return _page("Allow access to your account?", body)

    def _consent(self, p: Mapping[str, str]) -> Response:
        """The consent page's Allow or Deny (anything but ``allow`` denies)."""
        ticket = self.tickets.take(p.get("ticket", ""))
        if ticket is None:
            return _error_page("This sign-in has expired or was already used. "
                               "Start again from the application.")
        allow = p.get("decision") == "allow"
        if ticket.request is None:
            return self._device_decision(ticket, allow)
        req = ticket.request
        if not allow:
            return req.redirect({"error": "access_denied", "error_description":
                                 "The resource owner or authorization server denied the request."})
        code = self.tokens.issue_code(req.client_id, req.redirect_uri, req.scopes,
                                      req.code_challenge, req.nonce)
        return req.redirect({"code": code})

    # ------------------------------------------------------------------ token
    async def token(self, request: Request) -> Response:
        """``POST /token``: rate limit, client authentication, then the grant."""
        p = await _params(request)
        client = _Client("", None, False)
        try:
            client = _client(request, p)
            if self.tokens.token_limiter.check(client.client_id or "-") != "ok":
                return token_rate_limited()
            authenticated = self._authenticate(client)
            grant = _GRANTS.get(_required(p, "grant_type"))
            if grant is None:
                raise OAuthError("unsupported_grant_type",
                                 "The authorization grant type is not supported.")
            tokens = grant(self, p, client.client_id, authenticated)
        except OAuthError as exc:
            return oauth_error(exc, basic=client.basic)
        return _json(tokens.to_json())

    def _grant_code(self, p: Mapping[str, str], client_id: str, authenticated: bool) -> TokenSet:
        return self.tokens.redeem_code(_required(p, "code"), client_id,
                                       p.get("redirect_uri", ""), p.get("code_verifier"),
                                       authenticated=authenticated)

    def _grant_refresh(self, p: Mapping[str, str], client_id: str,
                       authenticated: bool) -> TokenSet:
        scopes = parse_scopes(p["scope"]) if p.get("scope") else None
        return self.tokens.refresh(_required(p, "refresh_token"), client_id,
                                   authenticated=authenticated, scopes=scopes)

    def _grant_device(self, p: Mapping[str, str], client_id: str,
                      authenticated: bool) -> TokenSet:
        return self.tokens.poll_device(_required(p, "device_code"), client_id)

    # ------------------------------------------------------------------ device flow
    async def device_authorize(self, request: Request) -> Response:
        """``POST /device/authorize``: a device code and the user code to enter at
        ``verification_uri`` (RFC 8628 §3.2; ``expires_in``/``interval`` UNCONFIRMED, see
        ``tokens.DEVICE_CODE_LIFETIME_S``)."""
        p = await _params(request)
        client = _Client("", None, False)
        try:
            client = _client(request, p)
            self._authenticate(client)
            scopes = parse_scopes(p.get("scope", ""))
        except OAuthError as exc:
            return oauth_error(exc, basic=client.basic)
        device = self.tokens.start_device(client.client_id, scopes)
        uri = f"{str(request.base_url).rstrip('/')}{ACTIVATE_PATH}"
        return _json({
            "device_code": device.device_code, "user_code": device.user_code,
            "verification_uri": uri,
            "verification_uri_complete": _with_query(uri, {"user_code": device.user_code}),
            "expires_in": DEVICE_CODE_LIFETIME_S, "interval": DEVICE_POLL_INTERVAL_S})

    async def activate(self, request: Request) -> Response:
        """The device verification page: the user code, the owner's sign-in, then consent."""
        p = await _params(request)
        if request.method == "POST" and p.get("step") == "consent":
            return self._consent(p)
        user_code, email = p.get("user_code", ""), p.get("email", "")
        if request.method == "GET":
            return self._activate_page(user_code, email)
        device = self.tokens.pending_device(user_code)
        if device is None:
            return self._activate_page(user_code, email,
                                       "That code is not valid or has expired.")
        if not self.ctx.auth.check_login(email, p.get("password", "")):
            return self._activate_page(user_code, email,
                                       "The email or password you entered is incorrect.")
        ticket = self.tickets.issue(device.client_id, device.scopes, user_code=device.user_code)
        return self._consent_page(ticket, device.scopes, ACTIVATE_PATH)

    def _activate_page(self, user_code: str, email: str,
                       error: str | None = None) -> HTMLResponse:
        body = (
            "<p>Enter the code shown on your device, then sign in.</p>"
            f'{_alert(error)}<form method="post" action="{ACTIVATE_PATH}" id="activate">'
            '<label for="user_code">Code</label>'
            '<input type="text" id="user_code" name="user_code" autocomplete="off" '
            f'autocapitalize="characters" value="{html.escape(user_code)}" required>'
            f"{_sign_in_fields(email)}"
            '<button type="submit" id="next">Next</button></form>'
        )
        return _page("Activate your device", body)

    def _device_decision(self, ticket: _Ticket, allow: bool) -> Response:
        if ticket.user_code is None or not self.tokens.decide_device(ticket.user_code, allow):
            return _error_page("That code is not valid or has expired.")
        if allow:
            return _page("Device activated",
                         '<p id="done" role="status">Your device is connected. '
                         "You can close this window and return to it.</p>")
        return _page("Access denied",
                     '<p id="done" role="status">You denied access. The device will not be '
                     "connected.</p>")

    # ------------------------------------------------------------------ revocation
    async def revoke(self, request: Request) -> Response:
        """``POST /revoke`` (RFC 7009): revokes an access or a refresh token (a refresh token
        with the access tokens of its grant); 200 with an empty body, also for a token that is
        unknown, expired or already revoked."""
        p = await _params(request)
        client = _Client("", None, False)
        try:
            client = _client(request, p)
            self._authenticate(client)
            token = _required(p, "token")
        except OAuthError as exc:
            return oauth_error(exc, basic=client.basic)
        # token_type_hint is only a hint (RFC 7009 §2.1): both kinds are looked up anyway
        self.tokens.revoke(token, client.client_id)
        return Response(status_code=200, headers=_NO_STORE)


_GRANTS: dict[str, _TokenGrant] = {
    "authorization_code": V3OAuthServer._grant_code,
    "refresh_token": V3OAuthServer._grant_refresh,
    DEVICE_GRANT: V3OAuthServer._grant_device,
}
"""The token endpoint's grant types (§1.2) and their handlers."""
