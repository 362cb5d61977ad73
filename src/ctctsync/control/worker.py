"""Executing one claimed run: build its config, call ``run_sync``, heartbeat, record.

The sync writes data and bookmarks itself (data first, then the bookmark), so a worker that
dies mid-run loses nothing: the sweeper fails the run and the next one re-reads from the
last committed bookmark.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, cast

import sqlalchemy as sa
from pydantic import ValidationError

from ctctsync.api.v3.tokens import TokenKeeper
from ctctsync.config import SourceConfig, SyncConfig
from ctctsync.control.models import ApiVersion, Integration, Run, RunLog, RunStatus
from ctctsync.control.ratebudget import key_limiter
from ctctsync.control.services import notifications, quota
from ctctsync.control.services.authorization import NO_V3_APP, application
from ctctsync.control.services.switch import complete_switch
from ctctsync.control.services.tokens import token_keeper, vault_record
from ctctsync.control.services.warehouse import warehouse_config
from ctctsync.errors import CtctError, FailureType, RedactingFormatter, Redactor
from ctctsync.state import StateStore
from ctctsync.sync import ProgressEvent, SyncResult, run_sync
from ctctsync.sync.switch import SwitchError

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session

    from ctctsync.control.clock import Clock
    from ctctsync.control.context import ControlContext
    from ctctsync.control.settings import ControlSettings


class RunHost(Protocol):
    """What a run executor needs of the process hosting it (the ``ControlPlane``).

    Declared here, and satisfied structurally, so that the worker does not import the plane
    that starts it: the plane depends on the worker, never the reverse.
    """

    settings: ControlSettings
    clock: Clock
    engine: Engine
    write_engine: Engine
    context: ControlContext

    def session(self) -> AbstractContextManager[Session]:
        """A service session (``BEGIN IMMEDIATE`` on SQLite)."""
        ...

log = logging.getLogger(__name__)

ProgressListener = Callable[[str, ProgressEvent], None]
"""Called with ``(run_id, event)`` for every progress event of every run."""

_PHASE_STATUS = {
    "start": "running",
    "page": "running",
    "loaded": "loading",
    "done": "succeeded",
    "failed": "failed",
}
SHUTDOWN_MESSAGE = (
    "Stopped because the server shut down; the next run resumes from the saved state."
)
CANCEL_POLL_SECONDS = 0.5
"""How often a running run reads its ``cancel_requested`` flag between heartbeats: a cancel
made in another process (the CLI, a second server on the same store) takes effect within
this, plus the request in flight. A cancel made in this process takes effect at once."""


@dataclass(frozen=True)
class _Prepared:
    config: SyncConfig
    only_tables: list[str] | None
    full_refresh: list[str]
    secrets: tuple[str, ...]
    renew_token: Callable[[str], str] | None = None
    """v3: the run's way to a new access token when the API answers 401 (the keeper's
    ``renew``: one refresh across every process, stored before use)."""


@dataclass(frozen=True)
class _Source:
    """What the run's ``SourceConfig`` takes from the integration's credentials."""

    api_key: str
    access_token: str
    secrets: tuple[str, ...]
    keeper: TokenKeeper | None = None


class _Setup(Exception):  # noqa: N818 -- internal signal, never escapes this module
    """The run cannot start; carries the user message and failure type."""

    def __init__(self, message: str, failure_type: FailureType) -> None:
        super().__init__(message)
        self.message = message
        self.failure_type = failure_type


class RunLogHandler(logging.Handler):
    """Writes log records of one run into ``run_logs`` (redacted), one short transaction each."""

    def __init__(self, plane: RunHost, run_id: str, redactor: Redactor) -> None:
        super().__init__(logging.INFO)
        self.plane = plane
        self.run_id = run_id
        self.setFormatter(RedactingFormatter(redactor, "%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        """Store one record."""
        try:
            RunExecutor.append_log(self.plane, self.run_id, record.levelno, self.format(record))
        except Exception:
            self.handleError(record)


class RunExecutor:
    """Runs one claimed run to its end and records the outcome."""

    def __init__(
        self,
        plane: RunHost,
        run_id: str,
        worker_id: str,
        listeners: Sequence[ProgressListener] = (),
    ) -> None:
        self.plane = plane
        self.run_id = run_id
        self.worker_id = worker_id
        self.listeners = list(listeners)
        self._rows: dict[str, int] = {}
        self._calls: dict[str, int] = {}
        self._status: dict[str, str] = {}
        self._cancel = threading.Event()
        self._lost = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._redactor: Redactor | None = None

    # ------------------------------------------------------------------ logs

    @classmethod
    def append_log(cls, plane: RunHost, run_id: str, level: int, message: str) -> None:
        """Append one line to a run's log (``message`` must already be redacted)."""
        with plane.write_engine.begin() as conn:
            # The next seq comes from the table so several processes (or a sweeper) can
            # append to one run; BEGIN IMMEDIATE / the PK serialise concurrent writers.
            seq = conn.scalar(
                sa.select(sa.func.coalesce(sa.func.max(RunLog.seq), 0)).where(
                    RunLog.run_id == run_id
                )
            )
            conn.execute(
                sa.insert(RunLog).values(
                    run_id=run_id,
                    seq=int(seq or 0) + 1,
                    ts=plane.clock.now(),
                    level=logging.getLevelName(level),
                    message=message,
                )
            )

    # ------------------------------------------------------------------ execution

    def cancel(self) -> None:
        """Stop the run now (its reads and waits end within the request in flight)."""
        self._cancel.set()

    def execute(self, shutdown: Callable[[], bool]) -> None:
        """Execute the run (it must be ``running`` and claimed by this worker)."""
        try:
            prepared = self._prepare()
        except _Setup as exc:
            self.append_log(self.plane, self.run_id, logging.ERROR, exc.message)
            self._finish_without_sync(exc.message, exc.failure_type)
            return
        redactor = Redactor(prepared.secrets)
        self._redactor = redactor
        logger = logging.getLogger(f"ctctsync.control.run.{self.worker_id}")
        logger.setLevel(logging.INFO)
        handler = RunLogHandler(self.plane, self.run_id, redactor)
        logger.addHandler(handler)
        beat = threading.Thread(
            target=self._heartbeat_loop, name=f"heartbeat-{self.run_id[:8]}", daemon=True
        )
        beat.start()
        result: SyncResult | None = None
        crash: str | None = None
        # The run's redactor: its credentials only, in use (the process log too) while the
        # run lasts, then dropped with the handler; nothing keeps a finished run's secrets.
        with redactor.in_use():
            try:
                self._finish_switch(prepared, logger)
                result = run_sync(
                    prepared.config,
                    state=StateStore(self.plane.engine, create=False),
                    run_id=self.run_id,
                    only_tables=prepared.only_tables,
                    full_refresh=prepared.full_refresh or False,
                    progress=self._on_progress,
                    logger=logger,
                    should_stop=lambda: self._cancel.is_set() or self._lost.is_set() or shutdown(),
                    redactor=redactor,
                    renew_token=prepared.renew_token,
                )
            except (SwitchError, CtctError) as exc:
                # the switch to v3 could not finish: nothing of this run was loaded, and the
                # next run completes the switch (docs/switching-to-v3.md)
                logger.error("switching to API v3: %s", exc)
                crash = redactor(f"Switching the warehouse to API v3 stopped: {exc}")
            except Exception as exc:
                # run_sync reports source and warehouse failures in its result; anything that
                # escapes is a bug (ours or the engine's). Keep the detail in the logs.
                logger.exception("run crashed")
                crash = redactor(f"Internal error ({type(exc).__name__}); see the process log.")
            finally:
                self._done.set()
                beat.join()
                logger.removeHandler(handler)
        self._record(result, crash, redactor, shutdown())

    @staticmethod
    def _finish_switch(prepared: _Prepared, logger: logging.Logger) -> None:
        """A v3 integration whose warehouse still holds v2-shaped tables (switched from v2
        in the UI or API) is switched before its run; usually nothing to do."""
        if prepared.config.source.api_version != "v3":
            return
        report = complete_switch(prepared.config, prepared.renew_token)
        if report is not None:
            logger.info("switched the warehouse to API v3: %s", ", ".join(
                f"{name} {t.action}" for name, t in report.tables.items()))

    def _prepare(self) -> _Prepared:
        plane = self.plane
        with plane.session() as db:
            run = db.get(Run, self.run_id)
            if run is None:
                raise _Setup("The run was deleted before it started.", "system")
            integ = run.integration
            version = cast(ApiVersion, integ.api_version)
            source = (
                self._v3_source(db, integ) if version == "v3" else self._v2_source(integ)
            )
            try:
                wcfg = warehouse_config(db)
            except Exception as exc:
                raise _Setup(f"The warehouse settings are not usable: {exc}", "config") from None
            settings = plane.settings
            selected = list(integ.tables)
            name, tables = integ.name, dict(integ.tables)
            history, frequency, policy = (
                integ.history_start,
                integ.frequency_hours,
                integ.new_columns,
            )
            only = (
                None
                if run.tables_requested is None
                else [t for t in run.tables_requested if t in selected]
            )
            refresh = [t for t in run.full_refresh or [] if t in selected]
            wsecret = wcfg.credentials.get_secret_value() if wcfg.credentials else ""
            # The key's own limits (api_key_limits), else the installation's defaults.
            per_second, per_day = quota.limits_for(db, integ)
            key = run.key_fingerprint
            # scheduled incremental runs' calls go first on a shared key; backfills yield
            priority = quota.rate_priority(run.trigger, run.kind)
            used_elsewhere = (
                quota.key_used_today(db, key, exclude_run=run.id) if key is not None else 0
            )
        # v3: a fresh access token (refreshed if it expires within minutes), outside the
        # session above -- the vault locks the row in a transaction of its own.
        access_token = self._fresh_token(source)
        try:
            config = SyncConfig(
                integration=name,
                source=SourceConfig(
                    api_version=version,
                    base_url=settings.v3_base_url if version == "v3" else settings.cc_base_url,
                    auth_base_url=self._auth_base(source, settings),
                    api_key=source.api_key,  # type: ignore[arg-type]
                    access_token=access_token,  # type: ignore[arg-type]
                    qps_limit=per_second,
                    daily_limit=per_day,
                    rate_priority=priority,
                ),
                warehouse=wcfg,
                tables=tables,
                history_start=history,
                state_url=settings.resolved_database_url,
                frequency_hours=frequency,
                new_columns=policy,  # type: ignore[arg-type]
                tracking=settings.tracking_policy(),
            )
        except ValidationError as exc:
            raise _Setup(
                f"The integration's settings are not valid: {exc.errors()[0]['msg']}",
                "config",
            ) from None
        try:
            _seed_limiter(config.source, used_elsewhere, settings)
        except CtctError as exc:  # the fleet's rate budget unreachable past its outage limit
            raise _Setup(exc.user_message, exc.failure_type) from None
        secrets = (
            *source.secrets,
            access_token,
            wsecret,
            settings.client_secret.get_secret_value() if settings.client_secret else "",
        )
        renew = self._renewer(source.keeper) if source.keeper is not None else None
        return _Prepared(config, only, refresh, tuple(s for s in secrets if s), renew)

    def _v2_source(self, integ: Integration) -> _Source:
        try:
            creds = self.plane.context.box.decrypt_json(integ.credentials_encrypted)
        except ValueError as exc:
            raise _Setup(str(exc), "config") from None
        if not creds.get("api_key") or not creds.get("access_token"):
            raise _Setup(
                f"{integ.name} has no Constant Contact credentials; authorize it first.",
                "auth",
            )
        return _Source(creds["api_key"], creds["access_token"], (creds["api_key"],))

    def _v3_source(self, db: Session, integ: Integration) -> _Source:
        """The v3 application and the integration's token keeper (no token request yet)."""
        ctx = self.plane.context
        try:
            record = vault_record(ctx, integ)
        except ValueError as exc:
            raise _Setup(str(exc), "config") from None
        if record is None:
            raise _Setup(
                f"{integ.name} is not authorized with Constant Contact (API v3) yet; "
                "authorize it first.",
                "auth",
            )
        app = application(db)
        if not app.client_id:
            raise _Setup(NO_V3_APP, "config")
        known = (record.tokens.access_token, record.tokens.refresh_token or "")
        return _Source(app.client_id, "", known, token_keeper(ctx, integ.id, app.v3))

    @staticmethod
    def _fresh_token(source: _Source) -> str:
        if source.keeper is None:
            return source.access_token
        try:
            return source.keeper.fresh_access_token()
        except CtctError as exc:
            # ReauthorizeRequired has marked the integration needs_reauth (committed)
            raise _Setup(exc.user_message, exc.failure_type) from None
        except LookupError:
            raise _Setup("The integration was deleted before the run started.", "system") from None

    @staticmethod
    def _auth_base(source: _Source, settings: ControlSettings) -> str | None:
        if source.keeper is not None:
            return source.keeper.app.auth_base_url
        return settings.cc_auth_base_url

    def _renewer(self, keeper: TokenKeeper) -> Callable[[str], str]:
        """``keeper.renew`` whose new tokens the run's log redacts too (set by ``execute``)."""

        def renew(refused: str) -> str:
            token = keeper.renew(refused)
            if self._redactor is not None:
                self._redactor.add(token)
            return token

        return renew

    # ------------------------------------------------------------------ progress

    def _on_progress(self, event: ProgressEvent) -> None:
        with self._lock:
            self._rows[event.table] = event.rows
            self._calls[event.table] = event.api_calls
            self._status[event.table] = _PHASE_STATUS.get(event.phase, event.phase)
        if event.phase != "page":
            # Table boundaries are rare and worth showing at once; pages ride the heartbeat.
            self._beat()
        for listener in self.listeners:
            listener(self.run_id, event)

    def _heartbeat_loop(self) -> None:
        every = self.plane.settings.heartbeat_seconds
        next_beat = time.monotonic() + every
        while not self._done.wait(min(every, CANCEL_POLL_SECONDS)):
            try:
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + every
                    self._beat()
                elif not self._cancel.is_set():
                    self._poll_cancel()
            except Exception:
                log.exception("heartbeat of run %s failed", self.run_id)

    def _poll_cancel(self) -> None:
        """Read the run's cancel flag (a read: no write lock, cheap between heartbeats)."""
        with self.plane.engine.connect() as conn:
            if conn.scalar(sa.select(Run.cancel_requested).where(Run.id == self.run_id)):
                self._cancel.set()

    def _beat(self) -> None:
        with self._lock:
            rows, status = dict(self._rows), dict(self._status)
            # per table too: the job page shows each table's calls while the job runs (only
            # succeeded runs' table_calls feed estimates, so a running one's are safe here)
            table_calls = dict(self._calls)
        calls = sum(table_calls.values())
        with self.plane.write_engine.begin() as conn:
            updated = conn.execute(
                sa.update(Run)
                .where(Run.id == self.run_id, Run.status == "running")
                .values(
                    heartbeat_at=self.plane.clock.now(),
                    rows=rows,
                    api_calls=calls,
                    table_calls=table_calls,
                    table_status=status,
                )
            ).rowcount
            cancel = conn.scalar(sa.select(Run.cancel_requested).where(Run.id == self.run_id))
        if not updated:
            # Swept as dead (or deleted): stop rather than write into a closed record.
            self._lost.set()
        if cancel:
            self._cancel.set()

    # ------------------------------------------------------------------ outcome

    def _finish_without_sync(self, message: str, failure_type: FailureType) -> None:
        with self.plane.session() as db:
            run = db.get(Run, self.run_id, with_for_update=True)
            if run is None or run.status != "running":
                return
            now = self.plane.clock.now()
            run.transition("failed")
            run.finished_at = now
            run.error = message
            run.failure_type = failure_type
            _apply_to_integration(
                run.integration,
                status="failed",
                failure_type=failure_type,
                error=message,
                resume_at=None,
                now=now,
            )
            notifications.run_finished(db, run)  # the outbox: stored with the outcome
            db.commit()

    def _record(
        self, result: SyncResult | None, crash: str | None, redactor: Redactor, shutdown: bool
    ) -> None:
        now = self.plane.clock.now()
        with self.plane.session() as db:
            run = db.get(Run, self.run_id, with_for_update=True)
            if run is None:
                return
            if run.status != "running":
                db.rollback()
                self.append_log(
                    self.plane,
                    self.run_id,
                    logging.WARNING,
                    "The worker finished after the run had been marked failed; "
                    "data it loaded is kept and the next run continues from its bookmarks.",
                )
                return
            status: RunStatus
            failure_type: str | None
            if result is None:
                status, error, failure_type = "failed", crash, "system"
                rows, table_status, calls, resume_at = (
                    dict(self._rows),
                    dict(self._status),
                    sum(self._calls.values()),
                    None,
                )
                table_calls = dict(self._calls)
            else:
                status = result.status
                error = redactor(result.error) if result.error else None
                failure_type = result.failure_type
                rows = {name: t.rows for name, t in result.tables.items()}
                table_status = {name: t.status for name, t in result.tables.items()}
                calls, resume_at = result.api_calls, result.resume_at
                table_calls = {name: t.api_calls for name, t in result.tables.items()}
                run.warnings = [redactor(w) for w in result.warnings]  # "no silent loss"
            if status == "cancelled":
                if shutdown and not run.cancel_requested:
                    error = SHUTDOWN_MESSAGE
                else:
                    error = "Cancelled on request."
            run.transition(status)
            run.finished_at = now
            run.heartbeat_at = now
            run.rows, run.table_status, run.api_calls = rows, table_status, calls
            run.table_calls = table_calls
            run.error, run.failure_type, run.resume_at = error, failure_type, resume_at
            _apply_to_integration(
                run.integration,
                status=status,
                failure_type=failure_type,
                error=error,
                resume_at=resume_at,
                now=now,
            )
            if status == "cancelled" and shutdown and not run.cancel_requested:
                integ = run.integration
                if integ.next_run_at is None or integ.next_run_at > now:
                    integ.next_run_at = now
            notifications.run_finished(db, run)  # the outbox: stored with the outcome
            db.commit()


