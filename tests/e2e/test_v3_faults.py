"""v3 syncs survive what the API does wrong and stop cleanly where they must: 5xx storms,
dropped connections and broken bodies on /v3 paths, 429 ``throttled`` (back off) and
``quota_exceeded`` (stop until 00:00 UTC, resume the next day), an access token that expires
or is revoked mid-run (refreshed once through the TokenKeeper) and a refresh the
authorization server refuses (re-authorize, warehouse unchanged). Sections cited are of
constant-contact-v3-api.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from v3_helpers import fast_v3_client, make_v3_config
from v3_truth import V3_TABLES, assert_all_v3, read_warehouse

from ctctsync.api import ApiClient, RateLimiter
from ctctsync.api.v3.oauth import OAuthApp
from ctctsync.api.v3.tokens import MemoryVault, TokenKeeper, seed_tokens
from ctctsync.config import WarehouseConfig
from ctctsync.errors import FAILURES
from ctctsync.errors.taxonomy import ExitCode, exit_code
from ctctsync.sandbox import AccountSpec, Sandbox
from ctctsync.state import StateStore
from ctctsync.sync import ProgressEvent, run_sync
from ctctsync.warehouse import warehouse_tables

PAGED = AccountSpec(seed=11, contacts=1300, lists=4, campaigns=4, activities_per_campaign=30,
                    library_files=1, trash_files=1, events=2)
"""Contacts span three pages (500 per page), so page-level faults hit mid-table."""


CAMPAIGN_TABLES = ("email_campaigns", "contact_tracking", "email_campaign_summary",
                   "email_campaign_activities")


@pytest.mark.parametrize(
    ("fault", "tables"),
    [
        pytest.param("500:/v3/contacts*:n=3", ("contacts",), id="500-storm-on-contacts"),
        pytest.param("503:/v3/*:p=0.15", None, id="503-everywhere", marks=pytest.mark.slow),
        pytest.param("522:/v3/emails*:n=4", CAMPAIGN_TABLES, id="522-on-campaigns"),
        pytest.param("500:/v3/reports/*:n=5", CAMPAIGN_TABLES, id="500-on-reports"),
        pytest.param("drop:/v3/contacts*:n=2", ("contacts",), id="dropped-connections"),
        pytest.param("truncate:/v3/contacts*:n=2", ("contacts",), id="truncated-bodies"),
        pytest.param("malformed:/v3/events*:n=2", ("events", "event_registrations"),
                     id="html-instead-of-json"),
        pytest.param("malformed:/v3/reports/summary_reports/*:n=1",
                     ("email_campaign_summary",), id="html-on-summaries"),
        # records repeated across pages: merged by key, loaded once
        pytest.param("duplicate:/v3/contacts:k=7:n=2", ("contacts",), id="duplicated-records"),
    ],
)
def test_v3_faults_are_survived(sandbox_factory, duckdb_warehouse, make_config, fault: str,
                                tables: tuple[str, ...] | None) -> None:
    """Each fault against the tables that read the faulty paths (all of them for the
    storm everywhere): the run succeeds and the tables equal the truth."""
    sb = sandbox_factory(PAGED)
    rule = sb.faults.add_spec(fault)
    selection = {"tables": dict.fromkeys(tables)} if tables else {}
    cfg = make_v3_config(make_config, sb, duckdb_warehouse, **selection)
    with fast_v3_client(sb) as client:
        result = run_sync(cfg, client=client, clock=sb.account.clock.now)
    assert result.status == "succeeded", result.error
    assert rule.fired > 0, "the fault never fired: the test proves nothing"
    assert set(result.tables) == set(tables or V3_TABLES)
    assert_all_v3(sb, duckdb_warehouse, tables)


@pytest.mark.parametrize("pace", [pytest.param(None, id="no-pacing"),
                                  pytest.param(12.0, id="over-eager-pacing")])
def test_v3_throttled_answers_are_backed_off(sandbox_factory, duckdb_warehouse,
                                             make_config, pace: float | None) -> None:
    """The sandbox allows 4 requests/s (§1.5); the client does not pace at all, or paces
    at 12/s, so it is answered 429 ``throttled`` and must back off and retry."""
    sb = sandbox_factory(qps_limit=4)
    # contact_tracking alone makes ~30 calls in a burst (campaign list, details, reports)
    tables = ("contact_tracking", "email_campaign_summary")
    cfg = make_v3_config(make_config, sb, duckdb_warehouse, tables=dict.fromkeys(tables))
    limiter = RateLimiter(pace, None)
    with ApiClient(sb.base_url, sb.credentials.api_key, sb.credentials.v3_access_token,
                   limiter=limiter, send_api_key=False) as client:
        result = run_sync(cfg, client=client, clock=sb.account.clock.now)
    assert result.status == "succeeded", result.error
    assert limiter.slowdowns > 0, "the sandbox never throttled: the test proves nothing"
    endpoints = sb.counters.snapshot()["endpoints"].values()
    assert sum(row.get("429", 0) for row in endpoints) > 0
    assert_all_v3(sb, duckdb_warehouse, tables)


def _before_midnight(minutes: int) -> float:
    """The clock offset that puts the sandbox ``minutes`` before the next 00:00 UTC."""
    now = datetime.now(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - now).total_seconds() - minutes * 60


def test_v3_quota_exceeded_ends_partial_and_resumes_after_midnight(
        sandbox_factory, duckdb_warehouse, make_config) -> None:
    # contacts, email_campaigns, account_info, contact_lists: 1 call each (§1.5: 429
    # quota_exceeded once the client id's daily calls are spent)
    sb = sandbox_factory(daily_limit=4, clock_offset_seconds=_before_midnight(10))
    clock = sb.account.clock.now
    tables = ("contacts", "email_campaigns", "account_info", "contact_lists",
              "contact_tracking", "events", "contact_tags")
    cfg = make_v3_config(make_config, sb, duckdb_warehouse, tables=dict.fromkeys(tables))
    with fast_v3_client(sb, wall_clock=clock) as client:
        result = run_sync(cfg, client=client, clock=clock)
    assert result.status == "partial" == FAILURES["quota"].run_status
    assert result.failure_type == "quota"
    assert int(exit_code(result.status, result.failure_type)) == int(FAILURES["quota"].exit_code)
    started = result.started_at
    next_midnight = (started + timedelta(days=1)).replace(hour=0, minute=0, second=0,
                                                          microsecond=0)
    assert result.resume_at == next_midnight, (result.resume_at, started)
    assert result.error and "quota" in result.error.lower()
    done = ["contacts", "email_campaigns", "account_info", "contact_lists"]
    assert [n for n, t in result.tables.items() if t.status == "succeeded"] == done
    # the table the quota stopped: not a failure, the next run reads it (issue 12)
    assert result.tables["contact_tracking"].status == "stopped"
    assert all(t.status == "skipped" for n, t in result.tables.items()
               if n not in done and n != "contact_tracking")
    store = StateStore(cfg.state_url)
    assert store.get("cc", "contacts") is not None
    assert store.get("cc", "contact_tracking") is None
    assert set(warehouse_tables(duckdb_warehouse, "cc")) == {f"cc_{n}" for n in done}

    # the same day, the quota stays spent: nothing more is read
    with fast_v3_client(sb, wall_clock=clock) as client:
        same_day = run_sync(cfg, client=client, clock=clock)
    assert same_day.status == "partial" and same_day.resume_at == next_midnight
    assert same_day.rows == 0
    # past 00:00 UTC on the sandbox's clock the client id's day is a new one (§1.5)
    key = sb.credentials.api_key
    assert sb.limiter.used_today(key) == 4
    sb.advance((next_midnight - clock()).total_seconds() + 60)
    assert sb.limiter.used_today(key) == 0
    sb.limiter.configure(qps_limit=None, daily_limit=500)
    with fast_v3_client(sb) as client:
        resumed = run_sync(cfg, client=client, clock=clock)
    assert resumed.status == "succeeded", resumed.error
    assert resumed.tables["contacts"].mode == "incremental"
    assert resumed.tables["contact_tracking"].mode == "full"
    assert_all_v3(sb, duckdb_warehouse, tables)


# --- tokens -----------------------------------------------------------------------------------

TOKEN_ENDPOINT = "POST /oauth2/default/v1/token"


def _keeper(sb: Sandbox) -> tuple[TokenKeeper, str]:
    """A TokenKeeper over an in-memory vault holding a fresh grant with a refresh token
    (offline_access), on the sandbox's clock; and the grant's access token."""
    grant = sb.v3_tokens.issue_tokens(public=True)
    assert grant.refresh_token is not None
    clock = sb.account.clock.now
    vault = MemoryVault(seed_tokens(grant.refresh_token, grant.access_token, now=clock()))
    keeper = TokenKeeper(vault, OAuthApp(sb.authz_url, sb.credentials.api_key), now=clock,
                         pacer=None)
    return keeper, grant.access_token


def _at_first(table: str, phase: str, act: Callable[[], None]) -> Callable[[ProgressEvent], None]:
    """A progress callback that runs ``act`` once, at ``table``'s first ``phase`` event."""
    done: list[bool] = []

    def on(event: ProgressEvent) -> None:
        if not done and event.table == table and event.phase == phase:
            done.append(True)
            act()

    return on


