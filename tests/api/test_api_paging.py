"""Paginators, next-link resolution and the loop guard, on canned bodies and fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from ctctsync.api.paging import (
    ForeignNextLinkError,
    LoopGuard,
    ShapeError,
    V3LinksPaginator,
    paginator_for,
    resolve_next_link,
)
from ctctsync.errors import PaginationLoop

# shared/ sits beside the repository (locally and in CI): ../shared/reference/fixtures
FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "fixtures"


def fixture(name: str) -> object:
    return orjson.loads((FIXTURES / name).read_bytes())


needs_fixtures = pytest.mark.skipif(
    not FIXTURES.exists() and os.environ.get("CI") != "true",
    reason="reference fixtures absent (shared/ beside the repository); required under CI",
)


@needs_fixtures
@pytest.mark.parametrize(
    ("name", "envelope", "count", "has_next"),
    [
        pytest.param(
            "GET_v2_contacts__page1__java-sdk.json", "v2_results", None, True, id="contacts-page1"
        ),
        pytest.param(
            "GET_v2_contacts__last-page__php-sdk.json",
            "v2_results",
            None,
            False,
            id="contacts-last",
        ),
        pytest.param(
            "GET_v2_contacts_ID_tracking__empty__java-sdk.json",
            "v2_results",
            0,
            False,
            id="tracking-empty",
        ),
        pytest.param("GET_v2_lists__ruby-sdk.json", "v2_array", None, False, id="lists-array"),
        pytest.param(
            "GET_v2_account_info__java-sdk.json", "v2_object", 1, False, id="account-object"
        ),
        pytest.param(
            "GET_v2_emailmarketing_campaigns_ID_tracking_reports_summary__php-sdk.json",
            "v2_object",
            1,
            False,
            id="summary-object",
        ),
        pytest.param(
            "GET_v2_emailmarketing_campaigns__ruby-sdk.json", "v2_results", 2, True, id="campaigns"
        ),
    ],
)
def test_fixtures_parse(name, envelope, count, has_next):
    page = paginator_for(envelope).parse(fixture(name))
    if count is not None:
        assert len(page.records) == count
    assert (page.next_link is not None) == has_next


@pytest.mark.parametrize(
    ("envelope", "body"),
    [
        pytest.param("v2_results", [], id="results-got-array"),
        pytest.param("v2_results", {"meta": {}}, id="results-missing"),
        pytest.param("v2_results", {"results": {"a": 1}}, id="results-not-list"),
        pytest.param("v2_results", {"results": [1, 2]}, id="results-not-objects"),
        pytest.param(
            "v2_results",
            {"results": [], "meta": {"pagination": {"next_link": 5}}},
            id="next-link-not-string",
        ),
        pytest.param("v2_results", {"results": [], "meta": []}, id="meta-not-object"),
        pytest.param("v2_array", {"results": []}, id="array-got-object"),
        pytest.param("v2_object", [{"a": 1}], id="object-got-array"),
        pytest.param("v2_object", "html", id="object-got-string"),
    ],
)
def test_wrong_shapes_raise(envelope, body):
    with pytest.raises(ShapeError):
        paginator_for(envelope).parse(body)


def test_last_page_has_empty_pagination():
    page = paginator_for("v2_results").parse({"meta": {"pagination": {}}, "results": [{"id": 1}]})
    assert page.next_link is None
    assert page.records == [{"id": 1}]


def test_empty_next_link_means_last_page():
    body = {"meta": {"pagination": {"next_link": ""}}, "results": []}
    assert paginator_for("v2_results").parse(body).next_link is None


def test_v3_links_paginator():
    paginator = V3LinksPaginator("contacts")
    page = paginator.parse(
        {"contacts": [{"contact_id": "u"}], "_links": {"next": {"href": "/v3/contacts?cursor=x"}}}
    )
    assert page.next_link == "/v3/contacts?cursor=x"
    assert paginator.parse({"contacts": []}).next_link is None
    assert paginator.parse({"contacts": [], "_links": {}}).next_link is None
    with pytest.raises(ValueError, match="records_key"):
        paginator_for("v3_links")


@pytest.mark.parametrize(
    ("base", "link", "url", "params"),
    [
        pytest.param(
            "https://api.constantcontact.com",
            "/v2/contacts?next=c3RhcnRBdD0yOQ",
            "https://api.constantcontact.com/v2/contacts",
            {"next": "c3RhcnRBdD0yOQ"},
            id="relative",
        ),
        pytest.param(
            "http://127.0.0.1:8123/",
            "/v2/contacts?next=abc",
            "http://127.0.0.1:8123/v2/contacts",
            {"next": "abc"},
            id="trailing-slash",
        ),
        pytest.param(
            "http://host/ctct",
            "/v2/lists/1/contacts?next=abc",
            "http://host/ctct/v2/lists/1/contacts",
            {"next": "abc"},
            id="path-prefix",
        ),
        pytest.param(
            "https://api.constantcontact.com",
            "v2/contacts?next=abc",
            "https://api.constantcontact.com/v2/contacts",
            {"next": "abc"},
            id="no-leading-slash",
        ),
        pytest.param(
            "https://api.constantcontact.com",
            "https://api.constantcontact.com/v2/contacts?next=abc%3D%3D",
            "https://api.constantcontact.com/v2/contacts",
            {"next": "abc=="},
            id="absolute-same-host",
        ),
    ],
)
def test_resolve_next_link(base, link, url, params):
    assert resolve_next_link(base, link) == (url, params)


def test_resolve_next_link_drops_the_first_query():
    # The first request had limit/modified_since/status; the next request sends only `next`.
    url, params = resolve_next_link("https://api.constantcontact.com", "/v2/contacts?next=t")
    assert set(params) == {"next"}
    assert "?" not in url


def test_resolve_next_link_refuses_other_hosts():
    with pytest.raises(ForeignNextLinkError):
        resolve_next_link("https://api.constantcontact.com", "https://evil.example/v2/x?next=1")


def test_loop_guard():
    guard = LoopGuard("GET /v2/contacts")
    guard.check("/v2/contacts?next=a")
    guard.check("/v2/contacts?next=b")
    with pytest.raises(PaginationLoop) as info:
        guard.check("/v2/contacts?next=a")
    assert info.value.failure_type == "system"
    assert "GET /v2/contacts" in info.value.user_message
