"""The signed-in user's account: their sessions (and ending them) and their password; and
the page a user who signed in with a temporary password must pass first."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from ctctsync.control import services as svc
from ctctsync.control.errors import ValidationFailed
from ctctsync.control.models import User
from ctctsync.web.deps import CurrentUser, Db
from ctctsync.web.forms import Form, field_messages, form_str
from ctctsync.web.security import client_address, session_id, verify_csrf
from ctctsync.web.templating import flash, render

router = APIRouter(prefix="/account", dependencies=[Depends(verify_csrf)])


def _page(
    request: Request, db: Db, user: User, *, errors: dict[str, str] | None = None, code: int = 200
) -> Response:
    return render(
        request,
        "account.html",
        {
            "section": "account",
            "sessions": svc.list_sessions(db, user),
            "this_session": getattr(request.state, "session_row_id", None),
            "errors": errors or {},
        },
        status_code=code,
    )


def _password_page(
    request: Request, *, errors: dict[str, str] | None = None, code: int = 200
) -> Response:
    return render(
        request,
        "account_password.html",
        {"section": "account", "errors": errors or {}},
        status_code=code,
    )


@router.get("")
def account_page(request: Request, db: Db, user: CurrentUser) -> Response:
    """The user's open sessions (created, last seen, address, browser) and password form."""
    return _page(request, db, user)


@router.get("/password")
def password_page(request: Request, user: CurrentUser) -> Response:
    """Choose a new password: where a temporary password (an administrator's reset) leads
    after sign-in; otherwise the Account page's form."""
    if not user.must_change_password:
        return RedirectResponse("/account#change-password-form", status_code=303)
    return _password_page(request)


@router.post("/password")
def change_password(request: Request, db: Db, user: CurrentUser, form: Form) -> Response:
    """Change the password; every other session of the user ends. A forced change (a
    temporary password) then opens the rest of the site."""
    forced = user.must_change_password

    def refused(errors: dict[str, str]) -> Response:
        if forced:
            return _password_page(request, errors=errors, code=422)
        return _page(request, db, user, errors=errors, code=422)

    new = form_str(form, "new_password")
    if new != form_str(form, "new_password_again"):
        return refused({"new_password_again": "The two passwords differ."})
    try:
        ended = svc.change_password(
            db,
            user,
            form_str(form, "current_password"),
            new,
            keep=session_id(request),
            address=client_address(request),
        )
    except ValidationFailed as exc:
        return refused(field_messages(exc.errors))
    if forced:
        flash(request, "Your password is changed. Welcome.")
        return RedirectResponse("/integrations", status_code=303)
    flash(request, f"Your password is changed. {ended} other session(s) were signed out.")
    return RedirectResponse("/account", status_code=303)


@router.post("/sessions/revoke-others")
def revoke_others(request: Request, db: Db, user: CurrentUser) -> Response:
    """Sign out everywhere else."""
    ended = svc.revoke_other_sessions(
        db, user, keep=session_id(request), address=client_address(request)
    )
    flash(request, f"{ended} other session(s) signed out.")
    return RedirectResponse("/account", status_code=303)


@router.post("/sessions/{row_id}/revoke")
def revoke(request: Request, db: Db, user: CurrentUser, row_id: int) -> Response:
    """End one of the user's sessions (ending this one signs this browser out)."""
    svc.revoke_session(db, user, row_id)
    flash(request, "The session is signed out.")
    return RedirectResponse("/account", status_code=303)
