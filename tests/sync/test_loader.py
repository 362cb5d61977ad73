"""The loader: full tables are replaced atomically (readers never see an empty or
half-loaded table), merges are by key, and the staging mechanism is the one we configure."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pyarrow as pa
import pytest

from ctctsync.config import WarehouseConfig
from ctctsync.destinations import CAPABILITIES, OTHER, capabilities_of
from ctctsync.sync.rows import MapContext, RowMapper
from ctctsync.tables import tables_for
from ctctsync.warehouse import (
    Loader,
    drop_integration_tables,
    read_table,
    test_connection,
    warehouse_tables,
)
from ctctsync.warehouse.admin import _describe
from ctctsync.warehouse.destination import REPLACE_STRATEGY, WarehouseError, _explicit_password

V2_TABLES = tables_for("v2")
"""The tables of the v2 path (a config without api_version reads v2)."""

EVENTS = V2_TABLES["events"]
PG = os.environ.get("CTCTSYNC_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def _batches(n: int, run_id: str, per_batch: int = 20_000) -> Iterator[pa.Table]:
    mapper = RowMapper(EVENTS, EVENTS.column_names)
    ctx = MapContext(run_id, datetime.now(UTC))
    for start in range(0, n, per_batch):
        recs = [{"id": f"e{i}", "name": f"event {i}", "status": "ACTIVE",
                 "address": {"city": "Waltham", "line1": f"{i} Main St"},
                 "start_date": "2013-10-28T13:00:00.000Z"}
                for i in range(start, min(n, start + per_batch))]
        yield mapper.to_arrow(recs, ctx)


@pytest.fixture(params=[pytest.param("duckdb", id="duckdb"),
                        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)])
def wcfg(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WarehouseConfig]:
    if request.param == "duckdb":
        yield WarehouseConfig(destination="duckdb", path=tmp_path / "w.duckdb", dataset="cc")
        return
    dsn: str = request.getfixturevalue("pg_dsn")
    assert dsn == PG
    dataset = f"t_{uuid.uuid4().hex[:12]}"
    yield WarehouseConfig(destination="postgres", credentials=PG, dataset=dataset)
    with psycopg.connect(PG, autocommit=True) as conn:
        for schema in (dataset, f"{dataset}_staging"):
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


class _Reader(threading.Thread):
    """Reads the table's row count and run ids in a loop, on its own connection."""

    def __init__(self, wcfg: WarehouseConfig, table: str) -> None:
        super().__init__(daemon=True)
        self.wcfg, self.table = wcfg, table
        self.stop = threading.Event()
        self.seen: set[tuple[Any, ...]] = set()
        self.reads = 0
        self.error: BaseException | None = None

    def _query(self) -> str:
        t = f'"{self.wcfg.dataset}"."{self.table}"'
        return f'SELECT COUNT(*), MIN("_ctctsync_run_id"), MAX("_ctctsync_run_id") FROM {t}'

    def run(self) -> None:
        try:
            if self.wcfg.destination == "duckdb":
                con = duckdb.connect(str(self.wcfg.path))
                try:
                    while not self.stop.is_set():
                        self.seen.add(tuple(con.execute(self._query()).fetchone() or ()))
                        self.reads += 1
                finally:
                    con.close()
            else:
                with psycopg.connect(PG, autocommit=True) as pg:
                    while not self.stop.is_set():
                        self.seen.add(tuple(pg.execute(self._query()).fetchone() or ()))
                        self.reads += 1
        except BaseException as exc:  # reported by the test
            self.error = exc


def test_replace_is_atomic_for_a_concurrent_reader(wcfg: WarehouseConfig) -> None:
    loader = Loader(wcfg, "cc")
    loader.load(EVENTS, EVENTS.column_names, _batches(30_000, "old"), "replace")
    reader = _Reader(wcfg, "cc_events")
    reader.start()
    try:
        while reader.reads == 0 and reader.error is None:  # reader is up before the load
            threading.Event().wait(0.001)
        reads_before = reader.reads
        loader.load(EVENTS, EVENTS.column_names, _batches(50_000, "new"), "replace")
        reads_during = reader.reads - reads_before
    finally:
        reader.stop.set()
        reader.join()
    assert reader.error is None, reader.error
    assert reads_during > 0
    # only the whole old table or the whole new one, never empty, never a mix
    assert reader.seen <= {(30_000, "old", "old"), (50_000, "new", "new")}, reader.seen
    assert (50_000, "new", "new") in reader.seen or read_table(wcfg, "cc", "events").num_rows


