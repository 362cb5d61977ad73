"""The table registry against the product spec file itself, and docs/tables.md against the
registry."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ctctsync import docs_gen
from ctctsync.tables import (
    ACTIVITY_DATE_FIELDS,
    SPEC_TABLES,
    TABLES,
    ApiVersion,
    table,
    tables_for,
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
    names = {TABLES[n].spec_name for n in SPEC_TABLES}
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
    assert set(SPEC) == {TABLES[n].spec_name for n in SPEC_TABLES}
    assert len(SPEC_TABLES) == 9
    assert list(TABLES)[:9] == list(SPEC_TABLES)  # the spec's nine first, then the extras


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in SPEC_TABLES])
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


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in SPEC_TABLES])
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
    if t.replication == "incremental" and not t.extra:
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


# --- API versions ---------------------------------------------------------------------------

V2_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "contacts": [
        ("id", "bigint"), ("status", "text"), ("fax", "text"), ("addresses", "json"),
        ("notes", "text"), ("confirmed", "bool"), ("lists", "json"), ("source", "text"),
        ("email_addresses", "json"), ("prefix_name", "text"), ("first_name", "text"),
        ("middle_name", "text"), ("last_name", "text"), ("job_title", "text"),
        ("company_name", "text"), ("home_phone", "text"), ("work_phone", "text"),
        ("cell_phone", "text"), ("custom_fields", "text"), ("created_date", "timestamp"),
        ("modified_date", "timestamp"), ("source_details", "text"), ("department_name", "text"),
        ("action_by", "text"),
    ],
    "email_campaigns": [
        ("id", "bigint"), ("name", "text"), ("status", "text"), ("modified_date", "timestamp"),
    ],
    "my_library_files": [
        ("name", "text"), ("id", "bigint"), ("description", "text"), ("folder", "text"),
        ("height", "bigint"), ("width", "bigint"), ("size", "bigint"), ("url", "text"),
        ("source", "text"), ("status", "text"), ("thumbnail", "json"),
        ("created_date", "timestamp"), ("modified_date", "timestamp"), ("folder_id", "text"),
        ("is_image", "bool"), ("file_type", "text"),
    ],
    "account_info": [
        ("website", "text"), ("organization_name", "text"), ("time_zone", "text"),
        ("first_name", "text"), ("last_name", "text"), ("email", "text"), ("phone", "text"),
        ("company_logo", "text"), ("country_code", "text"), ("status_code", "text"),
        ("organization_addresses", "text"), ("state_code", "text"),
    ],
    "trash_files": [
        ("name", "text"), ("id", "text"), ("description", "text"), ("folder", "text"),
        ("height", "bigint"), ("width", "bigint"), ("size", "bigint"), ("url", "text"),
        ("source", "text"), ("status", "text"), ("thumbnail", "json"),
        ("created_date", "timestamp"), ("modified_date", "timestamp"), ("folder_id", "text"),
        ("is_image", "bool"), ("file_type", "text"),
    ],
    "contact_lists": [
        ("id", "bigint"), ("name", "text"), ("status", "text"), ("created_date", "timestamp"),
        ("modified_date", "timestamp"), ("contact_count", "bigint"), ("opt_in_default", "bool"),
    ],
    "contact_tracking": [
        ("activity_id", "text"), ("activity_type", "text"), ("campaign_id", "bigint"),
        ("contact_id", "bigint"), ("email_address", "text"), ("activity_date", "timestamp"),
        ("send_date", "timestamp"), ("open_date", "timestamp"), ("click_date", "timestamp"),
        ("forward_date", "timestamp"), ("bounce_date", "timestamp"),
        ("unsubscribe_date", "timestamp"), ("link_id", "text"), ("link_uri", "text"),
        ("bounce_code", "text"), ("bounce_description", "text"), ("bounce_message", "text"),
        ("unsubscribe_source", "text"), ("unsubscribe_reason", "text"),
    ],
    "email_campaign_summary": [
        ("campaign_id", "bigint"), ("start_date", "timestamp"), ("end_date", "timestamp"),
        ("sends", "bigint"), ("opens", "bigint"), ("clicks", "bigint"), ("forwards", "bigint"),
        ("unsubscribes", "bigint"), ("bounces", "bigint"), ("spam_count", "bigint"),
    ],
    "events": [
        ("id", "text"), ("name", "text"), ("title", "text"), ("status", "text"),
        ("location", "text"), ("type", "text"), ("address", "json"), ("description", "text"),
        ("start_date", "timestamp"), ("end_date", "timestamp"), ("created_date", "timestamp"),
        ("total_registered_count", "bigint"), ("time_zone_id", "text"),
        ("active_date", "timestamp"), ("is_checkin_available", "bool"),
        ("event_detail_url", "text"),
    ],
}
"""The v2 view of every table as it was before v3 existed (frozen: v2 integrations' warehouse
tables must not change because v3 was added)."""


def test_the_v2_view_is_unchanged() -> None:
    v2 = tables_for("v2")
    assert {n: [(c.name, c.type) for c in t.columns] for n, t in v2.items()} == V2_COLUMNS
    for name, t in v2.items():
        assert t.api_version == "v2"
        assert t.ignored_fields == TABLES[name].ignored_fields  # no v3 field leaks into v2


def test_v3_fills_every_spec_table_but_the_library() -> None:
    v3 = tables_for("v3")
    assert [n for n in SPEC_TABLES if n not in v3] == ["my_library_files", "trash_files"]
    assert {n for n, t in TABLES.items() if t.extra} <= set(v3)
    for name in ("my_library_files", "trash_files"):
        reason = TABLES[name].unavailable_reason("v3")
        assert "no MyLibrary endpoint" in reason and "§3.12" in reason


@pytest.mark.parametrize(
    ("name", "column", "v3_type"),
    [
        pytest.param("contacts", "id", "text", id="contact-uuid"),
        pytest.param("email_campaigns", "id", "text", id="campaign-uuid"),
        pytest.param("contact_lists", "id", "text", id="list-uuid"),
        pytest.param("contact_tracking", "campaign_id", "text", id="tracking-campaign"),
        pytest.param("contact_tracking", "contact_id", "text", id="tracking-contact"),
        pytest.param("email_campaign_summary", "campaign_id", "text", id="summary-campaign"),
        pytest.param("contacts", "deleted_at", "timestamp", id="v3-only"),
        pytest.param("segments", "segment_id", "bigint", id="segment-integer"),
    ],
)
def test_v3_types(name: str, column: str, v3_type: str) -> None:
    assert tables_for("v3")[name].column(column).type == v3_type


@pytest.mark.parametrize(
    ("name", "v2_only", "v3_only"),
    [
        pytest.param(
            "contacts",
            {"fax", "prefix_name", "middle_name", "source_details", "department_name",
             "action_by"},
            {"deleted_at", "permission_to_send", "taggings", "birthday_month", "birthday_day",
             "anniversary", "v2_id"},
            id="contacts",
        ),
        pytest.param("email_campaigns", set(), {"created_date", "type", "type_code", "v2_id"},
                     id="campaigns"),
        pytest.param("account_info", {"status_code"}, set(), id="account"),
        pytest.param("contact_lists", {"opt_in_default"}, {"description", "favorite", "v2_id",
                                                           "deleted_at"}, id="lists"),
        pytest.param(
            "contact_tracking",
            {"bounce_description", "bounce_message", "unsubscribe_source"},
            {"campaign_activity_id", "device_type"},
            id="tracking",
        ),
        pytest.param("email_campaign_summary", set(), {"not_opened"}, id="summary"),
        pytest.param("events", {"is_checkin_available"}, set(), id="events"),
    ],
)
def test_columns_per_version(name: str, v2_only: set[str], v3_only: set[str]) -> None:
    v2 = set(tables_for("v2")[name].column_names)
    v3 = set(tables_for("v3")[name].column_names)
    assert v2 - v3 == v2_only
    assert v3 - v2 == v3_only


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in TABLES])
def test_every_source_fits_its_version(name: str) -> None:
    t = TABLES[name]
    assert t.sources, name
    for version, source in t.sources.items():
        assert source.path.startswith(f"/{version}/"), (name, version)
        assert source.reference
        if version == "v3" and source.envelope in ("v3_links", "v3_cursor"):
            assert source.records_key, name
    for version in ("v2", "v3"):
        if not t.available_in(version):
            assert version in t.unavailable, f"{name}: say why {version} cannot fill it"
    if t.extra:
        assert all(not c.in_spec for c in t.columns)


def test_v3_read_whole_and_keys() -> None:
    v3 = tables_for("v3")
    assert v3["contact_lists"].read_whole
    assert v3["contact_tracking"].primary_key == ("activity_id",)
    assert v3["email_campaign_activities"].depends_on == ("email_campaigns",)
    assert v3["event_registrations"].depends_on == ("events",)


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_every_version_view_keeps_its_keys(version: ApiVersion) -> None:
    for name, t in tables_for(version).items():
        for key in t.required_columns:
            t.column(key)  # raises when a version lacks the key or cursor column
        if t.replication == "incremental" and not t.read_whole:
            # a filter, or (v3 tracking reports) newest first, read until the bookmark
            assert t.sources[version].since_param or (version, name) == (
                "v3", "contact_tracking"), (version, name)
