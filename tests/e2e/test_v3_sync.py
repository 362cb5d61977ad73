"""API v3 syncs end to end: a first run loads exactly the account's v3 truth into DuckDB and
PostgreSQL, a second run brings exactly the changes, deletions stay as soft deletes, and a
run killed with SIGKILL resumes to the truth without duplicates."""

from __future__ import annotations

import pytest
from v3_helpers import make_v3_config
from v3_truth import V3_TABLES, assert_all_v3

from ctctsync.errors import ConfigError
from ctctsync.sandbox import Sandbox
from ctctsync.sync import ProgressEvent, run_sync
from ctctsync.tables import SPEC_TABLES
from ctctsync.warehouse import warehouse_tables

V3_ONLY = ("contact_tags", "contact_custom_fields", "segments", "email_campaign_activities",
           "event_registrations")
"""The tables only v3 fills (beside the spec tables it can fill)."""


def test_first_v3_run_equals_truth(sandbox: Sandbox, warehouse, make_config) -> None:
    cfg = make_v3_config(make_config, sandbox, warehouse)
    events: list[ProgressEvent] = []
    result = run_sync(cfg, progress=events.append, clock=sandbox.account.clock.now)

    assert result.status == "succeeded", result.error
    assert set(result.tables) == set(V3_TABLES)
    assert set(V3_ONLY) <= set(V3_TABLES)
    assert set(V3_TABLES) - set(V3_ONLY) == set(SPEC_TABLES) - {"my_library_files",
                                                                 "trash_files"}
    counts = assert_all_v3(sandbox, warehouse)
    for name, n in counts.items():
        tr = result.tables[name]
        assert tr.status == "succeeded" and tr.mode == "full", name
        assert tr.rows == n, name
        assert n > 0, f"the sandbox account should have {name} rows"
    assert result.api_calls == sum(t.api_calls for t in result.tables.values()) > 0
    assert warehouse_tables(warehouse, "cc") == {f"cc_{n}": counts[n] for n in V3_TABLES}
    for name in V3_TABLES:
        phases = [e.phase for e in events if e.table == name]
        assert phases[0] == "start" and phases[-2:] == ["loaded", "done"], (name, phases)


@pytest.mark.parametrize("table", ["my_library_files", "trash_files"])
def test_library_tables_are_not_selectable_in_v3(sandbox: Sandbox, duckdb_warehouse,
                                                 make_config, table: str) -> None:
    with pytest.raises(ConfigError, match=rf"{table}: .*no MyLibrary endpoint"):
        from ctctsync.config import parse_config
        cfg = make_v3_config(make_config, sandbox, duckdb_warehouse)
        raw = cfg.model_dump(mode="json")
        raw["tables"] = {"contacts": None, table: None}
        parse_config(raw)
