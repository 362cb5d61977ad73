"""API v3 authorization in the control plane, over the real sandbox (HTTP on loopback) and
both stores (SQLite file, PostgreSQL schema).

The authorization-code flow with PKCE through the service layer (what the REST API and the
browser callback call), tokens stored encrypted, the refresh a run makes first (rotated pair
stored), a refused refresh token (needs_reauth, not scheduled), and one refresh when two
threads or two processes need a fresh token of one integration at once (v3 reference §1.2).
"""

from __future__ import annotations

import multiprocessing
import re
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from control.conftest import make_settings
from ctctsync.api.v3 import oauth
from ctctsync.control import services as svc
from ctctsync.control.clock import ManualClock
from ctctsync.control.database import create_store_engine, downgrade_database, upgrade_database
from ctctsync.control.models import Integration, OAuthState, Run, RunLog, User
from ctctsync.control.plane import ControlPlane
from ctctsync.control.schemas import IntegrationCreate
from ctctsync.control.services import authorization as auth
from ctctsync.control.services.tokens import StoreTokenVault, token_keeper, vault_record
from ctctsync.control.settings import ControlSettings
from ctctsync.control.worker import RunExecutor, _Setup
from ctctsync.errors import ReauthorizeRequired
from ctctsync.sandbox import Sandbox
from ctctsync.sandbox.v3.tokens import CAMPAIGN_CREATOR_PRIVILEGES

REDIRECT = "http://127.0.0.1:8000/oauth/callback"


# ----------------------------------------------------------------------------- helpers


def consent(authorize_url: str, email: str, password: str, decision: str = "allow") -> str:
    """Drive the sandbox's v3 sign-in and consent pages like a browser; the ``Location``
    Constant Contact sends the browser back to (``redirect_uri?code=..&state=..``)."""
    with httpx.Client(timeout=10, follow_redirects=False) as http:
        page = http.get(authorize_url)
        assert page.status_code == 200, page.text
        hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(authorize_url))
        action = re.search(r'<form method="post" action="([^"]+)" id="signin"', page.text)
        assert action, page.text
        signed = http.post(
            origin + action.group(1), data={**hidden, "email": email, "password": password}
        )
        assert signed.status_code == 200 and 'id="consent"' in signed.text, signed.text
        ticket = re.search(r'name="ticket" value="([^"]+)"', signed.text)
        assert ticket
        answer = http.post(
            origin + action.group(1),
            data={"step": "consent", "ticket": ticket.group(1), "decision": decision},
        )
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@pytest.fixture
def v3_sandbox(sandbox_factory: Any) -> Sandbox:
    """A small sandbox; its token endpoint's 1/s limit is CC's (our pacer keeps to it)."""
    return sandbox_factory()  # type: ignore[no-any-return]


@pytest.fixture
def v3_plane(
    store_url: str, tmp_path: Path, clock: ManualClock, v3_sandbox: Sandbox
) -> Iterator[ControlPlane]:
    creds = v3_sandbox.credentials
    settings = make_settings(
        tmp_path,
        database_url=store_url,
        cc_base_url=v3_sandbox.base_url,
        client_id=creds.api_key,
        client_secret=creds.client_secret,
        public_base_url="http://127.0.0.1:8000",
        cc_qps_limit=None,
    )
    cp = ControlPlane(settings, clock=clock)
    yield cp
    cp.close()


@pytest.fixture
def vdb(v3_plane: ControlPlane) -> Iterator[Session]:
    with v3_plane.session() as session:
        yield session


@pytest.fixture
def owner(vdb: Session) -> User:
    user = svc.ensure_first_admin(vdb, "admin@example.com", "correct horse battery")
    assert user is not None
    return user


def authorized(db: Session, user: User, sb: Sandbox, name: str = "acme") -> Integration:
    """A v3 integration authorized through the service layer (as the REST API does)."""
    integ = svc.create_integration(db, user, IntegrationCreate(name=name))
    auth.settle_new_integration(db, integ, "v3", tables_given=False)
    url = svc.start_authorization(db, integ)
    back = query_of(consent(url, sb.credentials.email, sb.credentials.password))
    return svc.complete_authorization(db, back["state"], back["code"], user)


def expire_stored_token(plane: ControlPlane, integration_id: int) -> None:
    """Make the stored access token expired (as it is a day after authorizing)."""
    vault = StoreTokenVault(plane.context, integration_id)
    with vault.locked() as row:
        record = row.load()
        assert record is not None
        row.save(replace(record.tokens, expires_at=datetime.now(UTC)))


