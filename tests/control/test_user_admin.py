"""Users administration (issue 12 §6) over a real store: create, invite, deactivate,
re-activate, reset a password; the rules that protect the last administrator; the audit
rows each leaves; and the ``ctctsync users ...`` commands."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ctctsync.cli import users_commands as commands
from ctctsync.control import services as svc
from ctctsync.control.clock import ManualClock
from ctctsync.control.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from ctctsync.control.models import User, UserInvite
from ctctsync.control.plane import ControlPlane
from ctctsync.control.services import user_admin

from .conftest import PASSWORD, make_settings
from .notify_helpers import smtp_server


def _events(db: Session, admin: User) -> list[tuple[str, str | None, str]]:
    return [(e.event, e.email, e.detail) for e in svc.list_audit_events(db, admin)]


def test_temporary_password_must_be_changed(db: Session, admin: User) -> None:
    user, temporary = svc.add_user(db, admin, "Dana@Example.com", address="198.51.100.7")
    assert temporary is not None and len(temporary) >= 16
    assert user.email == "dana@example.com" and user.must_change_password
    stored = db.scalar(sa.select(User.password_hash).where(User.id == user.id))
    assert stored is not None and temporary not in stored
    assert svc.authenticate(db, "dana@example.com", temporary) == user
    # the temporary password cannot be kept as the new one
    with pytest.raises(ValidationFailed) as same:
        svc.change_password(db, user, temporary, temporary, keep=None)
    assert "different" in same.value.errors["new_password"]
    svc.change_password(db, user, temporary, "a brand new passphrase", keep=None)
    assert not user.must_change_password
    event = _events(db, admin)
    assert ("user_created", "dana@example.com", "user, temporary password") in event


def test_rules_of_a_new_password(db: Session, admin: User) -> None:
    assert "8" in svc.PASSWORD_RULES and "1024" in svc.PASSWORD_RULES
    for bad in ("short", "x" * 1025):
        with pytest.raises(ValidationFailed) as err:
            svc.add_user(db, admin, "erin@example.com", password=bad)
        assert "password" in err.value.errors
    with pytest.raises(ValidationFailed) as err:
        svc.add_user(db, admin, "admin@example.com")
    assert "exists" in err.value.errors["email"]


def test_only_admins_add_users_and_the_first_is_an_admin(db: Session, plane: ControlPlane) -> None:
    with pytest.raises(ValidationFailed) as err:
        svc.add_user(db, None, "first@example.com", password=PASSWORD)
    assert "--admin" in err.value.errors["is_admin"]
    first, none = svc.add_user(db, None, "first@example.com", is_admin=True, password=PASSWORD)
    assert first.is_admin and none is None and not first.must_change_password
    with pytest.raises(PermissionDenied):  # once a user exists, someone must act
        svc.add_user(db, None, "second@example.com", is_admin=True, password=PASSWORD)
    plain, _ = svc.add_user(db, first, "plain@example.com")
    with pytest.raises(PermissionDenied):
        svc.add_user(db, plain, "third@example.com")
    with pytest.raises(PermissionDenied):
        svc.invite_user(db, plain, "third@example.com")


def test_invitation_works_once_until_it_expires(
    db: Session, admin: User, clock: ManualClock
) -> None:
    invite, token = svc.invite_user(db, admin, "Finn@Example.com", is_admin=True)
    stored = db.scalar(sa.select(UserInvite.token_hash).where(UserInvite.id == invite.id))
    assert stored == hashlib.sha256(token.encode()).hexdigest() and token not in stored
    link = svc.invite_url("https://sync.example.com/", token)
    assert parse_qs(urlsplit(link).query)["token"] == [token]
    assert invite.expires_at - invite.created_at == svc.INVITE_LIFETIME
    assert [i.email for i in svc.pending_invites(db, admin)] == ["finn@example.com"]
    assert svc.open_invite(db, token).email == "finn@example.com"

    with pytest.raises(ValidationFailed):
        svc.accept_invite(db, token, "short")
    user = svc.accept_invite(db, token, PASSWORD, address="203.0.113.5")
    assert user.is_admin and user.email == "finn@example.com" and not user.must_change_password
    assert svc.authenticate(db, "finn@example.com", PASSWORD) == user
    with pytest.raises(NotFound):  # used up
        svc.accept_invite(db, token, PASSWORD)
    assert svc.pending_invites(db, admin) == []

    # a second invitation to the same address replaces the first; expiry ends it
    _, old = svc.invite_user(db, admin, "gail@example.com")
    _, new = svc.invite_user(db, admin, "gail@example.com")
    with pytest.raises(NotFound):
        svc.open_invite(db, old)
    clock.advance(svc.INVITE_LIFETIME + timedelta(seconds=1))
    with pytest.raises(NotFound) as err:
        svc.accept_invite(db, new, PASSWORD)
    assert "Ask an administrator" in err.value.message
    assert [i.email for i in svc.pending_invites(db, admin)] == ["gail@example.com"]
    # no invitation for an existing account, nor a bad address
    for email in ("finn@example.com", "not an email"):
        with pytest.raises(ValidationFailed):
            svc.invite_user(db, admin, email)
    kinds = [e[0] for e in _events(db, admin)]
    assert kinds.count("user_invited") == 3 and "invite_accepted" in kinds


def test_withdrawn_invitation_and_account_made_meanwhile(db: Session, admin: User) -> None:
    invite, token = svc.invite_user(db, admin, "hal@example.com")
    svc.revoke_invite(db, admin, invite.id, address="198.51.100.1")
    with pytest.raises(NotFound):
        svc.open_invite(db, token)
    with pytest.raises(NotFound):
        svc.revoke_invite(db, admin, invite.id)
    # creating the account directly withdraws a pending invitation to it
    _, token = svc.invite_user(db, admin, "ivy@example.com")
    svc.add_user(db, admin, "ivy@example.com")
    with pytest.raises(NotFound):
        svc.accept_invite(db, token, PASSWORD)
    assert ("invite_revoked", "hal@example.com", "") in _events(db, admin)


def test_deactivation_ends_sessions_and_tokens_at_once(
    db: Session, admin: User, alice: User
) -> None:
    sid = svc.start_session(db, alice)
    _, token = svc.create_api_token(db, alice, "script")
    assert svc.session_user(db, sid) is not None and svc.user_for_token(db, token) == alice

    assert svc.deactivate_user(db, admin, alice.id, address="198.51.100.2") == 1
    assert not alice.is_active and alice.deactivated_at is not None
    assert svc.session_user(db, sid) is None
    assert svc.user_for_token(db, token) is None
    with pytest.raises(svc.AccountDeactivated):
        svc.attempt_sign_in(db, "alice@example.com", PASSWORD, address="198.51.100.3")
    # a wrong password still reads as a wrong password (nothing told to a guesser)
    assert svc.attempt_sign_in(db, "alice@example.com", "wrong!!!", address="x") is None
    with pytest.raises(Conflict):
        svc.deactivate_user(db, admin, alice.id)

    svc.reactivate_user(db, admin, alice.id, address="198.51.100.2")
    assert alice.is_active and alice.deactivated_at is None
    assert svc.user_for_token(db, token) == alice  # the token was kept
    assert svc.attempt_sign_in(db, "alice@example.com", PASSWORD, address="x") == alice
    with pytest.raises(Conflict):
        svc.reactivate_user(db, admin, alice.id)
    events = _events(db, admin)
    assert ("user_deactivated", "alice@example.com", "1 session(s) ended; API tokens refused") in (
        events
    )
    assert ("user_reactivated", "alice@example.com", "") in events
    assert ("sign_in_failed", "alice@example.com", "deactivated") in events


def test_nobody_deactivates_themselves_or_acts_once_deactivated(
    db: Session, admin: User, alice: User
) -> None:
    with pytest.raises(Conflict) as err:
        svc.deactivate_user(db, admin, admin.id)
    assert "yourself" in err.value.message
    second, _ = svc.add_user(db, admin, "root2@example.com", is_admin=True)
    svc.deactivate_user(db, second, admin.id)
    # a deactivated administrator acts no more (its last page may still be open somewhere);
    # so the last active administrator can only be deactivated by itself, which is refused
    # (two at once: test_two_admins_deactivating_each_other_leave_one)
    with pytest.raises(PermissionDenied):
        svc.deactivate_user(db, admin, second.id)
    with pytest.raises(PermissionDenied):
        svc.reset_password(db, admin, alice.id)
    with pytest.raises(PermissionDenied):
        svc.deactivate_user(db, alice, second.id)
    with pytest.raises(NotFound):
        svc.deactivate_user(db, second, 999_999)


def test_reset_password(db: Session, admin: User, alice: User) -> None:
    sid = svc.start_session(db, alice)
    svc.lock_account(db, "alice@example.com")
    secret = svc.reset_password(db, admin, alice.id, address="198.51.100.4")
    assert alice.must_change_password and svc.session_user(db, sid) is None
    assert svc.list_lockouts(db, admin) == []  # the administrator vouches for the person
    assert svc.authenticate(db, "alice@example.com", PASSWORD) is None
    assert svc.attempt_sign_in(db, "alice@example.com", secret, address="x") == alice
    with pytest.raises(Conflict):
        svc.reset_password(db, admin, admin.id)
    assert ("password_reset", "alice@example.com", "1 session(s) ended; lockout cleared") in (
        _events(db, admin)
    )
    assert svc.last_sign_ins(db)[alice.id] is not None
    assert user_admin.temporary_password() != user_admin.temporary_password()


def test_users_commands(
    plane: ControlPlane, db: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = plane.settings
    db.close()
    # no user yet: only an administrator can be the first
    assert commands.users_create("ops@example.com", PASSWORD, settings) == 2
    assert "--admin" in capsys.readouterr().err
    assert commands.users_create("ops@example.com", PASSWORD, settings, is_admin=True) == 0
    assert "Created administrator ops@example.com." in capsys.readouterr().out
    assert commands.users_create("kim@example.com", None, settings) == 0
    out = capsys.readouterr().out
    temporary = out.strip().splitlines()[-1]
    assert "Temporary password" in out and len(temporary) >= 16

    assert commands.users_invite("lee@example.com", settings, is_admin=True) == 0
    link = capsys.readouterr().out.strip().splitlines()[-1]
    assert link.startswith(settings.public_base_url + "/invite?token=")
    token = parse_qs(urlsplit(link).query)["token"][0]

    assert commands.users_reset_password("KIM@example.com", settings) == 0
    new_temporary = capsys.readouterr().out.strip().splitlines()[-1]
    assert new_temporary != temporary
    assert commands.users_deactivate("kim@example.com", settings) == 0
    assert "Deactivated kim@example.com" in capsys.readouterr().out
    assert commands.users_list(settings, as_json=True) == 0
    listed = json.loads(capsys.readouterr().out)
    status = {u["email"]: (u["role"], u["status"]) for u in listed["users"]}
    assert status == {
        "ops@example.com": ("administrator", "active"),
        "kim@example.com": ("user", "deactivated"),
    }
    assert [(i["email"], i["expired"]) for i in listed["invites"]] == [("lee@example.com", False)]
    assert commands.users_activate("kim@example.com", settings) == 0
    capsys.readouterr()
    assert commands.users_list(settings) == 0
    table = capsys.readouterr().out
    assert "kim@example.com" in table and "must change password" in table
    assert "lee@example.com" in table  # the pending invitation

    # refusals: the only active administrator, unknown users, bad input
    assert commands.users_deactivate("ops@example.com", settings) == 2
    assert "only active administrator" in capsys.readouterr().err
    assert commands.users_reset_password("nobody@example.com", settings) == 2
    assert "No user has the email" in capsys.readouterr().err
    assert commands.users_invite("kim@example.com", settings) == 2
    assert "already exists" in capsys.readouterr().err

    with plane.session() as check:
        svc.accept_invite(check, token, PASSWORD)
        ops = svc.user_by_email(check, "ops@example.com")
        kinds = [e.event for e in svc.list_audit_events(check, ops)]
        addresses = {
            e.address for e in svc.list_audit_events(check, ops) if e.event != "invite_accepted"
        }
    assert addresses == {"cli"}
    for kind in (
        "user_created",
        "user_invited",
        "password_reset",
        "user_deactivated",
        "user_reactivated",
        "invite_accepted",
    ):
        assert kind in kinds, kind
    # with a second administrator, the first can be deactivated from a shell
    assert commands.users_deactivate("ops@example.com", settings) == 0


def test_users_typer_wiring(plane: ControlPlane, db: Session) -> None:
    from typer.testing import CliRunner

    from ctctsync.cli.app import app

    db.close()
    env = {"CTCTSYNC_DATA_DIR": str(plane.settings.data_dir)}
    runner = CliRunner()
    done = runner.invoke(
        app, ["users", "create", "root@example.com", "--admin"], env=env,
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    done = runner.invoke(
        app, ["users", "create", "mo@example.com", "--temporary-password"], env=env
    )
    assert done.exit_code == 0 and "Temporary password" in done.output
    done = runner.invoke(app, ["users", "list", "--json"], env=env)
    assert done.exit_code == 0
    emails = [u["email"] for u in json.loads(done.output)["users"]]
    assert emails == ["root@example.com", "mo@example.com"]
    for verb in ("deactivate", "activate", "reset-password"):
        done = runner.invoke(app, ["users", verb, "mo@example.com"], env=env)
        assert done.exit_code == 0, (verb, done.output)
    done = runner.invoke(app, ["users", "invite", "nia@example.com"], env=env)
    assert done.exit_code == 0 and "/invite?token=" in done.output
    done = runner.invoke(app, ["users", "--help"], env=env)
    for verb in (
        "create",
        "list",
        "invite",
        "deactivate",
        "activate",
        "reset-password",
        "create-admin",
        "unlock",
    ):
        assert verb in done.output


def test_cli_invite_sends_email(
    plane: ControlPlane, db: Session, admin: User, capsys: pytest.CaptureFixture[str]
) -> None:
    db.close()
    settings = plane.settings
    # not configured: refused before anything is made
    assert commands.users_invite("ola@example.com", settings, send_email=True) == 2
    assert "CTCTSYNC_SMTP_HOST" in capsys.readouterr().err
    with smtp_server() as sink:
        mailing = settings.model_copy(
            update={"smtp_host": "127.0.0.1", "smtp_port": sink.port, "smtp_security": "none"}
        )
        assert commands.users_invite("ola@example.com", mailing, send_email=True) == 0
        out = capsys.readouterr().out
        link = next(line for line in out.splitlines() if "/invite?token=" in line)
        assert "E-mailed the link to ola@example.com." in out
        assert sink.received.wait(10)
    text = sink.messages[0].get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert link in text and "admin@example.com invited you" in text


def test_two_admins_deactivating_each_other_leave_one(
    store_url: str, tmp_path: Path, clock: ManualClock
) -> None:
    """At the same moment, A deactivates B and B deactivates A: one wins, the other is
    refused, and an active administrator remains (SQLite: the write lock taken up front;
    PostgreSQL: the active administrators' rows locked FOR UPDATE)."""
    settings = make_settings(tmp_path, database_url=store_url)
    planes = [ControlPlane(settings, clock=clock) for _ in range(2)]
    try:
        with planes[0].session() as db:
            a, _ = svc.add_user(db, None, "a@example.com", is_admin=True, password=PASSWORD)
            b, _ = svc.add_user(db, a, "b@example.com", is_admin=True, password=PASSWORD)
            ids = (a.id, b.id)
        start = threading.Barrier(2)
        outcomes: list[str] = []

        def deactivate_the_other(me: int) -> None:
            actor_id, target_id = ids[me], ids[1 - me]
            with planes[me].session() as db:
                actor = db.get(User, actor_id)
                assert actor is not None
                db.rollback()  # read, then wait for the other: no lock held meanwhile
                start.wait(10)
                try:
                    svc.deactivate_user(db, actor, target_id)
                    outcomes.append("done")
                except (Conflict, PermissionDenied) as exc:
                    outcomes.append(type(exc).__name__)

        threads = [threading.Thread(target=deactivate_the_other, args=(i,)) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(outcomes) in (["Conflict", "done"], ["PermissionDenied", "done"])
        with planes[0].session() as db:
            active = db.scalars(sa.select(User.email).where(User.is_admin, User.is_active))
            assert len(list(active)) == 1
    finally:
        for p in planes:
            p.close()