@pytest.mark.parametrize("how", [pytest.param("expired", id="24h-passed"),
                                 pytest.param("revoked", id="access-token-revoked")])
def test_v3_token_expiry_mid_run_refreshes_once(sandbox: Sandbox, duckdb_warehouse,
                                                make_config, how: str) -> None:
    keeper, access = _keeper(sandbox)
    # every table (the default selection): the tables begun ahead of contact_tracking hold
    # the dead token too, each on its own client
    cfg = make_v3_config(make_config, sandbox, duckdb_warehouse,
                         source={"access_token": keeper.fresh_access_token()})
    assert keeper.refreshes == 0 and cfg.source.access_token.get_secret_value() == access

    def expire() -> None:
        if how == "expired":
            sandbox.advance(25 * 3600)  # v3 access tokens live 24 h (§1.2)
        else:
            assert sandbox.v3_tokens.revoke(access)

    progress = _at_first("contact_tracking", "start", expire)
    result = run_sync(cfg, progress=progress, clock=sandbox.account.clock.now,
                      renew_token=keeper.renew)
    assert result.status == "succeeded", result.error
    refused = sum(row.get("401", 0) for row in sandbox.counters.snapshot()["endpoints"].values())
    assert refused >= 1, "no request met the dead token: the test proves nothing"
    token_calls = sandbox.counters.count(TOKEN_ENDPOINT)
    assert token_calls == sandbox.counters.count(TOKEN_ENDPOINT, "200") == keeper.refreshes >= 1
    record = keeper.vault.load()
    assert record is not None and record.needs_reauth is None
    assert sandbox.v3_tokens.verify(record.tokens.access_token) is not None  # the live one
    assert_all_v3(sandbox, duckdb_warehouse)
    # the run's clients share one hook that is told which token was refused: one refresh
    assert keeper.refreshes == 1


