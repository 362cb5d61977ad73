"""The sandbox's v3 contacts area (constant-contact-v3-api.md §3.1-§3.5, §3.13) over real HTTP,
every JSON body checked against the official contract (``v3_contract.validate``)."""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from v3_contract import operation_for, validate

from ctctsync.sandbox import Sandbox
from ctctsync.sandbox import generator as gen
from ctctsync.sandbox.v3.contacts import contacts_truth
from ctctsync.sandbox.v3.ids import KIND_CUSTOM_FIELD, KIND_TAG, V3Ids

ALL_INCLUDES = "custom_fields,list_memberships,phone_numbers,street_addresses,taggings,notes"
SUBRESOURCES = ALL_INCLUDES.split(",")


class V3:
    """A v3 client that checks every JSON answer against the contract."""

    def __init__(self, sb: Sandbox, token: str | None = None) -> None:
        token = token or sb.v3_tokens.issue_access_token()
        self.http = httpx.Client(base_url=sb.base_url, timeout=10,
                                 headers={"Authorization": f"Bearer {token}"})

    def call(self, method: str, path: str, params: Any = None, status: int = 200,
             json: Any = None) -> Any:
        r = self.http.request(method, path, params=params, json=json)
        assert r.status_code == status, (path, r.status_code, r.text[:500])
        template = operation_for(urlsplit(path).path)
        assert template is not None, path
        validate(method, template, r.status_code, r.json())
        return r.json()

    def get(self, path: str, params: Any = None, status: int = 200) -> Any:
        return self.call("GET", path, params, status)

    def walk(self, path: str, key: str, params: Any = None) -> tuple[list[Any], list[str]]:
        """Follow ``_links.next.href`` to the end: every row and the hrefs followed."""
        body = self.get(path, params)
        rows, hrefs = list(body[key]), []
        while "_links" in body:  # absent on the last page (§1.3)
            href = body["_links"]["next"]["href"]
            assert href.startswith(f"{path}?cursor="), href  # path-relative (§1.3)
            assert href not in hrefs, "a paging loop"
            hrefs.append(href)
            body = self.get(href)  # the cursor carries limit and filters (§1.3)
            rows.extend(body[key])
        return rows, hrefs


@pytest.fixture
def v3(sandbox: Sandbox) -> Iterator[V3]:
    client = V3(sandbox)
    yield client
    client.http.close()


def cursor_query(href: str) -> dict[str, list[str]]:
    cursor = parse_qs(urlsplit(href).query)["cursor"][0]
    return parse_qs(base64.b64decode(cursor).decode())


def v2_status(sb: Sandbox) -> dict[str, str]:
    """v3 contact id -> v2 status, from the account."""
    acc = sb.account
    return {acc.contact_uuid(cid): acc.contact_status(cid)
            for cid in range(1, acc.contact_count + 1)}


# -- paging ------------------------------------------------------------------------------------


