"""The API budget of v3 runs end to end (issue 10): an unchanged incremental run costs one
call per table plus one stats call for every campaign due (up to 150), with no campaign
detail and no tracking report; activity added to an old campaign and activity retracted
from another cost exactly the reports of the kinds that moved, and the warehouse ends equal
to the v3 truth.

The sandbox runs the "decay" activity model on a frozen clock (campaigns sent one every 35
days up to two days before the clock's now), as tests/e2e/test_budget_v2.py does for v2.
"""

from __future__ import annotations

from typing import Any

import pytest
from v3_helpers import make_v3_config
from v3_truth import V3Truth, assert_v3_matches

from ctctsync.api.v3.endpoints import STATS_ENDPOINT
from ctctsync.config import SyncConfig, WarehouseConfig
from ctctsync.sandbox import AccountSpec, Sandbox
from ctctsync.sandbox.clock import ANCHOR_MS
from ctctsync.sync import run_sync

SPEC = AccountSpec(seed=23, contacts=300, lists=3, campaigns=7, activities_per_campaign=60,
                   library_files=1, trash_files=1, events=0, activity_model="decay",
                   send_every_days=35.0)
TABLES = {"contact_tracking": "*", "email_campaign_summary": "*"}
REPORT = "GET /v3/reports/email_reports/{campaign_activity_id}/tracking/"
DETAIL = "GET /v3/emails/{campaign_id}"
SUMMARIES = "GET /v3/reports/summary_reports/email_campaign_summaries"
EVERY_RUN = {"tiers": [[0, 0]]}
"""Every campaign checked on every run whatever its age, so activity on an old campaign is
seen by the next run (the tiers' own delays are test_budget_v2's subject)."""
KINDS = ("sends", "opens", "clicks", "forwards", "bounces", "unsubscribes")


def _calls(sb: Sandbox, prefix: str) -> int:
    endpoints = sb.counters.snapshot()["endpoints"]
    return sum(int(n["total"]) for name, n in endpoints.items() if name.startswith(prefix))


def _sent(sb: Sandbox) -> list[int]:
    """The SENT campaigns, oldest send first."""
    sent = [c for c in sb.account.campaigns.values() if c.status == "SENT"]
    return [c.id for c in sorted(sent, key=lambda c: c.last_run_ms or 0)]


def _counts(sb: Sandbox) -> dict[tuple[int, str], int]:
    """(campaign, kind) -> its visible activities now (what the reports list)."""
    return {(cid, kind): n for cid in _sent(sb)
            for kind, n in sb.account.campaign_counts(cid).items() if kind in KINDS}


def _sync(sb: Sandbox, cfg: SyncConfig) -> Any:
    result = run_sync(cfg, clock=sb.account.clock.now)
    assert result.status == "succeeded", result.error
    return result


def _match(sb: Sandbox, wcfg: WarehouseConfig) -> None:
    truth = V3Truth(sb)
    assert assert_v3_matches(truth, wcfg, "contact_tracking") > 0
    assert_v3_matches(truth, wcfg, "email_campaign_summary")


@pytest.fixture
def decay_sb(sandbox_factory: Any) -> Sandbox:
    sb: Sandbox = sandbox_factory(SPEC, frozen_at_ms=ANCHOR_MS)
    assert len(_sent(sb)) >= 4
    return sb


def test_an_unchanged_incremental_run_costs_tables_plus_one(
        decay_sb: Sandbox, duckdb_warehouse: WarehouseConfig, make_config: Any) -> None:
    sb = decay_sb
    cfg = make_v3_config(make_config, sb, duckdb_warehouse, tables=TABLES, tracking=EVERY_RUN)
    _sync(sb, cfg)
    sb.counters.reset()

    again = _sync(sb, cfg)
    # every campaign is due and scanned in one stats call; nothing moved, so no report is
    # read, and the ledger's activity ids spare every campaign detail
    assert sb.counters.count(STATS_ENDPOINT) == 1
    assert _calls(sb, REPORT) == 0
    assert sb.counters.count(DETAIL) == 0
    assert sb.counters.count(SUMMARIES) == 1  # the summary table's; the send dates are kept
    assert again.tables["contact_tracking"].api_calls == 2  # the campaign list + the stats
    assert again.tables["contact_tracking"].rows == 0
    assert again.api_calls == len(TABLES) + 1
    _match(sb, duckdb_warehouse)


@pytest.mark.slow  # ~11 s: four runs
def test_new_activity_on_an_old_campaign_and_a_retraction(
        decay_sb: Sandbox, duckdb_warehouse: WarehouseConfig, make_config: Any) -> None:
    sb = decay_sb
    cfg = make_v3_config(make_config, sb, duckdb_warehouse, tables=TABLES, tracking=EVERY_RUN)
    _sync(sb, cfg)
    _match(sb, duckdb_warehouse)
    before = _counts(sb)

    oldest, young = _sent(sb)[0], _sent(sb)[-1]
    sb.account.send_campaign(oldest, activities=20)
    sb.advance(6 * 3600)  # the new activity (partly) becomes visible
    # sends are stamped at the send (only later kinds decay in): this count goes down
    assert len(sb.account.retract_activities(young, "sends", 2)) == 2
    after = _counts(sb)
    assert after[young, "sends"] == before[young, "sends"] - 2
    moved = {key for key in after if after[key] != before[key]}
    assert any(cid == oldest for cid, _ in moved)
    sb.counters.reset()

    run = _sync(sb, cfg)
    # exactly the reports of the kinds that moved (each fits a page), no detail
    assert _calls(sb, REPORT) == len(moved)
    assert sb.counters.count(DETAIL) == 0
    assert sb.counters.count(STATS_ENDPOINT) == 1
    assert run.api_calls == len(TABLES) + 1 + len(moved)
    _match(sb, duckdb_warehouse)  # the new rows loaded, the retracted ones pruned

    # the next run, with nothing new, reads no report
    sb.counters.reset()
    assert _sync(sb, cfg).api_calls == len(TABLES) + 1
    assert _calls(sb, REPORT) == 0
    _match(sb, duckdb_warehouse)
