"""The Singer tap (``ctctsync tap``) against the sandbox over HTTP: its catalog, a message
stream that a Singer validator written from the spec accepts (tests/singer_check.py), table
and column selection, and resuming from an emitted STATE (after changes, and after a run that
stopped half-way) losing and repeating nothing. Tap -> real target -> the sandbox's truth is
tests/e2e/test_tap_target.py (slow lane)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from typer.testing import CliRunner

from ctctsync.cli import app
from ctctsync.sandbox import Sandbox
from ctctsync.sandbox.testing import v3_tokens_by_pkce
from ctctsync.singer import TapConfig, discover, run_tap, select
from ctctsync.tables import ApiVersion, tables_for
from ctctsync.token_store import SqlTokenVault
from singer_check import Checked, check_messages

ROOT = Path(__file__).resolve().parents[1]


def _config(sb: Sandbox, version: ApiVersion = "v2", **extra: Any) -> dict[str, Any]:
    creds = sb.credentials
    token = creds.access_token if version == "v2" else creds.v3_access_token
    return {"api_version": version, "api_key": creds.api_key, "access_token": token,
            "base_url": sb.base_url, "qps_limit": None, "daily_limit": None, **extra}


def _run(sb: Sandbox, catalog: dict[str, Any] | None = None, state: dict[str, Any] | None = None,
         version: ApiVersion = "v2") -> Checked:
    cfg = TapConfig.model_validate(_config(sb, version))
    out = io.BytesIO()
    run_tap(cfg, select(catalog or discover(version), version), state or {}, out,
            clock=sb.account.clock.now)
    return check_messages(out.getvalue())


def _by_key(checked: Checked, stream: str) -> dict[Any, dict[str, Any]]:
    keys = checked.schemas[stream]["key_properties"]
    return {tuple(r[k] for k in keys): r for r in checked.records[stream]}


def _merged(*runs: Checked) -> dict[str, dict[Any, dict[str, Any]]]:
    """What a target merging by key holds after the runs, in order."""
    out: dict[str, dict[Any, dict[str, Any]]] = {}
    for run in runs:
        for stream in run.records:
            out.setdefault(stream, {}).update(_by_key(run, stream))
    return out


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_discover_describes_every_table_with_schema_and_metadata(version: ApiVersion) -> None:
    catalog = discover(version)
    tables = tables_for(version)
    assert [s["tap_stream_id"] for s in catalog["streams"]] == list(tables)
    for stream in catalog["streams"]:
        table = tables[stream["stream"]]
        schema = stream["schema"]
        assert jsonschema_rs.meta.is_valid(schema)
        assert list(schema["properties"]) == list(table.column_names)
        top = next(m["metadata"] for m in stream["metadata"] if m["breadcrumb"] == [])
        assert top["selected"] is True and top["inclusion"] == "available"
        assert top["table-key-properties"] == list(table.primary_key) == stream["key_properties"]
        incremental = table.replication == "incremental" and not table.read_whole
        assert top["replication-method"] == ("INCREMENTAL" if incremental else "FULL_TABLE")
        if incremental and table.cursor_column:
            assert top["replication-key"] == table.cursor_column in schema["properties"]
        else:
            assert "replication-key" not in top
        fields = {tuple(m["breadcrumb"]): m["metadata"] for m in stream["metadata"]}
        for col in table.column_names:
            inclusion = fields[("properties", col)]["inclusion"]
            assert inclusion == ("automatic" if col in table.required_columns else "available")
        for key in table.primary_key:  # a key is never null
            assert "null" not in schema["properties"][key]["type"]


def test_cli_discover_prints_only_the_catalog(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(_config(sandbox, "v3")))
    result = CliRunner().invoke(app, ["tap", "--config", str(cfg), "--discover"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == discover("v3")


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_a_run_is_a_valid_singer_stream_of_every_table(sandbox: Sandbox,
                                                       version: ApiVersion) -> None:
    run = _run(sandbox, version=version)
    tables = tables_for(version)
    assert list(run.schemas) == list(tables)
    # a STATE before each stream (currently_syncing) and one at the end
    assert run.order.count("STATE") == len(tables) + 1 and run.order[-1] == "STATE"
    assert run.last_state["currently_syncing"] is None
    marks = run.last_state["bookmarks"]
    incremental = [n for n, t in tables.items()
                   if t.replication == "incremental" and not t.read_whole]
    assert sorted(marks) == sorted(incremental)
    contacts = _by_key(run, "contacts")
    assert len(contacts) == len(run.records["contacts"])  # no key sent twice
    if version == "v2":
        assert len(contacts) == len(sandbox.truth("contacts"))
    for name in tables:
        assert run.records[name], f"{name}: no records"


def test_resuming_from_the_last_state_sends_only_the_changes(sandbox: Sandbox) -> None:
    first = _run(sandbox)
    acct = sandbox.account
    acct.advance(60)
    changed = set(acct.update_contacts(7)) | set(acct.add_contacts(3))
    new_campaign = acct.send_campaign(activities=12)

    second = _run(sandbox, state=first.last_state)
    assert {r["id"] for r in second.records["contacts"]} == changed
    fresh = _run(sandbox)  # what a first run sees now: the target must hold exactly this
    merged = _merged(first, second)
    for stream, rows in _by_key_all(fresh).items():
        assert _without_end_date(merged[stream]) == _without_end_date(rows), stream
    # key-based streams repeat nothing that did not change
    for stream in second.last_state["bookmarks"]:
        before = _by_key(first, stream)
        resent = [k for k, r in _by_key(second, stream).items() if before.get(k) == r]
        assert not resent, f"{stream}: {len(resent)} unchanged records sent again"
    tracking = {r["campaign_id"] for r in second.records["contact_tracking"]}
    assert tracking == {new_campaign}
    assert second.last_state["bookmarks"]["contacts"]["last_run_date"] > \
        first.last_state["bookmarks"]["contacts"]["last_run_date"]


def _without_end_date(rows: dict[Any, dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    # email_campaign_summary's end_date is the moment its counts were read
    return {k: {c: v for c, v in r.items() if c != "end_date"} for k, r in rows.items()}


def _by_key_all(run: Checked) -> dict[str, dict[Any, dict[str, Any]]]:
    return {stream: _by_key(run, stream) for stream in run.records}


class _CutOff(io.BytesIO):
    """A pipe the target closes once it has read ``limit`` RECORDs of ``stream``."""

    def __init__(self, stream: str, limit: int) -> None:
        super().__init__()
        self.stream, self.limit, self.seen = stream, limit, 0

    def write(self, data: Any) -> int:
        if b'"type":"RECORD"' in data and f'"stream":"{self.stream}"'.encode() in data:
            self.seen += 1
            if self.seen > self.limit:
                raise BrokenPipeError
        return super().write(data)


def test_a_run_stopped_half_way_resumes_from_its_last_state(sandbox: Sandbox) -> None:
    cfg = TapConfig.model_validate(_config(sandbox))
    pipe = _CutOff("contact_tracking", 40)
    with pytest.raises(BrokenPipeError):
        run_tap(cfg, select(discover("v2"), "v2"), {}, pipe, clock=sandbox.account.clock.now)
    cut = check_messages(pipe.getvalue())
    assert cut.last_state["currently_syncing"] == "contact_tracking"
    assert set(cut.last_state["bookmarks"]) == {"contacts", "email_campaigns"}

    resumed = _run(sandbox, state=cut.last_state)
    assert next(iter(resumed.schemas)) == "contact_tracking"  # the interrupted stream first
    assert not resumed.records["contacts"] and not resumed.records["email_campaigns"]
    fresh = _run(sandbox)
    merged = _merged(cut, resumed)
    for stream, rows in _by_key_all(fresh).items():
        if stream != "email_campaign_summary":
            assert merged[stream] == rows, stream


def test_catalog_selects_streams_fields_and_full_table(sandbox: Sandbox) -> None:
    catalog = discover("v2")
    for stream in catalog["streams"]:
        top = next(m for m in stream["metadata"] if m["breadcrumb"] == [])
        if stream["stream"] not in ("contacts", "email_campaigns"):
            top["metadata"]["selected"] = False
        if stream["stream"] == "email_campaigns":
            top["metadata"]["replication-method"] = "FULL_TABLE"
        if stream["stream"] == "contacts":
            for entry in stream["metadata"]:
                if entry["breadcrumb"] and entry["breadcrumb"][1] not in ("first_name", "id"):
                    entry["metadata"]["selected"] = False
    run = _run(sandbox, catalog)
    assert list(run.schemas) == ["contacts", "email_campaigns"]
    # the key and the cursor are always sent
    assert list(run.schemas["contacts"]["schema"]["properties"]) == \
        ["id", "first_name", "modified_date"]
    assert all(set(r) == {"id", "first_name", "modified_date"}
               for r in run.records["contacts"])
    # FULL_TABLE: no bookmark kept, no bookmark property, and read whole again next time
    assert set(run.last_state["bookmarks"]) == {"contacts"}
    assert "bookmark_properties" not in run.schemas["email_campaigns"]
    again = _run(sandbox, catalog, run.last_state)
    assert len(again.records["email_campaigns"]) == len(run.records["email_campaigns"])
    assert not again.records["contacts"]

    # selecting one more column re-reads the key-based stream whole (a backfill)
    for stream in catalog["streams"]:
        for entry in stream["metadata"]:
            if stream["stream"] == "contacts" and entry["breadcrumb"] == ["properties",
                                                                          "last_name"]:
                entry["metadata"]["selected"] = True
    grown = _run(sandbox, catalog, again.last_state)
    assert len(grown.records["contacts"]) == len(run.records["contacts"])
    assert "last_name" in grown.records["contacts"][0]


def _invoke(args: list[str]) -> Any:
    return CliRunner().invoke(app, ["tap", *args])


def test_bad_config_catalog_and_state_are_one_line_without_secrets(
        sandbox: Sandbox, tmp_path: Path) -> None:
    secret = "sk-very-secret-token-value"
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({**_config(sandbox), "acess_token": secret}))
    result = _invoke(["--config", str(cfg)])
    assert result.exit_code == 2
    assert "acess_token" in result.stderr and secret not in result.output + result.stderr
    assert result.stdout == ""

    cfg.write_text(json.dumps({**_config(sandbox), "access_token": ""}))
    result = _invoke(["--config", str(cfg)])
    assert result.exit_code == 2 and "access_token must not be empty" in result.stderr

    assert _invoke(["--config", str(tmp_path / "none.json")]).exit_code == 2

    cfg.write_text(json.dumps(_config(sandbox)))
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps({"streams": [{"tap_stream_id": "segments", "schema": {},
                                                "metadata": [{"breadcrumb": [],
                                                              "metadata": {"selected": True}}]}]}))
    result = _invoke(["--config", str(cfg), "--catalog", str(catalog)])
    assert result.exit_code == 2 and "'segments' is not a table of API v2" in result.stderr
    assert result.stdout == ""

    state = tmp_path / "state.json"
    state.write_text(json.dumps({"bookmarks": {"contacts": {"last_run_date": "yesterday"}}}))
    result = _invoke(["--config", str(cfg), "--state", str(state)])
    assert result.exit_code == 2 and "not an ISO-8601 instant" in result.stderr


def test_a_refused_token_exits_4_after_nothing_but_messages(sandbox: Sandbox,
                                                           tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({**_config(sandbox, "v3"), "access_token": "not-a-token"}))
    result = _invoke(["--config", str(cfg)])
    assert result.exit_code == 4, result.output
    assert "not-a-token" not in result.stderr
    check_messages(result.stdout_bytes)  # the STATE sent before the failure, nothing else


def test_the_process_writes_only_messages_on_stdout_and_logs_on_stderr(
        sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(_config(sandbox)))
    # --verbose: every library's debug log is on, and still none of it reaches stdout
    proc = subprocess.run([sys.executable, "-m", "ctctsync", "--verbose", "tap", "--config",
                           str(cfg)], capture_output=True, timeout=120, check=False,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    run = check_messages(proc.stdout)
    assert len(run.records["contacts"]) == len(sandbox.truth("contacts"))
    log = proc.stderr.decode()
    assert f"contacts: {len(run.records['contacts'])} records" in log
    assert sandbox.credentials.access_token not in log



def test_v3_refresh_token_is_kept_rotated_in_the_token_store(sandbox: Sandbox,
                                                             tmp_path: Path) -> None:
    tokens = v3_tokens_by_pkce(sandbox)
    store = f"sqlite:///{tmp_path / 'tokens.db'}"
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({
        "api_key": sandbox.credentials.api_key, "refresh_token": tokens["refresh_token"],
        "token_store": store, "base_url": sandbox.base_url, "qps_limit": None}))
    catalog = discover("v3")
    for stream in catalog["streams"]:
        stream["metadata"][0]["metadata"]["selected"] = stream["stream"] == "contact_lists"
    catalog_file = tmp_path / "catalog.json"
    catalog_file.write_text(json.dumps(catalog))
    stored: list[str] = []
    for run_number in range(2):
        if run_number:
            # a day later the stored access token has expired: the API refuses it, and the
            # tap renews it with the refresh token the first run stored (the configured one
            # was rotated away by the first refresh, and a used one is refused)
            sandbox.advance(25 * 3600)
        result = _invoke(["--config", str(cfg), "--catalog", str(catalog_file)])
        assert result.exit_code == 0, result.stderr[-2000:]
        run = check_messages(result.stdout_bytes)
        assert len(run.records["contact_lists"]) == 5
        assert tokens["refresh_token"] not in result.stdout + result.stderr
        stored.append(_stored_refresh_token(store, sandbox.credentials.api_key))
    assert len(set(stored)) == 2 and tokens["refresh_token"] not in stored


def _stored_refresh_token(store: str, client_id: str) -> str:
    vault = SqlTokenVault(store, "constant_contact", client_id=client_id)
    try:
        record = vault.load()
        assert record is not None and record.needs_reauth is None
        return record.tokens.refresh_token
    finally:
        vault.close()
