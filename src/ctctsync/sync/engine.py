"""The sync engine: read each selected table from Constant Contact and load it, in order.

Per table: plan the read from its bookmark (:mod:`ctctsync.sync.bookmarks`), stream its
pages from the API (``ctctsync.api.v2.extract``) through the registry mapping
(:mod:`ctctsync.sync.rows`) into the warehouse loader, then, once the load is committed,
save the bookmark. Memory holds a few pages at a time whatever the account size.

Failures are reported, not raised: a table that fails is marked so and the run goes on with
the next one, except when going on cannot help (revoked token, spent daily quota,
cancellation).
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final

import pyarrow as pa

from ctctsync.api import ApiClient, RetryPolicy, fingerprint, limiter_for
from ctctsync.api.cancel import Cancelled, StopCheck
from ctctsync.api.client import RetryStats
from ctctsync.api.readers import READERS_BY_VERSION
from ctctsync.api.readnotes import ReadNotes
from ctctsync.config import SourceConfig, SyncConfig, config_error
from ctctsync.errors import (
    FAILURES,
    STANDARD_PATTERNS,
    CtctError,
    DailyQuotaExhausted,
    FailureOutcome,
    Redactor,
    SecretLike,
    redact,
)
from ctctsync.state import SWITCH_MARKER, Bookmark, StateStore
from ctctsync.sync.bookmarks import ReadPlan, is_incremental, plan_read
from ctctsync.sync.campaigns import PLANNED, TableInputs, TablePlan
from ctctsync.sync.drift import DriftReport
from ctctsync.sync.events import EVENT_TABLES, EventRun, event_reader, plan_events
from ctctsync.sync.pages import BATCH_ROWS, CampaignWalk, rebatch, short_reads
from ctctsync.sync.prefetch import Prefetcher
from ctctsync.sync.preflight import preflight
from ctctsync.sync.results import (
    FailureType,
    Phase,
    ProgressEvent,
    RunStatus,
    SyncResult,
    TableDone,
    TableResult,
    table_done_line,
)
from ctctsync.sync.rows import KeyDeduper, MalformedRecord, MapContext, RowMapper
from ctctsync.tables import Table, tables_for
from ctctsync.warehouse import Loader, WarehouseError
from ctctsync.warehouse.prune import prune_events, prune_stale
from ctctsync.warehouse.switch import restore_v2_ids

Clock = Callable[[], datetime]

PREFETCH = 2
"""Raw pages fetched ahead of the one being mapped (bounds memory: a page is ~0.5 MB)."""
V2_ID_TABLES = ("contacts", "contact_lists", "email_campaigns")
"""The tables whose v2 ids a switched integration keeps in ``v2_id``."""
LOOKAHEAD = 8
"""Tables whose reads begin while the previous table loads (each at most PREFETCH pages)."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def make_client(
    source: SourceConfig,
    should_stop: StopCheck | None = None,
    redactor: Redactor | None = None,
    renew_token: Callable[[str], str] | None = None,
) -> ApiClient:
    """An API client for ``source``, sharing the process-wide rate limiter of its API key
    (every stream and every run of one key paces against the same 4 requests/s: CC limits
    per application, v2 key or v3 client id alike); ``should_stop`` cancels its requests and
    waits (see :mod:`ctctsync.api.cancel`); ``redactor`` is the run's (default: one of the
    client's own credentials); ``renew_token`` gets a fresh v3 access token when the API
    refuses the current one mid-run. The client's calls have ``source.rate_priority`` at
    the key's budget."""
    api_key = source.api_key.get_secret_value()
    limiter = limiter_for(fingerprint(api_key), source.qps_limit, source.daily_limit)
    return ApiClient(
        source.base_url,
        api_key,
        source.access_token.get_secret_value(),
        limiter=limiter,
        retry=RetryPolicy(max_attempts=max(1, source.max_retries)),
        timeout=source.timeout_seconds,
        should_stop=should_stop,
        redactor=redactor,
        send_api_key=source.api_version == "v2",
        renew_token=renew_token if source.api_version == "v3" else None,
        priority=source.rate_priority,
    )


def run_secrets(config: SyncConfig) -> tuple[SecretLike, ...]:
    """What a run's redactor scrubs: its API key, tokens and warehouse credentials."""
    source = config.source
    return (source.api_key, source.access_token, source.refresh_token, source.client_secret,
            config.warehouse.credentials)