def test_replace_goes_through_the_staging_dataset(wcfg: WarehouseConfig) -> None:
    assert REPLACE_STRATEGY == "insert-from-staging"
    loader = Loader(wcfg, "cc")
    loader.load(EVENTS, EVENTS.column_names, _batches(10, "a"), "replace")
    loader.load(EVENTS, EVENTS.column_names, _batches(7, "b"), "replace")
    # the rows went to <dataset>_staging first and were copied over in one transaction;
    # the staging table is there (the load went through it) and left empty after the commit
    staging = f'"{wcfg.dataset}_staging"."cc_events"'
    if wcfg.destination == "duckdb":
        with duckdb.connect(str(wcfg.path)) as con:
            staged = con.execute(f"SELECT COUNT(*) FROM {staging}").fetchone()
    else:
        with psycopg.connect(PG) as pg:
            staged = pg.execute(f"SELECT COUNT(*) FROM {staging}").fetchone()
    assert staged == (0,)
    assert warehouse_tables(wcfg, "cc") == {"cc_events": 7}


def test_merge_updates_by_key_and_empty_replace_empties(wcfg: WarehouseConfig) -> None:
    loader = Loader(wcfg, "cc")
    loader.load(EVENTS, EVENTS.column_names, _batches(5, "a"), "replace")
    mapper = RowMapper(EVENTS, EVENTS.column_names)
    ctx = MapContext("b", datetime.now(UTC))
    upd = mapper.to_arrow([{"id": "e1", "name": "renamed"}, {"id": "e9", "name": "new"}], ctx)
    loader.load(EVENTS, EVENTS.column_names, iter([upd]), "merge")
    rows = {r["id"]: r for r in read_table(wcfg, "cc", "events").to_pylist()}
    assert set(rows) == {"e0", "e1", "e2", "e3", "e4", "e9"}
    assert rows["e1"]["name"] == "renamed" and rows["e2"]["name"] == "event 2"
    loader.load(EVENTS, EVENTS.column_names, iter([mapper.schema.empty_table()]), "replace")
    assert warehouse_tables(wcfg, "cc") == {"cc_events": 0}


def test_drop_then_reload(wcfg: WarehouseConfig) -> None:
    loader = Loader(wcfg, "cc")
    loader.load(EVENTS, EVENTS.column_names, _batches(3, "a"), "replace")
    assert drop_integration_tables(wcfg, "cc") == ["cc_events"]
    assert warehouse_tables(wcfg, "cc") == {}
    with pytest.raises(KeyError):
        read_table(wcfg, "cc", "events")
    # dlt must not believe the table still exists
    loader.load(EVENTS, EVENTS.column_names, _batches(2, "b"), "replace")
    assert warehouse_tables(wcfg, "cc") == {"cc_events": 2}


def test_connection_description_and_errors(wcfg: WarehouseConfig) -> None:
    text = test_connection(wcfg)
    # a DuckDB file not made yet is not created by the check (its folder is writable)
    assert text.startswith("connected to") or text.endswith("(created on the first sync)")
    assert wcfg.dataset in text


def test_connection_failure_is_clear_and_redacted() -> None:
    bad = WarehouseConfig(destination="postgres",
                          credentials="postgresql://u:s3cr3tpw@127.0.0.1:1/db", dataset="x")
    with pytest.raises(WarehouseError) as err:
        test_connection(bad)
    assert "cannot connect" in str(err.value) and "127.0.0.1" in str(err.value)
    assert "s3cr3tpw" not in str(err.value)


def test_missing_credentials_message() -> None:
    with pytest.raises(WarehouseError, match="needs credentials"):
        test_connection(WarehouseConfig(destination="postgres", dataset="x"))


@pytest.mark.parametrize(
    ("credentials", "expected"),
    [
        pytest.param("postgresql://u@h:5432/db", "postgresql://u:@h:5432/db", id="no-password"),
        pytest.param("postgresql://u:p@h/db", "postgresql://u:p@h/db", id="password"),
        pytest.param("postgresql://u:@h/db", "postgresql://u:@h/db", id="empty-password"),
        pytest.param("postgresql://h/db", "postgresql://h/db", id="no-user"),
        pytest.param("postgresql://u@h:x/db", "postgresql://u@h:x/db", id="bad-port"),
        pytest.param('{"type": "service_account"}', '{"type": "service_account"}', id="json"),
    ],
)
def test_explicit_password(credentials: str, expected: str) -> None:
    # dlt takes a URL without a password for incomplete configuration (trust/peer auth)
    assert _explicit_password(credentials) == expected


