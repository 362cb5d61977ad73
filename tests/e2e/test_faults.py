"""A sync survives what the API does wrong, and stops cleanly where it must: throttling,
5xx storms, dropped connections, broken and overlapping pages, a spent daily quota, a
revoked token."""

from __future__ import annotations

import pytest
from sync_truth import assert_matches_truth

from ctctsync.api import ApiClient, RateLimiter, RetryPolicy
from ctctsync.config import WarehouseConfig
from ctctsync.sandbox import AccountSpec, Sandbox
from ctctsync.state import StateStore
from ctctsync.sync import run_sync
from ctctsync.tables import tables_for
from ctctsync.warehouse import read_table, warehouse_tables

V2_TABLES = tables_for("v2")
"""The tables of the v2 path (a config without api_version reads v2)."""

PAGED = AccountSpec(seed=11, contacts=1300, lists=4, campaigns=4, activities_per_campaign=30,
                    library_files=5, trash_files=2, events=2)
"""Contacts span three pages (500 per page), so page-level faults hit mid-table."""


def fast_client(sb: Sandbox, *, qps: float | None = None, daily: int | None = None,
                retry: RetryPolicy | None = None) -> ApiClient:
    """A client with its own limiter and short retry waits (the policy, not the clock, is
    what these tests check)."""
    return ApiClient(
        sb.base_url, sb.credentials.api_key, sb.credentials.access_token,
        limiter=RateLimiter(qps, daily),
        retry=retry or RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.05),
    )


def _check_all(sb: Sandbox, wcfg) -> None:
    for name in V2_TABLES:
        ignore = ("end_date",) if name == "email_campaign_summary" else ()
        assert_matches_truth(sb, wcfg, name, ignore=ignore)


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param("500:/v2/contacts*:n=3", id="500-storm-on-contacts"),
        pytest.param("503:*:p=0.15", id="503-everywhere", marks=pytest.mark.slow),
        pytest.param("522:/v2/emailmarketing/*:n=4", id="522-on-campaigns",
                     marks=pytest.mark.slow),
        pytest.param("drop:/v2/contacts*:n=2", id="dropped-connections"),
        pytest.param("truncate:/v2/contacts*:n=2", id="truncated-bodies",
                     marks=pytest.mark.slow),
        pytest.param("malformed:/v2/library/*:n=2", id="html-instead-of-json"),
        pytest.param("duplicate:/v2/contacts:k=3:n=2", id="pages-overlap"),
    ],
)
def test_faults_are_survived(sandbox_factory, duckdb_warehouse, make_config, fault: str) -> None:
    sb = sandbox_factory(PAGED)
    rule = sb.faults.add_spec(fault)
    cfg = make_config(sb, duckdb_warehouse)
    with fast_client(sb) as client:
        result = run_sync(cfg, client=client, clock=sb.account.clock.now)
    assert result.status == "succeeded", result.error
    assert rule.fired > 0, "the fault never fired: the test proves nothing"
    _check_all(sb, duckdb_warehouse)


def test_throttling_is_survived(sandbox_factory, duckdb_warehouse, make_config) -> None:
    """The sandbox allows 10 requests/s; the client does not pace at all, so it is told
    "over qps" (403 mashery.not.authorized.over.qps) and must back off and retry."""
    sb = sandbox_factory(qps_limit=10)
    cfg = make_config(sb, duckdb_warehouse)
    limiter = RateLimiter(None, None)
    with ApiClient(sb.base_url, sb.credentials.api_key, sb.credentials.access_token,
                   limiter=limiter) as client:
        result = run_sync(cfg, client=client, clock=sb.account.clock.now)
    assert result.status == "succeeded", result.error
    assert limiter.slowdowns > 0, "the sandbox never throttled: the test proves nothing"
    endpoints = sb.counters.snapshot()["endpoints"].values()
    assert sum(row.get("403", 0) for row in endpoints) > 0
    _check_all(sb, duckdb_warehouse)