def _seed_limiter(source: SourceConfig, used_in_store: int, settings: ControlSettings) -> None:
    """Give the key's process-wide limiter the key's limits and today's calls as the store
    knows them (runs of other processes too), so its daily budget is the key's, not this
    process's share. It keeps its own count when that is higher (calls not stored yet).

    With ``CTCTSYNC_RATE_BUDGET`` resolving to ``postgres`` the limiter is the fleet's
    (:mod:`ctctsync.api.shared_budget`, in the store's database): every process and machine
    paces and counts against one budget per key. The engine's clients get it through
    :func:`~ctctsync.api.ratelimit.limiter_for`."""
    limiter = key_limiter(
        settings, source.api_key.get_secret_value(), source.qps_limit, source.daily_limit
    )
    if used_in_store > limiter.used_today:
        limiter.set_used_today(used_in_store)


def _apply_to_integration(
    integ: Integration,
    *,
    status: str,
    failure_type: str | None,
    error: str | None,
    resume_at: datetime | None,
    now: datetime,
) -> None:
    """The integration's state after a run (see docs/architecture-control.md)."""
    if status == "succeeded":
        if integ.activated_at is None:
            integ.activated_at = now
        if integ.state == "pending":
            integ.transition("active")
        elif integ.state == "active":
            integ.state_reason = None
    elif status == "partial" and resume_at is not None:
        # Daily quota spent: the state stays; the rest is read as soon as the quota resets
        # (not a whole interval later), and nothing is tried before.
        integ.next_run_at = resume_at
    elif status == "failed" and integ.state in ("pending", "active"):
        if failure_type == "auth":
            integ.transition(
                "needs_reauth",
                error or "Constant Contact rejected the access token; authorize again.",
            )
        elif failure_type == "config":
            integ.transition("failed", error or "The configuration needs attention.")
