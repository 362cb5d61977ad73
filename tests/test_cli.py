"""The `ctctsync` command line, run the way a user runs it: as a process, against the sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from ctctsync.sandbox import AccountSpec, Sandbox
from ctctsync.tables import TABLES, tables_for

V2_TABLES = tables_for("v2")
"""The tables of the v2 path (a config without api_version reads v2)."""

CLI = [sys.executable, "-m", "ctctsync"]


def run_cli(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CTCTSYNC_")}
    full_env.update(env or {})
    full_env["COLUMNS"] = "200"
    return subprocess.run(
        [*CLI, *args],
        check=False,
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_config(path: Path, sb: Sandbox, tables: str = "") -> Path:
    cfg = path / "ctctsync.toml"
    cfg.write_text(
        f"""
integration = "cli_test"
history_start = 2001-01-01
state_url = "sqlite:///{path / 'state.db'}"

[source]
base_url = "{sb.base_url}"
qps_limit = 50.0

[warehouse]
destination = "duckdb"
path = "{path / 'wh.duckdb'}"
{tables}
""",
        encoding="utf-8",
    )
    return cfg


def secrets_env(sb: Sandbox) -> dict[str, str]:
    return {
        "CTCTSYNC_API_KEY": sb.credentials.api_key,
        "CTCTSYNC_ACCESS_TOKEN": sb.credentials.access_token,
    }


def test_discover_json_lists_every_table_and_column(tmp_path: Path) -> None:
    res = run_cli(["discover", "--json"], tmp_path)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert [n for n, t in out.items() if t["available"]] == list(V2_TABLES)
    for name, t in TABLES.items():  # tables only v3 fills: listed, with the reason
        if name not in V2_TABLES:
            assert out[name] == {"available": False, "spec_name": t.spec_name,
                                 "unavailable_reason": t.unavailable_reason("v2")}
    for name, t in V2_TABLES.items():
        assert list(out[name]["columns"]) == list(t.column_names)
        assert out[name]["replication"] == t.replication


def test_bad_config_is_a_clear_error_with_exit_code_2(tmp_path: Path) -> None:
    cfg = tmp_path / "ctctsync.toml"
    cfg.write_text('integration = "Bad Name!"\n[source]\nqps_limit = -1\n', encoding="utf-8")
    res = run_cli(
        ["sync", "-c", str(cfg)], tmp_path, env={"CTCTSYNC_ACCESS_TOKEN": "s3cr3t-token-value"}
    )
    assert res.returncode == 2
    assert "integration" in res.stderr
    assert "qps_limit" in res.stderr
    assert "s3cr3t-token-value" not in res.stdout + res.stderr


def test_unknown_table_option_is_rejected(tmp_path: Path) -> None:
    res = run_cli(["sync", "--table", "nope"], tmp_path)
    assert res.returncode == 2
    assert "nope" in res.stderr


def test_sync_state_and_check_against_the_sandbox(tmp_path: Path) -> None:
    spec = AccountSpec(seed=3, contacts=300, campaigns=4, activities_per_campaign=30)
    with Sandbox(spec, qps_limit=None, daily_limit=None) as sb:
        cfg = write_config(
            tmp_path, sb, tables='[tables]\ncontacts = ["id", "first_name"]\nevents = "*"\n'
        )
        env = secrets_env(sb)

        res = run_cli(["check", "-c", str(cfg)], tmp_path, env)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "OK" in res.stdout

        res = run_cli(["sync", "-c", str(cfg), "--json"], tmp_path, env)
        assert res.returncode == 0, res.stdout + res.stderr
        result = json.loads(res.stdout)
        assert result["status"] == "succeeded"
        assert set(result["tables"]) == {"contacts", "events"}
        assert result["tables"]["contacts"]["rows"] == len(sb.truth("contacts"))

        con = duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True)
        cols = [r[0] for r in con.execute(
            "select column_name from information_schema.columns "
            "where table_name = 'cli_test_contacts'"
        ).fetchall()]
        con.close()
        # Selected columns plus the always-kept cursor and our metadata columns; nothing else.
        assert {"id", "first_name", "modified_date"} <= set(cols)
        assert "last_name" not in cols

        res = run_cli(["state", "show", "-c", str(cfg), "--json"], tmp_path, env)
        assert res.returncode == 0, res.stderr
        assert "contacts" in json.loads(res.stdout)

        res = run_cli(["state", "reset", "-c", str(cfg), "--table", "contacts"], tmp_path, env)
        assert res.returncode == 0, res.stderr
        assert "Removed 1" in res.stdout

        sb.revoke_token(sb.credentials.access_token)
        res = run_cli(["sync", "-c", str(cfg)], tmp_path, env)
        assert res.returncode == 4, res.stdout + res.stderr
        assert "authoriz" in (res.stdout + res.stderr).lower()
        assert sb.credentials.access_token not in res.stdout + res.stderr
        assert sb.credentials.api_key not in res.stdout + res.stderr

        res = run_cli(["check", "-c", str(cfg)], tmp_path, env)
        assert res.returncode == 4, res.stdout + res.stderr
        assert "authoriz" in res.stderr.lower()


@pytest.mark.slow
@pytest.mark.parametrize("api", ["v3", "v2"])
def test_demo_no_serve_syncs_every_table(tmp_path: Path, api: str) -> None:
    # v3 by default; the legacy v2 path behind --api v2
    res = run_cli(["demo", "--no-serve", "--contacts", "500", *(["--api", api] * (api == "v2"))],
                  tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    con = duckdb.connect(str(tmp_path / "ctctsync-demo.duckdb"), read_only=True)
    for name in tables_for(api):  # type: ignore[arg-type]
        n = con.execute(f"select count(*) from constant_contact.demo_{name}").fetchone()
        assert n is not None
        assert n[0] > 0, name
    con.close()
    assert "API calls used" in res.stdout
