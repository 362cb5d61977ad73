"""The sandbox's v3 reports (constant-contact-v3-api.md §3.7-§3.9) over real HTTP: every tracking
row is an activity of the one ActivityLog, and the summary report and the stats count exactly
what the tracking reports serve. Every body is checked against the official contract."""

from __future__ import annotations

from typing import Any

from v3_client import V3, v3_fixture  # noqa: F401 - the `v3` fixture

from ctctsync.sandbox import Sandbox
from ctctsync.sandbox import generator as gen
from ctctsync.sandbox.account import Account, AccountSpec
from ctctsync.sandbox.testing import SandboxFactory
from ctctsync.sandbox.v3.common import date_only, ts_millis
from ctctsync.sandbox.v3.ids import V3Ids
from ctctsync.sandbox.v3.tokens import CAMPAIGN_CREATOR_PRIVILEGES

KINDS = {"sends": gen.SEND, "opens": gen.OPEN, "unique_opens": gen.OPEN, "clicks": gen.CLICK,
         "forwards": gen.FORWARD, "optouts": gen.UNSUBSCRIBE, "bounces": gen.BOUNCE,
         "didnotopens": gen.SEND}
ROW_TYPES = {"sends": "em_sends", "opens": "em_opens", "unique_opens": "em_opens",
             "clicks": "em_clicks", "forwards": "em_forwards", "optouts": "em_optouts",
             "bounces": "em_bounces", "didnotopens": "em_didnotopens"}
REPORT = "/v3/reports/email_reports/{}/tracking/{}"


def _log(account: Account, campaign_id: int, kind: str) -> list[Any]:
    """What report ``kind`` must serve for the campaign, straight from the ActivityLog."""
    acts, _ = account.activity_page(campaign_id=campaign_id, types=frozenset({KINDS[kind]}),
                                    limit=10**9)
    if kind == "didnotopens":
        reached, _ = account.activity_page(campaign_id=campaign_id,
                                           types=frozenset({gen.OPEN, gen.BOUNCE}), limit=10**9)
        gone = {a.contact_id for a in reached}
        acts = [a for a in acts if a.contact_id not in gone]
    return acts


def _sent(account: Account) -> list[gen.Campaign]:
    return [c for c in account.campaigns.values() if c.status == "SENT"]


