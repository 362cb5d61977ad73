"""Notifications: each user's channels, their per-integration choices, and the events that
write the outbox (``notification_deliveries``).

Event functions (:func:`run_finished`, :func:`run_deferred`, :func:`queue_digests`) add
delivery rows to the caller's session *without committing*: they are called in the
transaction that records the run's outcome, so an outcome and its notifications are stored
together or not at all (a transactional outbox). ``ctctsync.control.notify`` sends them.

Which event a run makes (docs/architecture-control.md, "Notifications"):

- failed, Constant Contact refused the authorization -> ``needs_reauth`` (sent to users who
  chose it or "on failure": it is a failure too);
- failed otherwise -> ``failure``, for the first failure of a streak only (the previous
  finished run did not fail): an hourly integration failing all night sends one message,
  the digest tells the rest;
- stopped (``partial``) or deferred by the daily API quota -> ``quota_exhausted``;
- succeeded after a failed run -> ``recovery``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ctctsync.control.context import context
from ctctsync.control.errors import NotFound, ValidationFailed
from ctctsync.control.models import (
    CHANNEL_KINDS,
    NOTIFICATION_EVENTS,
    Integration,
    NotificationChannel,
    NotificationDelivery,
    NotificationSubscription,
    Run,
    User,
)
from ctctsync.control.services.integrations import get_integration

EVENT_LABELS: Final[dict[str, str]] = {
    "failure": "Failure",
    "needs_reauth": "Needs re-authorization",
    "quota_exhausted": "Quota exhausted",
    "recovery": "Recovery",
    "digest": "Daily digest",
    "test": "Test",
}
"""How events read on the page (the choices' column headers and the deliveries list)."""
KIND_LABELS: Final[dict[str, str]] = {
    "email": "E-mail",
    "webhook": "Webhook (signed JSON)",
    "slack": "Slack-compatible webhook",
}
MAX_CHANNELS_PER_USER: Final = 20
"""A user's channels; more is a mistake (every event is sent to each)."""
MAX_NAME_CHARS: Final = 100
MAX_URL_CHARS: Final = 2000
MAX_EMAIL_CHARS: Final = 320
DELIVERIES_SHOWN: Final = 100
"""The newest deliveries the page and the API list."""
DIGEST_WINDOW: Final = timedelta(hours=24)
ERROR_IN_MESSAGE_CHARS: Final = 500
"""A run's error is cut to this length in a message (the job page has all of it)."""

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MATCHING: Final[dict[str, frozenset[str]]] = {
    # event -> the choices that receive it
    "failure": frozenset({"failure"}),
    "needs_reauth": frozenset({"needs_reauth", "failure"}),
    "quota_exhausted": frozenset({"quota_exhausted"}),
    "recovery": frozenset({"recovery"}),
}


# ----------------------------------------------------------------------------- channels


def _mask_email(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:2]}…@{domain}"


def _url_hint(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}/…"


def _check_url(url: str) -> str | None:
    if not url:
        return "Enter the URL the notifications are posted to."
    if len(url) > MAX_URL_CHARS:
        return f"The URL is longer than {MAX_URL_CHARS} characters."
    if any(c.isspace() for c in url):
        return "The URL contains spaces."
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "Enter a full http:// or https:// URL, e.g. https://hooks.example.com/ctctsync."
    if parts.username or parts.password:
        return "Put no user name or password in the URL."
    return None


def list_channels(db: Session, user: User) -> list[NotificationChannel]:
    """The user's channels, oldest first."""
    return list(
        db.scalars(
            sa.select(NotificationChannel)
            .where(NotificationChannel.user_id == user.id)
            .order_by(NotificationChannel.id)
        )
    )


def get_channel(db: Session, user: User, channel_id: int) -> NotificationChannel:
    """One of the user's own channels; ``NotFound`` otherwise (admins included: a channel
    is its owner's)."""
    channel = db.get(NotificationChannel, channel_id)
    if channel is None or channel.user_id != user.id:
        raise NotFound(f"No notification channel with id {channel_id}.")
    return channel


