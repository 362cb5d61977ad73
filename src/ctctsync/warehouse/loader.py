"""Load one table's Arrow batches into the warehouse through dlt, in one commit.

Full tables and first reads use ``replace`` with dlt's ``insert-from-staging`` strategy:
the rows land in ``<dataset>_staging`` and are copied over the live table in one
transaction. Key-based reads use ``merge`` (``delete-insert`` by primary key), also one
transaction. Either way the table changes all at once or not at all, which is what lets the
sync write a bookmark after the load and treat a crash as a harmless re-read.

After a successful load the table's copy in ``<dataset>_staging`` is emptied: staging is a
means of the commit, not a second home for the account's personal data.

Loads into one DuckDB file take turns (``warehouse.filelock``): the reading of a table (dlt's
extract and normalize steps, which pull the API pages) runs freely, and only the load step
waits for the file.

While a ``with Loader`` lasts (a run), the objects that existed when it began are left out of
Python's cyclic garbage collection (:class:`FrozenHeap`).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import dlt
import duckdb
import pyarrow as pa
from dlt.common.schema.typing import TColumnSchema
from dlt.destinations.exceptions import DatabaseUndefinedRelation
from dlt.pipeline.helpers import retry_schema_update

from ctctsync.config import WarehouseConfig
from ctctsync.db import private_umask
from ctctsync.destinations import capabilities_of
from ctctsync.tables import LOADED_AT, RUN_ID, ColumnType, Table, warehouse_table_name
from ctctsync.warehouse.destination import scratch_pipeline
from ctctsync.warehouse.filelock import FileGate, gate_for

log = logging.getLogger(__name__)
T = TypeVar("T")

Disposition = Literal["replace", "merge"]

DUCKDB_THREADS = 1
"""DuckDB worker threads while a run holds a DuckDB file open (``Loader._keep_duckdb_open``)."""

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


class FrozenHeap:
    """Leaves the objects alive when a run begins out of the cyclic garbage collector's
    full collections while any run lasts (``gc.freeze``), for CPU.

    Why: a run allocates millions of short-lived containers (every JSON page is ~8,000 dicts
    and lists), which trigger collections; each full collection walks every tracked object
    of the process, and the imported dlt, pyarrow and pydantic make that a few hundred thousand
    objects that live as long as the process. ``bench/bench_cpu.py`` (v2, 100k contacts):
    2.1-2.2 of 12.4-14.1 CPU-s in the collector before, 0.8-1.0 with the heap frozen (the run's
    whole CPU 19-26 % less, docs/performance.md). Nothing is leaked:
    reference counting still frees every object, and what is frozen goes back to the
    collector when the last run of the process ends (``gc.unfreeze``); runs of one process
    may overlap (the control plane's threads), so it counts them.
    """

    _lock = threading.Lock()
    _runs = 0

    def __enter__(self) -> FrozenHeap:
        cls = type(self)
        with cls._lock:
            cls._runs += 1
            gc.freeze()  # also this run's set-up (dlt's pipeline, the clients): O(1)
        return self

    def __exit__(self, *exc: object) -> None:
        cls = type(self)
        with cls._lock:
            cls._runs -= 1
            if cls._runs == 0:
                gc.unfreeze()


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
        self._gate: FileGate | None = (
            gate_for(Path(wcfg.path)) if capabilities_of(wcfg.destination).local_file else None
        )
        self._holding = False

    def __enter__(self) -> Loader:
        self._stack = ExitStack()
        self._pipeline = self._stack.enter_context(
            scratch_pipeline(self.wcfg, self.pipeline_name)
        )
        self._stack.enter_context(FrozenHeap())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stack is not None:
            self._stack.close()
        self._stack = self._pipeline = self._keepalive = None
        self._holding = False

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
            if pipeline.has_pending_data:
                # left by a failed table of this run: dlt would load it first and *ignore*
                # the new data; its rows are re-read by the run that retries that table.
                # Aborting a normalized package completes it through a load: the file's turn
                with self._turn():
                    pipeline.abort_packages()
            try:
                # what ``pipeline.run`` does, split: the pages are read (extract) and written
                # to load files (normalize) before this load waits for its turn at the file
                pipeline.extract(resource, schema=dlt.Schema(self.pipeline_name))
                pipeline.normalize()
                with self._turn():
                    info = load_retrying_schema_races(pipeline.load, table.name)
                    _empty_staging(pipeline, self.warehouse_name(table))
                    self._checkpoint()
            except Exception as exc:
                raise _unwrap(exc) from exc
        load_id = info.loads_ids[0] if info is not None and info.loads_ids else None
        return LoadOutcome(load_id=load_id)

    @contextmanager
    def _turn(self) -> Iterator[None]:
        """This load's turn at a warehouse file (no wait for a server destination).

        Within ``with``, the file stays held by this process from the first load until the
        run ends, because the kept connection (``_keep_duckdb_open``) holds it open that long:
        another process's loads wait for the run, this process's other loads for the table.
        """
        if self._gate is None:
            yield
            return
        if self._stack is not None and not self._holding:
            # entered after the pipeline: the stack releases the file after the kept
            # connection is closed (callbacks run in reverse order)
            self._stack.enter_context(self._gate.holding())
            self._holding = True
        # umask 077 while the file is written: DuckDB creates the file and its WAL itself
        with self._gate.loading(), private_umask():
            self._keep_duckdb_open()
            yield

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
        with suppress(duckdb.Error):
            # one DuckDB worker thread for this process's loads: a table's load is a few
            # 10k-row inserts, which more threads split into slices too small to pay for the
            # threads waking and waiting (three 100k-contact loads in a loop: 4.0-4.8 CPU-s
            # each with 2 threads, 3.3-4.1 with 1); the run's speed is the API's, not DuckDB's
            self._keepalive.execute(f"SET threads = {DUCKDB_THREADS}")

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


def _empty_staging(pipeline: dlt.Pipeline, table_name: str) -> None:
    """Empty the table's copy in ``<dataset>_staging`` after a committed load.

    dlt's merge and insert-from-staging replace leave the loaded rows there until the next
    load of the table (it truncates before a load, not after): a second copy of every table,
    email addresses included, that deleting a column in the live table would not reach. The
    empty table stays (dlt's recorded schema expects it). A failure here costs no data (the
    load is committed): it is logged, and the next load of the table empties it first anyway.
    """
    try:
        with pipeline.sql_client() as client, client.with_staging_dataset():
            if client.has_dataset():
                client.truncate_tables(table_name)
    except DatabaseUndefinedRelation:
        return  # the load did not go through staging (dlt skips it for some empty loads)
    except Exception as exc:  # the load is committed; see the docstring
        log.warning("could not empty the staging copy of %s: %s", table_name,
                    type(exc).__name__)


SCHEMA_RACE_ATTEMPTS = 3
"""Loads of one table tried when dlt's schema update loses a race (see below)."""

LOST_CONNECTION_WAITS_SECONDS = (1.0, 2.0, 4.0, 8.0)
"""Waits before loading again when the warehouse's connection was lost (its server
restarting, a failover): 15 s in all, a quick restart; beyond, the table fails as before."""


def lost_connection(exc: BaseException) -> bool:
    """Whether the connection to the warehouse was lost under ``exc`` (anywhere in its chain
    of causes): an ``OperationalError``, the DB-API's exception (PEP 249) for a database's
    operation going wrong outside the statement, "e.g. an unexpected disconnect", whatever
    the driver (psycopg2's and psycopg's are both named so)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if any(cls.__name__ == "OperationalError" for cls in type(cur).__mro__):
            return True
        nxt: Any = getattr(cur, "exception", None)  # dlt's step exceptions carry it there
        cur = nxt if isinstance(nxt, BaseException) else (cur.__cause__ or cur.__context__)
    return False


def load_retrying_schema_races(load: Callable[[], T], table: str) -> T:
    """``load()`` (dlt's load step), again when it failed on a schema update another process
    or thread made at the same moment, or on a lost connection.

    Two integrations whose first loads go into one new PostgreSQL dataset at once both
    create dlt's own tables (``_dlt_version``, ...); one of them fails with
    ``SchemaUpdateTerminalError`` (a unique violation on the catalog). dlt documents the retry
    as safe (``dlt.pipeline.helpers.retry_schema_update``): the package stays pending, and the
    next load re-reads the destination's schema and applies only what is still missing. Seen
    with two control-plane workers and with the worker fleet (issue 11).

    A connection lost mid-load (a restart of the warehouse's server) rolled back the
    statement in flight; the package stays pending as well, and its jobs are idempotent
    (a merge by primary key, a replace in one transaction), so loading again after
    :data:`LOST_CONNECTION_WAITS_SECONDS` completes it (dlt's ``retry_load`` retries the
    same way; test_fleet_restart cuts the connections under a load)."""
    is_race = retry_schema_update()
    attempt, waits = 1, iter(LOST_CONNECTION_WAITS_SECONDS)
    while True:
        try:
            return load()
        except Exception as exc:
            if is_race(exc) and attempt < SCHEMA_RACE_ATTEMPTS:
                attempt += 1
                log.warning("%s: the warehouse schema changed under this load (another load "
                            "created the same tables at the same moment); loading again "
                            "(attempt %d of %d)", table, attempt, SCHEMA_RACE_ATTEMPTS)
                continue
            wait = next(waits, None) if lost_connection(exc) else None
            if wait is None:
                raise
            log.warning("%s: the connection to the warehouse was lost (%s); loading again "
                        "in %.0f s", table, type(exc).__name__, wait)
            time.sleep(wait)


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
