"""``ctctsync tap | target-jsonl``: the tap piped into a real Singer target (in its own
venv) equals the sandbox's truth, v2 and v3; resumed from the STATE the target echoed after
changes in the sandbox, it sends only the changes and the merged output still equals the
truth. The same into MeltanoLabs' target-postgres (upserting by the key properties) on the
test PostgreSQL server. And singer-tools' ``singer-check-tap`` accepts the tap's output."""

from __future__ import annotations

import json
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row
from singer_tools import (
    ROOT,
    SINGER_TOOLS,
    TARGET_JSONL,
    TARGET_POSTGRES,
    clean_env,
    jsonl,
    last_state,
    merged,
    pipe,
    tap_command,
    tool_venv,
)
from sync_truth import assert_records_match_truth
from v3_truth import V3Truth, assert_v3_records_match

from ctctsync.sandbox import Sandbox
from ctctsync.tables import ApiVersion, tables_for


@pytest.fixture(scope="module")
def target_jsonl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tool_venv(tmp_path_factory.mktemp("venvs") / "target-jsonl", TARGET_JSONL)


def _write_config(sb: Sandbox, where: Path, version: ApiVersion) -> Path:
    creds = sb.credentials
    token = creds.access_token if version == "v2" else creds.v3_access_token
    path = where / f"tap-{version}.json"
    path.write_text(json.dumps({"api_version": version, "api_key": creds.api_key,
                                "access_token": token, "base_url": sb.base_url,
                                "qps_limit": None, "daily_limit": None}))
    return path


def _target(bin_dir: Path, where: Path) -> list[str]:
    config = where / "target.json"
    config.write_text(json.dumps({"destination_path": str(where / "out"),
                                  "do_timestamp_file": False}))
    return [str(bin_dir / "target-jsonl"), "--config", str(config)]


def test_tap_into_target_jsonl_equals_the_truth_and_resumes_with_only_changes(
        sandbox: Sandbox, target_jsonl: Path, tmp_path: Path) -> None:
    cfg = _write_config(sandbox, tmp_path, "v2")
    target = _target(target_jsonl, tmp_path)
    out = tmp_path / "out"
    tables = tables_for("v2")

    echoed, _, _ = pipe(tap_command(cfg), target, tmp_path)
    state = last_state(echoed)
    first = {name: jsonl(out / f"{name}.jsonl") for name in tables}
    for name, table in tables.items():
        ignore = ("end_date",) if name == "email_campaign_summary" else ()
        n = assert_records_match_truth(sandbox, name, merged(table, first[name]), ignore=ignore)
        assert n == len(first[name]), f"{name}: a key sent twice in one run"

    acct = sandbox.account
    acct.advance(60)
    changed = set(acct.update_contacts(6)) | set(acct.add_contacts(2))
    acct.set_contact_status(3, "OPTOUT")
    changed.add(3)
    new_campaign = acct.send_campaign(activities=10)
    acct.add_list("Resumed list")

    state_file = tmp_path / "state.json"
    state_file.write_text(json.dumps(state))
    echoed, _, _ = pipe(tap_command(cfg, "--state", str(state_file)), target, tmp_path)
    assert last_state(echoed)["bookmarks"]["contacts"]["last_run_date"] > \
        state["bookmarks"]["contacts"]["last_run_date"]
    both = {name: jsonl(out / f"{name}.jsonl") for name in tables}
    second = {name: both[name][len(first[name]):] for name in tables}
    # only the changes: the changed contacts, the new campaign's activities
    assert {r["id"] for r in second["contacts"]} == changed
    assert {r["campaign_id"] for r in second["contact_tracking"]} == {new_campaign}
    assert len(second["contact_lists"]) == len(sandbox.truth("contact_lists"))  # read whole
    for name, table in tables.items():
        ignore = ("end_date",) if name == "email_campaign_summary" else ()
        assert_records_match_truth(sandbox, name, merged(table, both[name]), ignore=ignore)


def test_v3_tap_into_target_jsonl_equals_the_v3_truth(
        sandbox: Sandbox, target_jsonl: Path, tmp_path: Path) -> None:
    cfg = _write_config(sandbox, tmp_path, "v3")
    pipe(tap_command(cfg), _target(target_jsonl, tmp_path), tmp_path)
    truth = V3Truth(sandbox)
    for name, table in tables_for("v3").items():
        records = jsonl(tmp_path / "out" / f"{name}.jsonl")
        assert assert_v3_records_match(truth, name, merged(table, records)) == len(records)


