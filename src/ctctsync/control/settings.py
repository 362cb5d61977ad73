"""Settings of the control plane: one pydantic-settings object, read from ``CTCTSYNC_*``.

Secrets the operator does not supply (the session secret and the Fernet key) are created
on first run in ``data_dir`` with owner-only permissions, so a fresh install works without
setup while a shared deployment can pin them through the environment.
"""

from __future__ import annotations

import binascii
import math
import os
import re
import secrets
import zlib
from collections import Counter
from pathlib import Path
from typing import Literal

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ctctsync.api.ratelimit import DEFAULT_SEND_DELAY_BOUND
from ctctsync.config import TrackingPolicy, TrackingTier, WarehouseConfig
from ctctsync.db import make_private_dirs
from ctctsync.errors.redaction import register_secret
from ctctsync.validation import DatasetName, DestinationName

SECRET_KEY_FILE = "secret_key"  # noqa: S105 -- a file name
ENCRYPTION_KEY_FILE = "encryption.key"

MIN_SECRET_KEY_BYTES = 32
"""A session secret must carry at least this many bytes of randomness (256 bits)."""
MIN_SECRET_KEY_ENTROPY_BITS = 128
"""Below this (character-frequency estimate) a key is refused as obviously not random."""
MIN_SECRET_KEY_INCOMPRESSIBILITY = 0.6
"""A key that zlib shrinks below this share of its length repeats itself: not random."""
_HEX = re.compile(r"[0-9a-fA-F]+")
_BASE64 = re.compile(r"[A-Za-z0-9_+/-]+={0,2}")
KEY_ADVICE = "Generate one with: ctctsync keys generate"

CC_V2_BASE_URL = "https://api.constantcontact.com"
CC_V3_BASE_URL = "https://api.cc.email"
"""v3's origin (v3 reference §1.1)."""
CC_AUTHZ_BASE_URL = "https://authz.constantcontact.com/oauth2/default/v1"
"""Constant Contact's v3 authorization server (v3 reference §1.2)."""
SANDBOX_AUTHZ_PATH = "/oauth2/default/v1"
"""Where a sandbox (any non-CC ``cc_base_url``) serves the v3 authorization server: CC's
path on the sandbox host."""


def generate_secret_key() -> str:
    """A fresh session secret: 48 random bytes, URL-safe base64 (64 characters)."""
    return secrets.token_urlsafe(48)


def key_bytes(key: str) -> int:
    """How many bytes of key material ``key`` holds: hex and base64 count decoded, anything
    else counts its UTF-8 bytes."""
    if _HEX.fullmatch(key) and len(key) % 2 == 0:
        return len(key) // 2
    if _BASE64.fullmatch(key):
        try:
            padded = key.replace("-", "+").replace("_", "/")
            return len(binascii.a2b_base64(padded + "=" * (-len(padded) % 4)))
        except binascii.Error:
            pass
    return len(key.encode())


def entropy_bits(key: str) -> float:
    """An estimate of ``key``'s randomness from its character frequencies (Shannon)."""
    n = len(key)
    return -sum(c * math.log2(c / n) for c in Counter(key).values()) if n else 0.0


def secret_key_problem(key: str) -> str | None:
    """Why ``key`` cannot sign sessions (one line, without the key), or None if it can.

    It must hold at least :data:`MIN_SECRET_KEY_BYTES` bytes and not be obviously low
    entropy (one character repeated, a short pattern repeated). The tests are heuristics
    against mistakes such as an empty or placeholder value, not a proof of randomness.
    """
    key = key.strip()
    size = key_bytes(key)
    if size < MIN_SECRET_KEY_BYTES:
        what = "empty" if not key else f"too short ({size} bytes)"
        return (
            f"CTCTSYNC_SECRET_KEY is {what}: it must hold at least {MIN_SECRET_KEY_BYTES} "
            f"random bytes. {KEY_ADVICE}"
        )
    compressed = len(zlib.compress(key.encode(), 9)) - len(zlib.compress(b"", 9))
    repeats = compressed < MIN_SECRET_KEY_INCOMPRESSIBILITY * len(key)
    if repeats or entropy_bits(key) < MIN_SECRET_KEY_ENTROPY_BITS:
        return f"CTCTSYNC_SECRET_KEY is not random (it repeats itself). {KEY_ADVICE}"
    return None


