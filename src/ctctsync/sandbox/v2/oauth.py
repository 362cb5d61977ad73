"""The v2-era OAuth2 server (``/oauth2/...``, constant-contact-api.md §1.2).

Authorization-code flow: the authorize page asks the account owner for the account's email and
password, then redirects to ``redirect_uri`` with ``code`` (and ``state``); ``POST
/oauth2/oauth/token`` exchanges a code once. Implicit flow (``response_type=token``) returns the
token in the redirect URI fragment. ``POST /oauth2/tokeninfo.htm`` describes a token.
"""

from __future__ import annotations

import html
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ctctsync.sandbox.auth import TOKEN_LIFETIME_S
from ctctsync.sandbox.context import SandboxContext

AUTHORIZE_PATH = "/oauth2/oauth/siteowner/authorize"

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:28em;margin:3em auto}}
label{{display:block;margin:.6em 0}}input[type=email],input[type=password]{{width:100%}}
.error{{color:#b00020}}</style></head>
<body><h1>{title}</h1>{body}</body></html>"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=html.escape(title), body=body), status_code=status)


def _error_page(message: str) -> HTMLResponse:
    return _page("Authorization error", f'<p class="error" id="error">{html.escape(message)}</p>',
                 400)


async def _params(request: Request) -> dict[str, str]:
    """Query parameters merged with an urlencoded form body (form wins)."""
    params = dict(request.query_params)
    body = (await request.body()).decode("utf-8", "replace")
    if body and "json" not in request.headers.get("content-type", ""):
        params.update(parse_qsl(body, keep_blank_values=True))
    return params


def _with_query(uri: str, params: dict[str, str], *, fragment: bool = False) -> str:
    sep = "#" if fragment else ("&" if "?" in uri else "?")
    return f"{uri}{sep}{urlencode(params)}"


def _oauth_error(status: int, error: str, description: str) -> Response:
    # error body shape as in POST_oauth2_oauth_token__error__ruby-sdk.json (§1.2)
    return Response(orjson.dumps({"error": error, "error_description": description}),
                    status_code=status, media_type="application/json")


class OAuthServer:
    """Handlers for ``/oauth2/...``."""

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx

    def routes(self) -> list[Route]:
        """The Starlette routes of the OAuth server."""
        return [
            Route(AUTHORIZE_PATH, self.authorize, methods=["GET", "POST"]),
            Route("/oauth2/oauth/token", self.token, methods=["POST"]),
            Route("/oauth2/tokeninfo.htm", self.tokeninfo,
                  methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
        ]

    def _form(self, p: dict[str, str], error: str | None = None) -> HTMLResponse:
        hidden = "".join(
            f'<input type="hidden" name="{k}" value="{html.escape(p.get(k, ""))}">'
            for k in ("response_type", "client_id", "redirect_uri", "state"))
        err = f'<p class="error" id="error">{html.escape(error)}</p>' if error else ""
        body = (
            "<p>An application wants to access your Constant Contact account.</p>"
            f'{err}<form method="post" action="{AUTHORIZE_PATH}" id="login">{hidden}'
            '<label>Email <input type="email" id="email" name="email" autocomplete="username" '
            f'value="{html.escape(p.get("email", ""))}" required></label>'
            '<label>Password <input type="password" id="password" name="password" '
            'autocomplete="current-password" required></label>'
            '<button type="submit" name="action" value="allow">Log in and allow</button> '
            '<button type="submit" name="action" value="deny" formnovalidate>Deny</button>'
            "</form>"
        )
        return _page("Constant Contact (sandbox) — Log in", body)

    async def authorize(self, request: Request) -> Response:
        """The login/consent page (GET) and its submission (POST)."""
        p = await _params(request)
        error = self._authorize_error(p)
        if error is not None:
            return _error_page(error)
        if request.method == "GET":
            return self._form(p)
        return self._login(p)

    def _authorize_error(self, p: dict[str, str]) -> str | None:
        """Why the authorize request cannot be shown a login page, if it cannot."""
        client_id = p.get("client_id", "")
        if p.get("response_type", "") not in ("code", "token"):
            return "response_type must be code or token."
        if not client_id or not self.ctx.auth.is_known_client(client_id):
            return "The client_id (API key) is not a known application."
        if not p.get("redirect_uri", "").startswith(("http://", "https://")):
            return "redirect_uri is missing or not an http(s) URL."
        return None

    def _login(self, p: dict[str, str]) -> Response:
        """The submitted login form: deny, a wrong login, or a code or token redirect."""
        redirect_uri = p["redirect_uri"]
        state = {"state": p["state"]} if p.get("state") else {}
        implicit = p["response_type"] == "token"
        if p.get("action") == "deny":
            return RedirectResponse(_with_query(redirect_uri, {
                "error": "access_denied",
                "error_description": "The resource owner or authorization server denied "
                                     "the request.", **state}, fragment=implicit), 302)
        if not self.ctx.auth.check_login(p.get("email", ""), p.get("password", "")):
            return self._form(p, "The email or password you entered is incorrect.")
        if implicit:  # client flow: token in the redirect URI fragment (§1.2)
            token = self.ctx.auth.issue_token()
            return RedirectResponse(_with_query(redirect_uri, {
                "access_token": token, "token_type": "Bearer",
                "expires_in": str(TOKEN_LIFETIME_S), **state}, fragment=True), 302)
        code = self.ctx.auth.issue_code(p["client_id"], redirect_uri)
        return RedirectResponse(_with_query(redirect_uri, {"code": code, **state}), 302)

    async def token(self, request: Request) -> Response:
        """``POST /oauth2/oauth/token``: exchange a code (params in query or form)."""
        p = await _params(request)
        auth = self.ctx.auth
        if p.get("grant_type") != "authorization_code":
            return _oauth_error(400, "unsupported_grant_type",
                                "The authorization grant type is not supported.")
        if not auth.is_known_client(p.get("client_id", "")) or p.get(
                "client_secret") != auth.credentials.client_secret:
            return _oauth_error(401, "invalid_client", "Client authentication failed.")
        token = auth.redeem_code(p.get("code", ""), p.get("client_id", ""),
                                 p.get("redirect_uri", ""))
        if token is None:
            return _oauth_error(400, "invalid_grant",
                                "The authorization code is invalid, expired or already used.")
        # expires_in is a string in both SDK fixtures (§1.2)
        return Response(orjson.dumps({"access_token": token, "expires_in": str(TOKEN_LIFETIME_S),
                                      "token_type": "Bearer"}), media_type="application/json")

    async def tokeninfo(self, request: Request) -> Response:
        """``POST /oauth2/tokeninfo.htm``: 404 for invalid tokens, 405 for other methods."""
        if request.method != "POST":  # 405 for non-POST (§1.2)
            return Response(status_code=405, headers={"Allow": "POST"})
        p = await _params(request)
        rec = self.ctx.auth.token(p.get("access_token", ""))
        if rec is None:
            return _oauth_error(404, "invalid_token", "The access token is invalid or expired.")
        # expires_in as a string, as in both tokeninfo fixtures (§1.2)
        return Response(orjson.dumps({"client_id": rec.client_id, "user_name": rec.user_name,
                                      "expires_in": str(self.ctx.auth.expires_in(rec))}),
                        media_type="application/json")
