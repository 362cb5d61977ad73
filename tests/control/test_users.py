"""Users, passwords and API tokens."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ctctsync.control import crypto
from ctctsync.control import services as svc
from ctctsync.control.clock import ManualClock
from ctctsync.control.errors import NotFound, PermissionDenied, ValidationFailed
from ctctsync.control.models import ApiToken, User, UserSession
from ctctsync.control.plane import ControlPlane
from ctctsync.control.services import users

from .conftest import PASSWORD, make_settings


def test_first_admin_only_once(db: Session) -> None:
    first = svc.ensure_first_admin(db, "Root@Example.com ", PASSWORD)
    assert first is not None and first.is_admin and first.email == "root@example.com"
    assert svc.ensure_first_admin(db, "other@example.com", PASSWORD) is None
    assert [u.email for u in svc.list_users(db)] == ["root@example.com"]


def test_password_is_hashed_and_checked(db: Session, alice: User) -> None:
    raw = db.execute(sa.text("select password_hash from users where id = :i"), {"i": alice.id})
    stored = raw.scalar_one()
    assert PASSWORD not in stored and stored.startswith("$argon2")
    assert svc.authenticate(db, "ALICE@example.com", PASSWORD) == alice
    assert svc.authenticate(db, "alice@example.com", "wrong password") is None
    assert svc.authenticate(db, "nobody@example.com", PASSWORD) is None


@pytest.mark.parametrize(
    ("email", "password", "field"),
    [
        pytest.param("not-an-email", PASSWORD, "email", id="bad-email"),
        pytest.param("alice@example.com", PASSWORD, "email", id="taken"),
        pytest.param("new@example.com", "short", "password", id="short-password"),
    ],
)
def test_create_user_rejects(
    db: Session, alice: User, email: str, password: str, field: str
) -> None:
    before = len(svc.list_users(db))
    with pytest.raises(ValidationFailed) as err:
        svc.create_user(db, email, password)
    assert field in err.value.errors
    assert len(svc.list_users(db)) == before


def test_api_token_lifecycle(db: Session, alice: User, bob: User, clock: ManualClock) -> None:
    token, plaintext = svc.create_api_token(db, alice, "ci script")
    assert plaintext.startswith("ctct_")
    stored = db.scalar(sa.select(ApiToken.token_hash).where(ApiToken.id == token.id))
    assert stored != plaintext and plaintext not in str(stored)
    assert svc.user_for_token(db, plaintext) == alice
    assert token.last_used_at == clock.now()
    clock.advance(timedelta(minutes=5))
    svc.user_for_token(db, plaintext)
    assert token.last_used_at == clock.now()
    assert svc.user_for_token(db, plaintext + "x") is None
    assert svc.user_for_token(db, "garbage") is None
    with pytest.raises(NotFound):
        svc.revoke_api_token(db, bob, token.id)
    svc.revoke_api_token(db, alice, token.id)
    assert svc.user_for_token(db, plaintext) is None


def test_token_needs_a_name(db: Session, alice: User) -> None:
    with pytest.raises(ValidationFailed) as err:
        svc.create_api_token(db, alice, "  ")
    assert err.value.errors == {"name": "Give the token a name, e.g. the script that uses it."}
    assert svc.list_api_tokens(db, alice) == []


# --------------------------------------------------------------------------- issue 8 §2


def _attempt(db: Session, email: str, password: str, address: str = "198.51.100.7") -> User | None:
    return svc.attempt_sign_in(db, email, password, address=address)


def test_account_backoff_then_lockout_until_an_admin_unlocks(
    db: Session, admin: User, alice: User, clock: ManualClock
) -> None:
    for _ in range(svc.ACCOUNT_FREE_FAILURES):
        assert _attempt(db, "alice@example.com", "wrong password") is None
    with pytest.raises(svc.SignInThrottled) as err:
        _attempt(db, "alice@example.com", PASSWORD)  # right, but too soon: not checked
    assert err.value.retry_after == svc.FIRST_DELAY_SECONDS and not err.value.locked
    last, failures = err.value, svc.ACCOUNT_FREE_FAILURES
    while not last.locked:  # an attacker who waits out every delay is locked out soon
        clock.advance(timedelta(seconds=last.retry_after or 0))
        try:
            _attempt(db, "alice@example.com", "wrong password")
            failures += 1
        except svc.SignInThrottled as exc:
            last = exc
    assert failures == svc.ACCOUNT_LOCK_AFTER and last.retry_after is None
    clock.advance(timedelta(days=3))  # a lockout does not expire by itself
    with pytest.raises(svc.SignInThrottled):
        _attempt(db, "alice@example.com", PASSWORD)
    assert [x.email for x in svc.list_lockouts(db, admin)] == ["alice@example.com"]
    with pytest.raises(PermissionDenied):
        svc.unlock_account(db, alice, "alice@example.com")
    svc.unlock_account(db, admin, "ALICE@example.com")
    assert _attempt(db, "alice@example.com", PASSWORD) == alice
    events = [(e.event, e.email) for e in svc.list_audit_events(db, admin)]
    assert events[0] == ("sign_in", "alice@example.com")  # newest first
    assert ("unlocked", "alice@example.com") in events
    assert ("locked_out", "alice@example.com") in events
    assert events.count(("sign_in_failed", "alice@example.com")) == svc.ACCOUNT_LOCK_AFTER
    with pytest.raises(PermissionDenied):
        svc.list_audit_events(db, alice)


def test_address_backoff_across_accounts_and_processes(
    plane: ControlPlane,
    db: Session,
    alice: User,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Unknown emails are checked against a dummy hash made at production cost: cheapen it.
    monkeypatch.setattr(users, "_DUMMY_HASH", crypto.hash_password("not-a-real-password"))
    for i in range(svc.ADDRESS_FREE_FAILURES):
        assert _attempt(db, f"guess{i}@example.com", "guess", "203.0.113.5") is None
    # Another process on the same store sees the same counters.
    other = ControlPlane(plane.settings, clock=clock)
    try:
        with other.session() as db2, pytest.raises(svc.SignInThrottled) as err:
            _attempt(db2, "alice@example.com", PASSWORD, "203.0.113.5")
    finally:
        other.close()
    assert err.value.retry_after == svc.FIRST_DELAY_SECONDS
    assert _attempt(db, "alice@example.com", PASSWORD, "192.0.2.1") == alice  # other address
    clock.advance(timedelta(seconds=svc.FIRST_DELAY_SECONDS))
    assert _attempt(db, "alice@example.com", PASSWORD, "203.0.113.5") == alice


def test_sessions_end_on_sign_out_and_password_change(
    db: Session, alice: User, bob: User, clock: ManualClock
) -> None:
    phone = svc.start_session(db, alice, address="192.0.2.1", user_agent="Phone")
    laptop = svc.start_session(db, alice, address="192.0.2.2", user_agent="Laptop")
    found = svc.session_user(db, phone)
    assert found is not None and found[0] == alice
    stored = db.scalars(sa.select(UserSession.token_hash)).all()
    assert phone not in stored and laptop not in stored  # only digests are kept
    assert [s.user_agent for s in svc.list_sessions(db, alice)] == ["Laptop", "Phone"]
    svc.end_session(db, phone)
    assert svc.session_user(db, phone) is None
    phone = svc.start_session(db, alice, address="192.0.2.1", user_agent="Phone")
    with pytest.raises(ValidationFailed):
        svc.change_password(db, alice, "not my password", "new password!", keep=laptop)
    assert svc.session_user(db, phone) is not None
    svc.change_password(db, alice, PASSWORD, "new password!", keep=laptop)
    assert svc.session_user(db, phone) is None and svc.session_user(db, laptop) is not None
    assert svc.authenticate(db, "alice@example.com", "new password!") == alice
    # Bob cannot end Alice's session; Alice can end all but this one.
    with pytest.raises(NotFound):
        svc.revoke_session(db, bob, svc.list_sessions(db, alice)[0].id)
    svc.start_session(db, alice, address="192.0.2.3", user_agent="Tablet")
    assert svc.revoke_other_sessions(db, alice, keep=laptop) == 1
    assert [s.user_agent for s in svc.list_sessions(db, alice)] == ["Laptop"]
    clock.advance(svc.SESSION_LIFETIME + timedelta(seconds=1))
    assert svc.session_user(db, laptop) is None  # expired, as the cookie is


@pytest.mark.postgres
def test_throttle_and_sessions_shared_on_postgresql(
    pg_url: str, tmp_path: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(users, "_DUMMY_HASH", crypto.hash_password("not-a-real-password"))
    settings = make_settings(tmp_path, database_url=pg_url)
    a, b = ControlPlane(settings, clock=clock), ControlPlane(settings, clock=clock)
    try:
        with a.session() as db:
            admin = svc.ensure_first_admin(db, "ops@example.com", PASSWORD)
            assert admin is not None
            sid = svc.start_session(db, admin, address="192.0.2.1", user_agent="x")
            for _ in range(svc.ACCOUNT_FREE_FAILURES):
                assert _attempt(db, "ops@example.com", "wrong password") is None
            # Emails no column can hold are wrong answers, not errors (PostgreSQL refuses them).
            for email in ("x" * 2000 + "@example.com", "ops\x00@example.com"):
                assert _attempt(db, email, "pass\x00word", "192.0.2.9") is None
        with b.session() as db, pytest.raises(svc.SignInThrottled):
            _attempt(db, "ops@example.com", PASSWORD)
        with b.session() as db:
            assert svc.session_user(db, sid) is not None
            svc.end_session(db, sid)
        with a.session() as db:
            assert not svc.unlock_account(db, admin, "ops\x00@example.com")
            assert svc.session_user(db, sid) is None
            events = [e.event for e in svc.list_audit_events(db, admin)]
            assert events[0] == "signed_out" and "sign_in_failed" in events
    finally:
        a.close()
        b.close()


def test_cli_unlock_and_keys_generate(plane: ControlPlane, db: Session, admin: User) -> None:
    from typer.testing import CliRunner

    from ctctsync.cli.app import app

    svc.lock_account(db, "alice@example.com", address="203.0.113.9")
    env = {"CTCTSYNC_DATA_DIR": str(plane.settings.data_dir)}
    runner = CliRunner()
    done = runner.invoke(app, ["users", "unlock", "Alice@Example.com"], env=env)
    assert done.exit_code == 0 and "Unlocked alice@example.com." in done.output
    db.expire_all()
    assert svc.list_lockouts(db, admin) == []
    assert ("unlocked", "alice@example.com") in [
        (e.event, e.email) for e in svc.list_audit_events(db, admin)
    ]
    db.rollback()  # end the read: SQLite lets one writer in, and the CLI is one
    done = runner.invoke(app, ["users", "unlock", "alice@example.com"], env=env)
    assert done.exit_code == 0 and "was not locked" in done.output
    done = runner.invoke(app, ["keys", "generate"])
    assert done.exit_code == 0
    assert (
        done.output.startswith("CTCTSYNC_SECRET_KEY=") and "CTCTSYNC_ENCRYPTION_KEY=" in done.output
    )
