"""Password sign-in with throttling and lockout (issue 8 §2).

Two counters slow a guesser down, both kept in the store (``sign_in_throttles``) so every
server process sharing it enforces the same limits:

- per account (the email tried, whether or not it exists): :data:`ACCOUNT_FREE_FAILURES`
  wrong passwords are answered at once; after that each attempt must wait
  :data:`FIRST_DELAY_SECONDS`, doubling per further failure; at :data:`ACCOUNT_LOCK_AFTER`
  failures the account is locked until an administrator unlocks it;
- per client address: :data:`ADDRESS_FREE_FAILURES` failures (across any accounts), then
  the same doubling delay, capped at :data:`MAX_DELAY_SECONDS`, and no lockout.

A counter restarts after :data:`FAILURE_WINDOW` without failures; a successful sign-in
clears the account's counter (not the address's: a guesser with one valid account must
not reset it). While a delay runs, attempts are refused *before* the password is checked
(429 + ``Retry-After`` on the page), so a right guess made too early does not get in.
Sign-ins, failures, lockouts and unlocks go to the audit log.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ctctsync.control.context import context
from ctctsync.control.errors import ServiceError
from ctctsync.control.models import AccountLockout, SignInThrottle, User
from ctctsync.control.services import audit
from ctctsync.control.services.users import authenticate, normalise_email

ACCOUNT_FREE_FAILURES = 5
ACCOUNT_LOCK_AFTER = 10
ADDRESS_FREE_FAILURES = 20
FIRST_DELAY_SECONDS = 30
MAX_DELAY_SECONDS = 15 * 60
FAILURE_WINDOW = timedelta(hours=1)
MAX_EMAIL_LENGTH = 320


class SignInThrottled(ServiceError):  # noqa: N818 -- says what happened
    """Too many failed sign-ins: try again in ``retry_after`` seconds, or (``locked``) once
    an administrator has unlocked the account."""

    def __init__(self, retry_after: int | None, *, locked: bool = False) -> None:
        message = (
            "This account is locked after too many failed sign-ins. An administrator can unlock it."
            if locked
            else f"Too many failed sign-ins. Try again in {retry_after} seconds."
        )
        super().__init__(message)
        self.retry_after = retry_after
        self.locked = locked


class AccountDeactivated(ServiceError):  # noqa: N818 -- says what happened
    """The password was right but an administrator deactivated the account."""

    def __init__(self) -> None:
        super().__init__("This account is deactivated. An administrator can re-activate it.")


def _account_key(email: str) -> str:
    return f"account:{email}"


def _address_key(address: str) -> str:
    return f"address:{address}"


def _delay(failures: int, free: int) -> float:
    """Seconds an attempt must wait after the last failure, given the failure count."""
    if failures < free:
        return 0.0
    return float(min(MAX_DELAY_SECONDS, FIRST_DELAY_SECONDS * 2 ** (failures - free)))


def _wait_left(db: Session, key: str, free: int, now: datetime) -> int:
    """Whole seconds until ``key`` may try again (0: now)."""
    row = db.get(SignInThrottle, key)
    if row is None or now - row.last_failure_at >= FAILURE_WINDOW:
        return 0
    left = (row.last_failure_at - now).total_seconds() + _delay(row.failures, free)
    return max(0, math.ceil(left))


def _count_failure(db: Session, key: str, now: datetime) -> int:
    """Add one failure to ``key`` atomically (any number of processes); returns the count."""
    stale = SignInThrottle.last_failure_at <= now - FAILURE_WINDOW
    bump = (
        sa.update(SignInThrottle)
        .where(SignInThrottle.key == key)
        .values(
            failures=sa.case((stale, 1), else_=SignInThrottle.failures + 1),
            last_failure_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if not int(getattr(db.execute(bump), "rowcount", 0) or 0):
        try:
            with db.begin_nested():
                db.add(SignInThrottle(key=key, failures=1, last_failure_at=now))
        except IntegrityError:  # another process inserted it first
            db.execute(bump)
    db.flush()
    count = db.scalar(sa.select(SignInThrottle.failures).where(SignInThrottle.key == key))
    return int(count or 1)


def attempt_sign_in(db: Session, email: str, password: str, *, address: str) -> User | None:
    """The user if ``password`` is right, None if wrong; ``SignInThrottled`` (checking
    nothing) while the account is locked or the account or address must wait;
    ``AccountDeactivated`` when the password is right but the account is deactivated (said
    only to someone who knows the password)."""
    email = normalise_email(email)
    now = context(db).now()
    if not _storable(email):  # no such account can exist; count it against the address only
        _unusable_email(db, address, now)
        return None
    if db.get(AccountLockout, email) is not None:
        raise SignInThrottled(None, locked=True)
    wait = max(
        _wait_left(db, _account_key(email), ACCOUNT_FREE_FAILURES, now),
        _wait_left(db, _address_key(address), ADDRESS_FREE_FAILURES, now),
    )
    if wait:
        raise SignInThrottled(wait)
    user = authenticate(db, email, password)
    if user is not None and not user.is_active:
        audit.record(db, "sign_in_failed", email=email, address=address, detail="deactivated")
        db.commit()
        raise AccountDeactivated
    if user is not None:
        db.execute(sa.delete(SignInThrottle).where(SignInThrottle.key == _account_key(email)))
        audit.record(db, "sign_in", email=email, user=user, address=address)
        db.commit()
        return user
    failures = _count_failure(db, _account_key(email), now)
    _count_failure(db, _address_key(address), now)
    audit.record(db, "sign_in_failed", email=email, address=address)
    if failures >= ACCOUNT_LOCK_AFTER:
        _lock(db, email, failures=failures, address=address)
    db.commit()
    return None


def _storable(email: str) -> bool:
    """Whether ``email`` fits the store's columns (PostgreSQL refuses NUL and long values)."""
    return len(email) <= MAX_EMAIL_LENGTH and "\x00" not in email


