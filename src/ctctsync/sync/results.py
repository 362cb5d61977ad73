"""What a sync reports: progress events while it runs, and a result when it ends."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from ctctsync.errors import FailureType, RunOutcome
from ctctsync.errors.taxonomy import WITH_WARNINGS, status_label

RunStatus = RunOutcome
"""``partial``: the daily API quota ran out (``resume_at`` says when to retry);
``cancelled``: ``should_stop()`` asked to stop. Tables finished before stay committed.
Which failure ends a run how is :data:`ctctsync.errors.FAILURES`."""

TableStatus = Literal["succeeded", "failed", "skipped", "cancelled"]
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
    "TableResult",
    "TableStatus",
    "status_label",
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
