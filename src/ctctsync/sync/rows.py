"""Raw API records -> typed Arrow tables, driven by the table registry.

Every column's warehouse type (``ctctsync.tables.ColumnType``) has one converter; the
registry says which column has which type, so the mapping of a table is data. The few
tables whose rows are not the API's records as they come have a small named ``prepare``
function (:data:`PREPARE`) that adds the derived fields before the generic mapping.

Schema drift is never silent: a record field the registry does not know
(:attr:`ctctsync.tables.Table.known_fields`) is detected here, reported once per table and
run (``on_new_fields``), and, under the integration's ``new_columns="add"`` policy, loaded
as a text column named by the field in snake case (lists and objects as their JSON text).
The check costs one ``frozenset.issuperset`` over each record's keys.

Converters coerce only where nothing is lost (a digit string to a number, a number to text,
a list to its JSON text, a timestamp with an offset to UTC). Anything else raises
:class:`MalformedRecord`, which names the table, the column and the record, so a bad page
fails its table loudly instead of loading wrong values.

The converters say what a value becomes; a page is converted a column at a time by Arrow
(:data:`COLUMN_BUILDERS`) when the column's values are of the usual kinds (every text a
``str``, every id a digit string, every timestamp ISO-8601 with an offset, ...), which gives
the same values without a Python call per value. A column with anything else goes through
the per-value converters, which convert it or name the bad value.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ctctsync.tables import (
    ACTIVITY_DATE_FIELDS,
    LOADED_AT,
    METADATA_COLUMNS,
    RUN_ID,
    Column,
    ColumnType,
    Table,
)
from ctctsync.warehouse.types import ARROW_TYPES

Record = Mapping[str, Any]

NewColumns = Literal["ignore", "add"]
"""What a run does with a field the registry does not know: report it only (``ignore``), or
also load it as a new text column (``add``). Either way it is reported."""

OnNewFields = Callable[[str, Sequence[str], Mapping[str, str]], None]
"""Called once per table and run for each batch of newly seen fields: (table name, the
fields, sorted; the warehouse column each was added as, under the ``add`` policy)."""


class MalformedRecord(ValueError):  # noqa: N818 - named by what it is, like the api's MalformedResponse
    """A record whose field cannot be converted to its column's type without loss."""

    def __init__(self, table: str, column: str, value: Any, reason: str, key: Any = None) -> None:
        self.table = table
        self.column = column
        self.key = key
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        where = f" (record {key})" if key is not None else ""
        super().__init__(
            f"table {table}: field {column!r}{where} has {type(value).__name__} value "
            f"{shown}, {reason}"
        )


class _Unconvertible(Exception):  # noqa: N818 - internal signal, turned into MalformedRecord
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- one converter per warehouse type ---------------------------------------------------------


def _to_bigint(v: Any) -> int | None:
    t = type(v)
    if t is int or v is None:
        return v  # type: ignore[no-any-return]
    if t is str:
        s = v.strip()
        if not s:
            return None  # the API sends "" for missing values (constant-contact-api.md §1.5)
        if s.lstrip("-").isdigit():
            # ids are strings of digits in the API (§1.5); the spec types them NUMERIC
            return int(s)
        raise _Unconvertible("expected a whole number")
    if t is float and v.is_integer():
        return int(v)
    raise _Unconvertible("expected a whole number")


def _to_double(v: Any) -> float | None:
    t = type(v)
    if t is float or v is None:
        return v  # type: ignore[no-any-return]
    if t is int:
        return float(v)
    if t is str:
        s = v.strip()
        if not s:
            return None
        try:
            return float(s)
        except ValueError:
            raise _Unconvertible("expected a number") from None
    raise _Unconvertible("expected a number")


def _to_text(v: Any) -> str | None:
    t = type(v)
    if t is str:
        # v2 sends "" for "no value" (constant-contact-api.md §1.5): stored as NULL, which is
        # also what PostgreSQL's CSV load makes of it, so every destination agrees
        return v or None
    if v is None:
        return None
    if t is dict or t is list:
        # spec STRING columns the API fills with a list/object: kept as JSON text (docs/tables.md)
        return orjson.dumps(v).decode()
    if t is bool:
        return "true" if v else "false"
    if t is int or t is float:
        return str(v)  # ids/phones sent as JSON numbers by older API versions (§1.5)
    raise _Unconvertible("expected text")


_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


