"""The security audit log: sign-ins, failures, lockouts, what ended sessions, and what
administrators did to users (created, invited, deactivated, re-activated, password reset).

Rows are written by the services that do the thing (sign-in, unlock, password change), in
the same transaction, and read by administrators (the Admin > Audit log page,
``GET /api/v1/audit``). A row never holds a password, a token or a session id.
"""

from __future__ import annotations

from typing import Final, Literal, cast, get_args

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ctctsync.control.context import context
from ctctsync.control.errors import PermissionDenied
from ctctsync.control.models import AuditEvent, User

AuditEventKind = Literal[
    "sign_in",
    "sign_in_failed",
    "locked_out",
    "unlocked",
    "signed_out",
    "password_changed",
    "sessions_ended",
    "user_created",
    "user_invited",
    "invite_revoked",
    "invite_accepted",
    "user_deactivated",
    "user_reactivated",
    "password_reset",
]
AUDIT_EVENTS: Final = cast(tuple[AuditEventKind, ...], get_args(AuditEventKind))

AUDIT_LABELS: Final[dict[AuditEventKind, str]] = {
    "sign_in": "Signed in",
    "sign_in_failed": "Wrong password",
    "locked_out": "Account locked",
    "unlocked": "Account unlocked",
    "signed_out": "Signed out",
    "password_changed": "Password changed",
    "sessions_ended": "Other sessions ended",
    "user_created": "User created",
    "user_invited": "User invited",
    "invite_revoked": "Invitation withdrawn",
    "invite_accepted": "Invitation accepted",
    "user_deactivated": "User deactivated",
    "user_reactivated": "User re-activated",
    "password_reset": "Password reset by an administrator",
}
"""How each event reads on the audit page."""


def record(
    db: Session,
    event: AuditEventKind,
    *,
    email: str | None = None,
    user: User | None = None,
    address: str = "",
    detail: str = "",
) -> None:
    """Add one event to the session (the caller's commit writes it with the change)."""
    db.add(
        AuditEvent(
            at=context(db).now(),
            event=event,
            email=email,
            user_id=user.id if user is not None else None,
            address=address[:64],
            detail=detail,
        )
    )


def require_admin(user: User) -> None:
    """Refuse (``PermissionDenied``) unless ``user`` is an administrator."""
    if not user.is_admin:
        raise PermissionDenied("Only administrators may do this.")


def list_audit_events(db: Session, actor: User, *, limit: int = 200) -> list[AuditEvent]:
    """The newest ``limit`` events, newest first (administrators only)."""
    require_admin(actor)
    return list(
        db.scalars(
            sa.select(AuditEvent)
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
            .limit(max(1, min(limit, 1000)))
        )
    )
