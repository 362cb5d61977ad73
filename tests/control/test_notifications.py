"""Notifications (issue 12 §5): events write the outbox, the sender delivers to a real local
SMTP server and a real webhook receiver (signed), retries with backoff, and gives up; a run
failing against the sandbox notifies end to end."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ctctsync.control import services as svc
from ctctsync.control.clock import ManualClock
from ctctsync.control.errors import NotFound, ValidationFailed
from ctctsync.control.models import (
    Integration,
    NotificationChannel,
    NotificationDelivery,
    Run,
    User,
)
from ctctsync.control.notify import (
    LEASE_SECONDS,
    MAX_ATTEMPTS,
    RETRY_DELAYS,
    DeliveryFailed,
    SendReport,
    send_email,
    verify_signature,
)
from ctctsync.control.plane import ControlPlane
from ctctsync.control.schemas import IntegrationCreate
from ctctsync.control.services import notifications as notes
from ctctsync.errors import redact
from ctctsync.sandbox import Sandbox
from ctctsync.web.api import create_api_app

from .conftest import PASSWORD, make_settings, open_plane
from .helpers import connected
from .notify_helpers import SmtpSink, smtp_server, webhook_receiver


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with smtp_server() as sink:
        yield sink


@pytest.fixture
def nplane(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    clock: ManualClock,
    migrated_template: Path,
    smtp: SmtpSink,
) -> Iterator[ControlPlane]:
    """A plane whose e-mail goes to the local SMTP server; its store is SQLite, or
    PostgreSQL for a test parametrized with :data:`BOTH_STORES`."""
    store = getattr(request, "param", "sqlite")
    settings = make_settings(
        tmp_path,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_security="none",
        smtp_from="ctctsync@example.com",
        public_base_url="https://sync.example.com",
        **({"database_url": request.getfixturevalue("pg_url")} if store == "postgres" else {}),
    )
    if store == "postgres":
        cp = ControlPlane(settings, clock=clock)
    else:
        cp = open_plane(settings, clock, migrated_template)
    yield cp
    cp.close()


BOTH_STORES = pytest.mark.parametrize(
    "nplane", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
"""The event rules' and the digest's SQL (JSON choices, time comparisons, the claim's
``FOR UPDATE SKIP LOCKED``) on both stores."""


@pytest.fixture
def ndb(nplane: ControlPlane) -> Iterator[Session]:
    with nplane.session() as session:
        yield session


@pytest.fixture
def carol(ndb: Session) -> User:
    svc.ensure_first_admin(ndb, "admin@example.com", PASSWORD)
    return svc.create_user(ndb, "carol@example.com", PASSWORD)


def _finish(db: Session, run_id: str, status: str, **fields: object) -> Run:
    """Finish a run as the worker records it, with its notifications, in one commit."""
    run = db.get(Run, run_id)
    assert run is not None
    run.transition("running")
    run.transition(status)  # type: ignore[arg-type]
    run.finished_at = svc.context(db).now()
    for name, value in fields.items():
        setattr(run, name, value)
    if fields.get("failure_type") == "auth":
        run.integration.transition("needs_reauth", "refused")
    notes.run_finished(db, run)
    db.commit()
    return run


def _send(plane: ControlPlane, db: Session) -> SendReport:
    """One sender pass (the test's session lets go of SQLite's write lock first)."""
    db.rollback()
    return plane.send_notifications()


def _deliveries(db: Session) -> list[NotificationDelivery]:
    db.rollback()
    db.expire_all()
    return list(db.scalars(sa.select(NotificationDelivery).order_by(NotificationDelivery.id)))


def test_a_failure_reaches_smtp_and_a_signed_webhook(
    nplane: ControlPlane, ndb: Session, carol: User, smtp: SmtpSink, clock: ManualClock
) -> None:
    integ = connected(ndb, carol)
    with webhook_receiver() as hook:
        mail, none = notes.create_channel(ndb, carol, "email", "me", "carol@example.com")
        assert none is None and mail.hint == "ca…@example.com"
        web, secret = notes.create_channel(ndb, carol, "webhook", "ops", hook.url)
        assert secret is not None and secret.startswith("whsec_")
        notes.set_choices(ndb, carol, integ.id, ["failure"])
        run = svc.run_now(ndb, integ, carol)
        _finish(ndb, run.id, "failed", failure_type="source", error="CC answered 503 three times")
        queued = _deliveries(ndb)
        assert [(d.channel_id, d.event, d.status) for d in queued] == [
            (mail.id, "failure", "pending"),
            (web.id, "failure", "pending"),
        ]

        report = _send(nplane, ndb)
        assert sorted(report.sent) == [d.id for d in queued] and not report.retrying

    (message,) = smtp.messages
    assert smtp.envelopes == [("ctctsync@example.com", ["carol@example.com"])]
    assert message["Subject"] == "ctctsync: acme's job failed"
    assert message["Auto-Submitted"] == "auto-generated"
    text = message.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "CC answered 503 three times" in text
    assert f"https://sync.example.com/jobs/{run.id}" in text

    (request,) = hook.requests
    assert request.path == "/hooks/ctctsync-secret-path"
    stamp = request.headers["X-Ctctsync-Timestamp"]
    assert int(stamp) == int(clock.now().timestamp())
    # The receiver's check, written out here from the documented recipe (not our helper):
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + request.body, hashlib.sha256)
    assert request.headers["X-Ctctsync-Signature"] == "v1=" + expected.hexdigest()
    assert verify_signature(secret, stamp, request.headers["X-Ctctsync-Signature"],
                            request.body, clock.now())
    # ... and what a receiver must refuse: another body, another secret, a replay too late
    sig = request.headers["X-Ctctsync-Signature"]
    assert not verify_signature(secret, stamp, sig, request.body + b" ", clock.now())
    assert not verify_signature("whsec_other", stamp, sig, request.body, clock.now())
    late = clock.now() + timedelta(minutes=6)
    assert not verify_signature(secret, stamp, sig, request.body, late)
    payload = json.loads(request.body)
    assert payload["event"] == "failure" and request.headers["X-Ctctsync-Event"] == "failure"
    assert payload["delivery_id"] == int(request.headers["X-Ctctsync-Delivery"])
    assert payload["integration"]["name"] == "acme"
    assert payload["run"]["id"] == run.id and payload["run"]["status"] == "failed"

    sent = _deliveries(ndb)
    assert all(d.status == "sent" and d.attempts == 1 and d.sent_at == clock.now() for d in sent)
    assert _send(nplane, ndb).sent == []  # nothing is sent twice


def test_a_receiver_answering_500_then_200_gets_it_on_the_retry(
    nplane: ControlPlane, ndb: Session, carol: User, clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    integ = connected(ndb, carol)
    with webhook_receiver(answers=[500, 200]) as hook:
        _channel, secret = notes.create_channel(ndb, carol, "webhook", "ops", hook.url)
        assert secret is not None
        notes.set_choices(ndb, carol, integ.id, ["failure", "recovery"])
        run = svc.run_now(ndb, integ, carol)
        _finish(ndb, run.id, "failed", failure_type="source", error="boom")
        with caplog.at_level(logging.DEBUG):
            first = _send(nplane, ndb)
        (delivery,) = _deliveries(ndb)
        assert first.retrying == [delivery.id] and not first.sent
        assert (delivery.status, delivery.attempts) == ("pending", 1)
        assert delivery.last_error == "the webhook at 127.0.0.1 answered 500"
        assert delivery.next_attempt_at == clock.now() + RETRY_DELAYS[0]

        assert _send(nplane, ndb).sent == []  # not before its delay
        assert len(hook.requests) == 1
        clock.advance(RETRY_DELAYS[0])
        assert _send(nplane, ndb).sent == [delivery.id]
        (delivery,) = _deliveries(ndb)
        assert (delivery.status, delivery.attempts, delivery.last_error) == ("sent", 2, None)
        assert hook.requests[0].body == hook.requests[1].body  # the same message
    # the URL's secret path and the signing secret are in no log line and no stored error
    assert "ctctsync-secret-path" not in caplog.text and secret not in caplog.text


def test_a_delivery_is_given_up_after_the_last_retry_or_at_once_on_a_404(
    nplane: ControlPlane, ndb: Session, carol: User, clock: ManualClock
) -> None:
    integ = connected(ndb, carol)
    with webhook_receiver(answers=[503] * MAX_ATTEMPTS) as down, webhook_receiver(
        answers=[404]
    ) as gone:
        notes.create_channel(ndb, carol, "webhook", "down", down.url)
        notes.create_channel(ndb, carol, "slack", "gone", gone.url)
        notes.set_choices(ndb, carol, integ.id, ["failure"])
        run = svc.run_now(ndb, integ, carol)
        _finish(ndb, run.id, "failed", failure_type="source", error="boom")
        first = _send(nplane, ndb)
        assert len(first.retrying) == 1 and len(first.failed) == 1
        for delay in RETRY_DELAYS:
            clock.advance(delay)
            _send(nplane, ndb)
        to_down, to_gone = _deliveries(ndb)
    assert (to_down.status, to_down.attempts, len(down.requests)) == ("failed", MAX_ATTEMPTS, 6)
    assert to_down.last_error == "the webhook at 127.0.0.1 answered 503"
    assert (to_gone.status, to_gone.attempts, len(gone.requests)) == ("failed", 1, 1)
    assert to_gone.last_error == "the Slack webhook at 127.0.0.1 answered 404; check the URL"
    assert json.loads(gone.requests[0].body)["text"].startswith("*ctctsync: acme's job failed*")


@BOTH_STORES
def test_which_runs_notify_whom(
    nplane: ControlPlane, ndb: Session, carol: User, smtp: SmtpSink, clock: ManualClock
) -> None:
    integ = connected(ndb, carol)
    notes.create_channel(ndb, carol, "email", "me", "carol@example.com")
    admin = svc.get_user(ndb, 1)
    assert admin is not None and admin.is_admin
    notes.create_channel(ndb, admin, "email", "admin", "admin@example.com")
    notes.set_choices(ndb, carol, integ.id, ["failure", "recovery"])
    notes.set_choices(ndb, admin, integ.id, ["quota_exhausted"])

    def events_of(run: Run) -> list[tuple[str, int]]:
        clock.advance(timedelta(hours=1))  # the next run ends an hour later
        return [(d.event, d.user_id) for d in _deliveries(ndb) if d.run_id == run.id]

    first = _finish(ndb, svc.run_now(ndb, integ, carol).id, "failed", failure_type="source")
    assert events_of(first) == [("failure", carol.id)]
    again = _finish(ndb, svc.run_now(ndb, integ, carol).id, "failed", failure_type="source")
    assert events_of(again) == []  # the same streak: one message
    fixed = _finish(ndb, svc.run_now(ndb, integ, carol).id, "succeeded")
    assert events_of(fixed) == [("recovery", carol.id)]
    calm = _finish(ndb, svc.run_now(ndb, integ, carol).id, "succeeded")
    assert events_of(calm) == []
    stopped = _finish(
        ndb, svc.run_now(ndb, integ, carol).id, "partial",
        resume_at=svc.context(ndb).now() + timedelta(hours=5),
    )
    assert events_of(stopped) == [("quota_exhausted", admin.id)]
    refused = _finish(ndb, svc.run_now(ndb, integ, carol).id, "failed", failure_type="auth")
    # a refused authorization is a failure too: "on failure" hears of it
    assert events_of(refused) == [("needs_reauth", carol.id)]
    _send(nplane, ndb)
    subjects = [m["Subject"] for m in smtp.messages]
    assert subjects == [
        "ctctsync: acme's job failed",
        "ctctsync: acme has recovered",
        "ctctsync: acme is waiting for the daily API quota",
        "ctctsync: acme needs re-authorization",
    ]


def test_a_run_deferred_by_the_quota_notifies_once_a_day(
    nplane: ControlPlane, ndb: Session, carol: User, clock: ManualClock
) -> None:
    integ = connected(ndb, carol)
    notes.create_channel(ndb, carol, "email", "me", "carol@example.com")
    notes.set_choices(ndb, carol, integ.id, ["quota_exhausted"])
    run = svc.run_now(ndb, integ, carol)
    run.transition("deferred")
    run.defer_reason = "today's quota is spent"
    assert notes.run_deferred(ndb, run) == 1
    ndb.commit()
    assert notes.run_deferred(ndb, run) == 0
    clock.advance(timedelta(days=1))
    assert notes.run_deferred(ndb, run) == 1
    ndb.commit()
    (d1, _d2) = _deliveries(ndb)
    assert "was deferred: today's quota is spent" in d1.body


@BOTH_STORES
def test_the_daily_digest_once_a_day_after_its_hour(
    nplane: ControlPlane, ndb: Session, carol: User, clock: ManualClock, smtp: SmtpSink
) -> None:
    integ = connected(ndb, carol)
    notes.create_channel(ndb, carol, "email", "me", "carol@example.com")
    notes.set_choices(ndb, carol, integ.id, ["digest"])
    _finish(ndb, svc.run_now(ndb, integ, carol).id, "succeeded", rows={"contacts": 1200})
    _finish(ndb, svc.run_now(ndb, integ, carol).id, "failed", error="CC answered 503")
    early = clock.now().replace(hour=6)
    assert notes.queue_digests(ndb, early) == 0  # before CTCTSYNC_NOTIFY_DIGEST_HOUR (7)
    report = _send(nplane, ndb)  # 09:00
    assert report.digests == 1 and len(report.sent) == 1
    assert _send(nplane, ndb).digests == 0
    (message,) = smtp.messages
    assert message["Subject"] == f"ctctsync: daily digest for {clock.now().date()}"
    text = message.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "acme (pending): 2 job(s), 1 succeeded, 1 failed; 1,200 rows" in text
    assert "Last error: CC answered 503" in text
    clock.advance(timedelta(days=1))
    assert _send(nplane, ndb).digests == 1


def test_choices_and_channels_are_checked_and_kept_secret(
    nplane: ControlPlane, ndb: Session, carol: User, tmp_path: Path
) -> None:
    integ = connected(ndb, carol)
    dave = svc.create_user(ndb, "dave@example.com", PASSWORD)
    with pytest.raises(NotFound):  # dave may not see carol's integration
        notes.set_choices(ndb, dave, integ.id, ["failure"])
    with pytest.raises(ValidationFailed) as bad:
        notes.set_choices(ndb, carol, integ.id, ["failure", "sometimes"])
    assert "Unknown event 'sometimes'" in bad.value.errors["events"]
    for kind, target, field, words in [
        ("webhook", "ftp://example.com/x", "target", "http:// or https://"),
        ("slack", "https://user:pw@hooks.example.com/x", "target", "no user name"),
        ("email", "not-an-address", "target", "e-mail address"),
        ("pager", "x", "kind", "Choose e-mail, webhook"),
    ]:
        with pytest.raises(ValidationFailed) as err:
            notes.create_channel(ndb, carol, kind, "n", target)
        assert words in err.value.errors[field], (kind, err.value.errors)
    with pytest.raises(NotFound):
        notes.delete_channel(ndb, dave, notes.create_channel(
            ndb, carol, "slack", "team", "https://hooks.example.com/services/T0/B0/sekrit")[0].id)
    stored = ndb.scalars(sa.select(NotificationChannel.target_encrypted)).one()
    assert "sekrit" not in stored and "hooks.example.com" not in stored
    assert ndb.scalars(sa.select(NotificationChannel.hint)).one() == "https://hooks.example.com/…"
    # without an SMTP server, e-mail cannot be chosen, and the message says what to set
    nplane.settings.smtp_host = None
    try:
        with pytest.raises(ValidationFailed) as err:
            notes.create_channel(ndb, carol, "email", "me", "carol@example.com")
        assert "CTCTSYNC_SMTP_HOST" in err.value.errors["kind"]
    finally:
        nplane.settings.smtp_host = "127.0.0.1"


def test_a_revoked_token_notifies_end_to_end(
    sandbox: Sandbox, tmp_path: Path, migrated_template: Path, smtp: SmtpSink
) -> None:
    """A real run against the sandbox with its token revoked: the worker records the
    failure and its outbox rows together; the sender mails and posts needs_reauth."""
    creds = sandbox.credentials
    settings = make_settings(
        tmp_path, cc_base_url=sandbox.base_url, api_key=creds.api_key,
        client_secret=creds.client_secret, cc_qps_limit=None,
        smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_security="none",
    )
    plane = open_plane(settings, ManualClock(), migrated_template)
    try:
        with plane.session() as db, webhook_receiver() as hook:
            owner = svc.ensure_first_admin(db, "owner@example.com", PASSWORD)
            assert owner is not None
            integ = svc.create_integration(db, owner, IntegrationCreate(  # type: ignore[arg-type]
                name="acme", history_start="2000-01-01", api_version="v2",
                tables={"contacts": None, "contact_lists": None},
            ))
            svc.set_manual_credentials(db, integ, creds.api_key, creds.access_token)
            _ch, secret = notes.create_channel(db, owner, "webhook", "ops", hook.url)
            notes.create_channel(db, owner, "email", "me", "owner@example.com")
            notes.set_choices(db, owner, integ.id, ["failure"])
            assert sandbox.revoke_token()
            db.rollback()
            (run_id,) = plane.tick().enqueued
            assert plane.work_once("w1") == run_id
            db.expire_all()
            assert db.get(Integration, integ.id).state == "needs_reauth"  # type: ignore[union-attr]
            db.rollback()
            report = plane.send_notifications()
            assert len(report.sent) == 2, report
            (request,) = hook.requests
        payload = json.loads(request.body)
        assert payload["event"] == "needs_reauth" and payload["run"]["id"] == run_id
        assert payload["run"]["failure_type"] == "auth"
        assert secret is not None and verify_signature(
            secret, request.headers["X-Ctctsync-Timestamp"],
            request.headers["X-Ctctsync-Signature"], request.body, plane.clock.now())
        (message,) = smtp.messages
        assert message["Subject"] == "ctctsync: acme needs re-authorization"
        text = message.get_payload(decode=True).decode()  # type: ignore[union-attr]
        assert creds.access_token not in text + request.body.decode()
    finally:
        plane.close()



def test_the_rest_api_manages_channels_and_choices(
    nplane: ControlPlane, ndb: Session, carol: User
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette prefers httpx2; httpx still works
        from starlette.testclient import TestClient

    integ = connected(ndb, carol)
    dave = svc.create_user(ndb, "dave@example.com", PASSWORD)
    as_carol = {"Authorization": f"Bearer {svc.create_api_token(ndb, carol, 't')[1]}"}
    as_dave = {"Authorization": f"Bearer {svc.create_api_token(ndb, dave, 't')[1]}"}
    ndb.rollback()
    url = "https://hooks.example.com/services/T0/B0/sekrit"
    with TestClient(create_api_app(nplane)) as api:
        assert api.get("/api/v1/notifications/channels").status_code == 401
        made = api.post("/api/v1/notifications/channels", headers=as_carol,
                        json={"kind": "webhook", "name": "ops", "target": url})
        assert made.status_code == 201, made.text
        body = made.json()
        assert body["secret"].startswith("whsec_") and body["hint"] == "https://hooks.example.com/…"
        listed = api.get("/api/v1/notifications/channels", headers=as_carol)
        assert "sekrit" not in listed.text and "whsec_" not in listed.text
        assert [c["name"] for c in listed.json()] == ["ops"]
        assert api.get("/api/v1/notifications/channels", headers=as_dave).json() == []
        bad = api.post("/api/v1/notifications/channels", headers=as_carol,
                       json={"kind": "slack", "name": "x", "target": "hooks.example.com"})
        assert bad.status_code == 422 and "http://" in bad.json()["errors"]["target"]

        chose = api.put(f"/api/v1/notifications/choices/{integ.id}", headers=as_carol,
                        json={"events": ["recovery", "failure"]})
        assert chose.json() == {"integration_id": integ.id, "events": ["failure", "recovery"]}
        assert api.get("/api/v1/notifications/choices", headers=as_carol).json() == [
            {"integration_id": integ.id, "events": ["failure", "recovery"]}
        ]
        assert api.put(f"/api/v1/notifications/choices/{integ.id}", headers=as_dave,
                       json={"events": ["failure"]}).status_code == 404
        unknown = api.put(f"/api/v1/notifications/choices/{integ.id}", headers=as_carol,
                          json={"events": ["sometimes"]})
        assert unknown.status_code == 422

        with nplane.session() as db:
            me, it = db.get(User, carol.id), db.get(Integration, integ.id)
            assert me is not None and it is not None
            run = svc.run_now(db, it, me)
            _finish(db, run.id, "failed", failure_type="source", error="boom")
        (delivery,) = api.get("/api/v1/notifications/deliveries", headers=as_carol).json()
        assert (delivery["event"], delivery["status"], delivery["run_id"]) == (
            "failure", "pending", run.id)
        assert api.get("/api/v1/notifications/deliveries", headers=as_dave).json() == []
        channel_id = body["id"]
        gone = api.delete(f"/api/v1/notifications/channels/{channel_id}", headers=as_dave)
        assert gone.status_code == 404
        done = api.delete(f"/api/v1/notifications/channels/{channel_id}", headers=as_carol)
        assert done.status_code == 204
        assert api.get("/api/v1/notifications/deliveries", headers=as_carol).json() == []


def test_serve_s_notifier_thread_sends_without_being_asked(
    nplane: ControlPlane, ndb: Session, carol: User
) -> None:
    """``start()`` runs the sender on its own thread: a queued delivery goes out with no
    explicit pass (woken by a job's end, or at the latest each scheduler interval)."""
    nplane.settings.scheduler_interval_seconds = 0.2
    with webhook_receiver() as hook:
        channel, _secret = notes.create_channel(ndb, carol, "webhook", "ops", hook.url)
        delivery = notes.queue_test(ndb, carol, channel.id)
        ndb.rollback()
        nplane.start()
        try:
            assert hook.got.wait(10), "the notifier thread sent nothing"
        finally:
            nplane.stop()
        assert "ctctsync-notifier" not in nplane.dead_threads()
    (sent,) = _deliveries(ndb)
    assert (sent.id, sent.status) == (delivery.id, "sent")


def test_finished_deliveries_are_pruned_with_the_job_history(
    nplane: ControlPlane, ndb: Session, carol: User, clock: ManualClock
) -> None:
    with webhook_receiver() as hook:
        channel, _ = notes.create_channel(ndb, carol, "webhook", "ops", hook.url)
        sent = notes.queue_test(ndb, carol, channel.id)
        _send(nplane, ndb)
    waiting = notes.queue_test(ndb, carol, channel.id)
    ndb.execute(  # a receiver down for months: the row stays pending (not due yet)
        sa.update(NotificationDelivery)
        .where(NotificationDelivery.id == waiting.id)
        .values(next_attempt_at=clock.now() + timedelta(days=365))
    )
    ndb.commit()
    clock.advance(timedelta(days=nplane.settings.run_retention_days - 1))
    ndb.rollback()
    nplane.prune()
    assert {d.id for d in _deliveries(ndb)} == {sent.id, waiting.id}
    clock.advance(timedelta(days=2))
    ndb.rollback()
    nplane.prune()
    assert [d.id for d in _deliveries(ndb)] == [waiting.id]


@pytest.mark.postgres
def test_the_fleet_sends_in_a_periodic_job_of_its_own(
    pg_url: str, tmp_path: Path, clock: ManualClock
) -> None:
    from ctctsync.control.fleet import NOTIFY, TICK

    plane = ControlPlane(
        make_settings(tmp_path, database_url=pg_url, queue="procrastinate"), clock=clock
    )
    try:
        assert plane.fleet is not None
        app = plane.fleet.app
        periodic = {p.task.name for p in app.periodic_registry.periodic_tasks.values()}
        assert {NOTIFY, TICK} <= periodic  # on the tick's cadence, but not the tick
        with plane.session() as db, webhook_receiver() as hook:
            user = svc.ensure_first_admin(db, "ops@example.com", PASSWORD)
            assert user is not None
            channel, _ = notes.create_channel(db, user, "webhook", "ops", hook.url)
            notes.queue_test(db, user, channel.id)
            app.tasks[NOTIFY](timestamp=0)  # what a worker runs when the job is due
            assert len(hook.requests) == 1
            db.expire_all()
            assert db.scalars(sa.select(NotificationDelivery.status)).one() == "sent"
    finally:
        plane.close()


def test_the_smtp_password_is_scrubbed_once_it_is_used(tmp_path: Path, smtp: SmtpSink) -> None:
    # the sink offers no AUTH: the sign-in fails after the password was taken in hand
    password = "smtp-pass-" + tmp_path.name
    settings = make_settings(tmp_path, smtp_host="127.0.0.1", smtp_port=smtp.port,
                             smtp_security="none", smtp_user="ops", smtp_password=password)
    with pytest.raises(DeliveryFailed) as failed:
        send_email(settings, "carol@example.com", "subject", "body")
    assert password not in failed.value.message
    # a server or library echoing it into a stored error or a log line gets it scrubbed
    assert password not in redact(f"535 authentication failed for ops/{password}")


def test_a_last_attempt_that_never_ended_is_given_up_not_tried_again(
    nplane: ControlPlane, ndb: Session, carol: User, clock: ManualClock
) -> None:
    integ = connected(ndb, carol)
    with webhook_receiver() as hook:
        notes.create_channel(ndb, carol, "webhook", "ops", hook.url)
        notes.set_choices(ndb, carol, integ.id, ["failure"])
        run = svc.run_now(ndb, integ, carol)
        _finish(ndb, run.id, "failed", failure_type="source", error="boom")
        (delivery,) = _deliveries(ndb)
        # as a sender killed during the last attempt leaves it: claimed, leased, no outcome
        delivery.attempts = MAX_ATTEMPTS
        delivery.last_attempt_at = clock.now()
        delivery.next_attempt_at = clock.now() + timedelta(seconds=LEASE_SECONDS)
        ndb.commit()
        assert _send(nplane, ndb).sent == []  # leased: not yet
        clock.advance(timedelta(seconds=LEASE_SECONDS))
        report = _send(nplane, ndb)
        assert hook.requests == [] and report.sent == [] and report.retrying == []
    (delivery,) = _deliveries(ndb)
    assert (delivery.status, delivery.attempts) == ("failed", MAX_ATTEMPTS)
    assert delivery.next_attempt_at is None
    assert delivery.last_error is not None and "stopped during attempt 6" in delivery.last_error


def test_a_deactivated_user_s_pending_deliveries_are_not_sent(
    nplane: ControlPlane, ndb: Session, carol: User
) -> None:
    integ = connected(ndb, carol)
    with webhook_receiver() as hook:
        notes.create_channel(ndb, carol, "webhook", "ops", hook.url)
        notes.set_choices(ndb, carol, integ.id, ["failure"])
        run = svc.run_now(ndb, integ, carol)
        _finish(ndb, run.id, "failed", failure_type="source", error="boom")
        admin = svc.get_user(ndb, 1)
        assert admin is not None
        svc.deactivate_user(ndb, admin, carol.id)
        report = _send(nplane, ndb)
        assert hook.requests == [] and report.sent == [] and len(report.failed) == 1
    (delivery,) = _deliveries(ndb)
    assert (delivery.status, delivery.last_error) == (
        "failed", "the channel's owner is deactivated")


def test_a_greylisted_recipient_is_tried_again_a_refused_one_given_up(
    nplane: ControlPlane, ndb: Session, carol: User, smtp: SmtpSink, clock: ManualClock
) -> None:
    integ = connected(ndb, carol)
    notes.create_channel(ndb, carol, "email", "me", "carol@example.com")
    notes.set_choices(ndb, carol, integ.id, ["failure", "recovery"])
    smtp.rcpt_answers = ["450 4.2.0 Greylisted, try again later"]
    run = svc.run_now(ndb, integ, carol)
    _finish(ndb, run.id, "failed", failure_type="source", error="boom")
    first = _send(nplane, ndb)
    (delivery,) = _deliveries(ndb)
    assert first.retrying == [delivery.id] and smtp.messages == []
    assert delivery.last_error is not None and "refused the recipient" in delivery.last_error
    assert "(answer 450)" in delivery.last_error
    clock.advance(RETRY_DELAYS[0])
    assert _send(nplane, ndb).sent == [delivery.id] and len(smtp.messages) == 1
    # "no such user" is final
    smtp.rcpt_answers = ["550 5.1.1 No such user"]
    _finish(ndb, svc.run_now(ndb, integ, carol).id, "succeeded")
    assert len(_send(nplane, ndb).failed) == 1 and len(smtp.messages) == 1
