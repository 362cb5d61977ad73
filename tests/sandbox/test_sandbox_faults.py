"""Fault injection: every kind, over real HTTP, via the Python API, admin API and string syntax."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest

from ctctsync.sandbox import Sandbox
from ctctsync.sandbox.faults import parse_fault


@pytest.mark.parametrize(("kind", "error_key"), [
    pytest.param("404", "http.status.not_found", id="404"),
    pytest.param("500", "http.status.internal_server_error", id="500"),
    pytest.param("503", "http.status.service_unavailable", id="503"),
    pytest.param("522", "http.status.connection_timed_out", id="522"),
])
def test_status_faults_fire_count_times(sandbox: Sandbox, sandbox_client: httpx.Client,
                                        kind: str, error_key: str) -> None:
    sandbox.faults.add(kind, "/v2/contacts*", count=2)
    first = sandbox_client.get("/v2/contacts")
    second = sandbox_client.get("/v2/contacts/1")
    third = sandbox_client.get("/v2/contacts")
    assert [first.status_code, second.status_code, third.status_code] == [int(kind)] * 2 + [200]
    assert first.json()[0]["error_key"] == error_key
    assert sandbox.faults.list() == []  # used-up rules disappear


def test_glob_limits_the_fault(sandbox: Sandbox, sandbox_client: httpx.Client) -> None:
    sandbox.faults.add("503", "/v2/lists")
    assert sandbox_client.get("/v2/contacts").status_code == 200
    assert sandbox_client.get("/v2/lists").status_code == 503
    assert sandbox_client.get("/v2/lists").status_code == 503  # no count: every time
    sandbox.faults.clear()
    assert sandbox_client.get("/v2/lists").status_code == 200


def test_probability(sandbox: Sandbox, sandbox_client: httpx.Client) -> None:
    sandbox.faults.add("500", probability=0.5)
    codes = [sandbox_client.get("/v2/account/info").status_code for _ in range(40)]
    assert 5 < codes.count(500) < 35
    assert codes.count(200) == 40 - codes.count(500)


def test_latency(sandbox: Sandbox, sandbox_client: httpx.Client) -> None:
    sandbox.faults.add("latency", "/v2/lists", latency_ms=300, count=1)
    t0 = time.perf_counter()
    r = sandbox_client.get("/v2/lists")
    slow = time.perf_counter() - t0
    assert r.status_code == 200
    assert slow >= 0.3
    t0 = time.perf_counter()
    sandbox_client.get("/v2/lists")
    assert time.perf_counter() - t0 < slow


def test_dropped_connection(sandbox: Sandbox, sandbox_client: httpx.Client) -> None:
    sandbox.faults.add("drop", "/v2/contacts", count=1)
    with pytest.raises(httpx.RemoteProtocolError):
        sandbox_client.get("/v2/contacts", params={"limit": 200})
    assert sandbox_client.get("/v2/contacts").status_code == 200


def test_truncated_json(sandbox: Sandbox, sandbox_client: httpx.Client) -> None:
    sandbox.faults.add("truncate", "/v2/contacts", count=1)
    r = sandbox_client.get("/v2/contacts")
    assert r.status_code == 200
    assert int(r.headers["content-length"]) == len(r.content)
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(r.content)
    assert sandbox_client.get("/v2/contacts").json()["results"]


def test_malformed_html_with_200(sandbox: Sandbox, sandbox_client: httpx.Client) -> None:
    sandbox.faults.add("malformed", "/v2/lists", count=1)
    r = sandbox_client.get("/v2/lists")
    assert r.status_code == 200
    assert r.text.startswith("<html>")
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(r.content)


@pytest.mark.parametrize("path", ["/v2/contacts", "/v2/library/files"])
def test_duplicate_records_across_pages(sandbox: Sandbox, sandbox_client: httpx.Client,
                                        path: str) -> None:
    sandbox.faults.add("duplicate", path, k=3, count=1)
    page1 = sandbox_client.get(path, params={"limit": 5}).json()
    token = page1["meta"]["pagination"]["next_link"].split("next=")[1]
    page2 = sandbox_client.get(path, params={"next": token}).json()
    assert page2["results"][:3] == page1["results"][-3:]


def test_duplicate_on_tracking(sandbox: Sandbox, sandbox_client: httpx.Client) -> None:
    camp = sandbox.truth("email_campaign_summary")[0]["campaign_id"]
    path = f"/v2/emailmarketing/campaigns/{camp}/tracking/sends"
    sandbox.faults.add("duplicate", path, k=2, count=1)
    page1 = sandbox_client.get(path, params={"limit": 6}).json()
    token = page1["meta"]["pagination"]["next_link"].split("next=")[1]
    page2 = sandbox_client.get(path, params={"next": token}).json()
    assert page2["results"][:2] == page1["results"][-2:]


def test_admin_fault_endpoints(sandbox: Sandbox, sandbox_client: httpx.Client) -> None:
    url = f"{sandbox.base_url}/_sandbox/faults"
    created = httpx.post(url, json={"spec": "503:/v2/account/*:n=1"})
    assert created.status_code == 201
    assert created.json()["kind"] == "503"
    assert [f["id"] for f in httpx.get(url).json()] == [created.json()["id"]]
    assert sandbox_client.get("/v2/account/info").status_code == 503
    httpx.post(url, json={"kind": "500", "path": "/v2/lists"})
    assert sandbox_client.get("/v2/lists").status_code == 500
    assert httpx.delete(url).json() == []
    assert sandbox_client.get("/v2/lists").status_code == 200
    assert httpx.post(url, json={"spec": "boom"}).status_code == 400


@pytest.mark.parametrize(("text", "expected"), [
    ("500:/v2/contacts*:p=0.1", {"kind": "500", "path": "/v2/contacts*", "probability": 0.1}),
    ("drop:/v2/contacts:n=2", {"kind": "drop", "path": "/v2/contacts", "count": 2}),
    ("latency:*:ms=300", {"kind": "latency", "path": "*", "latency_ms": 300}),
    ("duplicate:/v2/contacts:k=3:n=1", {"kind": "duplicate", "path": "/v2/contacts", "k": 3,
                                         "count": 1}),
    ("truncate", {"kind": "truncate"}),
])
def test_fault_syntax(text: str, expected: dict[str, object]) -> None:
    assert parse_fault(text) == expected


def test_fault_syntax_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        parse_fault("418:/v2/contacts")


def test_faults_from_constructor(sandbox_factory: object) -> None:
    sb = sandbox_factory(faults=["503:/v2/lists:n=1"])  # type: ignore[operator]
    c = sb.credentials
    r = httpx.get(f"{sb.base_url}/v2/lists", params={"api_key": c.api_key},
                  headers={"Authorization": f"Bearer {c.access_token}"})
    assert r.status_code == 503
