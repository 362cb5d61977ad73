"""The campaign planner on the v2 path against the sandbox (issue 10, API budget): unchanged
campaigns cost no tracking call, activity on an old campaign is loaded at its next check
(not lost), counts that go down are pruned to the truth, and a kill between the load and
the ledger's save loses nothing.

The sandbox runs the "decay" activity model on a frozen clock: campaigns sent one every
35 days up to two days before the clock's now (ages about 2, 37, 72 and 142 days: one in
each tier of the defaults), and activity arrives only as the test advances the clock.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from kill import run_and_kill
from sync_truth import assert_matches_truth, loaded_rows

from ctctsync.config import SyncConfig, WarehouseConfig
from ctctsync.sandbox import AccountSpec, Sandbox
from ctctsync.sandbox.clock import ANCHOR_MS
from ctctsync.state import StateStore
from ctctsync.sync import run_sync
from ctctsync.sync.tiers import parse_instant

SPEC = AccountSpec(seed=11, contacts=300, lists=3, campaigns=7, activities_per_campaign=60,
                   library_files=2, trash_files=1, events=1, activity_model="decay",
                   send_every_days=35.0)
TABLES = {"contact_tracking": "*", "email_campaign_summary": "*"}
TRACKING_PATHS = tuple(f"GET /v2/emailmarketing/campaigns/{{id}}/tracking/{kind}" for kind in
                       ("sends", "opens", "clicks", "forwards", "bounces", "unsubscribes"))
DETAIL = "GET /v2/emailmarketing/campaigns/{id}"
SUMMARY = "GET /v2/emailmarketing/campaigns/{id}/tracking/reports/summary"
DAY = 86_400.0


def _tracking_calls(sb: Sandbox) -> int:
    return sum(sb.counters.count(p) for p in TRACKING_PATHS)


def _ages(sb: Sandbox) -> dict[str, float]:
    """Days since each SENT campaign's last send, on the sandbox clock."""
    now = sb.account.clock.now()
    out = {}
    for c in sb.account.campaigns.values():
        if c.status == "SENT" and c.last_run_ms is not None:
            out[str(c.id)] = (now.timestamp() * 1000 - c.last_run_ms) / 86_400_000
    return out


def _sync(sb: Sandbox, cfg: SyncConfig, **kwargs: Any) -> Any:
    result = run_sync(cfg, clock=sb.account.clock.now, **kwargs)
    assert result.status == "succeeded", result.error
    return result


def _match(sb: Sandbox, wcfg: WarehouseConfig) -> None:
    assert_matches_truth(sb, wcfg, "contact_tracking")
    assert_matches_truth(sb, wcfg, "email_campaign_summary", ignore=("end_date",))


@pytest.fixture
def decay_sb(sandbox_factory: Any) -> Sandbox:
    sb: Sandbox = sandbox_factory(SPEC, frozen_at_ms=ANCHOR_MS)
    ages = sorted(_ages(sb).values())
    # one campaign in each tier of the defaults: < 30 days, 30-90 days, > 90 days
    assert ages[0] < 30 and any(30 < a < 90 for a in ages) and ages[-1] > 90, ages
    return sb


def test_unchanged_run_reads_no_tracking_and_scans_only_due_campaigns(
        decay_sb: Sandbox, duckdb_warehouse: WarehouseConfig, make_config: Any) -> None:
    sb = decay_sb
    cfg = make_config(sb, duckdb_warehouse, tables=TABLES)
    first = _sync(sb, cfg)
    assert first.tables["contact_tracking"].mode == "full"
    _match(sb, duckdb_warehouse)
    ledger = StateStore(cfg.state_url).ledger("cc", "contact_tracking")
    assert set(ledger) == set(_ages(sb))

    sb.counters.reset()
    again = _sync(sb, cfg)
    young = [cid for cid, age in _ages(sb).items() if age < 30]
    assert young and len(young) < len(ledger)
    assert _tracking_calls(sb) == 0  # counts unchanged: no tracking collection read
    assert sb.counters.count(DETAIL) == len(young)  # only the campaigns due are scanned
    assert sb.counters.count(SUMMARY) == 0  # the scan carries the summaries
    assert again.api_calls == 1 + len(young)  # the SENT list + one scan per due campaign
    assert again.tables["contact_tracking"].rows == 0
    _match(sb, duckdb_warehouse)


@pytest.mark.slow  # ~14 s
def test_activity_on_an_old_campaign_loads_at_its_next_check(
        decay_sb: Sandbox, duckdb_warehouse: WarehouseConfig, make_config: Any) -> None:
    sb = decay_sb
    cfg = make_config(sb, duckdb_warehouse, tables=TABLES)
    _sync(sb, cfg)
    store = StateStore(cfg.state_url)
    oldest = max(_ages(sb).items(), key=lambda kv: kv[1])[0]
    checked = store.ledger("cc", "contact_tracking")[oldest]["checked_at"]
    sb.account.send_campaign(int(oldest), activities=25)
    sb.advance(3 * 3600)  # the new activity becomes visible

    _sync(sb, cfg)  # the campaign is > 90 days old: weekly, not due three hours later
    assert store.ledger("cc", "contact_tracking")[oldest]["checked_at"] == checked
    loaded = {k for k, r in loaded_rows(duckdb_warehouse, "cc", "contact_tracking",
                                        ("activity_id", "campaign_id")).items()
              if str(r["campaign_id"]) == oldest}
    truth = [r for r in sb.truth("contact_tracking") if r["campaign_id"] == oldest]
    assert len(loaded) < len(truth)  # not loaded yet ...

    sb.advance(7 * DAY)
    sb.counters.reset()
    _sync(sb, cfg)  # ... and not lost: loaded once the campaign comes due
    entry = store.ledger("cc", "contact_tracking")[oldest]
    moved = parse_instant(entry["checked_at"])
    assert moved is not None and moved > parse_instant(checked)  # type: ignore[operator]
    assert _tracking_calls(sb) > 0
    _match(sb, duckdb_warehouse)


