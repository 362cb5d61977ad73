"""What sets one destination apart, declared as data (as dlt's destination capabilities
are), so callers ask ``capabilities_of(name).needs_credentials`` rather than test
``destination == "duckdb"``.

A destination not listed gets :data:`OTHER`: dlt knows it by name, and it is reached with a
connection string. Adding a destination with different needs is one row here.

This module imports nothing from ctctsync, so the settings models can use it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class DestinationCapabilities:
    """How ctctsync must treat one kind of destination."""

    label: str
    """How messages name it ("" means: by its dlt name)."""
    local_file: bool
    """The warehouse is a file on this machine at ``WarehouseConfig.path`` (its folder is
    created on first use; messages name the file, not a host)."""
    needs_credentials: bool
    """It cannot be reached without ``WarehouseConfig.credentials`` (a connection string)."""
    keep_connection_open: bool
    """The loader holds one connection for the whole run, so that dlt's per-table
    connections do not reopen (and checkpoint) the database each time. The loader's
    keep-alive is a DuckDB connection to ``path``: only a DuckDB file may declare it."""
    catalog_named_after_file: bool
    """The database names its catalog after the file's stem, so a dataset of that name
    makes every table reference ambiguous."""
    column_types: Mapping[str, str] = field(default_factory=dict)
    """The database type each warehouse column type (``tables.ColumnType``) becomes there,
    as dlt's type mapper for the destination creates it (``discover`` shows it; a test
    checks it against dlt). Empty: unknown, shown as the registry's type."""


CAPABILITIES: dict[str, DestinationCapabilities] = {
    "duckdb": DestinationCapabilities(
        label="DuckDB",
        local_file=True,
        needs_credentials=False,
        keep_connection_open=True,
        catalog_named_after_file=True,
        column_types={
            "bigint": "BIGINT",
            "double": "DOUBLE",
            "text": "VARCHAR",
            "bool": "BOOLEAN",
            "timestamp": "TIMESTAMP WITH TIME ZONE",
            "json": "JSON",
        },
    ),
    "postgres": DestinationCapabilities(
        label="PostgreSQL",
        local_file=False,
        needs_credentials=True,
        keep_connection_open=False,
        catalog_named_after_file=False,
        column_types={
            "bigint": "bigint",
            "double": "double precision",
            "text": "varchar",
            "bool": "boolean",
            "timestamp": "timestamptz",  # dlt writes it out: timestamp with time zone
            "json": "jsonb",
        },
    ),
}
"""The destinations ctctsync is tested against, by dlt destination name."""

OTHER = DestinationCapabilities(
    label="",
    local_file=False,
    needs_credentials=True,
    keep_connection_open=False,
    catalog_named_after_file=False,
)
"""Any other dlt destination (bigquery, snowflake, motherduck, ...): passed to dlt by name
with a connection string."""


def capabilities_of(destination: str) -> DestinationCapabilities:
    """The capabilities of the dlt destination named ``destination``."""
    return CAPABILITIES.get(destination, OTHER)
