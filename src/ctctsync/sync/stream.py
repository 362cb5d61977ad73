"""Read one registry table since a bookmark, as typed Arrow batches: the engine's reading
half without its warehouse, state store or planners, for tools that keep their own state
(the dlt source ``ctctsync.dlt``, a Singer tap).

One :class:`TableStreams` serves one account and one run: every table it reads shares the
process-wide rate limiter of the API key (:func:`ctctsync.sync.engine.make_client`), and the
per-campaign tables share one listing of the sent campaigns. Each table is read with its own
:class:`~ctctsync.api.ApiClient` (counting that table's calls), closed when its read ends.

The bookmark rules are the engine's (:func:`ctctsync.sync.bookmarks.plan_read`): a caller
keeps ``last_run_date`` (the moment a successful read *started*, :attr:`TableRead.started_at`)
and asks :func:`plan_since` where the next read starts. A read whose notes say some rows
could not be read (:attr:`TableRead.hold_bookmark`) must not move the caller's bookmark:
the next read then covers them again, and a merge by primary key absorbs the overlap.

The campaign planner (``ctctsync.sync.campaigns``: which sent campaigns' tracking a run
reads, by their counts and tiers) works here too when the caller keeps each per-campaign
table's ledger beside its bookmark: :meth:`TableStreams.plan_campaigns` before the reads,
:meth:`TableRead.ledger` after each. Without it every sent campaign's tracking is read
since the bookmark on each run.

What this layer leaves out, and the engine has: the events ledger (every event's detail and
registrations are read on each run), column backfills, and pruning: rows of a campaign's
tracking kind that the API no longer lists (its count went down) stay where they were
loaded.

>>> streams = TableStreams(SourceConfig(api_version="v3", api_key="...", access_token="..."))
>>> read = streams.read("contacts", since=None)            # doctest: +SKIP
>>> rows = sum(batch.num_rows for batch in read.batches())  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa

from ctctsync.api.client import ApiClient
from ctctsync.api.readers import READERS_BY_VERSION
from ctctsync.api.readnotes import ReadNotes
from ctctsync.config import (
    DEFAULT_HISTORY_START,
    DEFAULT_LOOKBACK,
    SourceConfig,
    TrackingPolicy,
)
from ctctsync.errors import Redactor
from ctctsync.state import Bookmark
from ctctsync.sync.bookmarks import ReadPlan, is_incremental, plan_read
from ctctsync.sync.campaigns import PLANNED, TableInputs, TablePlan
from ctctsync.sync.engine import make_client
from ctctsync.sync.pages import BATCH_ROWS, CampaignWalk, rebatch, short_reads
from ctctsync.sync.rows import KeyDeduper, MapContext, OnNewFields, RowMapper
from ctctsync.tables import ApiVersion, Table, tables_for

log = logging.getLogger("ctctsync.stream")

Clock = Callable[[], datetime]
Ledger = Mapping[str, Mapping[str, Any]]
"""A per-campaign table's ledger: campaign id -> what its last check saw (JSON-ready)."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def plan_since(
    table: Table,
    last_run_date: datetime | None,
    *,
    history_start: date = DEFAULT_HISTORY_START,
    lookback: timedelta = DEFAULT_LOOKBACK,
    now: datetime | None = None,
) -> ReadPlan:
    """How ``table`` is read next, given the ``last_run_date`` a caller kept (None: never
    read, or forgotten): the engine's rules. ``plan.since`` is what to pass to
    :meth:`TableStreams.read`, and ``plan.disposition`` is ``merge`` or ``replace``."""
    moment = now or _utcnow()
    bookmark = None
    if last_run_date is not None:
        if last_run_date.tzinfo is None:
            raise ValueError("last_run_date must be timezone-aware (UTC)")
        bookmark = Bookmark("", table.name, last_run_date, None, moment)
    return plan_read(table, bookmark=bookmark, loaded_columns=None,
                     selected_columns=table.column_names, full_refresh=False,
                     history_start=history_start, lookback=lookback, now=moment)


@dataclass(frozen=True)
class LedgerInputs:
    """What the campaign planner needs of one per-campaign table, as its caller kept it."""

    ledger: Ledger
    """The ledger :meth:`TableRead.ledger` returned after the table's last complete read
    (empty: none yet)."""
    since: datetime | None = None
    """The table's ``plan_since(...).since`` for this run (key-based tables)."""
    first: bool = False
    """The key-based table has no bookmark: every campaign is read whole."""


