"""Switching a v2 integration to v3 keeps its warehouse continuous (docs/switching-to-v3.md):
a v2 sync, ``switch_to_v3``, then v3 syncs, over the sandbox into DuckDB and PostgreSQL.

After the switch every contact, list and campaign row v2 loaded has its v3 UUID as ``id`` and
its v2 id in ``v2_id``, no row is lost or doubled, the switched tables equal the sandbox's v3
truth, the library tables are as v2 left them, and the next sync reads only the changes. The
cross-reference calls are one per batch (500 contacts, 500 lists, 50 campaigns). A switch
that fails half-way leaves each table wholly v2 or wholly v3 and completes when run again.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest
from v3_helpers import make_v3_config
from v3_truth import V3Truth, assert_v3_matches

from ctctsync.config import SyncConfig, WarehouseConfig
from ctctsync.sandbox import AccountSpec, Sandbox
from ctctsync.sandbox.v3.ids import V3Ids
from ctctsync.state import StateStore
from ctctsync.sync import run_sync
from ctctsync.sync.engine import make_client
from ctctsync.sync.switch import (
    SWITCH_MARKER,
    SwitchError,
    SwitchReport,
    map_v2_ids,
    pending_tables,
    switch_to_v3,
)
from ctctsync.tables import SPEC_TABLES, warehouse_table_name
from ctctsync.warehouse.switch import restore_v2_ids

SPEC = AccountSpec(seed=11, contacts=200, lists=4, campaigns=6, activities_per_campaign=30,
                   library_files=3, trash_files=2, events=2)
"""Small: 200 contacts, every table filled."""

REMAPPED = {"contacts": "contact", "contact_lists": "list", "email_campaigns": "campaign"}
"""The tables mapped id by id, and the V3Ids method naming their UUIDs."""
XREF_ENDPOINTS = {
    "contacts": ("GET /v3/contacts/contact_id_xrefs", 500),
    "contact_lists": ("GET /v3/contact_lists/list_id_xrefs", 500),
    "email_campaigns": ("GET /v3/emails/campaign_id_xrefs", 50),
}
SWITCHED = (*REMAPPED, "contact_tracking", "email_campaign_summary")
LIBRARY = ("my_library_files", "trash_files")


def _v2_sync(sb: Sandbox, wcfg: WarehouseConfig, make_config: Any,
             tables: tuple[str, ...] = SPEC_TABLES) -> SyncConfig:
    cfg: SyncConfig = make_config(sb, wcfg, tables=dict.fromkeys(tables))
    result = run_sync(cfg, clock=sb.account.clock.now)
    assert result.status == "succeeded", result.error
    assert set(result.tables) == set(tables)
    return cfg


def _v3_config(sb: Sandbox, wcfg: WarehouseConfig, make_config: Any,
               v2cfg: SyncConfig, **overrides: Any) -> SyncConfig:
    # same integration, warehouse and state store: the integration switched, not a new one
    return make_v3_config(make_config, sb, wcfg, state_url=v2cfg.state_url, **overrides)


def _by_key(rows: list[dict[str, Any]], key: str = "id") -> dict[Any, dict[str, Any]]:
    out: dict[Any, dict[str, Any]] = {}
    for row in rows:
        assert row[key] not in out, f"{row[key]} twice"
        out[row[key]] = row
    return out


def _rows(wcfg: WarehouseConfig, integration: str, table: str) -> list[dict[str, Any]]:
    """Every row of a warehouse table as the driver returns it, whatever its shape (v2 or
    v3: ``read_table`` types the columns by one version's registry view)."""
    name = warehouse_table_name(integration, table)
    if wcfg.destination == "duckdb":
        with duckdb.connect(str(wcfg.path), read_only=True) as con:
            con.execute("SET TimeZone = 'UTC'")
            cur = con.execute(f'SELECT * FROM "{wcfg.dataset}"."{name}"')
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    assert wcfg.credentials is not None
    with psycopg.connect(wcfg.credentials.get_secret_value()) as conn:
        cur2 = conn.execute(f'SELECT * FROM "{wcfg.dataset}"."{name}"')
        names = [d.name for d in cur2.description or ()]
        return [dict(zip(names, r, strict=True)) for r in cur2.fetchall()]


UNKNOWN_V2_ID = 987654321
"""A contact id CC's cross-reference does not know (a row v2 loaded of a contact purged since)."""


def _execute(wcfg: WarehouseConfig, *statements: str) -> None:
    """Run SQL on the warehouse behind the sync's back (to set up a case)."""
    if wcfg.destination == "duckdb":
        with duckdb.connect(str(wcfg.path)) as con:
            for sql in statements:
                con.execute(sql)
        return
    assert wcfg.credentials is not None
    with psycopg.connect(wcfg.credentials.get_secret_value(), autocommit=True) as conn:
        for sql in statements:
            conn.execute(sql)


def _add_unknown_contact(wcfg: WarehouseConfig) -> None:
    table = f'"{wcfg.dataset}"."cc_contacts"'
    _execute(wcfg, f"CREATE TEMP TABLE one AS SELECT * FROM {table} LIMIT 1",
             f"UPDATE one SET id = {UNKNOWN_V2_ID}", f"INSERT INTO {table} SELECT * FROM one")


def _assert_remapped(sb: Sandbox, wcfg: WarehouseConfig, v2_ids: dict[str, set[int]]) -> None:
    """Every row v2 loaded is there once, under its UUID, with its v2 id in ``v2_id``."""
    ids = V3Ids(sb.account.seed)
    for table, kind in REMAPPED.items():
        rows = _by_key(_rows(wcfg, "cc", table))
        with_v2 = {r["v2_id"]: r["id"] for r in rows.values() if r["v2_id"] is not None}
        assert set(with_v2) == v2_ids[table], table
        for v2, v3 in with_v2.items():
            assert v3 == getattr(ids, kind)(v2), (table, v2)


def _assert_xref_calls(sb: Sandbox, v2_ids: dict[str, set[int]], report: SwitchReport,
                       tables: tuple[str, ...] = tuple(REMAPPED)) -> int:
    total = 0
    for table in REMAPPED:
        endpoint, batch = XREF_ENDPOINTS[table]
        want = math.ceil(len(v2_ids[table]) / batch) if table in tables else 0
        assert sb.counters.count(endpoint) == want, endpoint
        assert report.xref_calls.get(endpoint, 0) == want, endpoint
        total += want
    return total


def test_switch_then_v3_sync_keeps_the_warehouse_continuous(
    sandbox_factory: Any, warehouse: WarehouseConfig, make_config: Any
) -> None:
    sb = sandbox_factory(SPEC)
    clock = sb.account.clock.now
    v2cfg = _v2_sync(sb, warehouse, make_config)
    v2_rows = {t: _rows(warehouse, "cc", t) for t in (*REMAPPED, *LIBRARY)}
    v2_ids = {t: {r["id"] for r in v2_rows[t]} for t in REMAPPED}
    assert len(v2_ids["contacts"]) >= 200

    v3cfg = _v3_config(sb, warehouse, make_config, v2cfg)
    assert pending_tables(v3cfg) == ["contact_lists", "contacts", "email_campaigns",
                                     "contact_tracking", "email_campaign_summary"]
    sb.counters.reset()
    report = switch_to_v3(v3cfg, clock=clock)
    assert pending_tables(v3cfg) == []

    assert report.done
    xrefs = _assert_xref_calls(sb, v2_ids, report)
    assert xrefs == 3  # 200 contacts, 4 lists, 6 campaigns: one call each
    assert report.api_calls == sb.counters.snapshot()["total"]
    for t in REMAPPED:
        assert report.tables[t].action == "remapped", t
        assert report.tables[t].unmapped == 0, t
        # nothing lost; v3 may list more (deleted campaigns, which v2 leaves out: §3.6)
        assert report.tables[t].rows_after >= report.tables[t].rows_before, t
    for t in ("contact_tracking", "email_campaign_summary"):
        assert report.tables[t].action == "re-read", t
    for t in LIBRARY:
        assert report.tables[t].action == "kept", t
        assert _rows(warehouse, "cc", t) == v2_rows[t], t  # untouched
    _assert_remapped(sb, warehouse, v2_ids)
    truth = V3Truth(sb)
    for t in SWITCHED:
        assert_v3_matches(truth, warehouse, t, ignore=("v2_id",))
    store = StateStore(v3cfg.state_url)
    marker = store.get("cc", SWITCH_MARKER)
    assert marker is not None and marker.run_id == report.switch_id

    # the next v3 sync reads only what changed since the switch
    acct = sb.account
    acct.advance(60)
    changed = set(acct.update_contacts(5)) | set(acct.add_contacts(3))
    sb.counters.reset()
    result = run_sync(v3cfg, clock=clock)
    assert result.status == "succeeded", result.error
    for t in ("contacts", "email_campaigns", "contact_tracking"):
        assert result.tables[t].mode == "incremental", t
    assert result.tables["contacts"].rows == len(changed)
    assert sb.counters.count("GET /v3/contacts") == 1
    assert sum(sb.counters.count(e) for e, _ in XREF_ENDPOINTS.values()) == 0
    # a v3 load writes rows without their v2 id; the map puts it back (requests-H9.md:
    # the engine is to call this after a v3 run's loads)
    restore_v2_ids(warehouse, "cc", tuple(REMAPPED))
    _assert_remapped(sb, warehouse, v2_ids)
    new = [r for r in _rows(warehouse, "cc", "contacts") if r["v2_id"] is None]
    assert len(new) == 3
    truth = V3Truth(sb)
    for t in SWITCHED:
        assert_v3_matches(truth, warehouse, t, ignore=("v2_id",))
    for t in LIBRARY:
        assert _rows(warehouse, "cc", t) == v2_rows[t], t


class SimulatedCrashError(Exception):
    pass


def _crash_after(first: str) -> Any:
    def on_table(name: str) -> None:
        if name == first:
            raise SimulatedCrashError(name)
    return on_table


def test_a_switch_that_fails_half_way_completes_when_run_again(
    sandbox_factory: Any, warehouse: WarehouseConfig, make_config: Any
) -> None:
    sb = sandbox_factory(SPEC)
    clock = sb.account.clock.now
    # the tables mapped id by id (the first test covers the others)
    tables = tuple(REMAPPED)
    v2cfg = _v2_sync(sb, warehouse, make_config, tables)
    v2_ids = {t: {r["id"] for r in _rows(warehouse, "cc", t)} for t in REMAPPED}
    _add_unknown_contact(warehouse)
    v3cfg = _v3_config(sb, warehouse, make_config, v2cfg, tables=dict.fromkeys(tables))

    with pytest.raises(SimulatedCrashError):
        switch_to_v3(v3cfg, clock=clock, on_table=_crash_after("contact_lists"))

    for t in tables:
        kinds = {type(r["id"]) for r in _rows(warehouse, "cc", t)}
        # wholly v3 (UUID text) or wholly v2 (numbers), never a mix
        assert kinds == ({str} if t == "contact_lists" else {int}), (t, kinds)
    assert StateStore(v3cfg.state_url).get("cc", SWITCH_MARKER) is None

    sb.counters.reset()
    report = switch_to_v3(v3cfg, clock=clock)
    assert report.done
    assert report.tables["contact_lists"].action == "already v3"
    assert report.tables["contacts"].action == "remapped"
    _assert_xref_calls(sb, v2_ids, report, ("contacts", "email_campaigns"))
    # the row CC does not know is kept, under a recognisable id, and reported
    assert report.tables["contacts"].unmapped == 1
    assert report.tables["contacts"].kept_v2_rows == 1
    kept = [r for r in _rows(warehouse, "cc", "contacts")
            if r["v2_id"] == UNKNOWN_V2_ID]
    assert [r["id"] for r in kept] == [f"v2:{UNKNOWN_V2_ID}"]
    assert kept[0]["email_addresses"] is not None  # its values kept where both shapes agree
    _execute(warehouse, f"DELETE FROM \"{warehouse.dataset}\".\"cc_contacts\" "
             f"WHERE v2_id = {UNKNOWN_V2_ID}")
    _assert_remapped(sb, warehouse, v2_ids)
    truth = V3Truth(sb)
    for t in tables:
        assert_v3_matches(truth, warehouse, t, ignore=("v2_id",))
    again = run_sync(v3cfg, clock=clock, only_tables=["contacts"])
    assert again.status == "succeeded", again.error
    assert again.tables["contacts"].mode == "incremental"
    assert again.tables["contacts"].rows == 0


def _cli(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("CTCTSYNC_")}
    full.update(env, COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "ctctsync", *args], check=False, cwd=cwd,
                          env=full, capture_output=True, text=True, timeout=240)