def _to_bool(v: Any) -> bool | None:
    t = type(v)
    if t is bool or v is None:
        return v  # type: ignore[no-any-return]
    if t is str:
        s = v.strip().lower()
        if not s:
            return None
        if s in _TRUE:
            return True
        if s in _FALSE:
            return False
    if t is int and v in (0, 1):
        return bool(v)
    raise _Unconvertible("expected true or false")


def _to_timestamp(v: Any) -> datetime | None:
    if v is None:
        return None
    if isinstance(v, datetime):  # already parsed by a prepare function
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)
    if type(v) is str:
        if not v.strip():
            return None  # "" stands for "no date" in v2 (opt_out_date, ...: §1.5)
        try:
            # also every v3 style: "Z", ".000Z", "-04:00", "+0000" and date-only values
            # (constant-contact-v3-api.md §1.6; Python >= 3.11 reads them all); a date is
            # midnight UTC (a deleted contact's deleted_at)
            dt = datetime.fromisoformat(v.strip())
        except ValueError:
            raise _Unconvertible("expected an ISO-8601 timestamp") from None
        # library dates carry a US-Eastern offset (§1.5): everything is stored in UTC
        return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    if type(v) is int:
        # epoch milliseconds: what tracking paging cursors use (§1.3); lossless
        return datetime.fromtimestamp(v / 1000, UTC)
    raise _Unconvertible("expected an ISO-8601 timestamp")


def _to_json(v: Any) -> str | None:
    if v is None or v == "":
        return None
    try:
        return orjson.dumps(v).decode()
    except TypeError:
        raise _Unconvertible("expected JSON data") from None


CONVERTERS: dict[ColumnType, Callable[[Any], Any]] = {
    "bigint": _to_bigint,
    "double": _to_double,
    "text": _to_text,
    "bool": _to_bool,
    "timestamp": _to_timestamp,
    "json": _to_json,
}


def convert_value(column: Column, value: Any, table: str = "?") -> Any:
    """Convert one raw value to ``column``'s warehouse type (raises MalformedRecord)."""
    try:
        return CONVERTERS[column.type](value)
    except _Unconvertible as exc:
        raise MalformedRecord(table, column.name, value, exc.reason) from None


# --- whole columns at once ----------------------------------------------------------------------
#
# Each builder returns the column's Arrow array when every value is of a kind it converts
# exactly as the per-value converter above would, else None (and the caller converts value by
# value, which also names a bad value). Values come from JSON (``orjson``) or a prepare
# function: str, int, float, bool, None, list, dict, datetime -- never bytes, which Arrow's
# string conversion would accept.

_ARROW_REFUSALS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError,
                   OverflowError)
_UTC_MICROS = pa.timestamp("us", tz="UTC")
_DIGITS = r"^-?[0-9]+$"
"""What ``_to_bigint`` reads from a string without stripping (ASCII digits, one sign)."""
_ISO_WITH_OFFSET = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
    r"(Z|[+-]([01][0-9]|2[0-3]):?[0-5][0-9])$"
)
"""The timestamps Arrow parses exactly as ``datetime.fromisoformat`` does (an explicit offset;
at most microseconds); others (date only, no offset, padded) take the per-value path."""
_DIGIT_LINES = re.compile(r"(?:-?[0-9]+\n)*-?[0-9]+")
_ISO_LINES = re.compile(rf"(?:{_ISO_WITH_OFFSET[1:-1]}\n)*{_ISO_WITH_OFFSET[1:-1]}")
"""The same checks over a page's column joined by newlines, in one call (a value holding a
newline passes as two, and Arrow's parse refuses it)."""
_EMPTY = pa.scalar(None, pa.string())


def _infer(values: Sequence[Any]) -> pa.Array | None:
    try:
        return pa.array(values)
    except _ARROW_REFUSALS:
        return None


def _all_match(arr: pa.Array, pattern: str) -> bool:
    """Every non-null value matches ``pattern`` (True for none at all)."""
    return bool(pc.all(pc.match_substring_regex(arr, pattern), min_count=0).as_py())


def _all_none(values: Sequence[Any]) -> bool:
    return values.count(None) == len(values)


def _text_column(values: Sequence[Any]) -> pa.Array | None:
    try:
        arr = pa.array(values, type=pa.string())  # refuses anything but str and None
    except _ARROW_REFUSALS:
        return _nested_text_column(values)
    if "" in values:  # v2's "no value" is NULL, as ``_to_text`` stores it
        return pc.if_else(pc.equal(arr, ""), _EMPTY, arr)
    return arr


