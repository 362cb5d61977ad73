"""v3 records -> rows of a table's columns (``Table.for_version("v3")``).

v3 names many fields differently from the v2 tables (``contact_id`` for ``id``,
``updated_at`` for ``modified_date``...) and nests some (``email_address``,
``phone_numbers[]``, ``unique_counts``): each table has a small field map (:data:`FIELD_MAPS`)
saying, per column, the v3 field it is read from or the function that derives it; a column
the map does not name is read from the v3 field of the same name.

What a shaped record keeps, beside its columns: every v3 field the map did not consume and
the source does not ignore (``Source.ignored_fields``). Those are fields ctctsync does not
know, so the ``RowMapper``'s drift detection still reports them as new fields (and loads
them under the ``add`` policy); the consumed v3 names are dropped, so they are never
reported. Sections cited are of ``constant-contact-v3-api.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ctctsync.tables import Source, Table

Raw = Mapping[str, Any]


@dataclass(frozen=True)
class Derived:
    """A column computed from a record: ``fn`` reads the v3 fields named in ``reads``
    (those are consumed: never reported as new fields)."""

    reads: tuple[str, ...]
    fn: Callable[[Raw], Any]

    def __call__(self, raw: Raw) -> Any:
        return self.fn(raw)


FieldMap = Mapping[str, str | Derived]
"""column -> the v3 field it is read from, or how it is derived."""


def _obj(raw: Raw, key: str) -> Mapping[str, Any]:
    value = raw.get(key)
    return value if isinstance(value, Mapping) else {}


def _path(*keys: str) -> Derived:
    """A nested field: ``_path("address", "location_name")``."""

    def get(raw: Raw) -> Any:
        value: Any = raw
        for key in keys:
            if not isinstance(value, Mapping):
                return None
            value = value.get(key)
        return value

    return Derived(keys[:1], get)


def _upper(key: str) -> Derived:
    """A status upper-cased: the campaign list says ``Draft``, the detail ``DRAFT`` (§1.6)."""

    def get(raw: Raw) -> Any:
        value = raw.get(key)
        return value.upper() if isinstance(value, str) else value

    return Derived((key,), get)


def _const(value: Any) -> Derived:
    return Derived((), lambda raw: value)


# --- contacts (§3.1, mapping §4) ---------------------------------------------------------------


def _contact_status(raw: Raw) -> str | None:
    """v3 has no contact status (§4): ``DELETED`` for a deleted contact (§1.7), else the
    address's ``permission_to_send`` upper-cased (``IMPLICIT``, ``UNSUBSCRIBED``...).
    UNCONFIRMED mapping: chosen because permission is what v2's ACTIVE/UNCONFIRMED/OPTOUT
    status expressed, and deletion is the one state v3 keeps elsewhere."""
    if raw.get("deleted_at"):
        return "DELETED"
    permission = _obj(raw, "email_address").get("permission_to_send")
    return permission.upper() if isinstance(permission, str) else None


def _confirmed(raw: Raw) -> bool | None:
    status = _obj(raw, "email_address").get("confirm_status")
    return None if status is None else status == "confirmed"


def _email_addresses(raw: Raw) -> list[Any] | None:
    # one address in v3, a list in v2: kept a list; SMS-only contacts have none (§3.1)
    address = raw.get("email_address")
    return [address] if isinstance(address, Mapping) else None


def _phone(kind: str) -> Derived:
    """The first phone number of ``kind`` (home, work, mobile -- §3.1)."""

    def get(raw: Raw) -> Any:
        phones = raw.get("phone_numbers")
        for phone in phones if isinstance(phones, list) else []:
            if isinstance(phone, Mapping) and phone.get("kind") == kind:
                return phone.get("phone_number")
        return None

    return Derived(("phone_numbers",), get)


def _custom_fields(raw: Raw) -> list[dict[str, Any]] | None:
    # names come from contact_custom_fields (join on custom_field_id) -- §4
    fields = raw.get("custom_fields")
    if not isinstance(fields, list):
        return None
    return [
        {"custom_field_id": f.get("custom_field_id"), "value": f.get("value")}
        for f in fields
        if isinstance(f, Mapping)
    ]


CONTACTS: FieldMap = MappingProxyType(
    {
        "id": "contact_id",
        "status": Derived(("deleted_at", "email_address"), _contact_status),
        "addresses": "street_addresses",
        "confirmed": Derived(("email_address",), _confirmed),
        "lists": "list_memberships",
        "source": "create_source",
        "email_addresses": Derived(("email_address",), _email_addresses),
        "home_phone": _phone("home"),
        "work_phone": _phone("work"),
        "cell_phone": _phone("mobile"),
        "custom_fields": Derived(("custom_fields",), _custom_fields),
        "created_date": "created_at",
        "modified_date": "updated_at",
        "permission_to_send": _path("email_address", "permission_to_send"),
        # the v2 sequence id is known only for contacts switched from v2 (contact_id_xrefs)
        "v2_id": _const(None),
    }
)


# --- the other tables -----------------------------------------------------------------------

EMAIL_CAMPAIGNS: FieldMap = MappingProxyType(
    {
        "id": "campaign_id",
        "status": _upper("current_status"),
        "modified_date": "updated_at",
        "created_date": "created_at",
        "v2_id": _const(None),  # filled by the switch from v2 (docs/switching-to-v3.md)
    }
)


def _logo_url(raw: Raw) -> Any:
    return _obj(raw, "company_logo").get("url")


ACCOUNT_INFO: FieldMap = MappingProxyType(
    {
        "time_zone": "time_zone_id",
        "email": "contact_email",
        "phone": "contact_phone",
        "company_logo": Derived(("company_logo",), _logo_url),
        "organization_addresses": "physical_address",
    }
)


def _list_status(raw: Raw) -> str:
    # deleted lists carry deleted_at (§1.7, §3.2); v2 said ACTIVE/HIDDEN/REMOVED
    return "DELETED" if raw.get("deleted_at") else "ACTIVE"


CONTACT_LISTS: FieldMap = MappingProxyType(
    {
        "id": "list_id",
        "status": Derived(("deleted_at",), _list_status),
        "created_date": "created_at",
        "modified_date": "updated_at",
        "contact_count": "membership_count",
        "v2_id": _const(None),  # filled by the switch from v2 (docs/switching-to-v3.md)
    }
)

CONTACT_TRACKING: FieldMap = MappingProxyType(
    {
        # activity_type, campaign_id and the type's own date column are set by the reader
        "activity_date": "created_time",
        "link_id": "url_id",
        "link_uri": "link_url",
        "unsubscribe_reason": "opt_out_reason",
    }
)
"""The reader adds ``activity_type`` (from ``tracking_activity_type``), ``campaign_id`` and
the type's date column (:func:`tracking_row`)."""


