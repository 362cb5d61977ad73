"""Delete the rows a re-read did not return: tracking rows (the campaign planner's prune)
and event registrations (the event planner's).

Tracking counts can go down: CC removes an unsubscribe of a deleted contact, reclassifies a
bounce. Merging by key never deletes a row, so when the planner reads a kind of a campaign
whole (its count went down, its periodic whole read, a campaign new to the ledger), the rows
of that (campaign, kind) this run did not load are stale: after the load commits and before
the ledger is saved, they are deleted (a crash in between re-detects the decrease on the
next run, as the ledger still holds the old count).

Event registrations (``ctctsync.sync.events``) are merged by key, only the events that
changed, are live or are due being read: after the load, the rows of the events read again
that this run did not load (a registration CC no longer lists) and the rows of events no
longer listed are deleted, the same way.

SQL through dlt's client of the destination, like :mod:`ctctsync.warehouse.switch`: one text
for DuckDB and PostgreSQL, a DuckDB file taking its turn with loads.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from ctctsync.config import WarehouseConfig
from ctctsync.destinations import capabilities_of
from ctctsync.tables import RUN_ID, warehouse_table_name
from ctctsync.warehouse.destination import scratch_pipeline
from ctctsync.warehouse.filelock import gate_for

_PIPELINE = "ctctsync_prune"


def prune_stale(
    wcfg: WarehouseConfig,
    integration: str,
    table: str,
    stale: Mapping[str, Sequence[str]],
    run_id: str,
    *,
    numeric_ids: bool,
) -> int:
    """Delete the rows of ``table`` of each ``{campaign_id: activity kinds}`` of ``stale``
    whose ``_ctctsync_run_id`` is not ``run_id`` (the run that just re-read those kinds
    whole), in one transaction. ``numeric_ids``: the table's ``campaign_id`` is a number
    (v2). Returns how many rows were deleted."""
    if not stale:
        return 0
    with _gate(wcfg), scratch_pipeline(wcfg, _PIPELINE) as pipeline, \
            pipeline.sql_client() as c, c.begin_transaction():
        q = c.make_qualified_table_name(warehouse_table_name(integration, table))
        run_col = c.escape_column_name(RUN_ID)
        deleted = 0
        for cid, kinds in sorted(stale.items()):
            if not kinds:
                continue
            key: int | str = int(cid) if numeric_ids else cid
            marks = ", ".join(["%s"] * len(kinds))
            where = (f"WHERE campaign_id = %s AND activity_type IN ({marks}) "
                     f"AND {run_col} <> %s")
            args = (key, *kinds, run_id)
            rows = c.execute_sql(f"SELECT COUNT(*) FROM {q} {where}", *args)  # noqa: S608
            n = int(rows[0][0]) if rows else 0
            if n:
                c.execute_sql(f"DELETE FROM {q} {where}", *args)  # noqa: S608
                deleted += n
    return deleted


_CHUNK = 500
"""Event ids per ``DELETE`` (a bounded statement whatever the number of stale events)."""


def prune_events(
    wcfg: WarehouseConfig,
    integration: str,
    table: str,
    kept: Collection[str],
    run_id: str,
) -> int:
    """Delete the rows of ``table`` (keyed by ``event_id``) whose ``_ctctsync_run_id`` is
    not ``run_id`` and whose event is not in ``kept`` (the listed events whose rows this run
    did not read again), in one transaction: the stale rows of the events read again, and
    every row of an event no longer listed. Returns how many rows were deleted."""
    with _gate(wcfg), scratch_pipeline(wcfg, _PIPELINE) as pipeline, \
            pipeline.sql_client() as c, c.begin_transaction():
        q = c.make_qualified_table_name(warehouse_table_name(integration, table))
        run_col = c.escape_column_name(RUN_ID)
        # the events the table holds rows of from earlier runs: few (one per event), so the
        # ones to delete are found here rather than with a NOT IN of every listed event
        older = c.execute_sql(
            f"SELECT DISTINCT event_id FROM {q} WHERE {run_col} <> %s", run_id)  # noqa: S608
        stale = sorted({str(r[0]) for r in older or () if r[0] is not None} - set(kept))
        deleted = 0
        for i in range(0, len(stale), _CHUNK):
            chunk = stale[i:i + _CHUNK]
            marks = ", ".join(["%s"] * len(chunk))
            where = f"WHERE event_id IN ({marks}) AND {run_col} <> %s"
            rows = c.execute_sql(f"SELECT COUNT(*) FROM {q} {where}", *chunk,  # noqa: S608
                                 run_id)
            n = int(rows[0][0]) if rows else 0
            if n:
                c.execute_sql(f"DELETE FROM {q} {where}", *chunk, run_id)  # noqa: S608
                deleted += n
    return deleted


@contextmanager
def _gate(wcfg: WarehouseConfig) -> Iterator[None]:
    """A DuckDB file's turn (loads of other runs on the same file wait for the prune)."""
    if not capabilities_of(wcfg.destination).local_file:
        yield
        return
    with gate_for(Path(wcfg.path)).loading():
        yield