def test_counts_going_down_prune_the_retracted_rows(
        decay_sb: Sandbox, warehouse: WarehouseConfig, make_config: Any) -> None:
    sb, duckdb_warehouse = decay_sb, warehouse  # the prune's SQL on DuckDB and PostgreSQL
    cfg = make_config(sb, duckdb_warehouse, tables=TABLES)
    sb.advance(2 * DAY)
    _sync(sb, cfg)
    young = min(_ages(sb).items(), key=lambda kv: kv[1])[0]
    counts = sb.account.campaign_counts(int(young))
    kind = max(("opens", "sends"), key=lambda k: counts[k])
    gone = sb.account.retract_activities(int(young), kind, 3)
    assert len(gone) == 3
    before = len(loaded_rows(duckdb_warehouse, "cc", "contact_tracking", ("activity_id",)))

    result = _sync(sb, cfg)
    after = len(loaded_rows(duckdb_warehouse, "cc", "contact_tracking", ("activity_id",)))
    assert after == before - 3  # the three retracted rows are gone, nothing else
    assert result.tables["contact_tracking"].rows > 0  # the kind was read whole
    _match(sb, duckdb_warehouse)


def test_recheck_campaigns_reads_every_kind_of_every_campaign(
        decay_sb: Sandbox, duckdb_warehouse: WarehouseConfig, make_config: Any) -> None:
    sb = decay_sb
    cfg = make_config(sb, duckdb_warehouse, tables={"contact_tracking": "*"})
    _sync(sb, cfg)
    sb.counters.reset()
    result = _sync(sb, cfg, recheck_campaigns=True)
    sent = len(_ages(sb))
    assert sb.counters.count(DETAIL) == sent
    assert _tracking_calls(sb) >= 6 * sent
    assert result.tables["contact_tracking"].rows == len(sb.truth("contact_tracking"))
    assert_matches_truth(sb, duckdb_warehouse, "contact_tracking")


def _config_json(cfg: SyncConfig, sb: Sandbox) -> str:
    raw = cfg.model_dump(mode="json")
    raw["source"]["api_key"] = sb.credentials.api_key  # dumped masked
    raw["source"]["access_token"] = sb.credentials.access_token
    return json.dumps(raw)


@pytest.mark.slow  # ~14 s
def test_kill_between_load_and_ledger_loses_nothing(
        sandbox: Sandbox, duckdb_warehouse: WarehouseConfig, make_config: Any) -> None:
    # the child syncs on the machine's clock: the sandbox's clock is the real one here
    sb = sandbox
    cid = sb.account.send_campaign(activities=40)
    cfg = make_config(sb, duckdb_warehouse, tables={"contact_tracking": "*"},
                      lookback=timedelta(minutes=10))
    assert run_sync(cfg).status == "succeeded"
    sb.account.retract_activities(cid, "EMAIL_SEND", 2)
    sb.account.send_campaign(cid, activities=15)

    lines = run_and_kill(_config_json(cfg, sb), "contact_tracking", "loaded")
    assert not any(line.startswith("END") for line in lines)

    again = run_sync(cfg)
    assert again.status == "succeeded", again.error
    assert_matches_truth(sb, duckdb_warehouse, "contact_tracking")


@pytest.mark.slow  # ~15 s
def test_upgrade_from_a_bookmark_without_ledger_reads_as_before_and_starts_it(
        decay_sb: Sandbox, duckdb_warehouse: WarehouseConfig, make_config: Any) -> None:
    sb = decay_sb
    cfg = make_config(sb, duckdb_warehouse, tables={"contact_tracking": "*"})
    _sync(sb, cfg)
    store = StateStore(cfg.state_url)
    with store.engine.begin() as conn:  # as a version before the planner left the store
        conn.exec_driver_sql("DELETE FROM campaign_ledger")
    assert store.ledger("cc", "contact_tracking") == {}
    sb.advance(6 * 3600)  # activity of the young campaigns arrives
    sb.counters.reset()

    result = _sync(sb, cfg)
    sent = set(_ages(sb))
    # no entry: every campaign is due, and read as before (all six kinds since the table's
    # since, not whole: no prune), and its entry starts
    assert _tracking_calls(sb) == 6 * len(sent)  # one page each: only the recent activity
    assert result.tables["contact_tracking"].mode == "incremental"
    assert set(store.ledger("cc", "contact_tracking")) == sent
    assert_matches_truth(sb, duckdb_warehouse, "contact_tracking")