@pytest.mark.parametrize(
    ("wcfg", "expected"),
    [
        pytest.param(
            WarehouseConfig(path=Path("w.duckdb"), dataset="cc"),
            "DuckDB file w.duckdb, schema cc",
            id="duckdb",
        ),
        pytest.param(
            WarehouseConfig(
                destination="postgres", credentials="postgresql://u:pw@db.example:5433/wh"
            ),
            "postgres at db.example:5433/wh, dataset constant_contact",
            id="postgres",
        ),
        pytest.param(
            WarehouseConfig(destination="bigquery", credentials='{"private_key": "pw"}'),
            "bigquery, dataset constant_contact",
            id="not-a-url",
        ),
    ],
)
def test_description_names_the_place_not_the_secret(
    wcfg: WarehouseConfig, expected: str
) -> None:
    assert _describe(wcfg) == expected


def test_capabilities_are_declared_not_branched() -> None:
    assert capabilities_of("duckdb").local_file and not capabilities_of("duckdb").needs_credentials
    assert capabilities_of("postgres").needs_credentials
    # a destination dlt knows but ctctsync does not list is reached with credentials
    assert capabilities_of("snowflake") == OTHER and OTHER.needs_credentials
    # the loader's kept connection is a DuckDB connection: only DuckDB files may ask for it
    assert [n for n, c in CAPABILITIES.items() if c.keep_connection_open] == ["duckdb"]


def test_merge_dedupes_a_key_repeated_within_one_load(wcfg: WarehouseConfig) -> None:
    """The backstop behind the sync's bounded de-duplication window: dlt de-duplicates the
    staging table by primary key before merging."""
    loader = Loader(wcfg, "cc")
    loader.load(EVENTS, EVENTS.column_names, _batches(3, "a"), "replace")
    mapper = RowMapper(EVENTS, EVENTS.column_names)
    ctx = MapContext("b", datetime.now(UTC))
    pages = [mapper.to_arrow([{"id": "e1", "name": "x"}, {"id": "e7", "name": "y"}], ctx),
             mapper.to_arrow([{"id": "e7", "name": "y"}, {"id": "e1", "name": "x"}], ctx)]
    loader.load(EVENTS, EVENTS.column_names, iter(pages), "merge")
    ids = [r["id"] for r in read_table(wcfg, "cc", "events").to_pylist()]
    assert sorted(ids) == ["e0", "e1", "e2", "e7"]


def test_stale_scratch_folders_are_swept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    from ctctsync.warehouse import destination

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    stale = tmp_path / "ctctsync-dlt-old"
    fresh = tmp_path / "ctctsync-dlt-new"
    stale.mkdir()
    fresh.mkdir()
    old = destination.time.time() - destination.STALE_WORKDIR_SECONDS - 60
    os.utime(stale, (old, old))
    wcfg = WarehouseConfig(destination="duckdb", path=tmp_path / "w.duckdb", dataset="cc")
    with destination.scratch_pipeline(wcfg, "x") as pipeline:
        assert Path(pipeline.pipelines_dir).parent == tmp_path
    assert not stale.exists() and fresh.exists()
    assert [p.name for p in tmp_path.glob("ctctsync-dlt-*")] == ["ctctsync-dlt-new"]


def _staged_rows(wcfg: WarehouseConfig) -> dict[str, int]:
    """Rows per data table of ``<dataset>_staging`` (dlt's own ``_dlt_*`` tables aside)."""
    schema = f"{wcfg.dataset}_staging"
    q = "SELECT table_name FROM information_schema.tables WHERE table_schema = '" + schema + "'"

    def count(execute: Any) -> dict[str, int]:
        names = [r[0] for r in execute(q).fetchall() if not r[0].startswith("_dlt_")]
        return {n: execute(f'SELECT COUNT(*) FROM "{schema}"."{n}"').fetchone()[0]
                for n in names}

    if wcfg.destination == "duckdb":
        with duckdb.connect(str(wcfg.path)) as con:
            return count(con.execute)
    with psycopg.connect(PG) as pg:
        return count(pg.execute)