def test_walk_every_contact_exactly_once_newest_first(sandbox: Sandbox, v3: V3) -> None:
    rows, hrefs = v3.walk("/v3/contacts", "contacts", {"status": "all", "limit": 37})
    ids = [r["contact_id"] for r in rows]
    acc = sandbox.account
    expected = [acc.contact_uuid(cid) for cid in range(acc.contact_count, 0, -1)]
    assert ids == expected  # every contact once, newest (highest id) first
    assert len(hrefs) == -(-acc.contact_count // 37) - 1
    created = [r["created_at"] for r in rows]
    assert created == sorted(created, reverse=True)
    # the cursor is base64("limit=N&next=<key>&<filters>") (§1.3)
    q = cursor_query(hrefs[0])
    assert q["limit"] == ["37"] and q["status"] == ["all"] and q["next"][0].isdigit()


def test_duplicate_fault_repeats_records_across_pages(sandbox: Sandbox, v3: V3) -> None:
    sandbox.faults.add("duplicate", "/v3/contacts", count=1, k=3)
    rows, _ = v3.walk("/v3/contacts", "contacts", {"status": "all", "limit": 37})
    ids = [r["contact_id"] for r in rows]
    assert len(ids) == sandbox.account.contact_count + 3  # the last 3 of page 1 came again
    assert len(set(ids)) == sandbox.account.contact_count  # and nothing was skipped
    assert ids[34:37] == ids[37:40]


def test_walk_equals_the_truth_helper(sandbox: Sandbox, v3: V3) -> None:
    sandbox.account.update_contacts(5)
    sandbox.account.set_contact_status(9, "REMOVED")
    rows, _ = v3.walk("/v3/contacts", "contacts", {"status": "all", "include": ALL_INCLUDES,
                                                   "limit": 99})
    assert rows == contacts_truth(sandbox.account)
    default, _ = v3.walk("/v3/contacts", "contacts", {"include": ALL_INCLUDES, "limit": 99,
                                                      "status": "active,unsubscribed"})
    assert default == contacts_truth(sandbox.account, status="active,unsubscribed")


def test_default_walk_leaves_out_deleted_contacts(sandbox: Sandbox, v3: V3) -> None:
    rows, _ = v3.walk("/v3/contacts", "contacts", {"limit": 100})
    statuses = v2_status(sandbox)
    expected = {k for k, s in statuses.items() if s != "REMOVED"}
    assert {r["contact_id"] for r in rows} == expected
    assert len(rows) == len(expected)
    assert all("deleted_at" not in r for r in rows)


@pytest.mark.parametrize(("limit", "status"), [
    pytest.param("0", 400, id="zero"),
    pytest.param("501", 400, id="over-max"),
    pytest.param("ten", 400, id="not-a-number"),
    pytest.param("500", 200, id="max"),
    pytest.param("1", 200, id="min"),
])
def test_limit_bounds(sandbox: Sandbox, v3: V3, limit: str, status: int) -> None:
    body = v3.get("/v3/contacts", {"limit": limit}, status)
    live = sum(s != "REMOVED" for s in v2_status(sandbox).values())
    if status == 400:
        assert body[0]["error_key"] == "contacts.api.validation.error"
        assert "limit" in body[0]["error_message"]
    else:
        assert len(body["contacts"]) == min(int(limit), live)


def test_default_limit_is_50_and_last_page_has_no_links(sandbox: Sandbox, v3: V3) -> None:
    body = v3.get("/v3/contacts", {"status": "all"})
    assert len(body["contacts"]) == 50 and "_links" in body
    body = v3.get("/v3/contacts", {"status": "all", "limit": 500})
    assert len(body["contacts"]) == sandbox.account.contact_count
    assert "_links" not in body


def test_paging_is_stable_when_contacts_are_added_mid_walk(sandbox: Sandbox, v3: V3) -> None:
    first = v3.get("/v3/contacts", {"status": "all", "limit": 100})
    new = sandbox.account.add_contacts(3)
    rest, _ = [], None
    body = v3.get(first["_links"]["next"]["href"])
    rest.extend(body["contacts"])
    while "_links" in body:
        body = v3.get(body["_links"]["next"]["href"])
        rest.extend(body["contacts"])
    ids = [r["contact_id"] for r in first["contacts"] + rest]
    assert len(ids) == len(set(ids)) == sandbox.account.contact_count - 3
    # a new walk starts with the newest
    top = v3.get("/v3/contacts", {"limit": 3})["contacts"]
    assert [r["contact_id"] for r in top] == [sandbox.account.contact_uuid(c) for c in new[::-1]]


@pytest.mark.parametrize("params", [
    pytest.param({"cursor": "not base64!"}, id="bad-cursor"),
    pytest.param({"cursor": base64.b64encode(b"limit=5&next=abc").decode()}, id="bad-key"),
    pytest.param({"include": "custom_fields,sms_channel"}, id="unknown-include"),
    pytest.param({"status": "everything"}, id="bad-status"),
    pytest.param({"updated_after": "yesterday"}, id="bad-date"),
    pytest.param({"include_count": "maybe"}, id="bad-bool"),
    pytest.param({"lists": ",".join(["x"] * 26)}, id="too-many-lists"),
])
def test_bad_parameters_are_400_arrays(v3: V3, params: dict[str, str]) -> None:
    body = v3.get("/v3/contacts", params, 400)
    assert isinstance(body, list) and body[0]["error_key"] == "contacts.api.validation.error"


# -- filters, deletes, includes ----------------------------------------------------------------


def test_updated_after_sees_edits_and_deletes(sandbox: Sandbox, v3: V3) -> None:
    acc = sandbox.account
    acc.advance(5)
    since = acc.clock.now().isoformat().replace("+00:00", "Z")
    acc.advance(1)
    edited = acc.update_contacts(0, ids=[10, 20], change_lists=0)
    acc.set_contact_status(30, "REMOVED")
    member = next(c for c in range(40, 200) if acc.contact_list_ids(c)
                  and acc.contact_status(c) == "ACTIVE")
    acc.set_contact_status(member, "REMOVED")
    changed = {acc.contact_uuid(c) for c in [*edited, 30, member]}

    rows, _ = v3.walk("/v3/contacts", "contacts", {
        "status": "all", "updated_after": since, "include": "list_memberships", "limit": 2})
    assert {r["contact_id"] for r in rows} == changed
    deleted = {r["contact_id"]: r for r in rows if "deleted_at" in r}
    assert set(deleted) == {acc.contact_uuid(30), acc.contact_uuid(member)}
    for r in deleted.values():
        assert len(r["deleted_at"]) == 10  # a date only (§1.6)
        assert r["deleted_at"] == r["updated_at"][:10]  # deleting bumps updated_at
        assert r["list_memberships"] == []  # deleting leaves every list (§1.7)

    # without status, deleted contacts stay hidden; status=deleted shows only them
    default = v3.get("/v3/contacts", {"updated_after": since})["contacts"]
    assert {r["contact_id"] for r in default} == changed - set(deleted)
    only = v3.walk("/v3/contacts", "contacts", {"status": "deleted", "limit": 500})[0]
    assert set(deleted) <= {r["contact_id"] for r in only}
    assert all("deleted_at" in r for r in only)
    statuses = v2_status(sandbox)
    assert {r["contact_id"] for r in only} == {k for k, s in statuses.items() if s == "REMOVED"}
    # the deleted contact is still readable by id
    one = v3.get(f"/v3/contacts/{acc.contact_uuid(30)}")
    assert one["deleted_at"] == deleted[acc.contact_uuid(30)]["deleted_at"]


def test_date_filters_bound_the_rows(sandbox: Sandbox, v3: V3) -> None:
    acc = sandbox.account
    mid = acc.contact_created_ms(130)
    after = v3.walk("/v3/contacts", "contacts", {
        "status": "all", "created_after": gen_iso(mid), "limit": 500})[0]
    assert {r["contact_id"] for r in after} == {acc.contact_uuid(c) for c in range(130, 261)}
    before = v3.walk("/v3/contacts", "contacts", {
        "status": "all", "created_before": gen_iso(mid), "limit": 500})[0]
    assert len(before) == 129
    # updated_before + updated_after form a window
    lo, hi = acc.contact_modified_ms(50), acc.contact_modified_ms(200)
    lo, hi = min(lo, hi), max(lo, hi)
    window = v3.walk("/v3/contacts", "contacts", {
        "status": "all", "updated_after": gen_iso(lo), "updated_before": gen_iso(hi),
        "limit": 500})[0]
    expected = {acc.contact_uuid(c) for c in range(1, 261)
                if lo <= acc.contact_modified_ms(c) < hi}
    assert {r["contact_id"] for r in window} == expected


def gen_iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def test_status_filters_match_the_v2_statuses(sandbox: Sandbox, v3: V3) -> None:
    statuses = v2_status(sandbox)

    def ids(status: str) -> set[str]:
        rows = v3.walk("/v3/contacts", "contacts", {"status": status, "limit": 500})[0]
        return {r["contact_id"] for r in rows}

    assert ids("unsubscribed") == {k for k, s in statuses.items() if s == "OPTOUT"}
    assert ids("active") == {k for k, s in statuses.items() if s == "ACTIVE"}
    assert ids("pending_confirmation,not_set") == {
        k for k, s in statuses.items() if s == "UNCONFIRMED"}
    assert ids("pending_confirmation") | ids("not_set") == ids("pending_confirmation,not_set")
    assert not ids("pending_confirmation") & ids("not_set")
    assert ids("temp_hold") == set()
    assert ids("all") == set(statuses)


def test_permission_to_send_maps_the_v2_status(sandbox: Sandbox, v3: V3) -> None:
    rows = v3.walk("/v3/contacts", "contacts", {"status": "all", "limit": 500})[0]
    statuses = v2_status(sandbox)
    allowed = {"ACTIVE": {"explicit", "implicit"}, "OPTOUT": {"unsubscribed"},
               "UNCONFIRMED": {"pending_confirmation", "not_set"},
               "REMOVED": {"explicit", "implicit"}}
    seen = set()
    for r in rows:
        email = r["email_address"]
        status = statuses[r["contact_id"]]
        assert email["permission_to_send"] in allowed[status], (status, email)
        seen.add(email["permission_to_send"])
        opted_out = status == "OPTOUT"
        assert ("opt_out_date" in email) == opted_out  # only when unsubscribed (§3.1)
        assert ("opt_out_source" in email) == opted_out
        assert ("deleted_at" in r) == (status == "REMOVED")
        assert all(v not in ("", None) for v in r.values())  # empty values omitted (§1.6)
        assert r["created_at"].endswith("Z") and len(r["created_at"]) == 20  # seconds + Z
    assert seen == {"explicit", "implicit", "unsubscribed", "pending_confirmation", "not_set"}


def test_optout_filter_selects_unsubscribes_by_date(sandbox: Sandbox, v3: V3) -> None:
    everyone = v3.walk("/v3/contacts", "contacts", {"status": "unsubscribed", "limit": 500})[0]
    dates = sorted(r["email_address"]["opt_out_date"] for r in everyone)
    cut = dates[len(dates) // 2]
    later = v3.walk("/v3/contacts", "contacts", {"optout_after": cut, "limit": 500})[0]
    assert sorted(r["email_address"]["opt_out_date"] for r in later) == [
        d for d in dates if d >= cut]


def test_include_subresources_only_when_asked(sandbox: Sandbox, v3: V3) -> None:
    acc = sandbox.account
    ids = V3Ids(acc.seed)
    bare = v3.get("/v3/contacts", {"limit": 20})["contacts"]
    assert all(not set(SUBRESOURCES) & set(r) for r in bare)
    rows = v3.walk("/v3/contacts", "contacts", {"status": "all", "include": ALL_INCLUDES,
                                                "limit": 500})[0]
    by_uuid = {acc.contact_uuid(c): c for c in range(1, acc.contact_count + 1)}
    kinds_seen: set[str] = set()
    for r in rows:
        assert all(isinstance(r[k], list) for k in SUBRESOURCES)  # [] when empty (§1.6)
        assert list(r)[-6:] == ["custom_fields", "phone_numbers", "street_addresses",
                                "list_memberships", "taggings", "notes"]
        c = acc.contact(by_uuid[r["contact_id"]])
        assert c is not None
        assert r["list_memberships"] == [acc.list_uuid(lid) for lid in c.list_ids]
        phones = {p["kind"]: p["phone_number"] for p in r["phone_numbers"]}
        assert phones == {k: v for k, v in (("home", c.home_phone), ("work", c.work_phone),
                                            ("mobile", c.cell_phone)) if v}
        kinds_seen |= set(phones)
        assert r["custom_fields"] == [
            {"custom_field_id": ids.uuid(KIND_CUSTOM_FIELD, n), "value": v}
            for n, v in c.custom_fields if v]
        assert r["taggings"] == [ids.uuid(KIND_TAG, t) for t in acc.contact_tag_ids(c.id)]
        assert [a["street_address_id"] for a in r["street_addresses"]] == [
            a.id for a in c.addresses]
        assert [n["content"] for n in r["notes"]] == [n.text for n in c.notes]
    assert kinds_seen == {"home", "work", "mobile"}
    assert sum(bool(r["taggings"]) for r in rows) > 10
    one = v3.get(f"/v3/contacts/{rows[0]['contact_id']}", {"include": "taggings,notes"})
    assert set(SUBRESOURCES) & set(one) == {"taggings", "notes"}


def test_lists_filter_and_email_lookup(sandbox: Sandbox, v3: V3) -> None:
    acc = sandbox.account
    rows = v3.walk("/v3/contacts", "contacts", {
        "lists": f"{acc.list_uuid(2)},{acc.list_uuid(4)}", "limit": 500})[0]
    expected = {acc.contact_uuid(c) for c in range(1, 261)
                if {2, 4} & set(acc.contact_list_ids(c)) and acc.contact_status(c) != "REMOVED"}
    assert {r["contact_id"] for r in rows} == expected
    email = acc.contact_email(77)
    found = v3.get("/v3/contacts", {"email": email, "status": "all",
                                    "include_count": "true"})
    assert [r["contact_id"] for r in found["contacts"]] == [acc.contact_uuid(77)]
    assert found["contacts_count"] == 1
    assert v3.get("/v3/contacts", {"email": "nobody.1@example.com"})["contacts"] == []


def test_tags_filter_and_segment_id(sandbox: Sandbox, v3: V3) -> None:
    acc = sandbox.account
    ids = V3Ids(acc.seed)
    rows = v3.walk("/v3/contacts", "contacts", {
        "tags": f"{ids.uuid(KIND_TAG, 1)},{ids.uuid(KIND_TAG, 3)}", "limit": 500,
        "include": "taggings"})[0]
    expected = {acc.contact_uuid(c) for c in range(1, 261)
                if {1, 3} & set(acc.contact_tag_ids(c)) and acc.contact_status(c) != "REMOVED"}
    assert {r["contact_id"] for r in rows} == expected and expected
    v3.get("/v3/contacts", {"segment_id": "999"}, 404)
    assert len(v3.get("/v3/contacts", {"segment_id": "1", "limit": 7})["contacts"]) == 7


def test_include_count_counts_every_match(sandbox: Sandbox, v3: V3) -> None:
    body = v3.get("/v3/contacts", {"limit": 5, "include_count": "true", "status": "all"})
    assert body["contacts_count"] == sandbox.account.contact_count
    assert "contacts_count" not in v3.get("/v3/contacts", {"limit": 5})


def test_contact_detail_and_unknown_id(sandbox: Sandbox, v3: V3) -> None:
    acc = sandbox.account
    one = v3.get(f"/v3/contacts/{acc.contact_uuid(5)}", {"include": ALL_INCLUDES})
    listed = v3.get("/v3/contacts", {"status": "all", "include": ALL_INCLUDES, "limit": 500})
    assert one == next(r for r in listed["contacts"] if r["contact_id"] == one["contact_id"])
    body = v3.get("/v3/contacts/00000000-0000-4000-8000-00000000dead", status=404)
    assert body[0]["error_key"] == "contacts.api.not_found"


def test_counts(sandbox: Sandbox, v3: V3) -> None:
    statuses = v2_status(sandbox)
    body = v3.get("/v3/contacts/counts", {"include": "new_subscriber"})
    assert body["total"] == sum(s != "REMOVED" for s in statuses.values())
    assert body["explicit"] + body["implicit"] == sum(s == "ACTIVE" for s in statuses.values())
    assert body["unsubscribed"] == sum(s == "OPTOUT" for s in statuses.values())
    assert body["new_subscriber"] == 0  # seeded history ends before the sandbox's today
    sandbox.account.add_contacts(2)
    assert v3.get("/v3/contacts/counts", {"include": "new_subscriber"})["new_subscriber"] == 2
    assert "new_subscriber" not in v3.get("/v3/contacts/counts")


def test_xrefs_agree_with_v2_ids(sandbox: Sandbox, v3: V3) -> None:
    creds = sandbox.credentials
    with httpx.Client(base_url=sandbox.base_url, timeout=10,
                      params={"api_key": creds.api_key},
                      headers={"Authorization": f"Bearer {creds.access_token}"}) as v2:
        r = v2.get("/v2/contacts", params={"include_contact_id": "true", "limit": 40})
        assert r.status_code == 200
        v2_rows = r.json()["results"]
    pairs = {row["id"]: row["contact_id"] for row in v2_rows}
    asked = [*list(pairs)[::-1], "999999"]  # unordered, plus an unknown id
    body = v3.get("/v3/contacts/contact_id_xrefs", {"sequence_ids": ",".join(asked)})
    assert [x["sequence_id"] for x in body["xrefs"]] == sorted(pairs, key=int)
    assert {x["sequence_id"]: x["contact_id"] for x in body["xrefs"]} == pairs
    # and the v3 contact with that UUID is the v2 contact
    first = body["xrefs"][0]
    one = v3.get(f"/v3/contacts/{first['contact_id']}")
    assert one["email_address"]["address"] == v2_rows[0]["email_addresses"][0]["email_address"]
    v3.get("/v3/contacts/contact_id_xrefs", status=400)
    v3.get("/v3/contacts/contact_id_xrefs", {"sequence_ids": ",".join(["1"] * 501)}, 400)


# -- lists, tags, custom fields, segments ------------------------------------------------------


def test_contact_lists_membership_counts_and_deleted_lists(sandbox: Sandbox, v3: V3) -> None:
    acc = sandbox.account
    rows, hrefs = v3.walk("/v3/contact_lists", "lists",
                          {"limit": 2, "include_membership_count": "all"})
    assert [r["list_id"] for r in rows] == [acc.list_uuid(lid) for lid in sorted(acc.lists)[::-1]]
    assert len(hrefs) == 2
    assert {r["list_id"]: r["membership_count"] for r in rows} == {
        acc.list_uuid(lid): acc.list_count(lid) for lid in acc.lists}
    active = v3.get("/v3/contact_lists", {"include_membership_count": "active"})["lists"]
    for r in active:
        lid = next(lid for lid in acc.lists if acc.list_uuid(lid) == r["list_id"])
        assert r["membership_count"] == sum(
            1 for c in range(1, 261)
            if lid in acc.contact_list_ids(c) and acc.contact_status(c) == "ACTIVE")
    assert all("membership_count" not in r for r in v3.get("/v3/contact_lists")["lists"])

    acc.delete_list(3)
    default = v3.get("/v3/contact_lists", {"include_count": "true"})
    assert acc.list_uuid(3) not in {r["list_id"] for r in default["lists"]}
    assert default["lists_count"] == len(acc.lists) - 1
    gone = v3.get("/v3/contact_lists", {"status": "deleted"})["lists"]
    assert [r["list_id"] for r in gone] == [acc.list_uuid(3)]
    assert gone[0]["deleted_at"].endswith("Z") and "T" in gone[0]["deleted_at"]  # date-time
    assert len(v3.get("/v3/contact_lists", {"status": "all"})["lists"]) == len(acc.lists)
    assert all(3 not in acc.contact_list_ids(c) for c in range(1, 261))
    one = v3.get(f"/v3/contact_lists/{acc.list_uuid(3)}", {"include_membership_count": "all"})
    assert one["membership_count"] == 0 and "deleted_at" in one
    v3.get("/v3/contact_lists", {"include_membership_count": "some"}, 400)
    # the detail declares no 400 in the contract: a bad value is ignored
    assert "membership_count" not in v3.get(f"/v3/contact_lists/{acc.list_uuid(1)}",
                                            {"include_membership_count": "some"})
    v3.get("/v3/contact_lists", {"limit": 1001}, 400)
    v3.get(f"/v3/contact_lists/{acc.contact_uuid(1)}", status=404)
    xrefs = v3.get("/v3/contact_lists/list_id_xrefs", {"sequence_ids": "2,1,99"})
    assert xrefs["xrefs"] == [{"sequence_id": "1", "list_id": acc.list_uuid(1)},
                              {"sequence_id": "2", "list_id": acc.list_uuid(2)}]


def test_tags_custom_fields_and_segments(sandbox: Sandbox, v3: V3) -> None:
    acc = sandbox.account
    tags, hrefs = v3.walk("/v3/contact_tags", "tags", {"limit": 4, "include_count": "true"})
    assert len(tags) == gen.TAG_COUNT and len(hrefs) == 1
    counts = {r["tag_id"]: r["contacts_count"] for r in tags}
    ids = V3Ids(acc.seed)
    for tid in acc.tags:
        assert counts[ids.uuid(KIND_TAG, tid)] == sum(
            tid in acc.contact_tag_ids(c) for c in range(1, 261)
            if acc.contact_status(c) != "REMOVED")
    assert all("contacts_count" not in r for r in v3.get("/v3/contact_tags")["tags"])
    one = v3.get(f"/v3/contact_tags/{tags[0]['tag_id']}", {"include_count": "true"})
    assert one == tags[0]
    v3.get("/v3/contact_tags", {"limit": 501}, 400)

    fields, hrefs = v3.walk("/v3/contact_custom_fields", "custom_fields", {"limit": 4})
    assert len(fields) == gen.CUSTOM_FIELD_COUNT and len(hrefs) == 3
    assert {f["name"] for f in fields} == {f"custom_field_{n}" for n in range(1, 16)}
    assert v3.get(f"/v3/contact_custom_fields/{fields[-1]['custom_field_id']}") == fields[-1]
    v3.get("/v3/contact_custom_fields", {"limit": 101}, 400)
    v3.get(f"/v3/contact_custom_fields/{acc.contact_uuid(1)}", status=404)

    segments = v3.get("/v3/segments")["segments"]
    live = [s for s in acc.segments.values() if not s.deleted]
    assert {s["segment_id"] for s in segments} == {s.id for s in live}  # deleted excluded
    edited = [s["edited_at"] for s in segments]
    assert edited == sorted(edited, reverse=True)
    by_name = v3.get("/v3/segments", {"sort_by": "name"})["segments"]
    assert [s["name"] for s in by_name] == sorted(s["name"] for s in by_name)
    paged, hrefs = v3.walk("/v3/segments", "segments", {"limit": "1"})
    assert paged == segments and len(hrefs) == len(segments) - 1
    deleted = next(s for s in acc.segments.values() if s.deleted)
    detail = v3.get(f"/v3/segments/{deleted.id}")  # readable by id (§1.7)
    assert isinstance(detail["segment_criteria"], str) and detail["segment_criteria"].startswith(
        '{"version"')
    v3.get("/v3/segments/9999", status=404)


# -- refusals ----------------------------------------------------------------------------------


def test_401_403_429_shapes(sandbox: Sandbox, v3: V3) -> None:
    r = httpx.get(f"{sandbox.base_url}/v3/contacts")
    assert r.status_code == 401
    assert r.json() == {"error_key": "unauthorized", "error_message": "Unauthorized"}
    validate("GET", "/contacts", 401, r.json())

    campaigns_only = sandbox.v3_tokens.issue_access_token(scopes=["campaign_data"])
    limited = V3(sandbox, campaigns_only)
    body = limited.get("/v3/contacts", status=403)
    assert isinstance(body, list) and "contact_data" in body[0]["error_message"]
    limited.http.close()

    tokens = sandbox.v3_tokens
    saved = tokens.privileges
    tokens.privileges = saved - {"contacts:lists:read"}
    try:
        v3.get("/v3/contacts", {"limit": 1})
        body = v3.get("/v3/contact_lists", status=403)
        assert "contacts:lists:read" in body[0]["error_message"]
    finally:
        tokens.privileges = saved

    sandbox.set_limits(qps_limit=None, daily_limit=2)
    v3.get("/v3/contacts", {"limit": 1})
    v3.get("/v3/contacts", {"limit": 1})
    assert v3.get("/v3/contacts", status=429) == {
        "error_key": "quota_exceeded", "error_message": "Limit Exceeded"}
    sandbox.set_limits(qps_limit=1, daily_limit=None)
    # back-to-back requests: the second is refused unless the machine stalled a whole second
    answers = [v3.http.get("/v3/contact_tags") for _ in range(4)]
    refused = [r for r in answers if r.status_code == 429]
    assert answers[0].status_code == 200 and refused
    assert refused[0].json() == {"error_key": "throttled", "error_message": "Too Many Requests"}
    validate("GET", "/contact_tags", 429, refused[0].json())


# -- bulk export -------------------------------------------------------------------------------


def read_csv(v3: V3, href: str) -> list[dict[str, str]]:
    r = v3.http.get(href)
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(r.text)))


