"""Administrators' pages: users (add by invitation or with a temporary password, deactivate,
re-activate, reset a password) and their sign-in lockouts, the security audit log, and the
Constant Contact application (client id, secret, redirect URI) entered once.

A temporary password or an invitation link is rendered in the answer to the POST that made
it, never put in a flash message (those travel in the session cookie) nor stored in clear."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import RedirectResponse, Response

from ctctsync.control import services as svc
from ctctsync.control.errors import Conflict, NotFound, ValidationFailed
from ctctsync.control.invite_mail import can_email, email_invitation
from ctctsync.control.models import User
from ctctsync.control.schemas import AppRegistrationIn, validated
from ctctsync.control.services.authorization import app_registration, save_app_registration
from ctctsync.validation import STORE_INT_MAX
from ctctsync.web.deps import CurrentAdmin, Db
from ctctsync.web.forms import Form, field_messages, form_str
from ctctsync.web.security import client_address, verify_csrf
from ctctsync.web.templating import flash, render

router = APIRouter(prefix="/admin", dependencies=[Depends(verify_csrf)])


@router.get("")
def admin_home() -> Response:
    """The users page is the admin menu's first page."""
    return RedirectResponse("/admin/users", status_code=303)


UserId = Annotated[int, Path(ge=1, le=STORE_INT_MAX, description="A user's id.")]
InviteId = Annotated[int, Path(ge=1, le=STORE_INT_MAX, description="An invitation's id.")]


def _users_page(
    request: Request,
    db: Db,
    admin: User,
    *,
    shown: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    code: int = 200,
) -> Response:
    """The users page; ``shown`` carries a secret made by this request (shown once)."""
    lockouts = svc.list_lockouts(db, admin)
    return render(
        request,
        "admin/users.html",
        {
            "section": "admin",
            "tab": "users",
            "users": svc.list_users(db),
            "me": admin,
            "last_sign_ins": svc.last_sign_ins(db),
            "locked": {lock.email for lock in lockouts},
            "lockouts": lockouts,
            "invites": svc.pending_invites(db, admin),
            "now": svc.context(db).now(),
            "invite_days": svc.INVITE_LIFETIME.days,
            "shown": shown,
            "values": values or {"email": "", "role": "user"},
            "errors": errors or {},
            "can_email": can_email(svc.context(db).settings),
        },
        status_code=code,
    )


@router.get("/users")
def users_page(request: Request, db: Db, admin: CurrentAdmin) -> Response:
    """Every user with role, status and last sign-in; invitations not accepted yet; the
    accounts locked after too many failed sign-ins; the form to add a user."""
    return _users_page(request, db, admin)


@router.post("/users")
def add_user(request: Request, db: Db, admin: CurrentAdmin, form: Form) -> Response:
    """Add a user: ``how=invite`` makes a one-time link, ``how=password`` an account with a
    temporary password; either is shown once on the answer."""
    values = {"email": form_str(form, "email").strip(), "role": form_str(form, "role")}
    is_admin = values["role"] == "admin"
    address = client_address(request)
    try:
        if form_str(form, "how") == "invite":
            invite, token = svc.invite_user(
                db, admin, values["email"], is_admin=is_admin, address=address
            )
            settings = svc.context(db).settings
            link = svc.invite_url(settings.public_base_url, token)
            shown = {
                "kind": "invite",
                "email": invite.email,
                "secret": link,
                "until": f"{invite.expires_at:%Y-%m-%d %H:%M} UTC",
                "emailed": "",  # or "sent", "failed" (with "email_problem")
                "email_problem": "",
            }
            if form_str(form, "send_email") == "1" and can_email(settings):
                failed = email_invitation(settings, invite, link, admin.email)
                shown["emailed"] = "failed" if failed else "sent"
                shown["email_problem"] = failed or ""
        else:
            user, temporary = svc.add_user(
                db, admin, values["email"], is_admin=is_admin, address=address
            )
            shown = {"kind": "created", "email": user.email, "secret": temporary or ""}
    except ValidationFailed as exc:
        errors = field_messages(exc.errors)
        return _users_page(request, db, admin, values=values, errors=errors, code=422)
    return _users_page(request, db, admin, shown=shown)


