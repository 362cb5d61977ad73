"""The Dagster example (docs/examples/dagster_constant_contact.py) as its users run it: the
definitions load, the hourly job materializes one asset per table with ctctsync's dlt
source, the tables equal the sandbox's truth, and a second run loads only the changes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import duckdb
import pytest
from sync_truth import assert_records_match_truth

from ctctsync.sandbox import Sandbox

dagster = pytest.importorskip("dagster")
pytest.importorskip("dagster_dlt")

# Dagster 1.13 itself still reads pydantic's deprecated ``__fields__`` (not our code)
pytestmark = pytest.mark.filterwarnings(
    "ignore:The `__fields__` attribute is deprecated:DeprecationWarning")

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "dagster_constant_contact.py"


def load_example() -> ModuleType:
    """Import the example file as Dagster's ``-f`` does (a fresh module each time)."""
    spec = importlib.util.spec_from_file_location("dagster_constant_contact", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.pop(spec.name, None)
    spec.loader.exec_module(module)
    return module


def rows(path: Path, table: str) -> list[dict[str, object]]:
    with duckdb.connect(str(path), read_only=True) as conn:
        cur = conn.execute(f"SELECT * FROM constant_contact.{table}")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def test_dagster_job_materializes_one_asset_per_table(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # what a user exports before `dagster dev`; the v2 path (the sandbox's legacy key)
    creds = sandbox.credentials
    env = {"API_KEY": creds.api_key, "ACCESS_TOKEN": creds.access_token, "API_VERSION": "v2",
           "BASE_URL": sandbox.base_url, "QPS_LIMIT": "100"}
    for name, value in env.items():
        monkeypatch.setenv(f"SOURCES__CONSTANT_CONTACT__{name}", value)
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))  # the pipeline's own folder
    monkeypatch.chdir(tmp_path)  # the example's DuckDB file lands in the working folder

    example = load_example()
    defs = example.defs
    job = defs.resolve_job_def("constant_contact_sync")
    keys = {key.to_user_string() for key in example.constant_contact_assets.keys}
    assert keys == {f"dlt_constant_contact_{t}" for t in example.TABLES}
    assert [s.cron_schedule for s in defs.schedules] == ["0 * * * *"]

    result = job.execute_in_process(instance=dagster.DagsterInstance.ephemeral())
    assert result.success
    materialized = {m.asset_key.to_user_string() for m in result.asset_materializations_for_node(
        "constant_contact")}
    assert materialized == keys
    warehouse = tmp_path / "warehouse.duckdb"
    for table in example.TABLES:
        ignore = ("end_date",) if table == "email_campaign_summary" else ()
        assert_records_match_truth(sandbox, table, rows(warehouse, table), ignore=ignore)

    # the next scheduled run: a fresh code load, bookmarks from the dlt pipeline's state
    sandbox.account.advance(60)
    changed = sandbox.account.update_contacts(4)
    sandbox.counters.reset()
    again = load_example().defs.resolve_job_def("constant_contact_sync")
    assert again.execute_in_process(instance=dagster.DagsterInstance.ephemeral()).success
    assert sandbox.counters.count("GET /v2/contacts") == 1
    assert_records_match_truth(sandbox, "contacts", rows(warehouse, "contacts"))
    assert len(changed) == 4
