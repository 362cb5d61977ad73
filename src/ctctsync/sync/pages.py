"""A table's pages in a run, the one implementation the engine (:mod:`ctctsync.sync.engine`)
and the read layer (:mod:`ctctsync.sync.stream`) share: which tables the campaign planner
plans, which sent campaigns a per-campaign table walks, the records counted per campaign and
kind for the planner, its short-read check, and mapped pages cut into batches of about
:data:`BATCH_ROWS` rows.

What differs between the two stays with them: the engine prefetches pages on a helper
thread, reports progress, prunes and keeps bookmarks in its state store; the read layer
hands bookmarks and ledgers to its caller.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa

from ctctsync.api.client import ApiClient
from ctctsync.api.readers import VersionReader, can_scan
from ctctsync.api.readnotes import ReadNotes
from ctctsync.config import TrackingPolicy
from ctctsync.sync.campaigns import PLANNED, CampaignRun, TableInputs, TablePlan
from ctctsync.tables import ApiVersion, Table

Page = list[dict[str, Any]]
"""One page's raw records, as a version's reader yields them."""
ShortRead = tuple[str, str, int, int]
"""(campaign id, activity kind, how much its count rose, rows read since its mark)."""

BATCH_ROWS = 10_000
"""Mapped rows per batch at most about this many (a few API pages): dlt's cost per item is
fixed, not per row, so single pages would be slow, and a whole table would not fit."""


class CampaignWalk:
    """The sent campaigns one run's per-campaign tables walk (thread-safe: tables are read on
    prefetch threads). A table the campaign planner plans walks the campaigns its plan reads;
    any other walks the run's one list of the sent campaigns, listed once, on the client of
    the first table that needs it (its calls are counted there).

    Args:
        reader: the API version's readers.
        version: the API version (which of a table's sources is read).
    """

    def __init__(self, reader: VersionReader, version: ApiVersion) -> None:
        self._reader = reader
        self._version = version
        self.planner: CampaignRun | None = None
        """The run's campaign planner, once the run made one (``sync.campaigns``)."""
        self._sent: list[dict[str, Any]] | None = None
        self._lock = threading.Lock()

    def plan_campaigns(
        self,
        tables: Mapping[str, Table],
        inputs: Callable[[str], Callable[[], TableInputs]],
        *,
        policy: TrackingPolicy,
        lookback: timedelta,
        now: Callable[[], datetime],
        recheck_all: bool = False,
    ) -> frozenset[str]:
        """Make the run's campaign planner for those of ``tables`` it plans: the
        per-campaign tables that walk the sent campaigns, when the version can scan them
        (otherwise every campaign is read, since the table's bookmark). ``inputs(name)``
        makes a planned table's ledger and read window when the planner first needs them.
        Returns the tables planned."""
        if not can_scan(self._reader):
            return frozenset()
        names = [n for n, t in tables.items()
                 if n in PLANNED and t.sources[self._version].walks_sent_campaigns]
        if names:
            self.planner = CampaignRun(self._reader, {n: inputs(n) for n in names},
                                       policy=policy, lookback=lookback, now=now,
                                       recheck_all=recheck_all)
        return frozenset(names)

    def sent(self, client: ApiClient) -> list[dict[str, Any]]:
        """The run's one list of the sent campaigns (the planner's, when there is one: it
        lists them with what its ledger knows)."""
        if self.planner is not None:
            return self.planner.sent(client)
        with self._lock:
            if self._sent is None:
                self._sent = self._reader.sent_campaigns(client)
            return self._sent

    def pages(
        self,
        table: Table,
        client: ApiClient,
        since: datetime | None,
        *,
        notes: ReadNotes,
        columns: Sequence[str],
        now: Callable[[], datetime],
        kind_rows: Counter[tuple[str, str]],
        log: logging.Logger,
    ) -> tuple[Iterator[Page], TablePlan | None]:
        """``table``'s pages since ``since`` and, for a planned table, its plan; the records
        of a plan that expects rows are counted into ``kind_rows`` as they pass (for
        :func:`short_reads`)."""
        campaigns: list[dict[str, Any]] | None = None
        plan: TablePlan | None = None
        planner = self.planner
        if table.sources[self._version].walks_sent_campaigns:
            if planner is not None and table.name in planner.tables:
                plan = planner.plan(table.name, client)
                campaigns = plan.campaigns
                log.info("%s: campaigns: %s", table.name, plan.summary_line())
            else:
                campaigns = self.sent(client)
        pages = self._reader.extract(table, client, since, campaigns=campaigns, now=now,
                                     notes=notes, columns=columns)
        if plan is not None and plan.expected:
            pages = counted(pages, kind_rows)
        return pages, plan


def counted(pages: Iterator[Page], rows: Counter[tuple[str, str]]) -> Iterator[Page]:
    """``pages`` as they are, counting their records per (campaign, activity kind)."""
    for records in pages:
        rows.update((str(r.get("campaign_id")), str(r.get("activity_type"))) for r in records)
        yield records


def short_reads(
    plan: TablePlan,
    notes: ReadNotes,
    kind_rows: Counter[tuple[str, str]],
    table: str,
    log: logging.Logger,
) -> tuple[bool, list[ShortRead]]:
    """After a planned table's read: whether it was clean (it noted no loss), and the kinds
    that returned fewer rows than their count rose by (each logged; the ledger then drops
    their mark, so the next run reads them whole). A read that noted a loss checks nothing:
    its counts are short for a reason already reported."""
    clean = not notes.counts()
    short = plan.short_reads(kind_rows) if clean else []
    for cid, kind, rise, read in short:
        log.warning("%s: campaign %s %s: its count rose by %d but %d rows were read since its "
                    "mark; read whole next run", table, cid, kind, rise, read)
    return clean, short


def rebatch(batches: Iterable[pa.Table], rows: int = BATCH_ROWS) -> Iterator[pa.Table]:
    """``batches`` joined into batches of at least ``rows`` rows (the last one may be
    smaller); empty ones are dropped. Whatever the source does after its last batch (the
    engine begins the next table's read) happens before the final, smaller batch."""
    pending: list[pa.Table] = []
    size = 0
    for batch in batches:
        if not batch.num_rows:
            continue
        pending.append(batch)
        size += batch.num_rows
        if size >= rows:
            yield pa.concat_tables(pending, promote_options="default")
            pending, size = [], 0
    if pending:
        yield pa.concat_tables(pending, promote_options="default")


__all__ = [
    "BATCH_ROWS",
    "CampaignWalk",
    "Page",
    "ShortRead",
    "counted",
    "rebatch",
    "short_reads",
]
