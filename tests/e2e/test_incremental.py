"""Key-based tables: a second run reads only what changed, merges it, and moves nothing
when nothing changed; selections of tables and columns are honoured and can grow."""

from __future__ import annotations

from datetime import timedelta

from sync_truth import assert_matches_truth

from ctctsync.sandbox import Sandbox
from ctctsync.state import StateStore
from ctctsync.sync import run_sync
from ctctsync.tables import LOADED_AT, RUN_ID, tables_for
from ctctsync.warehouse import read_table, warehouse_tables

V2_TABLES = tables_for("v2")
"""The tables of the v2 path (a config without api_version reads v2)."""

INCREMENTAL = [n for n, t in V2_TABLES.items()
               if t.replication == "incremental" and not t.read_whole]


def _check_all(sb: Sandbox, wcfg) -> None:
    for name in V2_TABLES:
        ignore = ("end_date",) if name == "email_campaign_summary" else ()
        assert_matches_truth(sb, wcfg, name, ignore=ignore)


def test_incremental_run_brings_exactly_the_changes(sandbox: Sandbox, warehouse,
                                                    make_config) -> None:
    # every campaign checked on every run: the sandbox's seeded campaigns are years old, and
    # the default tiers check those weekly (tests/e2e/test_budget_v2.py proves the tiers)
    cfg = make_config(sandbox, warehouse, tracking={"tiers": [[0, 0]]})
    clock = sandbox.account.clock.now
    first = run_sync(cfg, clock=clock)
    assert first.status == "succeeded", first.error

    acct = sandbox.account
    acct.advance(60)
    changed = set(acct.update_contacts(7))
    changed |= set(acct.add_contacts(3))
    acct.set_contact_status(5, "OPTOUT")
    changed.add(5)
    acct.add_list("New list")
    acct.modify_list(1)
    new_campaign = acct.send_campaign(activities=12)
    sent = [c.id for c in acct.campaigns.values() if c.status == "SENT" and c.id != new_campaign]
    acct.send_campaign(sent[0], activities=5)
    acct.trash_files(2)
    sandbox.counters.reset()

    second = run_sync(cfg, clock=clock)
    assert second.status == "succeeded", second.error
    contacts = second.tables["contacts"]
    assert contacts.mode == "incremental"
    assert first.tables["contacts"].since is not None and contacts.since is not None
    assert contacts.since > first.tables["contacts"].since
    # only the changed contacts were requested: modified_since filtered at the source
    assert contacts.rows == len(changed)
    assert sandbox.counters.count("GET /v2/contacts") == contacts.api_calls == 1
    # lists are read whole each run: contact_count moves without modified_date (tables.md)
    assert second.tables["contact_lists"].rows == len(sandbox.truth("contact_lists"))
    assert second.tables["email_campaigns"].rows >= 1
    assert 0 < second.tables["contact_tracking"].rows < first.tables["contact_tracking"].rows
    for name in INCREMENTAL:
        assert second.tables[name].mode == "incremental", name
    _check_all(sandbox, warehouse)


def test_second_run_without_changes_moves_nothing(sandbox: Sandbox, duckdb_warehouse,
                                                  make_config) -> None:
    cfg = make_config(sandbox, duckdb_warehouse)
    clock = sandbox.account.clock.now
    assert run_sync(cfg, clock=clock).status == "succeeded"
    before = read_table(duckdb_warehouse, "cc", "contacts")
    again = run_sync(cfg, clock=clock)
    assert again.status == "succeeded"
    for name in INCREMENTAL:
        assert again.tables[name].rows == 0, name
    assert again.tables["contacts"].api_calls == 1  # one empty page
    after = read_table(duckdb_warehouse, "cc", "contacts")
    assert after.equals(before)  # not even re-stamped: nothing was merged


def test_lookback_rereads_recent_changes_and_merge_absorbs_them(
        sandbox: Sandbox, duckdb_warehouse, make_config) -> None:
    cfg = make_config(sandbox, duckdb_warehouse, lookback=timedelta(minutes=10))
    clock = sandbox.account.clock.now
    run_sync(cfg, clock=clock)
    changed = sandbox.account.update_contacts(4)
    assert run_sync(cfg, clock=clock).tables["contacts"].rows == 4
    # the same 4 changes are inside the next run's look-back: re-read, merged, no duplicate
    third = run_sync(cfg, clock=clock)
    assert third.tables["contacts"].rows == len(changed)
    assert_matches_truth(sandbox, duckdb_warehouse, "contacts")
    zero = make_config(sandbox, duckdb_warehouse, lookback=timedelta(0),
                       state_url=cfg.state_url)
    assert run_sync(zero, clock=clock).tables["contacts"].rows == 0


def test_table_and_column_selection(sandbox: Sandbox, warehouse, make_config) -> None:
    clock = sandbox.account.clock.now
    cfg = make_config(sandbox, warehouse,
                      tables={"contacts": ["first_name"], "contact_lists": None})
    result = run_sync(cfg, clock=clock)
    assert result.status == "succeeded" and set(result.tables) == {"contacts", "contact_lists"}
    assert set(warehouse_tables(warehouse, "cc")) == {"cc_contacts", "cc_contact_lists"}
    loaded = read_table(warehouse, "cc", "contacts")
    # the key and the cursor are always kept
    assert set(loaded.column_names) == {"id", "modified_date", "first_name", LOADED_AT, RUN_ID}
    assert_matches_truth(sandbox, warehouse, "contacts",
                         columns=("id", "modified_date", "first_name"))

    # a newly selected column on a key-based table: the table is re-read whole (backfill)
    grown = make_config(sandbox, warehouse, state_url=cfg.state_url,
                        tables={"contacts": ["first_name", "last_name"], "contact_lists": None,
                                "events": None})
    sandbox.account.update_contacts(3)
    second = run_sync(grown, clock=clock)
    assert second.status == "succeeded"
    assert second.tables["contacts"].mode == "full"
    assert second.tables["contacts"].rows == len(sandbox.truth("contacts"))
    assert second.tables["contacts"].since is not None
    assert second.tables["events"].rows == len(sandbox.truth("events"))  # a table added later
    assert_matches_truth(sandbox, warehouse, "contacts",
                         columns=("id", "modified_date", "first_name", "last_name"))
    assert_matches_truth(sandbox, warehouse, "events")


def test_full_refresh_of_one_table(sandbox: Sandbox, duckdb_warehouse, make_config) -> None:
    clock = sandbox.account.clock.now
    cfg = make_config(sandbox, duckdb_warehouse)
    tables = ["contacts", "email_campaigns"]
    run_sync(cfg, clock=clock, only_tables=tables)
    store = StateStore(cfg.state_url)
    before = store.get("cc", "contacts")
    result = run_sync(cfg, clock=clock, only_tables=tables, full_refresh=["email_campaigns"])
    assert result.tables["email_campaigns"].mode == "full"
    assert result.tables["email_campaigns"].rows == len(sandbox.truth("email_campaigns"))
    assert result.tables["contacts"].mode == "incremental"
    assert result.tables["contacts"].rows == 0
    after = store.get("cc", "contacts")
    assert before is not None and after is not None
    assert after.last_run_date > before.last_run_date
    assert_matches_truth(sandbox, duckdb_warehouse, "email_campaigns")