def _postgres_records(dsn: str, schema: str, table: str) -> list[dict[str, Any]]:
    with psycopg.connect(dsn) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql.SQL("SELECT * FROM {}.{}").format(sql.Identifier(schema),
                                                         sql.Identifier(table)))
        rows = cur.fetchall()
    for row in rows:  # the target stores date-times as UTC without a zone
        for name, value in row.items():
            if isinstance(value, datetime) and value.tzinfo is None:
                row[name] = value.replace(tzinfo=UTC)
    return rows


@pytest.mark.postgres
def test_tap_into_target_postgres_equals_the_truth_and_upserts_the_changes(
        sandbox: Sandbox, pg_dsn: str, tmp_path: Path,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    bin_dir = tool_venv(tmp_path_factory.mktemp("venvs") / "target-postgres", TARGET_POSTGRES)
    schema = f"tap_{uuid.uuid4().hex[:10]}"
    config = tmp_path / "target-postgres.json"
    config.write_text(json.dumps({
        "sqlalchemy_url": pg_dsn.replace("postgresql://", "postgresql+psycopg://", 1),
        "default_target_schema": schema, "load_method": "upsert",
        # no ACTIVATE_VERSION messages are sent (docs/integrations.md), no _sdc columns
        "add_record_metadata": False, "activate_version": False}))
    target = [str(bin_dir / "target-postgres"), "--config", str(config)]
    cfg = _write_config(sandbox, tmp_path, "v2")
    tables = tables_for("v2")
    try:
        echoed, _, _ = pipe(tap_command(cfg), target, tmp_path)
        for name in tables:
            ignore = ("end_date",) if name == "email_campaign_summary" else ()
            assert_records_match_truth(sandbox, name, _postgres_records(pg_dsn, schema, name),
                                       ignore=ignore)
        acct = sandbox.account
        acct.advance(60)
        acct.update_contacts(5)
        acct.add_contacts(2)
        acct.send_campaign(activities=8)
        state_file = tmp_path / "state.json"
        state_file.write_text(json.dumps(last_state(echoed)))
        pipe(tap_command(cfg, "--state", str(state_file)), target, tmp_path)
        for name in tables:
            ignore = ("end_date",) if name == "email_campaign_summary" else ()
            # records_by_key fails on a key stored twice: the changes were upserted
            assert_records_match_truth(sandbox, name, _postgres_records(pg_dsn, schema, name),
                                       ignore=ignore)
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(schema)))


def _singer_check(tools: Path, messages: bytes, cwd: Path) -> str:
    check = subprocess.run([str(tools / "singer-check-tap")], input=messages,
                           capture_output=True, timeout=300, check=False, cwd=cwd)
    out = check.stdout.decode()
    assert check.returncode == 0, out[-3000:] + check.stderr.decode()[-3000:]
    assert "The output is valid." in out, out[-2000:]
    return out


def test_singer_check_tap_accepts_the_output_and_the_run_from_its_state(
        sandbox: Sandbox, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    tools = tool_venv(tmp_path_factory.mktemp("venvs") / "singer-tools", SINGER_TOOLS)
    # singer-check-tap's own --tap mode does the same (a run, then one with its last state)
    # but reads the tap on a thread it never joins: on a loaded machine it checked nothing
    # ('NoneType' object has no attribute 'num_messages'). Its stdin mode reads in order.
    env = clean_env(PYTHONPATH=str(ROOT / "src"))
    for version in ("v2", "v3"):
        cfg = _write_config(sandbox, tmp_path, version)
        first = subprocess.run(tap_command(cfg), capture_output=True, timeout=300, check=True,
                               env=env, cwd=tmp_path).stdout
        summary = _singer_check(tools, first, tmp_path)
        assert f"{len(tables_for(version))} streams" in summary
        state = [json.loads(line)["value"] for line in first.splitlines()
                 if line.startswith(b'{"type":"STATE"')][-1]
        state_file = tmp_path / f"state-{version}.json"
        state_file.write_text(json.dumps(state))
        again = subprocess.run(tap_command(cfg, "--state", str(state_file)),
                               capture_output=True, timeout=300, check=True, env=env,
                               cwd=tmp_path).stdout
        _singer_check(tools, again, tmp_path)
