"""The control plane's tables (SQLAlchemy 2 ORM on the shared ``ctctsync.db.metadata``).

Schema changes go through Alembic (``ctctsync/migrations``, branch ``control``); these
classes and the migrations must agree, which ``tests/control/test_store.py`` checks.

Two state machines live here as data, enforced by ``transition`` methods:

- a run: ``queued -> running|deferred|cancelled``; ``deferred -> queued|cancelled``;
  ``running -> succeeded|partial|failed|cancelled``.
- an integration: see ``INTEGRATION_TRANSITIONS``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Literal, cast, get_args

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from ctctsync.control.errors import InvalidTransition
from ctctsync.db import metadata
from ctctsync.errors import RunOutcome
from ctctsync.errors.taxonomy import status_label

RunStatus = Literal["queued", "deferred", "running", RunOutcome]
"""Queued (or deferred by the quota guard until the daily quota resets) or running, then how
it ended (:data:`ctctsync.errors.RunOutcome`)."""
RunTrigger = Literal["schedule", "manual", "resync", "backfill"]
RunKind = Literal["incremental", "first_load", "full_refresh", "resync"]
"""What a run reads, for its estimate: changes since the bookmarks (``incremental``), the
whole account because the integration never finished a run (``first_load``), or some tables
whole again (``full_refresh`` after a selection grew, ``resync`` on request)."""
IntegrationState = Literal["draft", "pending", "active", "paused", "failed", "needs_reauth"]
AuthMethod = Literal["oauth", "manual"]
ApiVersion = Literal["v2", "v3"]
"""The Constant Contact API an integration reads (``ctctsync.tables.ApiVersion``)."""
API_VERSIONS: Final = cast(tuple[ApiVersion, ...], get_args(ApiVersion))
DEFAULT_API_VERSION: Final[ApiVersion] = "v3"
"""What a NEW integration reads: v2 is legacy (no new v2 keys are issued). Rows from before
the v3 support stay ``v2`` (the column's server default, migration 0006)."""

PAUSED_REASON: Final = "Paused by a user: no job starts until it is re-activated."
"""The reason every pause records (what tells a paused integration from a setup left
unfinished before the ``draft`` state existed: see ``Integration.shown_state``)."""

RUN_STATUSES: Final = cast(tuple[RunStatus, ...], get_args(RunStatus))
RUN_TRIGGERS: Final = cast(tuple[RunTrigger, ...], get_args(RunTrigger))
INTEGRATION_STATES: Final = cast(tuple[IntegrationState, ...], get_args(IntegrationState))
ACTIVE_RUN_STATUSES: Final[tuple[RunStatus, ...]] = ("queued", "running")
WAITING_RUN_STATUSES: Final[tuple[RunStatus, ...]] = ("queued", "deferred")
"""Runs not started yet: queued, or deferred until the daily quota resets."""
RUN_KINDS: Final = cast(tuple[RunKind, ...], get_args(RunKind))
FINISHED_RUN_STATUSES: Final = cast(tuple[RunOutcome, ...], get_args(RunOutcome))

RUN_TRANSITIONS: Final[dict[RunStatus, frozenset[RunStatus]]] = {
    "queued": frozenset({"running", "deferred", "cancelled"}),
    # Deferred by the quota guard (never started); queued again after the quota resets.
    "deferred": frozenset({"queued", "cancelled"}),
    "running": frozenset({"succeeded", "partial", "failed", "cancelled"}),
    "succeeded": frozenset(),
    "partial": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
}
"""Allowed moves of a run. Finished runs never change again: history is history."""

INTEGRATION_TRANSITIONS: Final[dict[IntegrationState, frozenset[IntegrationState]]] = {
    # draft: the add-integration steps are not finished (web UI). Never scheduled; the
    # last step's Submit makes it pending. Nothing else moves it: it has never run.
    "draft": frozenset({"pending"}),
    # pending: created, waiting for credentials and then its first successful run.
    "pending": frozenset({"active", "paused", "failed", "needs_reauth"}),
    "active": frozenset({"paused", "failed", "needs_reauth"}),
    # Reactivating goes back to pending unless a run has succeeded before.
    "paused": frozenset({"pending", "active"}),
    "failed": frozenset({"pending", "active", "paused", "needs_reauth"}),
    "needs_reauth": frozenset({"pending", "active", "paused"}),
}


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    SQLite drops the offset, so values are normalised to UTC on the way in and marked UTC
    on the way out; comparisons in Python then never mix naive and aware datetimes.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """Default for created/updated columns (the scheduler passes its own clock's time)."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base bound to the shared metadata (bookmarks live there too)."""

    metadata = metadata


class User(Base):
    """A person who signs in to the control plane."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    is_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    is_active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    """False once an administrator deactivated the user: no sign-in, no sessions, no tokens."""
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    must_change_password: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    """Set by an administrator's password reset: the next sign-in asks for a new password."""

    def __repr__(self) -> str:
        return f"User(id={self.id}, email={self.email!r}, is_admin={self.is_admin})"


class UserInvite(Base):
    """A one-time invitation to create an account; only the token's SHA-256 is stored."""

    __tablename__ = "user_invites"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(320))
    is_admin: Mapped[bool] = mapped_column(default=False)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ApiToken(Base):
    """A personal API token for the REST API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(100))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship()


class Integration(Base):
    """One Constant Contact account replicated into the warehouse under ``name``."""

    __tablename__ = "integrations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(40), unique=True)
    """Immutable: every warehouse table of the integration is named ``<name>_<table>``."""
    state: Mapped[str] = mapped_column(sa.String(20), default="pending")
    state_reason: Mapped[str | None] = mapped_column(sa.Text())
    frequency_hours: Mapped[int] = mapped_column(default=24)
    history_start: Mapped[date] = mapped_column(sa.Date())
    tables: Mapped[dict[str, Any]] = mapped_column(sa.JSON(), default=dict)
    """Selected tables -> selected columns (a list) or None for every column."""
    new_columns: Mapped[str] = mapped_column(
        sa.String(10), default="ignore", server_default="ignore"
    )
    """Fields the registry does not know: ``ignore`` (reported only) or ``add`` (also loaded
    as new columns); see ``ctctsync.config.SyncConfig.new_columns``."""
    api_version: Mapped[str] = mapped_column(
        sa.String(2), default=DEFAULT_API_VERSION, server_default="v2"
    )
    """``v2`` or ``v3`` (:data:`ApiVersion`): new integrations :data:`DEFAULT_API_VERSION`;
    the server default (migration 0006) keeps rows from before v3 support on v2."""
    auth_method: Mapped[str | None] = mapped_column(sa.String(10))
    credentials_encrypted: Mapped[str | None] = mapped_column(sa.Text())
    """Fernet ciphertext. v2: ``{"api_key", "access_token"}``. v3: the token set
    ``{"access_token", "refresh_token", "expires_at", "scope", "refreshed_at"}`` kept by
    ``ctctsync.control.services.tokens.StoreTokenVault`` (rotated on every refresh)."""
    access_problems: Mapped[list[str] | None] = mapped_column(sa.JSON())
    """v3: the scopes and user privileges the authorization lacks for the selected tables,
    one line each (checked after authorizing); None when not checked, [] when none."""
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """When the first run succeeded (reactivation returns to active only after that)."""
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_run_id: Mapped[str | None] = mapped_column(sa.String(32))

    created_by: Mapped[User | None] = relationship()
    last_run: Mapped[Run | None] = relationship(
        primaryjoin="foreign(Integration.last_run_id) == Run.id", viewonly=True
    )

    @property
    def has_credentials(self) -> bool:
        """True once OAuth or manual credentials are stored."""
        return bool(self.credentials_encrypted)

    @property
    def needs_reauth(self) -> bool:
        """True when Constant Contact refused the stored authorization (re-authorize)."""
        return self.state == "needs_reauth"

    @property
    def is_draft(self) -> bool:
        """True while the add-integration setup is unfinished (see :attr:`shown_state`)."""
        return self.shown_state == "draft"

    @property
    def shown_state(self) -> str:
        """The state as the UI reads it: ``draft`` for an unfinished setup, else the stored
        state.

        Setups left unfinished before the ``draft`` state existed are stored ``paused``
        with no reason (the setup paused the integration it created until Submit), never
        activated, no job ever queued; those read as drafts too, without a data migration.
        A pause now always records its reason (:data:`PAUSED_REASON`), so no newer row
        looks like one. The only older row it also catches -- an integration paused,
        before this version, before its first job was even queued -- loses nothing:
        Continue walks it through the steps and Submit starts it, as Re-activate would.
        """
        if (
            self.state == "paused"
            and self.state_reason is None
            and self.activated_at is None
            and self.last_run_id is None
        ):
            return "draft"
        return self.state

    @property
    def schedulable(self) -> bool:
        """Whether the scheduler should start runs of this integration."""
        return self.state in ("pending", "active") and self.has_credentials

    def transition(self, new: IntegrationState, reason: str | None = None) -> None:
        """Move to ``new`` (staying put is allowed); raises ``InvalidTransition`` otherwise."""
        old = cast(IntegrationState, self.state)
        if new != old and new not in INTEGRATION_TRANSITIONS[old]:
            raise InvalidTransition(f"an integration cannot go from {old} to {new}")
        self.state = new
        self.state_reason = reason

    def __repr__(self) -> str:
        return f"Integration(id={self.id}, name={self.name!r}, state={self.state!r})"


class OAuthState(Base):
    """A pending OAuth authorization: the ``state`` sent to CC and what it was for."""

    __tablename__ = "oauth_states"

    state: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    integration_id: Mapped[int] = mapped_column(
        sa.ForeignKey("integrations.id", ondelete="CASCADE")
    )
    redirect_uri: Mapped[str] = mapped_column(sa.Text())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    binding_hash: Mapped[str | None] = mapped_column(sa.String(64), default=None)
    """SHA-256 (hex) of the nonce in the session cookie of the browser that started it;
    None when started through the REST API (then the API user is the binding)."""
    code_verifier_encrypted: Mapped[str | None] = mapped_column(sa.Text(), default=None)
    """v3 (PKCE, RFC 7636): Fernet ciphertext of the ``code_verifier`` whose S256 challenge
    went to the authorize URL; kept server-side until the code exchange. None for v2."""


class AppRegistration(Base):
    """This installation's Constant Contact application (one row, id 1), entered once by an
    administrator: the client id (the developer portal's "API key"), its secret (encrypted,
    never shown back) and the redirect URI registered with it. Environment variables, when
    set, win over this row (``ControlSettings.client_id`` ...)."""

    __tablename__ = "app_registration"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    client_id: Mapped[str] = mapped_column(sa.String(200), default="")
    client_secret_encrypted: Mapped[str | None] = mapped_column(sa.Text())
    redirect_uri: Mapped[str | None] = mapped_column(sa.Text())
    """None: ``<public_base_url>/oauth/callback``."""
    authz_base_url: Mapped[str | None] = mapped_column(sa.Text())
    """The v3 authorization server; None: Constant Contact's (or the sandbox's)."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )


