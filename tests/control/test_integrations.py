"""The integration services: validation, editing, pause/reactivate, runs, deletion, secrets."""

from __future__ import annotations

import stat
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy.orm import Session

from ctctsync.control import services as svc
from ctctsync.control.clock import ManualClock
from ctctsync.control.errors import Conflict, NotFound, ValidationFailed
from ctctsync.control.models import Integration, Run, User
from ctctsync.control.plane import ControlPlane
from ctctsync.control.schemas import IntegrationCreate, IntegrationUpdate, validated
from ctctsync.control.settings import ControlSettings
from ctctsync.state import StateStore
from ctctsync.tables import TABLES, tables_for

from .helpers import connected, counts, finish


def test_create_defaults(db: Session, alice: User, clock: ManualClock) -> None:
    integ = svc.create_integration(db, alice, IntegrationCreate(name="acme"))
    assert integ.state == "pending"
    assert integ.frequency_hours == 24
    assert integ.history_start == clock.now().date() - timedelta(days=365)
    # a new integration reads API v3, and "everything" is every table v3 fills
    assert integ.api_version == "v3"
    assert integ.tables == dict.fromkeys(tables_for("v3"))
    assert not integ.has_credentials and integ.next_run_at is None


def test_create_keeps_the_chosen_version(db: Session, alice: User) -> None:
    # the service itself stores the version (the CLI has no later step that would set it)
    integ = svc.create_integration(db, alice, IntegrationCreate(name="legacy", api_version="v2"))
    db.expire_all()
    assert integ.api_version == "v2"
    assert integ.tables == dict.fromkeys(tables_for("v2"))
    assert "my_library_files" in integ.tables  # a v2-only table


def test_selection_keeps_keys(db: Session, alice: User) -> None:
    integ = svc.create_integration(
        db, alice, IntegrationCreate(name="acme", tables={"contacts": ["email_addresses"]})
    )
    chosen = integ.tables["contacts"]
    assert "email_addresses" in chosen
    assert set(TABLES["contacts"].required_columns) <= set(chosen)
    assert list(integ.tables) == ["contacts"]


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        pytest.param({"name": ""}, "name", "Enter a name", id="empty-name"),
        pytest.param({"name": "Acme Corp"}, "name", "lower-case", id="invalid-name"),
        pytest.param({"name": "9acme"}, "name", "starting with a letter", id="digit-first"),
        pytest.param({"name": "a" * 41}, "name", "1-40", id="too-long"),
        pytest.param({"name": "taken"}, "name", "already exists", id="duplicate"),
        pytest.param({"name": "taken_eu"}, "name", "table prefix", id="prefix-clash"),
        pytest.param({"name": "x", "frequency_hours": 5}, "frequency_hours", "1, 2, 3", id="freq"),
        pytest.param(
            {"name": "x", "history_start": "2999-01-01"}, "history_start", "future", id="future"
        ),
        pytest.param(
            {"name": "x", "history_start": "01/02/2024"}, "history_start", "YYYY-MM-DD", id="fmt"
        ),
        pytest.param(
            {"name": "x", "history_start": "2024-02-30"}, "history_start", "YYYY-MM-DD", id="day"
        ),
        pytest.param(
            {"name": "x", "history_start": "1990-01-01"}, "history_start", "1996", id="ancient"
        ),
        pytest.param({"name": "x", "tables": {"nope": None}}, "tables", "Unknown table", id="tbl"),
        pytest.param(
            {"name": "x", "tables": {"contacts": ["nope"]}},
            "tables.contacts",
            "no column(s) nope",
            id="column",
        ),
        pytest.param({"name": "x", "tables": {}}, "tables", "at least one", id="no-tables"),
    ],
)
def test_create_rejects_with_clear_message(
    db: Session, alice: User, data: dict[str, object], field: str, words: str
) -> None:
    svc.create_integration(db, alice, IntegrationCreate(name="taken"))
    before = counts(db)
    with pytest.raises(ValidationFailed) as err:
        svc.create_integration(db, alice, validated(IntegrationCreate, **data))
    assert words in err.value.errors[field], err.value.errors
    assert counts(db) == before


def test_several_errors_reported_together(db: Session, alice: User) -> None:
    with pytest.raises(ValidationFailed) as err:
        svc.create_integration(
            db,
            alice,
            validated(IntegrationCreate, name="", frequency_hours=7, history_start="soon"),
        )
    assert set(err.value.errors) == {"name", "frequency_hours", "history_start"}


