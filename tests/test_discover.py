"""`ctctsync discover` tells the truth (issue 8): the configured warehouse's column types,
the replication as it really happens, and the new fields runs met."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dlt.common.destination.reference import Destination
from typer.testing import CliRunner

from ctctsync.cli.app import app
from ctctsync.destinations import CAPABILITIES
from ctctsync.state import StateStore
from ctctsync.tables import tables_for

V2_TABLES = tables_for("v2")
"""The tables of the v2 path (a config without api_version reads v2)."""

_SAME_TYPE = {"timestamptz": "timestamp with time zone"}
"""PostgreSQL's short name for what dlt writes out."""


@pytest.mark.parametrize("destination", list(CAPABILITIES))
def test_declared_column_types_are_what_dlt_creates(destination: str) -> None:
    caps = Destination.from_reference(destination).capabilities()
    mapper = caps.get_type_mapper()
    declared = CAPABILITIES[destination].column_types
    assert set(declared) >= {c.type for t in V2_TABLES.values() for c in t.columns}
    for column_type, shown in declared.items():
        created = mapper.to_destination_type(
            {"name": "c", "data_type": column_type}, {"name": "t", "columns": {}}  # type: ignore[typeddict-item]
        )
        assert _SAME_TYPE.get(shown, shown) == created, column_type


def _config(tmp_path: Path, destination: str = "postgres") -> Path:
    path = tmp_path / "ctctsync.toml"
    path.write_text(
        f'integration = "disc"\nstate_url = "sqlite:///{tmp_path / "state.db"}"\n'
        f'[warehouse]\ndestination = "{destination}"\ndataset = "cc"\n',
        encoding="utf-8",
    )
    return path


def test_discover_shows_the_configured_destinations_types_and_true_replication(
    tmp_path: Path,
) -> None:
    res = CliRunner().invoke(app, ["discover", "--config", str(_config(tmp_path))],
                             env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "contact_lists  (ContactLists, full (read whole; key-based in the spec))" in res.output
    assert "contacts  (Contacts, key-based on lastRunDate)" in res.output
    assert "jsonb" in res.output and "timestamptz" in res.output and "bigint" in res.output
    assert not (tmp_path / "state.db").exists()  # discover creates no file


def test_discover_json_lists_new_fields_and_warehouse_types(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "duckdb")
    StateStore(f"sqlite:///{tmp_path / 'state.db'}").record_fields(
        "disc", "contact_lists", ["opt_in_something"]
    )
    res = CliRunner().invoke(app, ["discover", "--config", str(cfg), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["contact_lists"]["new_fields"] == ["opt_in_something"]
    assert out["contact_lists"]["replication_label"] == "full (read whole; key-based in the spec)"
    assert out["contacts"]["columns"]["addresses"]["warehouse_type"] == "JSON"
    assert out["contacts"]["columns"]["created_date"]["warehouse_type"] == (
        "TIMESTAMP WITH TIME ZONE"
    )
    text = CliRunner().invoke(app, ["discover", "--config", str(cfg)], env={"COLUMNS": "200"})
    assert "opt_in_something" in text.output and "new field available" in text.output