def export(v3: V3, body: dict[str, Any]) -> dict[str, Any]:
    """Create an export, poll it once (it completes on the first read), return the activity."""
    created = v3.call("POST", "/v3/activities/contact_exports", json=body, status=201)
    assert created["state"] == "processing" and "results" not in created["_links"]
    href = created["_links"]["self"]["href"]
    assert href == f"/v3/activities/{created['activity_id']}"
    done: dict[str, Any] = v3.get(href)
    assert done["state"] == "completed" and done["percent_done"] == 100
    return done


def test_export_end_to_end_matches_paging(sandbox: Sandbox, v3: V3) -> None:
    acc = sandbox.account
    done = export(v3, {})
    rows = read_csv(v3, done["_links"]["results"]["href"])
    paged = v3.walk("/v3/contacts", "contacts", {"include": ALL_INCLUDES, "limit": 500})[0]
    assert [r["contact_id"] for r in rows] == [p["contact_id"] for p in paged]
    assert done["status"] == {"items_total_count": len(rows), "items_completed_count": len(rows)}
    by_id = {p["contact_id"]: p for p in paged}
    ids = V3Ids(acc.seed)
    for row in rows:
        p = by_id[row["contact_id"]]
        assert row["email_address"] == p["email_address"]["address"]
        assert row["first_name"] == p.get("first_name", "")
        assert row["updated_at"] == p["updated_at"]
        assert row["email_lists"] == ";".join(p["list_memberships"])
        assert row["email_permission"] == p["email_address"]["permission_to_send"]
        values = {cf["custom_field_id"]: cf["value"] for cf in p["custom_fields"]}
        for n in range(1, gen.CUSTOM_FIELD_COUNT + 1):
            assert row[f"custom_field_{n}"] == values.get(ids.uuid(KIND_CUSTOM_FIELD, n), "")

    # a filtered export: one list's members, a few columns, one status
    lid = 2
    done = export(v3, {"list_ids": [acc.list_uuid(lid)], "fields": ["email_address", "last_name"],
                       "status": "active"})
    rows = read_csv(v3, done["_links"]["results"]["href"])
    assert set(rows[0]) == {"contact_id", "email_address", "last_name"}
    assert {r["contact_id"] for r in rows} == {
        acc.contact_uuid(c) for c in range(1, 261)
        if lid in acc.contact_list_ids(c) and acc.contact_status(c) == "ACTIVE"}

    removed = export(v3, {"status": "removed", "fields": ["email_address"]})
    assert removed["status"]["items_total_count"] == sum(
        acc.contact_status(c) == "REMOVED" for c in range(1, 261))

    listing = v3.walk("/v3/activities", "activities", {"limit": 2})[0]
    assert listing[0]["activity_id"] == removed["activity_id"]  # newest first
    assert len(listing) == 3 and all(a["state"] == "completed" for a in listing)


