"""The v3 truth: what a v3 sync's warehouse must hold, read from the sandbox's /v3 answers
over HTTP by a walker of its own and mapped to each table's v3 columns by the field maps of
docs/tables.md, written here independently of ``ctctsync.api.v3`` (shape.py, extract.py).

Reading the truth costs sandbox requests: call it after the run's counters are checked, with
no fault rule left (``sb.faults.clear()``) and no limit that could refuse it. Sections cited
are of constant-contact-v3-api.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from ctctsync.config import WarehouseConfig
from ctctsync.sandbox import Sandbox
from ctctsync.sync.rows import activity_id
from ctctsync.tables import Column, Table, tables_for
from ctctsync.warehouse import read_table

V3_TABLES = tables_for("v3")
"""The tables a v3 config fills (the default selection of a v3 integration)."""

Raw = dict[str, Any]

TRACKING = {"sends": "EMAIL_SEND", "opens": "EMAIL_OPEN", "clicks": "EMAIL_CLICK",
            "forwards": "EMAIL_FORWARD", "bounces": "EMAIL_BOUNCE",
            "optouts": "EMAIL_UNSUBSCRIBE"}
"""The six activity reports (§3.8) and the v2 ``activity_type`` their rows keep."""
DATE_COLUMN = {"EMAIL_SEND": "send_date", "EMAIL_OPEN": "open_date",
               "EMAIL_CLICK": "click_date", "EMAIL_FORWARD": "forward_date",
               "EMAIL_BOUNCE": "bounce_date", "EMAIL_UNSUBSCRIBE": "unsubscribe_date"}


class V3Walker:
    """Reads /v3 collections to the end, following ``_links.next`` or ``next_cursor``."""

    def __init__(self, sb: Sandbox) -> None:
        token = sb.v3_tokens.issue_access_token()  # a fresh one: the clock may have moved
        self.http = httpx.Client(base_url=sb.base_url, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"})

    def close(self) -> None:
        self.http.close()

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        r = self.http.get(path, params=params)
        r.raise_for_status()
        return r.json()

    def links(self, path: str, key: str, params: dict[str, Any] | None = None) -> Iterator[Raw]:
        """A ``_links.next`` collection (§1.3): the href is path-relative, filters included."""
        body = self.get(path, params)
        while True:
            yield from body.get(key) or []
            nxt = ((body.get("_links") or {}).get("next") or {}).get("href")
            if not nxt:
                return
            body = self.get(nxt)

    def cursor(self, path: str, key: str) -> Iterator[Raw]:
        """A ``next_cursor`` collection (events, registrations: §1.3, §3.11)."""
        body = self.get(path, {"limit": 100})
        seen: set[str] = set()
        while True:
            records = body.get(key) or []
            yield from records
            cur = body.get("next_cursor")
            if not cur or not records or cur in seen:
                return
            seen.add(cur)
            body = self.get(path, {"next": cur, "limit": 100})


def _ts(v: Any) -> datetime | None:
    if not isinstance(v, str) or not v.strip():
        return v if isinstance(v, datetime) else None
    dt = datetime.fromisoformat(v.strip())
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _phone(raw: Raw, kind: str) -> Any:
    return next((p.get("phone_number") for p in raw.get("phone_numbers") or []
                 if p.get("kind") == kind), None)


def _contact(raw: Raw) -> Raw:
    email = raw.get("email_address") or {}
    permission = email.get("permission_to_send")
    # v3 has no contact status: DELETED when deleted_at is set, else the permission (§4)
    status = "DELETED" if raw.get("deleted_at") else (
        permission.upper() if isinstance(permission, str) else None)
    confirm = email.get("confirm_status")
    customs = raw.get("custom_fields")
    return {
        **raw,
        "id": raw["contact_id"], "status": status, "addresses": raw.get("street_addresses"),
        "confirmed": None if confirm is None else confirm == "confirmed",
        "lists": raw.get("list_memberships"), "source": raw.get("create_source"),
        "email_addresses": [email] if raw.get("email_address") else None,
        "home_phone": _phone(raw, "home"), "work_phone": _phone(raw, "work"),
        "cell_phone": _phone(raw, "mobile"),
        "custom_fields": None if customs is None else [
            {"custom_field_id": f.get("custom_field_id"), "value": f.get("value")}
            for f in customs],
        "created_date": raw.get("created_at"), "modified_date": raw.get("updated_at"),
        "permission_to_send": permission, "v2_id": None,
    }


def _contacts(w: V3Walker) -> Iterator[Raw]:
    include = "custom_fields,list_memberships,phone_numbers,street_addresses,taggings,notes"
    for raw in w.links("/v3/contacts", "contacts",
                       {"status": "all", "include": include, "limit": 500}):
        yield _contact(raw)


def _campaigns(w: V3Walker) -> list[Raw]:
    found: dict[str, Raw] = {}
    for raw in w.links("/v3/emails", "campaigns", {"limit": 500}):
        found.setdefault(raw["campaign_id"], raw)
    return list(found.values())


def _email_campaigns(w: V3Walker) -> Iterator[Raw]:
    for raw in _campaigns(w):
        status = raw.get("current_status")
        yield {**raw, "id": raw["campaign_id"], "modified_date": raw.get("updated_at"),
               "created_date": raw.get("created_at"),
               # the list says "Done", the detail "DONE" (§1.6): one spelling in the table
               "status": status.upper() if isinstance(status, str) else None}


def _account_info(w: V3Walker) -> Iterator[Raw]:
    raw = w.get("/v3/account/summary", {"extra_fields": "physical_address,company_logo"})
    yield {**raw, "time_zone": raw.get("time_zone_id"), "email": raw.get("contact_email"),
           "phone": raw.get("contact_phone"),
           "company_logo": (raw.get("company_logo") or {}).get("url"),
           "organization_addresses": raw.get("physical_address")}


def _contact_lists(w: V3Walker) -> Iterator[Raw]:
    for raw in w.links("/v3/contact_lists", "lists",
                       {"status": "all", "include_membership_count": "all", "limit": 1000}):
        yield {**raw, "id": raw["list_id"], "created_date": raw.get("created_at"),
               "modified_date": raw.get("updated_at"),
               "contact_count": raw.get("membership_count"),
               "status": "DELETED" if raw.get("deleted_at") else "ACTIVE"}


def _email_activity_ids(w: V3Walker, campaign_id: str) -> list[str]:
    detail = w.get(f"/v3/emails/{campaign_id}")
    return [a["campaign_activity_id"] for a in detail.get("campaign_activities") or []
            if a.get("role") in ("primary_email", "resend")]


def _sent(w: V3Walker) -> Iterator[tuple[str, list[str]]]:
    """Each sent campaign (DONE, or EXECUTING) with its email activities (§3.6)."""
    for raw in _campaigns(w):
        if str(raw.get("current_status")).upper() in ("DONE", "EXECUTING"):
            yield raw["campaign_id"], _email_activity_ids(w, raw["campaign_id"])


def _contact_tracking(w: V3Walker) -> Iterator[Raw]:
    for campaign_id, activities in _sent(w):
        for act in activities:
            for kind, activity_type in TRACKING.items():
                path = f"/v3/reports/email_reports/{act}/tracking/{kind}"
                for raw in w.links(path, "tracking_activities", {"limit": 500}):
                    when = _ts(raw.get("created_time"))
                    link = raw.get("url_id")
                    link = None if link in (None, "") else str(link)
                    yield {
                        **raw, "activity_type": activity_type, "campaign_id": campaign_id,
                        "activity_date": when, DATE_COLUMN[activity_type]: when,
                        "link_id": link, "link_uri": raw.get("link_url"),
                        "unsubscribe_reason": raw.get("opt_out_reason"),
                        "activity_id": activity_id(raw["contact_id"], campaign_id,
                                                   activity_type, when, link),
                    }


def _email_campaign_summary(w: V3Walker) -> Iterator[Raw]:
    path = "/v3/reports/summary_reports/email_campaign_summaries"
    for raw in w.links(path, "bulk_email_campaign_summaries", {"limit": 500}):
        counts = raw.get("unique_counts") or {}
        yield {**raw, "start_date": raw.get("last_sent_date"), "sends": counts.get("sends"),
               "opens": counts.get("opens"), "clicks": counts.get("clicks"),
               "forwards": counts.get("forwards"), "unsubscribes": counts.get("optouts"),
               "bounces": counts.get("bounces"), "spam_count": counts.get("abuse"),
               "not_opened": counts.get("not_opened")}


def _events(w: V3Walker) -> Iterator[Raw]:
    for raw in w.cursor("/v3/events", "records"):
        detail = w.get(f"/v3/events/{raw['event_id']}")
        yield {**raw, "id": raw["event_id"],
               "location": (raw.get("address") or {}).get("location_name"),
               "type": raw.get("event_type"), "start_date": raw.get("start_time"),
               "end_date": raw.get("end_time"), "created_date": raw.get("create_time"),
               "total_registered_count": (raw.get("event_registration_summary_metrics")
                                          or {}).get("registration_count"),
               "event_detail_url": raw.get("registration_url"),
               "time_zone_id": detail.get("time_zone"),
               "active_date": detail.get("active_time")}


def _event_registrations(w: V3Walker) -> Iterator[Raw]:
    for event in w.cursor("/v3/events", "records"):
        event_id = event["event_id"]
        track = (w.get(f"/v3/events/{event_id}").get("default_track") or {}).get("track_id")
        if not track:
            continue
        path = f"/v3/events/{event_id}/tracks/{track}/registrations"
        for raw in w.cursor(path, "records"):
            yield {**raw, "event_id": event_id, "track_id": track,
                   "checked_in_tickets": raw.get("checkedIn_tickets")}


def _email_campaign_activities(w: V3Walker) -> Iterator[Raw]:
    for raw in _campaigns(w):
        if str(raw.get("current_status")).upper() == "REMOVED":
            continue  # a removed campaign's activities cannot be read (§1.7)
        for act in _email_activity_ids(w, raw["campaign_id"]):
            yield w.get(f"/v3/emails/activities/{act}")


def _plain(path: str, key: str, params: dict[str, Any]) -> Callable[[V3Walker], Iterator[Raw]]:
    def read(w: V3Walker) -> Iterator[Raw]:
        return w.links(path, key, params)
    return read


READ: dict[str, Callable[[V3Walker], Iterator[Raw]]] = {
    "contacts": _contacts,
    "email_campaigns": _email_campaigns,
    "account_info": _account_info,
    "contact_lists": _contact_lists,
    "contact_tracking": _contact_tracking,
    "email_campaign_summary": _email_campaign_summary,
    "events": _events,
    "contact_tags": _plain("/v3/contact_tags", "tags", {"include_count": "true", "limit": 500}),
    "contact_custom_fields": _plain("/v3/contact_custom_fields", "custom_fields",
                                    {"limit": 100}),
    "segments": _plain("/v3/segments", "segments", {"limit": 1000}),
    "email_campaign_activities": _email_campaign_activities,
    "event_registrations": _event_registrations,
}
"""How each v3 table's truth is read and named (docs/tables.md, the "v3 type" column)."""

