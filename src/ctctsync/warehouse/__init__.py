"""The warehouse side of ctctsync: loading (``Loader``), the few maintenance calls the
control plane and the CLI need (connection test, row counts, reading back, dropping), and
what sets each destination apart (``capabilities_of``)."""

from __future__ import annotations

from ctctsync.destinations import (
    CAPABILITIES,
    DestinationCapabilities,
    capabilities_of,
)
from ctctsync.warehouse.admin import (
    drop_integration_tables,
    read_table,
    test_connection,
    warehouse_tables,
)
from ctctsync.warehouse.destination import WarehouseError, make_destination
from ctctsync.warehouse.loader import Loader, LoadOutcome
from ctctsync.warehouse.preflight import check_warehouse, install_hint

__all__ = [
    "CAPABILITIES",
    "DestinationCapabilities",
    "LoadOutcome",
    "Loader",
    "WarehouseError",
    "capabilities_of",
    "check_warehouse",
    "drop_integration_tables",
    "install_hint",
    "make_destination",
    "read_table",
    "test_connection",
    "warehouse_tables",
]