def test_tracking_rows_are_the_activity_log(sandbox: Sandbox, v3: V3) -> None:
    account = sandbox.context.account
    ids = V3Ids(sandbox.spec.seed)
    checked = 0
    for camp in _sent(account):
        activity = ids.activity(camp.id)
        for kind in KINDS:
            rows, pages = v3.walk(REPORT.format(activity, kind), "tracking_activities",
                                  {"limit": 11})
            acts = _log(account, camp.id, kind)
            assert pages == max(1, -(-len(acts) // 11))
            # the same activities, newest first, each once
            assert [(r["contact_id"], r["created_time"]) for r in rows] == [
                (ids.contact(a.contact_id), ts_millis(a.ts_ms)) for a in acts]
            for r, a in zip(rows, acts, strict=True):
                assert r["tracking_activity_type"] == ROW_TYPES[kind]
                assert r["campaign_activity_id"] == activity
                assert r["email_address"] == a.email
                contact = account.contact(a.contact_id)
                assert contact is not None
                assert r.get("first_name", "") == contact.first_name
                if kind == "clicks":
                    assert (r["url_id"], r["link_url"]) == (str(a.link_uid), a.link_url)
                    assert r["device_type"] in {"computer", "mobile", "tablet", "other"}
                if kind == "bounces":
                    assert r["bounce_code"] == a.bounce_code
            checked += len(rows)
        counts = account.campaign_counts(camp.id)
        assert len(_log(account, camp.id, "sends")) == counts["sends"]
    assert checked > 300


def test_summary_stats_and_tracking_agree(sandbox: Sandbox, v3: V3) -> None:
    account = sandbox.context.account
    ids = V3Ids(sandbox.spec.seed)
    summaries, _ = v3.walk("/v3/reports/summary_reports/email_campaign_summaries",
                           "bulk_email_campaign_summaries", {"limit": 2})
    sent = sorted(_sent(account), key=lambda c: (c.last_run_ms or 0, c.id), reverse=True)
    # only sent campaigns, latest last_sent_date first (§3.9)
    assert [s["campaign_id"] for s in summaries] == [ids.campaign(c.id) for c in sent]
    campaign_ids = ",".join(s["campaign_id"] for s in summaries)
    stats = v3.get(f"/v3/reports/stats/email_campaigns/{campaign_ids}")["results"]
    assert [s["campaign_id"] for s in stats] == [s["campaign_id"] for s in summaries]
    served = {"sends": "sends", "opens": "opens", "clicks": "clicks", "forwards": "forwards",
              "optouts": "optouts", "bounces": "bounces", "not_opened": "didnotopens"}
    for summary, stat, camp in zip(summaries, stats, sent, strict=True):
        u, st = summary["unique_counts"], stat["stats"]
        activity = ids.activity(camp.id)
        for name, kind in served.items():
            rows = v3.walk(REPORT.format(activity, kind), "tracking_activities")[0]
            assert u[name] == len(rows), name
            assert st[f"em_{name}"] == len(rows), name
        assert u["not_opened"] == u["sends"] - u["opens"] - u["bounces"]
        assert st["em_opens_all"] == sum(st[f"em_opens_all_{d}"] for d in (
            "computer", "mobile", "tablet", "other", "none"))
        v2 = sandbox.truth("email_campaign_summary")
        v2_row = next(r for r in v2 if r["campaign_id"] == str(camp.id))
        assert (u["sends"], u["opens"], u["optouts"], u["abuse"]) == (
            v2_row["sends"], v2_row["opens"], v2_row["unsubscribes"], v2_row["spam_count"])
        per_activity = v3.get(f"/v3/reports/stats/email_campaign_activities/{activity}")
        act_stats = per_activity["results"][0]["stats"]
        assert act_stats["em_sends"] == st["em_sends"]
        assert act_stats["em_bounces"] == sum(v for k, v in act_stats.items()
                                              if k.startswith("em_bounces_"))


def test_summary_paging_limits_and_percents(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory(AccountSpec(seed=5, contacts=60, lists=2, campaigns=56,
                                     activities_per_campaign=4, events=0))
    v3 = V3(sb)
    path = "/v3/reports/summary_reports/email_campaign_summaries"
    first = v3.get(path)
    assert len(first["bulk_email_campaign_summaries"]) == 50 and "_links" in first
    rest = v3.get(first["_links"]["next"]["href"])
    assert "_links" not in rest
    n_sent = len(_sent(sb.context.account))
    assert len(rest["bulk_email_campaign_summaries"]) == n_sent - 50
    page = rest["bulk_email_campaign_summaries"]
    sends = sum(s["unique_counts"]["sends"] for s in page)
    bounces = sum(s["unique_counts"]["bounces"] for s in page)
    assert rest["aggregate_percents"]["bounce"] == round(100 * bounces / sends, 1)
    v3.get(path, {"limit": "501"}, status=400)
    assert len(v3.get(path, {"limit": "500"})["bulk_email_campaign_summaries"]) == n_sent


def test_never_sent_and_permalink_activities_have_no_tracking(sandbox: Sandbox,
                                                              v3: V3) -> None:
    account = sandbox.context.account
    ids = V3Ids(sandbox.spec.seed)
    draft = next(c for c in account.campaigns.values() if c.status == "DRAFT")
    sent = _sent(account)[0]
    for activity in (ids.activity(draft.id), ids.activity(sent.id, "permalink")):
        for kind in KINDS:
            body = v3.get(REPORT.format(activity, kind))
            assert body["tracking_activities"] == [] and not body.get("_links")
    v3.get(REPORT.format("00000000-0000-4000-8000-000000000000", "sends"), status=404)


def test_tracking_filters_limits_and_errors(sandbox: Sandbox, v3: V3) -> None:
    account = sandbox.context.account
    ids = V3Ids(sandbox.spec.seed)
    camp = max(_sent(account), key=lambda c: account.campaign_counts(c.id)["clicks"])
    activity = ids.activity(camp.id)
    clicks = _log(account, camp.id, "clicks")
    uid = clicks[0].link_uid
    rows, _ = v3.walk(REPORT.format(activity, "clicks"), "tracking_activities",
                      {"url_id": uid, "limit": 1})  # the filter rides along in the cursor
    assert len(rows) == sum(1 for a in clicks if a.link_uid == uid) >= 1
    assert {r["url_id"] for r in rows} == {str(uid)}
    links = v3.get(f"/v3/reports/email_reports/{activity}/links")["link_click_counts"]
    assert sum(lk["unique_clicks"] for lk in links) == len(clicks)
    all_links = v3.get(f"/v3/reports/email_reports/{activity}/links", {"no_clicks": "true"})
    assert len(all_links["link_click_counts"]) == len({lk.url for lk in camp.links})
    bounced = [a for c in _sent(account) for a in _log(account, c.id, "bounces")]
    assert bounced
    target = bounced[0]
    codes = {target.bounce_code, "Z"}
    rows, _ = v3.walk(REPORT.format(ids.activity(target.campaign_id), "bounces"),
                      "tracking_activities", [("bounce_code", c) for c in sorted(codes)]
                      + [("limit", "1")])
    assert rows and {r["bounce_code"] for r in rows} <= codes
    assert len(rows) == sum(1 for a in _log(account, target.campaign_id, "bounces")
                            if a.bounce_code in codes)
    sends = REPORT.format(activity, "sends")
    assert len(v3.get(sends)["tracking_activities"]) == min(500, len(_log(account, camp.id,
                                                                           "sends")))
    for params in ({"limit": "501"}, {"limit": "0"}, {"cursor": "%%%"}):
        assert isinstance(v3.get(sends, params, status=400), list)
    v3.get(REPORT.format(activity, "bounces"), {"bounce_code": "Q"}, status=400)
    v3.get(REPORT.format(activity, "clicks"), {"url_id": "x"}, status=400)


def test_deleted_contact_rows_carry_deleted_at(sandbox: Sandbox, v3: V3) -> None:
    account = sandbox.context.account
    ids = V3Ids(sandbox.spec.seed)
    camp = _sent(account)[0]
    victim = _log(account, camp.id, "sends")[0].contact_id
    sandbox.advance(3600)  # within the token's 24 h
    account.set_contact_status(victim, "REMOVED")
    deleted_ms = account.contact_deleted_ms(victim)
    assert deleted_ms is not None
    rows, _ = v3.walk(REPORT.format(ids.activity(camp.id), "sends"), "tracking_activities")
    for r in rows:
        if r["contact_id"] == ids.contact(victim):
            assert r["deleted_at"] == date_only(deleted_ms)  # a date, not a date-time (§1.7)
        else:
            assert "deleted_at" not in r


def test_live_send_appears_newest_first_and_counts_follow(sandbox: Sandbox, v3: V3) -> None:
    account = sandbox.context.account
    ids = V3Ids(sandbox.spec.seed)
    cid = account.send_campaign(activities=30)
    activity = ids.activity(cid)
    sends = v3.walk(REPORT.format(activity, "sends"), "tracking_activities", {"limit": 5})[0]
    assert len(sends) == account.campaign_counts(cid)["sends"] > 0
    summary = v3.get("/v3/reports/summary_reports/email_campaign_summaries", {"limit": 1})
    newest = summary["bulk_email_campaign_summaries"][0]
    assert newest["campaign_id"] == ids.campaign(cid)
    assert newest["unique_counts"]["sends"] == len(sends)


def test_contact_activity_details(sandbox: Sandbox, v3: V3) -> None:
    account = sandbox.context.account
    ids = V3Ids(sandbox.spec.seed)
    cid = max((a.contact_id for a in account.iter_activities()),
              key=lambda c: len(account.activity_page(contact_id=c, limit=10**9)[0]))
    acts, _ = account.activity_page(contact_id=cid, limit=10**9)
    path = f"/v3/reports/contact_reports/{ids.contact(cid)}/activity_details"
    every = "em_sends,em_opens,em_clicks,em_bounces,em_optouts,em_forwards"
    rows, pages = v3.walk(path, "tracking_activities",
                          {"tracking_activities_list": every, "limit": 1})
    assert pages == len(acts) >= 2
    assert [(r["campaign_activity_id"], r["created_time"]) for r in rows] == [
        (ids.activity(a.campaign_id), ts_millis(a.ts_ms)) for a in acts]  # newest first
    assert all(r["campaign_activity_name"] == account.campaigns[a.campaign_id].name
               for r, a in zip(rows, acts, strict=True))
    repeated = v3.get(path, [("tracking_activity_type", "em_sends"),
                             ("tracking_activity_type", "em_opens"),
                             ("include_campaign_activity_names", "false")])
    want = [a for a in acts if a.type in (gen.SEND, gen.OPEN)]
    assert len(repeated["tracking_activities"]) == len(want)
    assert all("campaign_activity_name" not in r for r in repeated["tracking_activities"])
    for bad in ({}, {"tracking_activities_list": "em_sends", "tracking_activity_type": "em_opens"},
                {"tracking_activities_list": "em_nothing"},
                {"tracking_activities_list": "em_sends", "limit": "101"}):
        assert isinstance(v3.get(path, bad, status=400), list)
    v3.get("/v3/reports/contact_reports/00000000-0000-4000-8000-000000000000/activity_details",
           {"tracking_activities_list": "em_sends"}, status=404)


def test_contact_activity_summary_and_rates(sandbox: Sandbox, v3: V3) -> None:
    account = sandbox.context.account
    ids = V3Ids(sandbox.spec.seed)
    cid = next(a.contact_id for a in account.iter_activities())
    acts, _ = account.activity_page(contact_id=cid, limit=10**9)
    window = {"start": "2000-01-01T00:00:00Z", "end": "2040-01-01T00:00:00-0500"}
    base = f"/v3/reports/contact_reports/{ids.contact(cid)}"
    summary = v3.get(f"{base}/activity_summary", window)
    assert summary["contact_id"] == ids.contact(cid)
    total = sum(row[f"em_{n}"] for row in summary["campaign_activities"]
                for n in ("sends", "opens", "clicks", "forwards", "bounces", "unsubscribes"))
    assert total == len(acts)
    assert {row["campaign_activity_id"] for row in summary["campaign_activities"]} == {
        ids.activity(a.campaign_id) for a in acts}
    rates = v3.get(f"{base}/open_and_click_rates",
                   {"start": "2021-01-01T00:00:00Z", "end": "2025-12-31T00:00:00Z"})
    assert 0.0 <= rates["average_open_rate"] <= 1.0
    v3.get(f"{base}/activity_summary", {"start": "2020-01-01T00:00:00Z"}, status=400)
    v3.get(f"{base}/open_and_click_rates", window, status=400)  # over 5 years


def test_stats_ids_errors(sandbox: Sandbox, v3: V3) -> None:
    ids = V3Ids(sandbox.spec.seed)
    camp = _sent(sandbox.context.account)[0]
    good = ids.campaign(camp.id)
    body = v3.get(f"/v3/reports/stats/email_campaigns/{good},"
                  "00000000-0000-4000-8000-000000000000", status=404)
    assert body[0]["error_key"].startswith("reportingsvc.not_found")  # one bad id fails all
    v3.get("/v3/reports/stats/email_campaigns/" + ",".join([good] * 1 + [
        f"00000000-0000-4000-8000-{i:012d}" for i in range(150)]), status=400)
    activity = ids.activity(camp.id)
    v3.get("/v3/reports/stats/email_campaign_activities/" + ",".join(
        [activity] + [f"00000000-0000-4000-8000-{i:012d}" for i in range(10)]), status=400)
    permalink = v3.get(f"/v3/reports/stats/email_campaign_activities/"
                       f"{ids.activity(camp.id, 'permalink')}")
    assert set(permalink["results"][0]["stats"].values()) == {0}


def test_reports_need_the_metrics_privilege_and_their_scope(sandbox: Sandbox) -> None:
    ids = V3Ids(sandbox.spec.seed)
    camp = _sent(sandbox.context.account)[0]
    campaign_only = V3(sandbox, sandbox.v3_tokens.issue_access_token(["campaign_data"]))
    contact_path = (f"/v3/reports/contact_reports/{ids.contact(1)}/activity_details"
                    "?tracking_activities_list=em_sends")
    campaign_only.get(REPORT.format(ids.activity(camp.id), "sends"))
    campaign_only.get(contact_path, status=403)  # contact reports need contact_data (§1.2)
    sandbox.v3_tokens.privileges = CAMPAIGN_CREATOR_PRIVILEGES  # no ui:campaign:metrics
    owner_scopes = V3(sandbox)
    owner_scopes.get(REPORT.format(ids.activity(camp.id), "sends"), status=403)
    owner_scopes.get("/v3/reports/summary_reports/email_campaign_summaries", status=403)
    owner_scopes.get("/v3/emails", {"limit": 1})  # campaign:read is enough there


def test_tracking_paging_is_stable_while_the_campaign_gets_more_activity(sandbox: Sandbox,
                                                                        v3: V3) -> None:
    account = sandbox.context.account
    ids = V3Ids(sandbox.spec.seed)
    camp = _sent(account)[0]
    before = [(ids.contact(a.contact_id), ts_millis(a.ts_ms))
              for a in _log(account, camp.id, "opens")]
    first = v3.get(REPORT.format(ids.activity(camp.id), "opens"), {"limit": 4})
    account.send_campaign(camp.id, activities=12)  # new opens land in front (newest first)
    rows, body = list(first["tracking_activities"]), first
    while body.get("_links"):
        body = v3.get(body["_links"]["next"]["href"])
        rows.extend(body["tracking_activities"])
    assert [(r["contact_id"], r["created_time"]) for r in rows] == before  # no dup, no gap
    after = v3.walk(REPORT.format(ids.activity(camp.id), "opens"), "tracking_activities")[0]
    assert len(after) == account.campaign_counts(camp.id)["opens"] > len(before)


def test_tracking_default_and_maximum_page_is_500(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory(AccountSpec(seed=9, contacts=1000, lists=1, campaigns=1,
                                     activities_per_campaign=1000, events=0))
    account = sb.context.account
    camp = _sent(account)[0]
    sends = account.campaign_counts(camp.id)["sends"]
    assert sends > 500
    v3 = V3(sb)
    path = REPORT.format(V3Ids(9).activity(camp.id), "sends")
    first = v3.get(path)
    assert len(first["tracking_activities"]) == 500  # default 500 (§3.8)
    rest = v3.get(first["_links"]["next"]["href"])
    assert len(rest["tracking_activities"]) == sends - 500 and "_links" not in rest
    assert len(v3.get(path, {"limit": "500"})["tracking_activities"]) == 500
    stats = v3.get(f"/v3/reports/stats/email_campaigns/{V3Ids(9).campaign(camp.id)}")
    assert stats["results"][0]["stats"]["em_sends"] == sends
