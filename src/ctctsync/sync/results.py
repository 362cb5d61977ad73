"""What a sync reports: progress events while it runs, and a result when it ends."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

from ctctsync.errors import FailureType, RunOutcome
from ctctsync.errors.taxonomy import WITH_WARNINGS, status_label

RunStatus = RunOutcome
"""``partial``: the daily API quota ran out (``resume_at`` says when to retry);
``cancelled``: ``should_stop()`` asked to stop. Tables finished before stay committed.
Which failure ends a run how is :data:`ctctsync.errors.FAILURES`."""

TableStatus = Literal["succeeded", "failed", "skipped", "cancelled", "stopped"]
"""``stopped``: the daily API quota ran out during the table; nothing of it was committed and
the next run reads it (not a failure). ``skipped``: the run ended before the table's turn."""
Phase = Literal["start", "page", "loaded", "done", "failed"]
ReadMode = Literal["full", "incremental"]

__all__ = [
    "WITH_WARNINGS",
    "FailureType",
    "Phase",
    "ProgressEvent",
    "ReadMode",
    "RunStatus",
    "SyncResult",
    "TableDone",
    "TableResult",
    "TableStatus",
    "parse_table_done",
    "status_label",
    "table_done_line",
]



@dataclass(frozen=True)
class ProgressEvent:
    """One step of one table.

    ``start``: the table begins; ``page``: a page was extracted and mapped; ``loaded``: the
    table's data is committed in the warehouse; ``done``: its bookmark is saved; ``failed``:
    the table failed (``error`` holds the user message). ``rows`` and ``api_calls`` are the
    table's cumulative counts in this run.
    """

    run_id: str
    table: str
    phase: Phase
    rows: int
    api_calls: int
    error: str | None = None


@dataclass
class TableResult:
    """How one table's sync went."""

    rows: int = 0
    """Rows extracted and loaded (after de-duplication by key)."""
    api_calls: int = 0
    status: TableStatus = "skipped"
    error: str | None = None
    """A message for the user (no secrets); the process log keeps the detail."""
    mode: ReadMode = "full"
    """``full`` for full tables and for key-based tables read from ``history_start``."""
    since: datetime | None = None
    """The ``modified_since``/``created_since`` sent (UTC); None for full reads."""
    warnings: list[str] = field(default_factory=list)
    """What the read could not load without failing the table, one line per kind (e.g.
    ``2 campaigns deleted during the run: 11, 12``); see ``ctctsync.api.v2.extract.LOSSES``."""
    seconds: float | None = None
    """Wall time of the table's own turn (its load, and whatever of its read was left when
    the tables before it were done); None when it never got a turn."""
    retries: int = 0
    """Calls retried or throttled (each one spent an extra call of the quota)."""
    bookmark_held: bool = False
    """True when a later read can load what this one missed, so the table's bookmark did
    not move (the next run reads the same window again)."""


@dataclass
class SyncResult:
    """How a whole run went (the control plane stores this in its ``runs`` table)."""

    run_id: str
    started_at: datetime
    finished_at: datetime
    status: RunStatus
    tables: dict[str, TableResult] = field(default_factory=dict)
    api_calls: int = 0
    error: str | None = None
    failure_type: FailureType | None = None
    resume_at: datetime | None = None

    @property
    def rows(self) -> int:
        """Rows loaded over all tables."""
        return sum(t.rows for t in self.tables.values())

    @property
    def warnings(self) -> list[str]:
        """Every table's warnings, each as ``<table>: <warning>``, in table order."""
        return [f"{name}: {w}" for name, t in self.tables.items() for w in t.warnings]

    @property
    def label(self) -> str:
        """The status as shown: ``succeeded with warnings`` when there are any."""
        return status_label(self.status, self.warnings)


@dataclass(frozen=True)
class TableDone:
    """The run log's line for a table that finished: what the job page's per-table columns
    read back (runs store rows and calls per table, not seconds or retries)."""

    table: str
    rows: int
    pages: int
    api_calls: int
    seconds: float
    retries: int


_TABLE_DONE: Final = re.compile(
    r"^(?P<table>[a-z][a-z0-9_]*): (?P<rows>\d+) rows in (?P<pages>\d+) pages, "
    r"(?P<calls>\d+) API calls, (?P<seconds>\d+(?:\.\d+)?) s, (?P<retries>\d+) retried$"
)


def table_done_line(done: TableDone) -> str:
    """``contacts: 260 rows in 1 pages, 1 API calls, 0.3 s, 0 retried``: the engine logs this
    when a table finishes; :func:`parse_table_done` reads it back. ``seconds`` is the table's
    own turn, ``retried`` the calls retried or throttled (each an extra call)."""
    return (f"{done.table}: {done.rows} rows in {done.pages} pages, {done.api_calls} API "
            f"calls, {done.seconds:.1f} s, {done.retries} retried")


def parse_table_done(message: str) -> TableDone | None:
    """The :class:`TableDone` a log line states, or None for any other line."""
    m = _TABLE_DONE.match(message)
    if m is None:
        return None
    return TableDone(m["table"], int(m["rows"]), int(m["pages"]), int(m["calls"]),
                     float(m["seconds"]), int(m["retries"]))
