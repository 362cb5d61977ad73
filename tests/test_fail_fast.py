"""Fail fast on what cannot work (issue 8 §1), as a user runs ``ctctsync``: missing
credentials, an unusable warehouse, a rejected API key and an unreachable API each end the
run at once, with one clear line, no traceback, and no API call (or file) spent on a run
that could never succeed. (In-process checks of the same rules: tests/sync/test_preflight.py.)"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ctctsync.sandbox import Sandbox

CLI = [sys.executable, "-m", "ctctsync"]
BLOCK_DRIVER = "import sys\nsys.modules['psycopg2'] = None\n"


def run_cli(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, *, prelude: str = "",
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CTCTSYNC_")}
    full_env.update(env or {})
    code = prelude + f"sys.argv = ['ctctsync', *{args!r}]\nfrom ctctsync.cli import main\nmain()\n"
    return subprocess.run(
        [sys.executable, "-c", "import sys\n" + code], check=False, cwd=cwd, env=full_env,
        capture_output=True, text=True, timeout=timeout,
    )


def closed_port() -> int:
    """A port nothing listens on: bound, then closed."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sandbox_env(sb: Sandbox, **extra: str) -> dict[str, str]:
    return {
        "CTCTSYNC_API_KEY": sb.credentials.api_key,
        "CTCTSYNC_ACCESS_TOKEN": sb.credentials.access_token,
        "CTCTSYNC_BASE_URL": sb.base_url,
        **extra,
    }


def write_config(folder: Path, *, destination: str = "duckdb", extra: str = "") -> Path:
    cfg = folder / "ctctsync.toml"
    cfg.write_text(
        f'integration = "fail_fast"\nstate_url = "sqlite:///{folder / "state.db"}"\n'
        f'[source]\nqps_limit = 50.0\n{extra}\n'
        f'[warehouse]\ndestination = "{destination}"\npath = "{folder / "wh.duckdb"}"\n'
        '[tables]\ncontact_lists = "*"\ncontacts = "*"\nemail_campaigns = "*"\n',
        encoding="utf-8",
    )
    return cfg


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


# -- missing credentials ----------------------------------------------------------------------


@pytest.mark.parametrize("verb", ["sync", "check"])
def test_missing_credentials_exit_2_before_any_request_or_file(
    verb: str, tmp_path: Path, sandbox: Sandbox
) -> None:
    before = sandbox.counters.snapshot()["total"]
    started = time.monotonic()
    res = run_cli([verb], tmp_path, {"CTCTSYNC_BASE_URL": sandbox.base_url})
    assert res.returncode == 2, res.stdout + res.stderr
    line = one_line(res.stderr)
    assert "CTCTSYNC_API_KEY" in line
    assert "CTCTSYNC_ACCESS_TOKEN" in line
    assert list(tmp_path.iterdir()) == []  # no DuckDB file, no state folder
    assert sandbox.counters.snapshot()["total"] == before
    assert time.monotonic() - started < 30


def test_a_missing_access_token_alone_is_named(tmp_path: Path) -> None:
    res = run_cli(["check"], tmp_path, {"CTCTSYNC_API_KEY": "some-key-1234"})
    assert res.returncode == 2
    line = one_line(res.stderr)
    assert "CTCTSYNC_ACCESS_TOKEN" in line
    assert "CTCTSYNC_API_KEY" not in line


# -- the warehouse, before the first API call -------------------------------------------------


def _pg(credentials: str) -> dict[str, str]:
    return {"CTCTSYNC_WAREHOUSE_CREDENTIALS": credentials}


WAREHOUSES = {
    "wrong-port": (lambda: _pg(f"postgresql://postgres@127.0.0.1:{closed_port()}/test"),
                   "cannot connect"),
    "wrong-user": (lambda: _pg("postgresql://no_such_role_ff@127.0.0.1:5432/test"),
                   "no_such_role_ff"),
    "wrong-database": (lambda: _pg("postgresql://postgres@127.0.0.1:5432/no_such_db_ff"),
                       "no_such_db_ff"),
    "wrong-host": (lambda: _pg("postgresql://postgres@db.example.invalid:5432/test"),
                   "db.example.invalid"),
    "unparseable-url": (lambda: _pg("postgresql://postgres:pw-1234@127.0.0.1:port/test"),
                        "not a valid"),
}


