"""Administrators' pages: users and their sign-in lockouts, the security audit log, and the
Constant Contact application (client id, secret, redirect URI) entered once."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from ctctsync.control import services as svc
from ctctsync.control.errors import ValidationFailed
from ctctsync.control.schemas import AppRegistrationIn, validated
from ctctsync.control.services.authorization import app_registration, save_app_registration
from ctctsync.web.deps import CurrentAdmin, Db
from ctctsync.web.forms import Form, field_messages, form_str
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
