"""Fixtures for end-to-end syncs: a warehouse per test (DuckDB file or a PostgreSQL schema)
and a config pointing a sandbox account at it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ctctsync.config import SyncConfig, WarehouseConfig
from ctctsync.sandbox import Sandbox


def _drop_pg_schemas(dsn: str, dataset: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for schema in (dataset, f"{dataset}_staging"):
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=[pytest.param("duckdb", id="duckdb"),
                        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WarehouseConfig]:
    """A fresh, empty warehouse: a DuckDB file, or a unique PostgreSQL schema dropped after."""
    if request.param == "duckdb":
        yield WarehouseConfig(destination="duckdb", path=tmp_path / "wh.duckdb", dataset="cc")
        return
    dsn: str = request.getfixturevalue("pg_dsn")
    dataset = f"t_{uuid.uuid4().hex[:12]}"
    try:
        yield WarehouseConfig(destination="postgres", credentials=dsn, dataset=dataset)
    finally:
        _drop_pg_schemas(dsn, dataset)


@pytest.fixture(params=[pytest.param("duckdb", id="duckdb"),
                        pytest.param("postgres", id="postgres",
                                     marks=[pytest.mark.postgres, pytest.mark.slow])])
def any_warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WarehouseConfig]:
    """Like ``warehouse``, but the PostgreSQL variant is a slow scenario (CI runs it)."""
    if request.param == "duckdb":
        yield WarehouseConfig(destination="duckdb", path=tmp_path / "wh.duckdb", dataset="cc")
        return
    dsn: str = request.getfixturevalue("pg_dsn")
    dataset = f"t_{uuid.uuid4().hex[:12]}"
    try:
        yield WarehouseConfig(destination="postgres", credentials=dsn, dataset=dataset)
    finally:
        _drop_pg_schemas(dsn, dataset)


@pytest.fixture
def duckdb_warehouse(tmp_path: Path) -> WarehouseConfig:
    """A DuckDB warehouse only (scenarios whose warehouse side is not what they test)."""
    return WarehouseConfig(destination="duckdb", path=tmp_path / "wh.duckdb", dataset="cc")


ConfigFactory = Callable[..., SyncConfig]


@pytest.fixture
def make_config(tmp_path: Path) -> ConfigFactory:
    """``make_config(sandbox, warehouse, **overrides)``: a SyncConfig for that account."""

    def factory(sb: Sandbox, wcfg: WarehouseConfig, **overrides: Any) -> SyncConfig:
        creds = sb.credentials
        source: dict[str, Any] = {
            "base_url": sb.base_url,
            "api_key": creds.api_key,
            "access_token": creds.access_token,
            "qps_limit": None,
            "daily_limit": None,
            "max_retries": 6,
        }
        source.update(overrides.pop("source", {}))
        raw: dict[str, Any] = {
            "integration": "cc",
            "source": source,
            "warehouse": wcfg.model_dump(),
            "state_url": f"sqlite:///{tmp_path / f'state-{uuid.uuid4().hex[:6]}.db'}",
        }
        raw.update(overrides)
        return SyncConfig.model_validate(raw)

    return factory
