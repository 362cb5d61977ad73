"""Browser sessions kept server-side, so that ending one takes effect at once.

The signed cookie carries a random session id (:func:`start_session` returns it once);
the store keeps its SHA-256 digest in ``sessions``. Each page request resolves the id
with :func:`session_user`, which reads the row every time (nothing cached), so signing
out, changing the password or "sign out everywhere else" revokes a copied cookie on its
very next request. A session lives :data:`SESSION_LIFETIME` from sign-in, as the cookie.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ctctsync.control.context import context
from ctctsync.control.errors import NotFound
from ctctsync.control.models import User, UserSession
from ctctsync.control.services import audit

SESSION_LIFETIME = timedelta(hours=12)
"""From sign-in to expiry (the web app's cookie lives as long)."""
_TOUCH_EVERY = timedelta(minutes=1)
"""``last_seen_at`` is written at most this often: a page view should not always write."""


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def start_session(db: Session, user: User, *, address: str = "", user_agent: str = "") -> str:
    """Record a new session of ``user``; returns its id (for the cookie), only here."""
    now = context(db).now()
    db.execute(sa.delete(UserSession).where(UserSession.expires_at <= now))
    session_id = secrets.token_urlsafe(32)
    db.add(
        UserSession(
            token_hash=_digest(session_id),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + SESSION_LIFETIME,
            address=address[:64],
            user_agent=user_agent[:255],
        )
    )
    db.commit()
    return session_id


def session_user(db: Session, session_id: str) -> tuple[User, UserSession] | None:
    """The user and row of a live session, or None (unknown, revoked, expired, or its user
    deactivated)."""
    row = db.scalar(sa.select(UserSession).where(UserSession.token_hash == _digest(session_id)))
    if row is None:
        return None
    now = context(db).now()
    if row.expires_at <= now:
        return None
    if now - row.last_seen_at >= _TOUCH_EVERY:
        row.last_seen_at = now
        db.commit()
    user = db.get(User, row.user_id)
    # deactivation deletes the user's sessions; refusing here too closes the race with a
    # sign-in that was checking the password at that moment
    return (user, row) if user is not None and user.is_active else None


def end_session(db: Session, session_id: str, *, address: str = "") -> None:
    """Revoke one session (sign-out); unknown ids are ignored."""
    row = db.scalar(sa.select(UserSession).where(UserSession.token_hash == _digest(session_id)))
    if row is None:
        return
    user = db.get(User, row.user_id)
    db.delete(row)
    if user is not None:
        audit.record(db, "signed_out", email=user.email, user=user, address=address)
    db.commit()


def list_sessions(db: Session, user: User) -> list[UserSession]:
    """The user's live sessions, most recently seen first."""
    now = context(db).now()
    return list(
        db.scalars(
            sa.select(UserSession)
            .where(UserSession.user_id == user.id, UserSession.expires_at > now)
            .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc())
        )
    )


def revoke_session(db: Session, user: User, row_id: int) -> None:
    """End one of the user's sessions by its row id (NotFound if it is not theirs)."""
    row = db.get(UserSession, row_id)
    if row is None or row.user_id != user.id:
        raise NotFound("No such session.")
    db.delete(row)
    db.commit()


def delete_sessions(db: Session, user: User, *, keep: str | None) -> int:
    """Delete every session of ``user`` but ``keep``, without committing (the caller
    records why in the same transaction); returns how many."""
    query = sa.delete(UserSession).where(UserSession.user_id == user.id)
    if keep is not None:
        query = query.where(UserSession.token_hash != _digest(keep))
    result = db.execute(query)
    return int(getattr(result, "rowcount", 0) or 0)


def end_other_sessions(
    db: Session, user: User, *, keep: str | None, address: str, event: audit.AuditEventKind
) -> int:
    """End every session of ``user`` but ``keep`` (the caller's own), audit it as
    ``event`` and commit; returns how many ended. Used by "sign out everywhere else"
    (``sessions_ended``) and by a password change (``password_changed``)."""
    ended = delete_sessions(db, user, keep=keep)
    audit.record(
        db, event, email=user.email, user=user, address=address,
        detail=f"{ended} other session(s) ended",
    )  # fmt: skip
    db.commit()
    return ended


def revoke_other_sessions(db: Session, user: User, *, keep: str | None, address: str = "") -> int:
    """ "Sign out everywhere else": end every session of ``user`` but ``keep`` (the
    caller's own); returns how many ended."""
    return end_other_sessions(db, user, keep=keep, address=address, event="sessions_ended")
