"""Runs stop as operators expect (issue 8): a cancel reaches the worker at once and ends the
job within the request in flight; SIGTERM to ``ctctsync serve`` cancels its jobs (due again
at once) instead of killing them; retries show in the job's log."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ctctsync.control import services as svc
from ctctsync.control.clock import ManualClock
from ctctsync.control.models import Integration, Run, RunLog, User
from ctctsync.control.plane import ControlPlane
from ctctsync.control.schemas import IntegrationCreate
from ctctsync.control.settings import ControlSettings
from ctctsync.sandbox import Sandbox
from ctctsync.sync import ProgressEvent

from .conftest import make_settings, open_plane

pytestmark = pytest.mark.slow

TRACKING = "/v2/emailmarketing/campaigns/*/tracking/*"
TABLES = {"contact_lists": None, "email_campaigns": None, "contact_tracking": None, "events": None}


def _answers(sb: Sandbox) -> int:
    return sum(row.get("total", 0) for row in sb.counters.snapshot()["endpoints"].values())


@pytest.fixture
def sb_plane(
    sandbox: Sandbox, tmp_path: Path, migrated_template: Path
) -> Iterator[ControlPlane]:
    settings = make_settings(tmp_path, cc_base_url=sandbox.base_url, cc_qps_limit=None)
    cp = open_plane(settings, ManualClock(datetime.now(UTC).replace(microsecond=0)),
                    migrated_template)
    yield cp
    cp.close()


@pytest.fixture
def sdb(sb_plane: ControlPlane) -> Iterator[Session]:
    with sb_plane.session() as session:
        yield session


def _connected(sdb: Session, sb: Sandbox) -> Integration:
    owner = svc.ensure_first_admin(sdb, "owner@example.com", "long enough password")
    assert owner is not None
    integ = svc.create_integration(
        sdb, owner, IntegrationCreate(name="acme", history_start="2000-01-01", tables=TABLES)  # type: ignore[arg-type]
    )
    creds = sb.credentials
    return svc.set_manual_credentials(
        sdb, integ, creds.api_key, creds.access_token, check_access=False
    )


def _run(sdb: Session, run_id: str) -> Run:
    sdb.rollback()
    sdb.expire_all()
    run = sdb.get(Run, run_id)
    assert run is not None
    return run


def _owner(sdb: Session) -> User:
    user = sdb.scalar(sa.select(User).where(User.is_admin))
    assert user is not None
    return user


@pytest.mark.parametrize("how", ["service", "flag-from-another-process"])
def test_cancel_ends_the_job_within_the_request_in_flight(
    sandbox: Sandbox, sb_plane: ControlPlane, sdb: Session, how: str
) -> None:
    # A slow API (150 ms a tracking call): before issue 8 the worker saw the cancel at its
    # next heartbeat (5 s here, 10 s by default) and read on meanwhile, ~30 calls.
    sandbox.faults.add("latency", TRACKING, latency_ms=150)
    integ = _connected(sdb, sandbox)
    run = svc.run_now(sdb, integ, _owner(sdb))
    sdb.rollback()
    at: dict[str, float] = {}

    def cancel_on_first_tracking_page(run_id: str, event: ProgressEvent) -> None:
        if event.table != "contact_tracking" or event.phase != "page" or at:
            return
        at["calls"], at["t"] = _answers(sandbox), time.monotonic()
        if how == "service":
            with sb_plane.session() as db2:
                svc.cancel_run(db2, db2.get(Run, run_id))  # type: ignore[arg-type]
        else:  # what `ctctsync runs cancel` or another server does: only the stored flag
            with sb_plane.write_engine.begin() as conn:
                conn.execute(sa.update(Run).where(Run.id == run_id).values(cancel_requested=True))

    sb_plane.add_progress_listener(cancel_on_first_tracking_page)
    sb_plane.work_once("w1")
    ended = time.monotonic()
    time.sleep(0.4)  # a request still on the wire is counted by now
    done = _run(sdb, run.id)
    assert done.status == "cancelled" and done.failure_type == "cancelled"
    assert done.error == "Cancelled on request."
    assert done.table_status["contact_lists"] == "succeeded"
    assert done.table_status["contact_tracking"] == "cancelled"
    assert done.table_status["events"] == "cancelled"
    extra = _answers(sandbox) - at["calls"]
    if how == "service":
        assert extra <= 1  # the request in flight, nothing after
        assert ended - at["t"] < 3.0  # before: the next heartbeat, 5 s here
    else:  # the worker reads the flag every 0.5 s: a few 150 ms calls at most
        assert extra <= 5
        assert ended - at["t"] < 4.0


def test_retries_and_throttling_show_in_the_job_log(
    sandbox: Sandbox, sb_plane: ControlPlane, sdb: Session
) -> None:
    sandbox.faults.add("500", "/v2/lists*", count=2)
    integ = _connected(sdb, sandbox)
    run = svc.run_now(sdb, integ, _owner(sdb))
    sdb.rollback()
    sb_plane.work_once("w1")
    assert _run(sdb, run.id).status == "succeeded"
    lines = [(line.level, line.message) for line in svc.run_logs(sdb, _run(sdb, run.id))]
    assert ("WARNING", "contact_lists: 2 retries (500 x2); 2 extra calls") in lines
    assert not [m for level, m in lines if level == "WARNING" and m.startswith("events:")]


# ----------------------------------------------------------------------------- SIGTERM


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(predicate, timeout: float, proc: subprocess.Popen[str]) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_sigterm_cancels_the_running_job_and_the_next_start_resumes(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # Before issue 8 SIGTERM killed `serve` outright: its job sat "running" until the sweeper
    # failed it as "worker died", 120 s later.
    sandbox.faults.add("latency", TRACKING, latency_ms=150)
    data = tmp_path / "data"
    settings = ControlSettings(data_dir=data, cc_base_url=sandbox.base_url, workers=0)
    setup = ControlPlane(settings)
    with setup.session() as db:
        integ = _connected(db, sandbox)
        run_id = svc.run_now(db, integ, _owner(db)).id
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CTCTSYNC_")},
        "CTCTSYNC_DATA_DIR": str(data),
        "CTCTSYNC_PORT": str(port),
        "CTCTSYNC_WORKERS": "1",
        "CTCTSYNC_CC_BASE_URL": sandbox.base_url,
    }
    code = "import sys; from ctctsync.cli.control_commands import serve; sys.exit(serve())"
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        def tracking_started() -> bool:
            with setup.session() as db:
                run = db.get(Run, run_id)
                return run is not None and run.table_status.get("email_campaigns") == "succeeded"

        _wait_for(tracking_started, 60, proc)
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - sent < 8
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    with setup.session() as db:
        run = db.get(Run, run_id)
        assert run is not None
        assert run.status == "cancelled", (run.status, run.error)
        assert "server shut down" in (run.error or "")
        assert run.table_status["email_campaigns"] == "succeeded"
        integ = db.get(Integration, integ.id)  # type: ignore[assignment]
        assert integ.next_run_at is not None  # due again at once
        assert integ.next_run_at <= datetime.now(UTC)

    # the next start resumes: a table finished before the signal reads from its bookmark
    sandbox.faults.clear()
    (again,) = setup.tick().enqueued
    assert setup.work_once("w1") == again
    with setup.session() as db:
        rerun = db.get(Run, again)
        assert rerun is not None and rerun.status == "succeeded", rerun.error if rerun else None
        logs = [line.message for line in db.scalars(
            sa.select(RunLog).where(RunLog.run_id == again).order_by(RunLog.seq))]
    assert any(m.startswith("email_campaigns: incremental read") for m in logs), logs
    setup.close()


def test_sigterm_handler_is_only_installed_while_serving() -> None:
    from ctctsync.cli.control_commands import _sigterm_as_sigint

    before = signal.getsignal(signal.SIGTERM)
    with _sigterm_as_sigint():
        assert signal.getsignal(signal.SIGTERM) is not before
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before

    caught: list[BaseException] = []

    def elsewhere() -> None:  # not the main thread: left alone
        try:
            with _sigterm_as_sigint():
                pass
        except BaseException as exc:  # pragma: no cover - would fail the test
            caught.append(exc)

    t = threading.Thread(target=elsewhere)
    t.start()
    t.join()
    assert caught == []
