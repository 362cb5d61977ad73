"""The event planner (sync/events.py) and its setting (TrackingPolicy.events_every_hours):
pure decisions, and the ledger one read leaves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ctctsync.config import TrackingPolicy, parse_config
from ctctsync.control.settings import ControlSettings
from ctctsync.errors import ConfigError
from ctctsync.sync.events import (
    EventRun,
    columns_key,
    detail_reason,
    fingerprint,
    is_live,
    plan_events,
    registrations_reason,
)

NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)
POLICY = TrackingPolicy()
COLUMNS = columns_key(["registration_id", "event_id", "payment_status"])


def _event(n: int = 1, *, count: int = 3, start_days: float = 30.0) -> dict[str, Any]:
    """An event list record starting ``start_days`` from NOW, lasting 3 hours."""
    start = NOW + timedelta(days=start_days)
    return {"event_id": f"e{n}", "name": f"Event {n}", "status": "ACTIVE",
            "start_time": start.isoformat(), "end_time": (start + timedelta(hours=3)).isoformat(),
            "event_registration_summary_metrics": {"registration_count": count,
                                                   "ticket_sold": count, "item_sold": 0}}


def _entry(event: dict[str, Any], *, read_hours: float = 1.0, detail_days: float = 1.0,
           track: str = "t1", columns: str = COLUMNS) -> dict[str, Any]:
    return {"fingerprint": fingerprint(event), "time_zone": "US/Eastern",
            "active_time": "2026-01-01T00:00:00Z", "track_id": track,
            "detail_at": (NOW - timedelta(days=detail_days)).isoformat(),
            "read_at": (NOW - timedelta(hours=read_hours)).isoformat(), "columns": columns}


def test_fingerprint_is_canonical_and_sees_any_change() -> None:
    event = _event()
    assert fingerprint(event) == fingerprint(dict(reversed(list(event.items()))))
    assert fingerprint(event) != fingerprint(_event(count=4))
    assert fingerprint(event) != fingerprint({**event, "status": "CANCELLED"})
    assert columns_key(["b", "a"]) == columns_key(["a", "b"]) != columns_key(["a"])


def test_detail_is_read_when_new_changed_or_at_its_monthly_slot() -> None:
    event = _event()
    now_print = fingerprint(event)
    assert detail_reason("e1", now_print, None, NOW, POLICY) == "new"
    assert detail_reason("e1", now_print, {"fingerprint": now_print}, NOW, POLICY) == "new"
    assert detail_reason("e1", fingerprint(_event(count=9)), _entry(event), NOW,
                         POLICY) == "changed"
    for eid in ("e1", "e2", "0c1d2e3f-aaaa"):
        entry = _entry({**event, "event_id": eid}, detail_days=0)
        assert detail_reason(eid, entry["fingerprint"], entry, NOW, POLICY) is None
        # a slot always comes within one recheck period of the last read
        old = _entry({**event, "event_id": eid}, detail_days=POLICY.recheck_days)
        assert detail_reason(eid, old["fingerprint"], old, NOW, POLICY) == "recheck"


@pytest.mark.parametrize(("start_hours", "live"), [
    pytest.param(25, False, id="starts-in-25h"),
    pytest.param(24, True, id="starts-in-24h"),
    pytest.param(0, True, id="running"),
    pytest.param(-3 - 24, True, id="ended-24h-ago"),
    pytest.param(-3 - 25, False, id="ended-25h-ago"),
])
def test_an_event_is_live_from_a_day_before_its_start_to_a_day_after_its_end(
        start_hours: float, live: bool) -> None:
    assert is_live(_event(start_days=start_hours / 24), NOW) is live


def test_an_event_without_times_is_not_live() -> None:
    assert not is_live({"event_id": "e1"}, NOW)
    assert is_live({"start_time": NOW.isoformat()}, NOW)  # no end: its start counts


def test_registrations_reasons_in_order() -> None:
    event = _event()
    fp = fingerprint(event)
    entry = _entry(event, read_hours=0)

    def why(**kw: Any) -> str | None:
        args: dict[str, Any] = {"record": event, "print_": fp, "entry": entry, "now": NOW,
                                "policy": POLICY, "columns": COLUMNS, **kw}
        return registrations_reason(**args)

    assert why() is None
    assert why(entry=None) == "new"
    assert why(entry={**entry, "read_at": None}) == "new"
    assert why(print_=fingerprint(_event(count=4))) == "changed"
    assert why(columns=columns_key(["registration_id", "total"])) == "columns"
    assert why(track_id="t2") == "track"
    assert why(track_id="t1") is None  # the detail read again, the same track
    assert why(record=_event(start_days=0.5)) == "live"
    assert why(entry=_entry(event, read_hours=24)) == "slot"  # a day since its last read
    assert why(policy=TrackingPolicy(events_every_hours=0)) == "slot"  # 0: every run


def test_registration_slots_are_staggered_once_a_day() -> None:
    """Events read at the same moment come due spread over the day, each once a day."""
    events = [_event(n) for n in range(200)]
    read_at = {e["event_id"]: NOW for e in events}
    due_hours: dict[str, list[int]] = {e["event_id"]: [] for e in events}
    for hour in range(1, 25):  # a day of hourly runs
        at = NOW + timedelta(hours=hour)
        for e in events:
            entry = {**_entry(e), "read_at": read_at[e["event_id"]].isoformat()}
            if registrations_reason(e, entry["fingerprint"], entry, at, POLICY, COLUMNS):
                due_hours[e["event_id"]].append(hour)
                read_at[e["event_id"]] = at
    assert all(len(hours) == 1 for hours in due_hours.values())  # each once in the day
    assert len({hours[0] for hours in due_hours.values()}) > 12  # not all in the same runs


def _read(run: EventRun, events: list[dict[str, Any]], track: str = "t1") -> list[str]:
    """What a reader does with ``run``: the ids whose detail it would read."""
    details = []
    for event in events:
        detail = run.known_detail(event)
        if detail is None:
            details.append(event["event_id"])
            detail = {"time_zone": "US/Eastern", "active_time": None, "track_id": track}
        regs = run.role == "registrations" and run.reads_registrations(event, detail)
        run.read(event, detail, registrations=regs)
    return details


def test_a_ledger_over_three_runs() -> None:
    events = [_event(1), _event(2), _event(3, start_days=0.1)]  # e3 is live
    cols = ["registration_id", "event_id", "payment_status"]
    first = plan_events("event_registrations", {}, now=NOW, policy=POLICY, columns=cols,
                        full_refresh=False)
    assert first is not None and first.whole and not first.prunes
    assert _read(first, events) == ["e1", "e2", "e3"]
    assert first.reread == {"e1", "e2", "e3"}
    ledger = first.ledger_after(pruned=True)

    later = NOW + timedelta(minutes=5)
    events[1] = _event(2, count=4)  # a registration added to e2
    second = plan_events("event_registrations", ledger, now=later, policy=POLICY,
                         columns=cols, full_refresh=False)
    assert second is not None and second.prunes
    assert _read(second, events) == ["e2"]  # the changed one's detail only
    assert second.reread == {"e2", "e3"} and second.kept == {"e1"}
    assert second.reasons == {"detail changed": 1, "changed": 1, "live": 1}
    assert second.summary_line() == ("3 listed, 0 new, 1 changed, 1 details read, "
                                     "registrations of 2 read (1 changed, 1 live)")
    after = second.ledger_after(pruned=True)
    assert after["e2"]["fingerprint"] == fingerprint(events[1])
    assert after["e2"]["read_at"] == later.isoformat()
    assert after["e1"] == ledger["e1"]

    # a read that noted a loss prunes nothing: the events read again keep their old entry,
    # so the next run reads them again (e2 still looks changed)
    unpruned = second.ledger_after(pruned=False)
    assert unpruned["e2"] == ledger["e2"] and unpruned["e1"] == ledger["e1"]
    third = plan_events("event_registrations", unpruned, now=later, policy=POLICY,
                        columns=cols, full_refresh=False)
    assert third is not None
    _read(third, events)
    assert "e2" in third.reread

    # an event gone from the list leaves the ledger
    gone = plan_events("event_registrations", after, now=later, policy=POLICY, columns=cols,
                       full_refresh=False)
    assert gone is not None
    _read(gone, events[1:])
    assert set(gone.ledger_after(pruned=True)) == {"e2", "e3"}


def test_events_table_reads_details_only_when_needed_and_never_prunes() -> None:
    events = [_event(1), _event(2)]
    first = plan_events("events", {}, now=NOW, policy=POLICY, columns=["id"],
                        full_refresh=False)
    assert first is not None
    assert _read(first, events) == ["e1", "e2"]
    ledger = first.ledger_after(pruned=False)  # a replaced table: nothing to revert
    assert set(ledger) == {"e1", "e2"}
    again = plan_events("events", ledger, now=NOW + timedelta(hours=1), policy=POLICY,
                        columns=["id"], full_refresh=False)
    assert again is not None and not again.prunes
    assert again.known_detail(events[0]) == {"time_zone": "US/Eastern", "active_time": None,
                                            "track_id": "t1"}
    assert again.summary_line() == "0 listed, 0 new, 0 changed, 0 details read"
    refresh = plan_events("events", ledger, now=NOW, policy=POLICY, columns=["id"],
                          full_refresh=True)
    assert refresh is not None and refresh.whole
    assert _read(refresh, events) == ["e1", "e2"]  # a full refresh reads every detail
    assert plan_events("contacts", ledger, now=NOW, policy=POLICY, columns=["id"],
                       full_refresh=False) is None


def test_events_every_hours_setting() -> None:
    assert TrackingPolicy().events_every_hours == 24
    assert parse_config({"tracking": {"events_every_hours": 0}}).tracking.events_every_hours == 0
    with pytest.raises(ConfigError) as err:
        parse_config({"tracking": {"events_every_hours": -1}})
    assert "tracking.events_every_hours" in str(err.value)
    settings = ControlSettings(tracking_events_every_hours=6)
    assert settings.tracking_policy().events_every_hours == 6