def read_or_create_key_file(path: Path, make: bytes) -> bytes:
    """Return the key stored at ``path``, writing ``make`` there first if it is missing.

    The file is created with mode 0600 atomically (``O_EXCL``), so two processes starting
    together agree on one key and no other local user can read it.
    """
    make_private_dirs(path.parent)  # a folder it creates is 0700
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as fh:
        fh.write(make)
    return make


class ControlSettings(BaseSettings):
    """Everything the control plane (web app, scheduler, workers) is configured with."""

    model_config = SettingsConfigDict(env_prefix="CTCTSYNC_", extra="ignore")

    data_dir: Path = Path(".ctctsync")
    """Where the SQLite store, key files and the default DuckDB warehouse live."""
    database_url: str | None = None
    """SQLAlchemy URL of the store; default ``sqlite:///<data_dir>/control.db``. A
    PostgreSQL URL lets several processes share one store."""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    secret_key: SecretStr | None = None
    """Signs browser sessions. From the environment, else ``<data_dir>/secret_key``."""
    encryption_key: SecretStr | None = None
    """Fernet key encrypting stored credentials. From the environment, else
    ``<data_dir>/encryption.key``. Losing it means re-entering every credential."""
    public_base_url: str = "http://127.0.0.1:8000"
    """How browsers reach this server; the OAuth callback is built from it."""
    metrics_token: SecretStr | None = Field(default=None, min_length=16)
    """When set, ``GET /metrics`` answers only ``Authorization: Bearer <this token>``
    (``/healthz`` and ``/readyz`` stay open: they tell nothing but up or down)."""

    # Constant Contact (the sandbox stands in by pointing these at it).
    cc_base_url: str = CC_V2_BASE_URL
    cc_auth_base_url: str | None = None
    api_key: SecretStr | None = None
    """This installation's CC application key (client id) for OAuth."""
    client_secret: SecretStr | None = None
    """This installation's CC application secret for OAuth."""
    client_id: str | None = None
    """The v3 application's client id (``CTCTSYNC_CLIENT_ID``): the "API key" the developer
    portal shows (v3 reference §1.2). Unset: ``api_key``, else what an administrator entered
    on the application page. Set in the environment, it wins over the stored one."""
    oauth_redirect_url: str | None = None
    """The redirect URI registered with the application (``CTCTSYNC_OAUTH_REDIRECT_URL``);
    unset: the stored one, else ``<public_base_url>/oauth/callback``."""
    cc_authz_base_url: str | None = None
    """The v3 authorization server (``.../oauth2/default/v1``); unset: Constant Contact's
    (:data:`CC_AUTHZ_BASE_URL`), or ``<cc_base_url>/oauth2/default/v1`` for a sandbox."""
    cc_v3_base_url: str | None = None
    """The v3 API origin; unset: ``https://api.cc.email`` for Constant Contact, else (a
    sandbox, which serves ``/v3`` beside ``/v2``) ``cc_base_url``."""
    cc_qps_limit: float | None = Field(default=4.0, gt=0)
    """Requests per second to CC, per API key (unset = no pacing); 0 could never send one.
    The default of every key without its own limit (``ctctsync api-keys set-limits``)."""
    cc_daily_limit: int | None = Field(default=10_000, gt=0)
    """Requests per UTC day, per API key: CC's 10,000 (partner keys: 250,000). The default of
    every key without its own limit; unset = no daily budget (a sandbox)."""
    rate_budget: Literal["auto", "local", "postgres"] = "auto"
    """Where each API key's rate budget (pacing and daily count) lives
    (``CTCTSYNC_RATE_BUDGET``): ``local`` in this process only (one process per store);
    ``postgres`` in the store's PostgreSQL, shared by every process and machine of the fleet;
    ``auto`` (default): ``postgres`` when the store is PostgreSQL, else ``local``.
    docs/architecture.md, "A rate budget shared by the fleet"."""
    rate_send_delay_bound: float = Field(default=DEFAULT_SEND_DELAY_BOUND, ge=0, le=60)
    """Seconds a granted call holds its key's window at most when no answer comes
    (``CTCTSYNC_RATE_SEND_DELAY_BOUND``; the hold rule, ctctsync.api.ratelimit): an answered
    call's hold ends with its answer. Lower is faster when answers are slow; a request that
    reaches the API later than this after its grant may then be throttled. 0 = the grant
    times alone (the rule before the hold rule)."""

    # Campaign polling tiers (issue 10): how often a sent campaign's activity is checked,
    # by its age. Passed to every run (``SyncConfig.tracking``); docs/operations.md.
    tracking_recent_days: int = Field(default=30, ge=1, le=3650)
    """Campaigns sent fewer than this many days ago are checked on every run."""
    tracking_older_days: int = Field(default=90, ge=0, le=3650)
    """Campaigns sent ``tracking_recent_days`` to this many days ago are checked every
    ``tracking_older_every_hours``; older ones every ``tracking_oldest_every_hours``."""
    tracking_older_every_hours: int = Field(default=24, ge=0, le=24 * 365)
    """0: on every run (as younger campaigns)."""
    tracking_oldest_every_hours: int = Field(default=168, ge=0, le=24 * 365)
    tracking_recheck_days: int = Field(default=30, ge=1, le=3650)
    """Every kind of every campaign is re-read whole once in this many days (staggered)."""
    tracking_events_every_hours: int = Field(default=24, ge=0, le=24 * 366)
    """v3: each event's registrations are re-read at least once in this many hours
    (staggered; 0: every run), besides when the event changed or is live."""

    # Default warehouse: a DuckDB file in data_dir.
    warehouse_destination: DestinationName = "duckdb"
    warehouse_path: Path | None = None
    warehouse_dataset: DatasetName = "constant_contact"

    queue: Literal["threads", "procrastinate"] = "threads"
    """How queued runs reach a worker (``CTCTSYNC_QUEUE``): ``threads`` (default), the
    ``serve`` process's own scheduler and worker threads; ``procrastinate``, a fleet of
    ``ctctsync worker`` processes fed by procrastinate jobs in the store's PostgreSQL, with
    ``serve`` only enqueuing. docs/architecture.md, "The worker fleet"."""
    workers: int = Field(default=2, ge=0, le=32)
    heartbeat_seconds: float = Field(default=10.0, gt=0)
    stale_after_seconds: float = Field(default=120.0, gt=0)
    """A running run whose heartbeat is older than this is failed by the sweeper."""
    scheduler_interval_seconds: float = Field(default=15.0, gt=0)
    run_retention_days: int = Field(default=90, ge=0)
    """Finished runs (and their logs) older than this are deleted; 0 keeps them forever.
    90 days keeps a quarter of history to compare and troubleshoot with, at about 5 KB a
    run. The newest finished run of each integration is always kept."""
    run_retention_count: int = Field(default=500, ge=0)
    """At most this many finished runs are kept per integration; 0 sets no limit. 500 is
    three weeks of an hourly integration and all 90 days of a daily one, about 2.5 MB."""
    prune_batch_size: int = Field(default=200, ge=1, le=10_000)
    """Runs deleted per transaction when pruning (short transactions never hold up runs)."""
    oauth_state_ttl_seconds: int = Field(default=900, gt=0)

    # Notifications (issue 12 §5): the SMTP server e-mail channels send through, and the
    # daily digest's hour. docs/operations.md, "Notifications".
    smtp_host: str | None = None
    """The SMTP server (``CTCTSYNC_SMTP_HOST``); unset: e-mail channels cannot be added."""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_user: str | None = None
    """Sign in to the server as this user (unset: no authentication)."""
    smtp_password: SecretStr | None = None
    smtp_from: str = "ctctsync@localhost"
    """The From address of every notification e-mail."""
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    """``starttls`` (port 587, default), ``ssl`` (implicit TLS, port 465) or ``none`` (a
    relay on a trusted network or loopback only: the password would travel in clear)."""
    notify_digest_hour: int = Field(default=7, ge=0, le=23)
    """The UTC hour from which each day's digest (the previous 24 hours) is sent."""

    @field_validator(
        "public_base_url", "cc_base_url", "cc_auth_base_url", "cc_authz_base_url", "cc_v3_base_url"
    )
    @classmethod
    def _strip_slash(cls, v: str | None) -> str | None:
        return v.rstrip("/") if v else v

    @model_validator(mode="after")
    def _tiers_in_order(self) -> ControlSettings:
        if self.tracking_older_days <= self.tracking_recent_days:
            raise ValueError(
                "CTCTSYNC_TRACKING_OLDER_DAYS must exceed CTCTSYNC_TRACKING_RECENT_DAYS"
            )
        if self.tracking_oldest_every_hours < self.tracking_older_every_hours:
            raise ValueError(
                "CTCTSYNC_TRACKING_OLDEST_EVERY_HOURS must be at least "
                "CTCTSYNC_TRACKING_OLDER_EVERY_HOURS"
            )
        self.tracking_policy()  # anything else the sync refuses, said at start
        return self

    def tracking_policy(self) -> TrackingPolicy:
        """The campaign polling tiers every run gets (``SyncConfig.tracking``)."""
        return TrackingPolicy(
            tiers=(
                TrackingTier(older_than_days=0, every_hours=0),
                TrackingTier(
                    older_than_days=self.tracking_recent_days,
                    every_hours=self.tracking_older_every_hours,
                ),
                TrackingTier(
                    older_than_days=self.tracking_older_days,
                    every_hours=self.tracking_oldest_every_hours,
                ),
            ),
            recheck_days=self.tracking_recheck_days,
            events_every_hours=self.tracking_events_every_hours,
        )

    @model_validator(mode="after")
    def _stale_after_heartbeat(self) -> ControlSettings:
        if self.stale_after_seconds <= self.heartbeat_seconds * 2:
            raise ValueError("stale_after_seconds must exceed twice heartbeat_seconds")
        return self

    @property
    def resolved_database_url(self) -> str:
        """The store's URL with the SQLite default filled in.

        Plain ``postgres://`` / ``postgresql://`` URLs (what hosting providers hand out) get
        the psycopg 3 driver ctctsync ships with, instead of SQLAlchemy's psycopg2 default.
        """
        url = self.database_url or f"sqlite:///{self.data_dir / 'control.db'}"
        try:
            parsed = make_url(url)
        except ArgumentError:
            return url  # the engine factory reports it, naming the setting
        if parsed.drivername in ("postgres", "postgresql"):
            return parsed.set(drivername="postgresql+psycopg").render_as_string(
                hide_password=False
            )
        return url

    @property
    def resolved_rate_budget(self) -> Literal["local", "postgres"]:
        """Where rate budgets live (``rate_budget`` with ``auto`` decided by the store)."""
        if self.rate_budget != "auto":
            return self.rate_budget
        return "postgres" if self._store_is_postgres() else "local"

    def _store_is_postgres(self) -> bool:
        return self.resolved_database_url.startswith(("postgresql", "postgres:"))

    @model_validator(mode="after")
    def _rate_budget_needs_postgres(self) -> ControlSettings:
        if self.rate_budget == "postgres" and not self._store_is_postgres():
            raise ValueError(
                "CTCTSYNC_RATE_BUDGET=postgres keeps the budget in the store's PostgreSQL: "
                "set CTCTSYNC_DATABASE_URL to a PostgreSQL URL, or use auto/local"
            )
        return self

    @model_validator(mode="after")
    def _queue_needs_postgres(self) -> ControlSettings:
        if self.queue == "procrastinate" and not self._store_is_postgres():
            raise ValueError(
                "CTCTSYNC_QUEUE=procrastinate keeps its jobs in the store's PostgreSQL: "
                "set CTCTSYNC_DATABASE_URL to a PostgreSQL URL, or use threads"
            )
        return self

    @property
    def oauth_redirect_uri(self) -> str:
        """The callback CC redirects to after the user authorizes (served by the web app)."""
        return f"{self.public_base_url}/oauth/callback"

    @property
    def v3_authz_base_url(self) -> str:
        """The v3 authorization server's base (``/authorize``, ``/token`` below it)."""
        if self.cc_authz_base_url:
            return self.cc_authz_base_url
        if self.cc_base_url == CC_V2_BASE_URL:
            return CC_AUTHZ_BASE_URL
        # The sandbox serves the v3 authorization server on its own host (its AUTHZ_PATH).
        return f"{self.cc_base_url}{SANDBOX_AUTHZ_PATH}"

    @property
    def v3_base_url(self) -> str:
        """The v3 API origin (paths start with ``/v3/``, v3 reference §1.1)."""
        if self.cc_v3_base_url:
            return self.cc_v3_base_url
        return CC_V3_BASE_URL if self.cc_base_url == CC_V2_BASE_URL else self.cc_base_url

    @property
    def secret_key_explicit(self) -> bool:
        """True when the operator supplied the session secret (required off localhost)."""
        return self.secret_key is not None

    def secret_key_problem(self) -> str | None:
        """Why the session secret the operator supplied is unusable, or None (a key this
        process generates itself is always good)."""
        if self.secret_key is None:
            return None
        return secret_key_problem(self.secret_key.get_secret_value())

    def session_secret(self) -> str:
        """The session-signing secret (created in ``data_dir`` on first use)."""
        if self.secret_key is not None:
            secret = self.secret_key.get_secret_value()
        else:
            made = generate_secret_key().encode()
            secret = read_or_create_key_file(self.data_dir / SECRET_KEY_FILE, made).decode()
        # Scrubbed from every log line and message from now on (the redaction module's
        # promise for the control plane's own keys), whichever code echoes it.
        register_secret(secret)
        return secret

    def encryption_key_problem(self) -> str | None:
        """Why the credential-encryption key the operator supplied is unusable (one line,
        without the key), or None. An empty ``CTCTSYNC_ENCRYPTION_KEY=`` (a blank line of an
        env file) counts as supplied, so it is refused rather than taken as "no key"."""
        if self.encryption_key is None:
            return None
        value = self.encryption_key.get_secret_value()
        if not value.strip():
            return ("CTCTSYNC_ENCRYPTION_KEY is set but empty: unset it to keep the key in "
                    f"{self.data_dir / ENCRYPTION_KEY_FILE}, or set a Fernet key. "
                    + KEY_ADVICE)
        try:
            Fernet(value.encode())
        except ValueError:
            return ("CTCTSYNC_ENCRYPTION_KEY is not a Fernet key (32 url-safe base64 bytes). "
                    + KEY_ADVICE)
        return None

    def startup_problem(self) -> str | None:
        """The first reason this process must not start with these settings (a key the
        operator supplied that cannot serve), one line and without any secret; None if none."""
        return self.secret_key_problem() or self.encryption_key_problem()

    def fernet_key(self) -> bytes:
        """The credential-encryption key (created in ``data_dir`` on first use)."""
        if self.encryption_key is not None:
            key = self.encryption_key.get_secret_value().encode()
        else:
            made = Fernet.generate_key()
            key = read_or_create_key_file(self.data_dir / ENCRYPTION_KEY_FILE, made)
        register_secret(key.decode())  # as session_secret: never echoed by any log line
        return key

    def default_warehouse(self) -> WarehouseConfig:
        """The warehouse used until an admin saves another one."""
        return WarehouseConfig(
            destination=self.warehouse_destination,
            path=self.warehouse_path or self.data_dir / "warehouse.duckdb",
            dataset=self.warehouse_dataset,
        )
