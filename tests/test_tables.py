"""The table registry against the product spec file itself, and docs/tables.md against the
registry."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ctctsync import docs_gen
from ctctsync.tables import (
    ACTIVITY_DATE_FIELDS,
    TABLES,
    table,
    warehouse_table_name,
)

REPO = Path(__file__).resolve().parents[1]
SPEC_TYPES = ("NUMERIC", "STRING", "RECORD", "BOOLEAN", "TIMESTAMP", "INTEGER")


def _spec_path() -> Path:
    # shared/ sits beside the repository, locally and in CI
    path = REPO.parent / "shared" / "reference" / "product-spec.txt"
    if not path.is_file():
        pytest.fail(f"the product spec is missing: expected {path} (shared/ beside the repo)")
    return path


def _parse_spec() -> dict[str, dict[str, object]]:
    """Each spec table: replication line, replication key and (name, type) fields in order."""
    text = _spec_path().read_text(encoding="utf-8")
    names = {t.spec_name for t in TABLES.values()}
    tables: dict[str, dict[str, object]] = {}
    current: dict[str, object] | None = None
    in_fields = False
    for raw in text.splitlines():
        line = raw.strip()
        if line in names:
            current = {"fields": [], "replication": None, "key": None}
            tables[line] = current
            in_fields = False
            continue
        if current is None:
            continue
        if line.startswith("Replication:"):
            current["replication"] = line.split(":", 1)[1].strip()
        elif line.startswith("Replication Key:"):
            current["key"] = line.split(":", 1)[1].strip()
        elif line.startswith("Name | Target Datatype"):
            in_fields = True
        elif in_fields and "|" in line:
            cells = [c.strip() for c in line.split("|")]
            if cells[0] in SPEC_TYPES and cells[1] == "":
                # AccountInfo's row with a blank name: "STRING | |" (the type slid left)
                cells = ["", cells[0]]
            fields = current["fields"]
            assert isinstance(fields, list)
            fields.append((cells[0], cells[1]))
        elif in_fields and line:
            in_fields = False
    return tables


SPEC = _parse_spec()


def test_all_nine_tables() -> None:
    assert len(SPEC) == 9
    assert set(SPEC) == {t.spec_name for t in TABLES.values()}
    assert len(TABLES) == 9


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in TABLES])
def test_replication_type_and_key(name: str) -> None:
    t = TABLES[name]
    spec = SPEC[t.spec_name]
    replication = str(spec["replication"]).lower()
    if t.replication == "incremental":
        assert re.search(r"key[- ]based", replication), replication
        assert spec["key"] == "lastRunDate" == t.replication_key
    else:
        assert replication == "full replication"
        assert spec["key"] == "NA" and t.replication_key is None


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in TABLES])
def test_every_spec_field_with_its_type(name: str) -> None:
    t = TABLES[name]
    spec_fields = SPEC[t.spec_name]["fields"]
    registry = [(c.name if c.spec_name is None else c.spec_name, c.spec_type)
                for c in t.columns if c.in_spec]
    assert registry == spec_fields
    for col in t.columns:
        if col.in_spec and col.spec_name not in (None, col.name):
            assert col.deviation, f"{name}.{col.name} is renamed from the spec without a reason"


def test_account_info_blank_name_row_is_email() -> None:
    fields = SPEC["AccountInfo"]["fields"]
    assert isinstance(fields, list)
    assert ("", "STRING") in fields
    assert fields[fields.index(("", "STRING")) - 1] == ("last_name", "STRING")
    col = TABLES["account_info"].column("email")
    assert col.spec_name == "" and col.spec_type == "STRING" and col.type == "text"


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in TABLES])
def test_keys_and_cursor_are_columns(name: str) -> None:
    t = TABLES[name]
    for key in t.required_columns:
        t.column(key)
    if t.replication == "incremental":
        assert t.cursor_column is not None


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in TABLES])
def test_dependencies_are_tables(name: str) -> None:
    for dep in TABLES[name].depends_on:
        assert dep in TABLES and dep != name


def test_activity_date_fields_are_contact_tracking_columns() -> None:
    tracking = TABLES["contact_tracking"]
    for field in ACTIVITY_DATE_FIELDS.values():
        assert tracking.column(field).type == "timestamp"


def test_warehouse_table_name() -> None:
    assert warehouse_table_name("acme", "contacts") == "acme_contacts"


def test_lookup_by_spec_name() -> None:
    assert table("ContactTracking") is TABLES["contact_tracking"]
    with pytest.raises(KeyError, match="unknown table"):
        table("Nope")


def test_docs_tables_md_is_up_to_date() -> None:
    path = REPO / "docs" / "tables.md"
    assert path.read_text(encoding="utf-8") == docs_gen.render(), (
        "docs/tables.md is stale: run `python -m ctctsync.docs_gen`"
    )