@pytest.mark.parametrize("case", sorted(WAREHOUSES))
def test_sync_with_an_unusable_warehouse_exits_2_with_one_line_and_no_api_call(
    case: str, tmp_path: Path, sandbox: Sandbox, pg_dsn: str
) -> None:
    env_of, expected = WAREHOUSES[case]
    cfg = write_config(tmp_path, destination="postgres")
    before = sandbox.counters.snapshot()["total"]
    res = run_cli(["sync", "-c", str(cfg)], tmp_path, sandbox_env(sandbox, **env_of()))
    assert res.returncode == 2, res.stdout + res.stderr
    line = one_line(res.stderr)
    assert expected in line
    assert "pw-1234" not in res.stdout + res.stderr
    assert sandbox.counters.snapshot()["total"] == before


def test_missing_postgres_driver_names_the_full_install_command(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    cfg = write_config(tmp_path, destination="postgres")
    env = sandbox_env(sandbox, **_pg("postgresql://postgres@127.0.0.1:5432/test"))
    for verb in ("sync", "check"):
        res = run_cli([verb, "-c", str(cfg)], tmp_path, env, prelude=BLOCK_DRIVER)
        assert res.returncode == 2, res.stdout + res.stderr
        line = one_line(res.stderr)
        assert "pip install 'ctctsync[postgres]'" in line
        if verb == "sync":  # check goes on to check the API too
            assert sandbox.counters.snapshot()["total"] == 0


def test_check_checks_the_api_and_the_warehouse(
    tmp_path: Path, sandbox: Sandbox, pg_dsn: str
) -> None:
    cfg = write_config(tmp_path, destination="postgres")
    res = run_cli(["check", "-c", str(cfg)], tmp_path, sandbox_env(sandbox, **_pg(pg_dsn)))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "PostgreSQL" in res.stdout or "postgres" in res.stdout
    bad = _pg(f"postgresql://postgres@127.0.0.1:{closed_port()}/test")
    res = run_cli(["check", "-c", str(cfg)], tmp_path, sandbox_env(sandbox, **bad))
    assert res.returncode == 2, res.stdout + res.stderr
    assert "cannot connect" in one_line(res.stderr)


# -- a rejected API key -----------------------------------------------------------------------


def test_a_rejected_api_key_stops_the_run_after_the_first_answer(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    cfg = write_config(tmp_path)
    env = sandbox_env(sandbox, CTCTSYNC_API_KEY="not-a-key-of-this-sandbox")
    res = run_cli(["sync", "-c", str(cfg), "--json"], tmp_path, env)
    assert res.returncode == 2, res.stdout + res.stderr
    assert sandbox.counters.snapshot()["total"] == 1
    assert "API key" in res.stdout


# -- an unreachable API -----------------------------------------------------------------------


@pytest.mark.parametrize("where", ["closed-port", "invalid-host"])
def test_an_unreachable_api_fails_the_run_once_in_bounded_time(
    where: str, tmp_path: Path
) -> None:
    base = {"closed-port": f"http://127.0.0.1:{closed_port()}",
            "invalid-host": "http://api.example.invalid"}[where]
    cfg = write_config(tmp_path)
    env = {"CTCTSYNC_API_KEY": "k-1234", "CTCTSYNC_ACCESS_TOKEN": "t-1234",
           "CTCTSYNC_BASE_URL": base}
    started = time.monotonic()
    res = run_cli(["sync", "-c", str(cfg), "--json"], tmp_path, env)
    elapsed = time.monotonic() - started
    assert res.returncode == 1, res.stdout + res.stderr
    out = json.loads(res.stdout)
    failed = [n for n, t in out["tables"].items() if t["status"] == "failed"]
    assert len(failed) == 1, out  # once, not once per table
    assert out["api_calls"] <= 6
    assert "connect" in out["error"].lower()
    assert elapsed < 45
