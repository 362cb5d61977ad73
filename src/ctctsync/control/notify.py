"""Sending notifications: the outbox's sender and its three transports.

Events write ``notification_deliveries`` rows in the transaction that records them
(``ctctsync.control.services.notifications``); this module sends the due rows. A pass
(:meth:`Notifier.run_pass`) queues the day's digests, then claims up to
:data:`BATCH_SIZE` due rows, sends each, and records the outcome: sent, to be retried after
the next of :data:`RETRY_DELAYS`, or given up on after :data:`MAX_ATTEMPTS` (or at once for
an answer no retry can change, such as a 404 or a refused recipient).

Who runs the passes: in ``serve`` (threads) a notifier thread of its own, woken when a run
ends; in the fleet a periodic procrastinate job beside the scheduler's tick. Never the tick
itself: a mail server that takes :data:`SEND_TIMEOUT_SECONDS` to time out on every message
must not hold up scheduling runs or sweeping dead ones.

A claim is a lease: the row's ``next_attempt_at`` moves :data:`LEASE_SECONDS` ahead in a
short transaction before anything is sent, so two processes sharing the store never send one
row at once, and a process that dies mid-send leaves the row due again when the lease ends
(at-least-once delivery: receivers de-duplicate by the ``X-Ctctsync-Delivery`` id).

Webhooks are signed (docs/operations.md, "Verifying webhook signatures"): the
``X-Ctctsync-Signature`` header is ``v1=`` and the hex HMAC-SHA256, keyed with the channel's
secret, of ``<X-Ctctsync-Timestamp>.<body>``; :func:`verify_signature` is the receiver's
side.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import urlsplit

import sqlalchemy as sa

from ctctsync.control.models import NotificationDelivery
from ctctsync.control.services.notifications import queue_digests
from ctctsync.errors import Redactor, register_secret

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ctctsync.control.clock import Clock
    from ctctsync.control.context import ControlContext
    from ctctsync.control.settings import ControlSettings

log = logging.getLogger(__name__)

RETRY_DELAYS: Final[tuple[timedelta, ...]] = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
    timedelta(hours=3),
)
"""How long a failed delivery waits before its next attempt (after the 1st, 2nd ...): a
receiver restarted or briefly down is reached within minutes, a longer outage within hours."""
MAX_ATTEMPTS: Final = len(RETRY_DELAYS) + 1
"""Attempts before a delivery is given up on (``failed``): six, spanning about 4.3 hours."""
SEND_TIMEOUT_SECONDS: Final = 10.0
"""Connect and read timeout of one attempt (SMTP or HTTP)."""
LEASE_SECONDS: Final = 300
"""How long a claimed delivery is held by the process sending it; must exceed the longest
attempt (an SMTP conversation is a few timed-out steps at most)."""
BATCH_SIZE: Final = 50
"""Deliveries claimed per pass; the next pass (seconds later) takes the rest."""
SIGNATURE_TOLERANCE_SECONDS: Final = 300
"""How old a webhook's timestamp may be before :func:`verify_signature` refuses it (replay)."""
ERROR_MAX_CHARS: Final = 300
"""A recorded error is cut to this length (a mail server's answer can be long)."""
USER_AGENT: Final = "ctctsync-notifications/1"
MAX_ANSWER_BYTES: Final = 65536
"""A receiver's answer is read up to this and dropped (only its status matters)."""

STOPPED_MID_ATTEMPT: Final = (
    f"the sender stopped during attempt {MAX_ATTEMPTS} of {MAX_ATTEMPTS} (crashed or was "
    "killed before it recorded the outcome)"
)
"""The error of a delivery given up because its last attempt never recorded an outcome."""

SIGNATURE_HEADER: Final = "X-Ctctsync-Signature"
TIMESTAMP_HEADER: Final = "X-Ctctsync-Timestamp"
DELIVERY_HEADER: Final = "X-Ctctsync-Delivery"
EVENT_HEADER: Final = "X-Ctctsync-Event"


class DeliveryFailed(Exception):  # noqa: N818 -- an outcome, said as such
    """One attempt failed; ``message`` names no URL or secret, ``retry`` says whether
    another attempt can succeed."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.message = message
        self.retry = retry


# ----------------------------------------------------------------------------- signatures


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Ctctsync-Signature`` value of ``body`` sent at ``timestamp`` (Unix seconds)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + digest.hexdigest()


def verify_signature(
    secret: str,
    timestamp: str,
    signature: str,
    body: bytes,
    now: datetime,
    tolerance_seconds: int = SIGNATURE_TOLERANCE_SECONDS,
) -> bool:
    """Whether a webhook request is genuine and fresh: the signature matches the raw body
    and timestamp, and the timestamp is within ``tolerance_seconds`` of ``now``."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs(now.timestamp() - sent) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


