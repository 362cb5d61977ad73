"""Paging, limits and filters of the v2 face, over real HTTP."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from ctctsync.sandbox import Sandbox


def walk(client: httpx.Client, path: str, **params: Any) -> tuple[list[dict[str, Any]], int]:
    """Follow next_links to the end; returns all records and the number of pages."""
    records: list[dict[str, Any]] = []
    seen_links: set[str] = set()
    r = client.get(path, params=params)
    pages = 1
    while True:
        assert r.status_code == 200, r.text
        body = r.json()
        records.extend(body["results"])
        link = body["meta"]["pagination"].get("next_link")
        if link is None:
            assert body["meta"]["pagination"] == {}
            return records, pages
        assert link.startswith("/v2/")
        assert link not in seen_links, "a paging loop"
        seen_links.add(link)
        query = parse_qs(urlsplit(link).query)
        assert set(query) == {"next"}, link  # next_link carries only next=<token> (§1.3)
        r = client.get(urlsplit(link).path, params={"next": query["next"][0]})
        pages += 1


def decode(link: str) -> dict[str, list[str]]:
    token = parse_qs(urlsplit(link).query)["next"][0]
    assert "=" not in token  # base64url without padding
    return parse_qs(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())


@pytest.mark.parametrize(
    ("path", "table", "limit", "key"),
    [
        pytest.param("/v2/contacts", "contacts", 37, "id", id="contacts"),
        pytest.param("/v2/emailmarketing/campaigns", "email_campaigns", 2, "id",
                     id="email-campaigns"),
        pytest.param("/v2/library/files", "my_library_files", 4, "id", id="library-files"),
        pytest.param("/v2/library/folders/trash/files", "trash_files", 2, "id", id="trash-files"),
        pytest.param("/v2/eventspot/events", "events", 3, "id", id="events"),
    ],
)
def test_walk_all_pages_matches_truth(sandbox: Sandbox, sandbox_client: httpx.Client, path: str,
                                      table: str, limit: int, key: str) -> None:
    records, pages = walk(sandbox_client, path, limit=limit)
    truth = sandbox.truth(table)
    assert [r[key] for r in records] == [t[key] for t in truth]  # no dup, no gap, same order
    assert records == truth
    assert pages == -(-len(truth) // limit)


def test_contacts_keyset_token_format(sandbox_client: httpx.Client) -> None:
    body = sandbox_client.get("/v2/contacts", params={"limit": 10, "status": "ACTIVE"}).json()
    ids = [int(r["id"]) for r in body["results"]]
    assert ids == sorted(ids)
    fields = decode(body["meta"]["pagination"]["next_link"])
    # startAt = the next contact id, filters folded into the token (§1.3)
    assert fields["limit"] == ["10"]
    assert fields["status"] == ["ACTIVE"]
    assert int(fields["startAt"][0]) > ids[-1]
    token = body["meta"]["pagination"]["next_link"].split("=", 1)[1]
    nxt = sandbox_client.get("/v2/contacts", params={"next": token})
    assert int(nxt.json()["results"][0]["id"]) == int(fields["startAt"][0])


def test_contact_tracking_walk_is_newest_first(sandbox: Sandbox,
                                               sandbox_client: httpx.Client) -> None:
    truth = sandbox.truth("contact_tracking")
    busiest = max({a["contact_id"] for a in truth},
                  key=lambda c: sum(1 for a in truth if a["contact_id"] == c))
    expected = [a for a in truth if a["contact_id"] == busiest]
    records, _ = walk(sandbox_client, f"/v2/contacts/{busiest}/tracking", limit=1)
    assert records == expected
    dates = [next(v for k, v in a.items() if k.endswith("_date")) for a in records]
    assert dates == sorted(dates, reverse=True)


def test_campaign_tracking_walk(sandbox: Sandbox, sandbox_client: httpx.Client) -> None:
    camp = sandbox.truth("email_campaign_summary")[0]
    records, pages = walk(sandbox_client,
                          f"/v2/emailmarketing/campaigns/{camp['campaign_id']}/tracking/sends",
                          limit=7)
    assert len(records) == camp["sends"]
    assert pages > 1
    assert len({r["contact_id"] for r in records}) == len(records)
    assert all(r["campaign_id"] == int(camp["campaign_id"]) for r in records)


@pytest.mark.parametrize(
    ("params", "status"),
    [
        pytest.param({"limit": 0}, 400, id="zero"),
        pytest.param({"limit": 501}, 400, id="over-500"),
        pytest.param({"limit": "ten"}, 400, id="not-int"),
        pytest.param({"limit": 500}, 200, id="max"),
        pytest.param({"limit": 1}, 200, id="min"),
        pytest.param({"status": "BOGUS"}, 400, id="bad-status"),
        pytest.param({"modified_since": "yesterday"}, 400, id="bad-date"),
    ],
)
def test_contacts_parameter_validation(sandbox_client: httpx.Client, params: dict[str, Any],
                                       status: int) -> None:
    r = sandbox_client.get("/v2/contacts", params=params)
    assert r.status_code == status
    if status == 400:
        err = r.json()
        assert isinstance(err, list)
        assert set(err[0]) == {"error_key", "error_message"}
    elif "limit" in params:
        assert len(r.json()["results"]) == min(params["limit"], 260)  # SMALL_SPEC has 260


def test_default_limits(sandbox_client: httpx.Client, sandbox: Sandbox) -> None:
    assert len(sandbox_client.get("/v2/contacts").json()["results"]) == 50
    camp = sandbox.truth("email_campaign_summary")[0]
    sends = sandbox_client.get(
        f"/v2/emailmarketing/campaigns/{camp['campaign_id']}/tracking/sends").json()
    assert len(sends["results"]) == min(500, camp["sends"])


def test_campaign_limit_is_clamped_to_50(sandbox_factory: Any) -> None:
    from ctctsync.sandbox import AccountSpec

    sb = sandbox_factory(AccountSpec(seed=3, contacts=50, campaigns=60, activities_per_campaign=2))
    c = sb.credentials
    r = httpx.get(f"{sb.base_url}/v2/emailmarketing/campaigns",
                  params={"api_key": c.api_key, "limit": 200},
                  headers={"Authorization": f"Bearer {c.access_token}"})
    assert r.status_code == 200
    body = r.json()
    assert len(body["results"]) == 50
    assert decode(body["meta"]["pagination"]["next_link"])["pageSize"] == ["50"]


@pytest.mark.parametrize("extra", [{"limit": 5}, {"modified_since": "2020-01-01T00:00:00Z"},
                                   {"status": "ACTIVE"}], ids=["limit", "modified_since", "status"])
def test_next_must_be_alone(sandbox_client: httpx.Client, extra: dict[str, Any]) -> None:
    first = sandbox_client.get("/v2/contacts", params={"limit": 5}).json()
    token = first["meta"]["pagination"]["next_link"].split("next=", 1)[1]
    r = sandbox_client.get("/v2/contacts", params={"next": token, **extra})
    assert r.status_code == 400
    assert r.json()[0]["error_key"]
    assert sandbox_client.get("/v2/contacts", params={"next": token}).status_code == 200


@pytest.mark.parametrize("token", ["!!!", "abc", "c3RhcnRBdD14", base64.urlsafe_b64encode(
    b"limit=5").decode().rstrip("=")], ids=["not-base64", "garbage", "bad-number", "no-start"])
def test_garbled_tokens_are_rejected(sandbox_client: httpx.Client, token: str) -> None:
    r = sandbox_client.get("/v2/contacts", params={"next": token})
    assert r.status_code == 400
    assert r.json()[0]["error_key"] == "query.param.invalid"


def test_empty_results(sandbox_client: httpx.Client) -> None:
    body = sandbox_client.get("/v2/contacts",
                              params={"modified_since": "2099-01-01T00:00:00.000Z"}).json()
    assert body == {"meta": {"pagination": {}}, "results": []}
    assert sandbox_client.get("/v2/lists",
                              params={"modified_since": "2099-01-01T00:00:00Z"}).json() == []


def _date_field(a: dict[str, Any]) -> str:
    return next(v for k, v in a.items() if k.endswith("_date"))


def test_modified_since_is_on_or_after(sandbox: Sandbox, sandbox_client: httpx.Client) -> None:
    truth = sandbox.truth("contacts")
    pivot = sorted(r["modified_date"] for r in truth)[len(truth) // 2]
    records, _ = walk(sandbox_client, "/v2/contacts", modified_since=pivot, limit=40)
    assert records == [r for r in truth if r["modified_date"] >= pivot]
    assert any(r["modified_date"] == pivot for r in records)  # "on" counts


def test_status_filter(sandbox: Sandbox, sandbox_client: httpx.Client) -> None:
    truth = sandbox.truth("contacts")
    for status in ("ACTIVE", "OPTOUT", "REMOVED", "UNCONFIRMED"):
        records, _ = walk(sandbox_client, "/v2/contacts", status=status, limit=100)
        assert records == [r for r in truth if r["status"] == status]
    assert {r["status"] for r in truth} >= {"ACTIVE", "OPTOUT", "REMOVED"}


def test_campaign_status_and_deleted(sandbox: Sandbox, sandbox_client: httpx.Client) -> None:
    listed, _ = walk(sandbox_client, "/v2/emailmarketing/campaigns")
    assert "DELETED" not in {c["status"] for c in listed}  # DELETED only when asked (§3)
    assert {c["status"] for c in listed} >= {"SENT", "DRAFT", "SCHEDULED"}
    deleted, _ = walk(sandbox_client, "/v2/emailmarketing/campaigns", status="DELETED")
    assert len(deleted) == 1
    assert deleted[0]["status"] == "DELETED"
    assert sandbox_client.get(
        f"/v2/emailmarketing/campaigns/{deleted[0]['id']}").status_code == 404
    sent, _ = walk(sandbox_client, "/v2/emailmarketing/campaigns", status="SENT")
    assert [c["id"] for c in sent] == [c["id"] for c in listed if c["status"] == "SENT"]
    pivot = sorted(c["modified_date"] for c in listed)[2]
    since, _ = walk(sandbox_client, "/v2/emailmarketing/campaigns", modified_since=pivot, limit=1)
    assert since == [c for c in listed if c["modified_date"] >= pivot]


def test_created_since_on_tracking(sandbox: Sandbox, sandbox_client: httpx.Client) -> None:
    camp = sandbox.truth("email_campaign_summary")[0]["campaign_id"]
    path = f"/v2/emailmarketing/campaigns/{camp}/tracking/opens"
    everything, _ = walk(sandbox_client, path)
    pivot = sorted(_date_field(a) for a in everything)[len(everything) // 2]
    since, _ = walk(sandbox_client, path, created_since=pivot, limit=3)
    assert since == [a for a in everything if _date_field(a) >= pivot]
    assert any(_date_field(a) == pivot for a in since)


def test_tracking_only_for_sent_campaigns(sandbox: Sandbox,
                                          sandbox_client: httpx.Client) -> None:
    campaigns = sandbox.truth("email_campaigns")
    draft = next(c for c in campaigns if c["status"] == "DRAFT")
    body = sandbox_client.get(f"/v2/emailmarketing/campaigns/{draft['id']}/tracking/sends").json()
    assert body["results"] == []
    sent_ids = {a["campaign_id"] for a in sandbox.truth("contact_tracking")}
    assert sent_ids <= {c["id"] for c in campaigns if c["status"] == "SENT"}


@pytest.mark.parametrize("path", ["/v2/contacts/999999", "/v2/contacts/abc",
                                  "/v2/emailmarketing/campaigns/1",
                                  "/v2/contacts/999999/tracking",
                                  "/v2/emailmarketing/campaigns/1/tracking/reports/summary",
                                  "/v2/library/files/99999", "/v2/eventspot/events/nope",
                                  "/v2/lists/999", "/v2/no/such/thing"])
def test_unknown_ids_are_404(sandbox_client: httpx.Client, path: str) -> None:
    r = sandbox_client.get(path)
    assert r.status_code == 404
    assert r.json()[0]["error_key"] == "http.status.not_found"


def test_email_filter(sandbox: Sandbox, sandbox_client: httpx.Client) -> None:
    target = sandbox.truth("contacts")[5]
    email = target["email_addresses"][0]["email_address"]
    body = sandbox_client.get("/v2/contacts", params={"email": email}).json()
    assert body["results"] == [target]


def test_trailing_slash_is_accepted(sandbox: Sandbox, sandbox_client: httpx.Client) -> None:
    cid = sandbox.truth("contact_tracking")[0]["contact_id"]
    plain = sandbox_client.get(f"/v2/contacts/{cid}/tracking")
    slashed = sandbox_client.get(f"/v2/contacts/{cid}/tracking/")
    assert slashed.status_code == 200
    assert slashed.json() == plain.json()
    counts = sandbox.counters.snapshot()["endpoints"]
    assert counts["GET /v2/contacts/{id}/tracking"]["total"] == 2


def test_token_with_oversized_limit_is_rejected(sandbox_client: httpx.Client) -> None:
    token = base64.urlsafe_b64encode(b"startAt=1&limit=100000").decode().rstrip("=")
    assert sandbox_client.get("/v2/contacts", params={"next": token}).status_code == 400


def test_wrong_method_is_405_with_error_array(sandbox_client: httpx.Client) -> None:
    r = sandbox_client.post("/v2/contacts")
    assert r.status_code == 405
    assert r.json()[0]["error_key"] == "http.status.method_not_allowed"


def test_include_v3_ids(sandbox_client: httpx.Client) -> None:
    plain = sandbox_client.get("/v2/contacts", params={"limit": 3}).json()
    assert all("contact_id" not in c for c in plain["results"])
    with_ids = sandbox_client.get("/v2/contacts",
                                  params={"limit": 3, "include_contact_id": "true"}).json()
    uuids = [c["contact_id"] for c in with_ids["results"]]
    assert len(set(uuids)) == 3
    assert all(len(u) == 36 and u.count("-") == 4 for u in uuids)
    token = with_ids["meta"]["pagination"]["next_link"].split("next=")[1]
    page2 = sandbox_client.get("/v2/contacts", params={"next": token}).json()
    assert all("contact_id" in c for c in page2["results"])  # the flag is folded into the token
    one = sandbox_client.get(f"/v2/contacts/{plain['results'][0]['id']}",
                             params={"include_contact_id": "true"}).json()
    assert one["contact_id"] == uuids[0]
    lists = sandbox_client.get("/v2/lists", params={"include_list_id": "true"}).json()
    assert all(len(lst["list_id"]) == 36 for lst in lists)
    assert sandbox_client.get("/v2/lists", params={"include_list_id": "maybe"}).status_code == 400


@pytest.mark.parametrize("raw", [b"startAt=1&limit=5&status=NOPE",
                                 b"startAt=1&limit=5&modified_since=never",
                                 b"pageNum=2&pageSize=5&status=NOPE"])
def test_tokens_with_bad_filters_are_400(sandbox_client: httpx.Client, raw: bytes) -> None:
    token = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    path = "/v2/emailmarketing/campaigns" if raw.startswith(b"page") else "/v2/contacts"
    assert sandbox_client.get(path, params={"next": token}).status_code == 400


def test_sent_campaigns_ordered_by_last_run(sandbox: Sandbox,
                                            sandbox_client: httpx.Client) -> None:
    sent, _ = walk(sandbox_client, "/v2/emailmarketing/campaigns", status="SENT", limit=2)
    runs = [sandbox_client.get(f"/v2/emailmarketing/campaigns/{c['id']}").json()["last_run_date"]
            for c in sent]
    assert runs == sorted(runs, reverse=True)
    assert len(sent) == len(sandbox.truth("email_campaign_summary"))
