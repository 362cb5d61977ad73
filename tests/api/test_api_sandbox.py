"""The API layer against the sandbox, over real HTTP: completeness, faults, limits, auth."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from ctctsync.api import ApiClient, RateLimiter, RetryPolicy
from ctctsync.api.v2 import V2_ENDPOINTS, check, extract, sent_campaigns
from ctctsync.api.v2.extract import campaign_summaries
from ctctsync.errors import (
    ConfigError,
    DailyQuotaExhausted,
    MalformedResponse,
    NotFound,
    ReauthorizeRequired,
    RetriesExhausted,
)
from ctctsync.sandbox import AccountSpec, Sandbox

KEYS = {
    "contacts": ("id",),
    "email_campaigns": ("id",),
    "my_library_files": ("id",),
    "account_info": ("email",),
    "trash_files": ("id",),
    "contact_lists": ("id",),
    "events": ("id",),
}


def client_for(sb: Sandbox, limiter: RateLimiter | None = None, **kw: Any) -> ApiClient:
    creds = sb.credentials
    kw.setdefault("sleep", lambda _s: None)  # retry waits are not what these tests measure
    return ApiClient(
        sb.base_url,
        creds.api_key,
        creds.access_token,
        limiter=limiter or RateLimiter(None, None),
        **kw,
    )


def read_all(table: str, client: ApiClient, since: datetime | None = None) -> list[dict]:
    return [r for page in extract(table, client, since) for r in page]


def canon(record: dict) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


def activity_view(record: dict) -> dict:
    """Our contact_tracking record in the API's contact-tracking shape (drop our additions)."""
    return {k: v for k, v in record.items() if k != "activity_date"}


def assert_same_records(table: str, ours: list[dict], truth: list[dict]) -> None:
    if table == "contact_tracking":
        got = Counter(canon(activity_view(r)) for r in ours)
        want = Counter(canon(r) for r in truth)
        assert got == want
        return
    if table == "email_campaign_summary":
        projected = [{k: r[k] for k in truth[0]} for r in ours]
        assert sorted(map(canon, projected)) == sorted(map(canon, truth))
        return
    key = KEYS[table]
    ours_by_key = {tuple(r[k] for k in key): r for r in ours}
    truth_by_key = {tuple(r[k] for k in key): r for r in truth}
    assert len(ours) == len(truth), "duplicates or gaps"
    assert ours_by_key == truth_by_key


@pytest.mark.parametrize("table", list(V2_ENDPOINTS))
def test_every_table_extracts_fully(sandbox, table):
    with client_for(sandbox) as client:
        ours = read_all(table, client)
    truth = sandbox.truth(table)
    assert truth, "the small account has rows in every table"
    assert_same_records(table, ours, truth)


def test_paged_tables_really_page(sandbox):
    # The small account is built so that its tables span several pages at the limits we use
    # for some endpoints; at least the tracking collections must have followed next links.
    with client_for(sandbox) as client:
        read_all("contact_tracking", client)
        calls = client.calls.snapshot()
    assert calls["GET /v2/emailmarketing/campaigns"] >= 1
    assert calls["GET /v2/emailmarketing/campaigns/{id}/tracking/sends"] >= 1


def test_contact_tracking_calls_do_not_grow_with_contacts(sandbox_factory):
    counts = []
    for contacts in (100, 800):
        spec = AccountSpec(seed=11, contacts=contacts, campaigns=5, activities_per_campaign=30)
        sb = sandbox_factory(spec)
        sent = sum(1 for c in sb.truth("email_campaigns") if c["status"] == "SENT")
        with client_for(sb) as client:
            rows = read_all("contact_tracking", client)
            assert len(rows) == len(sb.truth("contact_tracking"))
            calls = client.calls.snapshot()
        assert not any("/v2/contacts" in endpoint for endpoint in calls)
        # 1 campaign list + per SENT campaign: 6 tracking collections + 1 detail (link URIs)
        assert client.calls.total == 1 + 7 * sent
        counts.append(client.calls.total)
    assert counts[0] == counts[1]


def test_incremental_contacts_and_lists(sandbox):
    since = sandbox.account.clock.now() - timedelta(seconds=1)
    sandbox.account.advance(5)
    changed = sandbox.account.update_contacts(7, change_lists=0)
    new_list = sandbox.account.add_list("fresh")
    with client_for(sandbox) as client:
        contacts = read_all("contacts", client, since)
        lists = read_all("contact_lists", client, since)
    assert sorted(int(c["id"]) for c in contacts) == changed
    assert [int(lst["id"]) for lst in lists] == [new_list]