# ----------------------------------------------------------------------------- transports


def _host(url: str) -> str:
    return urlsplit(url).hostname or "?"


def send_email(settings: ControlSettings, to: str, subject: str, body: str) -> None:
    """Send one plain-text e-mail through the configured SMTP server."""
    host = settings.smtp_host
    if not host:
        raise DeliveryFailed(
            "e-mail is not configured on this server (CTCTSYNC_SMTP_HOST is unset)", retry=False
        )
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain=settings.smtp_from.rpartition("@")[2] or None)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies, please
    msg.set_content(body)
    where = f"the mail server {host}:{settings.smtp_port}"
    try:
        smtp: smtplib.SMTP
        if settings.smtp_security == "ssl":
            smtp = smtplib.SMTP_SSL(
                host,
                settings.smtp_port,
                timeout=SEND_TIMEOUT_SECONDS,
                context=ssl.create_default_context(),
            )
        else:
            smtp = smtplib.SMTP(host, settings.smtp_port, timeout=SEND_TIMEOUT_SECONDS)
        with smtp:
            if settings.smtp_security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user:
                password = (
                    settings.smtp_password.get_secret_value() if settings.smtp_password else ""
                )
                # the process's own secret: scrubbed from every redacted text from now on
                # (a server or library echoing it into an error, a stored message)
                register_secret(password or None)
                smtp.login(settings.smtp_user, password)
            smtp.send_message(msg)
    except smtplib.SMTPRecipientsRefused as exc:
        # a 4xx refusal is "not now" (greylisting, a full mailbox): retried like any 4xx;
        # a 5xx one (no such user) is final
        codes = sorted({code for code, _text in exc.recipients.values()})
        temporary = bool(codes) and all(400 <= code < 500 for code in codes)
        answer = f" (answer {', '.join(map(str, codes))})" if codes else ""
        raise DeliveryFailed(
            f"{where} refused the recipient address{answer}", retry=temporary
        ) from None
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryFailed(
            f"{where} refused the sign-in (answer {exc.smtp_code}); check CTCTSYNC_SMTP_USER "
            "and CTCTSYNC_SMTP_PASSWORD",
            retry=True,  # an operator fixing the settings should not lose the message
        ) from None
    except smtplib.SMTPResponseException as exc:
        # 4xx: try again later (greylisting, a full queue); 5xx: permanent
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else ""
        raise DeliveryFailed(
            f"{where} answered {exc.smtp_code} {text}".strip(), retry=400 <= exc.smtp_code < 500
        ) from None
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryFailed(
            f"could not reach {where} ({type(exc).__name__})", retry=True
        ) from None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not followed: it could carry the signed body elsewhere."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects())


def _post(url: str, content: bytes, headers: dict[str, str], what: str) -> None:
    # urllib rather than httpx: httpx logs every request's full URL at INFO, and a webhook's
    # URL is a secret (Slack's carries its token in the path).
    request = urllib.request.Request(  # noqa: S310 -- the scheme is checked when saved
        url,
        data=content,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers},
    )
    try:
        with _OPENER.open(request, timeout=SEND_TIMEOUT_SECONDS) as response:
            response.read(MAX_ANSWER_BYTES)
            return
    except urllib.error.HTTPError as exc:
        code = exc.code
        exc.close()
    except (OSError, ValueError) as exc:  # URLError, timeouts, refused connections
        reason = getattr(exc, "reason", exc)
        raise DeliveryFailed(
            f"could not reach the {what} at {_host(url)} ({type(reason).__name__})", retry=True
        ) from None
    retry = code >= 500 or code in (408, 425, 429)
    advice = "" if retry else "; check the URL"
    raise DeliveryFailed(f"the {what} at {_host(url)} answered {code}{advice}", retry=retry)


