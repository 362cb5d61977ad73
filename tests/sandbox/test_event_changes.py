"""The sandbox's events test hooks (``/_sandbox/events...``): registrations added and changed,
events edited, cancelled and deleted -- each seen over real HTTP in the v3 list, detail and
registrations (every v3 body checked against the contract), in v2 EventSpot and in the truth."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from v3_client import V3

from ctctsync.sandbox import Sandbox
from ctctsync.sandbox.account import AccountSpec
from ctctsync.sandbox.clock import ANCHOR_MS
from ctctsync.sandbox.testing import (
    SandboxFactory,
    add_event_registrations,
    cancel_event,
    delete_event,
    modify_event,
    sandbox_events,
    update_event_registration,
)

SPEC = AccountSpec(seed=11, contacts=80, lists=2, campaigns=2, activities_per_campaign=5,
                   library_files=0, trash_files=0, events=9)
NOW_MS = ANCHOR_MS + 86_400_000
"""The frozen sandbox clock: every change is stamped with it."""


@pytest.fixture
def sb(sandbox_factory: SandboxFactory) -> Sandbox:
    return sandbox_factory(SPEC, frozen_at_ms=NOW_MS)


@pytest.fixture
def v3(sb: Sandbox) -> Iterator[V3]:
    client = V3(sb)
    yield client
    client.http.close()


@pytest.fixture
def v2(sb: Sandbox) -> Iterator[httpx.Client]:
    c = sb.credentials
    with httpx.Client(base_url=sb.base_url, params={"api_key": c.api_key}, timeout=10,
                      headers={"Authorization": f"Bearer {c.access_token}"}) as client:
        yield client


def _ms(stamp: str) -> int:
    return int(dt.datetime.fromisoformat(stamp).timestamp() * 1000)


def _listed(v3: V3, event_id: str, params: dict[str, str] | None = None) -> dict[str, Any]:
    body = v3.get("/v3/events", params or {})
    [row] = [r for r in body["records"] if r["event_id"] == event_id]
    return row


def _registrations(v3: V3, event: dict[str, Any]) -> list[dict[str, Any]]:
    """Every registration of ``event`` (an admin summary), walking ``next_cursor``."""
    path = f"/v3/events/{event['event_id']}/tracks/{event['track_id']}/registrations"
    body = v3.get(path, {"limit": "100"})
    rows = list(body["records"])
    while body.get("next_cursor"):
        body = v3.get(path, {"next": body["next_cursor"]})
        rows.extend(body["records"])
    return rows


def _v2_detail(v2: httpx.Client, event: dict[str, Any]) -> dict[str, Any]:
    r = v2.get(f"/v2/eventspot/events/{event['v2_id']}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _admin(sb: Sandbox, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{sb.base_url}/_sandbox{path}", json=body, timeout=10)


def _paid_event(sb: Sandbox) -> dict[str, Any]:
    """An ACTIVE paid event with registrations (registration payments are not null)."""
    regs = sb.truth("event_registrations")
    for event in sandbox_events(sb):
        if event["status"] == "ACTIVE" and any(
                r["event_id"] == event["event_id"] and r["payment_status"] for r in regs):
            return event
    raise AssertionError("the spec has no ACTIVE paid event")


def test_summaries_agree_with_v3_v2_and_truth(sb: Sandbox, v3: V3, v2: httpx.Client) -> None:
    events = sandbox_events(sb)
    assert len(events) == SPEC.events
    truth = sb.truth("event_registrations")
    for event in events[:4]:
        row = _listed(v3, event["event_id"])
        metrics = row["event_registration_summary_metrics"]
        assert (metrics["registration_count"], metrics["ticket_sold"]) == (
            event["registration_count"], event["ticket_sold"])
        detail = v3.get(f"/v3/events/{event['event_id']}")
        assert detail["last_update_time"] == event["last_update_time"]
        assert "deleted_time" not in detail and "cancelled_time" not in detail
        assert _v2_detail(v2, event)["total_registered_count"] == event["registration_count"]
        mine = [{k: v for k, v in r.items() if k not in ("event_id", "track_id")}
                for r in truth if r["event_id"] == event["event_id"]]
        assert sorted(mine, key=lambda r: r["registration_id"]) == sorted(
            _registrations(v3, event), key=lambda r: r["registration_id"])


def test_added_registrations_raise_the_counts(sb: Sandbox, v3: V3, v2: httpx.Client) -> None:
    event = _paid_event(sb)
    before_detail = v3.get(f"/v3/events/{event['event_id']}")
    answer = add_event_registrations(sb, event["event_id"], 3)
    new_ids = answer["registration_ids"]
    assert len(new_ids) == 3
    rows = {r["registration_id"]: r for r in _registrations(v3, answer)}
    new = [rows[i] for i in new_ids]
    assert all(r["registration_status"] == "REGISTERED" and r["payment_status"] == "PAID"
               and _ms(r["registration_time"]) == NOW_MS and r["checkedIn_tickets"] == 0
               for r in new)
    tickets = sum(r["tickets"] for r in new)
    metrics = _listed(v3, event["event_id"])["event_registration_summary_metrics"]
    assert metrics["registration_count"] == event["registration_count"] + 3
    assert metrics["ticket_sold"] == event["ticket_sold"] + tickets
    assert (answer["registration_count"], answer["ticket_sold"]) == (
        metrics["registration_count"], metrics["ticket_sold"])
    assert _v2_detail(v2, event)["total_registered_count"] == event["registration_count"] + 3
    # the event itself is not edited by a registration (UNCONFIRMED)
    assert v3.get(f"/v3/events/{event['event_id']}") == before_detail
    # the registrants are contacts of the account, with their v3 contact ids
    path = f"/v3/events/{event['event_id']}/tracks/{event['track_id']}/registrations"
    one = v3.get(f"{path}/{new_ids[0]}")
    assert one["contact_id"] is not None
    assert one["order_summary"]["payment_status"] == "PAID"
    truth_ids = {r["registration_id"] for r in sb.truth("event_registrations")}
    assert set(new_ids) <= truth_ids


def test_payment_and_checkin_keep_counts_cancel_drops_them(
        sb: Sandbox, v3: V3, v2: httpx.Client) -> None:
    event = _paid_event(sb)
    [rid] = add_event_registrations(sb, event["event_id"], 1)["registration_ids"]
    counted = sandbox_events(sb)[event["index"]]
    paid = update_event_registration(sb, event["v2_id"], rid, payment_status="pending",
                                     checked_in=True)
    assert paid["registration"]["payment_status"] == "PENDING"
    assert paid["registration"]["checkin_status"] == "CHECKED_IN"
    assert (paid["registration_count"], paid["ticket_sold"]) == (
        counted["registration_count"], counted["ticket_sold"])
    assert _listed(v3, event["event_id"])["event_registration_summary_metrics"][
        "registration_count"] == counted["registration_count"]
    path = f"/v3/events/{event['event_id']}/tracks/{event['track_id']}/registrations"
    assert v3.get(f"{path}/{rid}")["order_summary"]["payment_status"] == "PENDING"
    tickets = paid["registration"]["tickets"]

    canceled = update_event_registration(sb, event["event_id"], rid,
                                         registration_status="CANCELED")
    assert canceled["registration"]["registration_status"] == "CANCELED"
    assert canceled["registration"]["payment_status"] == "REFUNDED"
    assert canceled["registration_count"] == counted["registration_count"] - 1
    assert canceled["ticket_sold"] == counted["ticket_sold"] - tickets
    metrics = _listed(v3, event["event_id"])["event_registration_summary_metrics"]
    assert metrics["registration_count"] == counted["registration_count"] - 1
    assert _v2_detail(v2, event)["total_registered_count"] == counted["registration_count"] - 1
    [in_truth] = [r for r in sb.truth("event_registrations") if r["registration_id"] == rid]
    assert in_truth["registration_status"] == "CANCELED"
    assert v3.get(path, {"registration_status": "CANCELED"})["records"]

    again = update_event_registration(sb, event["event_id"], rid,
                                      registration_status="REGISTERED", payment_status="PAID")
    assert again["registration_count"] == counted["registration_count"]


def test_refused_registration_changes(sb: Sandbox) -> None:
    event = _paid_event(sb)
    [rid] = add_event_registrations(sb, event["event_id"], 1)["registration_ids"]
    base = f"/events/{event['event_id']}/registrations"
    assert _admin(sb, f"{base}/{rid}/update", {"payment_status": "GIFT"}).status_code == 400
    assert _admin(sb, f"{base}/{rid}/update", {"checked_in": 9}).status_code == 400
    other = "00000000-0000-4000-8000-000000000000"
    assert _admin(sb, f"{base}/{other}/update", {"payment_status": "PAID"}).status_code == 404
    assert _admin(sb, f"/events/{other}/registrations/add", {"n": 1}).status_code == 404
    assert _admin(sb, f"{base}/add", {"n": "x"}).status_code == 400
    assert sandbox_events(sb)[event["index"]]["registration_count"] == \
        event["registration_count"] + 1


def test_modified_event_shows_everywhere(sb: Sandbox, v3: V3, v2: httpx.Client) -> None:
    event = sandbox_events(sb)[0]
    answer = modify_event(sb, event["event_id"], name="Renamed event", title="New title",
                          time_zone="US/Pacific")
    assert _ms(answer["last_update_time"]) == NOW_MS
    row = _listed(v3, event["event_id"])
    assert (row["name"], row["title"], row["time_zone_type"]) == (
        "Renamed event", "New title", "PST")
    detail = v3.get(f"/v3/events/{event['event_id']}", {"include": "true"})
    assert (detail["time_zone"], detail["time_zone_abbreviation"]) == ("US/Pacific", "PST")
    assert _ms(detail["last_update_time"]) == NOW_MS
    assert _ms(detail["default_track"]["last_update_time"]) == NOW_MS
    assert v3.get("/v3/events", {"sort_by": "updated_time", "sort_order": "DESC"})[
        "records"][0]["event_id"] == event["event_id"]
    v2_row = _v2_detail(v2, event)
    assert (v2_row["name"], v2_row["title"], v2_row["time_zone_id"]) == (
        "Renamed event", "New title", "US/Pacific")
    [in_truth] = [e for e in sb.truth("events") if e["id"] == event["v2_id"]]
    assert in_truth["name"] == "Renamed event"
    # names are unique (§3.11); time zones are a known few; counts untouched
    taken = sandbox_events(sb)[1]["name"]
    assert _admin(sb, f"/events/{event['event_id']}/modify", {"name": taken}).status_code == 400
    assert _admin(sb, f"/events/{event['event_id']}/modify",
                  {"time_zone": "Mars/Base"}).status_code == 400
    assert answer["registration_count"] == event["registration_count"]
    assert modify_event(sb, event["event_id"])["title"] == "New title (edited)"


@pytest.mark.parametrize(("change", "status", "stamp"), [
    pytest.param(cancel_event, "CANCELLED", "cancelled_time", id="cancel"),
    pytest.param(delete_event, "DELETED", "deleted_time", id="delete"),
])
def test_cancelled_or_deleted_event_stays_listed(
        sb: Sandbox, v3: V3, v2: httpx.Client, change: Any, status: str, stamp: str) -> None:
    event = next(e for e in sandbox_events(sb) if e["status"] == "ACTIVE")
    regs = _registrations(v3, event)
    answer = change(sb, event["event_id"])
    assert answer["status"] == status
    row = _listed(v3, event["event_id"])  # the default list still shows it (UNCONFIRMED)
    assert row["status"] == status
    assert _listed(v3, event["event_id"], {"event_status": status})["status"] == status
    assert row["event_registration_summary_metrics"]["registration_count"] == \
        event["registration_count"]
    detail = v3.get(f"/v3/events/{event['event_id']}")
    assert detail["status"] == status
    assert _ms(detail[stamp]) == _ms(detail["last_update_time"]) == NOW_MS
    assert _registrations(v3, event) == regs
    v2_row = _v2_detail(v2, event)
    assert v2_row["status"] == status
    assert v2_row[stamp.replace("_time", "_date")]
    assert [e["status"] for e in sb.truth("events") if e["id"] == event["v2_id"]] == [status]


def test_a_deleted_event_cannot_be_cancelled(sb: Sandbox) -> None:
    event = sandbox_events(sb)[0]
    delete_event(sb, event["event_id"])
    assert delete_event(sb, event["event_id"])["status"] == "DELETED"  # idempotent
    assert _admin(sb, f"/events/{event['event_id']}/cancel", {}).status_code == 400


def test_concurrent_additions_all_count(sb: Sandbox) -> None:
    event = sandbox_events(sb)[0]
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(
            lambda _: add_event_registrations(sb, event["event_id"], 2), range(8)))
    ids = {i for a in answers for i in a["registration_ids"]}
    assert len(ids) == 16
    assert sandbox_events(sb)[0]["registration_count"] == event["registration_count"] + 16
