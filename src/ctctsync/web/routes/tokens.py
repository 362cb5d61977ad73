"""Personal API tokens for the REST API: create (shown once), list, revoke."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from ctctsync.control import services as svc
from ctctsync.control.errors import ValidationFailed
from ctctsync.control.models import User
from ctctsync.control.schemas import TokenCreate, validated
from ctctsync.web.deps import CurrentUser, Db, TokenId
from ctctsync.web.forms import Form, field_messages, form_str
from ctctsync.web.security import verify_csrf
from ctctsync.web.templating import flash, render

router = APIRouter(prefix="/tokens", dependencies=[Depends(verify_csrf)])


def _page(
    request: Request,
    db: Db,
    user: User,
    *,
    created: str | None = None,
    created_name: str = "",
    name: str = "",
    errors: dict[str, str] | None = None,
    code: int = 200,
) -> Response:
    return render(
        request,
        "tokens.html",
        {
            "section": "tokens",
            "tokens": svc.list_api_tokens(db, user),
            "created": created,
            "created_name": created_name,
            "name": name,
            "errors": errors or {},
        },
        status_code=code,
    )


@router.get("")
def tokens_page(request: Request, db: Db, user: CurrentUser) -> Response:
    """The user's tokens (names and dates only: the secret is never shown again)."""
    return _page(request, db, user)


@router.post("")
def create_token(request: Request, db: Db, user: CurrentUser, form: Form) -> Response:
    """Create a token and show its plaintext on this response only."""
    name = form_str(form, "name")
    try:
        token, plaintext = svc.create_api_token(db, user, validated(TokenCreate, name=name).name)
    except ValidationFailed as exc:
        return _page(request, db, user, name=name, errors=field_messages(exc.errors), code=422)
    return _page(request, db, user, created=plaintext, created_name=token.name)


@router.post("/{token_id}/revoke")
def revoke(request: Request, db: Db, user: CurrentUser, token_id: TokenId) -> Response:
    """Revoke a token: the REST API refuses it from now on."""
    svc.revoke_api_token(db, user, token_id)
    flash(request, "The token is revoked.")
    return RedirectResponse("/tokens", status_code=303)