IGNORED: dict[str, tuple[str, ...]] = {
    "email_campaign_summary": ("end_date",),  # when the counts were read: the run's clock
}
"""Columns that hold the moment of the read, not the account's data."""


def _expected_value(col: Column, v: Any) -> Any:
    if col.type == "timestamp":
        return _ts(v)
    if col.type == "bigint":
        return None if v in (None, "") else int(v)
    if col.type == "double":
        return None if v in (None, "") else float(v)
    if col.type == "text" and isinstance(v, int | float) and not isinstance(v, bool):
        return str(v)
    return v


def _loaded_value(col: Column, v: Any) -> Any:
    if isinstance(v, datetime):
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)
    if col.type in ("json", "text") and isinstance(v, str) and v[:1] in ("[", "{"):
        try:
            return orjson.loads(v)
        except orjson.JSONDecodeError:
            return v
    if col.type == "double" and v is not None:
        return float(v)
    return v


def _key(spec: Table, row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[k] for k in spec.primary_key)


class V3Truth:
    """The sandbox's v3 truth, table by table (each table read once, then cached)."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self._cache: dict[str, list[Raw]] = {}

    def records(self, table: str) -> list[Raw]:
        """The table's records as the API serves them now, named as the table's columns."""
        if table not in self._cache:
            walker = V3Walker(self.sb)
            try:
                self._cache[table] = list(READ[table](walker))
            finally:
                walker.close()
        return self._cache[table]

    def rows(self, table: str, columns: tuple[str, ...]) -> dict[Any, dict[str, Any]]:
        """The truth as warehouse rows (only ``columns``), by primary key."""
        spec = V3_TABLES[table]
        out: dict[Any, dict[str, Any]] = {}
        for rec in self.records(table):
            row = {c: _expected_value(spec.column(c), rec.get(c)) for c in columns}
            out[_key(spec, row)] = row
        return out


def read_warehouse(wcfg: WarehouseConfig, integration: str, table: str) -> list[Raw]:
    """Every row of a loaded v3 table, typed as v3 fills it (ids are text)."""
    return list(read_table(wcfg, integration, table, api_version="v3").to_pylist())


def records_by_key(table: str, records: Iterable[Raw],
                   columns: tuple[str, ...]) -> dict[Any, dict[str, Any]]:
    """Loaded ``records`` (only ``columns``), by primary key; a key loaded twice fails."""
    spec = V3_TABLES[table]
    out: dict[Any, dict[str, Any]] = {}
    for rec in records:
        row = {c: _loaded_value(spec.column(c), rec.get(c)) for c in columns}
        key = _key(spec, row)
        assert key not in out, f"{table}: key {key} loaded twice"
        out[key] = row
    return out


def loaded_rows(wcfg: WarehouseConfig, table: str, columns: tuple[str, ...],
                integration: str = "cc") -> dict[Any, dict[str, Any]]:
    """The warehouse table's rows (only ``columns``), by primary key; a key loaded twice
    fails the test."""
    return records_by_key(table, read_warehouse(wcfg, integration, table), columns)


def assert_v3_records_match(truth: V3Truth, table: str, records: Iterable[Raw], *,
                            columns: tuple[str, ...] | None = None,
                            ignore: tuple[str, ...] = ()) -> int:
    """Assert loaded ``records`` (rows read back from any warehouse, e.g. a user's own dlt
    pipeline) equal the v3 truth (keys and values); returns the row count."""
    spec = V3_TABLES[table]
    skip = set(ignore) | set(IGNORED.get(table, ()))
    cols = tuple(c for c in (columns or spec.column_names) if c not in skip)
    want = truth.rows(table, cols)
    got = records_by_key(table, records, cols)
    missing = sorted(set(want) - set(got), key=str)[:5]
    extra = sorted(set(got) - set(want), key=str)[:5]
    assert not missing and not extra, (
        f"{table}: {len(set(want) - set(got))} missing keys {missing}, "
        f"{len(set(got) - set(want))} unexpected keys {extra}")
    for key, row in want.items():
        if got[key] != row:
            diff = {c: (row[c], got[key][c]) for c in cols if row[c] != got[key][c]}
            raise AssertionError(f"{table} {key}: (truth, loaded) differ: {diff}")
    return len(want)


def assert_v3_matches(truth: V3Truth, wcfg: WarehouseConfig, table: str, *,
                      columns: tuple[str, ...] | None = None, ignore: tuple[str, ...] = (),
                      integration: str = "cc") -> int:
    """Assert the loaded v3 table equals the truth (keys and values); returns the row count."""
    return assert_v3_records_match(truth, table, read_warehouse(wcfg, integration, table),
                                   columns=columns, ignore=ignore)


def assert_all_v3(sb: Sandbox, wcfg: WarehouseConfig, tables: tuple[str, ...] | None = None,
                  ) -> dict[str, int]:
    """Every v3 table (or ``tables``) equals the truth; returns the row counts. Clears the
    sandbox's fault rules and limits first (the truth is read through the same gateway)."""
    sb.faults.clear()
    sb.set_limits(qps_limit=None, daily_limit=None)
    truth = V3Truth(sb)
    return {name: assert_v3_matches(truth, wcfg, name) for name in (tables or tuple(V3_TABLES))}