def _nested_text_column(values: Sequence[Any]) -> pa.Array | None:
    # a text column the API fills with lists or objects (notes, custom_fields): JSON text
    dumps = orjson.dumps
    out: list[bytes | None] = []
    append = out.append
    for v in values:
        t = type(v)
        if t is list or t is dict:
            append(dumps(v))  # a TypeError is raised again by the per-value path
        elif v is None or (t is str and not v):
            append(None)
        else:
            return None
    return pa.array(out, type=pa.string())


def _json_column(values: Sequence[Any]) -> pa.Array | None:
    dumps = orjson.dumps
    try:
        out = [None if v is None or v == "" else dumps(v) for v in values]
    except TypeError:
        return None  # the per-value path names the value
    return pa.array(out, type=pa.string())


def _bigint_column(values: Sequence[Any]) -> pa.Array | None:
    if _all_none(values):
        return pa.nulls(len(values), pa.int64())
    lines = _lines(values)
    if lines is not None:  # every value a string (the v2 ids)
        text = pa.array(values, type=pa.string())
        return _whole_numbers(text) if _DIGIT_LINES.fullmatch(lines) else None
    arr = _infer(values)
    if arr is not None and pa.types.is_int64(arr.type):
        return arr
    if arr is not None and pa.types.is_string(arr.type) and _all_match(arr, _DIGITS):
        return _whole_numbers(arr)  # strings and None
    return None


def _whole_numbers(digits: pa.Array) -> pa.Array | None:
    try:
        return pc.cast(digits, pa.int64())
    except _ARROW_REFUSALS:  # beyond 64 bits
        return None


def _double_column(values: Sequence[Any]) -> pa.Array | None:
    # Arrow reads a bool among floats as 1.0/0.0, which ``_to_double`` refuses (rare columns:
    # a Python check is cheap here)
    if any(v.__class__ is bool for v in values):
        return None
    arr = _infer(values)
    if arr is None:
        return None
    if pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type) \
            or pa.types.is_null(arr.type):
        try:
            return pc.cast(arr, pa.float64())  # refuses an integer a double cannot hold
        except _ARROW_REFUSALS:
            return None
    return None


def _bool_column(values: Sequence[Any]) -> pa.Array | None:
    arr = _infer(values)
    if arr is not None and (pa.types.is_boolean(arr.type) or pa.types.is_null(arr.type)):
        return arr.cast(pa.bool_())
    return None


def _timestamp_column(values: Sequence[Any]) -> pa.Array | None:
    if _all_none(values):
        return pa.nulls(len(values), _UTC_MICROS)
    lines = _lines(values)
    if lines is not None:  # every value a string
        text = pa.array(values, type=pa.string())
        return _parse_iso(text) if _ISO_LINES.fullmatch(lines) else None
    if any(type(v) is datetime for v in values):
        return _utc_instants(values)
    try:
        text = pa.array(values, type=pa.string())  # strings and None
    except _ARROW_REFUSALS:
        return None
    return _parse_iso(text) if _all_match(text, _ISO_WITH_OFFSET) else None


def _utc_instants(values: Sequence[Any]) -> pa.Array | None:
    # datetimes from a prepare function: Arrow stores aware ones as their UTC instant
    arr = _infer(values)
    if arr is not None and pa.types.is_timestamp(arr.type) and arr.type.tz is not None:
        return arr.cast(_UTC_MICROS)
    return None  # naive ones (read as UTC) or a mix: value by value


def _parse_iso(text: pa.Array) -> pa.Array | None:
    try:
        return pc.cast(text, _UTC_MICROS)
    except _ARROW_REFUSALS:  # a day that does not exist (Feb 30): named per value
        return None


def _lines(values: Sequence[Any]) -> str | None:
    """The values one per line when every one is a string (one C loop), else None."""
    try:
        return "\n".join(values)
    except TypeError:
        return None


ColumnBuilder = Callable[[Sequence[Any]], "pa.Array | None"]

COLUMN_BUILDERS: dict[ColumnType, ColumnBuilder] = {
    "bigint": _bigint_column,
    "double": _double_column,
    "text": _text_column,
    "bool": _bool_column,
    "timestamp": _timestamp_column,
    "json": _json_column,
}
"""Per warehouse type: a page's column at once, or None when a value needs the converter."""