def test_v3_refresh_refused_asks_to_reauthorize_and_keeps_the_warehouse(
        sandbox: Sandbox, duckdb_warehouse, make_config) -> None:
    keeper, access = _keeper(sandbox)
    tables = ("contacts", "contact_lists", "contact_tags")
    cfg = make_v3_config(make_config, sandbox, duckdb_warehouse, tables=dict.fromkeys(tables),
                         source={"access_token": access})
    clock = sandbox.account.clock.now
    assert run_sync(cfg, clock=clock, renew_token=keeper.renew).status == "succeeded"
    before = {n: read_warehouse(duckdb_warehouse, "cc", n) for n in tables}
    bookmarks = StateStore(cfg.state_url).all("cc")

    sandbox.account.update_contacts(5)
    record = keeper.vault.load()
    assert record is not None and record.tokens.refresh_token
    assert sandbox.v3_tokens.revoke(record.tokens.refresh_token)  # the grant is gone
    sandbox.advance(25 * 3600)  # and the access token expired
    result = run_sync(cfg, clock=clock, renew_token=keeper.renew)

    assert result.status == "failed"
    assert result.failure_type == "auth"
    assert int(exit_code(result.status, result.failure_type)) == int(FAILURES["auth"].exit_code)
    assert result.error and "re-authorize" in result.error.lower()
    assert access not in result.error and record.tokens.refresh_token not in result.error
    assert sandbox.counters.count(TOKEN_ENDPOINT, "400") == 1  # invalid_grant, not retried
    assert keeper.refreshes == 0
    after = keeper.vault.load()
    assert after is not None and after.needs_reauth
    assert result.tables["contacts"].status == "failed"
    assert all(t.status == "skipped" for n, t in result.tables.items() if n != "contacts")
    for name, rows in before.items():
        assert read_warehouse(duckdb_warehouse, "cc", name) == rows, name
    assert StateStore(cfg.state_url).all("cc") == bookmarks


