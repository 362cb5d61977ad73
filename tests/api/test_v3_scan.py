"""v3 change detection against the running sandbox: the stats scan's counts equal the rows
the tracking reports list, batches of 150, a deleted campaign found by bisecting, the
campaign details skipped for campaigns the ledger knows, and the tracking reader reading
only the kinds the planner names."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from ctctsync.api.client import ApiClient
from ctctsync.api.ratelimit import RateLimiter
from ctctsync.api.readnotes import ReadNotes
from ctctsync.api.tracking import KINDS, TRACKING_KEY, CampaignScan, TrackingRead
from ctctsync.api.v3.endpoints import STATS_ENDPOINT, TRACKING_TYPES, parse_time
from ctctsync.api.v3.extract import extract, scan_campaigns, sent_campaigns
from ctctsync.sandbox.clock import ANCHOR_MS
from ctctsync.sandbox.records import AccountSpec
from ctctsync.sandbox.server import Sandbox
from ctctsync.sandbox.v3.ids import V3Ids

Raw = dict[str, Any]
STATS = STATS_ENDPOINT
DETAIL = "GET /v3/emails/{id}"
SUMMARIES = "GET /v3/reports/summary_reports/email_campaign_summaries"
REPORT_OF_KIND = {kind: report for report, kind in TRACKING_TYPES}


def _client(sb: Sandbox) -> ApiClient:
    return ApiClient(sb.base_url, sb.credentials.api_key, sb.v3_tokens.issue_access_token(),
                     send_api_key=False, limiter=RateLimiter(qps=None, daily=None))


@pytest.fixture
def v3_client(sandbox: Sandbox) -> Iterator[ApiClient]:
    with _client(sandbox) as client:
        yield client


def _served(sb: Sandbox) -> Callable[[str], list[Raw]]:
    """Every row of a tracking report as served (a reader of its own, not the connector's)."""
    http = httpx.Client(base_url=sb.base_url, timeout=10, headers={
        "Authorization": f"Bearer {sb.v3_tokens.issue_access_token()}"})

    def rows(path: str) -> list[Raw]:
        out: list[Raw] = []
        url: str | None = path
        while url:
            body = http.get(url).json()
            out += body["tracking_activities"]
            url = (body.get("_links") or {}).get("next", {}).get("href")
        return out

    return rows


def _calls(client: ApiClient, endpoint: str) -> int:
    return client.calls.snapshot().get(endpoint, 0)


def _assert_counts_are_rows(sb: Sandbox, campaigns: list[Raw],
                            scans: dict[str, CampaignScan]) -> int:
    """Each scanned count equals the rows its report lists now; returns the rows."""
    rows, total = _served(sb), 0
    for campaign in campaigns:
        for kind in KINDS:
            listed = sum(
                len(rows(f"/v3/reports/email_reports/{a}/tracking/{REPORT_OF_KIND[kind]}"))
                for a in campaign["activity_ids"])
            assert scans[campaign["campaign_id"]].counts[kind] == listed, (campaign, kind)
            total += listed
    return total


def test_counts_equal_the_rows_each_report_lists(sandbox: Sandbox, v3_client: ApiClient) -> None:
    campaigns = sent_campaigns(v3_client)
    notes = ReadNotes()
    scans = scan_campaigns(v3_client, campaigns, notes=notes)
    assert set(scans) == {c["campaign_id"] for c in campaigns} and notes.counts() == {}
    assert _assert_counts_are_rows(sandbox, campaigns, scans) > 0
    for campaign in campaigns:
        scan = scans[campaign["campaign_id"]]
        assert set(scan.counts) == set(KINDS)
        assert scan.extra["activity_ids"] == campaign["activity_ids"]
        assert scan.extra["updated_at"] == campaign["updated_at"]
    # the send date: the campaign's last send, as the model has it
    for c in sandbox.account.campaigns.values():
        if c.status != "SENT" or c.last_run_ms is None:
            continue
        scan = scans[V3Ids(sandbox.account.seed).campaign(c.id)]
        assert scan.sent_at == datetime.fromtimestamp(c.last_run_ms / 1000, UTC)
    # one stats call (7 campaigns) and one summary page for the send dates
    assert _calls(v3_client, STATS) == 1
    assert _calls(v3_client, SUMMARIES) == 1


def test_counts_follow_the_decay_model_and_retractions(
    sandbox_factory: Callable[..., Sandbox]
) -> None:
    """Activity arriving over days (invisible until the clock passes it) and retracted
    activity: the counts are the rows the reports list at each moment, up and down."""
    sb = sandbox_factory(AccountSpec(seed=8, contacts=200, campaigns=6,
                                     activities_per_campaign=80, events=0,
                                     activity_model="decay"), frozen_at_ms=ANCHOR_MS)
    with _client(sb) as client:
        campaigns = sent_campaigns(client)
        first = scan_campaigns(client, campaigns)
        before = _assert_counts_are_rows(sb, campaigns, first)
    sb.account.advance(5 * 86_400)  # late opens and clicks arrive (a new token: 24 h JWTs)
    with _client(sb) as client:
        later = scan_campaigns(client, campaigns)
        after = _assert_counts_are_rows(sb, campaigns, later)
        assert after > before > 0
        ids = V3Ids(sb.account.seed)
        bounced = next(c for c in sb.account.campaigns.values()
                       if later.get(ids.campaign(c.id))
                       and later[ids.campaign(c.id)].counts["EMAIL_BOUNCE"] >= 1)
        assert sb.account.retract_activities(bounced.id, "EMAIL_BOUNCE", 1)
        retracted = scan_campaigns(client, campaigns)
        _assert_counts_are_rows(sb, campaigns, retracted)
        cid = ids.campaign(bounced.id)
        assert retracted[cid].counts["EMAIL_BOUNCE"] == later[cid].counts["EMAIL_BOUNCE"] - 1


def test_counts_move_with_new_activity(sandbox: Sandbox, v3_client: ApiClient) -> None:
    campaigns = sent_campaigns(v3_client)
    before = scan_campaigns(v3_client, campaigns)
    old = next(c for c in sandbox.account.campaigns.values() if c.status == "SENT")
    sandbox.account.send_campaign(old.id, activities=12)
    after = scan_campaigns(v3_client, campaigns)
    moved = {cid for cid in after if after[cid].counts != before[cid].counts}
    assert moved == {V3Ids(sandbox.account.seed).campaign(old.id)}
    (cid,) = moved
    assert sum(after[cid].counts.values()) - sum(before[cid].counts.values()) == 12


def test_batches_of_150(sandbox_factory: Callable[..., Sandbox]) -> None:
    sb = sandbox_factory(AccountSpec(seed=5, contacts=60, campaigns=320,
                                     activities_per_campaign=2, events=0))
    with _client(sb) as client:
        campaigns = sent_campaigns(client)
        assert len(campaigns) > 300
        start = _calls(client, STATS)
        scans = scan_campaigns(client, campaigns)
        assert _calls(client, STATS) - start == math.ceil(len(campaigns) / 150) == 3
        assert set(scans) == {c["campaign_id"] for c in campaigns}
        # every campaign's counts are its own (checked against the model)
        for c in sb.account.campaigns.values():
            scan = scans.get(V3Ids(sb.account.seed).campaign(c.id))
            if scan is not None:
                assert scan.counts["EMAIL_SEND"] == sb.account.campaign_counts(c.id)["sends"]


def _ghost() -> dict[str, Any]:
    """A campaign the list showed but CC no longer knows (deleted between the calls)."""
    return {"campaign_id": str(uuid.uuid4()), "activity_ids": [str(uuid.uuid4())],
            "updated_at": "2026-01-01T00:00:00.000Z", "current_status": "Done"}


def test_a_deleted_campaign_is_bisected_out(sandbox_factory: Callable[..., Sandbox]) -> None:
    sb = sandbox_factory(AccountSpec(seed=5, contacts=60, campaigns=160,
                                     activities_per_campaign=2, events=0))
    with _client(sb) as client:
        campaigns = sent_campaigns(client)[:149]
        ghost = _ghost()
        batch = [*campaigns[:77], ghost, *campaigns[77:]]
        assert len(batch) == 150
        notes = ReadNotes()
        stats, details = _calls(client, STATS), _calls(client, DETAIL)
        scans = scan_campaigns(client, batch, notes=notes)
        # 1 call for the batch, log2(150) halvings to find the ghost, 1 for the halves set
        # aside, and the ghost's detail to tell a deletion from missing stats
        assert _calls(client, STATS) - stats <= 1 + math.ceil(math.log2(150)) + 1
        assert _calls(client, DETAIL) - details == 1
        assert notes.counts() == {"campaign_deleted": 1}
        assert notes.messages() == [f"1 campaign deleted during the run: {ghost['campaign_id']}"]
        assert not notes.hold_bookmark
        assert set(scans) == {c["campaign_id"] for c in campaigns}  # every other one scanned


def test_two_deleted_campaigns_are_both_found(sandbox: Sandbox, v3_client: ApiClient) -> None:
    campaigns = sent_campaigns(v3_client)
    ghosts = [_ghost(), _ghost()]
    notes = ReadNotes()
    scans = scan_campaigns(v3_client, [ghosts[0], *campaigns, ghosts[1]], notes=notes)
    assert set(scans) == {c["campaign_id"] for c in campaigns}
    assert notes.counts() == {"campaign_deleted": 2}


def test_a_campaign_marked_deleted_is_noted_without_calls(
    sandbox: Sandbox, v3_client: ApiClient
) -> None:
    campaigns = sent_campaigns(v3_client)
    gone = {**campaigns[0], "deleted": True, "activity_ids": []}
    notes = ReadNotes()
    start = v3_client.calls.total
    scans = scan_campaigns(v3_client, [gone], notes=notes)
    assert scans == {} and v3_client.calls.total == start
    assert scan_campaigns(v3_client, []) == {} and v3_client.calls.total == start
    assert notes.counts() == {"campaign_deleted": 1}


def _known(scans: dict[str, CampaignScan]) -> dict[str, dict[str, Any]]:
    return {cid: dict(s.extra) for cid, s in scans.items()}


def test_known_campaigns_skip_their_detail(sandbox: Sandbox, v3_client: ApiClient) -> None:
    first = sent_campaigns(v3_client)
    assert _calls(v3_client, DETAIL) == len(first) >= 3
    known = _known(scan_campaigns(v3_client, first))

    start, details = v3_client.calls.total, _calls(v3_client, DETAIL)
    again = sent_campaigns(v3_client, known)
    assert v3_client.calls.total - start == 1  # the campaign list only
    assert _calls(v3_client, DETAIL) == details
    # the same campaigns with the same activity ids, and the send date kept by the scan
    assert again == [{**c, "last_sent_date": known[c["campaign_id"]]["last_sent_date"]}
                     for c in first]

    # and the scan of an unchanged account needs no summary page: the send dates are kept
    start = v3_client.calls.total
    scans = scan_campaigns(v3_client, again)
    assert v3_client.calls.total - start == 1
    assert _known(scans) == known

    # a new campaign and a changed one cost their details; the others still do not
    sandbox.account.advance(60)
    new = sandbox.account.send_campaign(activities=10)
    changed = next(c for c in sandbox.account.campaigns.values()
                   if c.status == "SENT" and c.id != new)
    changed.modified_ms = sandbox.account.clock.now_ms()  # renamed, say
    details = _calls(v3_client, DETAIL)
    latest = sent_campaigns(v3_client, known)
    assert _calls(v3_client, DETAIL) - details == 2
    ids = V3Ids(sandbox.account.seed)
    assert {c["campaign_id"] for c in latest} == set(known) | {ids.campaign(new)}
    fresh = next(c for c in latest if c["campaign_id"] == ids.campaign(new))
    assert fresh["activity_ids"] == [ids.activity(new, "primary_email")]
    scans = scan_campaigns(v3_client, latest)
    sent = sandbox.account.campaigns[new].last_run_ms
    assert sent is not None
    assert scans[ids.campaign(new)].sent_at == datetime.fromtimestamp(sent / 1000, UTC)


def test_a_known_entry_without_activity_ids_is_read_again(
    sandbox: Sandbox, v3_client: ApiClient
) -> None:
    first = sent_campaigns(v3_client)
    known = {c["campaign_id"]: {"updated_at": c["updated_at"]} for c in first}
    details = _calls(v3_client, DETAIL)
    assert sent_campaigns(v3_client, known) == first
    assert _calls(v3_client, DETAIL) - details == len(first)


def _tracking(client: ApiClient, campaigns: list[Raw], since: datetime | None = None,
              notes: ReadNotes | None = None) -> list[Raw]:
    return [r for page in extract("contact_tracking", client, since, campaigns=campaigns,
                                  notes=notes) for r in page]


def test_the_reader_reads_only_the_named_kinds(sandbox: Sandbox, v3_client: ApiClient) -> None:
    campaigns = sent_campaigns(v3_client)
    whole = _tracking(v3_client, campaigns)
    one, other = campaigns[0], campaigns[1]
    opens = [r for r in whole if r["campaign_id"] == one["campaign_id"]
             and r["activity_type"] == "EMAIL_OPEN"]
    dates = sorted(d for r in opens if (d := parse_time(r["activity_date"])) is not None)
    assert len(dates) >= 4
    since = dates[len(dates) // 2]
    plan = [
        {**one, TRACKING_KEY: TrackingRead({"EMAIL_OPEN": since, "EMAIL_BOUNCE": None})},
        {**other, TRACKING_KEY: TrackingRead({})},  # nothing moved: not read at all
    ]
    start, reports = v3_client.calls.total, v3_client.calls.snapshot()
    rows = _tracking(v3_client, plan)
    calls = v3_client.calls.snapshot()
    # one report each (every report fits a page here), and no call for the other campaign
    assert v3_client.calls.total - start == 2
    read = {k for k in calls if calls[k] != reports.get(k)}
    assert read == {"GET /v3/reports/email_reports/{id}/tracking/opens",
                    "GET /v3/reports/email_reports/{id}/tracking/bounces"}
    expected = [r for r in whole if r["campaign_id"] == one["campaign_id"] and (
        (r["activity_type"] == "EMAIL_OPEN" and (parse_time(r["activity_date"]) or since)
         >= since) or r["activity_type"] == "EMAIL_BOUNCE")]
    key = ("contact_id", "activity_type", "activity_date")
    assert sorted(tuple(r[k] for k in key) for r in rows) == sorted(
        tuple(r[k] for k in key) for r in expected)
    assert any(r["activity_type"] == "EMAIL_OPEN" for r in rows)
    assert len([r for r in rows if r["activity_type"] == "EMAIL_OPEN"]) < len(opens)


def test_without_a_plan_every_kind_is_read_since_the_table_since(
    sandbox: Sandbox, v3_client: ApiClient
) -> None:
    campaigns = sent_campaigns(v3_client)
    late = datetime.fromtimestamp(sandbox.account.clock.now_ms() / 1000, UTC) + timedelta(1)
    start = v3_client.calls.total
    assert _tracking(v3_client, campaigns, late) == []
    activities = sum(len(c["activity_ids"]) for c in campaigns)
    assert v3_client.calls.total - start == 6 * activities


def test_a_partial_failure_inside_a_200(scripted_server: Any) -> None:
    """CC's contract also shows a 200 whose ``errors`` say some campaigns had no stats: the
    missing ones are told by their absence from ``results``; a detail call says whether each
    was deleted (noted) or exists without stats (left out of the scan, not noted)."""
    stats = {"em_sends": 3, "em_opens": 1, "em_opens_all": 2, "em_clicks": 1,
             "em_clicks_all": 1, "em_forwards": 0, "em_optouts": 0, "em_bounces": 1}
    scripted_server.answer("/v3/reports/stats/email_campaigns/c1,c2,c3", (200, {}, {
        "results": [{"campaign_id": "c1", "stats": stats,
                     "last_refresh_time": "2026-01-01T00:00:00.000Z"}],
        "errors": [{"error_key": "reportingsvc.not_found.invalid_path_param.campaign_ids.",
                    "error_message": "Could not find any campaign stats for all requested "
                                     "campaigns."}]}))
    scripted_server.answer("/v3/emails/c2", (200, {}, {"campaign_id": "c2",
                                                      "current_status": "REMOVED"}))
    scripted_server.answer("/v3/emails/c3", (200, {}, {"campaign_id": "c3",
                                                      "current_status": "EXECUTING"}))
    scripted_server.answer("/v3/reports/summary_reports/email_campaign_summaries", (200, {}, {
        "bulk_email_campaign_summaries": [
            {"campaign_id": "c1", "last_sent_date": "2025-12-30T10:00:00.000Z"}]}))
    campaigns = [{"campaign_id": c, "activity_ids": [f"a-{c}"],
                  "updated_at": "2025-12-30T09:00:00.000Z"} for c in ("c1", "c2", "c3")]
    notes = ReadNotes()
    with ApiClient(scripted_server.base_url, "client-id", "token", send_api_key=False,
                   limiter=RateLimiter(qps=None, daily=None)) as client:
        scans = scan_campaigns(client, campaigns, notes=notes)
        assert client.calls.total == 4  # stats, two details, one summary page
    assert list(scans) == ["c1"]
    assert scans["c1"].counts == {"EMAIL_SEND": 3, "EMAIL_OPEN": 2, "EMAIL_CLICK": 1,
                                  "EMAIL_FORWARD": 0, "EMAIL_UNSUBSCRIBE": 0, "EMAIL_BOUNCE": 1}
    assert scans["c1"].sent_at == datetime(2025, 12, 30, 10, tzinfo=UTC)
    assert scans["c1"].extra == {"updated_at": "2025-12-30T09:00:00.000Z",
                                 "activity_ids": ["a-c1"],
                                 "last_sent_date": "2025-12-30T10:00:00.000Z"}
    assert notes.messages() == ["1 campaign deleted during the run: c2"]