@dataclass
class TableRead:
    """One table's read in progress: iterate :meth:`batches` once; then :attr:`rows`,
    :attr:`api_calls`, :attr:`notes` say what it did."""

    table: Table
    columns: tuple[str, ...]
    since: datetime | None
    started_at: datetime
    """The table's next ``last_run_date`` if the read completes (and is not held)."""
    _pages: Callable[[], Iterator[list[dict[str, Any]]]]
    _client: ApiClient
    _mapper: RowMapper
    _run_id: str
    _clock: Clock
    notes: ReadNotes = field(default_factory=ReadNotes)
    """What the read could not load without failing (filled by the version's reader)."""
    rows: int = 0
    """Rows yielded so far (after de-duplication by key)."""
    campaigns: TablePlan | None = None
    """The campaign planner's plan of this read (a planned table, once its pages began)."""
    kind_rows: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Raw records read per (campaign, activity kind): checked against the counts' rise."""

    def ledger(self) -> dict[str, dict[str, Any]] | None:
        """The table's ledger to keep with its bookmark once this read is loaded (None: the
        table was not planned). Kinds that returned fewer rows than their count rose by lose
        their mark, so the next run reads them whole; a read that noted a loss keeps the
        previous entries of the campaigns it read whole."""
        plan = self.campaigns
        if plan is None:
            return None
        clean, short = short_reads(plan, self.notes, self.kind_rows, self.table.name, log)
        # nothing is pruned here (see the module docstring): the kinds read whole are done
        return plan.ledger_after(pruned=clean, short=short)

    @property
    def api_calls(self) -> int:
        """API calls this table's read made so far."""
        return self._client.calls.total

    @property
    def hold_bookmark(self) -> bool:
        """True when some rows could not be read now but a later read can load them: keep
        the previous ``last_run_date`` (:mod:`ctctsync.api.readnotes`)."""
        return is_incremental(self.table) and self.notes.hold_bookmark

    @property
    def warnings(self) -> list[str]:
        """What the read missed, one sentence each (empty when nothing)."""
        return self.notes.messages()

    @property
    def arrow_schema(self) -> pa.Schema:
        """The schema of the yielded batches (registry columns, then the metadata ones)."""
        return self._mapper.schema

    def batches(self) -> Iterator[pa.Table]:
        """The table's rows as Arrow batches of about :data:`BATCH_ROWS` rows, typed as
        ``docs/tables.md`` says, de-duplicated by primary key, plus ``_ctctsync_loaded_at``
        and ``_ctctsync_run_id``. An empty table yields nothing. The client is closed when
        the iteration ends (or the generator is closed)."""
        dedupe = KeyDeduper(self.table.primary_key)

        def mapped() -> Iterator[pa.Table]:
            for records in self._pages():
                if not records:
                    continue
                batch = dedupe(self._mapper.to_arrow(records,
                                                     MapContext(self._run_id, self._clock())))
                self.rows += batch.num_rows
                yield batch

        try:
            yield from rebatch(mapped(), BATCH_ROWS)
        finally:
            self._client.close()
        for warning in self.warnings:
            log.warning("%s: %s", self.table.name, warning)