def stored(plane: ControlPlane, integration_id: int) -> oauth.TokenSet:
    record = StoreTokenVault(plane.context, integration_id).load()
    assert record is not None
    return record.tokens


def store_text(plane: ControlPlane) -> str:
    """Every value of the tables holding credentials, as text (what a store dump shows)."""
    with plane.engine.connect() as conn:
        rows = [
            *conn.execute(sa.text("SELECT * FROM integrations")),
            *conn.execute(sa.text("SELECT * FROM oauth_states")),
        ]
    return "\n".join(str(tuple(r)) for r in rows)


def prepare(plane: ControlPlane, db: Session, integ: Integration) -> Any:
    """Queue and claim a run of ``integ`` and build its config as a worker does."""
    run = svc.run_now(db, integ)
    assert plane.claim_next("w1", run.id) == run.id
    return RunExecutor(plane, run.id, "w1")._prepare()


# ----------------------------------------------------------------------------- tests


def test_new_integrations_default_to_v3(vdb: Session, owner: User) -> None:
    integ = svc.create_integration(vdb, owner, IntegrationCreate(name="fresh"))
    assert IntegrationCreate(name="x").api_version == "v3"
    assert integ.api_version == "v3"
    auth.settle_new_integration(vdb, integ, "v3", tables_given=False)
    assert "my_library_files" not in integ.tables and "contact_tags" in integ.tables


def test_authorize_with_pkce_stores_encrypted_tokens(
    v3_plane: ControlPlane, vdb: Session, owner: User, v3_sandbox: Sandbox
) -> None:
    integ = svc.create_integration(vdb, owner, IntegrationCreate(name="acme"))
    url = svc.start_authorization(vdb, integ)
    sent = query_of(url)
    assert url.startswith(v3_sandbox.authz_url + "/authorize?")
    assert sent["scope"] == "account_read contact_data campaign_data offline_access"
    assert sent["code_challenge_method"] == "S256" and len(sent["code_challenge"]) == 43
    assert sent["redirect_uri"] == REDIRECT and sent["client_id"] == v3_sandbox.credentials.api_key
    pending = vdb.get(OAuthState, sent["state"])
    assert pending is not None and pending.code_verifier_encrypted
    verifier = v3_plane.context.box.decrypt(pending.code_verifier_encrypted)
    assert verifier not in url and verifier not in pending.code_verifier_encrypted

    back = query_of(consent(url, v3_sandbox.credentials.email, v3_sandbox.credentials.password))
    done = svc.complete_authorization(vdb, back["state"], back["code"], owner)
    assert done.has_credentials and done.auth_method == "oauth" and done.api_version == "v3"
    assert done.access_problems == []  # the owner holds every privilege, every scope granted
    tokens = stored(v3_plane, done.id)
    assert tokens.refresh_token and tokens.access_token.count(".") == 2  # a JWT
    assert set(tokens.scope) >= {"contact_data", "campaign_data", "offline_access"}
    # no plaintext in the store: neither token, nor the verifier
    dump = store_text(v3_plane)
    for secret in (tokens.access_token, tokens.refresh_token, verifier):
        assert secret not in dump
    assert vdb.scalars(sa.select(OAuthState)).all() == []  # the state was single-use
    with pytest.raises(Exception, match="expired or was already used"):
        svc.complete_authorization(vdb, back["state"], back["code"], owner)


def test_missing_privileges_are_listed(vdb: Session, owner: User, v3_sandbox: Sandbox) -> None:
    v3_sandbox.v3_tokens.privileges = CAMPAIGN_CREATOR_PRIVILEGES
    integ = authorized(vdb, owner, v3_sandbox)
    problems = integ.access_problems or []
    assert any("contacts:read" in p and "Contacts" in p for p in problems), problems
    assert any("ui:campaign:metrics" in p for p in problems), problems


