"""How each warehouse column type travels in Arrow: the one mapping the mapper that builds
batches (``ctctsync.sync.rows``) and the reading back of tables (``warehouse.admin``) share.

It lives in the warehouse layer because it describes what the warehouse stores; ``sync``
imports it from here, so the warehouse never imports ``sync``.
"""

from __future__ import annotations

import pyarrow as pa

from ctctsync.tables import ColumnType

ARROW_TYPES: dict[ColumnType, pa.DataType] = {
    "bigint": pa.int64(),
    "double": pa.float64(),
    "text": pa.string(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    # nested values travel as JSON text; the loader marks the column data_type=json
    "json": pa.string(),
}
"""The Arrow type of each warehouse column type."""
