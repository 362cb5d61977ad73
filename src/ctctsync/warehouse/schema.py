"""What the warehouse says about an integration's tables: each column's type as the
warehouse reports it, and when the column first appeared (issue 12 §7, the schema view).

"First appeared" comes from dlt's own record of schemas, ``_dlt_version``: every load whose
schema differs from those already stored adds a row (the schema as JSON, ``inserted_at``),
so the first row whose table holds a column is when a load created or added that column.
Nothing more is stored for it. When the integration's tables are dropped (delete with
"drop tables"), their rows go too (``admin.drop_integration_tables``), and a table loaded
again starts a new history.

Types come from ``information_schema.columns`` (``BIGINT``, ``TIMESTAMP WITH TIME ZONE``,
``jsonb``...); a warehouse without that view falls back to dlt's type names from the newest
stored schema (``bigint``, ``timestamp``, ``json``...).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dlt.destinations.exceptions import DatabaseTerminalException, DatabaseUndefinedRelation

from ctctsync.config import WarehouseConfig
from ctctsync.destinations import capabilities_of
from ctctsync.warehouse.destination import scratch_pipeline

_PIPELINE = "ctctsync_schema_view"


@dataclass(frozen=True)
class WarehouseColumns:
    """The columns of some warehouse tables, by warehouse table name."""

    types: dict[str, dict[str, str]] = field(default_factory=dict)
    """Warehouse table -> column -> its type, in the table's column order (tables that do
    not exist are absent)."""
    first_seen: dict[str, dict[str, datetime]] = field(default_factory=dict)
    """Warehouse table -> column -> when the first stored schema holding it was written."""
    found: bool = True
    """False when the warehouse has nothing yet (a DuckDB file not created by any run)."""


def _utc(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return _utc(datetime.fromisoformat(value))
    return None


def _schema_tables(raw: Any) -> dict[str, Any]:
    """The ``tables`` of a stored dlt schema ({} if it cannot be read)."""
    if isinstance(raw, (bytes, bytearray, memoryview)):
        raw = bytes(raw).decode("utf-8", "replace")
    if isinstance(raw, dict):
        doc: Any = raw
    else:
        try:
            doc = json.loads(str(raw))
        except ValueError:
            return {}  # not JSON (a compressed schema): no history from this row
    tables = doc.get("tables") if isinstance(doc, dict) else None
    return tables if isinstance(tables, dict) else {}


def column_history(
    rows: Iterable[tuple[Any, Any]], names: Sequence[str]
) -> tuple[dict[str, dict[str, datetime]], dict[str, dict[str, str]]]:
    """From ``_dlt_version`` rows ``(schema, inserted_at)``: per table of ``names``, when each
    column first appeared, and dlt's type of each column in the newest schema holding the
    table. Columns without a type (declared, never loaded) do not count."""
    wanted = set(names)
    first: dict[str, dict[str, datetime]] = {}
    latest: dict[str, tuple[datetime, dict[str, str]]] = {}
    for raw, inserted_at in rows:
        at = _utc(inserted_at)
        if at is None:
            continue
        for table, spec in _schema_tables(raw).items():
            if table not in wanted or not isinstance(spec, dict):
                continue
            columns = spec.get("columns")
            if not isinstance(columns, dict):
                continue
            typed = {
                str(name): str(col["data_type"])
                for name, col in columns.items()
                if isinstance(col, dict) and col.get("data_type")
            }
            seen = first.setdefault(table, {})
            for name in typed:
                if name not in seen or at < seen[name]:
                    seen[name] = at
            if table not in latest or at >= latest[table][0]:
                latest[table] = (at, typed)
    return first, {table: typed for table, (_at, typed) in latest.items()}


def describe_tables(
    wcfg: WarehouseConfig, integration: str, names: Sequence[str]
) -> WarehouseColumns:
    """The columns of the warehouse tables ``names`` of ``integration``: their types and
    when each first appeared. Raises what the warehouse raises when it cannot be read (the
    caller says so on the page); a DuckDB file no run created yet is not created here."""
    if not names:
        return WarehouseColumns()
    if capabilities_of(wcfg.destination).local_file and not Path(wcfg.path).expanduser().exists():
        return WarehouseColumns(found=False)
    with scratch_pipeline(wcfg, _PIPELINE) as pipeline:
        with pipeline.sql_client() as c:
            if not c.has_dataset():
                return WarehouseColumns(found=False)
            version_table = c.make_qualified_table_name("_dlt_version")
            try:
                # the schema name is the loader's pipeline name (``Loader.pipeline_name``)
                rows = c.execute_sql(
                    f"SELECT schema, inserted_at FROM {version_table} "  # noqa: S608
                    "WHERE schema_name = %s ORDER BY inserted_at",
                    f"ctctsync_{integration}",
                )
            except DatabaseUndefinedRelation:  # no load yet: dlt creates it with the first
                rows = []
        first, dlt_types = column_history([(r[0], r[1]) for r in rows or ()], names)
        types: dict[str, dict[str, str]] = {}
        with pipeline.sql_client() as c:
            # one placeholder per name: the names are values, never spliced into the SQL
            marks = ", ".join(["%s"] * len(names))
            query = (
                "SELECT table_name, column_name, data_type FROM information_schema.columns "  # noqa: S608
                f"WHERE table_schema = %s AND table_name IN ({marks}) "
                "ORDER BY table_name, ordinal_position"
            )
            try:
                found = c.execute_sql(query, c.dataset_name, *names)
            except (DatabaseUndefinedRelation, DatabaseTerminalException):
                # a warehouse without information_schema: dlt's names
                found = None
        if found is None:
            types = {t: dict(cols) for t, cols in dlt_types.items()}
        else:
            for table, column, data_type in found:
                types.setdefault(str(table), {})[str(column)] = str(data_type)
    return WarehouseColumns(types=types, first_seen=first)