def test_switch_api_command(sandbox_factory: Any, tmp_path: Path) -> None:
    """``ctctsync switch-api v3 -c <config>`` run as a user runs it: refused while the config
    still says v2, then the switch, then a v3 sync that reads only changes."""
    sb = sandbox_factory(SPEC)
    cfg = tmp_path / "ctctsync.toml"
    body = f"""integration = "cc"
history_start = 2001-01-01
state_url = "sqlite:///{tmp_path / 'state.db'}"
[source]
base_url = "{sb.base_url}"
{{version}}
[warehouse]
destination = "duckdb"
path = "{tmp_path / 'wh.duckdb'}"
dataset = "cc"
[tables]
contacts = "*"
contact_lists = "*"
"""
    cfg.write_text(body.format(version=""), encoding="utf-8")
    env = {"CTCTSYNC_API_KEY": sb.credentials.api_key,
           "CTCTSYNC_ACCESS_TOKEN": sb.credentials.access_token}
    assert _cli(["sync", "-c", str(cfg)], tmp_path, env).returncode == 0
    refused = _cli(["switch-api", "v3", "-c", str(cfg)], tmp_path, env)
    assert refused.returncode == 2 and "api_version" in refused.stderr

    cfg.write_text(body.format(version='api_version = "v3"'), encoding="utf-8")
    env["CTCTSYNC_ACCESS_TOKEN"] = sb.credentials.v3_access_token
    done = _cli(["switch-api", "v3", "-c", str(cfg), "--json"], tmp_path, env)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["done"] is True
    assert out["xref_calls"] == {"GET /v3/contacts/contact_id_xrefs": 1,
                                 "GET /v3/contact_lists/list_id_xrefs": 1}
    assert out["tables"]["contacts"]["action"] == "remapped"
    assert out["tables"]["contacts"]["mapped"] == out["tables"]["contacts"]["rows_before"]
    synced = _cli(["sync", "-c", str(cfg), "--json"], tmp_path, env)
    assert synced.returncode == 0, synced.stderr
    assert json.loads(synced.stdout)["tables"]["contacts"]["rows"] == 0