def test_visibility(db: Session, admin: User, alice: User, bob: User) -> None:
    mine = svc.create_integration(db, alice, IntegrationCreate(name="alices"))
    svc.create_integration(db, bob, IntegrationCreate(name="bobs"))
    assert [i.name for i in svc.list_integrations(db, alice)] == ["alices"]
    assert [i.name for i in svc.list_integrations(db, admin)] == ["alices", "bobs"]
    with pytest.raises(NotFound):
        svc.get_integration(db, bob, mine.id)
    assert svc.get_integration(db, admin, mine.id) is mine


def test_credentials_are_encrypted_at_rest(
    db: Session, alice: User, settings: ControlSettings
) -> None:
    integ = connected(db, alice)
    raw = (
        db.execute(sa.text("select * from integrations where id = :i"), {"i": integ.id})
        .mappings()
        .one()
    )
    row_text = " ".join(str(v) for v in raw.values())
    assert "key-acme" not in row_text and "token-acme" not in row_text
    assert svc.integration_credentials(db, integ) == {
        "api_key": "key-acme",
        "access_token": "token-acme",
    }
    key_file = settings.data_dir / "encryption.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    secret = settings.session_secret()
    assert secret == settings.session_secret()  # created once, then read back
    assert stat.S_IMODE((settings.data_dir / "secret_key").stat().st_mode) == 0o600
    assert svc.credentials_status(integ).model_dump() == {
        "method": "manual",
        "api_key": "set",
        "access_token": "set",
    }


def test_other_key_cannot_read_credentials(
    db: Session, alice: User, settings: ControlSettings, clock: ManualClock
) -> None:
    integ = connected(db, alice)
    other = ControlPlane(
        settings.model_copy(update={"encryption_key": SecretStr(Fernet.generate_key().decode())}),
        clock=clock,
    )
    try:
        with other.session() as db2, pytest.raises(ValueError, match="cannot be decrypted"):
            svc.integration_credentials(db2, db2.get(Integration, integ.id))  # type: ignore[arg-type]
    finally:
        other.close()


def test_manual_credentials_required_fields(db: Session, alice: User) -> None:
    integ = svc.create_integration(db, alice, IntegrationCreate(name="acme"))
    with pytest.raises(ValidationFailed) as err:
        svc.set_manual_credentials(db, integ, " ", "")
    assert set(err.value.errors) == {"api_key", "access_token"}
    assert not integ.has_credentials


def test_manual_credentials_stored_when_cc_unreachable(db: Session, alice: User) -> None:
    integ = svc.create_integration(db, alice, IntegrationCreate(name="acme"))
    svc.set_manual_credentials(db, integ, "k" * 24, "t" * 36)  # cc_base_url points nowhere
    assert integ.has_credentials


def test_update_adds_tables_and_queues_backfill(
    db: Session, alice: User, plane: ControlPlane, clock: ManualClock
) -> None:
    integ = connected(db, alice, tables={"contacts": ["first_name"], "events": None})
    store = StateStore(plane.engine, create=False)
    store.set("acme", "contacts", clock.now(), "r0")
    store.set("acme", "contact_lists", clock.now(), "r0")  # left over from an old selection
    svc.update_integration(
        db,
        integ,
        IntegrationUpdate(
            frequency_hours=6,
            tables={"contacts": ["first_name", "last_name"], "contact_lists": None},
        ),
    )
    assert integ.frequency_hours == 6
    assert set(integ.tables) == {"contacts", "contact_lists"}
    assert store.get("acme", "contacts") is None
    assert store.get("acme", "contact_lists") is None
    run = db.scalar(sa.select(Run).where(Run.integration_id == integ.id))
    assert run is not None and run.trigger == "backfill" and run.status == "queued"
    assert run.tables_requested == ["contacts", "contact_lists"]
    assert run.full_refresh == ["contacts", "contact_lists"]


def test_update_without_new_columns_keeps_bookmarks(
    db: Session, alice: User, plane: ControlPlane, clock: ManualClock
) -> None:
    integ = connected(db, alice, tables={"contacts": ["first_name", "last_name"]})
    store = StateStore(plane.engine, create=False)
    store.set("acme", "contacts", clock.now(), "r0")
    svc.update_integration(db, integ, IntegrationUpdate(tables={"contacts": ["first_name"]}))
    assert store.get("acme", "contacts") is not None
    assert counts(db)[1] == 0