def create_channel(
    db: Session, user: User, kind: str, name: str, target: str
) -> tuple[NotificationChannel, str | None]:
    """Add a channel; returns it and, for a webhook, its signing secret -- shown this once,
    stored only encrypted. ``ValidationFailed`` (per field) when the input is not usable."""
    ctx = context(db)
    name, target = name.strip(), target.strip()
    errors: dict[str, str] = {}
    if kind not in CHANNEL_KINDS:
        errors["kind"] = "Choose e-mail, webhook or Slack-compatible webhook."
    elif kind == "email" and not ctx.settings.smtp_host:
        errors["kind"] = (
            "E-mail needs an SMTP server, and none is configured: an administrator sets "
            "CTCTSYNC_SMTP_HOST (docs/operations.md). Use a webhook meanwhile."
        )
    if not name:
        errors["name"] = "Give the channel a name, e.g. “data team”."
    elif len(name) > MAX_NAME_CHARS:
        errors["name"] = f"Use at most {MAX_NAME_CHARS} characters."
    if kind == "email":
        if len(target) > MAX_EMAIL_CHARS or not _EMAIL_RE.match(target):
            errors["target"] = "Enter an e-mail address such as you@example.com."
    elif kind in ("webhook", "slack") and (problem := _check_url(target)) is not None:
        errors["target"] = problem
    count = db.scalar(sa.select(sa.func.count()).where(NotificationChannel.user_id == user.id))
    if not errors and int(count or 0) >= MAX_CHANNELS_PER_USER:
        errors["name"] = f"You have {MAX_CHANNELS_PER_USER} channels, the limit; delete one first."
    if errors:
        raise ValidationFailed(errors)
    secret: str | None = None
    if kind == "email":
        data, hint = {"to": target}, _mask_email(target)
    elif kind == "webhook":
        secret = "whsec_" + secrets.token_urlsafe(32)
        data, hint = {"url": target, "secret": secret}, _url_hint(target)
    else:
        data, hint = {"url": target}, _url_hint(target)
    channel = NotificationChannel(
        user_id=user.id,
        kind=kind,
        name=name,
        target_encrypted=ctx.box.encrypt_json(data),
        hint=hint,
        enabled=True,
        created_at=ctx.now(),
    )
    db.add(channel)
    db.commit()
    return channel, secret


def delete_channel(db: Session, user: User, channel_id: int) -> None:
    """Delete one of the user's channels and its deliveries (pending ones are not sent)."""
    db.delete(get_channel(db, user, channel_id))
    db.commit()


def set_channel_enabled(db: Session, user: User, channel_id: int, enabled: bool) -> None:
    """Turn a channel on or off (off: no new deliveries, pending ones are given up on)."""
    get_channel(db, user, channel_id).enabled = enabled
    db.commit()


# ----------------------------------------------------------------------------- choices


def choices(db: Session, user: User) -> dict[int, set[str]]:
    """The user's chosen events per integration id (integrations with none are absent)."""
    rows = db.scalars(
        sa.select(NotificationSubscription).where(NotificationSubscription.user_id == user.id)
    )
    return {row.integration_id: set(row.events) for row in rows if row.events}


def set_choices(db: Session, user: User, integration_id: int, events: Iterable[str]) -> set[str]:
    """Choose which events of one integration notify the user; returns the choice stored.
    ``NotFound`` for an integration the user may not see; ``ValidationFailed`` for an
    unknown event."""
    get_integration(db, user, integration_id)  # the one visibility rule of integrations
    chosen = set(events)
    unknown = sorted(chosen - set(NOTIFICATION_EVENTS))
    if unknown:
        known = ", ".join(NOTIFICATION_EVENTS)
        raise ValidationFailed({"events": f"Unknown event {unknown[0]!r}; choose from {known}."})
    row = db.scalar(
        sa.select(NotificationSubscription).where(
            NotificationSubscription.user_id == user.id,
            NotificationSubscription.integration_id == integration_id,
        )
    )
    ordered: list[str] = [e for e in NOTIFICATION_EVENTS if e in chosen]
    if row is None:
        row = NotificationSubscription(user_id=user.id, integration_id=integration_id)
        db.add(row)
    row.events = ordered
    row.updated_at = context(db).now()
    db.commit()
    return set(ordered)


