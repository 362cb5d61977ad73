"""The sandbox's v3 events and registrations (constant-contact-v3-api.md §3.11), over real HTTP,
every body checked against the official contract."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from v3_contract import operation_for, validate

from ctctsync.sandbox import Sandbox
from ctctsync.sandbox.account import AccountSpec
from ctctsync.sandbox.testing import SandboxFactory

SPEC = AccountSpec(seed=11, contacts=80, lists=2, campaigns=2, activities_per_campaign=5,
                   library_files=0, trash_files=0, events=9)
"""Enough events for several pages, with registrations (seeded 0..250 per event)."""


class V3:
    """A v3 client that checks every answer against the contract."""

    def __init__(self, sb: Sandbox) -> None:
        self.http = httpx.Client(base_url=sb.base_url, timeout=10, headers={
            "Authorization": f"Bearer {sb.v3_tokens.issue_access_token()}"})

    def get(self, path: str, params: Any = None, status: int = 200) -> Any:
        r = self.http.get(path, params=params) if params is not None else self.http.get(path)
        assert r.status_code == status, (path, r.status_code, r.text[:500])
        template = operation_for(path)
        assert template is not None, path
        validate("GET", template, r.status_code, r.json())
        return r.json()

    def walk(self, path: str, params: dict[str, Any]) -> tuple[list[Any], list[Any]]:
        """Follow ``next_cursor`` (given back as ``?next=``, §1.3): every record and body."""
        body = self.get(path, params)
        bodies, seen = [body], set()
        while "next_cursor" in body:
            cursor = body["next_cursor"]
            assert cursor not in seen, "a paging loop"
            seen.add(cursor)
            assert body["_links"]["next"]["href"].endswith(f"?next={cursor}")
            body = self.get(path, {"next": cursor})  # the cursor carries the query
            bodies.append(body)
        return [r for b in bodies for r in b["records"]], bodies


@pytest.fixture
def events_sandbox(sandbox_factory: SandboxFactory) -> Sandbox:
    return sandbox_factory(SPEC)


@pytest.fixture
def v3(events_sandbox: Sandbox) -> Iterator[V3]:
    client = V3(events_sandbox)
    yield client
    client.http.close()


def test_events_cursor_paging_complete_stable_and_back(events_sandbox: Sandbox, v3: V3) -> None:
    records, bodies = v3.walk("/v3/events", {"limit": 2})
    events = events_sandbox.context.account.events
    assert len(records) == len({r["event_id"] for r in records}) == len(events)
    assert len(bodies) == 5 and all(b["total_records"] == len(events) for b in bodies)
    assert "next_cursor" not in bodies[-1] and "prev_cursor" not in bodies[0]
    created = [r["create_time"] for r in records]
    assert created == sorted(created, reverse=True)  # the sandbox's default: newest first
    assert {r["name"] for r in records} == {e.name for e in events}
    back = v3.get("/v3/events", {"prev": bodies[2]["prev_cursor"]})
    assert back["records"] == bodies[1]["records"]  # prev_cursor goes one page back
    assert v3.get("/v3/events", {"limit": 2})["records"] == bodies[0]["records"]  # stable
    default = v3.get("/v3/events")
    assert len(default["records"]) == len(events) and "next_cursor" not in default


def test_events_filters_sorting_and_bad_params(events_sandbox: Sandbox, v3: V3) -> None:
    events = events_sandbox.context.account.events
    for status in {e.status for e in events}:
        rows, _ = v3.walk("/v3/events", {"event_status": status, "limit": 1})
        assert len(rows) == sum(1 for e in events if e.status == status)
        assert {r["status"] for r in rows} == {status}
    by_name = v3.get("/v3/events", {"sort_by": "name"})["records"]  # ASC by default (§1.8)
    assert [r["name"] for r in by_name] == sorted((e.name for e in events), key=str.lower)
    desc = v3.get("/v3/events", {"sort_by": "start_time", "sort_order": "DESC"})["records"]
    assert [r["start_time"] for r in desc] == sorted((r["start_time"] for r in desc),
                                                     reverse=True)
    hits = v3.get("/v3/events", {"search_text": events[0].title.upper()})["records"]
    assert events[0].name in {r["name"] for r in hits}
    for params in ({"limit": "101"}, {"limit": "0"}, {"event_status": "NOPE"},
                   {"sort_by": "colour"}, {"sort_order": "UP"}, {"next": "!!"},
                   {"next": "bGltaXQ9MQ"}):  # base64 of "limit=1": no offset
        assert isinstance(v3.get("/v3/events", params, status=400), list)


def test_event_detail(events_sandbox: Sandbox, v3: V3) -> None:
    records = v3.get("/v3/events")["records"]
    for row in records:
        detail = v3.get(f"/v3/events/{row['event_id']}", {"include": "true"})
        assert detail["campaign_id"] == detail["event_id"] == row["event_id"]
        assert (detail["event_start"], detail["name"]) == (row["start_time"], row["name"])
        assert len(detail["default_track"]["track_id"]) == 6
        assert "event_settings" in detail
        assert "event_settings" not in v3.get(f"/v3/events/{row['event_id']}")
    v3.get("/v3/events/00000000-0000-4000-8000-000000000000", status=404)
    v3.get(f"/v3/events/{records[0]['event_id']}", {"include": "maybe"}, status=400)


def test_registrations_match_the_event_and_v2(events_sandbox: Sandbox, v3: V3) -> None:
    account = events_sandbox.context.account
    v2_by_name = {e.name: e.registered for e in account.events}  # v2 total_registered_count
    checked = 0
    for row in v3.get("/v3/events")["records"]:
        track = v3.get(f"/v3/events/{row['event_id']}")["default_track"]["track_id"]
        path = f"/v3/events/{row['event_id']}/tracks/{track}/registrations"
        regs, bodies = v3.walk(path, {"limit": 40})
        assert len(regs) == len({r["registration_id"] for r in regs}) == bodies[0][
            "total_records"]
        registered = [r for r in regs if r["registration_status"] == "REGISTERED"]
        metrics = row["event_registration_summary_metrics"]
        assert len(registered) == metrics["registration_count"] == v2_by_name[row["name"]]
        assert sum(r["tickets"] for r in registered) == metrics["ticket_sold"]
        assert all("checkedIn_tickets" in r and r["track_key"] == track for r in regs)
        checked += len(regs)
        if regs:
            one = v3.get(f"{path}/{regs[0]['registration_id']}")
            assert one["registration_id"] == regs[0]["registration_id"]
            assert one["registration_status"] == regs[0]["registration_status"]
            assert len(one["tickets"]) == regs[0]["tickets"]
    assert checked > 100


def test_registration_filters_and_errors(events_sandbox: Sandbox, v3: V3) -> None:
    row = max(v3.get("/v3/events")["records"],
              key=lambda r: r["event_registration_summary_metrics"]["registration_count"])
    track = v3.get(f"/v3/events/{row['event_id']}")["default_track"]["track_id"]
    path = f"/v3/events/{row['event_id']}/tracks/{track}/registrations"
    everyone, _ = v3.walk(path, {"limit": 100})
    for status in {r["registration_status"] for r in everyone}:
        rows, _ = v3.walk(path, {"registration_status": status, "limit": 7})
        assert len(rows) == sum(1 for r in everyone if r["registration_status"] == status)
    paid = [r for r in everyone if r.get("payment_status") == "PAID"]
    assert len(v3.walk(path, {"payment_status": "PAID"})[0]) == len(paid)
    by_total = v3.get(path, {"sort_by": "total", "sort_order": "DESC"})["records"]
    assert [r["total"] for r in by_total] == sorted((r["total"] for r in by_total),
                                                    reverse=True)
    assert len(v3.get(path, {"page_size": 3})["records"]) == 3
    v3.get(path, {"page_size": 3, "limit": 4}, status=400)  # must match if both (§1.3)
    v3.get(path, {"registration_status": "MAYBE"}, status=400)
    v3.get(path, {"limit": "101"}, status=400)
    v3.get(f"/v3/events/{row['event_id']}/tracks/nope00/registrations", status=404)
    v3.get(f"{path}/00000000-0000-4000-8000-000000000000", status=404)


def test_same_seed_same_ids(events_sandbox: Sandbox, sandbox_factory: SandboxFactory,
                            v3: V3) -> None:
    twin = V3(sandbox_factory(SPEC))
    assert twin.get("/v3/events")["records"] == v3.get("/v3/events")["records"]
    twin.http.close()


def test_events_need_campaign_data(events_sandbox: Sandbox) -> None:
    token = events_sandbox.v3_tokens.issue_access_token(["contact_data"])
    with httpx.Client(base_url=events_sandbox.base_url,
                      headers={"Authorization": f"Bearer {token}"}) as client:
        r = client.get("/v3/events")
        assert r.status_code == 403 and isinstance(r.json(), list)
