"""Fail fast on what cannot work (issue 8 §1), in process: the preflight of ``run_sync``
(credentials, warehouse) and the rules that stop a run at its first answer (a rejected API
key) or after a bounded wait (an unreachable host). The CLI's side: tests/test_fail_fast.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ctctsync.api import ApiClient, RetryPolicy
from ctctsync.api.client import TRANSPORT_KINDS
from ctctsync.config import SourceConfig, SyncConfig, WarehouseConfig
from ctctsync.errors import RULES_BY_NAME, RetriesExhausted
from ctctsync.sandbox import Sandbox
from ctctsync.sync import run_sync
from ctctsync.sync.preflight import check_credentials, preflight

TABLES3 = {"contact_lists": None, "contacts": None, "email_campaigns": None}


def closed_port() -> int:
    """A port nothing listens on: bound, then closed."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config_for(tmp_path: Path, base_url: str, api_key: str = "", access_token: str = "",
               warehouse: WarehouseConfig | None = None) -> SyncConfig:
    return SyncConfig(
        integration="preflight",
        source=SourceConfig(base_url=base_url, api_key=api_key,  # type: ignore[arg-type]
                            access_token=access_token, qps_limit=None),  # type: ignore[arg-type]
        warehouse=warehouse or WarehouseConfig(path=tmp_path / "wh.duckdb"),
        tables=TABLES3,
        state_url=f"sqlite:///{tmp_path / 'state' / 'state.db'}",
    )


def test_check_credentials_names_the_missing_variables() -> None:
    assert check_credentials(SourceConfig(api_key="k-1234", access_token="t-1234")) is None  # type: ignore[arg-type]
    both = check_credentials(SourceConfig())
    assert both is not None
    assert "CTCTSYNC_API_KEY and CTCTSYNC_ACCESS_TOKEN" in both
    blank = check_credentials(SourceConfig(api_key="k-1234", access_token="  "))  # type: ignore[arg-type]
    assert blank is not None
    assert "CTCTSYNC_ACCESS_TOKEN" in blank
    assert "CTCTSYNC_API_KEY" not in blank


def test_missing_credentials_fail_the_run_before_any_request_or_file(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    result = run_sync(config_for(tmp_path, sandbox.base_url))
    assert (result.status, result.failure_type, result.api_calls) == ("failed", "config", 0)
    assert result.error is not None
    assert "CTCTSYNC_API_KEY" in result.error
    assert sandbox.counters.snapshot()["total"] == 0
    assert list(tmp_path.iterdir()) == []  # no DuckDB file, no state folder


def test_an_unusable_warehouse_fails_every_table_with_one_message_and_no_call(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    creds = sandbox.credentials
    warehouse = WarehouseConfig(
        destination="postgres",
        credentials=f"postgresql://postgres@127.0.0.1:{closed_port()}/test",  # type: ignore[arg-type]
    )
    config = config_for(tmp_path, sandbox.base_url, creds.api_key, creds.access_token, warehouse)
    result = run_sync(config)
    assert (result.status, result.failure_type, result.api_calls) == ("failed", "config", 0)
    assert result.error is not None
    assert result.error.startswith("cannot connect to the warehouse (postgres at 127.0.0.1:")
    assert {t.status for t in result.tables.values()} == {"failed"}
    assert {t.error for t in result.tables.values()} == {result.error}
    assert sandbox.counters.snapshot()["total"] == 0
    assert not (tmp_path / "state").exists()


def test_a_duckdb_warehouse_is_not_created_by_the_check(tmp_path: Path) -> None:
    config = config_for(tmp_path, "http://127.0.0.1:1", "k-1234", "t-1234")
    assert preflight(config) is None
    assert list(tmp_path.iterdir()) == []


def test_a_duckdb_file_held_open_by_another_process_passes_the_check(tmp_path: Path) -> None:
    # the loader waits for such a file (warehouse/filelock.py); the check must not fail on it
    path = tmp_path / "wh.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"import duckdb, sys; c = duckdb.connect({str(path)!r}); print('open', flush=True); "
         "sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        config = config_for(tmp_path, "http://127.0.0.1:1", "k-1234", "t-1234")
        assert preflight(config) is None
    finally:
        holder.communicate("", timeout=30)
    path.chmod(0o400)
    try:
        problem = preflight(config_for(tmp_path, "http://127.0.0.1:1", "k-1234", "t-1234"))
        if os.geteuid() != 0:  # root writes anything
            assert problem is not None and "not writable" in problem
    finally:
        path.chmod(0o600)


def test_a_rejected_api_key_stops_the_run_at_the_first_answer(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    config = config_for(tmp_path, sandbox.base_url, "not-this-sandboxes-key",
                        sandbox.credentials.access_token)
    result = run_sync(config)
    assert (result.status, result.failure_type, result.api_calls) == ("failed", "config", 1)
    assert sandbox.counters.snapshot()["total"] == 1
    assert [t.status for t in result.tables.values()].count("failed") == 1
    assert result.error is not None
    assert result.error.startswith("Constant Contact does not accept the API key")
    assert RULES_BY_NAME["inactive_api_key"].stops_run
    assert RULES_BY_NAME["api_key_not_authorized"].stops_run
    assert not RULES_BY_NAME["forbidden"].stops_run  # one endpoint's permission: per table


def test_an_unreachable_host_is_given_up_on_after_the_connect_attempts() -> None:
    port = closed_port()
    retry = RetryPolicy(base_delay=0.01)
    with ApiClient(f"http://127.0.0.1:{port}", "k-1234", "t-1234", retry=retry) as client:
        with pytest.raises(RetriesExhausted) as caught:
            client.get_json("/v2/account/info")
        assert client.calls.total == retry.connect_attempts == 3
    error = caught.value
    assert error.rule.name == "unreachable"
    assert error.stops_run
    assert f"127.0.0.1:{port}" in error.user_message


def test_an_unreachable_host_fails_the_run_once(tmp_path: Path) -> None:
    config = config_for(tmp_path, f"http://127.0.0.1:{closed_port()}", "k-1234", "t-1234")
    started = time.monotonic()
    result = run_sync(config)
    assert time.monotonic() - started < 15  # 3 attempts, at most 1.5 s of waits
    assert (result.status, result.failure_type) == ("failed", "transient")
    assert result.api_calls == 3
    assert [t.status for t in result.tables.values()].count("failed") == 1
    assert result.error is not None
    assert result.error.startswith("Could not connect to Constant Contact (127.0.0.1:")


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        pytest.param(httpx.ConnectError("refused"), "connection", id="refused"),
        pytest.param(httpx.ConnectTimeout("no answer"), "connection", id="connect-timeout"),
        pytest.param(httpx.ReadTimeout("slow"), "timeout", id="read-timeout"),
        pytest.param(httpx.ReadError("reset"), "protocol", id="reset-while-reading"),
        pytest.param(httpx.RemoteProtocolError("cut"), "protocol", id="incomplete"),
    ],
)
def test_only_failing_to_connect_counts_as_unreachable(exc: Exception, kind: str) -> None:
    assert next(k for types, k in TRANSPORT_KINDS if isinstance(exc, types)) == kind
