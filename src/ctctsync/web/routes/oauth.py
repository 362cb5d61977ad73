"""The OAuth callback Constant Contact (or the sandbox) redirects the browser to.

It is reachable signed out. What authorizes it is the one-time ``state`` the control plane
issued in ``start_authorization`` *and* the browser session that asked for it: the session's
nonce (``OAUTH_BINDING_KEY`` in its signed cookie) must be the one the state was bound to,
so a victim who approves an authorize URL someone else started does not attach their
account to that someone's integration.

Every way it can go wrong ends on a page that says, in plain words, what happened and what
to do next: the browser that started the authorization goes back to the integration's
authorize step (Deny, another error from Constant Contact, an authorization left open too
long), each with "Try again"; any other browser gets a page naming the next step, never
Constant Contact's raw error code alone.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from ctctsync.control import services as svc
from ctctsync.control.errors import ServiceError, ValidationFailed
from ctctsync.control.services.authorization import (
    AuthorizationNotBound,
    abandon_authorization,
    expired_authorization,
)
from ctctsync.web.deps import Db
from ctctsync.web.oauth_errors import explain_oauth_error
from ctctsync.web.routes.integrations import (
    CC_ERROR_KEY,
    OAUTH_BINDING_KEY,
    after_authorization,
)
from ctctsync.web.security import session_id, session_user_id
from ctctsync.web.templating import render

router = APIRouter()

NOT_COMPLETED = "Constant Contact was not connected"

def _problem(
    request: Request,
    db: Db,
    title: str,
    message: str,
    *,
    detail: str = "",
    status_code: int = 400,
) -> Response:
    """A page about a callback that cannot be completed, with the way forward: a signed-in
    person (with the usual top bar) is sent to the integrations, where an unfinished setup
    shows Continue; anyone else signs in first."""
    sid = session_id(request)
    found = svc.session_user(db, sid) if sid is not None else None
    signed_in = found is not None
    if found is not None:
        request.state.user = found[0]  # the layout's top bar
    return render(
        request,
        "error.html",
        {
            "title": title,
            "message": message,
            "detail": detail,
            "back_url": "/integrations" if signed_in else "/login?next=/integrations",
            "back_label": "Go to your integrations and choose Authorize again"
            if signed_in
            else "Sign in, then choose Authorize again on the integration",
        },
        status_code=status_code,
    )


@router.get("/oauth/callback", name="oauth_callback")
def oauth_callback(
    request: Request,
    db: Db,
    *,
    state: str = "",
    code: str = "",
    error: str = "",
    error_description: str = "",
) -> Response:
    """Store the token for the integration ``state`` names, then continue its setup.

    When Constant Contact sends an error back instead of a code (``access_denied``: the
    person chose Deny), the browser that started the authorization returns to the
    integration's authorize step, which explains it and offers "Try again"."""
    nonce = request.session.get(OAUTH_BINDING_KEY)
    binding = nonce if isinstance(nonce, str) else ""
    if error or not code or not state:
        return _no_code(request, db, state, error, error_description, binding)
    try:
        integ = svc.complete_authorization(db, state, code, binding=binding)
    except AuthorizationNotBound as exc:
        return render(
            request,
            "error.html",
            {
                "title": "Authorization refused: another session started it",
                "message": exc.message,
                "back_url": "/integrations",
                "back_label": "Start the authorization again",
            },
            status_code=403,
        )
    except ServiceError as exc:
        # an authorization this browser left open too long goes back to its step
        expired = isinstance(exc, ValidationFailed) and "state" in exc.errors
        stale = expired_authorization(db, state, binding=binding) if expired else None
        if stale is not None:
            return _back_to_authorize(request, stale.id, "expired", "")
        # the sentences only, not the field names they are filed under
        return _problem(
            request, db, NOT_COMPLETED, " ".join(exc.errors.values()) or exc.message
        )
    if session_user_id(request) is None:
        return RedirectResponse(f"/login?next=/integrations/{integ.id}", status_code=303)
    return after_authorization(request, integ)


def _no_code(
    request: Request, db: Db, state: str, error: str, description: str, binding: str
) -> Response:
    """Constant Contact sent an error (Deny, ...) or nothing back instead of a code."""
    if error and state:
        integ = abandon_authorization(db, state, binding=binding)
        if integ is not None:
            return _back_to_authorize(request, integ.id, error, description)
    if error:
        return _problem(
            request, db, NOT_COMPLETED, explain_oauth_error(error),
            detail=_answer(error, description),
        )
    return _problem(
        request,
        db,
        NOT_COMPLETED,
        "This address is where Constant Contact sends the browser back after an "
        "authorization, and this visit brought no authorization code: nothing was stored.",
    )


def _answer(error: str, description: str) -> str:
    """Constant Contact's own words, kept short, shown below the explanation."""
    said = f"{error}: {description}" if description else error
    return f"Constant Contact's answer: {said[:200]}"


def _back_to_authorize(
    request: Request, integration_id: int, error: str, description: str
) -> Response:
    """To the authorize step of the integration, with what went wrong (shown once there)."""
    target = f"/integrations/{integration_id}/setup/authorize"
    if error in ("access_denied", "expired"):
        target += "?outcome=" + ("denied" if error == "access_denied" else "expired")
    else:
        # e.g. invalid_scope, server_error: explained once on the authorize page
        request.session[CC_ERROR_KEY] = [error, description[:200]]
        target += "?outcome=error"
    if session_user_id(request) is None:
        return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)
    return RedirectResponse(target, status_code=303)