def test_xrefs_are_asked_in_batches_of_the_most_a_call_accepts(
    sandbox: Sandbox, duckdb_warehouse: WarehouseConfig, make_config: Any
) -> None:
    """1,201 contact ids: 3 calls of at most 500 (§3.1); 101 campaign ids: 3 calls of at most
    50 (§3.6); ids CC does not know are left out of the map, the others map to their UUID."""
    cfg = make_v3_config(make_config, sandbox, duckdb_warehouse)
    acc = sandbox.account
    ids = V3Ids(acc.seed)
    contact_ids = list(range(1, 1202))
    campaign_ids = sorted(acc.campaigns)
    campaign_ids += list(range(campaign_ids[-1] + 1, campaign_ids[-1] + 102 - len(campaign_ids)))
    assert len(campaign_ids) == 101
    sandbox.counters.reset()
    with make_client(cfg.source) as client:
        contacts = map_v2_ids(client, "contacts", contact_ids)
        campaigns = map_v2_ids(client, "email_campaigns", campaign_ids)
    assert sandbox.counters.count("GET /v3/contacts/contact_id_xrefs") == 3
    assert sandbox.counters.count("GET /v3/emails/campaign_id_xrefs") == 3
    assert contacts == {n: ids.contact(n) for n in contact_ids if acc.contact_exists(n)}
    assert len(contacts) == acc.contact_count
    assert campaigns == {n: ids.campaign(n) for n in acc.campaigns}