def _refusal(request: Request, exc: Conflict | NotFound) -> Response:
    flash(request, exc.message, "error")
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/users/{user_id}/deactivate")
def deactivate(request: Request, db: Db, admin: CurrentAdmin, user_id: UserId) -> Response:
    """Deactivate a user: sessions end now, API tokens are refused (audited)."""
    try:
        target = svc.get_user(db, user_id)
        ended = svc.deactivate_user(db, admin, user_id, address=client_address(request))
    except (Conflict, NotFound) as exc:
        return _refusal(request, exc)
    assert target is not None  # deactivate_user found it
    flash(request, f"{target.email} is deactivated; {ended} session(s) ended.")
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/users/{user_id}/activate")
def activate(request: Request, db: Db, admin: CurrentAdmin, user_id: UserId) -> Response:
    """Re-activate a deactivated user (audited)."""
    try:
        target = svc.reactivate_user(db, admin, user_id, address=client_address(request))
    except (Conflict, NotFound) as exc:
        return _refusal(request, exc)
    flash(request, f"{target.email} can sign in again.")
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/users/{user_id}/reset-password")
def reset_password(request: Request, db: Db, admin: CurrentAdmin, user_id: UserId) -> Response:
    """A temporary password for the user, shown once on this answer (audited)."""
    try:
        secret = svc.reset_password(db, admin, user_id, address=client_address(request))
    except (Conflict, NotFound) as exc:
        return _refusal(request, exc)
    target = svc.get_user(db, user_id)
    email = target.email if target is not None else ""
    return _users_page(
        request, db, admin, shown={"kind": "reset", "email": email, "secret": secret}
    )


@router.post("/invites/{invite_id}/revoke")
def revoke_invite(request: Request, db: Db, admin: CurrentAdmin, invite_id: InviteId) -> Response:
    """Withdraw an invitation: its link stops working (audited)."""
    try:
        invite = svc.revoke_invite(db, admin, invite_id, address=client_address(request))
    except NotFound as exc:
        return _refusal(request, exc)
    flash(request, f"The invitation to {invite.email} is withdrawn.")
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/users/unlock")
def unlock(request: Request, db: Db, admin: CurrentAdmin, form: Form) -> Response:
    """Clear one account's lockout (audited)."""
    email = form_str(form, "email")
    if svc.unlock_account(db, admin, email, address=client_address(request)):
        flash(request, f"{email} can sign in again.")
    else:
        flash(request, f"{email} was not locked.", "info")
    return RedirectResponse("/admin/users", status_code=303)


@router.get("/audit")
def audit_page(request: Request, db: Db, admin: CurrentAdmin) -> Response:
    """The newest security events: sign-ins, failures, lockouts, sign-outs."""
    return render(
        request,
        "admin/audit.html",
        {
            "section": "admin",
            "tab": "audit",
            "events": svc.list_audit_events(db, admin),
            "labels": svc.AUDIT_LABELS,
            # who did it (an administrator acting on an account), by the row's user id
            "actors": {u.id: u.email for u in svc.list_users(db)},
        },
    )


def _application_page(
    request: Request, db: Db, values: dict[str, str], errors: dict[str, str], code: int = 200
) -> Response:
    shown = app_registration(db)
    return render(
        request,
        "admin/application.html",
        {
            "section": "admin",
            "tab": "application",
            "app": shown,
            "values": values,
            "errors": errors,
            "default_redirect": svc.context(db).settings.oauth_redirect_uri,
            "default_authz": svc.context(db).settings.v3_authz_base_url,
        },
        status_code=code,
    )


@router.get("/application")
def application_page(request: Request, db: Db, admin: CurrentAdmin) -> Response:
    """The Constant Contact application: client id, secret (never shown), redirect URI."""
    shown = app_registration(db)
    settings = svc.context(db).settings
    # defaults stay empty fields, so that they follow the server's settings
    values = {
        "client_id": shown.client_id,
        "redirect_uri": ""
        if shown.redirect_uri == settings.oauth_redirect_uri
        else shown.redirect_uri,
        "authz_base_url": ""
        if shown.authz_base_url == settings.v3_authz_base_url
        else shown.authz_base_url,
    }
    return _application_page(request, db, values, {})


@router.post("/application")
def save_application(request: Request, db: Db, admin: CurrentAdmin, form: Form) -> Response:
    """Store the application (the secret encrypted; an empty secret field keeps it)."""
    values = {
        "client_id": form_str(form, "client_id"),
        "redirect_uri": form_str(form, "redirect_uri"),
        "authz_base_url": form_str(form, "authz_base_url"),
    }
    secret = form_str(form, "client_secret")
    clear = form_str(form, "clear_secret") == "1"
    try:
        data = validated(
            AppRegistrationIn,
            **values,
            client_secret="" if clear else (secret or None),
        )
        save_app_registration(db, admin, data)
    except ValidationFailed as exc:
        return _application_page(request, db, values, field_messages(exc.errors), 422)
    flash(request, "The Constant Contact application is saved.")
    return RedirectResponse("/admin/application", status_code=303)
