"""Request dependencies of the page routes and the REST API (``Annotated`` aliases,
FastAPI style).

``Plane`` is the app's control plane; ``Db`` is a session from it (services read their
context from it). Who is asking differs by door: ``CurrentUser`` is the signed-in user of a
page (its server-side session must be live) or a redirect to ``/login``, and
``CurrentAdmin`` that user if an admin, or a 403; ``ApiUser`` is the owner of a REST call's
bearer token or a 401, and ``ApiAdmin`` that owner if an admin, or a 403.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from ctctsync.control import services as svc
from ctctsync.control.errors import PermissionDenied
from ctctsync.control.models import User
from ctctsync.control.plane import ControlPlane
from ctctsync.validation import RUN_ID_PATTERN, STORE_INT_MAX
from ctctsync.web.errors import Unauthenticated
from ctctsync.web.security import session_id

# Path and query parameters naming stored rows, bounded where the URL is parsed: a number
# beyond the store's integer (2**31 on PostgreSQL, 2**63 on SQLite) or a NUL byte never
# reaches a query. The REST API answers 422 and documents the bounds; pages answer 404.
IntegrationId = Annotated[
    int, Path(ge=1, le=STORE_INT_MAX, description="An integration's id.", examples=[1])
]
TokenId = Annotated[
    int, Path(ge=1, le=STORE_INT_MAX, description="An API token's id.", examples=[1])
]
RunId = Annotated[str, Path(pattern=RUN_ID_PATTERN, description="A run's id (32 hex digits).")]
LogSeq = Annotated[
    int, Query(ge=0, le=STORE_INT_MAX, description="The last log line seen (its seq).")
]


class SignInRequired(Exception):  # noqa: N818 - it is a redirect, not an error
    """Raised by ``current_user`` when nobody is signed in; answered with a redirect."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def get_plane(request: Request) -> ControlPlane:
    """The control plane the app was created with."""
    plane: ControlPlane = request.app.state.control_plane
    return plane


Plane = Annotated[ControlPlane, Depends(get_plane)]


def get_db(plane: Plane) -> Iterator[Session]:
    """One control-plane session per request."""
    with plane.session() as db:
        yield db


Db = Annotated[Session, Depends(get_db)]


def login_url(next_path: str) -> str:
    """``/login?next=...`` for a path of this site."""
    return f"/login?next={quote(next_path, safe='/')}" if next_path not in ("", "/") else "/login"


def current_user(request: Request, db: Db) -> User:
    """The signed-in user (also put on ``request.state.user`` for the layout).

    The cookie's session id must name a live row of ``sessions``, read on every request
    (nothing cached), so a session ended elsewhere is refused on its next request. A user
    who must change a temporary password reaches only :data:`PASSWORD_CHANGE_PATH`."""
    sid = session_id(request)
    found = svc.session_user(db, sid) if sid is not None else None
    if found is None:
        target = request.url.path
        if request.method != "GET":
            target = "/"
        raise SignInRequired(target)
    user, row = found
    request.state.user = user
    request.state.session_row_id = row.id
    if user.must_change_password and request.url.path not in _OPEN_WITH_TEMPORARY_PASSWORD:
        raise PasswordChangeRequired
    return user


CurrentUser = Annotated[User, Depends(current_user)]


class PasswordChangeRequired(Exception):  # noqa: N818 - it is a redirect, not an error
    """Raised by ``current_user`` while the user signed in with a temporary password (an
    administrator's reset): every page but the password form and sign-out redirects there."""


PASSWORD_CHANGE_PATH = "/account/password"  # noqa: S105 -- a URL path
"""The page a user with a temporary password is sent to (and the form posts to)."""
_OPEN_WITH_TEMPORARY_PASSWORD = frozenset({PASSWORD_CHANGE_PATH, "/logout"})


_bearer = HTTPBearer(auto_error=False, description="A personal API token (ctct_...).")


def api_user(
    db: Db, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> User:
    """The owner of the REST call's bearer token; 401 otherwise."""
    if credentials is None:
        raise Unauthenticated("Send a personal API token: Authorization: Bearer ctct_...")
    user = svc.user_for_token(db, credentials.credentials)
    if user is None:
        raise Unauthenticated("The API token is invalid or has been revoked.")
    return user


ApiUser = Annotated[User, Depends(api_user)]


def current_admin(user: CurrentUser) -> User:
    """The signed-in user of a page, who must be an admin; a 403 page otherwise."""
    if not user.is_admin:
        raise PermissionDenied("Only administrators may see this page.")
    return user


CurrentAdmin = Annotated[User, Depends(current_admin)]


def api_admin(user: ApiUser) -> User:
    """The REST call's user, who must be an admin; 403 otherwise."""
    if not user.is_admin:
        raise PermissionDenied("Only administrators may do this.")
    return user


ApiAdmin = Annotated[User, Depends(api_admin)]
