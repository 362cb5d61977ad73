"""Shared pytest configuration: the project's fixture plugins and the test PostgreSQL server."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest
from argon2 import PasswordHasher

from ctctsync.control import crypto
from ctctsync.control.database import create_store_engine, upgrade_database
from ctctsync.control.services import users

pytest_plugins = ["ctctsync.sandbox.testing"]

PG_DSN = os.environ.get("CTCTSYNC_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite control store, copied for each test (migrating each time is slow)."""
    path = tmp_path_factory.mktemp("template") / "control.db"
    engine = create_store_engine(f"sqlite:///{path}")
    upgrade_database(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 at its production cost takes ~0.1 s a hash; tests hash many passwords."""
    cheap = PasswordHasher(time_cost=1, memory_cost=1024)
    monkeypatch.setattr(crypto, "_hasher", cheap)
    # what an unknown email is checked against, so that it takes as long as a known one
    monkeypatch.setattr(users, "_DUMMY_HASH", cheap.hash("not-a-real-password"))


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


# The slow lane. `scripts/test -m "not slow"` is the inner loop (well under 2 minutes on this
# 2-core machine); CI runs everything. Listed here rather than in each module so that the
# lanes can be read in one place. Whole modules: end-to-end syncs, subprocess runs, real
# pacing, the browser. Single tests: those over ~3 s in an otherwise quick module.
SLOW_MODULES = (
    "tests/e2e/",
    "tests/test_cli.py",
    "tests/test_demo.py",
    "tests/test_extras.py",
    "tests/test_fail_fast.py",
    "tests/test_layering.py",
    "tests/web/test_browser_flow.py",
    "tests/web/test_openapi_schemathesis.py",
    "tests/sandbox/test_sandbox_scale.py",
    "tests/control/test_sandbox_runs.py",
    "tests/control/test_serve.py",
    "tests/control/test_shutdown.py",
    "tests/sync/test_loader.py",
    "tests/test_cli_v3_sync.py",
)
SLOW_TESTS = (
    "tests/web/test_edge_validation.py::test_zero_qps_limit_refused_at_start",
    "tests/control/test_settings.py::test_serve_refuses_a_weak_key_in_one_line",
    "tests/test_file_modes.py::test_a_sync_creates_private_state_store_and_warehouse",
    "tests/test_redaction.py::test_each_run_has_its_own_redactor_dropped_when_it_ends",
    "tests/test_secrets.py::test_worker_runs_scrub_their_own_token_and_keep_none",
    "tests/test_secrets.py::test_cli_sync_with_debug_logs_faults_and_revoked_token_leaks_nothing",
    "tests/test_secrets.py::test_control_plane_stores_and_answers_no_secret",
    "tests/test_secrets.py::test_v3_cli_sync_with_debug_logs_refresh_and_revocation_leaks_no_token",
    "tests/api/test_api_sandbox.py::test_over_qps_answers_slow_the_limiter_and_the_run_completes",
    "tests/api/test_api_sandbox.py::test_pacing_at_4_qps_gets_no_throttling_answers",
    "tests/api/test_api_sandbox.py::test_shared_limiter_paces_parallel_clients",
    "tests/api/test_api_sandbox.py::test_retries_survive_injected_faults",
    "tests/test_cli_auth.py::test_login_status_check_logout",
    "tests/web/test_v3_authorize.py::test_browser_v3_authorize_allow",
    "tests/web/test_v3_authorize.py::test_browser_v3_authorize_deny_then_try_again",
    "tests/api/test_v3_oauth_client.py::test_processes_racing_on_sqlite_refresh_once",
    "tests/api/test_v3_oauth_client.py::test_processes_racing_on_postgresql_refresh_once",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the slow lane (see SLOW_MODULES and SLOW_TESTS)."""
    root = config.rootpath
    for item in items:
        path = item.path.relative_to(root).as_posix()
        node = f"{path}::{item.name.split('[')[0]}"
        if path.startswith(SLOW_MODULES) or node in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