def test_incremental_tracking_finds_new_activity_and_new_campaigns(sandbox):
    account = sandbox.account
    sandbox.advance(60)
    since = account.clock.now()
    sandbox.advance(60)
    old = next(int(c["id"]) for c in sandbox.truth("email_campaigns") if c["status"] == "SENT")
    account.send_campaign(old, activities=4)
    new = account.send_campaign(None, activities=12)
    with client_for(sandbox) as client:
        rows = read_all("contact_tracking", client, since)
    by_campaign = Counter(r["campaign_id"] for r in rows)
    truth = sandbox.truth("contact_tracking")
    new_truth = [r for r in truth if r["campaign_id"] == str(new)]
    # the new campaign is read whole (its sends predate nothing, but it was just sent)
    assert by_campaign[str(new)] == len(new_truth)
    # the old campaign contributes only what happened after `since`
    assert by_campaign[str(old)] == 4
    assert set(by_campaign) == {str(old), str(new)}


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param("500", id="500"),
        pytest.param("503", id="503"),
        pytest.param("522", id="522"),
        pytest.param("drop", id="dropped-connection"),
        pytest.param("truncate", id="truncated-json"),
        pytest.param("malformed", id="html-instead-of-json"),
    ],
)
def test_retries_survive_injected_faults(sandbox, fault):
    sandbox.faults.add(fault, "/v2/emailmarketing/campaigns/*/tracking/*", count=2)
    sandbox.faults.add(fault, "/v2/contacts", count=1)
    with client_for(sandbox) as client:
        tracking = read_all("contact_tracking", client)
        contacts = read_all("contacts", client)
        attempts = client.calls.total
    assert_same_records("contact_tracking", tracking, sandbox.truth("contact_tracking"))
    assert_same_records("contacts", contacts, sandbox.truth("contacts"))
    served = sandbox.counters.snapshot()["total"]
    assert attempts == served  # every attempt counted, retries included
    assert not sandbox.faults.list()  # all three faults fired


def test_overlapping_pages_are_harmless(sandbox_factory):
    sb = sandbox_factory(AccountSpec(seed=3, contacts=1100, campaigns=2))
    sb.faults.add("duplicate", "/v2/contacts", k=3, count=1)
    with client_for(sb) as client:
        pages = list(extract("contacts", client))
    assert len(pages) == 3
    ids = [r["id"] for page in pages for r in page]
    assert len(ids) == len(set(ids)) + 3  # the API repeated records...
    truth_ids = {r["id"] for r in sb.truth("contacts")}
    assert set(ids) == truth_ids  # ...and nothing is missing


def test_persistent_server_error_gives_up(sandbox):
    sandbox.faults.add("500", "/v2/account/info")
    with client_for(sandbox, retry=RetryPolicy(max_attempts=4)) as client:
        with pytest.raises(RetriesExhausted) as info:
            client.get_json("/v2/account/info")
        assert client.calls.total == 4
    assert info.value.failure_type == "transient"
    assert "GET /v2/account/info" in info.value.user_message


def test_persistent_malformed_body_gives_up(sandbox):
    sandbox.faults.add("truncate", "/v2/lists")
    with client_for(sandbox) as client:
        with pytest.raises(MalformedResponse):
            list(extract("contact_lists", client))
        assert client.calls.total == RetryPolicy().malformed_attempts


def test_retry_waits_grow_exponentially_with_jitter(sandbox):
    sandbox.faults.add("503", "/v2/account/info", count=3)
    waits: list[float] = []
    with client_for(sandbox, sleep=waits.append, jitter=lambda: 1.0) as client:
        client.get_json("/v2/account/info")
    assert waits == [0.5, 1.0, 2.0]


def test_over_qps_answers_slow_the_limiter_and_the_run_completes(sandbox_factory):
    sb = sandbox_factory(qps_limit=4)
    limiter = RateLimiter(12.0, None)  # deliberately too fast for the server
    with client_for(sb, limiter=limiter, sleep=time.sleep) as client:
        rows = read_all("contact_tracking", client)
    assert_same_records("contact_tracking", rows, sb.truth("contact_tracking"))
    refused = sb.counters.snapshot()["api_keys"][sb.credentials.api_key].get("403", 0)
    assert refused > 0
    assert limiter.slowdowns == refused
    assert limiter.current_qps is not None
    assert limiter.current_qps < 12.0


def test_pacing_at_4_qps_gets_no_throttling_answers(sandbox_factory):
    sb = sandbox_factory(qps_limit=4)
    limiter = RateLimiter(4.0, None)
    with client_for(sb, limiter=limiter, sleep=time.sleep) as client:
        for _ in range(21):
            client.get_json("/v2/account/info")
    statuses = sb.counters.snapshot()["api_keys"][sb.credentials.api_key]
    assert statuses.get("403", 0) == 0
    assert statuses["200"] == 21
    assert limiter.slowdowns == 0
    # The share of the allowed rate reached is a benchmark figure (bench/bench_sync.py
    # --rate-limited, docs/performance.md), not a timed assertion.