def test_malformed_beyond_retries_fails_that_table_only(sandbox_factory, duckdb_warehouse,
                                                        make_config) -> None:
    sb = sandbox_factory(faults=["malformed:/v2/lists"])
    cfg = make_config(sb, duckdb_warehouse)
    with fast_client(sb) as client:
        result = run_sync(cfg, client=client, clock=sb.account.clock.now)
    assert result.status == "failed"
    assert result.failure_type == "system"
    lists = result.tables["contact_lists"]
    assert lists.status == "failed" and lists.error and "contact_lists" in lists.error
    assert "cc_contact_lists" not in warehouse_tables(duckdb_warehouse, "cc")
    assert StateStore(cfg.state_url).get("cc", "contact_lists") is None
    for name in V2_TABLES:
        if name != "contact_lists":
            assert result.tables[name].status == "succeeded", name


def test_daily_quota_ends_partial_and_resumes(sandbox_factory, duckdb_warehouse,
                                              make_config) -> None:
    sb = sandbox_factory(daily_limit=4)  # contacts, campaigns, library, account info
    cfg = make_config(sb, duckdb_warehouse)
    clock = sb.account.clock.now
    with fast_client(sb) as client:
        result = run_sync(cfg, client=client, clock=clock)
    assert result.status == "partial"
    assert result.failure_type == "quota"
    assert result.resume_at is not None and result.resume_at > result.started_at
    assert result.error and "quota" in result.error
    done = ["contacts", "email_campaigns", "my_library_files", "account_info"]
    assert [n for n, t in result.tables.items() if t.status == "succeeded"] == done
    assert result.tables["trash_files"].status == "stopped"  # by the quota: not a failure
    assert all(result.tables[n].status == "skipped" for n in
               ("contact_lists", "contact_tracking", "email_campaign_summary", "events"))
    store = StateStore(cfg.state_url)
    assert store.get("cc", "contacts") is not None
    assert store.get("cc", "contact_tracking") is None
    for name in done:
        assert_matches_truth(sb, duckdb_warehouse, name)
    assert set(warehouse_tables(duckdb_warehouse, "cc")) == {f"cc_{n}" for n in done}

    # the next day: the run picks up where it stopped, done tables only incrementally
    sb.limiter.configure(qps_limit=None, daily_limit=None)
    with fast_client(sb) as client:
        resumed = run_sync(cfg, client=client, clock=clock)
    assert resumed.status == "succeeded", resumed.error
    assert resumed.tables["contacts"].mode == "incremental"
    assert resumed.tables["contact_tracking"].mode == "full"
    _check_all(sb, duckdb_warehouse)


def test_revoked_token_fails_with_reauthorize_and_keeps_the_warehouse(
        sandbox: Sandbox, any_warehouse, make_config) -> None:
    warehouse = any_warehouse
    cfg = make_config(sandbox, warehouse)
    clock = sandbox.account.clock.now
    assert run_sync(cfg, clock=clock).status == "succeeded"
    before = {n: read_table(warehouse, "cc", n) for n in ("contacts", "contact_lists")}
    bookmarks = StateStore(cfg.state_url).all("cc")

    sandbox.account.update_contacts(5)
    assert sandbox.auth.revoke_token(sandbox.credentials.access_token)
    result = run_sync(cfg, clock=clock)

    assert result.status == "failed"
    assert result.failure_type == "auth"
    assert result.error and "re-authorize" in result.error.lower()
    assert sandbox.credentials.access_token not in result.error
    assert result.tables["contacts"].status == "failed"
    assert all(t.status == "skipped" for n, t in result.tables.items() if n != "contacts")
    for name, table in before.items():
        assert read_table(warehouse, "cc", name).equals(table), name
    assert StateStore(cfg.state_url).all("cc") == bookmarks


def test_unusable_warehouse_is_reported_not_raised(sandbox: Sandbox, make_config) -> None:
    cfg = make_config(sandbox, WarehouseConfig(destination="postgres", dataset="x"))
    result = run_sync(cfg, clock=sandbox.account.clock.now)
    assert result.status == "failed" and result.failure_type == "config"
    assert result.error and "needs credentials" in result.error
    assert all(t.status == "failed" for t in result.tables.values())
    assert StateStore(cfg.state_url).all("cc") == []


def test_broken_progress_callback_does_not_break_the_sync(sandbox: Sandbox, duckdb_warehouse,
                                                          make_config) -> None:
    def broken(_event: object) -> None:
        raise RuntimeError("display gone")

    cfg = make_config(sandbox, duckdb_warehouse)
    result = run_sync(cfg, progress=broken, only_tables=["contact_lists"],
                      clock=sandbox.account.clock.now)
    assert result.status == "succeeded"