def test_a_v3_run_before_the_switch_changes_no_v2_table(
    sandbox: Sandbox, warehouse: WarehouseConfig, make_config: Any
) -> None:
    """Forgetting the switch costs nothing: the v3 run fails the tables whose ids changed
    and leaves them as v2 loaded them; the switch afterwards works as usual."""
    clock = sandbox.account.clock.now
    tables = tuple(REMAPPED)
    v2cfg = _v2_sync(sandbox, warehouse, make_config, tables)
    before = {t: _rows(warehouse, "cc", t) for t in tables}
    v3cfg = _v3_config(sandbox, warehouse, make_config, v2cfg,
                       tables=dict.fromkeys(tables))
    result = run_sync(v3cfg, clock=clock)
    assert result.status == "failed"
    for t in tables:
        assert result.tables[t].status == "failed", t
        # dlt may have added the v3 columns (empty) before the load failed; rows unchanged
        after = _rows(warehouse, "cc", t)
        assert [{k: r[k] for k in before[t][0]} for r in after] == before[t], t
    assert pending_tables(v3cfg) == ["contact_lists", "contacts", "email_campaigns"]

    report = switch_to_v3(v3cfg, clock=clock)
    assert report.done
    _assert_remapped(sandbox, warehouse, {t: {r["id"] for r in before[t]}
                                                 for t in tables})
    # the failed run recorded its v3 schemas with dlt: the next loads must still work
    sandbox.account.advance(60)
    changed = set(sandbox.account.update_contacts(2))
    after = run_sync(v3cfg, clock=clock)
    assert after.status == "succeeded", after.error
    assert after.tables["contacts"].rows == len(changed)
    truth = V3Truth(sandbox)
    for t in tables:
        assert_v3_matches(truth, warehouse, t, ignore=("v2_id",))


