"""The OAuth callback Constant Contact (or the sandbox) redirects the browser to.

It is reachable signed out: what authorizes it is the one-time ``state`` the control plane
issued in ``start_authorization``, checked by ``complete_authorization``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from ctctsync.control import services as svc
from ctctsync.control.errors import ServiceError
from ctctsync.web.deps import Db
from ctctsync.web.routes.integrations import after_authorization
from ctctsync.web.security import session_user_id
from ctctsync.web.templating import render

router = APIRouter()


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
                "title": "Authorization not completed",
                "message": f"Constant Contact did not authorize ctctsync: {reason}",
            },
            status_code=400,
        )
    try:
        integ = svc.complete_authorization(db, state, code)
    except ServiceError as exc:
        return render(
            request,
            "error.html",
            {"title": "Authorization not completed", "message": exc.message},
            status_code=400,
        )
    if session_user_id(request) is None:
        return RedirectResponse(f"/login?next=/integrations/{integ.id}", status_code=303)
    return after_authorization(request, integ)