def new_run_id() -> str:
    """A run id: 32 hex characters."""
    return uuid.uuid4().hex


class Run(Base):
    """One job of one integration: queued, executed by a worker, and its outcome."""

    __tablename__ = "runs"
    __table_args__ = (
        # At most one queued and one running run per integration, enforced by the database
        # so two scheduler processes sharing PostgreSQL cannot start overlapping jobs.
        sa.Index(
            "uq_runs_one_queued",
            "integration_id",
            unique=True,
            sqlite_where=sa.text("status = 'queued'"),
            postgresql_where=sa.text("status = 'queued'"),
        ),
        sa.Index(
            "uq_runs_one_running",
            "integration_id",
            unique=True,
            sqlite_where=sa.text("status = 'running'"),
            postgresql_where=sa.text("status = 'running'"),
        ),
        sa.Index("ix_runs_integration_created", "integration_id", "created_at"),
        sa.Index("ix_runs_status_created", "status", "created_at"),
        # The quota guard sums today's calls per key on every claim.
        sa.Index("ix_runs_key_finished", "key_fingerprint", "finished_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True, default=new_run_id)
    integration_id: Mapped[int] = mapped_column(
        sa.ForeignKey("integrations.id", ondelete="CASCADE")
    )
    trigger: Mapped[str] = mapped_column(sa.String(20))
    status: Mapped[str] = mapped_column(sa.String(20), default="queued")
    requested_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    tables_requested: Mapped[list[str] | None] = mapped_column(sa.JSON())
    """Tables this run syncs; None = every selected table."""
    full_refresh: Mapped[list[str]] = mapped_column(sa.JSON(), default=list)
    """Tables re-read from the history start (bookmark reset by the sync)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    worker_id: Mapped[str | None] = mapped_column(sa.String(100))
    rows: Mapped[dict[str, int]] = mapped_column(sa.JSON(), default=dict)
    table_status: Mapped[dict[str, str]] = mapped_column(sa.JSON(), default=dict)
    api_calls: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(sa.Text())
    """What went wrong, in words a user can act on (redacted)."""
    failure_type: Mapped[str | None] = mapped_column(sa.String(20))
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    resume_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    warnings: Mapped[list[str] | None] = mapped_column(sa.JSON(), default=list)
    """What a finished run could not load (``<table>: <warning>``): a ``succeeded`` run
    with warnings is shown "succeeded with warnings" (``SyncResult.warnings``)."""
    kind: Mapped[str | None] = mapped_column(sa.String(20))
    """:data:`RunKind`, decided when the run is queued or claimed (None: before 0007)."""
    key_fingerprint: Mapped[str | None] = mapped_column(sa.String(16))
    """``ctctsync.api.fingerprint`` of the API key (v2) or client id (v3) the run spends
    (the quota it counts against); set when it is claimed."""
    estimated_calls: Mapped[int | None] = mapped_column()
    """The planner's estimate of the run's API calls (``services.quota.estimate_run``)."""
    estimate_basis: Mapped[str | None] = mapped_column(sa.Text())
    """Where the estimate comes from, in words."""
    table_calls: Mapped[dict[str, int] | None] = mapped_column(sa.JSON())
    """API calls per table (what later estimates are made of)."""
    defer_reason: Mapped[str | None] = mapped_column(sa.Text())
    """Why the quota guard deferred the run (shown while it is ``deferred``); the run goes
    back to the queue at ``resume_at``."""

    integration: Mapped[Integration] = relationship(foreign_keys=[integration_id])
    requested_by: Mapped[User | None] = relationship()

    @property
    def finished(self) -> bool:
        """True once the run reached a final status."""
        return self.status in FINISHED_RUN_STATUSES

    @property
    def duration(self) -> timedelta | None:
        """Wall time from start to finish (None until finished)."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    @property
    def total_rows(self) -> int:
        """Rows loaded across every table."""
        return sum(self.rows.values())

    @property
    def status_label(self) -> str:
        """The status as shown: ``succeeded with warnings`` when a succeeded run has any."""
        return status_label(self.status, self.warnings)

    def transition(self, new: RunStatus) -> None:
        """Move to ``new``; raises ``InvalidTransition`` if the state machine forbids it."""
        old = cast(RunStatus, self.status)
        if new not in RUN_TRANSITIONS[old]:
            raise InvalidTransition(f"a run cannot go from {old} to {new}")
        self.status = new

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, status={self.status!r}, trigger={self.trigger!r})"


class ApiKeyLimits(Base):
    """The limits of one API key (a v2 key or the v3 application's client id), by its
    fingerprint: never the key itself. A NULL limit means the installation's default
    (``ControlSettings.cc_qps_limit`` / ``cc_daily_limit``: CC's 4/s and 10,000/day)."""

    __tablename__ = "api_key_limits"

    fingerprint: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    label: Mapped[str] = mapped_column(sa.String(100))
    """What the UI shows: ``v2 key #3fa2c1`` or ``v3 application #3fa2c1`` (the start of the
    fingerprint: no character of the key itself)."""
    api_version: Mapped[str] = mapped_column(sa.String(2))
    per_second: Mapped[float | None] = mapped_column(sa.Float())
    per_day: Mapped[int | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """When an administrator last changed the limits (None: never)."""
    updated_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )


class RunLog(Base):
    """One line of a run's process log (messages are redacted before they are stored)."""

    __tablename__ = "run_logs"

    run_id: Mapped[str] = mapped_column(
        sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    ts: Mapped[datetime] = mapped_column(UTCDateTime())
    level: Mapped[str] = mapped_column(sa.String(10))
    message: Mapped[str] = mapped_column(sa.Text())


class WarehouseSettings(Base):
    """The destination every integration loads into (one row, id 1)."""

    __tablename__ = "warehouse_settings"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    destination: Mapped[str] = mapped_column(sa.String(40))
    path: Mapped[str] = mapped_column(sa.Text())
    dataset: Mapped[str] = mapped_column(sa.String(63))
    credentials_encrypted: Mapped[str | None] = mapped_column(sa.Text())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def has_credentials(self) -> bool:
        """True when connection credentials are stored."""
        return bool(self.credentials_encrypted)


class UserSession(Base):
    """A signed-in browser (issue 8 §2): the cookie carries a random id, this row its digest.

    Every page request looks the row up, so deleting it (sign-out, password change, "sign
    out everywhere else") ends the session at once, whatever the copied cookie says.
    """

    __tablename__ = "sessions"
    __table_args__ = (sa.Index("ix_sessions_user", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    """SHA-256 (hex) of the session id in the cookie; the id itself is never stored."""
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    address: Mapped[str] = mapped_column(sa.String(64), default="")
    user_agent: Mapped[str] = mapped_column(sa.String(255), default="")


class SignInThrottle(Base):
    """Recent failed sign-ins of one account (``account:<email>``) or one client address
    (``address:<ip>``): what the backoff is computed from, shared by every process."""

    __tablename__ = "sign_in_throttles"

    key: Mapped[str] = mapped_column(sa.String(400), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AccountLockout(Base):
    """An account locked after too many failed sign-ins, until an administrator clears it.

    Keyed by the email tried, whether or not such a user exists, so the answer does not
    tell an attacker which accounts exist."""

    __tablename__ = "account_lockouts"

    email: Mapped[str] = mapped_column(sa.String(320), primary_key=True)
    locked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    failures: Mapped[int] = mapped_column(default=0)
    address: Mapped[str] = mapped_column(sa.String(64), default="")
    """The client address of the attempt that locked it."""


class AuditEvent(Base):
    """One security event (sign-in, failure, lockout, unlock, sign-out, password change,
    sessions ended), shown to administrators. Never holds a password or a token."""

    __tablename__ = "audit_events"
    __table_args__ = (sa.Index("ix_audit_events_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    event: Mapped[str] = mapped_column(sa.String(40))
    email: Mapped[str | None] = mapped_column(sa.String(320))
    """The account concerned (as typed at sign-in, normalised)."""
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    """Who did it (the admin who unlocked, the user who signed in), if known."""
    address: Mapped[str] = mapped_column(sa.String(64), default="")
    detail: Mapped[str] = mapped_column(sa.Text(), default="")


NotificationEvent = Literal["failure", "needs_reauth", "quota_exhausted", "recovery", "digest"]
"""What a user can be notified of, per integration (docs/ui.md, "Notifications")."""
NOTIFICATION_EVENTS: Final = cast(tuple[NotificationEvent, ...], get_args(NotificationEvent))
ChannelKind = Literal["email", "webhook", "slack"]
CHANNEL_KINDS: Final = cast(tuple[ChannelKind, ...], get_args(ChannelKind))
DeliveryStatus = Literal["pending", "sent", "failed"]
"""``pending`` until sent or given up on (``failed``, after the last retry)."""


class NotificationChannel(Base):
    """Where one user's notifications go: an e-mail address, a signed webhook, or a Slack
    incoming webhook. The address or URL (and a webhook's signing secret) is a secret: only
    its Fernet ciphertext is stored, and ``hint`` is what the page shows instead."""

    __tablename__ = "notification_channels"
    __table_args__ = (sa.Index("ix_notification_channels_user", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(10))
    """:data:`ChannelKind`."""
    name: Mapped[str] = mapped_column(sa.String(100))
    target_encrypted: Mapped[str] = mapped_column(sa.Text())
    """Fernet ciphertext of ``{"to": address}`` (email), ``{"url", "secret"}`` (webhook) or
    ``{"url"}`` (slack)."""
    hint: Mapped[str] = mapped_column(sa.String(200))
    """A recognisable, harmless part of the target: the address, or the URL's host."""
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    user: Mapped[User] = relationship()


class NotificationSubscription(Base):
    """Which events of one integration notify one user (on every channel of theirs)."""

    __tablename__ = "notification_subscriptions"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "integration_id", name="uq_notification_subscriptions_user"),
        sa.Index("ix_notification_subscriptions_integration", "integration_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    integration_id: Mapped[int] = mapped_column(
        sa.ForeignKey("integrations.id", ondelete="CASCADE")
    )
    events: Mapped[list[str]] = mapped_column(sa.JSON(), default=list)
    """The :data:`NotificationEvent` values chosen (an empty list: none)."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class NotificationDelivery(Base):
    """One message to one channel: the outbox row written with the event, in the same
    transaction, then sent (and retried) by the notification sender."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        # One message per event and channel, whichever process noticed the event first.
        sa.UniqueConstraint("channel_id", "dedupe_key", name="uq_notification_deliveries_key"),
        sa.Index("ix_notification_deliveries_due", "status", "next_attempt_at"),
        sa.Index("ix_notification_deliveries_user", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(
        sa.ForeignKey("notification_channels.id", ondelete="CASCADE")
    )
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    integration_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("integrations.id", ondelete="SET NULL")
    )
    run_id: Mapped[str | None] = mapped_column(sa.String(32))
    event: Mapped[str] = mapped_column(sa.String(20))
    """:data:`NotificationEvent`, or ``test`` (the page's "Send test")."""
    dedupe_key: Mapped[str] = mapped_column(sa.String(120))
    subject: Mapped[str] = mapped_column(sa.String(300))
    body: Mapped[str] = mapped_column(sa.Text())
    """The message as plain text (redacted: run errors are redacted when stored)."""
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON(), default=dict)
    """The event as data: what a webhook receives (``event``, ``integration``, ``run`` ...)."""
    status: Mapped[str] = mapped_column(sa.String(10), default="pending")
    """:data:`DeliveryStatus`."""
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """When the sender may try (again); also the lease of an attempt in flight. None once
    sent or given up on."""
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(sa.Text())
    """Why the last attempt failed, without the channel's URL or secret."""

    channel: Mapped[NotificationChannel] = relationship()
    integration: Mapped[Integration | None] = relationship()
    user: Mapped[User] = relationship()
