"""The warehouse side of switching an integration from API v2 to v3 (``ctctsync.sync.switch``).

A v2 table whose ids become UUID text in v3 cannot simply be loaded with v3 rows: the live
column is a BIGINT and dlt never changes a column's type (it only adds columns it does not
find in the destination's information schema). So the v3 rows are first loaded, through the
ordinary :class:`~ctctsync.warehouse.loader.Loader`, into a *side table* of the same shape
(dlt creates it with its own types for the destination); then one transaction of
:meth:`SwitchWarehouse.swap`:

* writes the v2 -> v3 id map of the table into ``<integration>_v2_id_map``,
* fills the side table's ``v2_id`` from it,
* copies in the rows v2 loaded that the v3 read did not return (nothing is lost),
* drops the v2 table (and its empty staging copy, which has the v2 types too: dlt would
  load the next merge into it and fail) and renames the side table to the live name.

A crash before the commit leaves the v2 table as it was (the side table is re-made by the
next attempt); after it, the table is wholly v3. Each table switches on its own.

dlt then finds the renamed table's v3 columns in the destination's information schema
(every ctctsync load hands dlt a fresh schema of one table). One catch: dlt skips creating the
tables of a schema whose hash it has recorded in ``_dlt_version``, so the records of the side
pipeline and of the integration are deleted (:meth:`SwitchWarehouse.forget_schema`) whenever
tables they describe are dropped -- otherwise a dropped side table, or the dropped staging copy,
would not be created again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dlt
from dlt.destinations.exceptions import DatabaseTerminalException, DatabaseUndefinedRelation

from ctctsync.config import WarehouseConfig
from ctctsync.destinations import capabilities_of
from ctctsync.tables import TABLES, warehouse_table_name
from ctctsync.warehouse.destination import scratch_pipeline
from ctctsync.warehouse.filelock import gate_for

_PIPELINE = "ctctsync_switch"
MAP_TABLE = "v2_id_map"
"""``<integration>_v2_id_map``: (table_name, id, v2_id) of every row v2 loaded, kept after
the switch so that ``v2_id`` can be filled again in rows a v3 load rewrote."""
_INSERT_CHUNK = 500
"""Map rows per INSERT statement (bounded statement size, any account size)."""


class SwitchWarehouse:
    """SQL on one integration's warehouse tables, for the switch. Use as a context manager."""

    def __init__(self, wcfg: WarehouseConfig, integration: str) -> None:
        self.wcfg = wcfg
        self.integration = integration
        self._pipeline: dlt.Pipeline | None = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> SwitchWarehouse:
        self._pipeline = self._stack.enter_context(scratch_pipeline(self.wcfg, _PIPELINE))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        self._pipeline = None

    def name(self, table: str) -> str:
        """The warehouse name of one of the integration's tables."""
        return warehouse_table_name(self.integration, table)

    @contextmanager
    def _client(self) -> Iterator[Any]:
        if self._pipeline is None:
            raise RuntimeError("use SwitchWarehouse as a context manager")
        # one client per statement group: after a failed statement PostgreSQL refuses the
        # rest of its transaction
        with self._pipeline.sql_client() as c:
            yield c

    # -- reading -----------------------------------------------------------------------------

    def column_types(self, table: str) -> dict[str, str]:
        """``{column: data type}`` of a warehouse table (lower case); {} if it does not exist."""
        with self._client() as c:
            rows = c.execute_sql(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s",
                c.dataset_name,
                table,
            )
        return {str(r[0]): str(r[1]).lower() for r in rows or ()}

    def count(self, table: str) -> int | None:
        """Rows of a warehouse table, None if it does not exist."""
        with self._client() as c:
            try:
                rows = c.execute_sql(f"SELECT COUNT(*) FROM {c.make_qualified_table_name(table)}")  # noqa: S608
            except DatabaseUndefinedRelation:
                return None
        return int(rows[0][0]) if rows else 0

    def ids(self, table: str, column: str = "id") -> list[int]:
        """The distinct non-NULL values of a BIGINT id column, ascending."""
        with self._client() as c:
            q = c.make_qualified_table_name(table)
            col = c.escape_column_name(column)
            rows = c.execute_sql(
                f"SELECT DISTINCT {col} FROM {q} WHERE {col} IS NOT NULL ORDER BY {col}"  # noqa: S608
            )
        return [int(r[0]) for r in rows or ()]

    # -- the switch of one table ---------------------------------------------------------------

    def swap(
        self,
        table: str,
        side: str,
        id_map: Mapping[int, str] | None,
    ) -> int:
        """Replace ``table`` (v2 shape) by the warehouse table ``side`` (v3 shape, its full
        name) in one transaction.

        ``id_map`` (v2 id -> v3 UUID) is given for tables whose rows v2 and v3 share
        (contacts, lists, campaigns): ``v2_id`` is filled and the v2 rows the side table
        lacks are copied in (``id`` = their UUID, or ``v2:<id>`` when CC's cross-reference
        does not know the v2 id). None for a table re-read whole (tracking, summaries).
        Returns how many v2 rows were copied in.
        """
        live, side_name = self.name(table), side
        side_types = self.column_types(side_name)
        live_types = self.column_types(live)
        with self._gate(), self._client() as c, c.begin_transaction():
            kept = 0
            if id_map is not None:
                self._write_map(c, table, id_map)
                if "v2_id" not in side_types:
                    c.execute_sql(
                        f"ALTER TABLE {c.make_qualified_table_name(side_name)} "
                        f"ADD COLUMN {c.escape_column_name('v2_id')} BIGINT"
                    )
                    side_types["v2_id"] = "bigint"
                self._fill_v2_ids(c, table, side_name)
                kept = self._copy_v2_rows(c, table, live, side_name, live_types, side_types)
            c.execute_sql(f"DROP TABLE IF EXISTS {c.make_qualified_table_name(live)}")
            c.execute_sql(
                f"ALTER TABLE {c.make_qualified_table_name(side_name)} "
                f"RENAME TO {c.escape_column_name(live)}"
            )
            self._drop_staging(c, live, side_name)
        return kept

    def _write_map(self, c: Any, table: str, id_map: Mapping[int, str]) -> None:
        q = c.make_qualified_table_name(self.name(MAP_TABLE))
        c.execute_sql(
            f"CREATE TABLE IF NOT EXISTS {q} (table_name VARCHAR NOT NULL, "
            "id VARCHAR NOT NULL, v2_id BIGINT NOT NULL)"
        )
        c.execute_sql(f"DELETE FROM {q} WHERE table_name = %s", table)  # noqa: S608
        pairs = sorted(id_map.items())
        for start in range(0, len(pairs), _INSERT_CHUNK):
            chunk = pairs[start:start + _INSERT_CHUNK]
            values = ", ".join(["(%s, %s, %s)"] * len(chunk))
            args: list[Any] = []
            for v2, v3 in chunk:
                args += [table, v3, v2]
            c.execute_sql(f"INSERT INTO {q} (table_name, id, v2_id) VALUES {values}", *args)  # noqa: S608

    def _fill_v2_ids(self, c: Any, table: str, side_name: str) -> None:
        # a correlated subquery rather than UPDATE ... FROM: the same text works in DuckDB
        # and PostgreSQL
        q_side = c.make_qualified_table_name(side_name)
        q_map = c.make_qualified_table_name(self.name(MAP_TABLE))
        c.execute_sql(
            f"UPDATE {q_side} SET v2_id = (SELECT m.v2_id FROM {q_map} m "  # noqa: S608
            f"WHERE m.table_name = %s AND m.id = {q_side}.id)",
            table,
        )

    def _copy_v2_rows(
        self,
        c: Any,
        table: str,
        live: str,
        side_name: str,
        live_types: Mapping[str, str],
        side_types: Mapping[str, str],
    ) -> int:
        """Copy the v2 rows the v3 read did not return (by their mapped id); columns both
        shapes have with the same type keep their v2 values, the others are NULL."""
        common = [
            col for col, typ in live_types.items()
            if col not in ("id", "v2_id") and side_types.get(col) == typ
        ]
        cols = ", ".join(c.escape_column_name(col) for col in common)
        picked = ", ".join(f"l.{c.escape_column_name(col)}" for col in common)
        q_live = c.make_qualified_table_name(live)
        q_side = c.make_qualified_table_name(side_name)
        q_map = c.make_qualified_table_name(self.name(MAP_TABLE))
        tail_cols = f", {cols}" if common else ""
        tail_pick = f", {picked}" if common else ""
        before = self._count(c, q_side)
        # mapped rows the v3 read did not return (deleted and purged since, say)
        c.execute_sql(
            f"INSERT INTO {q_side} (id, v2_id{tail_cols}) "  # noqa: S608
            f"SELECT m.id, l.id{tail_pick} FROM {q_live} l JOIN {q_map} m "
            f"ON m.table_name = %s AND m.v2_id = l.id "
            f"WHERE m.id NOT IN (SELECT s.id FROM {q_side} s)",
            table,
        )
        # rows CC's cross-reference does not know: kept under a recognisable id
        c.execute_sql(
            f"INSERT INTO {q_side} (id, v2_id{tail_cols}) "  # noqa: S608
            f"SELECT 'v2:' || CAST(l.id AS VARCHAR), l.id{tail_pick} FROM {q_live} l "
            f"WHERE l.id NOT IN (SELECT m.v2_id FROM {q_map} m WHERE m.table_name = %s)",
            table,
        )
        return self._count(c, q_side) - before

    @staticmethod
    def _count(c: Any, qualified: str) -> int:
        rows = c.execute_sql(f"SELECT COUNT(*) FROM {qualified}")  # noqa: S608
        return int(rows[0][0]) if rows else 0

    @staticmethod
    def _drop_staging(c: Any, *names: str) -> None:
        # the staging copies are empty after every load (Loader._empty_staging); the live
        # one has the v2 types, which dlt would keep for the next merge's staging rows
        with c.with_staging_dataset():
            qualified = [c.make_qualified_table_name(n) for n in names]
            has_staging = c.has_dataset()
        if has_staging:
            for q in qualified:
                c.execute_sql(f"DROP TABLE IF EXISTS {q}")

    def drop_tables(self, names: Sequence[str]) -> None:
        """Drop warehouse tables and their staging copies if they exist (the side tables of a
        switch whose v3 read failed)."""
        with self._gate(), self._client() as c:
            for name in names:
                c.execute_sql(f"DROP TABLE IF EXISTS {c.make_qualified_table_name(name)}")
        with (
            self._client() as c,
            contextlib.suppress(DatabaseUndefinedRelation, DatabaseTerminalException),
            c.with_staging_dataset(),
        ):
            if c.has_dataset():
                for name in names:
                    c.execute_sql(f"DROP TABLE IF EXISTS {c.make_qualified_table_name(name)}")

    def forget_schema(self, pipeline_name: str) -> None:
        """Delete dlt's records of a pipeline's schema (the side run's) in both datasets."""
        for staging in (False, True):
            with (
                self._client() as c,
                contextlib.suppress(DatabaseUndefinedRelation, DatabaseTerminalException),
            ):
                ctx = c.with_staging_dataset() if staging else contextlib.nullcontext()
                with ctx:
                    q = c.make_qualified_table_name("_dlt_version")
                    c.execute_sql(f"DELETE FROM {q} WHERE schema_name = %s", pipeline_name)  # noqa: S608

    # -- after the switch ----------------------------------------------------------------------

    def restore_v2_ids(self, table: str) -> int:
        """Fill ``v2_id`` again where a v3 load left it NULL (a merged or replaced row: v3
        reads carry no v2 id), from ``<integration>_v2_id_map``. Returns the rows filled; 0
        when the integration was never switched or the table has no ``v2_id``."""
        if "v2_id" not in self.column_types(self.name(table)):
            return 0
        if not self.column_types(self.name(MAP_TABLE)):
            return 0
        with self._gate(), self._client() as c, c.begin_transaction():
            q = c.make_qualified_table_name(self.name(table))
            q_map = c.make_qualified_table_name(self.name(MAP_TABLE))
            where = (f"WHERE {q}.v2_id IS NULL AND EXISTS (SELECT 1 FROM {q_map} m "  # noqa: S608
                     f"WHERE m.table_name = %s AND m.id = {q}.id)")
            n = self._count_where(c, q, where, table)
            if n:
                c.execute_sql(
                    f"UPDATE {q} SET v2_id = (SELECT m.v2_id FROM {q_map} m "  # noqa: S608
                    f"WHERE m.table_name = %s AND m.id = {q}.id) {where}",
                    table,
                    table,
                )
        return n

    @staticmethod
    def _count_where(c: Any, qualified: str, where: str, *args: Any) -> int:
        rows = c.execute_sql(f"SELECT COUNT(*) FROM {qualified} {where}", *args)  # noqa: S608
        return int(rows[0][0]) if rows else 0

    @contextmanager
    def _gate(self) -> Iterator[None]:
        """A DuckDB file's turn (the loads of a running sync take turns with the switch)."""
        if not capabilities_of(self.wcfg.destination).local_file:
            yield
            return
        with gate_for(Path(self.wcfg.path)).loading():
            yield


def is_v2_shaped(types: dict[str, str], table: str) -> bool:
    """Whether a loaded table still has v2's numeric ids (the first column v3 makes text)."""
    key = next((c.name for c in TABLES[table].columns if c.v3_type == "text"), None)
    return key is not None and "int" in types.get(key, "")


def v2_shaped_tables(wcfg: WarehouseConfig, integration: str, tables: Sequence[str]) -> list[str]:
    """Those of ``tables`` the warehouse holds in v2 shape (numeric ids): a v3 run cannot
    load into them before the switch (``ctctsync.sync.switch``)."""
    with SwitchWarehouse(wcfg, integration) as wh:
        return [n for n in tables if is_v2_shaped(wh.column_types(wh.name(n)), n)]


def restore_v2_ids(
    wcfg: WarehouseConfig, integration: str, tables: Sequence[str]
) -> dict[str, int]:
    """:meth:`SwitchWarehouse.restore_v2_ids` for each of ``tables`` (for the sync engine to
    call after a v3 run's loads): ``{table: rows filled}``."""
    with SwitchWarehouse(wcfg, integration) as wh:
        return {t: wh.restore_v2_ids(t) for t in tables}
