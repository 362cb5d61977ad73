"""Browser-session security: the signed session cookie's contents and CSRF tokens.

The session is Starlette's signed cookie (``itsdangerous``; HttpOnly, SameSite=Lax, and
Secure when the control plane is served over HTTPS). It holds only ids and small,
non-secret draft values: the server-side session's random id, the signed-in user's id, the
CSRF token, and the in-progress "add integration" draft. Credentials obtained during that
flow stay in the control plane's database; the cookie carries an opaque reference to them
at most.

A signature alone proves nothing about whether the session is still open: who is signed in
is decided by the ``sessions`` row the session id names (``ctctsync.web.deps``), looked up
on every request, so sign-out and revocation take effect at once.

Every state-changing request (any method but GET/HEAD/OPTIONS) must carry the session's
CSRF token, as the ``csrf_token`` form field or the ``X-CSRF-Token`` header; anything else
is refused with 403 before the route runs, so nothing changes.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from fastapi import HTTPException, Request, status

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_USER_KEY = "user_id"
_SESSION_KEY = "sid"
_CSRF_KEY = "csrf"


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use."""
    token = request.session.get(_CSRF_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session[_CSRF_KEY] = token
    return token


async def verify_csrf(request: Request) -> None:
    """Dependency: refuse an unsafe request whose CSRF token is missing or wrong (403)."""
    if request.method in SAFE_METHODS:
        return
    expected = request.session.get(_CSRF_KEY)
    sent: Any = request.headers.get(CSRF_HEADER)
    if sent is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            sent = form.get(CSRF_FIELD)
    if (
        not isinstance(expected, str)
        or not isinstance(sent, str)
        or not expected
        or not hmac.compare_digest(expected.encode(), sent.encode())
    ):
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN,
            detail=(
                "The form's security token is missing or out of date. "
                "Reload the page and try again."
            ),
        )


def session_user_id(request: Request) -> int | str | None:
    """The user id the cookie names, if any. Only a hint (the cookie may belong to a revoked
    session): who is signed in is ``ctctsync.web.deps.current_user``'s answer."""
    value = request.session.get(_USER_KEY)
    return value if isinstance(value, int | str) else None


def session_id(request: Request) -> str | None:
    """The server-side session's id the cookie carries, if any."""
    value = request.session.get(_SESSION_KEY)
    return value if isinstance(value, str) and value else None


def client_address(request: Request) -> str:
    """The client's address as the server sees it (behind a proxy, run uvicorn with
    ``--proxy-headers`` and ``--forwarded-allow-ips`` so this is the browser's)."""
    return request.client.host if request.client is not None else ""


def user_agent(request: Request) -> str:
    """The browser's self-description, for the sessions page."""
    return request.headers.get("user-agent", "")


def sign_in(request: Request, user_id: int | str, server_session_id: str) -> None:
    """Start a fresh cookie for ``user_id`` bound to the server-side session
    ``server_session_id`` (new CSRF token; drops any earlier draft)."""
    request.session.clear()
    request.session[_USER_KEY] = user_id
    request.session[_SESSION_KEY] = server_session_id
    csrf_token(request)


def sign_out(request: Request) -> None:
    """Forget everything the cookie held (the caller ends the server-side session)."""
    request.session.clear()