@dataclass(frozen=True)
class _Failure:
    """A classified failure; what it means for the run comes from ``errors.FAILURES``."""

    message: str
    failure_type: FailureType
    resume_at: datetime | None = None
    stops: bool = False
    """The failure's own rule stops the run (a rejected API key, an unreachable host)."""

    @property
    def outcome(self) -> FailureOutcome:
        return FAILURES[self.failure_type]

    @property
    def stop_run(self) -> bool:
        return self.stops or self.outcome.stops_run

    @property
    def status(self) -> RunStatus:
        return self.outcome.run_status


@dataclass(frozen=True)
class _Kind:
    """How the engine reports a failure of another part that does not classify itself."""

    failure_type: FailureType
    message: str = "{error}"
    names_table: bool = False
    """True when the message already says which table (it gets no ``<table>: `` prefix)."""


_KINDS: Final[tuple[tuple[type[Exception], _Kind], ...]] = (
    (
        MalformedRecord,
        _Kind("system", "Constant Contact sent data ctctsync cannot store: {error}", True),
    ),
    (WarehouseError, _Kind("config")),
)
"""Failure kinds classified here (first match wins). ``CtctError`` (by its error-table rule)
and ``Cancelled`` carry their own failure type and message."""

_UNEXPECTED: Final = _Kind("system", "loading into the warehouse failed ({kind}: {error})")
"""Anything else: the warehouse library failed in a way nobody classified."""


def _classify(exc: BaseException, secrets: tuple[SecretLike, ...], table: str = "") -> _Failure:
    """The failure ``exc`` stands for. A failure that stops the run speaks for the run; one
    that does not is about its ``table`` and says so."""
    kind: _Kind
    if isinstance(exc, CtctError | Cancelled):
        kind, error = _Kind(exc.failure_type), exc.user_message
    else:
        kind = next((k for cls, k in _KINDS if isinstance(exc, cls)), _UNEXPECTED)
        error = str(exc)
        if kind is _UNEXPECTED:  # a driver's text may echo the connection string
            first = error.strip().splitlines()[0] if error.strip() else ""
            error = redact(first, secrets)[:300]
    message = kind.message.format(error=error, kind=type(exc).__name__)
    stops = isinstance(exc, CtctError) and exc.stops_run
    if table and not kind.names_table and not (stops or FAILURES[kind.failure_type].stops_run):
        message = f"{table}: {message}"
    resume_at = exc.resume_at if isinstance(exc, DailyQuotaExhausted) else None
    return _Failure(message, kind.failure_type, resume_at, stops)


@dataclass
class _TableRun:
    """One table's read: its plan, its client and its pages (begun possibly ahead of time,
    while the previous table was loading), and its counters."""

    table: Table
    plan: ReadPlan
    columns: tuple[str, ...]
    started_at: datetime
    """The table's bookmark if it succeeds: the moment its read began."""
    client: ApiClient
    own_client: bool
    calls_at_start: int
    retries_at_start: RetryStats
    pages: Prefetcher[list[dict[str, Any]]] | None = None
    notes: ReadNotes = field(default_factory=ReadNotes)
    """What the read could not load without failing (filled by the reader)."""
    campaigns: TablePlan | None = None
    """A planned per-campaign table's plan (``sync.campaigns``), once its read began."""
    events: EventRun | None = None
    """An events table's plan (``sync.events``: whose details and registrations to read)."""
    kind_rows: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Raw records read per (campaign, activity kind): checked against the counts' rise."""
    rows: int = 0
    page_count: int = 0

    def close(self) -> None:
        if self.pages is not None:
            self.pages.close()
        if self.own_client:
            self.client.close()


