"""Compare a loaded warehouse table with the sandbox's truth, after the documented type
mapping (docs/tables.md), written here independently of ``ctctsync.sync.rows``."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

from ctctsync.config import WarehouseConfig
from ctctsync.sandbox import Sandbox
from ctctsync.sync.rows import ACTIVITY_DATE_FIELDS, activity_id
from ctctsync.tables import Column, tables_for
from ctctsync.warehouse import read_table

V2_TABLES = tables_for("v2")
"""The tables of the v2 path (a config without api_version reads v2)."""


def _ts(v: Any) -> datetime | None:
    if v in (None, ""):
        return None
    dt = datetime.fromisoformat(v)
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _expected_value(col: Column, v: Any) -> Any:
    if col.type == "timestamp":
        return _ts(v) if not isinstance(v, datetime) else v
    if col.type == "bigint":
        return None if v in (None, "") else int(v)
    if col.type == "json":
        return None if v in (None, "") else v
    if col.type == "text":
        if isinstance(v, list | dict):
            return v  # compared with the loaded JSON text, parsed
        return None if v in (None, "") else str(v)  # "" means "no value" in v2
    return v


def _loaded_value(col: Column, v: Any) -> Any:
    if col.type == "json" and isinstance(v, str):
        return orjson.loads(v)
    if col.type == "text" and isinstance(v, str) and v[:1] in ("[", "{"):
        try:
            return orjson.loads(v)
        except orjson.JSONDecodeError:
            return v
    return v


def _derive(table: str, rec: dict[str, Any]) -> dict[str, Any]:
    rec = dict(rec)
    if table == "contact_tracking":
        field = ACTIVITY_DATE_FIELDS[rec["activity_type"]]
        when = _ts(rec[field])
        rec["activity_date"] = when
        rec["activity_id"] = activity_id(rec["contact_id"], rec["campaign_id"],
                                         rec["activity_type"], when, rec.get("link_id"))
    if table == "email_campaign_summary":
        rec["start_date"] = rec.get("last_run_date")
    return rec


def expected_rows(sb: Sandbox, table: str, columns: tuple[str, ...]) -> dict[Any, dict[str, Any]]:
    """The sandbox's truth of ``table`` as warehouse rows, by primary key."""
    spec = V2_TABLES[table]
    out: dict[Any, dict[str, Any]] = {}
    for raw in sb.truth(table):
        rec = _derive(table, raw)
        row = {c: _expected_value(spec.column(c), rec.get(c)) for c in columns}
        out[tuple(row[k] for k in spec.primary_key)] = row
    return out


def records_by_key(table: str, records: Iterable[dict[str, Any]],
                   columns: tuple[str, ...]) -> dict[Any, dict[str, Any]]:
    """Loaded ``records`` (only ``columns``), by primary key; a key loaded twice fails."""
    spec = V2_TABLES[table]
    out: dict[Any, dict[str, Any]] = {}
    for rec in records:
        row = {c: _loaded_value(spec.column(c), rec.get(c)) for c in columns}
        key = tuple(row[k] for k in spec.primary_key)
        assert key not in out, f"{table}: key {key} loaded twice"
        out[key] = row
    return out


def loaded_rows(wcfg: WarehouseConfig, integration: str, table: str,
                columns: tuple[str, ...]) -> dict[Any, dict[str, Any]]:
    """The warehouse table's rows (only ``columns``), by primary key."""
    return records_by_key(table, read_table(wcfg, integration, table).to_pylist(), columns)


def assert_records_match_truth(sb: Sandbox, table: str, records: Iterable[dict[str, Any]], *,
                               columns: tuple[str, ...] | None = None,
                               ignore: tuple[str, ...] = ()) -> int:
    """Assert loaded ``records`` (rows read back from any warehouse, e.g. a user's own dlt
    pipeline) equal the truth (keys and values); returns the row count."""
    spec = V2_TABLES[table]
    cols = tuple(c for c in (columns or spec.column_names) if c not in ignore)
    want = expected_rows(sb, table, cols)
    got = records_by_key(table, records, cols)
    missing = sorted(set(want) - set(got), key=str)[:5]
    extra = sorted(set(got) - set(want), key=str)[:5]
    assert not missing and not extra, f"{table}: missing keys {missing}, unexpected keys {extra}"
    for key, row in want.items():
        if got[key] != row:
            diff = {c: (row[c], got[key][c]) for c in cols if row[c] != got[key][c]}
            raise AssertionError(f"{table} {key}: (truth, loaded) differ: {diff}")
    return len(want)


def assert_matches_truth(sb: Sandbox, wcfg: WarehouseConfig, table: str, *,
                         integration: str = "cc", columns: tuple[str, ...] | None = None,
                         ignore: tuple[str, ...] = ()) -> int:
    """Assert the loaded table equals the truth (keys and values); returns the row count."""
    return assert_records_match_truth(sb, table, read_table(wcfg, integration, table).to_pylist(),
                                      columns=columns, ignore=ignore)