# --- tables whose rows are not the records as they come --------------------------------------


@dataclass(frozen=True)
class MapContext:
    """What a mapping needs besides the record."""

    run_id: str
    loaded_at: datetime
    """When the rows were read (UTC): ``_ctctsync_loaded_at`` and summaries' ``end_date``."""


def _canonical_id(v: Any) -> str:
    # campaign_id is a number in campaign tracking and a string in contact tracking (§1.5):
    # hash the same text for both so an activity keeps its id whichever endpoint sent it
    if type(v) is str:
        return v.strip()
    if v is None:
        return ""
    if type(v) is float and v.is_integer():
        v = int(v)
    return str(v).strip()


def activity_id(
    contact_id: Any, campaign_id: Any, activity_type: Any, activity_date: datetime | None,
    link_id: Any,
) -> str:
    """A stable key for a tracking activity (the API gives none): a hash of contact,
    campaign, type, UTC date and link, identical whatever text form the ids arrive in."""
    date = activity_date.astimezone(UTC).isoformat() if activity_date else ""
    return _activity_hash(contact_id, campaign_id, activity_type, date, link_id)


def _activity_hash(
    contact_id: Any, campaign_id: Any, activity_type: Any, date: str, link_id: Any
) -> str:
    text = "|".join(
        (
            _canonical_id(contact_id),
            _canonical_id(campaign_id),
            str(activity_type or ""),
            date,
            _canonical_id(link_id),
        )
    )
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


@functools.lru_cache(maxsize=4096)
def _activity_instant(raw: str) -> tuple[datetime | None, str]:
    """An activity's date text -> (its UTC instant, the instant's ISO text for the hash).
    Cached: activities of one send share their send date to the second (bounded LRU)."""
    when = _to_timestamp(raw)
    return when, when.isoformat() if when else ""


def _activity_date_field(record: Record) -> str | None:
    name = ACTIVITY_DATE_FIELDS.get(str(record.get("activity_type")))
    if name is not None and record.get(name):
        return name
    # an activity type we do not know: use the one *_date field it carries
    for key, value in record.items():
        if key.endswith("_date") and value:
            return key
    return None


def prepare_activity(record: Record, ctx: MapContext, table: str) -> dict[str, Any]:
    """ContactTracking: one row per activity, its own date column plus ``activity_date``
    and a synthetic ``activity_id``."""
    row = dict(record)
    field = _activity_date_field(record)
    if field is None:
        raise MalformedRecord(
            table, "activity_date", None, "the activity carries no date", record.get("contact_id")
        )
    raw_date = record[field]
    try:
        if type(raw_date) is str:
            when, date = _activity_instant(raw_date)
        else:
            when = _to_timestamp(raw_date)
            date = when.astimezone(UTC).isoformat() if when else ""
    except _Unconvertible as exc:
        raise MalformedRecord(table, field, raw_date, exc.reason) from None
    row["activity_date"] = when
    row[field] = when
    row["activity_id"] = _activity_hash(
        record.get("contact_id"),
        record.get("campaign_id"),
        record.get("activity_type"),
        date,
        record.get("link_id"),
    )
    return row


def prepare_campaign_summary(record: Record, ctx: MapContext, table: str) -> dict[str, Any]:
    """EmailCampaignSummary: the v2 summary has no dates (constant-contact-api.md §9), so
    ``start_date`` is the campaign's ``last_run_date`` and ``end_date`` the read time."""
    row = dict(record)
    if row.get("campaign_id") is None:
        row["campaign_id"] = record.get("id")
    if row.get("start_date") is None:
        row["start_date"] = record.get("last_run_date")
    if not row.get("end_date"):
        row["end_date"] = ctx.loaded_at  # the extractor stamps it when it reads; else now
    return row


Prepare = Callable[[Record, MapContext, str], dict[str, Any]]

PREPARE: dict[str, Prepare] = {
    "contact_tracking": prepare_activity,
    "email_campaign_summary": prepare_campaign_summary,
}
"""The tables whose rows need derived fields; every other table maps records as they are.

Both API versions: the v3 readers hand over rows already shaped to the table's v3 columns
(``ctctsync.api.v3.shape``), with the v2 ``activity_type`` names and each activity's date in
its type's column, so the same functions derive ``activity_id``/``activity_date`` and the
summaries' dates; the table a mapper gets is the version's view (``Table.for_version``)."""