def test_update_rejects_and_changes_nothing(db: Session, alice: User) -> None:
    integ = connected(db, alice, frequency_hours=12)
    with pytest.raises(ValidationFailed) as err:
        svc.update_integration(
            db, integ, validated(IntegrationUpdate, frequency_hours=5, tables={"contacts": ["zz"]})
        )
    assert set(err.value.errors) == {"frequency_hours", "tables.contacts"}
    db.refresh(integ)
    # the manual key and token made it a v2 integration, with every v2 table
    assert integ.api_version == "v2"
    assert integ.frequency_hours == 12 and integ.tables == dict.fromkeys(tables_for("v2"))


def test_update_refuses_a_table_the_version_cannot_read(db: Session, alice: User) -> None:
    integ = connected(db, alice, frequency_hours=12)  # v2 (manual key and token)
    with pytest.raises(ValidationFailed) as err:
        svc.update_integration(
            db, integ, IntegrationUpdate(frequency_hours=6, tables={"segments": None})
        )
    assert set(err.value.errors) == {"tables.segments"}
    db.refresh(integ)
    assert integ.frequency_hours == 12 and integ.tables == dict.fromkeys(tables_for("v2"))


def test_name_and_history_are_immutable() -> None:
    with pytest.raises(ValueError, match="extra"):
        IntegrationUpdate(name="other")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="extra"):
        IntegrationUpdate(history_start=date(2024, 1, 1))  # type: ignore[call-arg]


def test_pause_cancels_queued_and_reactivate(db: Session, alice: User, clock: ManualClock) -> None:
    integ = connected(db, alice)
    run = svc.run_now(db, integ, alice)
    svc.pause(db, integ)
    assert integ.state == "paused"
    db.refresh(run)
    assert run.status == "cancelled"
    clock.advance(timedelta(hours=3))
    svc.reactivate(db, integ)
    assert integ.state == "pending" and integ.next_run_at == clock.now()
    integ.activated_at = clock.now()
    svc.pause(db, integ)
    svc.reactivate(db, integ)
    assert integ.state == "active"


def test_run_now_needs_credentials_and_merges(db: Session, alice: User) -> None:
    bare = svc.create_integration(db, alice, IntegrationCreate(name="bare"))
    with pytest.raises(ValidationFailed) as err:
        svc.run_now(db, bare, alice)
    assert "Authorize" in err.value.errors["credentials"]
    integ = connected(db, alice)
    first = svc.run_now(db, integ, alice)
    again = svc.run_now(db, integ, alice)
    resync = svc.resync_table(db, integ, "events", alice)
    assert first.id == again.id == resync.id  # one queued run per integration
    assert resync.tables_requested is None and resync.full_refresh == ["events"]
    assert integ.last_run_id == first.id


def test_resync_table(db: Session, alice: User, plane: ControlPlane, clock: ManualClock) -> None:
    integ = connected(db, alice, tables={"contacts": None})
    StateStore(plane.engine, create=False).set("acme", "contacts", clock.now(), "r0")
    with pytest.raises(ValidationFailed) as err:
        svc.resync_table(db, integ, "events")
    assert "not a selected table" in err.value.errors["table"]
    run = svc.resync_table(db, integ, "contacts", alice)
    assert (run.trigger, run.tables_requested, run.full_refresh) == (
        "resync",
        ["contacts"],
        ["contacts"],
    )
    assert StateStore(plane.engine, create=False).get("acme", "contacts") is None


def test_cancel_runs(db: Session, alice: User) -> None:
    integ = connected(db, alice)
    run = svc.run_now(db, integ, alice)
    svc.cancel_run(db, run)
    assert run.status == "cancelled"
    with pytest.raises(Conflict):
        svc.cancel_run(db, run)
    run2 = svc.run_now(db, integ, alice)
    run2.transition("running")
    db.commit()
    svc.cancel_run(db, run2)
    assert run2.status == "running" and run2.cancel_requested


def test_delete(db: Session, alice: User, plane: ControlPlane, clock: ManualClock) -> None:
    integ = connected(db, alice)
    run = svc.run_now(db, integ, alice)
    run.transition("running")
    db.commit()
    StateStore(plane.engine, create=False).set("acme", "contacts", clock.now(), run.id)
    with pytest.raises(Conflict, match="in progress"):
        svc.delete_integration(db, integ)
    db.refresh(run)
    assert run.cancel_requested
    finish(db, run.id, "cancelled")
    svc.start_authorization  # noqa: B018 -- imported API exists
    assert svc.delete_integration(db, integ) == []
    assert counts(db) == (0, 0)
    assert StateStore(plane.engine, create=False).all("acme") == []
    # The name is free again.
    svc.create_integration(db, alice, IntegrationCreate(name="acme"))
