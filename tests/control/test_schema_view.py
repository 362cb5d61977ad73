"""The schema view (issue 12 §7) over real parts: the sandbox behind a loopback proxy that
starts sending fields the registry does not know, jobs executed by the control plane into a
real warehouse (DuckDB; PostgreSQL too), and the view read back: columns, warehouse types,
selection, when each column first appeared (dlt's ``_dlt_version``), new fields flagged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from ctctsync.control import services as svc
from ctctsync.control.models import Integration, Run, User
from ctctsync.control.plane import ControlPlane
from ctctsync.control.schemas import IntegrationCreate, IntegrationUpdate, WarehouseIn
from ctctsync.control.services import schema_view as schema_view_module
from ctctsync.control.services.schema_view import SchemaTable, schema_view
from ctctsync.sandbox import Sandbox
from ctctsync.tables import tables_for
from ctctsync.warehouse.schema import WarehouseColumns, column_history, describe_tables

from .conftest import PASSWORD, make_settings
from .drift_proxy import DriftProxy, drift_proxy

CONTACT_COLUMNS = [
    c for c in tables_for("v2")["contacts"].column_names if c not in ("fax", "notes")
]


def run_job(plane: ControlPlane, db: Session, run: Run) -> None:
    """Execute a queued job on this thread; it must succeed."""
    db.commit()
    assert plane.work_once("w1", run.id) == run.id
    db.expire_all()
    done = db.get(Run, run.id)
    assert done is not None and done.status == "succeeded", done.error if done else None


def drifted_integration(
    plane: ControlPlane, db: Session, user: User, proxy: DriftProxy, creds: tuple[str, str]
) -> tuple[Integration, list[datetime]]:
    """``acme`` (v2: contacts without fax and notes, contact lists), loaded three times:
    as the registry knows it; then contacts re-read while Constant Contact sends a new
    ``loyaltyTier`` (the ``add`` policy loads it); then lists read while it sends a new
    ``optInColour`` (policy ``ignore`` by then: reported only). Returns the integration and
    the instant before each job."""
    integ = svc.create_integration(
        db, user,
        IntegrationCreate(  # type: ignore[arg-type]
            name="acme", history_start="2000-01-01", api_version="v2", new_columns="add",
            tables={"contacts": CONTACT_COLUMNS, "contact_lists": None},
        ),
    )  # fmt: skip
    svc.set_manual_credentials(db, integ, *creds, check_access=False)
    starts = [datetime.now(UTC)]
    run_job(plane, db, svc.run_now(db, integ, user))
    proxy.extra["/v2/contacts"] = {"loyaltyTier": "gold"}
    starts.append(datetime.now(UTC))
    run_job(plane, db, svc.resync_table(db, integ, "contacts", user))
    svc.update_integration(db, integ, IntegrationUpdate(new_columns="ignore"))
    proxy.extra["/v2/lists"] = {"optInColour": "blue"}
    starts.append(datetime.now(UTC))
    run_job(plane, db, svc.run_now(db, integ, user))
    return integ, starts


def _by_name(view_table: SchemaTable) -> dict[str, object]:
    return {c.name: c for c in view_table.columns}


@pytest.fixture
def proxy(sandbox: Sandbox) -> Iterator[DriftProxy]:
    with drift_proxy(sandbox.base_url) as p:
        yield p


def _plane(tmp_path: Path, proxy: DriftProxy, migrated_template: Path) -> ControlPlane:
    settings = make_settings(tmp_path, cc_base_url=proxy.base_url, cc_qps_limit=None)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "control.db").write_bytes(migrated_template.read_bytes())
    return ControlPlane(settings)


def _check_view(db: Session, integ: Integration, starts: list[datetime], *, json_type: str) -> None:
    view = schema_view(db, integ)
    assert view.warehouse_problem is None and view.warehouse_found
    assert [t.table.name for t in view.tables] == ["contacts", "contact_lists"]
    contacts, lists = view.tables
    assert contacts.warehouse_name == "acme_contacts" and contacts.in_warehouse
    cols = {c.name: c for c in contacts.columns}

    # registry columns: declared and warehouse types, selection, first appearance (job 1)
    ident = cols["id"]
    assert ident.kind == "registry" and ident.required and ident.selected
    assert ident.declared_type == "bigint" and ident.warehouse_type.lower() == "bigint"  # type: ignore[union-attr]
    assert cols["addresses"].warehouse_type.lower() == json_type  # type: ignore[union-attr]
    assert ident.first_appeared is not None and starts[0] <= ident.first_appeared < starts[1]
    # deselected columns: never loaded, so neither in the warehouse nor dated
    for name in ("fax", "notes"):
        assert not cols[name].selected and cols[name].warehouse_type is None
        assert cols[name].first_appeared is None and cols[name].declared_type == "text"
    assert contacts.selected_count == len(CONTACT_COLUMNS)

    # the new field loaded under "add": its own column, flagged, dated by job 2
    tier = cols["loyalty_tier"]
    assert tier.kind == "new_field" and tier.new_field is not None
    assert tier.new_field.field == "loyaltyTier"
    assert tier.first_appeared is not None and starts[1] <= tier.first_appeared < starts[2]
    assert not tier.selected  # the policy is "ignore" now: no longer loaded
    assert [(n.field.field, n.column) for n in contacts.new_fields] == [
        ("loyaltyTier", "loyalty_tier")
    ]
    # ctctsync's bookkeeping columns, listed as such
    assert cols["_ctctsync_loaded_at"].kind == "metadata"

    # the new field met under "ignore": flagged, not loaded
    assert [(n.field.field, n.column) for n in lists.new_fields] == [("optInColour", None)]
    assert "opt_in_colour" not in {c.name for c in lists.columns}
    assert view.new_field_count == 2


@pytest.mark.slow
def test_schema_view_on_duckdb(
    sandbox: Sandbox, proxy: DriftProxy, tmp_path: Path, migrated_template: Path
) -> None:
    plane = _plane(tmp_path, proxy, migrated_template)
    try:
        with plane.session() as db:
            user = svc.ensure_first_admin(db, "ops@example.com", PASSWORD)
            assert user is not None
            # before any job: the registry's side only, and the warehouse says it is empty
            integ = svc.create_integration(
                db,
                user,
                IntegrationCreate(name="early", tables={"contacts": None}),  # type: ignore[arg-type]
            )
            empty = schema_view(db, integ)
            assert not empty.warehouse_found and empty.warehouse_problem is None
            assert all(c.warehouse_type is None for c in empty.tables[0].columns)
            assert not (plane.settings.data_dir / "warehouse.duckdb").exists()  # not created
            svc.delete_integration(db, integ, drop_tables=False)

            creds = (sandbox.credentials.api_key, sandbox.credentials.access_token)
            integ, starts = drifted_integration(plane, db, user, proxy, creds)
            _check_view(db, integ, starts, json_type="json")

            # dropping the tables forgets their history: a new load starts a new one
            svc.delete_integration(db, integ, drop_tables=True)
    finally:
        plane.close()


@pytest.mark.slow
@pytest.mark.postgres
def test_schema_view_on_postgresql(
    sandbox: Sandbox,
    proxy: DriftProxy,
    tmp_path: Path,
    migrated_template: Path,
    pg_dsn: str,
    warehouse_dataset: str,
) -> None:
    plane = _plane(tmp_path, proxy, migrated_template)
    try:
        with plane.session() as db:
            user = svc.ensure_first_admin(db, "ops@example.com", PASSWORD)
            assert user is not None
            svc.save_warehouse(
                db,
                WarehouseIn(destination="postgres", credentials=pg_dsn, dataset=warehouse_dataset),
            )
            creds = (sandbox.credentials.api_key, sandbox.credentials.access_token)
            integ, starts = drifted_integration(plane, db, user, proxy, creds)
            _check_view(db, integ, starts, json_type="jsonb")
    finally:
        plane.close()


def test_unreachable_warehouse_still_shows_the_registry(
    db: Session, admin: User, pg_available: bool
) -> None:
    svc.save_warehouse(
        db,
        WarehouseIn(
            destination="postgres",
            credentials="postgresql://nobody:s3cret-pw@127.0.0.1:9/none",
            dataset="x",
        ),
    )
    integ = svc.create_integration(
        db,
        admin,
        IntegrationCreate(name="acme", tables={"contact_lists": None}),  # type: ignore[arg-type]
    )
    view = schema_view(db, integ)
    assert view.warehouse_problem and "s3cret-pw" not in view.warehouse_problem
    assert [t.table.name for t in view.tables] == ["contact_lists"]
    assert all(c.warehouse_type is None for c in view.tables[0].columns)


def test_column_history_from_stored_schemas() -> None:
    def schema(**columns: str | None) -> str:
        cols = {n: ({"data_type": t} if t else {"name": n}) for n, t in columns.items()}
        return json.dumps({"tables": {"acme_contacts": {"columns": cols}}})

    t1 = datetime(2026, 3, 1, 9, tzinfo=UTC)
    t2 = datetime(2026, 3, 2, 9, tzinfo=UTC)
    rows = [
        (schema(id="bigint", tier=None), t1),  # tier declared, never typed: not there yet
        ("not json at all", t1),  # unreadable rows are skipped
        (schema(id="bigint", tier="text"), t2.isoformat()),
        (schema(id="bigint"), datetime(2026, 2, 1, 9)),  # naive: read as UTC, earliest
    ]
    first, latest = column_history(rows, ["acme_contacts", "acme_lists"])
    assert first == {"acme_contacts": {"id": datetime(2026, 2, 1, 9, tzinfo=UTC), "tier": t2}}
    assert latest == {"acme_contacts": {"id": "bigint", "tier": "text"}}


def test_the_store_is_not_held_while_the_warehouse_answers(
    db: Session, admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a slow warehouse (a PostgreSQL connect timing out) must not keep the store's write
    # lock (SQLite: every service session begins IMMEDIATE) from the runs and the scheduler
    integ = svc.create_integration(
        db,
        admin,
        IntegrationCreate(name="acme", tables={"contact_lists": None}),  # type: ignore[arg-type]
    )
    held: list[bool] = []

    def probe(*args: object) -> WarehouseColumns:
        held.append(db.in_transaction())
        return describe_tables(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(schema_view_module, "describe_tables", probe)
    svc.get_warehouse(db)  # the settings row exists (made on first use, with a commit)
    db.commit()
    integ = svc.get_integration(db, admin, integ.id)  # as the page does: a read in progress
    view = schema_view(db, integ)
    assert held == [False]
    assert [t.table.name for t in view.tables] == ["contact_lists"]
