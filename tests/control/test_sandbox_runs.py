"""End to end over real HTTP: OAuth against the sandbox, runs executed by the worker into
DuckDB, state changes from run outcomes, and a killed worker's job recovered by the sweeper."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ctctsync.control import services as svc
from ctctsync.control.clock import ManualClock
from ctctsync.control.errors import ValidationFailed
from ctctsync.control.models import Integration, Run, User
from ctctsync.control.plane import WORKER_DIED, ControlPlane
from ctctsync.control.schemas import IntegrationCreate
from ctctsync.control.settings import ControlSettings
from ctctsync.sandbox import Sandbox
from ctctsync.sandbox.testing import authorize_code
from ctctsync.state import StateStore
from ctctsync.sync import ProgressEvent
from ctctsync.tables import tables_for
from ctctsync.warehouse import warehouse_tables

from .conftest import make_settings, open_plane

V2_TABLES = tables_for("v2")
"""The tables of the v2 path (a config without api_version reads v2)."""

pytestmark = pytest.mark.slow

SOME_TABLES = {"contacts": None, "contact_lists": None, "events": None, "account_info": None}


@pytest.fixture
def sb_settings(sandbox: Sandbox, tmp_path: Path) -> ControlSettings:
    creds = sandbox.credentials
    return make_settings(
        tmp_path,
        cc_base_url=sandbox.base_url,
        api_key=creds.api_key,
        client_secret=creds.client_secret,
        cc_qps_limit=None,
    )


@pytest.fixture
def sb_clock() -> ManualClock:
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def sb_plane(
    sb_settings: ControlSettings, sb_clock: ManualClock, migrated_template: Path
) -> Iterator[ControlPlane]:
    cp = open_plane(sb_settings, sb_clock, migrated_template)
    yield cp
    cp.close()


@pytest.fixture
def sdb(sb_plane: ControlPlane) -> Iterator[Session]:
    with sb_plane.session() as session:
        yield session


@pytest.fixture
def owner(sdb: Session) -> User:
    user = svc.ensure_first_admin(sdb, "owner@example.com", "long enough password")
    assert user is not None
    return user


def _integration(sdb: Session, owner: User, **kw: object) -> Integration:
    return svc.create_integration(
        sdb,
        owner,
        # v2: these runs drive the v2 OAuth pages and the v2 truth (tests/e2e/test_v3_* do v3)
        IntegrationCreate(  # type: ignore[arg-type]
            name="acme", history_start="2000-01-01", tables=SOME_TABLES, api_version="v2", **kw
        ),
    )


def _run(sdb: Session, run_id: str) -> Run:
    sdb.rollback()
    sdb.expire_all()
    run = sdb.get(Run, run_id)
    assert run is not None
    return run


def _assert_warehouse_matches(sb: Sandbox, sdb: Session, tables: dict[str, object]) -> None:
    wcfg = svc.warehouse_config(sdb)
    sdb.rollback()
    counts = warehouse_tables(wcfg, "acme")
    for table in tables:
        assert counts[f"acme_{table}"] == len(sb.truth(table)), table


def test_oauth_then_first_run_activates(
    sandbox: Sandbox,
    sb_plane: ControlPlane,
    sdb: Session,
    owner: User,
    sb_settings: ControlSettings,
) -> None:
    integ = _integration(sdb, owner)
    url = svc.start_authorization(sdb, integ)
    assert url.startswith(sandbox.base_url)
    state = parse_qs(urlsplit(url).query)["state"][0]
    code = authorize_code(sandbox, sb_settings.oauth_redirect_uri, state=state)
    done = svc.complete_authorization(sdb, state, code)
    assert done.id == integ.id and done.auth_method == "oauth"
    with pytest.raises(ValidationFailed) as err:  # the state is single-use
        svc.complete_authorization(sdb, state, code)
    assert "expired or was already used" in err.value.errors["state"]

    raw = sdb.execute(sa.text("select credentials_encrypted from integrations")).scalar_one()
    token = svc.integration_credentials(sdb, integ)["access_token"]
    assert token and token not in raw

    sdb.rollback()

    (run_id,) = sb_plane.tick().enqueued
    sdb.rollback()
    assert sb_plane.work_once("w1") == run_id
    run = _run(sdb, run_id)
    assert run.status == "succeeded", run.error
    assert run.worker_id == "w1" and run.api_calls > 0
    assert run.rows == {t: len(sandbox.truth(t)) for t in V2_TABLES if t in SOME_TABLES}
    assert set(run.table_status.values()) == {"succeeded"}
    integ = sdb.get(Integration, integ.id)  # type: ignore[assignment]
    assert integ.state == "active" and integ.activated_at is not None
    _assert_warehouse_matches(sandbox, sdb, SOME_TABLES)

    logs = svc.run_logs(sdb, run)
    assert logs and [line.seq for line in logs] == list(range(1, len(logs) + 1))
    text = "\n".join(line.message for line in logs)
    creds = sandbox.credentials
    for secret in (creds.api_key, creds.client_secret, token):
        assert secret not in text
    assert svc.run_logs(sdb, run, after_seq=logs[-1].seq) == []

    dropped = svc.delete_integration(sdb, integ, drop_tables=True)
    assert sorted(dropped) == sorted(f"acme_{t}" for t in SOME_TABLES)
    assert warehouse_tables(svc.warehouse_config(sdb), "acme") == {}


def test_oauth_refused_code_is_a_clear_error(
    sandbox: Sandbox, sb_plane: ControlPlane, sdb: Session, owner: User
) -> None:
    integ = _integration(sdb, owner)
    url = svc.start_authorization(sdb, integ)
    state = parse_qs(urlsplit(url).query)["state"][0]
    with pytest.raises(ValidationFailed) as err:
        svc.complete_authorization(sdb, state, "not-a-real-code")
    assert "Start the authorization again" in err.value.errors["code"]
    sdb.refresh(integ)
    assert not integ.has_credentials and integ.state == "pending"


def test_killed_worker_is_swept_and_next_run_resumes(
    sandbox: Sandbox, sb_plane: ControlPlane, sdb: Session, owner: User, sb_clock: ManualClock
) -> None:
    integ = _integration(sdb, owner)
    creds = sandbox.credentials
    svc.set_manual_credentials(sdb, integ, creds.api_key, creds.access_token)  # checked for real

    class WorkerKilled(BaseException):
        """Stands in for SIGKILL: nothing after it runs, not even except Exception blocks."""

    def kill_after_contacts(_run_id: str, event: ProgressEvent) -> None:
        if event.table == "contacts" and event.phase == "done":
            raise WorkerKilled

    sb_plane.add_progress_listener(kill_after_contacts)
    sdb.rollback()
    (run_id,) = sb_plane.tick().enqueued
    sdb.rollback()
    with pytest.raises(WorkerKilled):
        sb_plane.work_once("doomed")
    sb_plane.remove_progress_listener(kill_after_contacts)
    dead = _run(sdb, run_id)
    assert dead.status == "running"
    assert dead.rows["contacts"] == len(sandbox.truth("contacts"))  # progress was recorded
    sdb.rollback()
    contacts_mark = StateStore(sb_plane.engine, create=False).get("acme", "contacts")
    assert contacts_mark is not None and contacts_mark.run_id == run_id

    sb_clock.advance(timedelta(seconds=61))
    sdb.rollback()
    report = sb_plane.tick()
    assert report.swept == [run_id] and len(report.enqueued) == 1
    dead = _run(sdb, run_id)
    assert (dead.status, dead.error) == ("failed", WORKER_DIED)
    sdb.rollback()
    assert sb_plane.work_once("w2") == report.enqueued[0]
    rerun = _run(sdb, report.enqueued[0])
    assert rerun.status == "succeeded", rerun.error
    _assert_warehouse_matches(sandbox, sdb, SOME_TABLES)
    sdb.rollback()
    mark = StateStore(sb_plane.engine, create=False).get("acme", "contacts")
    assert mark is not None and mark.run_id == rerun.id  # contacts resumed incrementally


def test_revoked_token_needs_reauth(
    sandbox: Sandbox, sb_plane: ControlPlane, sdb: Session, owner: User, sb_clock: ManualClock
) -> None:
    integ = _integration(sdb, owner)
    creds = sandbox.credentials
    svc.set_manual_credentials(sdb, integ, creds.api_key, creds.access_token)
    assert sandbox.revoke_token()
    sdb.rollback()
    (run_id,) = sb_plane.tick().enqueued
    sdb.rollback()
    sb_plane.work_once("w1")
    run = _run(sdb, run_id)
    assert (run.status, run.failure_type) == ("failed", "auth")
    integ = sdb.get(Integration, integ.id)  # type: ignore[assignment]
    assert integ.state == "needs_reauth" and integ.state_reason
    assert creds.access_token not in (run.error or "") + (integ.state_reason or "")
    sb_clock.advance(timedelta(days=2))
    sdb.rollback()
    sdb.rollback()
    assert sb_plane.tick().enqueued == []  # not scheduled until re-authorized

    with pytest.raises(ValidationFailed) as err:  # the revoked token is refused up front
        svc.set_manual_credentials(sdb, integ, creds.api_key, creds.access_token)
    assert err.value.errors["access_token"]
    svc.set_manual_credentials(sdb, integ, creds.api_key, sandbox.issue_token())
    assert integ.state == "pending"
    sdb.rollback()
    sdb.rollback()
    (again,) = sb_plane.tick().enqueued
    sdb.rollback()
    sb_plane.work_once("w1")
    assert _run(sdb, again).status == "succeeded"


def test_cancel_running_run(
    sandbox: Sandbox, sb_plane: ControlPlane, sdb: Session, owner: User
) -> None:
    integ = _integration(sdb, owner)
    creds = sandbox.credentials
    svc.set_manual_credentials(sdb, integ, creds.api_key, creds.access_token, check_access=False)

    def cancel_on_first_table(run_id: str, event: ProgressEvent) -> None:
        if event.phase == "start" and event.table == "contacts":
            with sb_plane.session() as db2:
                svc.cancel_run(db2, db2.get(Run, run_id))  # type: ignore[arg-type]

    sb_plane.add_progress_listener(cancel_on_first_table)
    run = svc.run_now(sdb, integ, owner)
    sdb.rollback()
    sb_plane.work_once("w1")
    done = _run(sdb, run.id)
    assert done.status == "cancelled" and done.error == "Cancelled on request."
    # the cancel stops the table it came during (issue 8), and the ones after it
    assert set(done.table_status.values()) == {"cancelled"}
    integ = sdb.get(Integration, integ.id)  # type: ignore[assignment]
    assert integ.state == "pending"


def test_daily_quota_keeps_integration_and_waits(
    sandbox_factory: object, tmp_path: Path, migrated_template: Path, sb_clock: ManualClock
) -> None:
    sb: Sandbox = sandbox_factory(daily_limit=3)  # type: ignore[operator]
    creds = sb.credentials
    settings = make_settings(tmp_path, cc_base_url=sb.base_url, cc_qps_limit=None)
    cp = open_plane(settings, sb_clock, migrated_template)
    try:
        with cp.session() as db:
            user = svc.ensure_first_admin(db, "owner@example.com", "long enough password")
            assert user is not None
            integ = _integration(db, user)
            svc.set_manual_credentials(
                db, integ, creds.api_key, creds.access_token, check_access=False
            )
            db.rollback()
            (run_id,) = cp.tick().enqueued
            db.rollback()
            cp.work_once("w1")
            run = _run(db, run_id)
            assert run.status == "partial" and run.resume_at is not None
            integ = db.get(Integration, integ.id)  # type: ignore[assignment]
            assert integ.state == "pending"
            assert integ.next_run_at == run.resume_at
            db.rollback()
            db.rollback()
            assert cp.tick().enqueued == []
    finally:
        cp.close()


def test_shutdown_cancels_and_reschedules(
    sandbox: Sandbox, sb_plane: ControlPlane, sdb: Session, owner: User, sb_clock: ManualClock
) -> None:
    integ = _integration(sdb, owner)
    creds = sandbox.credentials
    svc.set_manual_credentials(sdb, integ, creds.api_key, creds.access_token, check_access=False)
    sdb.rollback()
    (run_id,) = sb_plane.tick().enqueued

    def stop_during_contacts(_run_id: str, event: ProgressEvent) -> None:
        if event.table == "contacts" and event.phase == "start":
            sb_plane.stop()  # what SIGTERM does to `serve`

    sb_plane.add_progress_listener(stop_during_contacts)
    sdb.rollback()
    sb_plane.work_once("w1")
    run = _run(sdb, run_id)
    assert run.status == "cancelled" and "server shut down" in (run.error or "")
    integ = sdb.get(Integration, integ.id)  # type: ignore[assignment]
    assert integ.next_run_at == sb_clock.now()  # resumes at the next start


def test_oauth_through_the_rest_api(
    sandbox: Sandbox,
    sb_plane: ControlPlane,
    sdb: Session,
    owner: User,
    sb_settings: ControlSettings,
) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette prefers httpx2; httpx works
        from starlette.testclient import TestClient

    from ctctsync.web.api import create_api_app

    alice = svc.create_user(sdb, "alice@example.com", "long enough password")
    mallory = svc.create_user(sdb, "mallory@example.com", "long enough password")
    as_alice = {"Authorization": f"Bearer {svc.create_api_token(sdb, alice, 't')[1]}"}
    as_mallory = {"Authorization": f"Bearer {svc.create_api_token(sdb, mallory, 't')[1]}"}
    sdb.rollback()
    with TestClient(create_api_app(sb_plane)) as client:
        made = client.post(
            "/api/v1/integrations", json={"name": "acme", "api_version": "v2"}, headers=as_alice
        )
        iid = made.json()["id"]
        url = client.post(f"/api/v1/integrations/{iid}/authorize", headers=as_alice).json()[
            "authorize_url"
        ]
        state = parse_qs(urlsplit(url).query)["state"][0]
        code = authorize_code(sandbox, sb_settings.oauth_redirect_uri, state=state)
        body = {"state": state, "code": code}
        stolen = client.post("/api/v1/oauth/complete", json=body, headers=as_mallory)
        assert stolen.status_code == 422 and "state" in stolen.json()["errors"]
        done = client.post("/api/v1/oauth/complete", json=body, headers=as_alice)
        assert done.status_code == 200, done.text
        assert done.json()["credentials"] == {
            "method": "oauth",
            "api_key": "set",
            "access_token": "set",
        }
        assert sandbox.credentials.client_secret not in done.text
