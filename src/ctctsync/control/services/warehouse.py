"""The warehouse every integration loads into: its settings and a connection test."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.orm import Session

from ctctsync.config import WarehouseConfig
from ctctsync.control.context import context
from ctctsync.control.errors import ValidationFailed
from ctctsync.control.models import WarehouseSettings
from ctctsync.control.schemas import WarehouseIn
from ctctsync.validation import field_errors
from ctctsync.warehouse import (
    WarehouseError,
    capabilities_of,
    drop_integration_tables,
    test_connection,
    warehouse_tables,
)

log = logging.getLogger(__name__)

_ROW_ID = 1


def get_warehouse(db: Session) -> WarehouseSettings:
    """The warehouse settings (created from the server's defaults on first use)."""
    row = db.get(WarehouseSettings, _ROW_ID)
    if row is not None:
        return row
    ctx = context(db)
    default = ctx.settings.default_warehouse()
    row = WarehouseSettings(
        id=_ROW_ID,
        destination=default.destination,
        path=str(default.path),
        dataset=default.dataset,
        updated_at=ctx.now(),
    )
    db.add(row)
    db.commit()
    return row


def _config(db: Session, data: WarehouseIn, row: WarehouseSettings) -> WarehouseConfig:
    """Validate ``data`` into a WarehouseConfig (stored credentials kept when not given)."""
    ctx = context(db)
    if data.credentials is None:
        stored = row.credentials_encrypted
        credentials = ctx.box.decrypt(stored) if stored else None
    else:
        credentials = data.credentials or None
    path = data.path.strip() if data.path else ""
    if not path:
        path = str(ctx.settings.default_warehouse().path)
    try:
        return WarehouseConfig(
            destination=data.destination.strip(),
            path=Path(path),
            dataset=data.dataset.strip(),
            credentials=credentials,  # type: ignore[arg-type]
        )
    except ValidationError as exc:
        raise ValidationFailed(field_errors(exc, whole="warehouse")) from None


def save_warehouse(db: Session, data: WarehouseIn) -> WarehouseSettings:
    """Validate and store warehouse settings (credentials encrypted)."""
    row = get_warehouse(db)
    wcfg = _config(db, data, row)
    if capabilities_of(wcfg.destination).needs_credentials and wcfg.credentials is None:
        raise ValidationFailed(
            {"credentials": f"{wcfg.destination} needs credentials (a connection string)."}
        )
    ctx = context(db)
    row.destination = wcfg.destination
    row.path = str(wcfg.path)
    row.dataset = wcfg.dataset
    row.credentials_encrypted = (
        ctx.box.encrypt(wcfg.credentials.get_secret_value()) if wcfg.credentials else None
    )
    row.updated_at = ctx.now()
    db.commit()
    return row


def warehouse_config(db: Session) -> WarehouseConfig:
    """The stored settings as the sync's WarehouseConfig, credentials decrypted."""
    row = get_warehouse(db)
    return _config(
        db,
        WarehouseIn(destination=row.destination, path=row.path, dataset=row.dataset),
        row,
    )


def test_warehouse(db: Session, data: WarehouseIn | None = None) -> str:
    """Try to connect (to ``data`` if given, else to the stored settings).

    Returns a one-line description; raises ``ValidationFailed`` with the warehouse's
    message when the connection fails.
    """
    wcfg = _config(db, data, get_warehouse(db)) if data is not None else warehouse_config(db)
    db.rollback()  # hold no store lock while the warehouse answers
    try:
        return test_connection(wcfg)
    except WarehouseError as exc:
        raise ValidationFailed({"warehouse": str(exc)}) from None


def drop_tables_of(db: Session, integration: str) -> list[str]:
    """Drop the warehouse tables of ``integration`` (used when deleting it)."""
    wcfg = warehouse_config(db)
    db.rollback()
    try:
        return drop_integration_tables(wcfg, integration)
    except WarehouseError as exc:
        raise ValidationFailed({"drop_tables": str(exc)}) from None


@dataclass(frozen=True)
class TableRows:
    """The warehouse tables an integration has, with their row counts (what deleting it
    keeps or drops, what unticking a table leaves behind)."""

    rows: dict[str, int] = field(default_factory=dict)
    """Warehouse table name (``<integration>_<table>``) -> rows, for the tables that exist."""
    problem: str | None = None
    """Why the warehouse could not be read (then ``rows`` is empty); None when it was."""

    @property
    def total(self) -> int:
        """Rows across every table."""
        return sum(self.rows.values())


def integration_table_rows(db: Session, integration: str) -> TableRows:
    """Row counts of ``integration``'s warehouse tables, read now.

    A local warehouse file that does not exist yet holds no table (it is not created just
    to look). A warehouse that cannot be read (unreachable, its file held by another
    process's load) gives a ``problem`` instead of failing the page that asked; the reason
    is logged by type only, since a driver's message may quote connection credentials.
    """
    wcfg = warehouse_config(db)
    db.rollback()  # hold no store lock while the warehouse answers
    if capabilities_of(wcfg.destination).local_file and not Path(wcfg.path).expanduser().exists():
        return TableRows()
    try:
        return TableRows(rows=warehouse_tables(wcfg, integration))
    except Exception as exc:  # any failure: the page says so, and goes on
        log.warning("could not count the rows of %s's tables: %s", integration, type(exc).__name__)
        return TableRows(
            problem="The warehouse could not be read just now, so its row counts are not shown."
        )
