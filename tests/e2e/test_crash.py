"""A sync killed with SIGKILL at any moment, then run again, ends with exactly the source's
rows: no gap (the bookmark never moves before its data is committed) and no duplicate (loads
merge by key, replaces are atomic)."""

from __future__ import annotations

import json

import pytest
from kill import run_and_kill
from sync_truth import assert_matches_truth

from ctctsync.sandbox import AccountSpec
from ctctsync.state import StateStore
from ctctsync.sync import run_sync
from ctctsync.tables import tables_for

V2_TABLES = tables_for("v2")
"""The tables of the v2 path (a config without api_version reads v2)."""

SPEC = AccountSpec(seed=5, contacts=2600, lists=4, campaigns=5, activities_per_campaign=120,
                   library_files=5, trash_files=2, events=2)
"""Contacts span six pages, tracking several: a kill lands mid-table."""


def _config_json(cfg, sb) -> str:
    raw = cfg.model_dump(mode="json")
    raw["source"]["api_key"] = sb.credentials.api_key  # dumped masked
    raw["source"]["access_token"] = sb.credentials.access_token
    raw["warehouse"]["credentials"] = (
        cfg.warehouse.credentials.get_secret_value() if cfg.warehouse.credentials else None
    )
    return json.dumps(raw)


@pytest.mark.parametrize(
    ("table", "phase"),
    [
        pytest.param("contacts", "page", id="mid-contacts-extract"),
        pytest.param("contacts", "loaded", id="after-commit-before-bookmark"),
        pytest.param("contact_tracking", "page", id="mid-tracking", marks=pytest.mark.slow),
    ],
)
def test_sigkill_then_rerun_equals_truth(sandbox_factory, any_warehouse, make_config,
                                         table: str, phase: str) -> None:
    warehouse = any_warehouse
    sb = sandbox_factory(SPEC)
    cfg = make_config(sb, warehouse)
    # a first complete run, then changes, so the killed run is an incremental one
    assert run_sync(cfg).status == "succeeded"
    sb.account.update_contacts(40)
    sb.account.add_contacts(700)
    sb.account.send_campaign(activities=300)

    lines = run_and_kill(_config_json(cfg, sb), table, phase)
    assert not any(line.startswith("END") for line in lines)

    again = run_sync(cfg)
    assert again.status == "succeeded", again.error
    for name in V2_TABLES:
        ignore = ("end_date",) if name == "email_campaign_summary" else ()
        assert_matches_truth(sb, warehouse, name, ignore=ignore)
    assert StateStore(cfg.state_url).get("cc", "contacts") is not None


def test_sigkill_during_first_run(sandbox_factory, duckdb_warehouse, make_config) -> None:
    sb = sandbox_factory(SPEC)
    cfg = make_config(sb, duckdb_warehouse)
    run_and_kill(_config_json(cfg, sb), "contacts", "page")
    assert StateStore(cfg.state_url).get("cc", "contacts") is None
    again = run_sync(cfg)
    assert again.status == "succeeded", again.error
    assert again.tables["contacts"].mode == "full"
    assert_matches_truth(sb, duckdb_warehouse, "contacts")