# --- the mapper -------------------------------------------------------------------------------


def arrow_schema(table: Table, columns: Sequence[str]) -> pa.Schema:
    """The Arrow schema of ``table`` restricted to ``columns`` plus the metadata columns."""
    fields = []
    for name in columns:
        col = table.column(name)
        fields.append(
            pa.field(name, ARROW_TYPES[col.type], nullable=name not in table.primary_key)
        )
    fields.append(pa.field(LOADED_AT, pa.timestamp("us", tz="UTC"), nullable=False))
    fields.append(pa.field(RUN_ID, pa.string(), nullable=False))
    return pa.schema(fields)


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NOT_WORD = re.compile(r"[^0-9a-z]+")


def snake_case(field_name: str) -> str:
    """The warehouse column name of a new field: ``optInDefault`` -> ``opt_in_default``
    ("" when nothing usable is left)."""
    lead = "_" if field_name.startswith("_") else ""  # as dlt's naming keeps it
    name = _NOT_WORD.sub("_", _CAMEL.sub("_", field_name).lower()).strip("_")
    if not name:
        return ""
    return f"f_{name}" if name[0].isdigit() else lead + name


class RowMapper:
    """Maps pages of raw records of one table to Arrow tables of its selected columns.

    ``new_columns`` and ``on_new_fields``: see :data:`NewColumns` and :data:`OnNewFields`.
    :attr:`new_fields` holds the fields seen so far that the registry does not know; under
    ``add``, :attr:`added` maps each to its column, from the page it first appeared on
    (earlier pages lack the column: their rows load NULL there).
    """

    def __init__(
        self,
        table: Table,
        columns: Sequence[str],
        *,
        new_columns: NewColumns = "ignore",
        on_new_fields: OnNewFields | None = None,
    ) -> None:
        missing = [k for k in table.primary_key if k not in columns]
        if missing:
            raise ValueError(f"{table.name}: key column(s) {missing} must be selected")
        self.table = table
        self.columns: tuple[Column, ...] = tuple(table.column(c) for c in columns)
        self._column_names = tuple(columns)
        self.schema = arrow_schema(table, columns)
        self._prepare = PREPARE.get(table.name)
        self._key = table.primary_key[0] if len(table.primary_key) == 1 else None
        self._aliased = tuple(c for c in self.columns if c.aliases)
        self._known = set(table.known_fields)
        """The registry's fields, then also the new ones once reported (so each record's
        check stays one ``issuperset`` whatever the drift)."""
        self._policy = new_columns
        self._on_new_fields = on_new_fields
        self.new_fields: set[str] = set()
        self.added: dict[str, str] = {}

    def _note_new_fields(self, records: Sequence[Record]) -> None:
        """Record, report and (under ``add``) add the fields of ``records`` not known yet."""
        fresh: set[str] = set()
        known = self._known
        for rec in records:
            if not known.issuperset(rec):
                fresh.update(k for k in rec if k not in known)
        if not fresh:
            return
        known |= fresh
        self.new_fields |= fresh
        added: dict[str, str] = {}
        if self._policy == "add":
            taken = {*self.table.known_fields, *METADATA_COLUMNS, *self.added.values()}
            for name in sorted(fresh):
                column = snake_case(name)
                # a clash (a registry, metadata or dlt column) is reported, not loaded
                if column and column not in taken and not column.startswith("_dlt"):
                    added[name] = column
                    taken.add(column)
            if added:
                self.added.update(added)
                self.schema = _with_added(self.schema, self.added.values())
        if self._on_new_fields is not None:
            self._on_new_fields(self.table.name, sorted(fresh), added)

    def _unalias(self, records: Sequence[Record]) -> Sequence[Record]:
        # a column some payloads send under another name (tables.Column.aliases)
        out: list[Record] = []
        for rec in records:
            row: Record = rec
            for col in self._aliased:
                if row.get(col.name) is None:
                    alias = next((a for a in col.aliases if row.get(a) is not None), None)
                    if alias is not None:
                        row = {**row, col.name: row[alias]}
            out.append(row)
        return out

    def _record_key(self, record: Any) -> Any:
        if isinstance(record, Mapping) and self._key is not None:
            return record.get(self._key)
        return None

    def to_arrow(self, records: Sequence[Any], ctx: MapContext) -> pa.Table:
        """Convert one page; raises MalformedRecord naming table, field and record."""
        name = self.table.name
        if set(map(type, records)) - {dict}:  # one C loop for the usual page of dicts
            for rec in records:
                if not isinstance(rec, Mapping):
                    raise MalformedRecord(name, "(record)", rec, "expected a JSON object")
        if not all(map(self._known.issuperset, records)):
            self._note_new_fields(records)
        recs: Sequence[Record] = self._unalias(records) if self._aliased else records
        if self._prepare is not None:
            recs = [self._prepare(r, ctx, name) for r in recs]
        arrays: list[pa.Array] = []
        names = self._column_names
        # one pass over the records for every column: a C loop per record (map of dict.get),
        # then one transposition
        columns: Iterable[tuple[Any, ...]] = (
            zip(*(tuple(map(r.get, names)) for r in recs), strict=True)
            if recs else itertools.repeat((), len(names))
        )
        for col, values in zip(self.columns, columns, strict=True):
            arr = COLUMN_BUILDERS[col.type](values)
            if arr is None:
                arr = self._convert_each(col, values, recs)
            if arr.null_count and col.name in self.table.primary_key:
                bad = recs[arr.is_null().to_pylist().index(True)]
                raise MalformedRecord(name, col.name, bad.get(col.name), "the key is missing")
            arrays.append(arr)
        for field_name in self.added:
            # a new field is loaded as text: lists and objects as their JSON text
            arrays.append(pa.array([_to_text(r.get(field_name)) for r in recs], pa.string()))
        n = len(recs)
        arrays.append(pa.repeat(pa.scalar(ctx.loaded_at, _UTC_MICROS), n))
        arrays.append(pa.repeat(pa.scalar(ctx.run_id, pa.string()), n))
        return pa.Table.from_arrays(arrays, schema=self.schema)

    def _convert_each(self, col: Column, values: Sequence[Any], recs: Sequence[Record]
                      ) -> pa.Array:
        """A column value by value, for values the column builder leaves to the converter;
        raises MalformedRecord naming the first value that cannot be converted."""
        conv = CONVERTERS[col.type]
        try:
            converted = [conv(v) for v in values]
        except _Unconvertible:
            # find the offending value again, to name it (the loop above has no index)
            for r, v in zip(recs, values, strict=True):
                try:
                    conv(v)
                except _Unconvertible as exc:
                    raise MalformedRecord(
                        self.table.name, col.name, v, exc.reason, self._record_key(r)
                    ) from None
            raise
        return pa.array(converted, type=ARROW_TYPES[col.type])