def _count(name: str) -> Derived:
    return _path("unique_counts", name)


EMAIL_CAMPAIGN_SUMMARY: FieldMap = MappingProxyType(
    {
        "start_date": "last_sent_date",
        "sends": _count("sends"),
        "opens": _count("opens"),
        "clicks": _count("clicks"),
        "forwards": _count("forwards"),
        "unsubscribes": _count("optouts"),
        "bounces": _count("bounces"),
        "spam_count": _count("abuse"),  # v2 spam_count ~ abuse (§3.9)
        "not_opened": _count("not_opened"),
        # end_date: when the counts were read, set by the reader
    }
)

EVENTS: FieldMap = MappingProxyType(
    {
        "id": "event_id",
        "location": _path("address", "location_name"),
        "type": "event_type",
        "start_date": "start_time",
        "end_date": "end_time",
        "created_date": "create_time",
        "total_registered_count": _path("event_registration_summary_metrics",
                                        "registration_count"),
        "event_detail_url": "registration_url",
        # time_zone_id and active_date: from the event's detail, set by the reader (§3.11)
    }
)

EVENT_REGISTRATIONS: FieldMap = MappingProxyType(
    {"checked_in_tickets": "checkedIn_tickets"}  # camel case in the contract (§3.11)
)

FIELD_MAPS: Mapping[str, FieldMap] = MappingProxyType(
    {
        "contacts": CONTACTS,
        "email_campaigns": EMAIL_CAMPAIGNS,
        "account_info": ACCOUNT_INFO,
        "contact_lists": CONTACT_LISTS,
        "contact_tracking": CONTACT_TRACKING,
        "email_campaign_summary": EMAIL_CAMPAIGN_SUMMARY,
        "events": EVENTS,
        "event_registrations": EVENT_REGISTRATIONS,
    }
)
"""Each table's renames and derivations; tables absent here read every column from the v3
field of the same name (tags, custom fields, segments, campaign activities)."""

CONSUMED: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        # read by the reader (tracking_row), so known (never reported as new fields)
        "contact_tracking": frozenset({"tracking_activity_type", "created_time"}),
    }
)
"""v3 fields a table's reader reads besides those its field map names."""


class Shaper:
    """Shapes the records of one table (its v3 view) with its field map."""

    def __init__(self, table: Table, source: Source) -> None:
        self.table = table
        fields = FIELD_MAPS.get(table.name, {})
        self._getters: list[tuple[str, str | Derived]] = [
            (c.name, fields.get(c.name, c.name))
            for c in table.columns
            if c.name != "activity_id"  # the synthetic key: sync.rows.prepare_activity
        ]
        read: set[str] = set()
        for _, src in self._getters:
            read.update((src,) if isinstance(src, str) else src.reads)
        self._drop = frozenset(read | CONSUMED.get(table.name, frozenset()) | source.ignored_fields)

    def __call__(self, raw: Raw, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """One row: every column (None where v3 has nothing), ``extra`` values set over
        them, and the v3 fields no column consumed (for drift detection)."""
        row: dict[str, Any] = {
            name: raw.get(src) if isinstance(src, str) else src(raw)
            for name, src in self._getters
        }
        if extra:
            row.update(extra)
        for key, value in raw.items():
            if key not in self._drop and key not in row:
                row[key] = value
        return row


def tracking_row(shaper: Shaper, raw: Raw, campaign_id: str, activity_type: str,
                 date_field: str | None) -> dict[str, Any]:
    """A contact_tracking row: the report row shaped, with the v2 ``activity_type`` of its
    report (or of its ``tracking_activity_type``), the campaign it belongs to, and its
    ``created_time`` in the type's own date column (``open_date``...)."""
    extra: dict[str, Any] = {"activity_type": activity_type, "campaign_id": campaign_id}
    if date_field is not None:
        extra[date_field] = raw.get("created_time")
    return shaper(raw, extra)
