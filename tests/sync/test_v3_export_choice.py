"""A v3 run picks the bulk contact export for a first load when it costs fewer calls than
paging and the selected columns are all ones the export fills (api/v3/export.py); with
every column selected it pages. Counted in calls, which no machine changes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ctctsync.api.v3.export import EXPORT_COLUMNS, EXPORT_THRESHOLD
from ctctsync.config import SyncConfig, WarehouseConfig
from ctctsync.sandbox import AccountSpec, Sandbox
from ctctsync.sync import run_sync
from ctctsync.tables import TABLES
from ctctsync.warehouse.admin import read_table

EXPORT_POST = "POST /v3/activities/contact_exports"


def _config(sb: Sandbox, tmp_path: Path, columns: list[str] | None) -> SyncConfig:
    return SyncConfig.model_validate({
        "integration": "cc",
        "source": {"api_version": "v3", "base_url": sb.base_url,
                   "api_key": sb.credentials.api_key,
                   "access_token": sb.credentials.v3_access_token,
                   "qps_limit": None, "daily_limit": None},
        "warehouse": WarehouseConfig(destination="duckdb", path=tmp_path / "wh.duckdb",
                                     dataset="cc_data").model_dump(),
        "state_url": f"sqlite:///{tmp_path / 'state.db'}",
        "tables": {"contacts": columns},
    })


@pytest.fixture(scope="module")
def big_sandbox() -> Iterator[Sandbox]:
    spec = AccountSpec(seed=77, contacts=EXPORT_THRESHOLD + 400, campaigns=2,
                       activities_per_campaign=5)
    with Sandbox(spec, qps_limit=None, daily_limit=None) as sb:
        yield sb


def test_first_load_of_export_columns_takes_the_export(big_sandbox: Sandbox,
                                                       tmp_path: Path) -> None:
    sb = big_sandbox
    columns = sorted(c for c in EXPORT_COLUMNS if c in TABLES["contacts"].column_names)
    sb.counters.reset()
    result = run_sync(_config(sb, tmp_path, columns))
    assert result.status == "succeeded", result.error
    assert sb.counters.count(EXPORT_POST) == 1
    pages = -(-(EXPORT_THRESHOLD + 400) // 500)
    assert result.tables["contacts"].api_calls < pages  # cheaper than paging
    rows = read_table(WarehouseConfig(destination="duckdb", path=tmp_path / "wh.duckdb",
                                      dataset="cc_data"), "cc", "contacts",
                      api_version="v3")
    assert rows.num_rows == EXPORT_THRESHOLD + 400  # deleted contacts included


def test_every_column_pages(big_sandbox: Sandbox, tmp_path: Path) -> None:
    sb = big_sandbox
    sb.counters.reset()
    result = run_sync(_config(sb, tmp_path, None))
    assert result.status == "succeeded", result.error
    assert sb.counters.count(EXPORT_POST) == 0
    assert result.tables["contacts"].rows == EXPORT_THRESHOLD + 400