def test_a_failed_v3_read_switches_no_table(
    sandbox_factory: Any, duckdb_warehouse: WarehouseConfig, make_config: Any
) -> None:
    """The v3 read of one table fails: no table is switched, the side tables are dropped, and
    the switch run again (the fault gone) completes."""
    sb = sandbox_factory(SPEC)
    clock = sb.account.clock.now
    tables = tuple(REMAPPED)
    v2cfg = _v2_sync(sb, duckdb_warehouse, make_config, tables)
    before = {t: _rows(duckdb_warehouse, "cc", t) for t in tables}
    v3cfg = _v3_config(sb, duckdb_warehouse, make_config, v2cfg, tables=dict.fromkeys(tables))
    fault = sb.faults.add("404", "/v3/emails")
    with pytest.raises(SwitchError, match="the v3 read failed"):
        switch_to_v3(v3cfg, clock=clock)
    for t in tables:
        assert _rows(duckdb_warehouse, "cc", t) == before[t], t
    with duckdb.connect(str(duckdb_warehouse.path), read_only=True) as con:
        names = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables").fetchall()]
    assert not [n for n in names if n.startswith("v3switch_")], names

    sb.faults.remove(fault.id)
    assert switch_to_v3(v3cfg, clock=clock).done
    _assert_remapped(sb, duckdb_warehouse, {t: {r["id"] for r in before[t]} for t in tables})
