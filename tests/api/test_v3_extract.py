"""The v3 readers against the running sandbox: every table's rows equal what ``/v3`` serves,
incremental reads (contacts ``updated_after``, tracking stopped at the watermark), deleted
contacts, calls independent of the number of contacts, unavailable tables."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import httpx
import pytest

from ctctsync.api.client import ApiClient
from ctctsync.api.ratelimit import RateLimiter
from ctctsync.api.readnotes import ReadNotes
from ctctsync.api.v3.endpoints import parse_time
from ctctsync.api.v3.extract import TableUnavailable, extract, sent_campaigns
from ctctsync.sandbox.records import AccountSpec
from ctctsync.sandbox.server import Sandbox
from ctctsync.sync.rows import MapContext, RowMapper
from ctctsync.tables import TABLES, Table, tables_for

Raw = dict[str, Any]
V3 = tables_for("v3")


def _client(sb: Sandbox) -> ApiClient:
    return ApiClient(sb.base_url, sb.credentials.api_key, sb.v3_tokens.issue_access_token(),
                     send_api_key=False, limiter=RateLimiter(qps=None, daily=None))


@pytest.fixture
def v3_client(sandbox: Sandbox) -> Iterator[ApiClient]:
    with _client(sandbox) as client:
        yield client


@pytest.fixture
def raw(sandbox: Sandbox) -> Iterator[Callable[..., list[Raw]]]:
    """``raw(path, key, **params)``: every record of a /v3 collection as served, following
    ``_links.next.href`` or ``next_cursor`` (a reader of its own, not the connector's)."""
    token = sandbox.v3_tokens.issue_access_token()
    with httpx.Client(base_url=sandbox.base_url, timeout=10,
                      headers={"Authorization": f"Bearer {token}"}) as http:

        def get(path: str, key: str | None = None, **params: Any) -> list[Raw]:
            out: list[Raw] = []
            url: str | None = path
            query: dict[str, Any] = params
            while url is not None:
                r = http.get(url, params=query)
                assert r.status_code == 200, (url, r.status_code, r.text[:300])
                body = r.json()
                if key is None:
                    return [body]
                out += body[key]
                href = (body.get("_links") or {}).get("next", {}).get("href")
                cursor = body.get("next_cursor") if body[key] else None
                if cursor:
                    url, query = path, {**params, "next": cursor}
                elif href and "next_cursor" not in body:
                    url, query = href, {}
                else:
                    url = None
            return out

        yield get


def _rows(table: Table | str, client: ApiClient, since: datetime | None = None,
          **kw: Any) -> list[Raw]:
    return [row for page in extract(table, client, since, **kw) for row in page]


def _load(table: Table, rows: list[Raw]) -> list[str]:
    """Map the rows to Arrow like a run does; returns the fields reported as new."""
    reported: list[str] = []
    mapper = RowMapper(table, table.column_names,
                       on_new_fields=lambda _t, fields, _a: reported.extend(fields))
    mapper.to_arrow(rows, MapContext("run-1", datetime.now(UTC)))
    return reported


def _upper(v: Any) -> Any:
    return v.upper() if isinstance(v, str) else v


# table -> (path, records key, params, raw key field, row key column, {column: raw -> value})
EXPECTED: dict[str, tuple[str, str | None, dict[str, Any], str, str,
                          dict[str, Callable[[Raw], Any]]]] = {
    "contacts": (
        "/v3/contacts", "contacts",
        {"status": "all", "limit": 500, "include": "custom_fields,list_memberships,"
         "phone_numbers,street_addresses,taggings,notes"},
        "contact_id", "id",
        {
            "modified_date": lambda r: r["updated_at"],
            "created_date": lambda r: r["created_at"],
            "email_addresses": lambda r: [r["email_address"]],
            "lists": lambda r: r.get("list_memberships"),
            "first_name": lambda r: r.get("first_name"),
            "deleted_at": lambda r: r.get("deleted_at"),
            "status": lambda r: "DELETED" if r.get("deleted_at")
            else r["email_address"]["permission_to_send"].upper(),
            "cell_phone": lambda r: next((p["phone_number"] for p in r.get("phone_numbers", [])
                                          if p["kind"] == "mobile"), None),
            "confirmed": lambda r: r["email_address"].get("confirm_status") == "confirmed",
            "taggings": lambda r: r.get("taggings"),
        },
    ),
    "email_campaigns": (
        "/v3/emails", "campaigns", {"limit": 500}, "campaign_id", "id",
        {"status": lambda r: _upper(r["current_status"]), "modified_date":
         lambda r: r["updated_at"], "type_code": lambda r: r["type_code"]},
    ),
    "account_info": (
        "/v3/account/summary", None, {"extra_fields": "physical_address,company_logo"},
        "contact_email", "email",
        {"time_zone": lambda r: r["time_zone_id"], "phone": lambda r: r.get("contact_phone"),
         "company_logo": lambda r: r.get("company_logo", {}).get("url"),
         "organization_addresses": lambda r: r.get("physical_address")},
    ),
    "contact_lists": (
        "/v3/contact_lists", "lists", {"status": "all", "include_membership_count": "all"},
        "list_id", "id",
        {"contact_count": lambda r: r.get("membership_count"),
         "status": lambda r: "DELETED" if r.get("deleted_at") else "ACTIVE",
         "modified_date": lambda r: r["updated_at"]},
    ),
    "email_campaign_summary": (
        "/v3/reports/summary_reports/email_campaign_summaries",
        "bulk_email_campaign_summaries", {"limit": 500}, "campaign_id", "campaign_id",
        {"start_date": lambda r: r.get("last_sent_date"),
         "unsubscribes": lambda r: r["unique_counts"]["optouts"],
         "spam_count": lambda r: r["unique_counts"]["abuse"],
         "sends": lambda r: r["unique_counts"]["sends"]},
    ),
    "events": (
        "/v3/events", "records", {"limit": 100}, "event_id", "id",
        {"type": lambda r: r.get("event_type"), "start_date": lambda r: r.get("start_time"),
         "location": lambda r: (r.get("address") or {}).get("location_name"),
         "total_registered_count":
         lambda r: r.get("event_registration_summary_metrics", {}).get("registration_count")},
    ),
    "contact_tags": (
        "/v3/contact_tags", "tags", {"include_count": "true", "limit": 500}, "tag_id", "tag_id",
        {"contacts_count": lambda r: r.get("contacts_count"), "name": lambda r: r["name"]},
    ),
    "contact_custom_fields": (
        "/v3/contact_custom_fields", "custom_fields", {"limit": 100}, "custom_field_id",
        "custom_field_id", {"label": lambda r: r.get("label"), "type": lambda r: r.get("type")},
    ),
    "segments": (
        "/v3/segments", "segments", {}, "segment_id", "segment_id",
        {"name": lambda r: r["name"], "edited_at": lambda r: r.get("edited_at")},
    ),
}


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in EXPECTED])
def test_each_table_is_what_the_sandbox_serves(
    name: str, v3_client: ApiClient, raw: Callable[..., list[Raw]]
) -> None:
    path, key, params, raw_key, row_key, columns = EXPECTED[name]
    served = {str(r[raw_key]): r for r in raw(path, key, **params)}
    rows = _rows(name, v3_client)
    assert served and len(rows) == len(served)
    by_key = {str(row[row_key]): row for row in rows}
    assert set(by_key) == set(served)
    for ident, record in served.items():
        row = by_key[ident]
        assert set(V3[name].column_names) - {"activity_id"} <= set(row)
        for column, expected in columns.items():
            assert row[column] == expected(record), (name, ident, column)
    assert _load(V3[name], rows) == []  # loads cleanly, and nothing is reported as new


