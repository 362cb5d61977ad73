"""Sign in (throttled: 429 + ``Retry-After``), sign out (ends the server-side session), the
one-time first-administrator setup page, and accepting an invitation (``/invite?token=``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import RedirectResponse, Response

from ctctsync.control import services as svc
from ctctsync.control.errors import NotFound, ServiceError, ValidationFailed
from ctctsync.control.models import User
from ctctsync.validation import EMAIL_MAX, PlainText
from ctctsync.web.deps import Db
from ctctsync.web.security import (
    client_address,
    session_id,
    sign_in,
    sign_out,
    user_agent,
    verify_csrf,
)
from ctctsync.web.templating import flash, render

router = APIRouter(dependencies=[Depends(verify_csrf)])


def safe_next(value: str | None) -> str:
    """A local path to go to after sign-in; anything else (other hosts, ``//x``) is ``/``."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/integrations"
    return value


def _no_user_yet(db: Db) -> bool:
    return not svc.list_users(db)


@router.get("/")
def home() -> Response:
    """The integrations list is the home page."""
    return RedirectResponse("/integrations", status_code=303)


@router.get("/login")
def login_page(request: Request, db: Db, next: str | None = None) -> Response:
    """The sign-in form (or the setup page while no user exists)."""
    if _no_user_yet(db):
        return RedirectResponse("/setup", status_code=303)
    sid = session_id(request)
    if sid is not None and svc.session_user(db, sid) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html", {"email": "", "next_url": safe_next(next)})


@router.post("/login")
def login(
    request: Request,
    db: Db,
    email: Annotated[PlainText, Form(max_length=EMAIL_MAX)] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    """Check the password; on success start a new session and go where the user was going.

    Too many failures for the account or the address answer 429 with ``Retry-After``
    (without checking the password) until the delay ends, or until an admin unlocks."""
    context = {"email": email, "next_url": safe_next(next)}
    try:
        user = (
            svc.attempt_sign_in(db, email, password, address=client_address(request))
            if email and password
            else None
        )
    except svc.AccountDeactivated as exc:
        return render(request, "login.html", {**context, "error": exc.message}, status_code=403)
    except svc.SignInThrottled as exc:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        return render(
            request,
            "login.html",
            {**context, "error": exc.message},
            status_code=429,
            headers=headers,
        )
    if user is None:
        error = "That email and password do not match an account."
        return render(request, "login.html", {**context, "error": error}, status_code=401)
    _start(request, db, user)
    return RedirectResponse(safe_next(next), status_code=303)


def _start(request: Request, db: Db, user: User) -> None:
    """Open a server-side session for ``user`` and put its id in a fresh cookie."""
    sid = svc.start_session(
        db, user, address=client_address(request), user_agent=user_agent(request)
    )
    sign_in(request, user.id, sid)


@router.post("/logout")
def logout(request: Request, db: Db) -> Response:
    """End the session, server-side too: a copy of the cookie no longer works."""
    sid = session_id(request)
    if sid is not None:
        svc.end_session(db, sid, address=client_address(request))
    sign_out(request)
    flash(request, "You are signed out.", "info")
    return RedirectResponse("/login", status_code=303)


@router.get("/setup")
def setup_page(request: Request, db: Db) -> Response:
    """Create the first administrator; gone once any user exists."""
    if not _no_user_yet(db):
        return RedirectResponse("/login", status_code=303)
    return render(request, "setup.html", {"email": "", "errors": {}})


@router.post("/setup")
def setup(
    request: Request,
    db: Db,
    email: Annotated[PlainText, Form(max_length=EMAIL_MAX)] = "",
    password: Annotated[str, Form()] = "",
    password_again: Annotated[str, Form()] = "",
) -> Response:
    """Create the first administrator and sign them in."""
    if not _no_user_yet(db):
        return RedirectResponse("/login", status_code=303)
    errors: dict[str, str] = {}
    email = email.strip()
    if password != password_again:
        errors["password_again"] = "The two passwords differ."  # noqa: S105
    user = None
    if not errors:
        try:
            user = svc.ensure_first_admin(db, email, password)
        except ValidationFailed as exc:
            errors = {**exc.errors, **errors} if exc.errors else {"email": exc.message}
    if user is None:
        if not errors:  # someone else finished setup first
            return RedirectResponse("/login", status_code=303)
        return render(request, "setup.html", {"email": email, "errors": errors}, status_code=422)
    _start(request, db, user)
    flash(request, f"Welcome. You are signed in as {user.email}, an administrator.")
    return RedirectResponse("/integrations", status_code=303)


# --------------------------------------------------------------------------- invitations


def _invite_page(
    request: Request,
    *,
    token: str,
    invite_email: str | None,
    errors: dict[str, str] | None = None,
    problem: str | None = None,
    code: int = 200,
) -> Response:
    return render(
        request,
        "invite.html",
        {
            "token": token,
            "invite_email": invite_email,
            "errors": errors or {},
            "problem": problem,
        },
        status_code=code,
    )


@router.get("/invite")
def invite_page(request: Request, db: Db, token: str = "") -> Response:
    """An invited person chooses their password (the link works once, until it expires)."""
    try:
        invite = svc.open_invite(db, token)
    except NotFound as exc:
        return _invite_page(request, token="", invite_email=None, problem=exc.message, code=404)
    return _invite_page(request, token=token, invite_email=invite.email)


@router.post("/invite")
def accept_invite(
    request: Request,
    db: Db,
    token: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form()] = "",
    password_again: Annotated[str, Form()] = "",
) -> Response:
    """Create the invited account, use up the link and sign the new user in."""
    try:
        invite = svc.open_invite(db, token)
    except NotFound as exc:
        return _invite_page(request, token="", invite_email=None, problem=exc.message, code=404)
    email = invite.email
    if password != password_again:
        errors = {"password_again": "The two passwords differ."}
        return _invite_page(request, token=token, invite_email=email, errors=errors, code=422)
    try:
        user = svc.accept_invite(db, token, password, address=client_address(request))
    except ValidationFailed as exc:
        return _invite_page(request, token=token, invite_email=email, errors=exc.errors, code=422)
    except ServiceError as exc:  # used meanwhile, or the account exists already
        return _invite_page(request, token="", invite_email=None, problem=exc.message, code=409)
    _start(request, db, user)
    role = "an administrator" if user.is_admin else "a user"
    flash(request, f"Welcome. You are signed in as {user.email}, {role}.")
    return RedirectResponse("/integrations", status_code=303)
