"""Sign in, sign out, and the one-time first-administrator setup page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import RedirectResponse, Response

from ctctsync.control import services as svc
from ctctsync.control.errors import ValidationFailed
from ctctsync.web.deps import Db
from ctctsync.web.security import session_user_id, sign_in, sign_out, verify_csrf
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
    user_id = session_user_id(request)
    if isinstance(user_id, int) and svc.get_user(db, user_id) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html", {"email": "", "next_url": safe_next(next)})


@router.post("/login")
def login(
    request: Request,
    db: Db,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    """Check the password; on success start a new session and go where the user was going."""
    user = svc.authenticate(db, email.strip(), password) if email and password else None
    if user is None:
        return render(
            request,
            "login.html",
            {
                "email": email,
                "next_url": safe_next(next),
                "error": "That email and password do not match an account.",
            },
            status_code=401,
        )
    sign_in(request, user.id)
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request) -> Response:
    """End the session."""
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
    email: Annotated[str, Form()] = "",
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
    sign_in(request, user.id)
    flash(request, f"Welcome. You are signed in as {user.email}, an administrator.")
    return RedirectResponse("/integrations", status_code=303)