# --- the command line -------------------------------------------------------------------------


def _cli_sync(sb: Sandbox, workdir: Path, token: str, refresh_token: str | None = None,
              ) -> tuple[int, dict[str, Any]]:
    """``ctctsync sync --json`` in a child process on a v3 config file (secrets from the
    environment, as a user runs it); returns the exit code and the JSON it printed."""
    config = workdir / "ctctsync.toml"
    config.write_text(
        f'integration = "cc"\nstate_url = "sqlite:///{workdir}/state.db"\n'
        f'[source]\napi_version = "v3"\nbase_url = "{sb.base_url}"\nqps_limit = 50\n'
        f'[warehouse]\ndestination = "duckdb"\npath = "{workdir}/wh.duckdb"\ndataset = "cc"\n'
        '[tables]\ncontacts = "*"\nemail_campaigns = "*"\naccount_info = "*"\n'
        'contact_lists = "*"\ncontact_tracking = "*"\n')
    env = {**os.environ, "CTCTSYNC_API_KEY": sb.credentials.api_key,
           "CTCTSYNC_ACCESS_TOKEN": token, "HOME": str(workdir)}
    for name in ("CTCTSYNC_REFRESH_TOKEN", "CTCTSYNC_CONFIG"):
        env.pop(name, None)
    if refresh_token is not None:
        env["CTCTSYNC_REFRESH_TOKEN"] = refresh_token
    proc = subprocess.run([sys.executable, "-m", "ctctsync", "sync", "-c", str(config),
                           "--json"], capture_output=True, text=True, env=env, cwd=workdir,
                          timeout=120, check=False)
    assert token not in proc.stdout + proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_v3_cli_exit_codes_for_quota_and_revoked_token(sandbox_factory, tmp_path: Path,
                                                       ) -> None:
    """As for v2 (errors.FAILURES): a spent quota exits 3 with ``partial`` and when to
    resume; a token Constant Contact refuses, with no refresh token, exits 4."""
    sb = sandbox_factory(daily_limit=4)
    code, out = _cli_sync(sb, tmp_path, sb.credentials.v3_access_token)
    assert code == ExitCode.STOPPED == FAILURES["quota"].exit_code, out
    assert out["status"] == "partial" and out["resume_at"]
    assert datetime.fromisoformat(out["resume_at"]).time() == datetime.min.time()
    assert out["tables"]["contacts"]["status"] == "succeeded"
    # stopped by the quota, not failed: its progress is kept and it resumes (as for v2)
    assert out["tables"]["contact_tracking"]["status"] == "stopped"

    sb.set_limits(qps_limit=None, daily_limit=None)
    token = sb.v3_tokens.issue_access_token()
    assert sb.v3_tokens.revoke(token)
    code, out = _cli_sync(sb, tmp_path, token)
    assert code == ExitCode.REAUTH == FAILURES["auth"].exit_code, out
    assert out["status"] == "failed" and "re-authorize" in out["error"].lower()


def test_v3_cli_renews_an_expired_token_with_the_refresh_token(sandbox_factory,
                                                                tmp_path: Path) -> None:
    """``CTCTSYNC_REFRESH_TOKEN`` given: a run whose access token Constant Contact refuses
    (expired on the sandbox's clock) renews it and succeeds; the CLI's state store keeps the
    rotated tokens, so the next run needs no token request."""
    sb = sandbox_factory()
    grant = sb.v3_tokens.issue_tokens(public=True)
    assert grant.refresh_token is not None
    sb.advance(25 * 3600)  # past the access token's 24 h (§1.2)
    code, out = _cli_sync(sb, tmp_path, grant.access_token, grant.refresh_token)
    assert code == ExitCode.OK, out
    refreshes = sb.counters.count(TOKEN_ENDPOINT, "200")
    assert refreshes >= 1
    assert_all_v3(sb, WarehouseConfig(destination="duckdb", path=tmp_path / "wh.duckdb",
                                      dataset="cc"),
                  ("contacts", "email_campaigns", "account_info", "contact_lists",
                   "contact_tracking"))
    sb.counters.reset()
    code, out = _cli_sync(sb, tmp_path, grant.access_token, grant.refresh_token)
    assert code == ExitCode.OK, out
    assert sb.counters.count(TOKEN_ENDPOINT) == 0  # the stored, rotated token is used
    assert refreshes == 1
