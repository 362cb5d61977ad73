"""The sandbox's frozen clock, its "decay" activity model, retraction of activities and the
per-key rate limits, over real HTTP (issue 10)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from v3_client import V3

from ctctsync.sandbox import AccountSpec, Sandbox
from ctctsync.sandbox import generator as gen
from ctctsync.sandbox.cli import parse_instant
from ctctsync.sandbox.clock import ANCHOR_MS
from ctctsync.sandbox.decay import OPEN_DELAY
from ctctsync.sandbox.testing import SandboxFactory
from ctctsync.sandbox.v2.render import utc_date

DECAY_SPEC = AccountSpec(seed=11, contacts=600, lists=3, campaigns=8, activities_per_campaign=160,
                         library_files=2, trash_files=1, events=1, activity_model="decay")
DAY_S = 86_400
KINDS = ("sends", "opens", "clicks", "forwards", "bounces", "unsubscribes")
V3_STATS = {"sends": "em_sends", "opens": "em_opens_all", "clicks": "em_clicks_all",
            "forwards": "em_forwards", "bounces": "em_bounces", "unsubscribes": "em_optouts"}
V3_REPORTS = {"sends": "sends", "opens": "opens", "clicks": "clicks", "forwards": "forwards",
              "bounces": "bounces", "unsubscribes": "optouts"}


def _v2(sb: Sandbox) -> httpx.Client:
    c = sb.credentials
    return httpx.Client(base_url=sb.base_url, params={"api_key": c.api_key},
                        headers={"Authorization": f"Bearer {c.access_token}",
                                 "Accept": "application/json"}, timeout=10)


def _admin(sb: Sandbox, path: str, body: dict[str, Any] | None = None) -> Any:
    url = f"{sb.base_url}/_sandbox{path}"
    r = httpx.get(url) if body is None else httpx.post(url, json=body)
    assert r.status_code == 200, r.text
    return r.json()


# -- frozen clock ------------------------------------------------------------------------------


def test_frozen_clock_moves_only_by_advance(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory(frozen_at_ms=ANCHOR_MS)
    first = _admin(sb, "/clock")
    assert first["frozen"] is True
    assert first["now"] == "2024-06-01T00:00:00+00:00"
    assert _admin(sb, "/clock")["now"] == first["now"]  # no real time passes on it
    after = _admin(sb, "/clock/advance", {"seconds": 3 * 86_400})
    assert after["now"] == "2024-06-04T00:00:00+00:00"
    # a mutation is stamped with the frozen time, and a later reading is not before it
    [cid] = sb.account.update_contacts(1)
    with _v2(sb) as client:
        contact = client.get(f"/v2/contacts/{cid}").json()
    assert contact["modified_date"] == utc_date(ANCHOR_MS + 3 * 86_400_000)
    assert sb.account.clock.now_ms() == ANCHOR_MS + 3 * 86_400_000


def test_live_send_on_a_frozen_clock_gets_distinct_instants(
        sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory(frozen_at_ms=ANCHOR_MS)
    cid = sb.account.send_campaign(activities=30)
    acts, _ = sb.account.activity_page(campaign_id=cid, limit=10**9)
    stamps = [a.ts_ms for a in acts]
    assert len(set(stamps)) == len(stamps) > 0
    assert min(stamps) == ANCHOR_MS
    assert sb.account.clock.now_ms() >= max(stamps)  # all of it visible at once


def test_frozen_at_option_parses_anchor_and_instants() -> None:
    assert parse_instant("anchor") == ANCHOR_MS
    assert parse_instant("2024-06-01T01:00:00Z") == ANCHOR_MS + 3_600_000
    assert parse_instant("2024-06-01T01:00:00") == ANCHOR_MS + 3_600_000  # UTC when naive
    with pytest.raises(ValueError, match="ISO-8601"):
        parse_instant("yesterday")


# -- the decay model ---------------------------------------------------------------------------


def _v2_rows(client: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    body = client.get(path, params=params).json()
    while True:
        rows.extend(body["results"])
        link = body["meta"]["pagination"].get("next_link")
        if not link:
            return rows
        body = client.get(link.split("?")[0], params={"next": link.split("next=")[1]}).json()


def _newest_sent(sb: Sandbox) -> gen.Campaign:
    return max((c for c in sb.account.campaigns.values() if c.status == "SENT"),
               key=lambda c: c.last_run_ms or 0)


def _faces(sb: Sandbox, v2: httpx.Client, camp: gen.Campaign) -> dict[str, Any]:
    """The campaign's counts as each face tells them, and its tracking rows."""
    v3 = V3(sb)  # a fresh token: one lives 24 h of the sandbox clock
    base = f"/v2/emailmarketing/campaigns/{camp.id}"
    detail = v2.get(base).json()["tracking_summary"]
    summary = v2.get(f"{base}/tracking/reports/summary").json()
    rows = {k: _v2_rows(v2, f"{base}/tracking/{k}") for k in KINDS}
    [xref] = v3.get("/v3/emails/campaign_id_xrefs",
                     {"v2_email_campaign_ids": str(camp.id)})["xrefs"]
    activity = xref["campaign_activity_id"]
    [stats] = v3.get(f"/v3/reports/stats/email_campaigns/{xref['campaign_id']}")["results"]
    v3_rows = {k: v3.walk(f"/v3/reports/email_reports/{activity}/tracking/{V3_REPORTS[k]}",
                          "tracking_activities")[0] for k in KINDS}
    not_opened, _ = v3.walk(f"/v3/reports/email_reports/{activity}/tracking/didnotopens",
                            "tracking_activities")
    assert len(not_opened) == stats["stats"]["em_not_opened"]
    v3.http.close()
    return {"detail": {k: detail[k] for k in KINDS}, "summary": {k: summary[k] for k in KINDS},
            "v2_rows": {k: len(v) for k, v in rows.items()},
            "v3_stats": {k: stats["stats"][V3_STATS[k]] for k in KINDS},
            "v3_rows": {k: len(v) for k, v in v3_rows.items()},
            "truth": sb.account.campaign_counts(camp.id), "rows": rows, "v3": v3_rows}


