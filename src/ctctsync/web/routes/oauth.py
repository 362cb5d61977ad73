"""The OAuth callback Constant Contact (or the sandbox) redirects the browser to.

It is reachable signed out. What authorizes it is the one-time ``state`` the control plane
issued in ``start_authorization`` *and* the browser session that asked for it: the session's
nonce (``OAUTH_BINDING_KEY`` in its signed cookie) must be the one the state was bound to,
so a victim who approves an authorize URL someone else started does not attach their
account to that someone's integration.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from ctctsync.control import services as svc
from ctctsync.control.errors import ServiceError
from ctctsync.control.services.authorization import AuthorizationNotBound, abandon_authorization
from ctctsync.web.deps import Db
from ctctsync.web.routes.integrations import (
    CC_ERROR_KEY,
    OAUTH_BINDING_KEY,
    after_authorization,
)
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
    """Store the token for the integration ``state`` names, then continue its setup.

    When Constant Contact sends an error back instead of a code (``access_denied``: the
    person chose Deny), the browser that started the authorization returns to the
    integration's authorize step, which explains it and offers "Try again"."""
    nonce = request.session.get(OAUTH_BINDING_KEY)
    binding = nonce if isinstance(nonce, str) else ""
    if error and state:
        integ = abandon_authorization(db, state, binding=binding)
        if integ is not None:
            return _back_to_authorize(request, integ.id, error, error_description)
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
        return render(
            request,
            "error.html",
            {"title": NOT_COMPLETED, "message": exc.message},
            status_code=400,
        )
    if session_user_id(request) is None:
        return RedirectResponse(f"/login?next=/integrations/{integ.id}", status_code=303)
    return after_authorization(request, integ)


def _back_to_authorize(
    request: Request, integration_id: int, error: str, description: str
) -> Response:
    """To the authorize step of the integration, with what Constant Contact answered."""
    target = f"/integrations/{integration_id}/setup/authorize"
    if error == "access_denied":
        target += "?outcome=denied"
    else:
        # e.g. invalid_scope, server_error: shown once on the authorize page
        request.session[CC_ERROR_KEY] = f"{error}: {description}" if description else error
        target += "?outcome=error"
    if session_user_id(request) is None:
        return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)
    return RedirectResponse(target, status_code=303)