def _with_added(schema: pa.Schema, columns: Iterable[str]) -> pa.Schema:
    """``schema`` with the added text columns after the selected ones, before metadata."""
    base = [f for f in schema if f.name not in METADATA_COLUMNS]
    names = {f.name for f in base}
    base += [pa.field(c, pa.string()) for c in columns if c not in names]
    return pa.schema([*base, *(schema.field(m) for m in METADATA_COLUMNS)])


class KeyDeduper:
    """Drops rows whose key was seen among the last ``window`` keys of this load (the first
    copy wins).

    The API can repeat records across pages (constant-contact-api.md §1.3: list membership
    returns limit+1; offset paging shifts when an item is added mid-read), always at a page
    boundary, so a window of a few pages' keys catches them while memory stays bounded
    whatever the table's size (a set of all 1M contact ids would take ~60 MiB). Merge loads
    are also de-duplicated by key in dlt's staging table, over the whole load.
    """

    def __init__(self, key_columns: Sequence[str], window: int = 20_000) -> None:
        self.key_columns = tuple(key_columns)
        self.window = window
        self._seen: set[Any] = set()
        self._order: deque[Any] = deque()

    def __call__(self, batch: pa.Table) -> pa.Table:
        if len(self.key_columns) == 1:
            keys: list[Any] = batch.column(self.key_columns[0]).to_pylist()
        else:
            cols = [batch.column(c).to_pylist() for c in self.key_columns]
            keys = list(zip(*cols, strict=True))
        keep: list[bool] = []
        seen, order = self._seen, self._order
        for k in keys:
            if k in seen:
                keep.append(False)
                continue
            keep.append(True)
            seen.add(k)
            order.append(k)
            if len(order) > self.window:
                seen.discard(order.popleft())
        if all(keep):
            return batch
        return batch.filter(pa.array(keep, type=pa.bool_()))