def test_shared_limiter_paces_parallel_clients(sandbox_factory):
    sb = sandbox_factory(qps_limit=4)
    limiter = RateLimiter(4.0, None)
    clients = [client_for(sb, limiter=limiter, sleep=time.sleep) for _ in range(3)]
    errors: list[BaseException] = []

    def work(client: ApiClient) -> None:
        try:
            for _ in range(5):
                client.get_json("/v2/account/info")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in clients:
        c.close()
    assert not errors
    statuses = sb.counters.snapshot()["api_keys"][sb.credentials.api_key]
    assert statuses.get("403", 0) == 0
    assert statuses["200"] == 15


def test_spent_daily_quota_stops_with_a_resume_time(sandbox_factory):
    sb = sandbox_factory(daily_limit=5)
    limiter = RateLimiter(None, 10_000)
    with client_for(sb, limiter=limiter) as client:
        with pytest.raises(DailyQuotaExhausted) as info:
            read_all("contact_tracking", client)
        served = sb.counters.snapshot()["total"]
        # the shared limiter now refuses before sending anything
        with pytest.raises(DailyQuotaExhausted):
            client.get_json("/v2/account/info")
        assert sb.counters.snapshot()["total"] == served
    exc = info.value
    now = datetime.now(UTC)
    assert exc.resume_at == datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
    assert exc.failure_type == "quota"
    assert "read after" in exc.user_message
    assert limiter.remaining_today == 0


def test_local_daily_budget_is_never_exceeded(sandbox):
    limiter = RateLimiter(None, 3)
    with client_for(sandbox, limiter=limiter) as client, pytest.raises(DailyQuotaExhausted):
        read_all("contact_tracking", client)
    assert sandbox.counters.snapshot()["total"] == 3


def test_revoked_token_needs_reauthorization_and_leaks_nothing(sandbox, caplog):
    creds = sandbox.credentials
    sandbox.revoke_token()
    caplog.set_level(logging.DEBUG)
    with client_for(sandbox) as client, pytest.raises(ReauthorizeRequired) as info:
        list(extract("contacts", client))
    exc = info.value
    assert "Re-authorize" in exc.user_message
    assert exc.failure_type == "auth"
    texts = [str(exc), repr(exc), exc.user_message, exc.detail, caplog.text]
    for secret in (creds.api_key, creds.access_token, creds.client_secret):
        for text in texts:
            assert secret not in text


def test_logs_never_show_secrets_even_on_retries(sandbox, caplog):
    creds = sandbox.credentials
    sandbox.faults.add("500", "/v2/lists", count=2)
    caplog.set_level(logging.DEBUG)
    with client_for(sandbox) as client:
        read_all("contact_lists", client)
    assert "api_key=***" in caplog.text
    assert creds.api_key not in caplog.text
    assert creds.access_token not in caplog.text


def test_unknown_api_key_is_a_config_error(sandbox):
    creds = sandbox.credentials
    with (
        ApiClient(
            sandbox.base_url, "not-the-key-000", creds.access_token, limiter=RateLimiter(None, None)
        ) as client,
        pytest.raises(ConfigError) as info,
    ):
        client.get_json("/v2/account/info")
    assert info.value.failure_type == "config"
    assert "API key" in info.value.user_message
    assert "not-the-key-000" not in str(info.value)


def test_missing_item_is_not_found(sandbox):
    with client_for(sandbox) as client, pytest.raises(NotFound):
        client.get_json("/v2/emailmarketing/campaigns/12345")


def test_campaign_deleted_between_list_and_detail_is_skipped(sandbox):
    with client_for(sandbox) as client:
        campaigns = sent_campaigns(client)
        gone = {"id": "999999", "name": "gone", "status": "SENT", "modified_date": None}
        rows = [
            r for page in campaign_summaries(client, campaigns=[*campaigns, gone]) for r in page
        ]
    assert {r["campaign_id"] for r in rows} == {str(c["id"]) for c in campaigns}


def test_summary_uses_one_call_per_campaign(sandbox):
    with client_for(sandbox) as client:
        campaigns = sent_campaigns(client)
        before = client.calls.total
        rows = [
            r
            for page in extract("email_campaign_summary", client, campaigns=campaigns)
            for r in page
        ]
        assert client.calls.total - before == len(campaigns) == len(rows)
    for row in rows:
        assert row["start_date"] == row["last_run_date"]
        assert row["end_date"].endswith("Z")


def test_check_reports_the_account(sandbox):
    with client_for(sandbox) as client:
        result = check(client)
    info = sandbox.truth("account_info")[0]
    assert result.organization_name == info["organization_name"]
    assert result.email == info["email"]
    assert result.calls == 1


def test_sandbox_refuses_nothing_we_send(sandbox):
    # Every first-page query we declare is accepted by the simulator's parameter checks.
    with client_for(sandbox) as client:
        for table in V2_ENDPOINTS:
            read_all(table, client, since=datetime(2020, 1, 1, tzinfo=UTC))
    statuses = sandbox.counters.snapshot()["api_keys"][sandbox.credentials.api_key]
    assert set(statuses) <= {"total", "200", "2xx"}
