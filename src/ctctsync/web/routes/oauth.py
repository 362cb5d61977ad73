"""The OAuth callback Constant Contact (or the sandbox) redirects the browser to.

It is reachable signed out. What authorizes it is the one-time ``state`` the control plane
issued in ``start_authorization`` *and* the browser session that asked for it: the session's
nonce (``OAUTH_BINDING_KEY`` in its signed cookie) must be the one the state was bound to,
so a victim who approves an authorize URL someone else started does not attach their
account to that someone's integration.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from ctctsync.control import services as svc
from ctctsync.control.errors import ServiceError
from ctctsync.control.services.authorization import AuthorizationNotBound
from ctctsync.web.deps import Db
from ctctsync.web.routes.integrations import OAUTH_BINDING_KEY, after_authorization
from ctctsync.web.security import session_user_id
from ctctsync.web.templating import render

router = APIRouter()

NOT_COMPLETED = "Authorization not completed"


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
    """Store the token for the integration ``state`` names, then continue its setup."""
    if error or not code or not state:
        reason = error_description or error or "Constant Contact sent no authorization code."
        return render(
            request,
            "error.html",
            {
                "title": NOT_COMPLETED,
                "message": f"Constant Contact did not authorize ctctsync: {reason}",
            },
            status_code=400,
        )
    nonce = request.session.get(OAUTH_BINDING_KEY)
    try:
        integ = svc.complete_authorization(
            db, state, code, binding=nonce if isinstance(nonce, str) else ""
        )
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
        return render(
            request,
            "error.html",
            {"title": NOT_COMPLETED, "message": exc.message},
            status_code=400,
        )
    if session_user_id(request) is None:
        return RedirectResponse(f"/login?next=/integrations/{integ.id}", status_code=303)
    return after_authorization(request, integ)