def webhook_body(payload: dict[str, Any]) -> bytes:
    """The JSON a webhook receives (compact; keys sorted so a body is reproducible)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str).encode()


def send_webhook(
    url: str, secret: str, payload: dict[str, Any], *, delivery_id: int, now: datetime
) -> None:
    """POST the signed JSON of ``payload`` to a generic webhook."""
    body = webhook_body(payload)
    timestamp = str(int(now.timestamp()))
    headers = {
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        DELIVERY_HEADER: str(delivery_id),
        EVENT_HEADER: str(payload.get("event", "")),
    }
    _post(url, body, headers, "webhook")


def send_slack(url: str, subject: str, body: str) -> None:
    """POST ``{"text": ...}`` to a Slack-compatible incoming webhook (Slack, Mattermost,
    Rocket.Chat and others take this shape)."""
    text = f"*{subject}*\n{body}"
    _post(url, json.dumps({"text": text}).encode(), {}, "Slack webhook")


# ----------------------------------------------------------------------------- the sender


class NotifyHost(Protocol):
    """What the sender needs of its process (the ``ControlPlane`` fits)."""

    settings: ControlSettings
    clock: Clock
    context: ControlContext

    def session(self) -> AbstractContextManager[Session]:
        """A service session (``BEGIN IMMEDIATE`` on SQLite)."""
        ...


@dataclass
class SendReport:
    """What one pass did, by delivery id."""

    sent: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    """Failed this time; due again after the next retry delay."""
    failed: list[int] = field(default_factory=list)
    """Given up on."""
    digests: int = 0
    """Digest deliveries queued by the pass."""


@dataclass(frozen=True)
class _Claimed:
    id: int
    attempts: int
    kind: str
    target_encrypted: str
    enabled: bool
    owner_active: bool
    event: str
    subject: str
    body: str
    payload: dict[str, Any]


class Notifier:
    """Sends the outbox's due deliveries for one process."""

    def __init__(self, host: NotifyHost) -> None:
        self.host = host

    def run_pass(self) -> SendReport:
        """Queue the day's digests when due, then send what is due."""
        with self.host.session() as db:
            digests = queue_digests(db, self.host.clock.now())
        report = self.send_due()
        report.digests = digests
        return report

    def send_due(self, limit: int = BATCH_SIZE) -> SendReport:
        """Claim and send up to ``limit`` due deliveries."""
        report = SendReport()
        for claimed in self._claim(limit):
            self._attempt(claimed, report)
        return report

    def send_now(self, delivery_id: int) -> str:
        """Attempt one pending delivery at once, due or not (the page's "Send test");
        returns its status afterwards. A delivery another process holds is left alone."""
        report = SendReport()
        for claimed in self._claim(1, only=delivery_id):
            self._attempt(claimed, report)
        with self.host.session() as db:
            status = db.scalar(
                sa.select(NotificationDelivery.status).where(NotificationDelivery.id == delivery_id)
            )
        return str(status or "deleted")

    def prune(self, max_batches: int = 5) -> int:
        """Delete sent and given-up deliveries queued more than ``run_retention_days`` ago
        (the job history's retention; 0 keeps them), ``prune_batch_size`` per short
        transaction; returns how many. Pending ones always stay."""
        settings = self.host.settings
        if not settings.run_retention_days:
            return 0
        cutoff = self.host.clock.now() - timedelta(days=settings.run_retention_days)
        batch = settings.prune_batch_size
        pruned = 0
        for _ in range(max_batches):
            with self.host.session() as db:
                ids = list(
                    db.scalars(
                        sa.select(NotificationDelivery.id)
                        .where(
                            NotificationDelivery.status.in_(("sent", "failed")),
                            NotificationDelivery.created_at < cutoff,
                        )
                        .limit(batch)
                    )
                )
                if ids:
                    db.execute(
                        sa.delete(NotificationDelivery).where(NotificationDelivery.id.in_(ids))
                    )
                    db.commit()
            pruned += len(ids)
            if len(ids) < batch:
                break
        return pruned

    # ------------------------------------------------------------------ internals

    def _claim(self, limit: int, only: int | None = None) -> Iterator[_Claimed]:
        now = self.host.clock.now()
        with self.host.session() as db:
            query = (
                sa.select(NotificationDelivery)
                .where(NotificationDelivery.status == "pending")
                .order_by(NotificationDelivery.next_attempt_at, NotificationDelivery.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            if only is not None:
                # a row leased by another process right now is theirs to send
                query = query.where(
                    NotificationDelivery.id == only,
                    sa.or_(
                        NotificationDelivery.last_attempt_at.is_(None),
                        NotificationDelivery.last_attempt_at
                        < now - timedelta(seconds=LEASE_SECONDS),
                    ),
                )
            else:
                query = query.where(NotificationDelivery.next_attempt_at <= now)
            rows = list(db.scalars(query))
            claimed: list[_Claimed] = []
            for row in rows:
                if row.attempts >= MAX_ATTEMPTS:
                    # its last attempt's lease ran out: the sender stopped mid-attempt (a
                    # crash, a kill). Trying again would go past the documented attempts and,
                    # for a message that brings the sender down, loop every lease for ever.
                    row.status, row.next_attempt_at = "failed", None
                    row.last_error = STOPPED_MID_ATTEMPT
                    log.warning("notification %s: given up (%s)", row.id, STOPPED_MID_ATTEMPT)
                    continue
                row.attempts += 1
                row.last_attempt_at = now
                row.next_attempt_at = now + timedelta(seconds=LEASE_SECONDS)
                channel = row.channel
                claimed.append(
                    _Claimed(
                        id=row.id,
                        attempts=row.attempts,
                        kind=channel.kind,
                        target_encrypted=channel.target_encrypted,
                        enabled=channel.enabled,
                        owner_active=row.user.is_active,
                        event=row.event,
                        subject=row.subject,
                        body=row.body,
                        payload=dict(row.payload or {}),
                    )
                )
            db.commit()
        yield from claimed

    def _attempt(self, claimed: _Claimed, report: SendReport) -> None:
        error: DeliveryFailed | None = None
        secrets: tuple[str, ...] = ()
        try:
            target = self.host.context.box.decrypt_json(claimed.target_encrypted)
            secrets = tuple(v for v in target.values() if v)
            if not claimed.enabled:
                raise DeliveryFailed("the channel is turned off", retry=False)
            if not claimed.owner_active:
                # deactivating someone stops what they would still receive, retries included
                raise DeliveryFailed("the channel's owner is deactivated", retry=False)
            # the process log scrubs the target while it is in use (a library's log line)
            with Redactor(secrets).in_use():
                self._send(claimed, target)
        except DeliveryFailed as exc:
            error = exc
        except ValueError as exc:  # the encryption key changed: the target is unreadable
            error = DeliveryFailed(str(exc), retry=False)
        except Exception as exc:
            log.exception("notification %s: unexpected error while sending", claimed.id)
            error = DeliveryFailed(f"internal error ({type(exc).__name__})", retry=True)
        now = self.host.clock.now()
        values: dict[str, Any]
        if error is None:
            values = {"status": "sent", "sent_at": now, "next_attempt_at": None, "last_error": None}
            report.sent.append(claimed.id)
        else:
            message = Redactor(secrets)(error.message)[:ERROR_MAX_CHARS]
            if error.retry and claimed.attempts < MAX_ATTEMPTS:
                delay = RETRY_DELAYS[claimed.attempts - 1]
                values = {"next_attempt_at": now + delay, "last_error": message}
                report.retrying.append(claimed.id)
            else:
                values = {"status": "failed", "next_attempt_at": None, "last_error": message}
                report.failed.append(claimed.id)
            # the message names the host at most, never the URL, address or secret
            log.warning(
                "notification %s (attempt %d) failed: %s", claimed.id, claimed.attempts, message
            )
        with self.host.session() as db:
            # Only our own attempt's row: if the lease ran out and another process took the
            # row meanwhile, its outcome is the one to keep.
            db.execute(
                sa.update(NotificationDelivery)
                .where(
                    NotificationDelivery.id == claimed.id,
                    NotificationDelivery.attempts == claimed.attempts,
                    NotificationDelivery.status == "pending",
                )
                .values(**values)
            )
            db.commit()

    def _send(self, claimed: _Claimed, target: dict[str, str]) -> None:
        settings = self.host.settings
        if claimed.kind == "email":
            send_email(settings, target["to"], claimed.subject, claimed.body)
        elif claimed.kind == "webhook":
            payload = {**claimed.payload, "delivery_id": claimed.id}
            send_webhook(
                target["url"],
                target["secret"],
                payload,
                delivery_id=claimed.id,
                now=self.host.clock.now(),
            )
        elif claimed.kind == "slack":
            send_slack(target["url"], claimed.subject, claimed.body)
        else:
            raise DeliveryFailed(f"unknown channel kind {claimed.kind!r}", retry=False)


def channel_kinds_available(settings: ControlSettings) -> dict[str, bool]:
    """Which channel kinds this server can send (e-mail needs an SMTP server)."""
    return {"email": bool(settings.smtp_host), "webhook": True, "slack": True}


__all__ = [
    "BATCH_SIZE",
    "DELIVERY_HEADER",
    "EVENT_HEADER",
    "LEASE_SECONDS",
    "MAX_ATTEMPTS",
    "RETRY_DELAYS",
    "SEND_TIMEOUT_SECONDS",
    "SIGNATURE_HEADER",
    "SIGNATURE_TOLERANCE_SECONDS",
    "TIMESTAMP_HEADER",
    "DeliveryFailed",
    "Notifier",
    "NotifyHost",
    "SendReport",
    "channel_kinds_available",
    "send_email",
    "send_slack",
    "send_webhook",
    "sign",
    "verify_signature",
    "webhook_body",
]