def test_refresh_before_a_run_stores_the_rotated_pair(
    v3_plane: ControlPlane, vdb: Session, owner: User, v3_sandbox: Sandbox
) -> None:
    integ = authorized(vdb, owner, v3_sandbox)
    first = stored(v3_plane, integ.id)
    expire_stored_token(v3_plane, integ.id)

    prepared = prepare(v3_plane, vdb, integ)

    second = stored(v3_plane, integ.id)
    assert second.refresh_token and second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    assert prepared.config.source.api_version == "v3"
    assert prepared.config.source.access_token.get_secret_value() == second.access_token
    assert prepared.config.source.base_url == v3_sandbox.base_url
    assert prepared.renew_token is not None
    assert second.refresh_token in prepared.secrets or second.access_token in prepared.secrets
    # rotating: the refresh token used is dead now, the stored one lives
    with httpx.Client(timeout=10) as http, pytest.raises(ReauthorizeRequired):
        oauth.refresh(
            http,
            v3_sandbox.authz_url,
            v3_sandbox.credentials.api_key,
            v3_sandbox.credentials.client_secret,
            first.refresh_token or "",
        )
    # a 401 mid-run: the renewer refreshes once more and stores that pair too
    renewed = prepared.renew_token(second.access_token)  # the token the API refused
    third = stored(v3_plane, integ.id)
    assert renewed == third.access_token != second.access_token
    assert third.refresh_token != second.refresh_token


def test_refused_refresh_token_needs_reauth_and_is_not_scheduled(
    v3_plane: ControlPlane, vdb: Session, owner: User, v3_sandbox: Sandbox, clock: ManualClock
) -> None:
    integ = authorized(vdb, owner, v3_sandbox)
    tokens = stored(v3_plane, integ.id)
    assert v3_sandbox.v3_tokens.revoke(tokens.refresh_token or "")
    expire_stored_token(v3_plane, integ.id)

    with pytest.raises(_Setup) as setup:
        prepare(v3_plane, vdb, integ)
    assert "Constant Contact refused the refresh token" in setup.value.message
    assert "re-authorize" in setup.value.message and setup.value.failure_type == "auth"
    vdb.expire_all()
    again = vdb.get(Integration, integ.id)
    assert again is not None and again.state == "needs_reauth"
    assert again.state_reason and "refused the refresh token" in again.state_reason
    record = vault_record(v3_plane.context, again)
    assert record is not None and record.needs_reauth
    app, integ_id = auth.application(vdb).v3, integ.id
    vdb.rollback()  # hold no store lock in this thread while the vault takes it (SQLite)
    # later attempts do not spend a token request on the dead grant
    with pytest.raises(ReauthorizeRequired, match="refused the refresh token"):
        token_keeper(v3_plane.context, integ_id, app).fresh_access_token()
    # the scheduler leaves it alone, even when due
    with v3_plane.session() as other:
        due = other.get(Integration, integ_id)
        assert due is not None
        due.next_run_at = clock.now()
        other.commit()
    assert v3_plane.tick().enqueued == []
    # re-authorizing clears it
    url = svc.start_authorization(vdb, again)
    back = query_of(consent(url, v3_sandbox.credentials.email, v3_sandbox.credentials.password))
    fixed = svc.complete_authorization(vdb, back["state"], back["code"], owner)
    assert fixed.state in ("pending", "active")
    record = vault_record(v3_plane.context, fixed)
    assert record is not None and record.needs_reauth is None


