"""v3 bodies -> table rows, against the reference's fixture bodies (real captures and the
contract's examples), through the same RowMapper a run uses; v3 paginators and dates."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from ctctsync.api.paging import Page, ShapeError, V3CursorPaginator, V3LinksPaginator, paginator_for
from ctctsync.api.v3.endpoints import (
    V3_ENDPOINTS,
    first_params,
    format_time,
    parse_time,
)
from ctctsync.api.v3.shape import Shaper, tracking_row
from ctctsync.sync.rows import MapContext, RowMapper
from ctctsync.tables import TABLES, tables_for

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "reference" / "fixtures-v3"
V3 = tables_for("v3")
LOADED = datetime(2026, 12, 1, tzinfo=UTC)


def _fixture(name: str) -> Any:
    path = FIXTURES / name
    if not path.is_file():
        pytest.fail(f"fixture missing: {path} (shared/ beside the repository)")
    return json.loads(path.read_text(encoding="utf-8"))


def _shape(table: str, raw: dict[str, Any], extra: dict[str, Any] | None = None
           ) -> dict[str, Any]:
    return Shaper(V3[table], V3_ENDPOINTS[table])(raw, extra)


def _load(table: str, rows: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """The first row as loaded (Python values of its Arrow row) and the fields reported new."""
    reported: list[str] = []
    mapper = RowMapper(V3[table], V3[table].column_names,
                       on_new_fields=lambda _t, fields, _a: reported.extend(fields))
    arrow = mapper.to_arrow(rows, MapContext("run-1", LOADED))
    return arrow.to_pylist()[0], reported


def test_contact_real_capture() -> None:
    raw = _fixture("GET_v3_contacts__include-all__nango.json")["contacts"][0]
    row = _shape("contacts", raw)
    assert row["id"] == "c36c8dda-bc12-11f1-aa3a-02420a320002"
    assert row["status"] == "IMPLICIT"  # permission_to_send upper-cased
    assert row["confirmed"] is False  # confirm_status "off"
    assert row["email_addresses"] == [raw["email_address"]]
    assert row["lists"] == ["c3639a04-bc12-11f1-aa3a-02420a320002"]
    assert row["source"] == "Account"
    assert row["v2_id"] is None and row["deleted_at"] is None
    loaded, new = _load("contacts", [row])
    assert new == []
    assert loaded["modified_date"] == datetime(2026, 9, 29, 14, 33, 39, tzinfo=UTC)
    assert loaded["notes"] == "[]" and loaded["custom_fields"] == "[]"


def test_contact_every_field_of_the_contract() -> None:
    raw = _fixture("GET_v3_contacts__swagger-3.0.178-examples.json")["contacts"][0]
    row = _shape("contacts", raw)
    assert row["home_phone"] == "+1-555-555-5555"
    assert row["work_phone"] is None and row["cell_phone"] is None
    assert row["custom_fields"] == [
        {"custom_field_id": "1618ae62-4752-11e9-9c8a-fa163e6b01c1", "value": "Tesla S 2017"}]
    assert row["addresses"] == raw["street_addresses"]
    assert row["confirmed"] is True
    assert (row["birthday_month"], row["birthday_day"], row["anniversary"]) == (11, 24,
                                                                                "2006-11-15")
    assert row["status"] == "DELETED"  # the example carries deleted_at
    loaded, new = _load("contacts", [row])
    assert new == []  # sms_channel and update_source are known, not loaded
    assert "sms_channel" not in row and "update_source" not in row
    assert loaded["deleted_at"] == datetime(2016, 7, 8, tzinfo=UTC)


def test_deleted_contact_from_the_guide() -> None:
    raw = _fixture("GET_v3_contacts_ID__deleted__v3doc.json")
    loaded, _ = _load("contacts", [_shape("contacts", raw)])
    assert loaded["status"] == "DELETED"
    assert loaded["deleted_at"] == datetime(2015, 3, 17, tzinfo=UTC)  # a date: midnight UTC
    assert loaded["lists"] == "[]"
    # -04:00 / -05:00 offsets become UTC
    assert loaded["created_date"] == datetime(2013, 4, 1, 19, 7, 7, tzinfo=UTC)
    assert loaded["modified_date"] == datetime(2018, 1, 25, 10, 40, 30, tzinfo=UTC)


def test_a_new_v3_field_is_kept_and_reported() -> None:
    raw = {**_fixture("GET_v3_contacts__include-all__nango.json")["contacts"][0],
           "loyalty_tier": "gold"}
    row = _shape("contacts", raw)
    assert row["loyalty_tier"] == "gold"
    _, new = _load("contacts", [row])
    assert new == ["loyalty_tier"]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param("Draft", "DRAFT", id="list-casing"),
        pytest.param("DONE", "DONE", id="detail-casing"),
        pytest.param("Removed", "REMOVED", id="deleted-campaign"),
    ],
)
def test_campaign_status_is_upper_case(status: str, expected: str) -> None:
    raw = {**_fixture("GET_v3_emails__nango.json")["campaigns"][0], "current_status": status}
    row = _shape("email_campaigns", raw)
    assert row["status"] == expected
    assert row["id"] == raw["campaign_id"] and row["type_code"] == 26
    assert "current_status" not in row


def test_account_summary() -> None:
    raw = {**_fixture("GET_v3_account_summary__swagger-3.0.178-examples.json"),
           "physical_address": _fixture(
               "GET_v3_account_summary_physical_address__swagger-3.0.178-examples.json"),
           "company_logo": {"url": "https://files.example/logo.jpg", "internal_id": "X.5"}}
    row = _shape("account_info", raw)
    assert row["email"] == raw["contact_email"] and row["phone"] == raw["contact_phone"]
    assert row["time_zone"] == raw["time_zone_id"]
    assert row["company_logo"] == "https://files.example/logo.jpg"
    loaded, new = _load("account_info", [row])
    assert new == []
    assert json.loads(loaded["organization_addresses"]) == raw["physical_address"]
    assert "status_code" not in V3["account_info"].column_names


def test_lists_deleted_and_counted() -> None:
    raw = _fixture("GET_v3_contact_lists__swagger-3.0.178-examples.json")["lists"][0]
    loaded, new = _load("contact_lists", [_shape("contact_lists", raw)])
    assert new == []
    assert loaded["status"] == "DELETED" and loaded["contact_count"] == raw["membership_count"]
    live = _fixture("GET_v3_contact_lists__nango.json")["lists"][0]
    assert _shape("contact_lists", live)["status"] == "ACTIVE"


@pytest.mark.parametrize(
    ("fixture", "activity_type", "date_column"),
    [
        pytest.param("clicks", "EMAIL_CLICK", "click_date", id="clicks"),
        pytest.param("optouts", "EMAIL_UNSUBSCRIBE", "unsubscribe_date", id="optouts"),
        pytest.param("bounces", "EMAIL_BOUNCE", "bounce_date", id="bounces"),
        pytest.param("sends", "EMAIL_SEND", "send_date", id="sends"),
    ],
)
def test_tracking_rows(fixture: str, activity_type: str, date_column: str) -> None:
    body = _fixture(f"GET_v3_reports_email_reports_ID_tracking_{fixture}"
                    "__swagger-3.0.178-examples.json")
    raw = body["tracking_activities"][0]
    shaper = Shaper(V3["contact_tracking"], V3_ENDPOINTS["contact_tracking"])
    row = tracking_row(shaper, raw, "camp-uuid", activity_type, date_column)
    loaded, new = _load("contact_tracking", [row])
    assert new == []  # first/last name, current address, the contact's deleted_at: known
    assert loaded["activity_type"] == activity_type and loaded["campaign_id"] == "camp-uuid"
    assert loaded["campaign_activity_id"] == raw["campaign_activity_id"]
    when = datetime(2019, 4, 25, 11, 8, tzinfo=UTC)
    assert loaded["activity_date"] == loaded[date_column] == when
    assert loaded["activity_id"] and len(loaded["activity_id"]) == 32
    if fixture == "clicks":
        assert (loaded["link_id"], loaded["link_uri"], loaded["device_type"]) == (
            "1100407204171", "http://www.yoursite.com", "computer")
    if fixture == "optouts":
        assert loaded["unsubscribe_reason"] == "The content is not what I expected"
    if fixture == "bounces":
        assert loaded["bounce_code"] == raw["bounce_code"]


def test_campaign_summary() -> None:
    raw = _fixture("GET_v3_reports_summary_reports_email_campaign_summaries"
                   "__swagger-3.0.178-examples.json")["bulk_email_campaign_summaries"][0]
    row = _shape("email_campaign_summary", raw, {"end_date": "2026-12-01T00:00:00.000Z"})
    loaded, new = _load("email_campaign_summary", [row])
    assert new == []
    counts = raw["unique_counts"]
    assert (loaded["sends"], loaded["opens"], loaded["clicks"], loaded["forwards"],
            loaded["unsubscribes"], loaded["bounces"], loaded["spam_count"],
            loaded["not_opened"]) == (counts["sends"], counts["opens"], counts["clicks"],
                                      counts["forwards"], counts["optouts"], counts["bounces"],
                                      counts["abuse"], counts["not_opened"])
    assert loaded["start_date"] == datetime(2019, 4, 25, 11, 8, tzinfo=UTC)
    assert loaded["end_date"] == datetime(2026, 12, 1, tzinfo=UTC)
    assert loaded["campaign_id"] == raw["campaign_id"]


def test_event_with_its_detail() -> None:
    raw = _fixture("GET_v3_events__swagger-3.0.178-examples.json")["records"][0]
    detail = _fixture("GET_v3_events_ID__swagger-3.0.178-examples.json")
    row = _shape("events", raw, {"time_zone_id": detail["time_zone"],
                                 "active_date": detail["active_time"]})
    loaded, new = _load("events", [row])
    assert new == []
    assert loaded["id"] == raw["event_id"] and loaded["type"] == raw["event_type"]
    assert loaded["location"] == raw["address"]["location_name"]
    assert loaded["time_zone_id"] == "US/Eastern"
    assert loaded["event_detail_url"] == raw["registration_url"]
    assert loaded["start_date"] == datetime(2023, 12, 1, 20, 30, tzinfo=UTC)


def test_registration() -> None:
    raw = _fixture("GET_v3_events_ID_tracks_ID_registrations__swagger-3.0.178-examples.json"
                   )["records"][0]
    row = _shape("event_registrations", raw, {"event_id": "ev-1", "track_id": "s8zabc"})
    loaded, new = _load("event_registrations", [row])
    assert new == []
    assert loaded["checked_in_tickets"] == raw["checkedIn_tickets"]
    assert (loaded["event_id"], loaded["track_id"]) == ("ev-1", "s8zabc")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("2026-09-29T14:33:39Z", datetime(2026, 9, 29, 14, 33, 39, tzinfo=UTC),
                     id="z"),
        pytest.param("2026-09-29T14:34:37.000Z", datetime(2026, 9, 29, 14, 34, 37, tzinfo=UTC),
                     id="millis-z"),
        pytest.param("2016-03-03T10:53:04-05:00", datetime(2016, 3, 3, 15, 53, 4, tzinfo=UTC),
                     id="offset"),
        pytest.param("2026-09-29T14:37:13.521+0000",
                     datetime(2026, 9, 29, 14, 37, 13, 521_000, tzinfo=UTC), id="no-colon"),
        pytest.param("2015-03-17", datetime(2015, 3, 17, tzinfo=UTC), id="date-only"),
        pytest.param("", None, id="empty"),
        pytest.param("soon", None, id="garbage"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_parse_time(value: Any, expected: datetime | None) -> None:
    assert parse_time(value) == expected


def test_every_date_style_loads() -> None:
    row = _shape("contact_tags", {"tag_id": "t1", "name": "x",
                                  "created_at": "2026-09-29T14:37:13.521+0000",
                                  "updated_at": "2015-03-17"})
    loaded, _ = _load("contact_tags", [row])
    assert loaded["created_at"] == datetime(2026, 9, 29, 14, 37, 13, 521_000, tzinfo=UTC)
    assert loaded["updated_at"] == datetime(2015, 3, 17, tzinfo=UTC)


def test_first_params() -> None:
    since = datetime(2026, 1, 2, 3, 4, 5, 678_900, tzinfo=timezone(timedelta(hours=-5)))
    assert first_params(V3_ENDPOINTS["contacts"], since) == {
        "status": "all",
        "include": "custom_fields,list_memberships,phone_numbers,street_addresses,taggings,"
        "notes",
        "limit": 500,
        "updated_after": "2026-01-02T08:04:05.678Z",
    }
    assert first_params(V3_ENDPOINTS["email_campaigns"], since)["after_date"] == (
        "2026-01-02T08:04:05.678Z")
    assert first_params(V3_ENDPOINTS["contact_lists"], since) == {
        "status": "all", "include_membership_count": "all", "limit": 1000}
    with pytest.raises(ValueError, match="timezone"):
        format_time(datetime(2026, 1, 2))


# --- paginators ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "records", "next_link"),
    [
        pytest.param(
            {"tags": [{"a": 1}], "_links": {"next": {"href": "/v3/contact_tags?cursor=x="}}},
            1, "/v3/contact_tags?cursor=x=", id="next",
        ),
        pytest.param({"tags": [{"a": 1}]}, 1, None, id="no-links"),
        pytest.param({"tags": [{"a": 1}], "_links": {}}, 1, None, id="empty-links"),
        pytest.param({"tags": [], "_links": {"next": {"href": None}}}, 0, None, id="null-href"),
    ],
)
def test_links_paginator(body: dict[str, Any], records: int, next_link: str | None) -> None:
    page = V3LinksPaginator("tags").parse(body)
    assert (len(page.records), page.next_link) == (records, next_link)


def test_cursor_paginator() -> None:
    paginator = V3CursorPaginator("records", "/v3/events", {"limit": 100})
    page = paginator.parse(_fixture("GET_v3_events__swagger-3.0.178-examples.json"))
    assert page.next_link is not None
    assert page.next_link.startswith("/v3/events?limit=100&next=")
    last = paginator.parse({"records": [{"event_id": "e"}], "total_records": 1})
    assert last == Page(records=[{"event_id": "e"}])
    # an empty page ends the read, even if it names a cursor
    assert paginator.parse({"records": [], "next_cursor": "abc"}).next_link is None
    with pytest.raises(ShapeError):
        paginator.parse({"records": [], "next_cursor": 7})
    with pytest.raises(ShapeError):
        paginator.parse([])


def test_paginator_for_v3() -> None:
    assert isinstance(paginator_for("v3_links", "contacts"), V3LinksPaginator)
    assert paginator_for("v3_object").parse({"a": 1}).records == [{"a": 1}]
    assert isinstance(paginator_for("v3_cursor", "records", "/v3/events"), V3CursorPaginator)
    with pytest.raises(ValueError, match="path"):
        paginator_for("v3_cursor", "records")


def test_every_v3_source_has_a_reader() -> None:
    from ctctsync.api.v3.extract import READERS

    for name, t in TABLES.items():
        if "v3" in t.sources:
            assert t.sources["v3"].reader in READERS, name
