"""The schema view of an integration (issue 12 §7): per table, each column with its warehouse
type, whether the integration selects it, and when it first appeared in the warehouse; and
the fields Constant Contact started sending that the registry does not know, flagged.

Three sources meet here:

- the table registry (``ctctsync.tables``), as the integration's API version fills it: the
  columns ctctsync knows and their declared types;
- the warehouse (``ctctsync.warehouse.schema``): the columns that exist, their types as the
  warehouse reports them, and when each first appeared (dlt's ``_dlt_version``);
- the state store's ``discovered_fields`` (``ctctsync.sync.drift``): fields runs met that no
  registry column holds, first and last seen. Under the ``add`` policy a run loads one as a
  text column named by the field in snake case; under ``ignore`` it is only reported.

A column in the warehouse that neither the registry nor a new field explains (one deselected
since, or left by another version of the registry) is still listed, as "not selected".
Reading the warehouse can fail (unreachable, busy): the view then says why and shows what the
registry and the state store know.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy.orm import Session

from ctctsync.control.models import Integration
from ctctsync.control.services.integrations import new_fields
from ctctsync.control.services.warehouse import warehouse_config
from ctctsync.errors import redact
from ctctsync.state import DiscoveredField
from ctctsync.sync.rows import snake_case
from ctctsync.tables import METADATA_COLUMNS, ColumnType, Table, tables_for, warehouse_table_name
from ctctsync.warehouse.schema import WarehouseColumns, describe_tables

ColumnKind = Literal["registry", "new_field", "metadata", "other"]
"""Where a column comes from: the registry, a new field loaded under the ``add`` policy,
ctctsync's own bookkeeping (``_ctctsync_loaded_at``, ``_ctctsync_run_id``), or neither."""


@dataclass(frozen=True)
class SchemaColumn:
    """One column of an integration's table."""

    name: str
    kind: ColumnKind
    declared_type: ColumnType | None
    """The registry's type (None for columns the registry does not declare)."""
    warehouse_type: str | None
    """As the warehouse reports it; None while the column is not in the warehouse."""
    selected: bool
    """Whether runs load it now (keys and the change cursor always; new fields under ``add``)."""
    required: bool
    """A key or the change cursor: never deselected."""
    first_appeared: datetime | None
    """When a load first created it in the warehouse (None: not there, or unknown)."""
    description: str = ""
    new_field: DiscoveredField | None = None
    """For a column loaded from a new field: the field as runs met it."""


@dataclass(frozen=True)
class NewField:
    """A field Constant Contact sends that no registry column holds."""

    field: DiscoveredField
    column: str | None
    """The warehouse column it is loaded into (``add`` policy, once a run added it), or None."""


@dataclass(frozen=True)
class SchemaTable:
    """One table of the integration and its columns."""

    table: Table
    warehouse_name: str
    selected: bool
    """Whether the integration loads this table now."""
    in_warehouse: bool
    columns: list[SchemaColumn]
    new_fields: list[NewField] = field(default_factory=list)

    @property
    def selected_count(self) -> int:
        """Columns loaded now (bookkeeping columns not counted)."""
        return sum(1 for c in self.columns if c.selected and c.kind != "metadata")


@dataclass(frozen=True)
class SchemaView:
    """Every table of an integration, as the schema page shows it."""

    tables: list[SchemaTable]
    warehouse_problem: str | None = None
    """Why the warehouse's side is missing (types, first appeared), or None."""
    warehouse_found: bool = True
    """False while no run created the warehouse yet."""

    @property
    def new_field_count(self) -> int:
        """How many new fields are flagged across the tables."""
        return sum(len(t.new_fields) for t in self.tables)


def _table_view(
    table: Table,
    integration: str,
    new_columns: str,
    selection: dict[str, list[str] | None],
    wh: WarehouseColumns,
    discovered: list[DiscoveredField],
) -> SchemaTable:
    name = warehouse_table_name(integration, table.name)
    chosen = table.name in selection
    picked = selection.get(table.name)
    types = wh.types.get(name, {})
    first = wh.first_seen.get(name, {})
    required = set(table.required_columns)
    columns: list[SchemaColumn] = []
    for col in table.columns:
        columns.append(
            SchemaColumn(
                name=col.name,
                kind="registry",
                declared_type=col.type,
                warehouse_type=types.get(col.name),
                selected=chosen and (picked is None or col.name in picked or col.name in required),
                required=col.name in required,
                first_appeared=first.get(col.name),
                description=col.description,
            )
        )
    known = {c.name for c in columns}
    loaded_new: list[NewField] = []
    by_column = {snake_case(f.field): f for f in discovered}
    for f in discovered:
        column = snake_case(f.field)
        loaded_new.append(NewField(f, column if column in types else None))
    for column, wh_type in types.items():
        if column in known:
            continue
        if column in METADATA_COLUMNS:
            kind: ColumnKind = "metadata"
        elif column in by_column:
            kind = "new_field"
        else:
            kind = "other"
        columns.append(
            SchemaColumn(
                name=column,
                kind=kind,
                declared_type=None,
                warehouse_type=wh_type,
                # a new field keeps being loaded while the policy is ``add``
                selected=chosen
                and (kind == "metadata" or (kind == "new_field" and new_columns == "add")),
                required=kind == "metadata",
                first_appeared=first.get(column),
                new_field=by_column.get(column) if kind == "new_field" else None,
            )
        )
    return SchemaTable(
        table=table,
        warehouse_name=name,
        selected=chosen,
        in_warehouse=bool(types),
        columns=columns,
        new_fields=loaded_new,
    )


def schema_view(db: Session, integ: Integration) -> SchemaView:
    """The integration's tables (the selected ones, and others the warehouse still holds)
    with their columns and new fields."""
    registry = tables_for("v3" if integ.api_version == "v3" else "v2")
    selection: dict[str, list[str] | None] = dict(integ.tables or {})
    integration, new_columns = integ.name, integ.new_columns
    discovered = new_fields(db, integ)
    wcfg = warehouse_config(db)
    # Hold no store lock while the warehouse answers (SQLite: a service session's
    # transaction holds the write lock). The rollback expires ``integ``, so nothing below
    # may read it: reloading an attribute would begin a new transaction at once.
    db.rollback()
    names = [warehouse_table_name(integration, t) for t in registry]
    problem: str | None = None
    try:
        wh = describe_tables(wcfg, integration, names)
    except Exception as exc:  # any driver's error: the page still shows the registry's side
        credentials = [wcfg.credentials] if wcfg.credentials is not None else []
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        problem = redact(first_line, credentials)[:300]
        wh = WarehouseColumns(found=True)
    tables = [
        _table_view(table, integration, new_columns, selection, wh, discovered.get(name, []))
        for name, table in registry.items()
        if name in selection or warehouse_table_name(integration, name) in wh.types
        or discovered.get(name)
    ]  # fmt: skip
    # the chosen tables first, in registry order; then the ones only the warehouse keeps
    tables.sort(key=lambda t: not t.selected)
    return SchemaView(tables=tables, warehouse_problem=problem, warehouse_found=wh.found)
