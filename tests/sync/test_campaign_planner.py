"""The campaign planner's decisions (sync/campaigns.py): pure, from ledgers and scans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ctctsync.api.tracking import KINDS, SCAN_KEY, SUMMARY_KEY, TRACKING_KEY, CampaignScan
from ctctsync.config import TrackingPolicy
from ctctsync.sync.campaigns import TableInputs, plan_summary, plan_tracking

NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)
SCAN_AT = NOW - timedelta(seconds=1)
MARK = NOW - timedelta(hours=1)
LOOKBACK = timedelta(minutes=10)
POLICY = TrackingPolicy()
BASE = dict.fromkeys(KINDS, 10)


def _scan(cid: str, counts: dict[str, int], age_days: float = 3) -> CampaignScan:
    return CampaignScan(cid, counts, sent_at=NOW - timedelta(days=age_days),
                        summary={"campaign_id": cid, "sends": counts["EMAIL_SEND"]},
                        extra={"links": {"1": "https://x"}})


def _entry(age_days: float = 3, checked: datetime = MARK, full_days: float = 0.0,
           counts: dict[str, int] | None = None) -> dict[str, Any]:
    return {"sent_at": (NOW - timedelta(days=age_days)).isoformat(),
            "checked_at": checked.isoformat(),
            "counts": dict(counts or BASE),
            "marks": dict.fromkeys(KINDS, MARK.isoformat()),
            "full_at": (checked - timedelta(days=full_days)).isoformat(),
            "extra": {}}


def _plan(ledger: dict[str, Any], scans: dict[str, CampaignScan], sent: list[str] | None = None,
          **inputs: Any) -> Any:
    campaigns = [{"id": cid, "modified_date": "2020-01-01T00:00:00.000Z"}
                 for cid in (sent or sorted(scans))]
    return plan_tracking(campaigns, scans, TableInputs("contact_tracking", "tracking", ledger,
                                                       **inputs),
                         scan_at=SCAN_AT, now=NOW, policy=POLICY, lookback=LOOKBACK)


def _read(plan: Any, cid: str) -> dict[str, datetime | None] | None:
    for c in plan.campaigns:
        if c["id"] == cid:
            return dict(c[TRACKING_KEY].kinds) if TRACKING_KEY in c else None
    raise AssertionError(f"{cid} is not read")


def test_moved_up_reads_since_the_mark_unchanged_is_not_read_down_is_whole() -> None:
    counts = {**BASE, "EMAIL_OPEN": 12, "EMAIL_BOUNCE": 9}
    plan = _plan({"1": _entry(), "2": _entry()}, {"1": _scan("1", counts), "2": _scan("2", BASE)},
                 bookmarked=True)
    assert [c["id"] for c in plan.campaigns] == ["1"]  # campaign 2: nothing moved, no call
    assert _read(plan, "1") == {"EMAIL_OPEN": MARK - LOOKBACK, "EMAIL_BOUNCE": None}
    assert plan.prune == {"1": ("EMAIL_BOUNCE",)}
    entry = plan.entries["1"]
    assert entry["counts"] == counts
    assert entry["marks"]["EMAIL_OPEN"] == entry["marks"]["EMAIL_BOUNCE"] == SCAN_AT.isoformat()
    assert entry["marks"]["EMAIL_SEND"] == MARK.isoformat()  # not read: its mark stays
    assert entry["checked_at"] == SCAN_AT.isoformat()
    assert entry["extra"] == {"links": {"1": "https://x"}}
    assert plan.campaigns[0][SCAN_KEY].campaign_id == "1"  # links for the click reader
    assert plan.entries["2"]["checked_at"] == SCAN_AT.isoformat()


def test_new_campaign_is_read_whole_and_pruned_not_due_is_kept_untouched() -> None:
    old = _entry(age_days=200, checked=NOW - timedelta(hours=2), full_days=1)
    plan = _plan({"old": old}, {"new": _scan("new", BASE)}, sent=["new", "old"],
                 bookmarked=True)
    assert _read(plan, "new") == dict.fromkeys(KINDS)
    assert plan.prune == {"new": KINDS}
    assert plan.entries["new"]["full_at"] == SCAN_AT.isoformat()
    assert plan.entries["old"] == old  # weekly tier, checked 2 h ago: not due, not read
    assert [c["id"] for c in plan.campaigns] == ["new"]


def test_campaigns_no_longer_sent_leave_the_ledger() -> None:
    plan = _plan({"1": _entry(), "gone": _entry()}, {"1": _scan("1", BASE)}, bookmarked=True)
    assert set(plan.entries) == {"1"}


def test_first_run_reads_everything_whole_without_prune() -> None:
    plan = _plan({}, {"1": _scan("1", BASE)}, whole=True)
    assert _read(plan, "1") == dict.fromkeys(KINDS)
    assert plan.prune == {}  # the table is replaced
    assert plan.entries["1"]["full_at"] == SCAN_AT.isoformat()


def test_upgrade_reads_as_before_and_starts_the_ledger() -> None:
    plan = _plan({}, {"1": _scan("1", BASE)}, bookmarked=True, since=MARK)
    assert _read(plan, "1") is None  # no TRACKING_KEY: every kind from the table's since
    assert SCAN_KEY in plan.campaigns[0]
    assert plan.entries["1"]["counts"] == BASE and plan.prune == {}


def test_unscanned_due_campaign_reads_from_its_marks_and_keeps_its_entry() -> None:
    entry = _entry()
    plan = _plan({"1": entry}, {}, sent=["1"], bookmarked=True)
    assert _read(plan, "1") == dict.fromkeys(KINDS, MARK - LOOKBACK)
    assert plan.entries["1"] == entry and plan.prune == {}


def test_recheck_reads_every_kind_whole() -> None:
    plan = plan_tracking([{"id": "1"}], {"1": _scan("1", BASE)},
                         TableInputs("contact_tracking", "tracking", {"1": _entry()},
                                     bookmarked=True),
                         scan_at=SCAN_AT, now=NOW, policy=POLICY, lookback=LOOKBACK,
                         recheck_all=True)
    assert _read(plan, "1") == dict.fromkeys(KINDS)
    assert plan.prune == {"1": KINDS}


def test_a_skipped_prune_keeps_the_old_entry_so_the_next_run_reads_again() -> None:
    old = _entry()
    down = {**BASE, "EMAIL_UNSUBSCRIBE": 8}
    plan = _plan({"1": old},
                 {"1": _scan("1", down), "new": _scan("new", BASE)}, sent=["1", "new"],
                 bookmarked=True)
    assert plan.ledger_after(pruned=True)["1"]["counts"] == down
    kept = plan.ledger_after(pruned=False)
    assert kept["1"] == old and "new" not in kept


def test_summary_rows_from_scan_or_ledger() -> None:
    young, old = _scan("young", BASE), {"sent_at": "2020-01-01T00:00:00+00:00",
                                        "checked_at": MARK.isoformat(),
                                        "summary": {"campaign_id": "old", "sends": 3}}
    plan = plan_summary([{"id": "young"}, {"id": "old"}, {"id": "fresh"}], {"young": young},
                        TableInputs("email_campaign_summary", "summary", {"old": old}),
                        scan_at=SCAN_AT, now=NOW, policy=POLICY)
    rows = {c["id"]: c.get(SUMMARY_KEY) for c in plan.campaigns}
    assert rows == {"young": young.summary, "old": old["summary"], "fresh": None}
    assert plan.entries["old"] == old and "fresh" not in plan.entries
    assert plan.entries["young"]["summary"] == young.summary


def test_a_read_since_the_mark_short_of_the_counts_rise_is_read_whole_next_time() -> None:
    counts = {**BASE, "EMAIL_OPEN": 15, "EMAIL_CLICK": 11}
    plan = _plan({"1": _entry()}, {"1": _scan("1", counts)}, bookmarked=True)
    assert plan.expected == {("1", "EMAIL_OPEN"): 5, ("1", "EMAIL_CLICK"): 1}
    # the lookback overlap may bring more rows than the rise: fine; fewer: rows were missed
    short = plan.short_reads({("1", "EMAIL_OPEN"): 3, ("1", "EMAIL_CLICK"): 4})
    assert short == [("1", "EMAIL_OPEN", 5, 3)]
    entry = plan.ledger_after(pruned=True, short=short)["1"]
    assert "EMAIL_OPEN" not in entry["marks"] and "EMAIL_CLICK" in entry["marks"]
    # next run: the kind without a mark is read whole (and pruned), though its count is still
    nxt = _plan({"1": entry}, {"1": _scan("1", counts)}, bookmarked=True)
    assert _read(nxt, "1") == {"EMAIL_OPEN": None}
    assert nxt.prune == {"1": ("EMAIL_OPEN",)}
