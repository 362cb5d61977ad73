"""Users, passwords and personal API tokens."""

from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ctctsync.control.context import context
from ctctsync.control.crypto import (
    TOKEN_PREFIX,
    hash_api_token,
    hash_password,
    new_api_token,
    verify_password,
)
from ctctsync.control.errors import NotFound, ValidationFailed
from ctctsync.control.models import ApiToken, User
from ctctsync.control.services.sessions import end_other_sessions

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
"""Longer is refused: hashing a megabyte-long "password" on every sign-in costs CPU for
nothing (a passphrase of many words stays far below)."""
PASSWORD_RULES = (
    f"At least {MIN_PASSWORD_LENGTH} characters (at most {MAX_PASSWORD_LENGTH}); "
    "a few unrelated words make a strong one."
)
"""The password rules in one sentence, shown beside every password field before typing."""
# A hash to verify against when the email is unknown, so a sign-in takes as long whether
# or not the account exists (no user enumeration by timing).
_DUMMY_HASH = hash_password("not-a-real-password")


def normalise_email(email: str) -> str:
    """The form an email is stored and compared in."""
    return email.strip().lower()


_normalise_email = normalise_email


def password_problem(password: str) -> str | None:
    """What is wrong with ``password`` under :data:`PASSWORD_RULES`, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Use at most {MAX_PASSWORD_LENGTH} characters."
    return None


def email_problem(db: Session, email: str) -> str | None:
    """What is wrong with a new user's (normalised) ``email``, or None."""
    if len(email) > 320 or not _EMAIL_RE.match(email):
        return "Enter an email address such as ana@example.com."
    if db.scalar(sa.select(User.id).where(User.email == email)) is not None:
        return "A user with this email already exists."
    return None


def create_user(
    db: Session,
    email: str,
    password: str,
    *,
    is_admin: bool = False,
    must_change_password: bool = False,
    commit: bool = True,
) -> User:
    """Create a user; raises ``ValidationFailed`` for a bad or taken email or a password
    outside :data:`PASSWORD_RULES`. ``commit=False`` leaves the commit to the caller (who
    audits the creation in the same transaction)."""
    email = _normalise_email(email)
    errors: dict[str, str] = {}
    if problem := email_problem(db, email):
        errors["email"] = problem
    if problem := password_problem(password):
        errors["password"] = problem
    if errors:
        raise ValidationFailed(errors)
    user = User(
        email=email,
        password_hash=hash_password(password),
        is_admin=is_admin,
        must_change_password=must_change_password,
        created_at=context(db).now(),
    )
    db.add(user)
    if commit:
        db.commit()
    else:
        db.flush()
    return user


def authenticate(db: Session, email: str, password: str) -> User | None:
    """The user with this email and password, or None."""
    user = db.scalar(sa.select(User).where(User.email == _normalise_email(email)))
    if user is None:
        verify_password(_DUMMY_HASH, password)
        return None
    return user if verify_password(user.password_hash, password) else None


def change_password(
    db: Session, user: User, current: str, new: str, *, keep: str | None, address: str = ""
) -> int:
    """Set a new password after checking the current one, and end every other session of
    the user (a stolen cookie dies with the old password); ``keep`` is the caller's own
    session id. Returns how many sessions ended."""
    errors: dict[str, str] = {}
    if not verify_password(user.password_hash, current):
        errors["current_password"] = "This is not your current password."  # noqa: S105
    if problem := password_problem(new):
        errors["new_password"] = problem
    elif new == current:
        errors["new_password"] = "Choose a password different from the current one."  # noqa: S105
    if errors:
        raise ValidationFailed(errors)
    user.password_hash = hash_password(new)
    # a temporary password set by an administrator is now replaced: no more forced change
    user.must_change_password = False
    return end_other_sessions(db, user, keep=keep, address=address, event="password_changed")


def ensure_first_admin(db: Session, email: str, password: str) -> User | None:
    """Create an admin if the store has no user yet; returns it, or None if users exist."""
    if db.scalar(sa.select(sa.func.count()).select_from(User)):
        return None
    return create_user(db, email, password, is_admin=True)


def get_user(db: Session, user_id: int) -> User | None:
    """The user with this id, or None."""
    return db.get(User, user_id)


def list_users(db: Session) -> list[User]:
    """Every user, oldest first."""
    return list(db.scalars(sa.select(User).order_by(User.id)))


def create_api_token(db: Session, user: User, name: str) -> tuple[ApiToken, str]:
    """A new personal API token; the plaintext is returned here once and never again."""
    name = name.strip()
    if not name:
        raise ValidationFailed({"name": "Give the token a name, e.g. the script that uses it."})
    if len(name) > 100:
        raise ValidationFailed({"name": "Use at most 100 characters."})
    plaintext, digest = new_api_token()
    token = ApiToken(user_id=user.id, name=name, token_hash=digest, created_at=context(db).now())
    db.add(token)
    db.commit()
    return token, plaintext


def list_api_tokens(db: Session, user: User) -> list[ApiToken]:
    """The user's tokens, newest first."""
    return list(
        db.scalars(
            sa.select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())
        )
    )


def revoke_api_token(db: Session, user: User, token_id: int) -> None:
    """Delete one of the user's tokens (NotFound if it is not theirs)."""
    token = db.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise NotFound("No such API token.")
    db.delete(token)
    db.commit()


def user_for_token(db: Session, token: str) -> User | None:
    """The owner of a personal API token (and note when it was used), or None (unknown
    token, or its owner is deactivated)."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = db.scalar(sa.select(ApiToken).where(ApiToken.token_hash == hash_api_token(token)))
    if row is None or not row.user.is_active:
        # a deactivated user's tokens are kept (re-activation brings them back) but refused
        return None
    now = context(db).now()
    # Write at most once a minute: a script polling the API should not turn every read
    # into a write transaction.
    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=1):
        row.last_used_at = now
        db.commit()
    return row.user
