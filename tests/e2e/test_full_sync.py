"""A first sync of a sandbox account loads exactly the account's truth, table by table."""

from __future__ import annotations

import pytest
from sync_truth import assert_matches_truth

from ctctsync.errors import ConfigError
from ctctsync.sandbox import Sandbox
from ctctsync.sync import ProgressEvent, run_sync
from ctctsync.tables import tables_for
from ctctsync.warehouse import read_table, warehouse_tables

V2_TABLES = tables_for("v2")
"""The tables of the v2 path (a config without api_version reads v2)."""


def test_full_sync_equals_truth(sandbox: Sandbox, warehouse, make_config) -> None:
    cfg = make_config(sandbox, warehouse)
    events: list[ProgressEvent] = []
    result = run_sync(cfg, progress=events.append, clock=sandbox.account.clock.now)

    assert result.status == "succeeded", result.error
    assert result.error is None and result.failure_type is None
    assert set(result.tables) == set(V2_TABLES)
    for name in V2_TABLES:
        tr = result.tables[name]
        assert tr.status == "succeeded"
        assert tr.mode == "full"
        ignore = ("end_date",) if name == "email_campaign_summary" else ()
        n = assert_matches_truth(sandbox, warehouse, name, ignore=ignore)
        assert tr.rows == n, name
        assert n > 0, f"the sandbox account should have {name} rows"
    assert result.api_calls == sum(t.api_calls for t in result.tables.values()) > 0
    counts = warehouse_tables(warehouse, "cc")
    assert counts == {f"cc_{n}": result.tables[n].rows for n in V2_TABLES}
    # every table reports start, at least one page, loaded and done, in that order
    for name in V2_TABLES:
        phases = [e.phase for e in events if e.table == name]
        assert phases[0] == "start" and phases[-2:] == ["loaded", "done"], (name, phases)
        assert "page" in phases


def test_run_metadata_columns(sandbox: Sandbox, duckdb_warehouse, make_config) -> None:
    cfg = make_config(sandbox, duckdb_warehouse)
    result = run_sync(cfg, run_id="run-abc", only_tables=["contact_lists"],
                      clock=sandbox.account.clock.now)
    assert result.status == "succeeded"
    rows = read_table(duckdb_warehouse, "cc", "contact_lists").to_pylist()
    assert {r["_ctctsync_run_id"] for r in rows} == {"run-abc"}
    assert all(r["_ctctsync_loaded_at"] is not None for r in rows)
    assert result.started_at <= min(r["_ctctsync_loaded_at"] for r in rows)


@pytest.mark.parametrize("bad", [pytest.param(["nope"], id="unknown-table")])
def test_unknown_table_is_a_config_error(sandbox: Sandbox, duckdb_warehouse, make_config,
                                         bad: list[str]) -> None:
    cfg = make_config(sandbox, duckdb_warehouse)
    with pytest.raises(ConfigError, match="nope"):
        run_sync(cfg, only_tables=bad)
