"""What v3 readers cannot read is noted, never silently dropped: answers scripted on a real
HTTP server (404s the sandbox has no fault for)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ctctsync.api.client import ApiClient
from ctctsync.api.ratelimit import RateLimiter
from ctctsync.api.readnotes import ReadNotes
from ctctsync.api.v3.extract import extract, sent_campaigns

OK: dict[str, str] = {}
REPORTS = "/v3/reports/email_reports/a1/tracking"
EMPTY = {"tracking_activities": []}
SEND = {"contact_id": "k1", "campaign_activity_id": "a1", "tracking_activity_type": "em_sends",
        "email_address": "k@example.com", "created_time": "2026-01-02T03:04:05.000Z"}
DETAIL = {"campaign_id": "c1", "current_status": "DONE",
          "campaign_activities": [{"campaign_activity_id": "a1", "role": "primary_email"},
                                  {"campaign_activity_id": "p1", "role": "permalink"}]}
NOT_FOUND = (404, OK, [{"error_key": "emails.api.not_found", "error_message": "Not found"}])


@pytest.fixture
def client(scripted_server: Any) -> Iterator[ApiClient]:
    scripted_server.answer("/v3/emails", (200, OK, {"campaigns": [
        {"campaign_id": "c1", "current_status": "Done", "updated_at": "2026-01-01T00:00:00Z"},
        {"campaign_id": "c2", "current_status": "Draft", "updated_at": "2026-01-01T00:00:00Z"},
    ]}))
    with ApiClient(scripted_server.base_url, "client-id", "token", send_api_key=False,
                   limiter=RateLimiter(qps=None, daily=None)) as c:
        yield c


def _read(name: str, client: ApiClient, notes: ReadNotes, **kw: Any) -> list[dict[str, Any]]:
    return [row for page in extract(name, client, notes=notes, **kw) for row in page]


def _others(server: Any, *, but: str) -> None:
    for kind in ("sends", "opens", "clicks", "forwards", "bounces", "optouts"):
        if kind != but:
            server.answer(f"{REPORTS}/{kind}", (200, OK, EMPTY))


def test_a_missing_report_of_an_existing_campaign_holds_the_bookmark(
    scripted_server: Any, client: ApiClient
) -> None:
    scripted_server.answer("/v3/emails/c1", (200, OK, DETAIL))
    _others(scripted_server, but="opens")
    scripted_server.answer(f"{REPORTS}/sends", (200, OK, {"tracking_activities": [SEND]}))
    scripted_server.answer(f"{REPORTS}/opens", NOT_FOUND)
    notes = ReadNotes()
    rows = _read("contact_tracking", client, notes)
    assert [(r["activity_type"], r["campaign_id"]) for r in rows] == [("EMAIL_SEND", "c1")]
    assert notes.counts() == {"tracking_missing": 1}
    assert notes.hold_bookmark
    paths = [p.split("?")[0] for p in scripted_server.requests]
    assert f"{REPORTS}/optouts" in paths  # the other reports are still read
    assert not any("/p1/" in p for p in paths)  # the permalink is not an email
    assert not any("c2" in p for p in paths)  # a draft has no tracking


def test_a_campaign_deleted_during_the_read_is_gone(
    scripted_server: Any, client: ApiClient
) -> None:
    # listed and detailed by sent_campaigns, then deleted: its reports and detail 404
    scripted_server.answer("/v3/emails/c1", (200, OK, DETAIL), NOT_FOUND)
    scripted_server.answer(f"{REPORTS}/sends", NOT_FOUND)
    notes = ReadNotes()
    campaigns = sent_campaigns(client)
    assert [c["activity_ids"] for c in campaigns] == [["a1"]]
    assert _read("contact_tracking", client, notes, campaigns=campaigns) == []
    assert notes.counts() == {"campaign_deleted": 1}
    assert not notes.hold_bookmark
    assert f"{REPORTS}/opens" not in [p.split("?")[0] for p in scripted_server.requests]


def test_a_campaign_deleted_before_its_detail_is_noted(
    scripted_server: Any, client: ApiClient
) -> None:
    scripted_server.answer("/v3/emails/c1", NOT_FOUND)
    campaigns = sent_campaigns(client)
    assert campaigns[0]["deleted"] is True
    notes = ReadNotes()
    start = client.calls.total
    assert _read("contact_tracking", client, notes, campaigns=campaigns) == []
    assert client.calls.total == start
    assert notes.messages() == ["1 campaign deleted during the run: c1"]


def test_an_unreadable_campaign_activity_is_noted(
    scripted_server: Any, client: ApiClient
) -> None:
    scripted_server.answer("/v3/emails/c1", (200, OK, DETAIL))
    scripted_server.answer("/v3/emails/c2", (200, OK, {**DETAIL, "campaign_id": "c2",
                                                       "campaign_activities": [
                                                           {"campaign_activity_id": "a2",
                                                            "role": "primary_email"}]}))
    scripted_server.answer("/v3/emails/activities/a1", NOT_FOUND)
    scripted_server.answer("/v3/emails/activities/a2", (200, OK, {
        "campaign_activity_id": "a2", "campaign_id": "c2", "role": "primary_email",
        "current_status": "DRAFT", "subject": "Hello", "format_type": 5}))
    notes = ReadNotes()
    rows = _read("email_campaign_activities", client, notes)
    assert [(r["campaign_activity_id"], r["subject"]) for r in rows] == [("a2", "Hello")]
    assert notes.messages() == ["1 campaign activity could not be read (removed): a1"]


def test_an_event_deleted_before_its_detail_is_noted(
    scripted_server: Any, client: ApiClient
) -> None:
    scripted_server.answer("/v3/events", (200, OK, {"records": [
        {"event_id": "e1", "name": "One"}, {"event_id": "e2", "name": "Two"}],
        "total_records": 2}))
    scripted_server.answer("/v3/events/e1", (200, OK, {"event_id": "e1",
                                                        "time_zone": "US/Eastern"}))
    scripted_server.answer("/v3/events/e2", NOT_FOUND)
    notes = ReadNotes()
    rows = _read("events", client, notes)
    assert [(r["id"], r["time_zone_id"]) for r in rows] == [("e1", "US/Eastern")]
    assert notes.counts() == {"event_deleted": 1}