def test_decay_activity_arrives_as_the_clock_moves_and_every_face_agrees(
        sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory(DECAY_SPEC, frozen_at_ms=ANCHOR_MS)
    camp = _newest_sent(sb)
    assert camp.last_run_ms is not None and ANCHOR_MS - camp.last_run_ms < 4 * 86_400_000
    seen: list[dict[str, int]] = []
    with _v2(sb) as v2:
        for step_days in (0, 1, 6, 60):
            sb.advance(step_days * DAY_S)
            now = sb.account.clock.now_ms()
            faces = _faces(sb, v2, camp)
            counts = faces["truth"]
            for face in ("detail", "summary", "v2_rows", "v3_stats", "v3_rows"):
                assert faces[face] == counts, face
            # nothing from the future: every row is stamped at or before the clock's now
            assert all(row["open_date"] <= utc_date(now) for row in faces["rows"]["opens"])
            assert all(row["created_time"] <= f"{utc_date(now)[:-5]}.999Z"
                       for row in faces["v3"]["opens"])
            seen.append(counts)
    opens = [c["opens"] for c in seen]
    assert opens == sorted(opens) and opens[0] < opens[-1]  # more arrived as days passed
    assert seen[0]["sends"] == seen[-1]["sends"] > 0  # sends came at once
    everything = sb.account.activities.campaign_counts(camp.id, 1 << 62)
    assert seen[-1] == everything  # 67 days on, every activity of it has arrived


def test_created_since_sees_exactly_what_arrived(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory(DECAY_SPEC, frozen_at_ms=ANCHOR_MS)
    camp = _newest_sent(sb)
    path = f"/v2/emailmarketing/campaigns/{camp.id}/tracking/opens"
    with _v2(sb) as v2:
        before = {r["contact_id"] for r in _v2_rows(v2, path)}
        mark = utc_date(sb.account.clock.now_ms())
        sb.advance(2 * DAY_S)
        after = {r["contact_id"] for r in _v2_rows(v2, path)}
        new = _v2_rows(v2, path, created_since=mark)
    assert before < after
    assert {r["contact_id"] for r in new} == after - before


def test_contact_views_and_truth_hide_the_future(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory(DECAY_SPEC, frozen_at_ms=ANCHOR_MS)
    acc = sb.account
    future = [a for a in acc.activities.visible(1 << 62) if a.ts_ms > acc.clock.now_ms()]
    assert future  # the newest campaigns still have activity to come
    first = min(future, key=lambda a: a.ts_ms)
    with _v2(sb) as v2:
        rows = v2.get(f"/v2/contacts/{first.contact_id}/tracking").json()["results"]
        truth = sb.truth("contact_tracking")
        assert len(truth) == acc.activity_count() == len(list(acc.iter_activities()))
        sb.advance((first.ts_ms - acc.clock.now_ms()) / 1000)  # exactly to its stamp
        rows_then = v2.get(f"/v2/contacts/{first.contact_id}/tracking").json()["results"]
    assert len(rows_then) == len(rows) + 1
    assert len(sb.truth("contact_tracking")) == len(truth) + 1


def test_live_send_under_decay_spreads_into_the_future(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory(DECAY_SPEC, frozen_at_ms=ANCHOR_MS + 30 * 86_400_000)
    cid = sb.account.send_campaign(activities=300)
    now = sb.account.campaign_counts(cid)
    assert now["sends"] > 100
    assert now["opens"] < now["sends"] // 20  # the opens are still to come
    sb.advance(2 * DAY_S)
    two_days = sb.account.campaign_counts(cid)
    sb.advance(120 * DAY_S)
    final = sb.account.campaign_counts(cid)
    assert final["sends"] == now["sends"]
    # ~85 % of the opens within 48 h (decay.OPEN_DELAY); a wide band: 100-odd draws
    share = two_days["opens"] / final["opens"]
    assert 1 - OPEN_DELAY.after(2 * 86_400_000) - 0.15 < share < 0.97


# -- retraction --------------------------------------------------------------------------------


def test_retraction_lowers_counts_and_rows_together(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory(DECAY_SPEC, frozen_at_ms=ANCHOR_MS)
    camp = _newest_sent(sb)
    with _v2(sb) as v2:
        before = _faces(sb, v2, camp)
        assert before["truth"]["bounces"] >= 3 and before["truth"]["unsubscribes"] >= 1
        oldest = sorted(before["rows"]["bounces"], key=lambda r: r["bounce_date"])[:2]
        gone = _admin(sb, f"/campaigns/{camp.id}/retract", {"kind": "EMAIL_BOUNCE", "n": 2})
        assert gone["retracted"] == 2 and gone["activity_type"] == "EMAIL_BOUNCE"
        assert set(gone["contact_ids"]) == {r["contact_id"] for r in oldest}  # oldest first
        optout = _admin(sb, f"/campaigns/{camp.id}/retract", {"kind": "optouts"})
        assert optout["retracted"] == 1
        after = _faces(sb, v2, camp)
        for face in ("detail", "summary", "v2_rows", "v3_stats", "v3_rows"):
            assert after[face] == after["truth"], face
        assert after["truth"] == {**before["truth"], "bounces": before["truth"]["bounces"] - 2,
                                  "unsubscribes": before["truth"]["unsubscribes"] - 1}
        left = {r["contact_id"] for r in after["rows"]["bounces"]}
        assert not left & set(gone["contact_ids"])
        # the contact's own tracking lost it too, and so did the truth
        cid = gone["contact_ids"][0]
        kinds = [r["activity_type"] for r in v2.get(f"/v2/contacts/{cid}/tracking").json()[
            "results"] if str(r["campaign_id"]) == str(camp.id)]
        assert "EMAIL_BOUNCE" not in kinds and "EMAIL_SEND" in kinds
        truth_bounces = [r for r in sb.truth("contact_tracking")
                         if r["campaign_id"] == str(camp.id)
                         and r["activity_type"] == "EMAIL_BOUNCE"]
        assert len(truth_bounces) == after["truth"]["bounces"]
        # ... and a retracted activity stays gone as the clock moves on
        sb.advance(200 * DAY_S)
        assert not {r["contact_id"] for r in _faces(sb, v2, camp)["rows"]["bounces"]} & set(
            gone["contact_ids"])


def test_retraction_is_deterministic_and_bounded(sandbox_factory: SandboxFactory) -> None:
    picked = []
    for _ in range(2):
        sb = sandbox_factory(DECAY_SPEC, frozen_at_ms=ANCHOR_MS)
        camp = _newest_sent(sb)
        picked.append(_admin(sb, f"/campaigns/{camp.id}/retract",
                             {"kind": "EMAIL_OPEN", "n": 3})["contact_ids"])
    assert picked[0] == picked[1] and len(picked[0]) == 3
    opens = sb.account.campaign_counts(camp.id)["opens"]
    everything = _admin(sb, f"/campaigns/{camp.id}/retract", {"kind": "opens", "n": 10_000})
    assert everything["retracted"] == opens  # only what is visible can go
    assert sb.account.campaign_counts(camp.id)["opens"] == 0
    url = f"{sb.base_url}/_sandbox/campaigns"
    assert httpx.post(f"{url}/{camp.id}/retract", json={"kind": "EMAIL_NAP"}).status_code == 400
    assert httpx.post(f"{url}/{camp.id}/retract", json={"n": 1}).status_code == 400
    assert httpx.post(f"{url}/12345/retract", json={"kind": "opens"}).status_code == 404
