"""The v2 declarations: complete, consistent with the table registry, and quirks encoded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import get_args
from urllib.parse import parse_qs, urlsplit

import pytest

from ctctsync.api.client import _retry_after_seconds, endpoint_template
from ctctsync.api.v2 import READERS, V2_ENDPOINTS, authorize_url, first_params, format_since
from ctctsync.api.v2.extract import _normalise_activity, _since_for
from ctctsync.tables import TABLES, Reader, tables_for


def test_every_table_has_a_v2_source():
    assert set(V2_ENDPOINTS) == set(tables_for("v2"))
    for name, source in V2_ENDPOINTS.items():
        assert source is TABLES[name].sources["v2"]  # a view of the registry, not a copy
        assert source.path.startswith("/v2/")
        assert source.reference


def test_every_table_has_a_source_or_says_why_not():
    for table in TABLES.values():
        for version in ("v2", "v3"):
            assert table.available_in(version) or table.unavailable.get(version), (
                table.name, version)


def test_every_reader_strategy_has_a_v2_reader():
    assert set(READERS) == set(get_args(Reader))


def test_incremental_tables_have_a_filter_and_full_tables_do_not():
    for name, table in tables_for("v2").items():
        since = table.sources["v2"].since_param
        if name == "email_campaign_summary":
            continue  # full table read through a per-campaign reader
        assert (since is not None) == (table.replication == "incremental"), name


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        pytest.param(
            "contacts",
            {"status": "ALL", "limit": 500, "modified_since": "2026-01-02T03:04:05.678Z"},
            id="contacts",
        ),
        pytest.param(
            "email_campaigns",
            {"status": "ALL", "limit": 50, "modified_since": "2026-01-02T03:04:05.678Z"},
            id="campaigns-max-50",
        ),
        pytest.param(
            "contact_lists", {"modified_since": "2026-01-02T03:04:05.678Z"}, id="lists-not-paged"
        ),
        pytest.param("my_library_files", {"limit": 1000}, id="library-full"),
        pytest.param("trash_files", {"limit": 1000}, id="trash-full"),
        pytest.param("account_info", {}, id="account"),
        pytest.param("events", {"limit": 500}, id="events"),
    ],
)
def test_first_params(table, expected):
    since = datetime(2026, 1, 2, 3, 4, 5, 678_900, tzinfo=UTC)
    assert first_params(TABLES[table].sources["v2"], since) == expected


def test_first_params_without_since():
    assert "modified_since" not in first_params(TABLES["contacts"].sources["v2"], None)


_SINCE = datetime(2026, 1, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("campaign", "since", "expected"),
    [
        pytest.param({"modified_date": "2025-12-01T00:00:00.000Z"}, _SINCE, _SINCE, id="old"),
        pytest.param({"modified_date": "2026-01-03T00:00:00.000Z"}, _SINCE, None, id="changed"),
        pytest.param({"modified_date": "2026-01-02T00:00:00.000Z"}, _SINCE, None, id="at-since"),
        pytest.param({}, _SINCE, _SINCE, id="no-date"),
        pytest.param({"modified_date": "2026-01-03T00:00:00.000Z"}, None, None, id="full-read"),
    ],
)
def test_campaigns_changed_since_are_read_whole(campaign, since, expected):
    # a campaign sent after the bookmark has activities from before it: its tracking is
    # read without created_since
    assert _since_for(campaign, since) == expected


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        pytest.param(
            datetime(2015, 2, 11, 13, 12, 6, tzinfo=UTC), "2015-02-11T13:12:06.000Z", id="utc"
        ),
        pytest.param(
            datetime(2015, 2, 11, 8, 12, 6, 123_456, tzinfo=timezone(timedelta(hours=-5))),
            "2015-02-11T13:12:06.123Z",
            id="eastern-to-utc",
        ),
    ],
)
def test_format_since(moment, text):
    assert format_since(moment) == text


def test_format_since_refuses_naive():
    with pytest.raises(ValueError, match="timezone"):
        format_since(datetime(2015, 2, 11))


@pytest.mark.parametrize(
    ("path", "template"),
    [
        pytest.param("/v2/contacts", "GET /v2/contacts", id="collection"),
        pytest.param(
            "/v2/emailmarketing/campaigns/1100394165287/tracking/opens",
            "GET /v2/emailmarketing/campaigns/{id}/tracking/opens",
            id="tracking",
        ),
        pytest.param(
            "/v2/library/folders/-5/files",
            "GET /v2/library/folders/{id}/files",
            id="negative-folder",
        ),
        pytest.param(
            "/v2/eventspot/events/a07e1iw09oscc73adfe",
            "GET /v2/eventspot/events/{id}",
            id="eventspot-id",
        ),
        pytest.param(
            "/v2/library/folders/trash/files",
            "GET /v2/library/folders/trash/files",
            id="trash-is-not-an-id",
        ),
        pytest.param("/v2/contacts?next=abc1", "GET /v2/contacts", id="query-dropped"),
    ],
)
def test_endpoint_template(path, template):
    assert endpoint_template("GET", path) == template


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param("3", 3.0, id="seconds"),
        pytest.param("1.5", 1.5, id="fraction"),
        pytest.param("-4", 0.0, id="negative"),
        pytest.param("Fri, 27 Nov 2026 12:00:10 GMT", 10.0, id="http-date"),
        pytest.param("soon", None, id="garbage"),
    ],
)
def test_retry_after(value, seconds):
    now = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
    assert _retry_after_seconds(value, now) == seconds


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        pytest.param(
            {
                "activity_type": "EMAIL_OPEN",
                "campaign_id": 1100394165287,
                "contact_id": 51,
                "open_date": "2012-12-06T13:06:35.661Z",
            },
            {
                "campaign_id": "1100394165287",
                "contact_id": "51",
                "activity_type": "EMAIL_OPEN",
                "activity_date": "2012-12-06T13:06:35.661Z",
            },
            id="numeric-ids-to-strings",
        ),
        pytest.param(
            {"contact_id": "7", "click_date": "2012-12-06T13:07:01.701Z", "link_id": 0},
            {
                "campaign_id": "99",
                "contact_id": "7",
                "activity_type": "EMAIL_CLICK",
                "activity_date": "2012-12-06T13:07:01.701Z",
                "link_id": 0,
            },
            id="missing-campaign-and-type-filled",
        ),
    ],
)
def test_normalise_activity(record, expected):
    out = _normalise_activity(record, "99", "EMAIL_CLICK")
    for key, value in expected.items():
        assert out[key] == value


def test_authorize_url():
    url = authorize_url(
        "key123",
        "https://app.example/cb",
        state="s1",
        auth_base_url="https://oauth2.constantcontact.com/",
    )
    parts = urlsplit(url)
    assert parts.path == "/oauth2/oauth/siteowner/authorize"
    assert parse_qs(parts.query) == {
        "response_type": ["code"],
        "client_id": ["key123"],
        "redirect_uri": ["https://app.example/cb"],
        "state": ["s1"],
    }
