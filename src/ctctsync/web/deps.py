"""Request dependencies of the page routes (``Annotated`` aliases, FastAPI style).

``Db`` is a session from the control plane (services read their context from it);
``CurrentUser`` is the signed-in user or a redirect to ``/login``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from ctctsync.control import services as svc
from ctctsync.control.models import User
from ctctsync.control.plane import ControlPlane
from ctctsync.web.security import session_user_id


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
    """The signed-in user (also put on ``request.state.user`` for the layout)."""
    user_id = session_user_id(request)
    user = svc.get_user(db, user_id) if isinstance(user_id, int) else None
    if user is None:
        target = request.url.path
        if request.method != "GET":
            target = "/"
        raise SignInRequired(target)
    request.state.user = user
    return user


CurrentUser = Annotated[User, Depends(current_user)]
