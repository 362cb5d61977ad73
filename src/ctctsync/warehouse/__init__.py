"""The warehouse side of ctctsync: loading (``Loader``) and the few maintenance calls the
control plane and the CLI need (connection test, row counts, reading back, dropping)."""

from __future__ import annotations

from ctctsync.warehouse.admin import (
    drop_integration_tables,
    read_table,
    test_connection,
    warehouse_tables,
)
from ctctsync.warehouse.destination import WarehouseError, make_destination
from ctctsync.warehouse.loader import Loader, LoadOutcome

__all__ = [
    "LoadOutcome",
    "Loader",
    "WarehouseError",
    "drop_integration_tables",
    "make_destination",
    "read_table",
    "test_connection",
    "warehouse_tables",
]