def run_sync(
    config: SyncConfig,
    *,
    state: StateStore | None = None,
    run_id: str | None = None,
    only_tables: Sequence[str] | None = None,
    full_refresh: bool | Sequence[str] = False,
    progress: Callable[[ProgressEvent], None] | None = None,
    logger: logging.Logger | None = None,
    should_stop: Callable[[], bool] | None = None,
    client: ApiClient | None = None,
    clock: Clock | None = None,
    redactor: Redactor | None = None,
    check_first: bool = True,
    renew_token: Callable[[str], str] | None = None,
    recheck_campaigns: bool = False,
) -> SyncResult:
    """Replicate the selected tables of one Constant Contact account into the warehouse.

    Args:
        config: the integration's configuration (source, warehouse, table/column selection,
            history start, look-back).
        state: the bookmark store; default ``StateStore(config.state_url)``.
        run_id: the run's id (stored in ``_ctctsync_run_id``); default a new uuid4 hex.
        only_tables: sync only these of the configured tables (others are left untouched).
        full_refresh: True to forget every synced table's bookmark first, or the names of
            the tables to re-read from ``history_start`` and replace.
        progress: called with a :class:`ProgressEvent` at each step of each table.
        logger: the process log (default ``ctctsync.sync``); never receives secrets.
        should_stop: polled between pages, before every API request and during every wait
            (rate limit, retry backoff); True ends the run ``cancelled`` within the request
            in flight (tables already done stay committed, the current one is rolled back,
            the ones not begun are marked ``cancelled``).
        client: an API client to use (default: one built from ``config.source``).
        clock: the source's "now" (default: this machine's UTC clock); bookmarks are instants
            of this clock, so tests against a simulator with its own clock pass that one.
        redactor: the run's redactor (default: one of :func:`run_secrets`), handed to its API
            clients and in use while the run lasts, so the process log is scrubbed of this
            run's secrets; nothing keeps them after the run.
        check_first: run the preflight (:func:`ctctsync.sync.preflight.preflight`:
            credentials set, warehouse reachable and writable) before the first API call; a
            failed preflight ends the run ``failed`` (type ``config``) with every table
            failed with its one message and no API call. False when the caller just ran it.
        renew_token: v3 only: given the access token the API refused mid-run, returns a
            fresh one (refreshing it with the stored refresh token, which the caller keeps:
            ``ctctsync.api.v3.tokens``); the run's clients then go on with it.
        recheck_campaigns: check every sent campaign in this run and read every tracking
            kind of each whole (stale rows pruned), whatever the tiers say
            (``ctctsync sync --recheck-campaigns``; docs/architecture-sync.md).

    Returns:
        A :class:`SyncResult`. Source and warehouse failures are reported in it, not raised;
        only a caller mistake (an unknown or unconfigured table name) raises ``ConfigError``.

    >>> result = run_sync(load_config(Path("ctctsync.toml")))   # doctest: +SKIP
    >>> result.status, result.tables["contacts"].rows             # doctest: +SKIP
    ('succeeded', 1234)
    """
    now = clock or _utcnow
    log = logger or logging.getLogger("ctctsync.sync")
    run_id = run_id or uuid.uuid4().hex
    names = _selected_tables(config, only_tables)
    refresh = _refresh_set(config, names, full_refresh)
    started_at = now()
    result = SyncResult(run_id=run_id, started_at=started_at, finished_at=started_at,
                        status="succeeded")
    for name in names:
        result.tables[name] = TableResult()
    problem = preflight(config, source=client is None) if check_first else None
    if problem is not None:  # before any API call, state store or warehouse file
        return _failed_before_start(result, problem, log, now)
    store = state if state is not None else StateStore(config.state_url)
    redactor = redactor or Redactor(run_secrets(config), patterns=STANDARD_PATTERNS)
    own_client = client is None
    api = client if client is not None else make_client(config.source, should_stop, redactor,
                                                        renew_token)
    engine = _Engine(config, store, api, run_id, log, progress, should_stop, now,
                     own_clients=own_client, renew_token=renew_token,
                     recheck_campaigns=recheck_campaigns)
    log.info("run %s: syncing %s into %s", run_id, ", ".join(names), config.warehouse.destination)
    failure: _Failure | None = None
    try:
        with redactor.in_use(), engine.loader:
            failure = engine.sync_tables(names, result, refresh)
    except WarehouseError as exc:  # the warehouse is not usable at all (e.g. no credentials)
        log.error("run %s: %s", run_id, redactor(str(exc)))
        failure = _classify(exc, (config.warehouse.credentials,))
        for tr in result.tables.values():
            tr.status, tr.error = "failed", str(exc)
    finally:
        if own_client:
            api.close()
    result.api_calls = sum(t.api_calls for t in result.tables.values())
    result.finished_at = now()
    if failure is not None:
        result.status = failure.status
        result.error = failure.message
        result.failure_type = failure.failure_type
        result.resume_at = failure.resume_at
    log.info(
        "run %s %s: %d rows, %d API calls, %.1f s",
        run_id, result.status, result.rows, result.api_calls,
        (result.finished_at - result.started_at).total_seconds(),
    )
    return result


