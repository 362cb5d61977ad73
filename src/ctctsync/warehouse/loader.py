"""Load one table's Arrow batches into the warehouse through dlt, in one commit.

Full tables and first reads use ``replace`` with dlt's ``insert-from-staging`` strategy:
the rows land in ``<dataset>_staging`` and are copied over the live table in one
transaction. Key-based reads use ``merge`` (``delete-insert`` by primary key), also one
transaction. Either way the table changes all at once or not at all, which is what lets the
sync write a bookmark after the load and treat a crash as a harmless re-read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import dlt
import duckdb
import pyarrow as pa
from dlt.common.schema.typing import TColumnSchema

from ctctsync.config import WarehouseConfig
from ctctsync.destinations import capabilities_of
from ctctsync.tables import LOADED_AT, RUN_ID, ColumnType, Table, warehouse_table_name
from ctctsync.warehouse.destination import scratch_pipeline

Disposition = Literal["replace", "merge"]

_DLT_TYPES: dict[ColumnType, str] = {
    "bigint": "bigint",
    "double": "double",
    "text": "text",
    "bool": "bool",
    "timestamp": "timestamp",
    "json": "json",
}


def column_hints(table: Table, columns: Sequence[str]) -> list[TColumnSchema]:
    """dlt column hints for the selected columns: types from the registry, not inferred."""
    hints: list[TColumnSchema] = []
    for name in columns:
        col = table.column(name)
        key = name in table.primary_key
        hint: TColumnSchema = {
            "name": name,
            "data_type": _DLT_TYPES[col.type],  # type: ignore[typeddict-item]
            "nullable": not key,
        }
        if key:
            hint["primary_key"] = True
        hints.append(hint)
    hints.append({"name": LOADED_AT, "data_type": "timestamp", "nullable": False})
    hints.append({"name": RUN_ID, "data_type": "text", "nullable": False})
    return hints


@dataclass(frozen=True)
class LoadOutcome:
    """What one table load did."""

    load_id: str | None
    """dlt's load package id (None when nothing was loaded)."""


class Loader:
    """Loads tables of one integration, each in its own dlt load (one commit per table).

    Use as a context manager: one dlt pipeline in a scratch folder serves every table of a
    run (creating a pipeline resolves dlt's configuration, which costs more than loading a
    small table); the folder is deleted at exit. Without ``with``, each load gets its own.
    """

    def __init__(self, wcfg: WarehouseConfig, integration: str) -> None:
        self.wcfg = wcfg
        self.integration = integration
        self.pipeline_name = f"ctctsync_{integration}"
        self._stack: ExitStack | None = None
        self._pipeline: dlt.Pipeline | None = None
        self._keepalive: duckdb.DuckDBPyConnection | None = None

    def __enter__(self) -> Loader:
        self._stack = ExitStack()
        self._pipeline = self._stack.enter_context(
            scratch_pipeline(self.wcfg, self.pipeline_name)
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stack is not None:
            self._stack.close()
        self._stack = self._pipeline = self._keepalive = None

    def warehouse_name(self, table: Table) -> str:
        """``<integration>_<table>``."""
        return warehouse_table_name(self.integration, table.name)

    def load(
        self,
        table: Table,
        columns: Sequence[str],
        batches: Iterable[pa.Table],
        disposition: Disposition,
    ) -> LoadOutcome:
        """Extract ``batches`` (a lazy iterable: pages stream through, never a whole table)
        and commit them. Exceptions raised by the iterable propagate unchanged (the caller
        maps them to a user message); nothing is committed in that case."""
        resource = dlt.resource(
            _passthrough(batches),
            name=table.name,
            table_name=self.warehouse_name(table),
            write_disposition=disposition,
            primary_key=list(table.primary_key),
            columns=column_hints(table, columns),
        )
        with ExitStack() as stack:
            pipeline = self._pipeline or stack.enter_context(
                scratch_pipeline(self.wcfg, self.pipeline_name)
            )
            self._keep_duckdb_open()
            if pipeline.has_pending_data:
                # left by a failed table of this run: dlt would load it first and *ignore*
                # the new data; its rows are re-read by the run that retries that table
                pipeline.drop_pending_packages()
            try:
                info = pipeline.run(resource, schema=dlt.Schema(self.pipeline_name))
            except Exception as exc:
                raise _unwrap(exc) from exc
        self._checkpoint()
        load_id = info.loads_ids[0] if info.loads_ids else None
        return LoadOutcome(load_id=load_id)


    def _keep_duckdb_open(self) -> None:
        """Within ``with``, hold one DuckDB connection to the file for the whole run (for a
        destination that declares ``keep_connection_open``: a DuckDB file).

        dlt opens the file for each table's load and closes it after; closing the last
        connection to a DuckDB file checkpoints it (writes the WAL into the file) and the next
        load opens and reads the catalog again. A connection of ours keeps the database open
        in this process (DuckDB shares one database instance per file among a process's
        connections), so dlt's connections attach to it; the file is checkpointed after each
        table's load (``_checkpoint``) and when the run ends. If the file
        cannot be opened here, dlt's own load reports why, as without this.
        """
        if self._stack is None or self._keepalive is not None:
            return
        if not capabilities_of(self.wcfg.destination).keep_connection_open:
            return
        path = Path(self.wcfg.path).expanduser()
        if not path.parent.exists():
            return  # dlt creates the folder on its first load; later tables keep it open
        try:
            self._keepalive = duckdb.connect(str(path))
        except duckdb.Error:
            return
        self._stack.callback(self._keepalive.close)

    def _checkpoint(self) -> None:
        # the table is committed (in DuckDB's WAL); writing it into the file now, while the
        # next tables are read ahead, keeps that work out of the run's wind-down
        if self._keepalive is None:
            return
        # only an optimization: DuckDB checkpoints at the latest when the run ends
        with suppress(duckdb.Error):
            self._keepalive.execute("CHECKPOINT")


def _passthrough(batches: Iterable[pa.Table]) -> Iterator[pa.Table]:
    yield from batches


def _unwrap(exc: BaseException) -> BaseException:
    """dlt wraps errors raised by a resource in its own step exceptions; find the original
    one (ours or the API client's) so the sync can report it by its type."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    last: BaseException = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        last = cur
        if not type(cur).__module__.startswith("dlt"):
            return cur
        nxt: Any = getattr(cur, "exception", None)
        if not isinstance(nxt, BaseException):
            nxt = cur.__cause__ or cur.__context__
        cur = nxt
    return last