def test_two_threads_refresh_once(
    v3_plane: ControlPlane, vdb: Session, owner: User, v3_sandbox: Sandbox
) -> None:
    integ = authorized(vdb, owner, v3_sandbox)
    integ_id = integ.id
    expire_stored_token(v3_plane, integ_id)
    app = auth.application(vdb).v3
    vdb.rollback()  # no store lock held by this thread (SQLite)
    keepers = [token_keeper(v3_plane.context, integ_id, app) for _ in range(2)]
    start = threading.Barrier(2)
    got: list[str] = []

    def fetch(k: Any) -> None:
        start.wait()
        got.append(k.fresh_access_token())

    threads = [threading.Thread(target=fetch, args=(k,)) for k in keepers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(got) == 2 and got[0] == got[1] == stored(v3_plane, integ_id).access_token
    assert sum(k.refreshes for k in keepers) == 1


def _refresh_in_process(
    values: dict[str, Any], integration_id: int, barrier: Any
) -> tuple[str, int]:
    """Another process of the control plane: a fresh token of one integration."""
    settings = ControlSettings(**values)
    plane = ControlPlane(settings, migrate=False)
    try:
        with plane.session() as db:
            app = auth.application(db).v3
        keeper = token_keeper(plane.context, integration_id, app)
        barrier.wait(30)
        return keeper.fresh_access_token(), keeper.refreshes
    finally:
        plane.close()


def test_two_processes_refresh_once(
    v3_plane: ControlPlane, vdb: Session, owner: User, v3_sandbox: Sandbox
) -> None:
    integ = authorized(vdb, owner, v3_sandbox)
    integ_id = integ.id
    expire_stored_token(v3_plane, integ_id)
    vdb.rollback()
    mine = v3_plane.settings
    values = {
        "data_dir": str(mine.data_dir),
        "database_url": mine.database_url,
        "encryption_key": mine.fernet_key().decode(),
        "cc_base_url": mine.cc_base_url,
        "client_id": mine.client_id,
        "client_secret": mine.client_secret.get_secret_value() if mine.client_secret else None,
        "workers": 0,
    }
    # fork: the children start at once (spawn re-imports everything: 10 s). They make planes
    # of their own; the parent's pooled connections are closed first, not shared.
    v3_plane.engine.dispose()
    forked = multiprocessing.get_context("fork")
    with forked.Manager() as manager:
        barrier = manager.Barrier(2)
        with forked.Pool(2) as pool:
            results = pool.starmap(
                _refresh_in_process,
                [(values, integ_id, barrier)] * 2,
            )
    tokens = {token for token, _ in results}
    assert tokens == {stored(v3_plane, integ_id).access_token}
    assert sum(n for _, n in results) == 1


def test_rows_from_before_v3_stay_v2(tmp_path: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        upgrade_database(engine)
        downgrade_database(engine, "0005")
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO integrations (name, state, frequency_hours, history_start, tables,"
                    " new_columns, created_at, updated_at) VALUES ('old', 'active', 24,"
                    " '2025-01-01', '{}', 'ignore', '2025-01-01 00:00:00', '2025-01-01 00:00:00')"
                )
            )
        upgrade_database(engine)
        with engine.connect() as conn:
            assert conn.scalar(sa.text("SELECT api_version FROM integrations")) == "v2"
    finally:
        engine.dispose()


def test_manual_key_and_token_make_a_fresh_integration_v2(vdb: Session, owner: User) -> None:
    integ = svc.create_integration(vdb, owner, IntegrationCreate(name="legacy"))
    auth.settle_new_integration(vdb, integ, "v3", tables_given=False)
    svc.set_manual_credentials(vdb, integ, "key-1", "token-1", check_access=False)
    assert integ.api_version == "v2" and "my_library_files" in integ.tables
    assert "contact_tags" not in integ.tables


def test_a_v3_run_through_the_worker(
    v3_plane: ControlPlane, vdb: Session, owner: User, v3_sandbox: Sandbox
) -> None:
    integ = authorized(vdb, owner, v3_sandbox)
    integ.tables = {"contact_lists": None, "contact_tags": None}
    vdb.commit()
    tokens = stored(v3_plane, integ.id)
    run = svc.run_now(vdb, integ)
    run_id = run.id
    vdb.rollback()
    assert v3_plane.work_once("w1", run_id) == run_id
    with v3_plane.session() as db:
        done = db.get(Run, run_id)
        assert done is not None
        assert done.status == "succeeded", done.error
        assert done.rows == {"contact_lists": 5, "contact_tags": 6}
        log = "\n".join(db.scalars(sa.select(RunLog.message).where(RunLog.run_id == run_id)))
    assert "contact_tags: 6 rows" in log
    assert tokens.access_token not in log and (tokens.refresh_token or "-") not in log


def test_a_401_mid_run_renews_once_and_the_run_succeeds(
    v3_plane: ControlPlane, vdb: Session, owner: User, v3_sandbox: Sandbox
) -> None:
    integ = authorized(vdb, owner, v3_sandbox)
    integ.tables = {"contact_tags": None}
    vdb.commit()
    first = stored(v3_plane, integ.id)
    # revoked at Constant Contact although not expired: the run starts with it, gets 401
    assert v3_sandbox.v3_tokens.revoke_access_token(first.access_token)
    run_id = svc.run_now(vdb, integ).id
    vdb.rollback()
    assert v3_plane.work_once("w1", run_id) == run_id
    with v3_plane.session() as db:
        done = db.get(Run, run_id)
        assert done is not None
        assert done.status == "succeeded", done.error
        assert done.rows == {"contact_tags": 6}
    renewed = stored(v3_plane, integ.id)
    assert renewed.refresh_token != first.refresh_token  # the renewal's pair was stored
    assert renewed.access_token != first.access_token
