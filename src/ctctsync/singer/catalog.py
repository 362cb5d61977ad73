"""The Singer catalog, generated from the table registry, and what a given catalog selects.

One stream per table the API version can fill (``tap_stream_id`` = ``stream`` = the table
name). Its JSON Schema has a property per column, typed from the column's warehouse type
(:data:`JSON_TYPES`); a key column is never null. Its metadata (Singer's breadcrumbs):

* stream (``[]``): ``inclusion`` ``available``, ``selected`` and ``selected-by-default``
  true (a discovered catalog used as it is syncs everything), ``table-key-properties``,
  ``forced-replication-method`` and ``replication-method`` (``FULL_TABLE`` for a full table
  or one the registry reads whole, else ``INCREMENTAL``), and for an incremental table with
  a cursor column ``valid-replication-keys`` / ``replication-key``;
* each property (``["properties", name]``): ``inclusion`` ``automatic`` for the key and the
  cursor (never dropped, as in a ``ctctsync.toml`` selection), else ``available``.

A key-based table's bookmark is not the largest cursor value seen but the instant its last
successful read began (``lastRunDate``, docs/architecture-sync.md): rows changed during the
read are read again next time. The cursor column is what a reader of the records can see
move; the STATE holds the instant (:mod:`ctctsync.singer.tap`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ctctsync.tables import ApiVersion, ColumnType, Table, tables_for

Method = Literal["FULL_TABLE", "INCREMENTAL"]

JSON_TYPES: Mapping[ColumnType, Mapping[str, Any]] = {
    "bigint": {"type": ["integer"]},
    "double": {"type": ["number"]},
    "text": {"type": ["string"]},
    "bool": {"type": ["boolean"]},
    "timestamp": {"type": ["string"], "format": "date-time"},
    # nested values (custom fields, addresses, ...) are objects or lists
    "json": {"type": ["object", "array"]},
}
"""The JSON Schema of each warehouse column type (without null; see :func:`column_schema`)."""


class CatalogError(ValueError):
    """A catalog (``--catalog`` / ``--properties``) that cannot be used; says why."""


def method_of(table: Table) -> Method:
    """How the table is replicated, in Singer's words."""
    if table.replication == "full" or table.read_whole:
        return "FULL_TABLE"
    return "INCREMENTAL"


def column_schema(table: Table, name: str) -> dict[str, Any]:
    """The JSON Schema of one column: its type, nullable unless it is a key column."""
    col = table.column(name)
    schema = dict(JSON_TYPES[col.type])
    types = list(schema["type"])
    if name not in table.primary_key:
        types.insert(0, "null")
    schema["type"] = types
    if col.description:
        schema["description"] = col.description
    return schema


def stream_schema(table: Table, columns: Sequence[str] | None = None) -> dict[str, Any]:
    """The JSON Schema of a stream's records (``columns``: the selected ones, default all)."""
    names = columns if columns is not None else table.column_names
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {n: column_schema(table, n) for n in names},
        "required": [n for n in names if n in table.primary_key],
    }


def _stream_metadata(table: Table) -> list[dict[str, Any]]:
    method = method_of(table)
    top: dict[str, Any] = {
        "inclusion": "available",
        "selected": True,
        "selected-by-default": True,
        "table-key-properties": list(table.primary_key),
        "forced-replication-method": method,
        "replication-method": method,
    }
    if method == "INCREMENTAL" and table.cursor_column:
        top["valid-replication-keys"] = [table.cursor_column]
        top["replication-key"] = table.cursor_column
    required = set(table.required_columns)
    entries = [{"breadcrumb": [], "metadata": top}]
    entries.extend(
        {"breadcrumb": ["properties", c.name],
         "metadata": {"inclusion": "automatic" if c.name in required else "available",
                      "selected-by-default": True}}
        for c in table.columns
    )
    return entries


def discover(version: ApiVersion) -> dict[str, Any]:
    """The catalog of every table ``version`` can fill, in the registry's order."""
    streams = []
    for name, table in tables_for(version).items():
        streams.append({
            "tap_stream_id": name,
            "stream": name,
            "schema": stream_schema(table),
            "key_properties": list(table.primary_key),
            "metadata": _stream_metadata(table),
        })
    return {"streams": streams}


@dataclass(frozen=True)
class Selection:
    """One selected stream: its table, the columns to send and how to replicate it."""

    table: Table
    columns: tuple[str, ...]
    method: Method


def _metadata_by_breadcrumb(stream: Mapping[str, Any]) -> dict[tuple[str, ...], dict[str, Any]]:
    out: dict[tuple[str, ...], dict[str, Any]] = {}
    for entry in stream.get("metadata") or []:
        if isinstance(entry, Mapping) and isinstance(entry.get("metadata"), Mapping):
            out[tuple(entry.get("breadcrumb") or ())] = dict(entry["metadata"])
    return out


def _selected(meta: Mapping[str, Any], schema: Mapping[str, Any]) -> bool:
    # Singer: the stream's metadata says; old catalogs said it in the schema
    if "selected" in meta:
        return bool(meta["selected"])
    return bool(schema.get("selected", False))


def select(catalog: Mapping[str, Any], version: ApiVersion) -> list[Selection]:
    """The streams ``catalog`` selects, in the registry's order, with their columns.

    A property is sent unless its metadata says ``selected: false`` (or, in an old-style
    catalog, its schema does); the key and the cursor are always sent. A stream asked to be
    ``FULL_TABLE`` although it could be read incrementally is read whole on every run; one
    asked to be ``INCREMENTAL`` that cannot be is read whole all the same (and says so in the
    log). Raises :class:`CatalogError` for a stream this API version has no table for.
    """
    streams = catalog.get("streams")
    if not isinstance(streams, list):
        raise CatalogError('the catalog has no "streams" list (run --discover to get one)')
    tables = tables_for(version)
    chosen: dict[str, Selection] = {}
    for stream in streams:
        if not isinstance(stream, Mapping):
            raise CatalogError("each entry of the catalog's streams must be an object")
        name = str(stream.get("tap_stream_id") or stream.get("stream") or "")
        meta = _metadata_by_breadcrumb(stream)
        raw_schema = stream.get("schema")
        schema: Mapping[str, Any] = raw_schema if isinstance(raw_schema, Mapping) else {}
        if not _selected(meta.get((), {}), schema):
            continue
        if name not in tables:
            raise CatalogError(
                f"stream {name!r} is not a table of API {version} "
                f"(tables: {', '.join(tables)}); run --discover for this config's catalog")
        table = tables[name]
        required = set(table.required_columns)
        raw_props = schema.get("properties")
        props: Mapping[str, Any] = raw_props if isinstance(raw_props, Mapping) else {}
        columns = []
        for col in table.column_names:
            col_meta = meta.get(("properties", col), {})
            prop = props.get(col, {})
            off = col_meta.get("selected") is False or (
                isinstance(prop, Mapping) and prop.get("selected") is False)
            if col in required or not off:
                columns.append(col)
        asked = meta.get((), {}).get("replication-method")
        method = method_of(table)
        if asked == "FULL_TABLE":
            method = "FULL_TABLE"
        chosen[name] = Selection(table, tuple(columns), method)
    return [chosen[n] for n in tables if n in chosen]