def test_export_refusals(sandbox: Sandbox, v3: V3) -> None:
    acc = sandbox.account
    v3.call("POST", "/v3/activities/contact_exports", status=400,
            json={"contact_ids": [acc.contact_uuid(1)], "list_ids": [acc.list_uuid(1)]})
    v3.call("POST", "/v3/activities/contact_exports", status=400, json={"fields": ["shoe_size"]})
    v3.call("POST", "/v3/activities/contact_exports", status=400, json={"status": "happy"})
    v3.get("/v3/activities/00000000-0000-4000-8000-00000000dead", status=404)
    created = v3.call("POST", "/v3/activities/contact_exports", status=201,
                      json={"contact_ids": [acc.contact_uuid(3), acc.contact_uuid(4)]})
    assert created["status"]["items_total_count"] == 2
    # the file exists only once the activity completed (first poll)
    assert v3.http.get(f"/v3/contact_exports/{created['activity_id']}").status_code == 404
    v3.get(created["_links"]["self"]["href"])
    assert len(read_csv(v3, f"/v3/contact_exports/{created['activity_id']}")) == 2
    reader_only = sandbox.v3_tokens
    saved = reader_only.privileges
    reader_only.privileges = saved - {"contacts:write"}
    try:
        v3.get("/v3/activities", status=403)
    finally:
        reader_only.privileges = saved
