"""What administrators do to users (issue 12 §6): create, invite, deactivate, re-activate,
reset a password. The Admin > Users page and ``ctctsync users ...`` both call these.

Rules kept here, whoever asks:

- a new user gets either the password given (the CLI's prompt) or a *temporary* one,
  returned once and never stored in clear; a temporary password must be changed at the next
  sign-in (``users.must_change_password``);
- an invitation is a one-time link (:func:`invite_url`) valid for :data:`INVITE_LIFETIME`;
  only the SHA-256 of its token is stored, so the link is shown once, to the administrator,
  who passes it on;
- deactivating ends the user's sessions at once and makes their API tokens refused (they are
  kept: re-activation brings them back); nobody deactivates themselves, and the last active
  administrator stays active, so the control plane always has one;
- a password reset also ends every session of the user and clears a sign-in lockout (the
  administrator vouches for the person);
- every change is a row of the audit log (``audit.record``) in the same transaction.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ctctsync.control.context import context
from ctctsync.control.crypto import hash_password
from ctctsync.control.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from ctctsync.control.models import AuditEvent, User, UserInvite
from ctctsync.control.services import audit
from ctctsync.control.services.sessions import delete_sessions
from ctctsync.control.services.signin import clear_failures
from ctctsync.control.services.users import (
    create_user,
    email_problem,
    normalise_email,
    password_problem,
)

INVITE_LIFETIME = timedelta(days=7)
"""How long an invitation link works; a new invitation to the same address replaces it."""
TEMPORARY_PASSWORD_BYTES = 12
"""Randomness of a temporary password: 12 bytes, 16 URL-safe characters (96 bits)."""


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def temporary_password() -> str:
    """A random password to hand over once (it satisfies the password rules)."""
    return secrets.token_urlsafe(TEMPORARY_PASSWORD_BYTES)


def invite_url(base_url: str, token: str) -> str:
    """The link an invited person opens: ``<public base URL>/invite?token=<token>`` (a
    ``token=`` parameter, which the server's access log scrubs)."""
    return f"{base_url.rstrip('/')}/invite?token={token}"


def user_by_email(db: Session, email: str) -> User:
    """The user with this email (any case); ``NotFound`` names the address otherwise."""
    user = db.scalar(sa.select(User).where(User.email == normalise_email(email)))
    if user is None:
        raise NotFound(f"No user has the email {normalise_email(email)!r}.")
    return user


def _require_active_admin(actor: User) -> None:
    """An administrator deactivated meanwhile (by another one) acts no more."""
    audit.require_admin(actor)
    if not actor.is_active:
        raise PermissionDenied("Your account is deactivated.")


def _target(db: Session, user_id: int) -> User:
    user = db.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


def _withdraw_invites(db: Session, email: str) -> int:
    """Delete the unaccepted invitations to ``email`` (a new one or the account replaces
    them); returns how many."""
    result = db.execute(
        sa.delete(UserInvite).where(UserInvite.email == email, UserInvite.accepted_at.is_(None))
    )
    return int(getattr(result, "rowcount", 0) or 0)


def add_user(
    db: Session,
    actor: User | None,
    email: str,
    *,
    is_admin: bool = False,
    password: str | None = None,
    address: str = "",
) -> tuple[User, str | None]:
    """Create a user with ``password``, or (None) with a temporary password that must be
    changed at the first sign-in. Returns the user and the temporary password (shown once;
    None when ``password`` was given).

    ``actor`` is the administrator doing it; None only while no user exists (the first
    administrator, from a shell), who must then be an administrator."""
    if actor is not None:
        _require_active_admin(actor)
    elif db.scalar(sa.select(sa.func.count()).select_from(User)):
        raise PermissionDenied("Only administrators may create users.")
    elif not is_admin:
        raise ValidationFailed(
            {"is_admin": "The first user must be an administrator (add --admin)."}
        )
    temporary = password is None
    secret = temporary_password() if password is None else password
    user = create_user(
        db, email, secret, is_admin=is_admin, must_change_password=temporary, commit=False
    )
    _withdraw_invites(db, user.email)
    audit.record(
        db, "user_created", email=user.email, user=actor, address=address,
        detail=", ".join(
            ["administrator" if is_admin else "user"]
            + (["temporary password"] if temporary else [])
        ),
    )  # fmt: skip
    db.commit()
    return user, (secret if temporary else None)


def invite_user(
    db: Session, actor: User, email: str, *, is_admin: bool = False, address: str = ""
) -> tuple[UserInvite, str]:
    """Invite ``email``: returns the invitation and its token (for :func:`invite_url`),
    shown once. An earlier unaccepted invitation to the same address stops working."""
    _require_active_admin(actor)
    email = normalise_email(email)
    if problem := email_problem(db, email):
        raise ValidationFailed({"email": problem})
    now = context(db).now()
    replaced = _withdraw_invites(db, email)
    token = secrets.token_urlsafe(32)
    invite = UserInvite(
        email=email,
        is_admin=is_admin,
        token_hash=_token_digest(token),
        created_by_id=actor.id,
        created_at=now,
        expires_at=now + INVITE_LIFETIME,
    )
    db.add(invite)
    role = "administrator" if is_admin else "user"
    detail = f"{role}, link valid until {invite.expires_at:%Y-%m-%d %H:%M} UTC"
    if replaced:
        detail += f"; replaces {replaced} earlier invitation(s)"
    audit.record(db, "user_invited", email=email, user=actor, address=address, detail=detail)
    db.commit()
    return invite, token


def pending_invites(db: Session, actor: User) -> list[UserInvite]:
    """Invitations not accepted yet (expired ones too, so they can be withdrawn or sent
    again), newest first (administrators only)."""
    audit.require_admin(actor)
    return list(
        db.scalars(
            sa.select(UserInvite)
            .where(UserInvite.accepted_at.is_(None))
            .order_by(UserInvite.created_at.desc(), UserInvite.id.desc())
        )
    )


def revoke_invite(db: Session, actor: User, invite_id: int, *, address: str = "") -> UserInvite:
    """Withdraw an unaccepted invitation: its link stops working."""
    _require_active_admin(actor)
    invite = db.get(UserInvite, invite_id)
    if invite is None or invite.accepted_at is not None:
        raise NotFound("No such invitation (it may have been accepted already).")
    db.delete(invite)
    audit.record(db, "invite_revoked", email=invite.email, user=actor, address=address)
    db.commit()
    return invite


def open_invite(db: Session, token: str) -> UserInvite:
    """The invitation a link names, if it can still be accepted; ``NotFound`` (one message
    for unknown, withdrawn, used and expired: the link's holder learns nothing more)."""
    invite = db.scalar(
        sa.select(UserInvite).where(UserInvite.token_hash == _token_digest(token))
    ) if 0 < len(token) <= 200 else None  # fmt: skip
    if invite is None or invite.accepted_at is not None or invite.expires_at <= context(db).now():
        raise NotFound(
            "This invitation link does not work any more: it expired, was withdrawn or was "
            "already used. Ask an administrator for a new one."
        )
    return invite


def accept_invite(db: Session, token: str, password: str, *, address: str = "") -> User:
    """Create the invited account with ``password`` and use up the link (once: a second
    accept of the same link, even at the same moment, gets ``NotFound``)."""
    invite = open_invite(db, token)
    if problem := password_problem(password):
        raise ValidationFailed({"password": problem})
    now = context(db).now()
    # mark it used first, conditionally: of two concurrent accepts only one updates the row
    used = db.execute(
        sa.update(UserInvite)
        .where(UserInvite.id == invite.id, UserInvite.accepted_at.is_(None))
        .values(accepted_at=now)
        .execution_options(synchronize_session=False)
    )
    if not int(getattr(used, "rowcount", 0) or 0):
        db.rollback()
        raise NotFound("This invitation link was already used.")
    try:
        user = create_user(db, invite.email, password, is_admin=invite.is_admin, commit=False)
    except ValidationFailed as exc:
        db.rollback()
        if "email" in exc.errors:  # created by an administrator meanwhile
            raise Conflict(
                f"An account for {invite.email} exists already: sign in, or ask an "
                "administrator to reset its password."
            ) from None
        raise
    audit.record(
        db, "invite_accepted", email=user.email, user=user, address=address,
        detail="administrator" if user.is_admin else "user",
    )  # fmt: skip
    db.commit()
    return user


def _active_admins(db: Session) -> list[User]:
    # FOR UPDATE (PostgreSQL): two administrators deactivating each other at the same moment
    # are serialised, so the "last active administrator" check cannot be raced past
    return list(
        db.scalars(
            sa.select(User).where(User.is_admin, User.is_active).order_by(User.id).with_for_update()
        )
    )


def deactivate_user(db: Session, actor: User, user_id: int, *, address: str = "") -> int:
    """Deactivate a user: no sign-in, their sessions end now, their API tokens are refused.
    Returns how many sessions ended. Refused for oneself and for the last active admin."""
    _require_active_admin(actor)
    target = _target(db, user_id)
    if target.id == actor.id:
        raise Conflict("You cannot deactivate yourself; another administrator can.")
    if not target.is_active:
        raise Conflict(f"{target.email} is deactivated already.")
    if target.is_admin and [u.id for u in _active_admins(db)] == [target.id]:
        raise Conflict(f"{target.email} is the last active administrator and stays active.")
    target.is_active = False
    target.deactivated_at = context(db).now()
    ended = delete_sessions(db, target, keep=None)
    audit.record(
        db, "user_deactivated", email=target.email, user=actor, address=address,
        detail=f"{ended} session(s) ended; API tokens refused",
    )  # fmt: skip
    db.commit()
    return ended


def reactivate_user(db: Session, actor: User, user_id: int, *, address: str = "") -> User:
    """Let a deactivated user sign in again (their API tokens work again)."""
    _require_active_admin(actor)
    target = _target(db, user_id)
    if target.is_active:
        raise Conflict(f"{target.email} is active already.")
    target.is_active = True
    target.deactivated_at = None
    audit.record(db, "user_reactivated", email=target.email, user=actor, address=address)
    db.commit()
    return target


def reset_password(db: Session, actor: User, user_id: int, *, address: str = "") -> str:
    """Give a user a temporary password (returned once) that they must change at their
    next sign-in; every session of theirs ends and a sign-in lockout is cleared. Not for
    one's own password (the Account page changes it, knowing the current one)."""
    _require_active_admin(actor)
    target = _target(db, user_id)
    if target.id == actor.id:
        raise Conflict("Change your own password on the Account page.")
    secret = temporary_password()
    target.password_hash = hash_password(secret)
    target.must_change_password = True
    ended = delete_sessions(db, target, keep=None)
    unlocked = clear_failures(db, target.email)
    detail = f"{ended} session(s) ended" + ("; lockout cleared" if unlocked else "")
    audit.record(
        db, "password_reset", email=target.email, user=actor, address=address, detail=detail
    )
    db.commit()
    return secret


def last_sign_ins(db: Session) -> dict[int, datetime]:
    """Each user's latest sign-in (from the audit log), by user id."""
    rows = db.execute(
        sa.select(AuditEvent.user_id, sa.func.max(AuditEvent.at))
        .where(AuditEvent.event == "sign_in", AuditEvent.user_id.is_not(None))
        .group_by(AuditEvent.user_id)
    )
    found: dict[int, datetime] = {}
    for user_id, at in rows:
        if user_id is not None and at is not None:
            found[int(user_id)] = at
    return found
