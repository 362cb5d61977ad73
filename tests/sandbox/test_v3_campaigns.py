"""The sandbox's v3 email campaigns (constant-contact-v3-api.md §3.6), over real HTTP, every body
checked against the official contract."""

from __future__ import annotations

from typing import Any

import httpx
from v3_client import V3, v3_fixture  # noqa: F401 - the `v3` fixture

from ctctsync.sandbox import Sandbox
from ctctsync.sandbox.account import AccountSpec
from ctctsync.sandbox.testing import SandboxFactory
from ctctsync.sandbox.v3.common import ts_millis
from ctctsync.sandbox.v3.ids import V3Ids
from ctctsync.sandbox.v3.tokens import CAMPAIGN_CREATOR_PRIVILEGES

STATUS_LIST = {"DRAFT": "Draft", "SCHEDULED": "Scheduled", "SENT": "Done", "DELETED": "Removed"}


def _ordered(sb: Sandbox) -> list[Any]:
    camps = sb.context.account.campaigns.values()
    return sorted(camps, key=lambda c: (c.created_ms, c.id), reverse=True)


def test_emails_walk_every_campaign_including_removed(sandbox: Sandbox, v3: V3) -> None:
    rows, pages = v3.walk("/v3/emails", "campaigns", {"limit": 2})
    camps = _ordered(sandbox)
    assert pages == (len(camps) + 1) // 2
    ids = V3Ids(sandbox.spec.seed)
    # every campaign once, newest created first (observed order, §1.8)
    assert [r["campaign_id"] for r in rows] == [ids.campaign(c.id) for c in camps]
    for c, r in zip(camps, rows, strict=True):
        assert r["name"] == c.name
        assert r["current_status"] == STATUS_LIST[c.status]  # mixed case in the list (§1.6)
        assert r["created_at"] == ts_millis(c.created_ms)
        assert r["updated_at"] == ts_millis(c.modified_ms)
        assert (r["type"], r["type_code"]) in {("NEWSLETTER", 10), ("CUSTOM_CODE_EMAIL", 26)}
    assert "Removed" in {r["current_status"] for r in rows}  # deleted ones are listed (§1.7)


