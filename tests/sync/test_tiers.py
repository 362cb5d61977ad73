"""The tier policy (sync/tiers.py) and its configuration (config.TrackingPolicy): pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ctctsync.config import TrackingPolicy, parse_config
from ctctsync.errors import ConfigError
from ctctsync.sync.tiers import (
    check_reason,
    count_due,
    due,
    hourly,
    interval,
    recheck_due,
    recheck_phase,
    simulate_checks,
)

NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)
POLICY = TrackingPolicy()


def _entry(sent_days: float, checked_hours: float, full_days: float = 1.0) -> dict[str, str]:
    return {"sent_at": (NOW - timedelta(days=sent_days)).isoformat(),
            "checked_at": (NOW - timedelta(hours=checked_hours)).isoformat(),
            "full_at": (NOW - timedelta(days=full_days)).isoformat()}


@pytest.mark.parametrize(("age_days", "hours"), [(0, 0), (29.9, 0), (30, 24), (89, 24),
                                                 (90, 168), (2000, 168)])
def test_default_tiers_by_age(age_days: float, hours: int) -> None:
    assert interval(POLICY, timedelta(days=age_days)) == timedelta(hours=hours)


def test_due_by_tier_new_and_changed() -> None:
    assert due("1", None, NOW, POLICY)
    assert due("1", _entry(3, 0.01), NOW, POLICY)  # young: every run
    for cid in ("1", "2", "1100394172003"):
        # a tier slot always comes within one interval of the last check ...
        assert due(cid, _entry(45, 24), NOW, POLICY)
        assert due(cid, _entry(400, 168), NOW, POLICY)
        # ... and a check at this instant leaves it not due until its next slot
        assert not due(cid, _entry(45, 0), NOW, POLICY)
        assert not due(cid, _entry(400, 0), NOW, POLICY)
    # sent again since its last check: due whatever its tier
    checked = {**_entry(400, 0), "checked_at": (NOW - timedelta(hours=5)).isoformat()}
    at = NOW
    while due("1", checked, at, POLICY):  # find a run that is not due by its slot
        at += timedelta(minutes=1)
        checked["checked_at"] = (at - timedelta(hours=5)).isoformat()
    assert due("1", checked, at, POLICY, changed_at=at - timedelta(hours=1))
    assert not due("1", checked, at, POLICY, changed_at=at - timedelta(hours=6))
    # unknown send time: treated as just sent
    assert due("1", {"checked_at": NOW.isoformat()}, NOW, POLICY)


@pytest.mark.parametrize(("sent_days", "hours"), [(45, 24), (400, 168)])
def test_tier_checks_come_once_per_interval_at_the_campaigns_own_phase(
        sent_days: float, hours: int) -> None:
    entry = _entry(sent_days, 0)
    hits = []
    for hour in range(1, 3 * hours + 1):  # hourly runs over three intervals
        at = NOW + timedelta(hours=hour)
        if due("1100394172003", entry, at, POLICY):
            hits.append(at)
            entry["checked_at"] = at.isoformat()
    assert len(hits) == 3
    assert hits[0] - NOW <= timedelta(hours=hours)  # never longer than the interval
    assert hits[1] - hits[0] == timedelta(hours=hours) == hits[2] - hits[1]


def test_weekly_checks_of_one_first_load_are_spread_over_the_week() -> None:
    # the bench's 1M/500 account: 411 campaigns over 90 days old, all checked by its first
    # load; before the slots they came due together in one run a week later
    ledger = {str(1_100_000_000_000 + i): _entry(sent_days=100 + i, checked_hours=0,
                                                 full_days=0) for i in range(411)}
    week = simulate_checks(ledger, hourly(NOW + timedelta(hours=1), 7 * 24), POLICY)
    per_run = [d.due - d.rechecks for d in week]
    assert sum(d.due for d in week) >= 411  # each one checked in the week ...
    assert max(per_run) <= 12, max(per_run)  # ... about 411 / 168 a run, not 411 at once


def test_recheck_once_per_period_at_the_campaigns_own_slot() -> None:
    period = timedelta(days=POLICY.recheck_days)
    cid = "1100394172003"
    phase = recheck_phase(cid, period)
    assert timedelta(0) <= phase < period
    assert recheck_phase(cid, period) == phase  # stable across calls (and hosts)
    entry = {"sent_at": "2020-01-01T00:00:00+00:00", "full_at": NOW.isoformat()}
    hits = []
    for hour in range(1, 90 * 24 + 1):  # hourly runs for 90 days, each recheck read whole
        at = NOW + timedelta(hours=hour)
        if recheck_due(cid, entry, at, POLICY):
            hits.append(at)
            entry["full_at"] = at.isoformat()
    assert len(hits) == 3  # once in each of three periods ...
    assert hits[1] - hits[0] == period == hits[2] - hits[1]  # ... at the same slot
    assert recheck_due(cid, {"sent_at": "2020-01-01T00:00:00+00:00"}, NOW, POLICY)


def test_recheck_slots_are_staggered_across_campaigns() -> None:
    period = timedelta(days=30)
    days = {recheck_phase(str(1_100_000_000_000 + i), period).days for i in range(500)}
    assert len(days) == 30  # 500 campaigns spread over every day of the period


def test_check_reason_orders_new_changed_recheck_tier() -> None:
    assert check_reason("1", None, NOW, POLICY) == "new"
    assert check_reason("1", _entry(3, 1), NOW, POLICY) in ("tier", "recheck")
    assert check_reason("1", {"checked_at": NOW.isoformat(), "sent_at": "2020-01-01"},
                        NOW, POLICY) == "recheck"  # never read whole
    assert check_reason("1", _entry(400, 1, full_days=0.01), NOW, POLICY) is None


def test_count_due_and_a_simulated_day() -> None:
    ledger = {str(i): _entry(sent_days=i, checked_hours=0, full_days=0) for i in range(1, 201)}
    counted = count_due(ledger, NOW, POLICY)
    assert counted.due == 29 and counted.not_due == 171  # the campaigns younger than 30 days
    day = simulate_checks(ledger, hourly(NOW + timedelta(hours=1), 24), POLICY)
    assert len(day) == 24
    checks = sum(d.due for d in day)
    # every run: 29 young; once in the day: the 60 of 30-90 days; some weekly and rechecks
    assert 24 * 29 + 60 <= checks < 24 * 29 + 60 + 60, checks
    assert sum(d.rechecks for d in day) < 20


@pytest.mark.parametrize(("tracking", "message"), [
    ({"tiers": [[1, 0]]}, "first tier must start at 0 days"),
    ({"tiers": [[0, 0], [30, 24], [30, 48]]}, "must rise from tier to tier"),
    ({"tiers": [[0, 24], [30, 1]]}, "cannot be checked more often"),
    ({"tiers": [[0, 1, 2]]}, "a tier is [older_than_days, every_hours]"),
    ({"tiers": []}, "at least one tier"),
    ({"recheck_days": 0}, "recheck_days"),
    ({"every": 1}, "every"),
])
def test_policy_validation_errors_are_clear(tracking: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"tracking": tracking})
    assert message in str(err.value)


def test_policy_from_file_short_and_long_forms() -> None:
    cfg = parse_config({"tracking": {"tiers": [[0, 0], {"older_than_days": 14,
                                                        "every_hours": 12}],
                                     "recheck_days": 7}})
    assert interval(cfg.tracking, timedelta(days=20)) == timedelta(hours=12)
    assert cfg.tracking.recheck_days == 7
    assert parse_config({}).tracking == TrackingPolicy()
