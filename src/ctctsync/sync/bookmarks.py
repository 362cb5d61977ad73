"""Where a table's read starts, and how it is written: the bookmark rules as one function.

Rules (docs/architecture-sync.md, "Bookmarks"):

* Full tables are read whole and replaced; so are key-based tables the registry marks
  ``read_whole`` (rows that change without their cursor moving, no cheaper filtered read).
* A key-based table with no bookmark (first run, after ``state reset``), asked for a
  ``full_refresh``, or whose selected columns grew since its bookmark, is read from
  ``history_start`` and replaced: rows merged earlier would hold NULL in a new column.
* Otherwise it is read from its bookmark minus the look-back and merged by primary key; the
  overlap re-reads a few rows, and the merge absorbs them.
* The new bookmark is the time the table's read *started* (so it can never pass "now" and
  rows changed during the read are read again next time), and it is written only after the
  table's data is committed.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from ctctsync.state import Bookmark
from ctctsync.sync.results import ReadMode
from ctctsync.tables import Table
from ctctsync.warehouse.loader import Disposition


def is_incremental(table: Table) -> bool:
    """Whether ``table`` is read from a bookmark and merged by key; otherwise it is read whole
    on every run and replaces its previous rows (full tables, and ``read_whole`` ones). Only
    such a table has a bookmark worth holding back when a read misses rows."""
    return table.replication == "incremental" and not table.read_whole


@dataclass(frozen=True)
class ReadPlan:
    """How one table is read and loaded in this run."""

    mode: ReadMode
    disposition: Disposition
    since: datetime | None
    """The ``modified_since``/``created_since`` to send (None: no filter)."""
    reason: str
    """Why (for the process log): "full table", "first run", "full refresh", ..."""


def history_start_at(history_start: date) -> datetime:
    """The configured history start as a UTC instant."""
    return datetime.combine(history_start, time(0), UTC)


def plan_read(
    table: Table,
    *,
    bookmark: Bookmark | None,
    loaded_columns: Collection[str] | None,
    selected_columns: Collection[str],
    full_refresh: bool,
    history_start: date,
    lookback: timedelta,
    now: datetime,
) -> ReadPlan:
    """Decide how ``table`` is read in a run starting at ``now``."""
    if table.replication == "full":
        return ReadPlan("full", "replace", None, "full table")
    start = history_start_at(history_start)
    if table.read_whole:
        return ReadPlan("full", "replace", None, "read whole on every run (docs/tables.md)")
    if full_refresh:
        return ReadPlan("full", "replace", start, "full refresh")
    if bookmark is None:
        return ReadPlan("full", "replace", start, "first run")
    if loaded_columns is not None:
        new = sorted(set(selected_columns) - set(loaded_columns))
        if new:
            return ReadPlan(
                "full", "replace", start, f"new column(s) {', '.join(new)} need a backfill"
            )
    # a bookmark ahead of our clock (another host's clock) must not hide rows: cap it at now
    since = min(bookmark.last_run_date, now) - lookback
    return ReadPlan("incremental", "merge", max(since, start), "bookmark")
