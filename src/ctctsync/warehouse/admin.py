"""Maintenance calls on an integration's warehouse tables: connection test, row counts,
reading a table back, dropping an integration's tables."""

from __future__ import annotations

import contextlib
from pathlib import Path

import orjson
import pyarrow as pa
from dlt.destinations.exceptions import DatabaseTerminalException, DatabaseUndefinedRelation

from ctctsync.config import WarehouseConfig
from ctctsync.destinations import capabilities_of
from ctctsync.tables import TABLES, ApiVersion, warehouse_table_name
from ctctsync.warehouse.destination import scratch_pipeline
from ctctsync.warehouse.preflight import check_warehouse, connect
from ctctsync.warehouse.preflight import describe as _describe  # noqa: F401 -- its old home
from ctctsync.warehouse.switch import MAP_TABLE
from ctctsync.warehouse.types import ARROW_TYPES

_ADMIN_PIPELINE = "ctctsync_admin"
_DLT_RECORDS = (("_dlt_version", "schema_name"), ("_dlt_pipeline_state", "pipeline_name"))
"""dlt's own tables that remember an integration's schema and pipeline."""


def test_connection(wcfg: WarehouseConfig) -> str:
    """Check that a run can load into ``wcfg`` (the preflight, :func:`check_warehouse`:
    connect and, where the destination allows it, try creating tables), and open a DuckDB
    file that exists (the preflight does not). Returns a one-line description of the
    warehouse (no secrets); raises :class:`WarehouseError` with a message that says what
    failed."""
    described = check_warehouse(wcfg)
    if capabilities_of(wcfg.destination).local_file and Path(wcfg.path).expanduser().exists():
        return connect(wcfg)
    return described


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def _warehouse_names(integration: str) -> list[str]:
    # every table either API version loads: an integration switched from v2 to v3 keeps its
    # v2-only tables (MyLibrary, trash) as they were last loaded
    # and the switch's map of v2 ids to v3 UUIDs (ids only), which goes with them
    return [warehouse_table_name(integration, name) for name in (*TABLES, MAP_TABLE)]


def warehouse_tables(wcfg: WarehouseConfig, integration: str) -> dict[str, int]:
    """Row counts of the integration's tables that exist in the warehouse, by table name."""
    counts: dict[str, int] = {}
    with scratch_pipeline(wcfg, _ADMIN_PIPELINE) as pipeline:
        for name in _warehouse_names(integration):
            # one client per table: after a failed statement PostgreSQL refuses the rest of
            # the transaction
            with pipeline.sql_client() as c:
                qualified = c.make_qualified_table_name(name)
                try:
                    rows = c.execute_sql(f"SELECT COUNT(*) FROM {qualified}")  # noqa: S608
                except DatabaseUndefinedRelation:
                    continue
            counts[name] = int(rows[0][0]) if rows else 0
    return counts


def read_table(
    wcfg: WarehouseConfig,
    integration: str,
    table: str,
    *,
    limit: int | None = None,
    api_version: ApiVersion = "v2",
) -> pa.Table:
    """A loaded table back as Arrow, ordered by its key (tests, previews).

    Registry columns get their registry types (JSON columns as JSON text, whatever the
    destination's driver returns for them); other columns keep the driver's values.
    Raises KeyError if the table was never loaded.
    """
    spec = TABLES[table].for_version(api_version)  # v3 ids are text, v2's numbers
    name = warehouse_table_name(integration, table)
    with scratch_pipeline(wcfg, _ADMIN_PIPELINE) as pipeline, pipeline.sql_client() as c:
        qualified = c.make_qualified_table_name(name)
        order = ", ".join(c.escape_column_name(k) for k in spec.primary_key)
        tail = f" LIMIT {int(limit)}" if limit is not None else ""
        try:
            # identifiers come from the registry and are quoted by dlt: no user text in SQL
            with c.execute_query(f"SELECT * FROM {qualified} ORDER BY {order}{tail}") as cur:  # noqa: S608
                names = [d[0] for d in cur.description]
                rows = cur.fetchall()
        except DatabaseUndefinedRelation:
            raise KeyError(f"table {name} does not exist in the warehouse") from None
    known = {col.name: col for col in spec.columns}
    arrays: dict[str, pa.Array] = {}
    for i, col_name in enumerate(names):
        values = [row[i] for row in rows]
        col = known.get(col_name)
        if col is None:
            arrays[col_name] = pa.array(values)
            continue
        if col.type == "json":
            # DuckDB returns JSON text, psycopg returns parsed objects
            values = [
                v if v is None or isinstance(v, str) else orjson.dumps(v).decode()
                for v in values
            ]
        arrays[col_name] = pa.array(values, type=ARROW_TYPES[col.type])
    return pa.table(arrays)


def drop_integration_tables(wcfg: WarehouseConfig, integration: str) -> list[str]:
    """Drop the integration's tables (and their staging copies and dlt's record of their
    schema). Returns the names of the tables that existed. The caller resets the
    integration's bookmarks (``StateStore.reset``) so the next run reloads everything."""
    dropped: list[str] = []
    with scratch_pipeline(wcfg, _ADMIN_PIPELINE) as pipeline:
        for name in _warehouse_names(integration):
            with pipeline.sql_client() as c:
                qualified = c.make_qualified_table_name(name)
                try:
                    c.execute_sql(f"SELECT 1 FROM {qualified} WHERE 1=0")  # noqa: S608
                except DatabaseUndefinedRelation:
                    continue
                c.execute_sql(f"DROP TABLE {qualified}")
                dropped.append(name)
            # the staging dataset may not exist at all
            with (
                pipeline.sql_client() as c,
                c.with_staging_dataset(),
                contextlib.suppress(DatabaseUndefinedRelation, DatabaseTerminalException),
            ):
                c.execute_sql(f"DROP TABLE IF EXISTS {c.make_qualified_table_name(name)}")
        # dlt skips creating tables whose schema version it already stored (in the dataset
        # and in its staging dataset): forget it there too
        for staging in (False, True):
            for table, column in _DLT_RECORDS:
                with pipeline.sql_client() as c, contextlib.suppress(DatabaseUndefinedRelation):
                    ctx = c.with_staging_dataset() if staging else contextlib.nullcontext()
                    with ctx:
                        qualified = c.make_qualified_table_name(table)
                        c.execute_sql(
                            f"DELETE FROM {qualified} WHERE {column} = %s",  # noqa: S608
                            f"ctctsync_{integration}",
                        )
    return dropped
