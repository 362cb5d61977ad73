"""Real payloads vary (issue 8 §1): the SDKs' recorded v2 bodies, replayed over loopback HTTP,
synced end to end into a real warehouse.

The recorded bodies differ from the sandbox's: the Ruby trash files carry ``type`` for
``file_type``; old contacts carry ``department_name``, ``action_by`` (mapped) and
``source_is_url`` (not in the registry: schema drift); old lists carry ``opt_in_default``.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from ctctsync.config import SyncConfig, WarehouseConfig
from ctctsync.sandbox import Sandbox
from ctctsync.state import StateStore
from ctctsync.sync import run_sync
from ctctsync.warehouse import read_table
from e2e.conftest import ConfigFactory

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "fixtures"
if not FIXTURES.is_dir():
    pytest.skip(f"reference fixtures not found at {FIXTURES}", allow_module_level=True)

TABLES = ("contacts", "contact_lists", "trash_files")


def _fixture(name: str) -> Any:
    return orjson.loads((FIXTURES / f"{name}.json").read_bytes())


def _bodies() -> dict[str, bytes]:
    """Path (with the query, for a next page) -> the recorded body served there."""
    first = _fixture("GET_v2_contacts__php-sdk")
    # the recorded next page: one contact as GET /v2/contacts/{id} records it (php), the
    # one recorded shape that carries source_is_url
    page2 = {"meta": {"pagination": {}}, "results": [_fixture("GET_v2_contacts_ID__php-sdk")]}
    return {
        "/v2/contacts": orjson.dumps(first),
        first["meta"]["pagination"]["next_link"]: orjson.dumps(page2),
        "/v2/lists": orjson.dumps(_fixture("GET_v2_lists__php-sdk")),
        "/v2/library/folders/trash/files": orjson.dumps(
            _fixture("GET_v2_library_folders_trash_files__ruby-sdk")
        ),
    }


@pytest.fixture(scope="module")
def replay() -> Iterator[str]:
    """A loopback HTTP server answering each recorded path with its body (base URL)."""
    bodies = _bodies()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = dict(p.split("=", 1) for p in url.query.split("&") if "=" in p)
            key = f"{url.path}?next={query['next']}" if "next" in query else url.path
            body = bodies.get(key)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/json")
            payload = body if body is not None else b'[{"error_key":"http.status.not_found"}]'
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _config(base_url: str, wcfg: WarehouseConfig, tmp_path: Path, **over: Any) -> SyncConfig:
    raw: dict[str, Any] = {
        "integration": "rec",
        "source": {
            "base_url": base_url,
            "api_key": f"replay-{uuid.uuid4().hex}",  # a limiter of its own
            "access_token": "replay-token",
            "qps_limit": None,
            "daily_limit": None,
            "max_retries": 1,
        },
        "warehouse": wcfg.model_dump(),
        "tables": dict.fromkeys(TABLES),
        "state_url": f"sqlite:///{tmp_path / f'state-{uuid.uuid4().hex[:6]}.db'}",
    }
    raw.update(over)
    return SyncConfig.model_validate(raw)


def _run(cfg: SyncConfig, caplog: pytest.LogCaptureFixture) -> list[str]:
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ctctsync.sync"):
        result = run_sync(cfg)
    assert result.status == "succeeded", result.error
    return [r.getMessage() for r in caplog.records if "new field available" in r.getMessage()]


def _rows(cfg: SyncConfig, table: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = read_table(cfg.warehouse, cfg.integration, table).to_pylist()
    return rows


def test_recorded_payloads_load_every_mapped_field_and_report_the_rest(
    replay: str, any_warehouse: WarehouseConfig, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = _config(replay, any_warehouse, tmp_path)
    lines = _run(cfg, caplog)
    # reported once for the table, though two pages... and only the unknown field
    assert lines == [
        "new field available: contacts.source_is_url (not loaded: this integration ignores "
        "new fields)"
    ]
    found = StateStore(cfg.state_url).discovered("rec")
    assert [f.label for f in found] == ["contacts.source_is_url"]

    contacts = {r["id"]: r for r in _rows(cfg, "contacts")}
    assert set(contacts) == {230, 231, 238}
    assert contacts[230]["action_by"] == "ACTION_BY_VISITOR"
    assert "source_is_url" not in contacts[238]
    lists = _rows(cfg, "contact_lists")
    assert {r["opt_in_default"] for r in lists} == {False}
    trash = {r["id"]: r["file_type"] for r in _rows(cfg, "trash_files")}
    assert trash == {"9": "PDF", "7": "JPG", "6": "JPG", "5": "JPG", "4": "JPG"}

    # the next run reports it again (once), and remembers when it was last seen
    assert len(_run(cfg, caplog)) == 1
    again = StateStore(cfg.state_url).discovered("rec")
    assert again[0].first_seen == found[0].first_seen
    assert again[0].last_seen >= found[0].last_seen


def test_add_policy_adds_the_new_field_as_a_column(
    replay: str, any_warehouse: WarehouseConfig, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = _config(replay, any_warehouse, tmp_path, new_columns="add")
    lines = _run(cfg, caplog)
    assert lines == ["new field available: contacts.source_is_url (added as column source_is_url)"]
    contacts = {r["id"]: r for r in _rows(cfg, "contacts")}
    # the field arrived on the second page: the first page's rows hold NULL there
    assert contacts[238]["source_is_url"] == "false"
    assert contacts[230]["source_is_url"] is None
    # a second (merge) run keeps the column and its values
    _run(cfg, caplog)
    assert {r["id"]: r["source_is_url"] for r in _rows(cfg, "contacts")}[238] == "false"


def test_discover_shows_the_new_field(
    replay: str, duckdb_warehouse: WarehouseConfig, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from typer.testing import CliRunner

    from ctctsync.cli.app import app

    cfg = _config(replay, duckdb_warehouse, tmp_path)
    _run(cfg, caplog)
    path = tmp_path / "ctctsync.toml"
    state_url = cfg.state_url
    path.write_text(
        f'integration = "rec"\nstate_url = "{state_url}"\n'
        f'[warehouse]\ndestination = "duckdb"\npath = "{duckdb_warehouse.path}"\n'
        f'dataset = "{duckdb_warehouse.dataset}"\n',
        encoding="utf-8",
    )
    out = CliRunner().invoke(app, ["discover", "--config", str(path)])
    assert out.exit_code == 0, out.output
    assert "new field available" in out.output and "source_is_url" in out.output
    as_json = CliRunner().invoke(app, ["discover", "--config", str(path), "--json"])
    data = orjson.loads(as_json.output)
    assert data["contacts"]["new_fields"] == ["source_is_url"]


def test_the_sandbox_sends_no_field_the_registry_does_not_know(
    sandbox: Sandbox, duckdb_warehouse: WarehouseConfig, make_config: ConfigFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every table, every field the sandbox serves: no drift reported on a clean account."""
    cfg = make_config(sandbox, duckdb_warehouse)
    assert _run(cfg, caplog) == []
    assert StateStore(cfg.state_url).discovered(cfg.integration) == []
