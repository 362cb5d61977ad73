"""Mutations (Python and admin API), consistency of the account's views, counters, determinism."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import httpx
import pytest

from ctctsync.sandbox import AccountSpec, Sandbox
from ctctsync.sandbox.testing import SMALL_SPEC, SandboxFactory
from ctctsync.sandbox.v2.render import utc_date


def _walk(client: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    body = client.get(path, params=params).json()
    while True:
        out.extend(body["results"])
        link = body["meta"]["pagination"].get("next_link")
        if not link:
            return out
        body = client.get(link.split("?")[0], params={"next": link.split("next=")[1]}).json()


def _now(sb: Sandbox) -> str:
    return utc_date(sb.account.clock.now_ms())


def _activity_key(a: dict[str, Any]) -> tuple[str, str, str, str]:
    date = next(v for k, v in a.items() if k.endswith("_date"))
    return (str(a["campaign_id"]), a["contact_id"], a["activity_type"], date)


def test_update_contacts_visible_with_modified_since(sandbox: Sandbox,
                                                     sandbox_client: httpx.Client) -> None:
    before = _now(sandbox)
    assert _walk(sandbox_client, "/v2/contacts", modified_since=before) == []
    ids = sandbox.account.update_contacts(7)
    changed = _walk(sandbox_client, "/v2/contacts", modified_since=before, limit=3)
    assert [c["id"] for c in changed] == [str(i) for i in ids]
    assert all(c["modified_date"] >= before for c in changed)
    truth = {c["id"]: c for c in sandbox.truth("contacts")}
    assert all(truth[c["id"]] == c for c in changed)


def test_update_changes_fields_and_lists_keep_counts(sandbox: Sandbox,
                                                     sandbox_client: httpx.Client) -> None:
    old = {c["id"]: c for c in sandbox.truth("contacts")}
    ids = sandbox.account.update_contacts(40, change_lists=1.0)
    new = {c["id"]: c for c in sandbox.truth("contacts")}
    assert any(old[str(i)]["lists"] != new[str(i)]["lists"] for i in ids)
    counts = Counter(lst["id"] for c in new.values() for lst in c["lists"])
    lists = sandbox_client.get("/v2/lists").json()
    assert {lst["id"]: lst["contact_count"] for lst in lists} == {
        lst["id"]: counts.get(lst["id"], 0) for lst in lists}


def test_add_contacts(sandbox: Sandbox, sandbox_client: httpx.Client) -> None:
    before = _now(sandbox)
    ids = sandbox.account.add_contacts(3)
    assert ids == [SMALL_SPEC.contacts + 1, SMALL_SPEC.contacts + 2, SMALL_SPEC.contacts + 3]
    new = _walk(sandbox_client, "/v2/contacts", modified_since=before)
    assert [c["id"] for c in new] == [str(i) for i in ids]
    assert all(c["status"] == "ACTIVE" and c["created_date"] >= before for c in new)
    assert len(_walk(sandbox_client, "/v2/contacts", limit=500)) == SMALL_SPEC.contacts + 3


def test_lists_add_and_modify(sandbox: Sandbox, sandbox_client: httpx.Client) -> None:
    before = _now(sandbox)
    lid = sandbox.account.add_list("Fresh list")
    sandbox.account.modify_list(1, "Renamed")
    changed = sandbox_client.get("/v2/lists", params={"modified_since": before}).json()
    assert {(lst["id"], lst["name"]) for lst in changed} == {("1", "Renamed"),
                                                             (str(lid), "Fresh list")}


def test_send_new_campaign(sandbox: Sandbox, sandbox_client: httpx.Client) -> None:
    before = _now(sandbox)
    cid = str(sandbox.account.send_campaign(activities=30))
    listed = _walk(sandbox_client, "/v2/emailmarketing/campaigns", modified_since=before)
    assert [(c["id"], c["status"]) for c in listed] == [(cid, "SENT")]
    summary = sandbox_client.get(
        f"/v2/emailmarketing/campaigns/{cid}/tracking/reports/summary").json()
    sends = _walk(sandbox_client, f"/v2/emailmarketing/campaigns/{cid}/tracking/sends",
                  created_since=before)
    assert summary["sends"] == len(sends) > 0
    recipient = sends[0]["contact_id"]
    mine = _walk(sandbox_client, f"/v2/contacts/{recipient}/tracking", created_since=before)
    assert any(a["campaign_id"] == cid and a["activity_type"] == "EMAIL_SEND" for a in mine)
    assert cid in {r["campaign_id"] for r in sandbox.truth("email_campaign_summary")}


def test_new_activities_on_existing_campaign(sandbox: Sandbox,
                                             sandbox_client: httpx.Client) -> None:
    camp = sandbox.truth("email_campaign_summary")[0]
    before = _now(sandbox)
    sandbox.account.send_campaign(int(camp["campaign_id"]), activities=10)
    after = {r["campaign_id"]: r for r in sandbox.truth("email_campaign_summary")}
    new_opens = _walk(sandbox_client,
                      f"/v2/emailmarketing/campaigns/{camp['campaign_id']}/tracking/opens",
                      created_since=before)
    assert new_opens
    assert after[camp["campaign_id"]]["opens"] >= camp["opens"] + len(new_opens) - 0
    # the campaign itself did not change, so modified_since does not list it
    listed = _walk(sandbox_client, "/v2/emailmarketing/campaigns", modified_since=before)
    assert camp["campaign_id"] not in {c["id"] for c in listed}


def test_trash_files(sandbox: Sandbox, sandbox_client: httpx.Client) -> None:
    files = _walk(sandbox_client, "/v2/library/files")
    trash = _walk(sandbox_client, "/v2/library/folders/trash/files")
    moved = sandbox.account.trash_files(2)
    assert [str(i) for i in moved] == [f["id"] for f in files[:2]]  # newest first
    files2 = _walk(sandbox_client, "/v2/library/files")
    trash2 = _walk(sandbox_client, "/v2/library/folders/trash/files")
    assert len(files2) == len(files) - 2
    assert len(trash2) == len(trash) + 2
    assert all(f["status"] == "Deleted" for f in trash2)


def test_contact_and_campaign_tracking_are_the_same_activities(
        sandbox: Sandbox, sandbox_client: httpx.Client) -> None:
    by_contact = {_activity_key(a) for a in sandbox.truth("contact_tracking")}
    by_campaign = set()
    for camp in sandbox.truth("email_campaign_summary"):
        cid = camp["campaign_id"]
        per_type = {}
        for kind in ("sends", "opens", "clicks", "forwards", "bounces", "unsubscribes"):
            rows = _walk(sandbox_client, f"/v2/emailmarketing/campaigns/{cid}/tracking/{kind}")
            per_type[kind] = len(rows)
            by_campaign |= {_activity_key(a) for a in rows}
        # summary counts are consistent with the activities
        assert {k: camp[k] for k in per_type} == per_type
    assert by_contact == by_campaign
    assert len(by_contact) == len(sandbox.truth("contact_tracking"))


def test_statuses_of_generated_campaigns(sandbox: Sandbox) -> None:
    statuses = Counter(c.status for c in sandbox.account.campaigns.values())
    assert statuses["SENT"] > statuses["DRAFT"] + statuses["SCHEDULED"]
    assert statuses["DELETED"] == 1


def test_admin_mutation_endpoints(sandbox: Sandbox, sandbox_client: httpx.Client) -> None:
    base = f"{sandbox.base_url}/_sandbox"
    before_clock = httpx.get(f"{base}/clock").json()
    advanced = httpx.post(f"{base}/clock/advance", json={"seconds": 3600}).json()
    assert advanced["offset_seconds"] == before_clock["offset_seconds"] + 3600
    before = _now(sandbox)
    updated = httpx.post(f"{base}/contacts/update", json={"n": 4}).json()["ids"]
    added = httpx.post(f"{base}/contacts/add", json={"n": 2}).json()["ids"]
    changed = _walk(sandbox_client, "/v2/contacts", modified_since=before)
    assert [c["id"] for c in changed] == sorted(updated + added, key=int)
    lid = httpx.post(f"{base}/lists/add", json={"name": "Admin list"}).json()["id"]
    assert httpx.post(f"{base}/lists/{lid}/modify", json={"name": "Admin list 2"}
                      ).status_code == 200
    camp = httpx.post(f"{base}/campaigns/send", json={"activities": 8}).json()["campaign_id"]
    trashed = httpx.post(f"{base}/library/trash", json={"n": 1}).json()["ids"]
    assert sandbox_client.get(f"/v2/emailmarketing/campaigns/{camp}").json()["status"] == "SENT"
    assert trashed[0] in {f["id"] for f in sandbox.truth("trash_files")}
    truth = httpx.get(f"{base}/truth/contact_lists").json()
    assert truth == sandbox.truth("contact_lists")
    assert {"id": lid, "name": "Admin list 2"}.items() <= truth[-1].items()
    state = httpx.get(f"{base}/state").json()
    assert state["contacts"] == SMALL_SPEC.contacts + 2


def test_counters(sandbox: Sandbox, sandbox_client: httpx.Client) -> None:
    sandbox.counters.reset()
    sandbox_client.get("/v2/contacts")
    sandbox_client.get("/v2/contacts/3/tracking")
    sandbox_client.get("/v2/contacts/4/tracking")
    sandbox_client.get("/v2/contacts/99999")
    httpx.get(f"{sandbox.base_url}/v2/contacts", params={"api_key": "stranger"})
    snap = httpx.get(f"{sandbox.base_url}/_sandbox/counters").json()
    assert snap == sandbox.counters.snapshot()
    eps = snap["endpoints"]
    assert eps["GET /v2/contacts/{id}/tracking"] == {"total": 2, "200": 2, "2xx": 2}
    assert eps["GET /v2/contacts/{id}"] == {"total": 1, "404": 1, "4xx": 1}
    assert eps["GET /v2/contacts"] == {"total": 2, "200": 1, "2xx": 1, "403": 1, "4xx": 1}
    assert snap["api_keys"][sandbox.credentials.api_key]["total"] == 4
    assert snap["api_keys"]["stranger"]["403"] == 1
    assert snap["total"] == 5
    assert httpx.delete(f"{sandbox.base_url}/_sandbox/counters").json()["total"] == 0
    assert sandbox.counters.snapshot()["total"] == 0


PATHS = ["/v2/contacts?limit=100", "/v2/emailmarketing/campaigns", "/v2/lists",
         "/v2/library/files", "/v2/library/folders/trash/files", "/v2/account/info",
         "/v2/eventspot/events"]


def _bodies(sb: Sandbox) -> list[Any]:
    c = sb.credentials
    with httpx.Client(base_url=sb.base_url, params={"api_key": c.api_key},
                      headers={"Authorization": f"Bearer {c.access_token}"}) as client:
        out = [client.get(p.split("?")[0], params=dict(
            [p.split("?")[1].split("=")]) if "?" in p else None).json() for p in PATHS]
        camp = sb.truth("email_campaign_summary")[0]["campaign_id"]
        out.append(client.get(f"/v2/emailmarketing/campaigns/{camp}/tracking/clicks").json())
        out.append(client.get(f"/v2/emailmarketing/campaigns/{camp}").json())
    return out


def test_same_seed_same_bodies(sandbox_factory: SandboxFactory) -> None:
    a, b = sandbox_factory(), sandbox_factory()
    assert a.credentials == b.credentials
    assert _bodies(a) == _bodies(b)
    assert all(a.truth(t) == b.truth(t) for t in ("contacts", "contact_tracking", "events"))


def test_other_seed_other_bodies(sandbox_factory: SandboxFactory) -> None:
    a = sandbox_factory()
    b = sandbox_factory(AccountSpec(**{**SMALL_SPEC.__dict__, "seed": 8}))
    assert _bodies(a)[0] != _bodies(b)[0]
    assert a.credentials.api_key != b.credentials.api_key


def test_generated_values_look_real(sandbox: Sandbox) -> None:
    contacts = sandbox.truth("contacts")
    phones = [c["home_phone"] for c in contacts if c["home_phone"]]
    assert any("-" in p or "(" in p or "." in p for p in phones)
    assert any(not c["fax"] for c in contacts)  # "" rather than null
    assert any(not all(ch.isascii() for ch in c["first_name"] + c["last_name"])
               for c in contacts)
    fields = {f["name"] for c in contacts for f in c["custom_fields"]}
    assert fields <= {f"CustomField{i}" for i in range(1, 16)}
    assert len(fields) > 3
    dates = [f["created_date"] for f in sandbox.truth("my_library_files")]
    assert {d[-6:] for d in dates} == {"-05:00", "-04:00"}  # US-Eastern with DST
    for c in contacts:
        assert c["modified_date"] >= c["created_date"]


@pytest.mark.parametrize("table", ["contacts", "email_campaigns", "my_library_files",
                                   "account_info", "trash_files", "contact_lists",
                                   "contact_tracking", "email_campaign_summary", "events"])
def test_truth_tables_match_registry_names(sandbox: Sandbox, table: str) -> None:
    from ctctsync.tables import TABLES

    assert table in TABLES
    rows = sandbox.truth(table)
    assert rows
    if table == "email_campaign_summary":
        assert set(rows[0]) >= {"campaign_id", "last_run_date", "sends", "spam_count"}


def test_unknown_truth_table(sandbox: Sandbox) -> None:
    with pytest.raises(KeyError):
        sandbox.truth("nope")


@pytest.mark.parametrize("n", [1, 4, 30])
def test_activities_on_existing_campaign_are_exact(sandbox: Sandbox, n: int) -> None:
    camp = int(sandbox.truth("email_campaign_summary")[0]["campaign_id"])
    before = sandbox.account.activity_count()
    sandbox.account.send_campaign(camp, activities=n)
    assert sandbox.account.activity_count() - before == n


def test_contact_status_change(sandbox: Sandbox, sandbox_client: httpx.Client) -> None:
    target = next(c for c in sandbox.truth("contacts") if c["status"] == "ACTIVE" and c["lists"])
    before = _now(sandbox)
    r = httpx.post(f"{sandbox.base_url}/_sandbox/contacts/status",
                   json={"id": target["id"], "status": "removed"})
    assert r.status_code == 200
    changed = _walk(sandbox_client, "/v2/contacts", modified_since=before)
    assert [(c["id"], c["status"], c["lists"]) for c in changed] == [(target["id"], "REMOVED", [])]
    bad = httpx.post(f"{sandbox.base_url}/_sandbox/contacts/status",
                     json={"id": target["id"], "status": "GONE"})
    assert bad.status_code == 400


def test_activity_emails_are_the_contacts_emails(sandbox: Sandbox) -> None:
    emails = {c["id"]: c["email_addresses"][0]["email_address"] for c in sandbox.truth("contacts")}
    for a in sandbox.truth("contact_tracking"):
        assert a["email_address"] == emails[a["contact_id"]]


def test_reads_during_mutations_never_fail(sandbox: Sandbox) -> None:
    c = sandbox.credentials
    failures: list[str] = []
    stop = threading.Event()
    paths = ["/v2/contacts", "/v2/emailmarketing/campaigns", "/v2/lists", "/v2/library/files",
             "/v2/contacts/5/tracking"]

    def reader(path: str) -> None:
        with httpx.Client(base_url=sandbox.base_url, params={"api_key": c.api_key},
                          headers={"Authorization": f"Bearer {c.access_token}"}) as client:
            while not stop.is_set():
                r = client.get(path, params={"modified_since": "2020-01-01T00:00:00Z"}
                               if path in ("/v2/contacts", "/v2/lists") else None)
                if r.status_code != 200:
                    failures.append(f"{path}: {r.status_code} {r.text[:100]}")

    threads = [threading.Thread(target=reader, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    try:
        for _ in range(15):
            sandbox.account.update_contacts(20)
            sandbox.account.add_contacts(5)
            sandbox.account.send_campaign(activities=10)
            sandbox.account.add_list()
            sandbox.account.trash_files(1)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []


def test_update_contacts_takes_the_ids_the_sandbox_returns(
    sandbox: Sandbox, sandbox_client: httpx.Client
) -> None:
    # the sandbox hands out ids as strings ("12"); feeding them back must work
    base = f"{sandbox.base_url}/_sandbox"
    added = httpx.post(f"{base}/contacts/add", json={"n": 2}).json()["ids"]
    assert all(isinstance(i, str) for i in added)
    before = _now(sandbox)
    r = httpx.post(f"{base}/contacts/update", json={"ids": added})
    assert r.status_code == 200, r.text
    assert r.json()["ids"] == sorted(added, key=int)
    changed = _walk(sandbox_client, "/v2/contacts", modified_since=before)
    assert [c["id"] for c in changed] == sorted(added, key=int)
    # numbers work too; an unknown id is a 404 and a malformed one a 400, never a 500
    assert httpx.post(f"{base}/contacts/update", json={"ids": [int(added[0])]}).status_code == 200
    missing = httpx.post(f"{base}/contacts/update", json={"ids": ["999999999"]})
    assert missing.status_code == 404
    for bad in (["abc"], "12", [None], [1.5], {"n": "x"}):
        body = bad if isinstance(bad, dict) else {"ids": bad}
        assert httpx.post(f"{base}/contacts/update", json=body).status_code == 400, bad