def _failed_before_start(
    result: SyncResult, problem: str, log: logging.Logger, now: Clock
) -> SyncResult:
    """The result of a run whose preflight failed: nothing read, nothing written."""
    log.error("run %s cannot start: %s", result.run_id, problem)
    for tr in result.tables.values():
        tr.status, tr.error = "failed", problem
    result.status, result.error, result.failure_type = "failed", problem, "config"
    result.finished_at = now()
    return result


def _selected_tables(config: SyncConfig, only: Sequence[str] | None) -> list[str]:
    configured = [n for n in tables_for(config.source.api_version) if n in config.tables]
    if only is None:
        return configured
    wrong = [n for n in only if n not in config.tables]
    if wrong:
        raise config_error(
            f"table(s) {', '.join(wrong)} are not selected in this integration "
            f"(selected: {', '.join(configured) or 'none'})"
        )
    wanted = set(only)
    return [n for n in configured if n in wanted]


def _refresh_set(
    config: SyncConfig, names: Sequence[str], full_refresh: bool | Sequence[str]
) -> frozenset[str]:
    if full_refresh is True:
        return frozenset(names)
    if full_refresh is False:
        return frozenset()
    wrong = [n for n in full_refresh if n not in config.tables]
    if wrong:
        raise config_error(f"cannot refresh table(s) not selected: {', '.join(wrong)}")
    return frozenset(full_refresh)


