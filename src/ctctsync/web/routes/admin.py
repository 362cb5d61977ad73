"""Administrators' pages: users and their sign-in lockouts, and the security audit log."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from ctctsync.control import services as svc
from ctctsync.web.deps import CurrentAdmin, Db
from ctctsync.web.forms import Form, form_str
from ctctsync.web.security import client_address, verify_csrf
from ctctsync.web.templating import flash, render

router = APIRouter(prefix="/admin", dependencies=[Depends(verify_csrf)])


@router.get("")
def admin_home() -> Response:
    """The users page is the admin menu's first page."""
    return RedirectResponse("/admin/users", status_code=303)


@router.get("/users")
def users_page(request: Request, db: Db, admin: CurrentAdmin) -> Response:
    """Every user, and the accounts locked after too many failed sign-ins."""
    return render(
        request,
        "admin/users.html",
        {
            "section": "admin",
            "tab": "users",
            "users": svc.list_users(db),
            "lockouts": svc.list_lockouts(db, admin),
        },
    )


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
        },
    )
