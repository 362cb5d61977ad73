"""Shared pytest configuration: the project's fixture plugins and the test PostgreSQL server."""

from __future__ import annotations

import os

import psycopg
import pytest

pytest_plugins = ["ctctsync.sandbox.testing"]

PG_DSN = os.environ.get("CTCTSYNC_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """The test PostgreSQL server. Unreachable: skip locally, fail in CI (CI=true)."""
    try:
        with psycopg.connect(PG_DSN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL is required in CI but unreachable at {PG_DSN}: {exc}")
        pytest.skip(f"PostgreSQL unreachable at {PG_DSN}")
    return PG_DSN