# ----------------------------------------------------------------------------- deliveries


def list_deliveries(
    db: Session, user: User, limit: int = DELIVERIES_SHOWN
) -> list[NotificationDelivery]:
    """The newest deliveries: the user's own, or everyone's for an administrator."""
    query = sa.select(NotificationDelivery).order_by(
        NotificationDelivery.created_at.desc(), NotificationDelivery.id.desc()
    )
    if not user.is_admin:
        query = query.where(NotificationDelivery.user_id == user.id)
    return list(db.scalars(query.limit(limit)))


def queue_test(db: Session, user: User, channel_id: int) -> NotificationDelivery:
    """A test message to one of the user's channels, due now (committed)."""
    channel = get_channel(db, user, channel_id)
    now = context(db).now()
    subject = "ctctsync: test notification"
    body = (
        f"This is a test of the channel “{channel.name}”, sent at "
        f"{now:%Y-%m-%d %H:%M:%S} UTC from {context(db).settings.public_base_url}/notifications."
    )
    delivery = NotificationDelivery(
        channel_id=channel.id,
        user_id=user.id,
        event="test",
        dedupe_key=f"test:{secrets.token_hex(8)}",
        subject=subject,
        body=body,
        payload={"event": "test", "occurred_at": now.isoformat(), "summary": subject},
        status="pending",
        attempts=0,
        created_at=now,
        next_attempt_at=now,
    )
    db.add(delivery)
    db.commit()
    return delivery


def _queue(
    db: Session,
    user_id: int,
    *,
    event: str,
    dedupe_key: str,
    subject: str,
    body: str,
    payload: dict[str, Any],
    integration_id: int | None = None,
    run_id: str | None = None,
) -> int:
    """Add one delivery per enabled channel of the user (not already queued for this key)."""
    now = context(db).now()
    channels = list(
        db.scalars(
            sa.select(NotificationChannel).where(
                NotificationChannel.user_id == user_id, NotificationChannel.enabled.is_(True)
            )
        )
    )
    if not channels:
        return 0
    done = set(
        db.scalars(
            sa.select(NotificationDelivery.channel_id).where(
                NotificationDelivery.dedupe_key == dedupe_key,
                NotificationDelivery.channel_id.in_([c.id for c in channels]),
            )
        )
    )
    added = 0
    for channel in channels:
        if channel.id in done:
            continue
        db.add(
            NotificationDelivery(
                channel_id=channel.id,
                user_id=user_id,
                integration_id=integration_id,
                run_id=run_id,
                event=event,
                dedupe_key=dedupe_key,
                subject=subject,
                body=body,
                payload=payload,
                status="pending",
                attempts=0,
                created_at=now,
                next_attempt_at=now,
            )
        )
        added += 1
    return added


def _subscribers(db: Session, integ: Integration, event: str) -> list[int]:
    """Ids of the active users who chose ``event`` (or a choice receiving it) for ``integ``
    and may still see it."""
    wanted = _MATCHING[event]
    rows = db.execute(
        sa.select(NotificationSubscription.events, User.id, User.is_admin)
        .join(User, User.id == NotificationSubscription.user_id)
        .where(NotificationSubscription.integration_id == integ.id, User.is_active.is_(True))
    ).all()
    return [
        user_id
        for events, user_id, is_admin in rows
        if wanted & set(events or ()) and (is_admin or integ.created_by_id == user_id)
    ]


def _base_url(db: Session) -> str:
    return context(db).settings.public_base_url