@pytest.mark.parametrize("in_with", [True, False], ids=["run", "alone"])
def test_no_copy_is_left_in_staging(wcfg: WarehouseConfig, in_with: bool) -> None:
    """Issue 8: after a merge (or a replace) the staging dataset held a full second copy of
    every table, personal data included. After a successful load it holds no rows."""
    mapper = RowMapper(EVENTS, EVENTS.column_names)
    upd = mapper.to_arrow([{"id": "e1", "name": "renamed"}], MapContext("b", datetime.now(UTC)))
    with ExitStack() as stack:
        loader = Loader(wcfg, "cc")
        if in_with:
            stack.enter_context(loader)
        loader.load(EVENTS, EVENTS.column_names, _batches(500, "a"), "replace")
        assert _staged_rows(wcfg).get("cc_events", 0) == 0
        loader.load(EVENTS, EVENTS.column_names, _batches(300, "m"), "merge")
        loader.load(EVENTS, EVENTS.column_names, iter([upd]), "merge")
    staged = _staged_rows(wcfg)
    assert "cc_events" in staged, "the loads went through staging"
    assert sum(staged.values()) == 0, staged
    assert warehouse_tables(wcfg, "cc") == {"cc_events": 500}
    rows = {r["id"]: r["name"] for r in read_table(wcfg, "cc", "events").to_pylist()}
    assert rows["e1"] == "renamed"


def _load_integration(wcfg: WarehouseConfig, integration: str, rows: int,
                      start: threading.Barrier | None = None) -> None:
    with Loader(wcfg, integration) as loader:
        if start is not None:
            start.wait()
        for disposition in ("replace", "merge"):
            loader.load(EVENTS, EVENTS.column_names, _batches(rows, integration, 5_000),
                        disposition)  # type: ignore[arg-type]


def test_two_threads_load_two_integrations_into_one_file_at_once(tmp_path: Path) -> None:
    """Issue 8: two workers' first runs loading together into one DuckDB file failed with
    'Catalog write-write conflict on create with ..._dlt_loads'."""
    wcfg = WarehouseConfig(destination="duckdb", path=tmp_path / "w.duckdb", dataset="cc")
    names = [f"i{n}" for n in range(4)]
    start = threading.Barrier(len(names))
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            _load_integration(wcfg, name, 20_000, start)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [], errors
    assert warehouse_tables(wcfg, "i0") == {"i0_events": 20_000}
    assert all(warehouse_tables(wcfg, n) == {f"{n}_events": 20_000} for n in names)


_CHILD = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from sync.test_loader import _load_integration
from ctctsync.config import WarehouseConfig
wcfg = WarehouseConfig(destination="duckdb", path=Path({path!r}), dataset="cc")
_load_integration(wcfg, sys.argv[1], 20_000)
"""


def test_two_processes_load_two_integrations_into_one_file_at_once(tmp_path: Path) -> None:
    """Across processes DuckDB allows one writer per file: the second waits for the file
    lock (``<file>.lock``) instead of failing on 'Could not set lock on file'."""
    import subprocess
    import sys

    path = tmp_path / "w.duckdb"
    code = _CHILD.format(tests=str(Path(__file__).parents[1]), path=str(path))
    procs = [subprocess.Popen([sys.executable, "-c", code, name], stderr=subprocess.PIPE,
                              text=True) for name in ("p0", "p1")]
    outs = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    wcfg = WarehouseConfig(destination="duckdb", path=path, dataset="cc")
    assert warehouse_tables(wcfg, "p0") == {"p0_events": 20_000}
    assert warehouse_tables(wcfg, "p1") == {"p1_events": 20_000}


def test_a_failed_load_leaves_nothing_that_shadows_the_next(tmp_path: Path) -> None:
    """A table whose pages fail mid-way commits nothing, and the next load of the run has
    its own rows only, none of the failed one's (a pending package it left is aborted)."""
    wcfg = WarehouseConfig(destination="duckdb", path=tmp_path / "w.duckdb", dataset="cc")

    def broken() -> Iterator[pa.Table]:
        yield from _batches(50, "bad", 25)
        raise RuntimeError("the API went away")

    with Loader(wcfg, "cc") as loader:
        with pytest.raises(RuntimeError, match="went away"):
            loader.load(EVENTS, EVENTS.column_names, broken(), "replace")
        loader.load(EVENTS, EVENTS.column_names, _batches(7, "good"), "replace")
    rows = read_table(wcfg, "cc", "events").to_pylist()
    assert len(rows) == 7 and {r["_ctctsync_run_id"] for r in rows} == {"good"}
    assert _staged_rows(wcfg).get("cc_events", 0) == 0


