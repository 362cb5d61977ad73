"""Users, passwords and API tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ctctsync.control import services as svc
from ctctsync.control.clock import ManualClock
from ctctsync.control.errors import NotFound, ValidationFailed
from ctctsync.control.models import ApiToken, User

from .conftest import PASSWORD


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