def _run_payload(
    db: Session, integ: Integration, run: Run, event: str, summary: str
) -> dict[str, Any]:
    base = _base_url(db)
    return {
        "event": event,
        "summary": summary,
        "occurred_at": context(db).now().isoformat(),
        "integration": {
            "id": integ.id,
            "name": integ.name,
            "state": integ.state,
            "url": f"{base}/integrations/{integ.id}",
        },
        "run": {
            "id": run.id,
            "status": run.status,
            "trigger": run.trigger,
            "failure_type": run.failure_type,
            "error": run.error,
            "started_at": run.started_at.isoformat() if run.started_at else None,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "resume_at": run.resume_at.isoformat() if run.resume_at else None,
            "rows": sum((run.rows or {}).values()),
            "api_calls": run.api_calls,
            "url": f"{base}/jobs/{run.id}",
        },
    }


def _previous_outcome(db: Session, run: Run) -> str | None:
    """The status of the integration's finished run before ``run`` (cancelled ones do not
    count: a cancel says nothing of health), or None."""
    when = run.finished_at or context(db).now()
    return db.scalar(
        sa.select(Run.status)
        .where(
            Run.integration_id == run.integration_id,
            Run.id != run.id,
            Run.status.in_(("succeeded", "partial", "failed")),
            Run.finished_at <= when,
        )
        .order_by(Run.finished_at.desc(), Run.created_at.desc())
        .limit(1)
    )


def _notify_run(db: Session, integ: Integration, run: Run, event: str, dedupe_key: str) -> int:
    users = _subscribers(db, integ, event)
    if not users:
        return 0
    error = (run.error or "")[:ERROR_IN_MESSAGE_CHARS]
    base = _base_url(db)
    if event == "needs_reauth":
        subject = f"ctctsync: {integ.name} needs re-authorization"
        lead = (
            f"Constant Contact refused {integ.name}'s authorization, so its runs have stopped. "
            f"Authorize it again: {base}/integrations/{integ.id}"
        )
    elif event == "failure":
        subject = f"ctctsync: {integ.name}'s job failed"
        lead = f"A {run.trigger} job of {integ.name} failed."
    elif event == "quota_exhausted":
        subject = f"ctctsync: {integ.name} is waiting for the daily API quota"
        when = run.resume_at.strftime("%Y-%m-%d %H:%M UTC") if run.resume_at else "the reset"
        reason = run.defer_reason or "the day's API calls are spent"
        lead = (
            f"A job of {integ.name} {'was deferred' if run.status == 'deferred' else 'stopped'}: "
            f"{reason}. It continues at {when}."
        )
    else:
        subject = f"ctctsync: {integ.name} has recovered"
        lead = f"{integ.name}'s {run.trigger} job succeeded after a failure."
    lines = [lead]
    if error and event in ("failure", "needs_reauth"):
        lines.append(f"Error: {error}")
    lines.append(f"Job: {base}/jobs/{run.id}")
    body = "\n\n".join(lines)
    payload = _run_payload(db, integ, run, event, subject)
    return sum(
        _queue(
            db,
            user_id,
            event=event,
            dedupe_key=dedupe_key,
            subject=subject,
            body=body,
            payload=payload,
            integration_id=integ.id,
            run_id=run.id,
        )
        for user_id in users
    )


def run_finished(db: Session, run: Run) -> int:
    """Queue the notifications a finished run makes (see the module's docstring); returns
    how many deliveries. Call it after the run's outcome and the integration's new state
    are set, before the commit that stores them."""
    integ = run.integration
    if run.status == "failed":
        if run.failure_type == "auth" or integ.state == "needs_reauth":
            return _notify_run(db, integ, run, "needs_reauth", f"needs_reauth:{run.id}")
        if _previous_outcome(db, run) == "failed":
            return 0  # not the first of the streak
        return _notify_run(db, integ, run, "failure", f"failure:{run.id}")
    if run.status == "partial" and run.resume_at is not None:
        return _notify_run(db, integ, run, "quota_exhausted", f"quota:{run.id}")
    if run.status in ("succeeded", "partial") and _previous_outcome(db, run) == "failed":
        return _notify_run(db, integ, run, "recovery", f"recovery:{run.id}")
    return 0


