"""The sync engine: ``run_sync`` replicates the selected tables into the warehouse.

See docs/architecture-sync.md for the public API and the replication rules.
"""

from __future__ import annotations

from ctctsync.sync.engine import make_client, run_sync
from ctctsync.sync.results import (
    FailureType,
    Phase,
    ProgressEvent,
    RunStatus,
    SyncResult,
    TableResult,
    TableStatus,
)

__all__ = [
    "FailureType",
    "Phase",
    "ProgressEvent",
    "RunStatus",
    "SyncResult",
    "TableResult",
    "TableStatus",
    "make_client",
    "run_sync",
]