class TableStreams:
    """Reads the registry tables of one Constant Contact account (one API version).

    Args:
        source: where and how to reach the account (its API key or client id and access
            token, API version, base URL, rate limits). Its secrets are never logged.
        run_id: stored in ``_ctctsync_run_id`` of every row (default: a new uuid4 hex).
        clock: "now" for bookmarks and ``_ctctsync_loaded_at`` (default: this machine's UTC).
        renew_token: v3: called with the refused access token on a 401, returns a fresh one
            (``ctctsync.api.v3.tokens.TokenKeeper.renew``); None uses the token as it is.
        on_new_fields: called with (table, new field names, {}) when the API sends fields the
            registry does not know (default: a warning in the log); they are not loaded.
        redactor: the run's redactor, handed to the API clients (default: one of their own
            credentials).
        tracking: the campaign planner's tiers (``[tracking]``; default ctctsync's).
        lookback: how far before a kind's mark the planner reads (default 10 minutes).
    """

    def __init__(
        self,
        source: SourceConfig,
        *,
        run_id: str | None = None,
        clock: Clock | None = None,
        renew_token: Callable[[str], str] | None = None,
        on_new_fields: OnNewFields | None = None,
        redactor: Redactor | None = None,
        tracking: TrackingPolicy | None = None,
        lookback: timedelta = DEFAULT_LOOKBACK,
    ) -> None:
        self.source = source
        self.tracking = tracking or TrackingPolicy()
        self.lookback = lookback
        self.run_id = run_id or uuid.uuid4().hex
        self.now = clock or _utcnow
        self._renew_token = renew_token
        self._on_new_fields = on_new_fields or _warn_new_fields
        self._redactor = redactor
        self._reader = READERS_BY_VERSION[source.api_version]
        self._walk = CampaignWalk(self._reader, source.api_version)

    @property
    def api_version(self) -> ApiVersion:
        """The API version the tables are read from."""
        return self.source.api_version

    @property
    def tables(self) -> dict[str, Table]:
        """The tables this API version fills, as it fills them, in the registry's order."""
        return tables_for(self.api_version)

    def table(self, name: str) -> Table:
        """The table ``name`` as this version fills it; a clear KeyError if it cannot."""
        tables = self.tables
        if name not in tables:
            raise KeyError(f"{name!r} is not a table API {self.api_version} fills; "
                           f"known: {', '.join(tables)}")
        return tables[name]

    def client(self) -> ApiClient:
        """A new API client of the account, paced by the key's shared rate limiter."""
        return make_client(self.source, redactor=self._redactor,
                           renew_token=self._renew_token)

    def plan_campaigns(self, inputs: Mapping[str, Callable[[], LedgerInputs]]) -> frozenset[str]:
        """Read the per-campaign tables of ``inputs`` (``contact_tracking``,
        ``email_campaign_summary``) through the campaign planner in this run: the sent
        campaigns are listed once and the due ones scanned once (on the first read of one of
        them), and only the tracking whose counts moved is read. Each maker is called once,
        at that first read. Returns the tables planned (none when the version cannot scan).
        Call it before :meth:`read`, with every planned table the run will read."""
        tables = self.tables
        return self._walk.plan_campaigns(
            {n: tables[n] for n in inputs if n in tables},
            lambda n: functools.partial(self._table_inputs, n, inputs[n]),
            policy=self.tracking, lookback=self.lookback, now=self.now)

    def _table_inputs(self, name: str, make: Callable[[], LedgerInputs]) -> TableInputs:
        given = make()
        table = self.table(name)
        if not is_incremental(table):
            return TableInputs(name, PLANNED[name], dict(given.ledger))
        return TableInputs(name, PLANNED[name], dict(given.ledger), whole=given.first,
                           since=given.since, bookmarked=not given.first)

    def read(self, name: str, since: datetime | None, *,
             columns: Sequence[str] | None = None) -> TableRead:
        """Begin reading table ``name``: its rows changed since ``since`` (a key-based table;
        None: every row), or all of them (a full table, which ignores ``since``). No API call
        is made until :meth:`TableRead.batches` is iterated. ``columns``: the columns to
        load (default all; keys and the cursor are always kept)."""
        table = self.table(name)
        chosen = tuple(table.column_names if columns is None
                       else dict.fromkeys((*table.required_columns, *columns)))
        client = self.client()
        notes = ReadNotes()
        mapper = RowMapper(table, chosen, on_new_fields=self._on_new_fields)
        read = TableRead(table=table, columns=chosen, since=since, started_at=self.now(),
                         _pages=lambda: self._pages(read, client),
                         _client=client, _mapper=mapper, _run_id=self.run_id,
                         _clock=self.now, notes=notes)
        return read

    def _pages(self, read: TableRead, client: ApiClient) -> Iterator[list[dict[str, Any]]]:
        # the engine's walk (sync/pages.py): a planned table walks the campaigns its plan
        # reads; another per-campaign table the run's one list of the sent campaigns
        pages, read.campaigns = self._walk.pages(
            read.table, client, read.since, notes=read.notes, columns=read.columns,
            now=self.now, kind_rows=read.kind_rows, log=log)
        return pages


def _warn_new_fields(table: str, fields: Sequence[str], added: Mapping[str, str]) -> None:
    log.warning("%s: the API sent field(s) ctctsync does not know, not loaded: %s",
                table, ", ".join(fields))


__all__ = [
    "BATCH_ROWS",
    "DEFAULT_HISTORY_START",
    "DEFAULT_LOOKBACK",
    "Ledger",
    "LedgerInputs",
    "TableRead",
    "TableStreams",
    "is_incremental",
    "plan_since",
]