def _unusable_email(db: Session, address: str, now: datetime) -> None:
    """A sign-in with an email no account can have: wait, or fail (address counter only)."""
    wait = _wait_left(db, _address_key(address), ADDRESS_FREE_FAILURES, now)
    if wait:
        raise SignInThrottled(wait)
    _count_failure(db, _address_key(address), now)
    audit.record(db, "sign_in_failed", address=address, detail="unusable email")
    db.commit()


def _lock(db: Session, email: str, *, failures: int, address: str) -> None:
    if db.get(AccountLockout, email) is None:
        db.add(
            AccountLockout(
                email=email, locked_at=context(db).now(), failures=failures, address=address[:64]
            )
        )
        audit.record(
            db,
            "locked_out",
            email=email,
            address=address,
            detail=f"after {failures} failed sign-ins",
        )


def lock_account(db: Session, email: str, *, address: str = "") -> None:
    """Lock ``email`` now (what :data:`ACCOUNT_LOCK_AFTER` failures do)."""
    _lock(db, normalise_email(email), failures=ACCOUNT_LOCK_AFTER, address=address)
    db.commit()


def unlock_account(db: Session, actor: User, email: str, *, address: str = "") -> bool:
    """Clear ``email``'s lockout and failure count (administrators only); False if it was
    not locked."""
    audit.require_admin(actor)
    email = normalise_email(email)
    if not _storable(email):
        return False  # never locked: no lockout can hold it
    lockout = db.get(AccountLockout, email)
    db.execute(sa.delete(SignInThrottle).where(SignInThrottle.key == _account_key(email)))
    if lockout is None:
        db.commit()
        return False
    db.delete(lockout)
    audit.record(db, "unlocked", email=email, user=actor, address=address)
    db.commit()
    return True


def clear_failures(db: Session, email: str) -> bool:
    """Forget ``email``'s lockout and failure count, without committing or auditing (an
    administrator's password reset does this with its own audit row); True if it was
    locked."""
    email = normalise_email(email)
    db.execute(sa.delete(SignInThrottle).where(SignInThrottle.key == _account_key(email)))
    return bool(
        getattr(
            db.execute(sa.delete(AccountLockout).where(AccountLockout.email == email)),
            "rowcount",
            0,
        )
    )


def list_lockouts(db: Session, actor: User) -> list[AccountLockout]:
    """Locked accounts, oldest first (administrators only)."""
    audit.require_admin(actor)
    return list(db.scalars(sa.select(AccountLockout).order_by(AccountLockout.locked_at)))
