"""A sync never claims success for data it did not load (issue 8 §1).

- A missing lookup costs no rows: a campaign whose detail answers 404 while its tracking
  answers keeps its clicks (``link_uri`` NULL), forwards, bounces, unsubscribes and summary.
- A campaign really gone (its tracking answers 404 too) is counted and shown as a warning;
  the run stays ``succeeded`` (with warnings) and the bookmark moves: the rows are gone for good.
- Rows a later read can recover hold the table's bookmark, and the next run loads them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from sync_truth import assert_matches_truth, loaded_rows

from ctctsync.api import ApiClient, RateLimiter, RetryPolicy
from ctctsync.config import SyncConfig, WarehouseConfig
from ctctsync.sandbox import Sandbox
from ctctsync.state import StateStore
from ctctsync.sync import SyncResult, run_sync

CAMPAIGN_TABLES = ["contact_tracking", "email_campaign_summary"]
AFTER_CLICKS = ("EMAIL_CLICK", "EMAIL_FORWARD", "EMAIL_BOUNCE", "EMAIL_UNSUBSCRIBE")


def _client(sb: Sandbox) -> ApiClient:
    return ApiClient(
        sb.base_url, sb.credentials.api_key, sb.credentials.access_token,
        limiter=RateLimiter(None, None),
        retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05),
    )


def _sync(sb: Sandbox, cfg: SyncConfig) -> SyncResult:
    with _client(sb) as client:
        return run_sync(cfg, only_tables=CAMPAIGN_TABLES, client=client,
                        clock=sb.account.clock.now)


def _campaign_with_clicks(sb: Sandbox) -> str:
    """A SENT campaign that has clicks and activities read after its clicks."""
    kinds = Counter((r["campaign_id"], r["activity_type"]) for r in sb.truth("contact_tracking"))
    ranked = sorted(
        {cid for cid, _ in kinds},
        key=lambda cid: -sum(kinds[(cid, k)] for k in AFTER_CLICKS[1:]),
    )
    return next(cid for cid in ranked if kinds[(cid, "EMAIL_CLICK")])


def _tracking_of(sb: Sandbox, wcfg: WarehouseConfig, campaign_id: str) -> list[dict[str, Any]]:
    cols = ("activity_id", "campaign_id", "activity_type", "link_uri")
    rows = loaded_rows(wcfg, "cc", "contact_tracking", cols).values()
    return [r for r in rows if str(r["campaign_id"]) == campaign_id]


def _bookmark(cfg: SyncConfig) -> Any:
    return StateStore(cfg.state_url).get(cfg.integration, "contact_tracking")


def test_campaign_detail_404_loses_no_rows_and_holds_the_bookmark(
    sandbox: Sandbox, duckdb_warehouse: WarehouseConfig, make_config: Any
) -> None:
    sb = sandbox
    cid = _campaign_with_clicks(sb)
    truth = Counter(r["activity_type"] for r in sb.truth("contact_tracking")
                    if r["campaign_id"] == cid)
    rule = sb.faults.add("404", f"/v2/emailmarketing/campaigns/{cid}")
    cfg = make_config(sb, duckdb_warehouse, tables=dict.fromkeys(CAMPAIGN_TABLES, "*"))

    first = _sync(sb, cfg)

    assert rule.fired > 0, "the detail never answered 404: the test proves nothing"
    assert first.status == "succeeded", first.error
    loaded = _tracking_of(sb, duckdb_warehouse, cid)
    assert Counter(r["activity_type"] for r in loaded) == truth  # every row, clicks included
    assert all(r["link_uri"] is None for r in loaded if r["activity_type"] == "EMAIL_CLICK")
    summaries = {r["campaign_id"]: r for r in sb.truth("email_campaign_summary")}
    counts = ("sends", "clicks", "bounces", "unsubscribes")
    got = {str(r["campaign_id"]): r for r in loaded_rows(
        duckdb_warehouse, "cc", "email_campaign_summary", ("campaign_id", *counts)).values()}
    assert {k: got[cid][k] for k in counts} == {k: summaries[cid][k] for k in counts}
    # the link URLs are missing for a reason a later read can fix: the run says so, and the
    # table's bookmark does not move past those rows
    tracking = first.tables["contact_tracking"]
    assert tracking.warnings and cid in tracking.warnings[0]
    assert tracking.bookmark_held
    assert any(w.startswith("contact_tracking: ") for w in first.warnings)
    assert _bookmark(cfg) is None

    sb.faults.clear()
    second = _sync(sb, cfg)
    assert second.status == "succeeded" and second.warnings == []
    assert _bookmark(cfg) is not None
    assert_matches_truth(sb, duckdb_warehouse, "contact_tracking")
    assert_matches_truth(sb, duckdb_warehouse, "email_campaign_summary", ignore=("end_date",))


def test_campaign_deleted_during_the_run_is_a_warning_and_the_bookmark_moves(
    sandbox: Sandbox, duckdb_warehouse: WarehouseConfig, make_config: Any
) -> None:
    sb = sandbox
    cid = _campaign_with_clicks(sb)
    # detail, tracking and summary all answer 404: as for a campaign deleted after the list
    sb.faults.add("404", f"/v2/emailmarketing/campaigns/{cid}*")
    cfg = make_config(sb, duckdb_warehouse, tables=dict.fromkeys(CAMPAIGN_TABLES, "*"))

    result = _sync(sb, cfg)

    assert result.status == "succeeded", result.error
    for table in CAMPAIGN_TABLES:
        tr = result.tables[table]
        assert tr.status == "succeeded"
        assert tr.warnings == ["1 campaign deleted during the run: " + cid], tr.warnings
        assert not tr.bookmark_held
    assert result.warnings == [f"{t}: 1 campaign deleted during the run: {cid}"
                               for t in CAMPAIGN_TABLES]
    assert _bookmark(cfg) is not None  # gone for good: nothing a later read could load
    assert _tracking_of(sb, duckdb_warehouse, cid) == []
    others = {r["campaign_id"] for r in sb.truth("contact_tracking")} - {cid}
    loaded = {str(r["campaign_id"]) for r in loaded_rows(
        duckdb_warehouse, "cc", "contact_tracking", ("activity_id", "campaign_id")).values()}
    assert loaded == others


def test_tracking_404_of_a_campaign_that_exists_is_read_by_the_next_run(
    sandbox: Sandbox, duckdb_warehouse: WarehouseConfig, make_config: Any
) -> None:
    sb = sandbox
    cid = _campaign_with_clicks(sb)
    rule = sb.faults.add("404", f"/v2/emailmarketing/campaigns/{cid}/tracking/clicks")
    cfg = make_config(sb, duckdb_warehouse, tables={"contact_tracking": "*"},
                      tracking={"tiers": [[0, 0]]})  # seeded campaigns are old: check each run
    with _client(sb) as client:  # a first, clean run sets the bookmark
        sb.faults.remove(rule.id)
        run_sync(cfg, client=client, clock=sb.account.clock.now)
        before = _bookmark(cfg)
        assert before is not None
        sb.faults.add("404", f"/v2/emailmarketing/campaigns/{cid}/tracking/clicks")
        # the campaign is sent again: its activities are new, and read whole
        sb.account.send_campaign(int(cid), activities=20)
        sb.advance(60)
        first = run_sync(cfg, client=client, clock=sb.account.clock.now)
        assert first.status == "succeeded", first.error
        tr = first.tables["contact_tracking"]
        assert tr.bookmark_held and tr.warnings, tr
        assert _bookmark(cfg) == before  # the clicks were not loaded: no later start
        loaded = _tracking_of(sb, duckdb_warehouse, cid)
        clicks = [r for r in sb.truth("contact_tracking")
                  if r["campaign_id"] == cid and r["activity_type"] == "EMAIL_CLICK"]
        assert sum(r["activity_type"] == "EMAIL_CLICK" for r in loaded) < len(clicks)
        sb.faults.clear()
        sb.advance(60)
        second = run_sync(cfg, client=client, clock=sb.account.clock.now)
    assert second.status == "succeeded" and not second.warnings
    assert _bookmark(cfg) != before
    assert_matches_truth(sb, duckdb_warehouse, "contact_tracking")


def _cli(args: list[str], sb: Sandbox, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTCTSYNC_")}
    env.update({"CTCTSYNC_API_KEY": sb.credentials.api_key,
                "CTCTSYNC_ACCESS_TOKEN": sb.credentials.access_token, "COLUMNS": "200"})
    return subprocess.run([sys.executable, "-m", "ctctsync", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=240, check=False)


def test_cli_prints_the_warning_and_exits_0(sandbox: Sandbox, tmp_path: Path) -> None:
    sb = sandbox
    cid = _campaign_with_clicks(sb)
    sb.faults.add("404", f"/v2/emailmarketing/campaigns/{cid}*")
    (tmp_path / "ctctsync.toml").write_text(f"""
integration = "cli_test"
history_start = 2001-01-01
state_url = "sqlite:///{tmp_path / 'state.db'}"

[source]
base_url = "{sb.base_url}"
qps_limit = 50.0

[warehouse]
destination = "duckdb"
path = "{tmp_path / 'wh.duckdb'}"

[tables]
contact_tracking = "*"
""", encoding="utf-8")
    done = _cli(["sync", "--json"], sb, tmp_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["status"] == "succeeded"
    assert out["warnings"] == [f"contact_tracking: 1 campaign deleted during the run: {cid}"]
    assert out["tables"]["contact_tracking"]["warnings"] == [
        f"1 campaign deleted during the run: {cid}"]
    assert set(out["tables"]) == {"contact_tracking"}

    plain = _cli(["sync"], sb, tmp_path)
    assert plain.returncode == 0, plain.stderr
    text = plain.stdout + plain.stderr
    assert "succeeded with warnings" in text
    assert "1 campaign deleted during the run" in text