class _Engine:
    """One run's collaborators, so each table's sync is a short method."""

    def __init__(
        self,
        config: SyncConfig,
        state: StateStore,
        client: ApiClient,
        run_id: str,
        log: logging.Logger,
        progress: Callable[[ProgressEvent], None] | None,
        should_stop: Callable[[], bool] | None,
        now: Clock,
        *,
        own_clients: bool,
        renew_token: Callable[[str], str] | None = None,
        recheck_campaigns: bool = False,
    ) -> None:
        self.config = config
        self._recheck_campaigns = recheck_campaigns
        self._renew_token = renew_token
        self._reader = READERS_BY_VERSION[config.source.api_version]
        self._walk = CampaignWalk(self._reader, config.source.api_version)
        """The sent campaigns the per-campaign tables walk, and the run's campaign planner
        (``sync.campaigns``), when the version can scan."""
        self._events_reader = event_reader(self._reader)
        """The version's planned events read (v3), None when it has none (v2)."""
        self._switched = (config.source.api_version == "v3"
                          and state.get(config.integration, SWITCH_MARKER) is not None)
        """Whether the integration was switched from v2: its v2 ids are kept."""
        self.state = state
        self.client = client
        self.run_id = run_id
        self.log = log
        self._progress = progress
        self._should_stop = should_stop
        self.now = now
        self.loader = Loader(config.warehouse, config.integration)
        self.drift = DriftReport(log, state, config.integration)
        self._own_clients = own_clients
        """True: each table gets its own client (sharing the key's rate limiter), so its
        calls are counted apart and the next table may begin while one loads."""

    # -- progress --------------------------------------------------------------------------

    def _calls(self, run: _TableRun) -> int:
        return run.client.calls.total - run.calls_at_start

    def _emit(self, run: _TableRun, phase: Phase, error: str | None = None) -> None:
        if self._progress is None:
            return
        event = ProgressEvent(
            run_id=self.run_id,
            table=run.table.name,
            phase=phase,
            rows=run.rows,
            api_calls=self._calls(run),
            error=error,
        )
        try:
            self._progress(event)
        except Exception:
            # a broken progress display must not break the sync
            self.log.exception("progress callback failed on %s %s", run.table.name, phase)

    # -- tables ------------------------------------------------------------------------------

    def sync_tables(
        self, names: Sequence[str], result: SyncResult, refresh: frozenset[str]
    ) -> _Failure | None:
        """Sync ``names`` in order; returns the run's failure (the first, or the one that
        stopped the run).

        When a table's pages are all read, the next ``LOOKAHEAD`` tables' reads begin (each
        at most ``PREFETCH`` pages ahead) while the table is written to the warehouse, so
        the API is not left idle during loads; each table counts its calls on its own client.
        Tables are still written one after the other, in order.
        """
        failure: _Failure | None = None
        ahead: dict[str, _TableRun] = {}
        cfg = self.config
        self._walk.plan_campaigns(
            {n: cfg.table(n) for n in names},
            lambda n: functools.partial(self._campaign_inputs, n, n in refresh),
            policy=cfg.tracking, lookback=cfg.lookback, now=self.now,
            recheck_all=self._recheck_campaigns)

        def begin_ahead(after: int) -> None:
            if not self._own_clients or self._stopping():
                return
            for nxt in names[after + 1: after + 1 + LOOKAHEAD]:
                if nxt not in ahead:
                    ahead[nxt] = self._begin(nxt, nxt in refresh)

        try:
            for i, name in enumerate(names):
                tr = result.tables[name]
                if self._stopping():
                    tr.status = "cancelled"
                    failure = _classify(Cancelled(), ())
                    break
                here: _Failure | None
                try:
                    run = ahead.pop(name, None) or self._begin(name, name in refresh)
                except Exception as exc:  # e.g. the state store is unreachable
                    here = self._failure(self.config.table(name), exc)
                    tr.status, tr.error = "failed", here.message
                else:
                    here = self.sync_table(run, tr, functools.partial(begin_ahead, i))
                if here is not None and (failure is None or here.stop_run):
                    failure = here
                if here is not None and here.stop_run:
                    break
        finally:
            for run in ahead.values():
                run.close()
        if failure is not None and failure.status == "cancelled":
            for name in names:  # the tables the cancel kept from starting
                if result.tables[name].status == "skipped":
                    result.tables[name].status = "cancelled"
        return failure

    def _campaign_inputs(self, name: str, full_refresh: bool) -> TableInputs:
        """What the planner needs of a planned table: its ledger, and whether it is read
        whole this run (a key-based table by its bookmark rules; a full one when refreshed)."""
        cfg = self.config
        table = cfg.table(name)
        ledger = self.state.ledger(cfg.integration, name)
        if table.replication != "incremental":
            return TableInputs(name, PLANNED[name], ledger, whole=full_refresh)
        bookmark = self.state.get(cfg.integration, name)
        plan = self._read_plan(table, full_refresh, self.now(), bookmark)
        return TableInputs(name, PLANNED[name], ledger, whole=plan.mode == "full",
                           since=plan.since, bookmarked=bookmark is not None)

    def _read_plan(self, table: Table, full_refresh: bool, now: datetime,
                   bookmark: Bookmark | None) -> ReadPlan:
        cfg = self.config
        loaded_columns = None
        if table.replication == "incremental":
            loaded_columns = self.state.columns(cfg.integration, table.name)
        return plan_read(
            table,
            bookmark=bookmark,
            loaded_columns=loaded_columns,
            selected_columns=cfg.selected_columns(table.name),
            full_refresh=full_refresh,
            history_start=cfg.history_start,
            lookback=cfg.lookback,
            now=now,
        )

    def _stopping(self) -> bool:
        return self._should_stop is not None and self._should_stop()

    def _begin(self, name: str, full_refresh: bool) -> _TableRun:
        """Plan a table's read and start fetching its pages."""
        cfg = self.config
        table = cfg.table(name)
        columns = cfg.selected_columns(name)
        started_at = self.now()
        bookmark = None
        if table.replication == "incremental":
            bookmark = self.state.get(cfg.integration, name)
        plan = self._read_plan(table, full_refresh, started_at, bookmark)
        events = None
        if self._events_reader is not None and name in EVENT_TABLES:
            previous = {} if full_refresh else self.state.ledger(cfg.integration, name)
            events = plan_events(name, previous, now=started_at, policy=cfg.tracking,
                                 columns=columns, full_refresh=full_refresh)
        if events is not None and events.prunes:
            # only the events that changed (or are live, or due) are read: merge them, and
            # prune their stale rows after the load (sync/events.py)
            plan = replace(plan, mode="incremental", disposition="merge",
                           reason="the events the ledger says changed, are live or are due")
        client = (
            make_client(cfg.source, self._should_stop, self.client.redactor, self._renew_token)
            if self._own_clients
            else self.client
        )
        run = _TableRun(table=table, plan=plan, columns=columns, started_at=started_at,
                        client=client, own_client=self._own_clients,
                        calls_at_start=client.calls.total,
                        retries_at_start=client.calls.retry_stats(), events=events)
        run.pages = Prefetcher(lambda: self._pages(run), PREFETCH, self._should_stop)
        return run

    def sync_table(
        self, run: _TableRun, tr: TableResult, begin_next: Callable[[], None]
    ) -> _Failure | None:
        """Load one table's pages, then save its bookmark; returns the failure, if any.
        ``begin_next`` is called once the table's pages are all read."""
        cfg = self.config
        table, plan = run.table, run.plan
        tr.mode, tr.since = plan.mode, plan.since
        # The table's own time is from its turn on: a read begun ahead of time overlaps the
        # tables before it, and counting from there made the last tables' seconds add up
        # the whole run's (issue 12: "events: ... 32.8 s" in a 33 s run).
        turn = time.monotonic()
        self.log.info(
            "%s: %s read (%s)%s, %d columns", table.name, plan.mode, plan.reason,
            f" since {plan.since.isoformat()}" if plan.since else "", len(run.columns),
        )
        self._emit(run, "start")
        try:
            self.loader.load(table, run.columns, self._batches(run, begin_next),
                             plan.disposition)
            if self._switched and table.name in V2_ID_TABLES:
                # v3 rows carry no v2 id: put back the one the switch mapped, in the rows
                # this load merged or replaced (docs/switching-to-v3.md)
                restore_v2_ids(cfg.warehouse, cfg.integration, (table.name,))
            tr.rows = run.rows
            self._emit(run, "loaded")
            self._note_losses(run, tr)
            ledger = (self._campaign_ledger(run) if run.campaigns is not None
                      else self._event_ledger(run) if run.events is not None else None)
            if table.replication == "incremental" and not tr.bookmark_held:
                # only now that the data is committed: a crash before this line re-reads
                self.state.set(cfg.integration, table.name, run.started_at, self.run_id,
                               columns=run.columns, ledger=ledger)
            elif ledger is not None and not tr.bookmark_held:
                self.state.save_ledger(cfg.integration, table.name, ledger)
        except BaseException as exc:  # mapped to a result; KeyboardInterrupt re-raised
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            failure = self._failure(table, exc)
            # a spent quota stops the table cleanly (the next run reads it): not a failure
            tr.status = (
                "cancelled" if failure.status == "cancelled"
                else "stopped" if failure.status == "partial"
                else "failed"
            )
            tr.error = failure.message
            tr.api_calls = self._calls(run)
            tr.rows = 0
            self._emit(run, "failed", failure.message)
            return failure
        finally:
            run.close()
            tr.seconds = time.monotonic() - turn
            tr.retries = self._log_retries(run)
        tr.status = "succeeded"
        tr.api_calls = self._calls(run)
        self._emit(run, "done")
        self.log.info("%s", table_done_line(TableDone(
            table.name, run.rows, run.page_count, tr.api_calls, tr.seconds, tr.retries)))
        return None

    def _log_retries(self, run: _TableRun) -> int:
        """One WARN line for a table whose calls were retried or throttled: the quota it
        cost and why, which a slow run otherwise hides (the client logs each one at INFO
        or WARNING on its own logger, not in the run log). Returns the extra calls."""
        stats = run.client.calls.retry_stats().since(run.retries_at_start)
        summary = stats.summary()
        if summary is not None:
            self.log.warning("%s: %s", run.table.name, summary)
        return stats.extra_calls

    def _note_losses(self, run: _TableRun, tr: TableResult) -> None:
        """The bookmark rule of "no silent loss": what the read missed becomes the table's
        warnings, and if a later read can load it, the bookmark stays where it was (the next
        run re-reads the window; the merge absorbs the overlap). Losses that are gone for
        good (a campaign deleted during the run) warn but let the bookmark move."""
        tr.warnings = run.notes.messages()
        # the read layer's rule too (sync/stream.py): a table read whole has nothing to hold
        tr.bookmark_held = is_incremental(run.table) and run.notes.hold_bookmark
        for warning in tr.warnings:
            self.log.warning("%s: %s", run.table.name, warning)
        if tr.bookmark_held:
            self.log.warning("%s: bookmark not moved, so the next run reads these rows again",
                             run.table.name)

    def _pages(self, run: _TableRun) -> Iterator[list[dict[str, Any]]]:
        # an events table reads what its plan says; any other table through the walk the
        # read layer shares (sync/pages.py): a per-campaign one walks the run's one list of
        # the sent campaigns, or a planned one only those its plan reads (sync/campaigns.py)
        table, client = run.table, run.client
        if run.events is not None and self._events_reader is not None:
            return self._events_reader.read_events(table, client, plan=run.events, now=self.now,
                                                   notes=run.notes)
        pages, run.campaigns = self._walk.pages(
            table, client, run.plan.since, notes=run.notes, columns=run.columns, now=self.now,
            kind_rows=run.kind_rows, log=self.log)
        return pages

    def _campaign_ledger(self, run: _TableRun) -> dict[str, dict[str, Any]]:
        """A planned table's ledger after its load, its stale rows pruned first (a crash
        between the two re-detects the decrease: the saved ledger still has the old count).
        A read that noted a loss prunes nothing: its whole reads may lack rows."""
        plan = run.campaigns
        assert plan is not None
        clean, short = short_reads(plan, run.notes, run.kind_rows, run.table.name, self.log)
        if clean and plan.prune and run.plan.disposition == "merge":
            cfg = self.config
            numeric = run.table.column("campaign_id").type == "bigint"
            deleted = prune_stale(cfg.warehouse, cfg.integration, run.table.name, plan.prune,
                                  self.run_id, numeric_ids=numeric)
            self.log.info("%s: %d stale rows pruned (%d campaigns read whole)",
                          run.table.name, deleted, len(plan.prune))
        return plan.ledger_after(pruned=clean, short=short)

    def _event_ledger(self, run: _TableRun) -> dict[str, dict[str, Any]]:
        """An events table's ledger after its load; for a merged registrations read, the
        rows of the events read again that this run did not return, and those of events no
        longer listed, are pruned first (a crash between the two reads those events again:
        the saved ledger is the old one). A read that noted a loss prunes nothing."""
        plan = run.events
        assert plan is not None
        clean = not run.notes.counts()
        self.log.info("%s: %s", run.table.name, plan.summary_line())
        if clean and plan.prunes:
            cfg = self.config
            deleted = prune_events(cfg.warehouse, cfg.integration, run.table.name, plan.kept,
                                   self.run_id)
            self.log.info("%s: %d stale rows pruned (%d events read again, %d kept)",
                          run.table.name, deleted, len(plan.reread), len(plan.kept))
        return plan.ledger_after(pruned=clean)

    def _batches(self, run: _TableRun, begin_next: Callable[[], None]) -> Iterator[pa.Table]:
        """The table's pages as Arrow batches, de-duplicated by key across the whole load.

        Pages are fetched one or two ahead on a helper thread (the next page is on the wire
        while this one is mapped and written), and mapped pages are handed to dlt in batches
        of about ``BATCH_ROWS`` rows (dlt's cost per item is fixed, not per row). Memory
        holds at most ``PREFETCH`` raw pages plus one batch.
        """
        mapper = RowMapper(run.table, run.columns, new_columns=self.config.new_columns,
                           on_new_fields=self.drift)
        dedupe = KeyDeduper(run.table.primary_key)
        pages = run.pages
        assert pages is not None

        def mapped() -> Iterator[pa.Table]:
            for records in pages:
                if self._stopping():
                    raise Cancelled
                if not records:
                    continue
                batch = dedupe(mapper.to_arrow(records, MapContext(self.run_id, self.now())))
                run.page_count += 1
                run.rows += batch.num_rows
                self._emit(run, "page")
                yield batch
            try:  # before rebatch yields the last batch, whose load is the longest wait
                begin_next()  # the next table's requests overlap this table's load
            except Exception:
                self.log.exception("could not begin the next table early; it begins later")

        yielded = False
        for batch in rebatch(mapped(), BATCH_ROWS):
            yielded = True
            yield batch
        if not yielded and run.plan.disposition == "replace":
            # an empty source table must empty (or create) the warehouse table too
            yield mapper.schema.empty_table()

    # -- failures ----------------------------------------------------------------------------

    def _failure(self, table: Table, exc: BaseException) -> _Failure:
        """Classify a table's failure (see ``_classify``) and log it with its detail."""
        failure = _classify(exc, (self.config.warehouse.credentials,), table.name)
        known = isinstance(exc, (CtctError, Cancelled, *(cls for cls, _ in _KINDS)))
        ended = failure.status == "failed"
        self.log.log(
            logging.ERROR if ended else logging.WARNING,
            "%s %s (%s): %s; nothing of it was committed",
            table.name,
            "failed" if ended else "stopped",
            failure.failure_type,
            # the message ends a sentence; the line goes on ("...UTC.; nothing" read badly)
            ((str(exc) or failure.message) if known else failure.message).rstrip("."),
            exc_info=None if known else exc,
        )
        return failure