def test_emails_limits_and_default_page(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory(AccountSpec(seed=3, contacts=40, lists=2, campaigns=53,
                                     activities_per_campaign=2, events=0))
    v3 = V3(sb)
    first = v3.get("/v3/emails")
    assert len(first["campaigns"]) == 50 and "_links" in first  # default 50 (§1.3)
    last = v3.get(first["_links"]["next"]["href"])
    assert len(last["campaigns"]) == 3 and "_links" not in last  # no _links on the last page
    assert len(v3.get("/v3/emails", {"limit": 500})["campaigns"]) == 53
    for bad in ("0", "501", "x"):
        body = v3.get("/v3/emails", {"limit": bad}, status=400)
        assert isinstance(body, list) and body[0]["error_key"].endswith("validation.error")


def test_emails_date_filters_on_updated_at_carried_by_the_cursor(sandbox: Sandbox,
                                                                 v3: V3) -> None:
    camps = sorted(sandbox.context.account.campaigns.values(), key=lambda c: c.modified_ms)
    lo, hi = camps[1].modified_ms, camps[-2].modified_ms
    params = {"after_date": ts_millis(lo), "before_date": ts_millis(hi), "limit": 1}
    rows, pages = v3.walk("/v3/emails", "campaigns", params)
    wanted = {c.name for c in camps if lo <= c.modified_ms < hi}
    assert {r["name"] for r in rows} == wanted and pages == len(wanted) >= 2
    v3.get("/v3/emails", {"after_date": "not-a-date"}, status=400)


def test_paging_is_stable_while_a_campaign_is_sent(sandbox: Sandbox, v3: V3) -> None:
    before = {c.name for c in sandbox.context.account.campaigns.values()}
    first = v3.get("/v3/emails", {"limit": 3})
    new_id = sandbox.context.account.send_campaign(activities=10)
    rows = list(first["campaigns"])
    body = first
    while "_links" in body:
        body = v3.get(body["_links"]["next"]["href"])
        rows.extend(body["campaigns"])
    names = [r["name"] for r in rows]
    assert len(names) == len(set(names)) and set(names) == before  # no dup, no gap
    fresh = v3.get("/v3/emails", {"limit": 1})["campaigns"][0]
    assert fresh["name"] == sandbox.context.account.campaigns[new_id].name  # newest first


def test_campaign_detail_and_its_activities(sandbox: Sandbox, v3: V3) -> None:
    account = sandbox.context.account
    for row in v3.walk("/v3/emails", "campaigns")[0]:
        detail = v3.get(f"/v3/emails/{row['campaign_id']}")
        assert detail["current_status"] == row["current_status"].upper()  # upper in detail
        assert [a["role"] for a in detail["campaign_activities"]] == ["primary_email",
                                                                       "permalink"]
        primary = detail["campaign_activities"][0]["campaign_activity_id"]
        path = f"/v3/emails/activities/{primary}"
        if detail["current_status"] == "REMOVED":  # REMOVED activities cannot be fetched
            v3.get(path, status=404)
            continue
        full = v3.get(path, {"include": "physical_address_in_footer,permalink_url,"
                                         "html_content,document_properties"})
        camp = next(c for c in account.campaigns.values() if c.name == row["name"])
        assert full["campaign_id"] == row["campaign_id"]
        assert full["contact_list_ids"] == [account.list_uuid(lid) for lid in camp.list_ids]
        assert full["subject"] == camp.subject and full["current_status"] == row[
            "current_status"].upper()
        assert full["document_properties"]["subscribe_link_enabled"] == "false"  # a string
        assert ("permalink_url" in full) == (camp.status == "SENT")
        bare = v3.get(path)
        assert not {"html_content", "document_properties", "permalink_url"} & set(bare)
    v3.get(f"/v3/emails/activities/{primary}", {"include": "everything"}, status=400)
    v3.get("/v3/emails/00000000-0000-4000-8000-000000000000", status=404)
    v3.get("/v3/emails/activities/not-a-uuid", status=404)


def test_send_history(sandbox: Sandbox, v3: V3) -> None:
    account = sandbox.context.account
    seen_sent = seen_draft = False
    for row in v3.walk("/v3/emails", "campaigns")[0]:
        detail = v3.get(f"/v3/emails/{row['campaign_id']}")
        primary, permalink = (a["campaign_activity_id"] for a in detail["campaign_activities"])
        if row["current_status"] == "Removed":
            v3.get(f"/v3/emails/activities/{primary}/send_history", status=404)
            continue
        history = v3.get(f"/v3/emails/activities/{primary}/send_history")
        scheduled = v3.get(f"/v3/emails/activities/{primary}/schedules")
        assert len(scheduled) == (row["current_status"] == "Scheduled")
        assert v3.get(f"/v3/emails/activities/{permalink}/send_history") == []
        camp = next(c for c in account.campaigns.values() if c.name == row["name"])
        if row["current_status"] == "Done":
            seen_sent = True
            assert len(history) == 1 and history[0]["send_status"] == "COMPLETED"
            assert history[0]["count"] == account.campaign_counts(camp.id)["sends"] > 0
            assert history[0]["run_date"] == ts_millis(camp.last_run_ms or 0)
        else:
            seen_draft = True
            assert history == []  # never sent (§3.6)
    assert seen_sent and seen_draft


def test_campaign_id_xrefs(sandbox: Sandbox, v3: V3) -> None:
    account = sandbox.context.account
    v2_ids = sorted(account.campaigns)
    body = v3.get("/v3/emails/campaign_id_xrefs",
                  {"v2_email_campaign_ids": ",".join(map(str, [*v2_ids, 12345]))})
    assert [x["v2_email_campaign_id"] for x in body["xrefs"]] == [str(i) for i in v2_ids]
    for x in body["xrefs"]:
        detail = v3.get(f"/v3/emails/{x['campaign_id']}")
        assert detail["campaign_activities"][0]["campaign_activity_id"] == x[
            "campaign_activity_id"]
        assert detail["name"] == account.campaigns[int(x["v2_email_campaign_id"])].name
    v3.get("/v3/emails/campaign_id_xrefs", status=400)
    v3.get("/v3/emails/campaign_id_xrefs",
           {"v2_email_campaign_ids": ",".join(str(i) for i in range(1, 52))}, status=400)
    v3.get("/v3/emails/campaign_id_xrefs", {"v2_email_campaign_ids": "abc"}, status=400)


def test_token_scope_and_privilege(sandbox: Sandbox) -> None:
    with httpx.Client(base_url=sandbox.base_url) as anon:
        r = anon.get("/v3/emails")
        assert r.status_code == 401 and r.json() == {"error_key": "unauthorized",
                                                     "error_message": "Unauthorized"}
    contacts_only = V3(sandbox, sandbox.v3_tokens.issue_access_token(["contact_data"]))
    assert isinstance(contacts_only.get("/v3/emails", status=403), list)
    sandbox.v3_tokens.privileges = CAMPAIGN_CREATOR_PRIVILEGES  # holds campaign:read
    assert V3(sandbox).get("/v3/emails", {"limit": 1})["campaigns"]
