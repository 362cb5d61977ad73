"""`ctctsync sync` on API v3, run as a process against the sandbox: the refresh token is
used, rotated and kept in the state store; a bare access token works alone; nothing to sign
in with is exit 4 before any data call."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import httpx

from ctctsync.sandbox import AccountSpec, Sandbox

SCOPES = ("account_read", "contact_data", "campaign_data", "offline_access")


def run_cli(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CTCTSYNC_")}
    full_env.update(env, COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "ctctsync", *args], check=False, cwd=cwd,
                          env=full_env, capture_output=True, text=True, timeout=240)


def _config(path: Path, sb: Sandbox) -> Path:
    cfg = path / "ctctsync.toml"
    cfg.write_text(
        f"""
integration = "v3cli"
history_start = 2001-01-01
state_url = "sqlite:///{path / 'state.db'}"

[source]
api_version = "v3"
base_url = "{sb.base_url}"
qps_limit = 50.0

[warehouse]
destination = "duckdb"
path = "{path / 'wh.duckdb'}"

[tables]
contacts = "*"
contact_lists = "*"
contact_tags = "*"
""",
        encoding="utf-8",
    )
    return cfg


def _rows(path: Path, table: str) -> int:
    con = duckdb.connect(str(path / "wh.duckdb"), read_only=True)
    try:
        row = con.execute(f"select count(*) from constant_contact.v3cli_{table}").fetchone()
    finally:
        con.close()
    assert row is not None
    return int(row[0])


def test_v3_sync_refreshes_and_keeps_the_rotated_token(tmp_path: Path) -> None:
    spec = AccountSpec(seed=41, contacts=120, campaigns=3, activities_per_campaign=10)
    with Sandbox(spec, qps_limit=None, daily_limit=None) as sb:
        cfg = _config(tmp_path, sb)
        grant = sb.v3_tokens.issue_tokens(SCOPES)
        assert grant.refresh_token is not None
        env = {"CTCTSYNC_API_KEY": sb.credentials.api_key,
               "CTCTSYNC_CLIENT_SECRET": sb.credentials.client_secret,
               "CTCTSYNC_REFRESH_TOKEN": grant.refresh_token}
        first = run_cli(["sync", "-c", str(cfg)], tmp_path, env)
        assert first.returncode == 0, first.stdout + first.stderr
        assert _rows(tmp_path, "contacts") == 120
        tags = httpx.get(f"{sb.v3_url}/contact_tags", params={"limit": 500}, timeout=10,
                         headers={"Authorization": f"Bearer {sb.credentials.v3_access_token}"})
        assert _rows(tmp_path, "contact_tags") == len(tags.json()["tags"]) > 0
        # the run refreshed (it had no access token): the variable's refresh token is spent.
        # A day later the access token has expired, so the second run must refresh again,
        # which works only with the rotated refresh token the state store kept
        sb.advance(25 * 3600)
        second = run_cli(["sync", "-c", str(cfg)], tmp_path, env)
        assert second.returncode == 0, second.stdout + second.stderr
        assert grant.refresh_token not in first.stdout + first.stderr + second.stderr


def test_v3_sync_with_a_bare_access_token_and_without_anything(tmp_path: Path) -> None:
    spec = AccountSpec(seed=42, contacts=40, campaigns=2, activities_per_campaign=5)
    with Sandbox(spec, qps_limit=None, daily_limit=None) as sb:
        cfg = _config(tmp_path, sb)
        env = {"CTCTSYNC_API_KEY": sb.credentials.api_key}
        nothing = run_cli(["sync", "-c", str(cfg)], tmp_path, env)
        assert nothing.returncode == 4, nothing.stdout + nothing.stderr
        assert "ctctsync auth login" in nothing.stderr
        assert sb.counters.snapshot()["total"] == 0  # refused before any call

        env["CTCTSYNC_ACCESS_TOKEN"] = sb.credentials.v3_access_token
        bare = run_cli(["sync", "-c", str(cfg)], tmp_path, env)
        assert bare.returncode == 0, bare.stdout + bare.stderr
        assert _rows(tmp_path, "contacts") == 40
