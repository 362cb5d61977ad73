"""The warehouse preflight against real PostgreSQL roles (issue 8 §1): a role that cannot
create tables fails the run before its first API call; one that can passes, and the check
leaves nothing behind."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from ctctsync.config import SourceConfig, SyncConfig, WarehouseConfig
from ctctsync.sandbox import Sandbox
from ctctsync.sync import run_sync
from ctctsync.warehouse import WarehouseError, check_warehouse

pytestmark = pytest.mark.postgres


def _role_dsn(pg_dsn: str, role: str) -> str:
    return make_url(pg_dsn).set(username=role, password=None).render_as_string(
        hide_password=False
    )


@pytest.fixture
def roles(pg_dsn: str) -> Iterator[dict[str, str]]:
    """Two login roles: ``read_only`` (no privilege but CONNECT) and ``creator`` (CREATE on
    the database); dropped afterwards."""
    suffix = os.getpid()
    names = {"read_only": f"ctctsync_ro_{suffix}", "creator": f"ctctsync_rw_{suffix}"}
    database = make_url(pg_dsn).database
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for name in names.values():
            conn.execute(f'DROP ROLE IF EXISTS "{name}"')
            conn.execute(f'CREATE ROLE "{name}" LOGIN')
        conn.execute(f'GRANT CREATE ON DATABASE "{database}" TO "{names["creator"]}"')
    yield {kind: _role_dsn(pg_dsn, name) for kind, name in names.items()}
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'REVOKE CREATE ON DATABASE "{database}" FROM "{names["creator"]}"')
        for name in names.values():
            conn.execute(f'DROP OWNED BY "{name}"')
            conn.execute(f'DROP ROLE IF EXISTS "{name}"')


def _schemas(pg_dsn: str, dataset: str) -> list[str]:
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname IN (%s, %s)",
            (dataset, f"{dataset}_staging"),
        ).fetchall()
    return sorted(r[0] for r in rows)


def test_a_read_only_role_fails_the_run_before_any_api_call(
    roles: dict[str, str], sandbox: Sandbox, tmp_path: Path
) -> None:
    creds = sandbox.credentials
    config = SyncConfig(
        integration="ro_probe",
        source=SourceConfig(base_url=sandbox.base_url, api_key=creds.api_key,
                            access_token=creds.access_token, qps_limit=None),
        warehouse=WarehouseConfig(destination="postgres", dataset="ro_probe_ds",
                                  credentials=roles["read_only"]),  # type: ignore[arg-type]
        tables={"contact_lists": None, "contacts": None},
        state_url=f"sqlite:///{tmp_path / 'state.db'}",
    )
    result = run_sync(config)
    assert (result.status, result.failure_type, result.api_calls) == ("failed", "config", 0)
    assert result.error is not None
    assert "cannot create tables" in result.error
    assert {t.error for t in result.tables.values()} == {result.error}
    assert sandbox.counters.snapshot()["total"] == 0


def test_a_role_that_can_create_passes_and_the_probe_leaves_nothing(
    roles: dict[str, str], pg_dsn: str
) -> None:
    dataset = f"probe_{os.getpid()}"
    wcfg = WarehouseConfig(destination="postgres", dataset=dataset,
                           credentials=roles["creator"])  # type: ignore[arg-type]
    assert "connected to postgres" in check_warehouse(wcfg)
    assert _schemas(pg_dsn, dataset) == []  # rolled back: no schema, no probe table
    read_only = WarehouseConfig(destination="postgres", dataset=dataset,
                                credentials=roles["read_only"])  # type: ignore[arg-type]
    with pytest.raises(WarehouseError, match="cannot create tables"):
        check_warehouse(read_only)


def test_an_existing_schema_without_create_privilege_is_refused(
    roles: dict[str, str], pg_dsn: str
) -> None:
    # the schemas exist (made by someone else) but the role may only use them
    dataset = f"probe_usage_{os.getpid()}"
    role = make_url(roles["read_only"]).username
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for schema in (dataset, f"{dataset}_staging"):
            conn.execute(f'CREATE SCHEMA "{schema}"')
            conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
    try:
        wcfg = WarehouseConfig(destination="postgres", dataset=dataset,
                               credentials=roles["read_only"])  # type: ignore[arg-type]
        with pytest.raises(WarehouseError, match="permission denied for schema"):
            check_warehouse(wcfg)
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            for schema in (dataset, f"{dataset}_staging"):
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