def run_deferred(db: Session, run: Run) -> int:
    """Queue ``quota_exhausted`` for a run the quota guard deferred (once a day per run: a
    run deferred again after the reset is news again)."""
    day = context(db).now().date().isoformat()
    return _notify_run(db, run.integration, run, "quota_exhausted", f"quota:{run.id}:{day}")


# ----------------------------------------------------------------------------- digest


def _digest_lines(db: Session, integ: Integration, since: datetime) -> tuple[str, dict[str, Any]]:
    runs = list(
        db.scalars(
            sa.select(Run).where(
                Run.integration_id == integ.id,
                Run.finished_at.is_not(None),
                Run.finished_at >= since,
            )
        )
    )
    ok = sum(1 for r in runs if r.status == "succeeded")
    failed = [r for r in runs if r.status == "failed"]
    rows = sum(sum((r.rows or {}).values()) for r in runs)
    calls = sum(r.api_calls or 0 for r in runs)
    line = (
        f"{integ.name} ({integ.state}): {len(runs)} job(s), {ok} succeeded, {len(failed)} failed; "
        f"{rows:,} rows; {calls:,} API calls."
    )
    last_error = max(failed, key=lambda r: r.finished_at or since).error if failed else None
    if last_error:
        line += f"\n  Last error: {last_error[:ERROR_IN_MESSAGE_CHARS]}"
    data = {
        "id": integ.id,
        "name": integ.name,
        "state": integ.state,
        "jobs": len(runs),
        "succeeded": ok,
        "failed": len(failed),
        "rows": rows,
        "api_calls": calls,
        "last_error": last_error,
    }
    return line, data


def queue_digests(db: Session, now: datetime) -> int:
    """Queue today's digest (the last 24 hours of each integration the user chose it for)
    to every user who has not had it today, once ``notify_digest_hour`` (UTC) has come;
    commits and returns how many deliveries."""
    settings = context(db).settings
    if now.hour < settings.notify_digest_hour:
        return 0
    day = now.date().isoformat()
    key = f"digest:{day}"
    rows = db.execute(
        sa.select(NotificationSubscription.user_id, NotificationSubscription.events, Integration)
        .join(Integration, Integration.id == NotificationSubscription.integration_id)
        .join(User, User.id == NotificationSubscription.user_id)
        .where(User.is_active.is_(True))
    ).all()
    wanted: dict[int, list[Integration]] = {}
    admins = set(db.scalars(sa.select(User.id).where(User.is_admin.is_(True))))
    for user_id, events, integ in rows:
        if "digest" in (events or ()) and (user_id in admins or integ.created_by_id == user_id):
            wanted.setdefault(user_id, []).append(integ)
    if not wanted:
        return 0
    done = set(
        db.scalars(
            sa.select(NotificationDelivery.user_id).where(NotificationDelivery.dedupe_key == key)
        )
    )
    added = 0
    since = now - DIGEST_WINDOW
    for user_id, integrations in wanted.items():
        if user_id in done:
            continue
        parts = [
            _digest_lines(db, integ, since) for integ in sorted(integrations, key=lambda i: i.name)
        ]
        subject = f"ctctsync: daily digest for {day}"
        body = "\n\n".join(
            [f"The last 24 hours, to {now:%Y-%m-%d %H:%M} UTC:"]
            + [line for line, _ in parts]
            + [f"All integrations: {_base_url(db)}/integrations"]
        )
        payload = {
            "event": "digest",
            "summary": subject,
            "occurred_at": now.isoformat(),
            "since": since.isoformat(),
            "integrations": [data for _, data in parts],
        }
        added += _queue(
            db, user_id, event="digest", dedupe_key=key, subject=subject, body=body, payload=payload
        )
    db.commit()
    return added


__all__ = [
    "DELIVERIES_SHOWN",
    "DIGEST_WINDOW",
    "EVENT_LABELS",
    "KIND_LABELS",
    "MAX_CHANNELS_PER_USER",
    "choices",
    "create_channel",
    "delete_channel",
    "get_channel",
    "list_channels",
    "list_deliveries",
    "queue_digests",
    "queue_test",
    "run_deferred",
    "run_finished",
    "set_channel_enabled",
    "set_choices",
]