def test_contacts_keep_deleted_ones(sandbox: Sandbox, v3_client: ApiClient,
                                    raw: Callable[..., list[Raw]]) -> None:
    sandbox.account.set_contact_status(3, "REMOVED")
    deleted = {r["contact_id"]: r for r in raw("/v3/contacts", "contacts", status="deleted",
                                               limit=500)}
    assert sandbox.account.contact_uuid(3) in deleted
    rows = {r["id"]: r for r in _rows("contacts", v3_client)}
    for ident, record in deleted.items():
        assert rows[ident]["status"] == "DELETED"
        assert rows[ident]["deleted_at"] == record["deleted_at"]
    alive = [r for r in rows.values() if r["id"] not in deleted]
    assert alive and all(r["deleted_at"] is None and r["status"] != "DELETED" for r in alive)


def test_contacts_updated_after(sandbox: Sandbox, v3_client: ApiClient) -> None:
    sandbox.account.advance(3600)
    changed = sandbox.account.update_contacts(9)
    sandbox.account.set_contact_status(changed[0], "REMOVED")
    since = datetime.fromtimestamp(sandbox.account.clock.now_ms() / 1000, UTC) - timedelta(
        seconds=60)
    rows = _rows("contacts", v3_client, since)
    assert v3_client.calls.total == 1
    assert {r["id"] for r in rows} == {sandbox.account.contact_uuid(c) for c in changed}
    for row in rows:
        modified = parse_time(row["modified_date"])
        assert modified is not None and modified >= since
    assert any(r["status"] == "DELETED" for r in rows)


def _small_pages(page_size: int) -> Table:
    """contact_tracking with small report pages, so paging and its stop are exercised."""
    t = TABLES["contact_tracking"]
    source = replace(t.sources["v3"], page_size=page_size)
    return replace(t, sources=MappingProxyType({**t.sources, "v3": source})).for_version("v3")


