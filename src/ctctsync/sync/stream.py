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

What this layer leaves out, and the engine has: the campaign planner's tiers and the events
ledger (both live in ctctsync's state store), column backfills and pruning of stale rows. So
every sent campaign's tracking is read since the bookmark on each run, and every event's
detail and registrations are read on each run.

>>> streams = TableStreams(SourceConfig(api_version="v3", api_key="...", access_token="..."))
>>> read = streams.read("contacts", since=None)            # doctest: +SKIP
>>> rows = sum(batch.num_rows for batch in read.batches())  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa

from ctctsync.api.client import ApiClient
from ctctsync.api.readers import READERS_BY_VERSION
from ctctsync.api.readnotes import ReadNotes
from ctctsync.config import SourceConfig
from ctctsync.errors import Redactor
from ctctsync.state import Bookmark
from ctctsync.sync.bookmarks import ReadPlan, plan_read
from ctctsync.sync.engine import make_client
from ctctsync.sync.rows import KeyDeduper, MapContext, OnNewFields, RowMapper
from ctctsync.tables import ApiVersion, Table, tables_for

log = logging.getLogger("ctctsync.stream")

Clock = Callable[[], datetime]

BATCH_ROWS = 10_000
"""Mapped rows per yielded batch at most about this many (a few API pages)."""
DEFAULT_LOOKBACK = timedelta(minutes=10)
"""How far before the bookmark an incremental read starts (the engine's default)."""
DEFAULT_HISTORY_START = date(2000, 1, 1)
"""Where a first read of a key-based table starts (the engine's default)."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def is_incremental(table: Table) -> bool:
    """Whether ``table`` is read from a bookmark and merged by key; otherwise it is read whole
    on every run and replaces its previous rows (full tables, and ``read_whole`` ones)."""
    return table.replication == "incremental" and not table.read_whole


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
        pending: list[pa.Table] = []
        size = 0
        try:
            for records in self._pages():
                if not records:
                    continue
                batch = dedupe(self._mapper.to_arrow(records,
                                                     MapContext(self._run_id, self._clock())))
                if not batch.num_rows:
                    continue
                self.rows += batch.num_rows
                pending.append(batch)
                size += batch.num_rows
                if size >= BATCH_ROWS:
                    yield pa.concat_tables(pending, promote_options="default")
                    pending, size = [], 0
            if pending:
                yield pa.concat_tables(pending, promote_options="default")
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
    ) -> None:
        self.source = source
        self.run_id = run_id or uuid.uuid4().hex
        self.now = clock or _utcnow
        self._renew_token = renew_token
        self._on_new_fields = on_new_fields or _warn_new_fields
        self._redactor = redactor
        self._reader = READERS_BY_VERSION[source.api_version]
        self._campaigns: list[dict[str, Any]] | None = None
        self._lock = threading.Lock()

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
        return TableRead(table=table, columns=chosen, since=since, started_at=self.now(),
                         _pages=lambda: self._pages(table, client, since, notes, chosen),
                         _client=client, _mapper=mapper, _run_id=self.run_id,
                         _clock=self.now, notes=notes)

    def _pages(self, table: Table, client: ApiClient, since: datetime | None,
               notes: ReadNotes, columns: Sequence[str]) -> Iterator[list[dict[str, Any]]]:
        source = table.sources[self.api_version]
        campaigns = self._sent_campaigns(client) if source.walks_sent_campaigns else None
        return self._reader.extract(table, client, since, campaigns=campaigns, now=self.now,
                                    notes=notes, columns=columns)

    def _sent_campaigns(self, client: ApiClient) -> list[dict[str, Any]]:
        # every per-campaign table walks the same sent campaigns: list them once per run
        with self._lock:
            if self._campaigns is None:
                self._campaigns = self._reader.sent_campaigns(client)
            return self._campaigns


def _warn_new_fields(table: str, fields: Sequence[str], added: Mapping[str, str]) -> None:
    log.warning("%s: the API sent field(s) ctctsync does not know, not loaded: %s",
                table, ", ".join(fields))


__all__ = [
    "BATCH_ROWS",
    "DEFAULT_HISTORY_START",
    "DEFAULT_LOOKBACK",
    "TableRead",
    "TableStreams",
    "is_incremental",
    "plan_since",
]