def test_runs_freeze_the_heap_only_while_any_lasts(tmp_path: Path) -> None:
    """Objects alive when a run begins are left out of full collections until the last
    overlapping run of the process ends; what the run creates is still collected."""
    import gc
    import weakref

    assert gc.get_freeze_count() == 0

    class Node:
        ref: Any = None

    wcfg = WarehouseConfig(destination="duckdb", path=tmp_path / "w.duckdb", dataset="cc")
    first = Loader(wcfg, "first").__enter__()
    try:
        assert gc.get_freeze_count() > 0
        second = Loader(wcfg, "second").__enter__()  # a second run of the process overlaps
        try:
            first.load(EVENTS, EVENTS.column_names, _batches(10, "r1"), "replace")
            cycle = Node()
            cycle.ref = cycle
            gone = weakref.ref(cycle)
            del cycle
            gc.collect()
            assert gone() is None  # cyclic garbage of the run is collected
        finally:
            first.__exit__(None, None, None)
        assert gc.get_freeze_count() > 0  # the second run still lasts
        second.load(EVENTS, EVENTS.column_names, _batches(5, "r2"), "replace")
    finally:
        second.__exit__(None, None, None)
    assert gc.get_freeze_count() == 0


def test_a_run_loads_a_duckdb_file_with_one_worker_thread(tmp_path: Path) -> None:
    from ctctsync.warehouse.loader import DUCKDB_THREADS

    wcfg = WarehouseConfig(destination="duckdb", path=tmp_path / "w.duckdb", dataset="cc")
    with Loader(wcfg, "t") as loader:
        loader.load(EVENTS, EVENTS.column_names, _batches(10, "r1"), "replace")
        loader.load(EVENTS, EVENTS.column_names, _batches(20, "r2"), "replace")
        with duckdb.connect(str(wcfg.path)) as con:  # shares the run's open database
            threads = con.execute("SELECT current_setting('threads')").fetchone()
            rows = con.execute(f"SELECT count(*) FROM cc.{loader.warehouse_name(EVENTS)}"
                               ).fetchone()
    assert threads == (DUCKDB_THREADS,)
    assert rows == (20,)


def test_two_threads_first_load_into_one_new_postgresql_dataset(pg_dsn: str) -> None:
    """Two integrations' first loads into one new PostgreSQL dataset at the same moment both
    create dlt's tables there; the one that loses the race (a unique violation on the
    catalog, ``SchemaUpdateTerminalError``) loads again instead of failing its run
    (``load_retrying_schema_races``). Seen with two workers and with the worker fleet."""
    dataset = f"t_{uuid.uuid4().hex[:12]}"
    wcfg = WarehouseConfig(destination="postgres", credentials=PG, dataset=dataset)
    names = [f"i{n}" for n in range(4)]
    start = threading.Barrier(len(names))
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            _load_integration(wcfg, name, 200, start)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in names]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [], errors
        assert all(warehouse_tables(wcfg, n) == {f"{n}_events": 200} for n in names)
    finally:
        with psycopg.connect(PG, autocommit=True) as conn:
            for schema in (dataset, f"{dataset}_staging"):
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_a_lost_warehouse_connection_loads_again_within_the_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A load whose connection was cut (a restart of the warehouse's server) is loaded again
    after each of LOST_CONNECTION_WAITS_SECONDS; another error, or the waits spent, fails it.
    test_fleet_restart cuts real connections under a load."""
    from ctctsync.warehouse import loader as loader_module

    monkeypatch.setattr(loader_module, "LOST_CONNECTION_WAITS_SECONDS", (0.0, 0.0))
    attempts: list[int] = []

    def cut_twice(error: type[Exception]) -> str:
        attempts.append(1)
        if len(attempts) <= 2:
            try:  # as dlt wraps the driver's error in its step's
                raise error("server closed the connection unexpectedly")
            except Exception as exc:
                raise RuntimeError("load step failed") from exc
        return "loaded"

    retrying = loader_module.load_retrying_schema_races
    assert retrying(lambda: cut_twice(psycopg.OperationalError), "t") == "loaded"
    assert len(attempts) == 3
    attempts.clear()
    with pytest.raises(RuntimeError):  # not a lost connection: at once
        retrying(lambda: cut_twice(psycopg.ProgrammingError), "t")
    assert len(attempts) == 1
    attempts.clear()
    monkeypatch.setattr(loader_module, "LOST_CONNECTION_WAITS_SECONDS", (0.0,))
    with pytest.raises(RuntimeError):  # lost again after the last wait
        retrying(lambda: cut_twice(psycopg.OperationalError), "t")
    assert len(attempts) == 2