def _key(row: Raw) -> tuple[Any, ...]:
    return (row["contact_id"], row["campaign_activity_id"], row["activity_type"],
            row["activity_date"], row["link_id"])


def test_tracking_stops_at_the_watermark(v3_client: ApiClient) -> None:
    table = _small_pages(10)
    campaigns = sent_campaigns(v3_client)
    activities = sum(len(c["activity_ids"]) for c in campaigns)
    assert activities >= 3

    start = v3_client.calls.total
    full = _rows(table, v3_client, campaigns=campaigns)
    full_calls = v3_client.calls.total - start
    assert full_calls > 6 * activities  # several pages of 10

    dates = sorted(parse_time(r["activity_date"]) for r in full)
    since = dates[-len(dates) // 10]  # about the newest tenth
    assert since is not None
    start = v3_client.calls.total
    newer = _rows(table, v3_client, since, campaigns=campaigns)
    calls = v3_client.calls.total - start
    expected = [r for r in full if (parse_time(r["activity_date"]) or since) >= since]
    assert sorted(map(_key, newer)) == sorted(map(_key, expected))
    # each report stops on its first page holding an older row: far fewer calls
    assert 6 * activities <= calls < full_calls


def test_tracking_rows_match_the_reports(v3_client: ApiClient,
                                         raw: Callable[..., list[Raw]]) -> None:
    campaigns = sent_campaigns(v3_client)
    rows = _rows("contact_tracking", v3_client, campaigns=campaigns)
    served = []
    for c in campaigns:
        for activity_id in c["activity_ids"]:
            for kind in ("sends", "opens", "clicks", "forwards", "bounces", "optouts"):
                path = f"/v3/reports/email_reports/{activity_id}/tracking/{kind}"
                served += [(c["campaign_id"], r) for r in raw(path, "tracking_activities")]
    assert len(rows) == len(served) > 0
    types = {"em_sends": "EMAIL_SEND", "em_opens": "EMAIL_OPEN", "em_clicks": "EMAIL_CLICK",
             "em_forwards": "EMAIL_FORWARD", "em_bounces": "EMAIL_BOUNCE",
             "em_optouts": "EMAIL_UNSUBSCRIBE"}
    expected = sorted(
        (r["contact_id"], r["campaign_activity_id"], types[r["tracking_activity_type"]],
         r["created_time"], r.get("url_id"), campaign_id, r.get("link_url"),
         r.get("opt_out_reason"), r.get("bounce_code"))
        for campaign_id, r in served
    )
    got = sorted(
        (*_key(r), r["campaign_id"], r["link_uri"], r["unsubscribe_reason"], r["bounce_code"])
        for r in rows
    )
    assert got == expected
    assert _load(V3["contact_tracking"], rows) == []


def _tracking_calls(sb: Sandbox) -> tuple[int, int, int]:
    """(calls, rows, campaign activities) of a first contact_tracking read."""
    with _client(sb) as client:
        campaigns = sent_campaigns(client)
        start = client.calls.total
        rows = _rows("contact_tracking", client, campaigns=campaigns)
        activities = sum(len(c["activity_ids"]) for c in campaigns)
        return client.calls.total - start, len(rows), activities


def test_tracking_calls_do_not_grow_with_contacts(sandbox_factory: Callable[..., Sandbox]) -> None:
    # the same campaigns over 100 and 1,000 contacts: the same calls, 6 per campaign activity
    # (every report fits one page of 500 here)
    small = sandbox_factory(AccountSpec(seed=11, contacts=100, campaigns=8,
                                        activities_per_campaign=40, events=0))
    large = sandbox_factory(AccountSpec(seed=11, contacts=1000, campaigns=8,
                                        activities_per_campaign=40, events=0))
    (calls_small, rows_small, acts_small), (calls_large, rows_large, acts_large) = map(
        _tracking_calls, (small, large))
    assert acts_small == acts_large >= 3
    assert rows_small > 0 and rows_large > 0
    assert calls_small == calls_large == 6 * acts_small


def test_campaign_activities_and_their_changes(sandbox: Sandbox, v3_client: ApiClient,
                                               raw: Callable[..., list[Raw]]) -> None:
    rows = _rows("email_campaign_activities", v3_client)
    campaigns = raw("/v3/emails", "campaigns", limit=500)
    live = [c for c in campaigns if c["current_status"].upper() != "REMOVED"]
    assert {r["campaign_id"] for r in rows} <= {c["campaign_id"] for c in live}
    assert rows and all(r["role"] in ("primary_email", "resend") for r in rows)
    for row in rows:
        served = raw(f"/v3/emails/activities/{row['campaign_activity_id']}")[0]
        for column in ("subject", "from_email", "contact_list_ids", "current_status",
                       "format_type"):
            assert row[column] == served.get(column)
    assert _load(V3["email_campaign_activities"], rows) == []
    # an incremental read asks only for the campaigns changed since the bookmark
    sandbox.account.advance(3600)
    since = datetime.fromtimestamp(sandbox.account.clock.now_ms() / 1000, UTC)
    start = v3_client.calls.total
    assert _rows("email_campaign_activities", v3_client, since) == []
    assert v3_client.calls.total - start == 1


def test_events_have_their_details_and_registrations(v3_client: ApiClient,
                                                     raw: Callable[..., list[Raw]]) -> None:
    events = _rows("events", v3_client)
    assert events
    for row in events:
        detail = raw(f"/v3/events/{row['id']}")[0]
        assert row["time_zone_id"] == detail.get("time_zone")
        assert row["active_date"] == detail.get("active_time")
    registrations = _rows("event_registrations", v3_client)
    expected = 0
    for row in events:
        detail = raw(f"/v3/events/{row['id']}")[0]
        track = detail.get("default_track", {}).get("track_id")
        if track:
            served = raw(f"/v3/events/{row['id']}/tracks/{track}/registrations", "records",
                         limit=100)
            expected += len(served)
            mine = [r for r in registrations if r["event_id"] == row["id"]]
            assert {r["registration_id"] for r in mine} == {s["registration_id"] for s in served}
            assert all(r["track_id"] == track for r in mine)
    assert len(registrations) == expected > 0
    assert _load(V3["events"], events) == []
    assert _load(V3["event_registrations"], registrations) == []


@pytest.mark.parametrize("name", ["my_library_files", "trash_files"])
def test_unavailable_tables_say_why(name: str, v3_client: ApiClient) -> None:
    with pytest.raises(TableUnavailable, match="no MyLibrary endpoint"):
        _rows(name, v3_client)
    assert v3_client.calls.total == 0


def test_notes_are_shared_with_v2() -> None:
    from ctctsync.api.v2.extract import ReadNotes as V2ReadNotes

    assert V2ReadNotes is ReadNotes


def test_tracking_increment_finds_new_campaigns_and_new_activities(
    sandbox: Sandbox, v3_client: ApiClient
) -> None:
    first = _rows("contact_tracking", v3_client, campaigns=sent_campaigns(v3_client))
    sandbox.account.advance(3600)
    since = datetime.fromtimestamp(sandbox.account.clock.now_ms() / 1000, UTC)
    old_campaign = next(c for c in sandbox.account.campaigns.values() if c.status == "SENT")
    sandbox.account.send_campaign(old_campaign.id, activities=12)  # opens, clicks... of an old one
    new_campaign = sandbox.account.send_campaign(activities=30)  # sent after the bookmark
    campaigns = sent_campaigns(v3_client)
    start = v3_client.calls.total
    rows = _rows("contact_tracking", v3_client, since, campaigns=campaigns)
    activities = sum(len(c["activity_ids"]) for c in campaigns)
    assert v3_client.calls.total - start == 6 * activities  # one page each: nothing older read
    by_campaign: dict[str, int] = {}
    for row in rows:
        by_campaign[row["campaign_id"]] = by_campaign.get(row["campaign_id"], 0) + 1
        assert (parse_time(row["activity_date"]) or since) >= since
    old_uuid = _campaign_uuid(campaigns, old_campaign.name)
    new_uuid = _campaign_uuid(campaigns, sandbox.account.campaigns[new_campaign].name)
    assert set(by_campaign) == {old_uuid, new_uuid}  # no other campaign's old activities
    assert by_campaign[old_uuid] == 12
    assert by_campaign[new_uuid] >= 25  # "about 30" (the sandbox's send)
    assert not {_key(r) for r in rows} & {_key(r) for r in first}


def _campaign_uuid(campaigns: list[Raw], name: str) -> str:
    return str(next(c["campaign_id"] for c in campaigns if c["name"] == name))


def test_deleted_campaigns_arrive_as_removed(sandbox_factory: Callable[..., Sandbox]) -> None:
    sb = sandbox_factory(AccountSpec(seed=11, contacts=50, campaigns=10,
                                     activities_per_campaign=5, events=0))
    deleted = [c for c in sb.account.campaigns.values() if c.status == "DELETED"]
    assert deleted  # this account has a deleted campaign (v2 lists it only when asked)
    with _client(sb) as client:
        rows = _rows("email_campaigns", client)
        assert len(rows) == len(sb.account.campaigns)
        assert sum(r["status"] == "REMOVED" for r in rows) == len(deleted)
        assert {r["status"] for r in rows} <= {"DRAFT", "SCHEDULED", "EXECUTING", "DONE",
                                               "ERROR", "REMOVED"}
