"""The CLI command functions over a real store (and the sandbox for ``run --wait``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctctsync.cli import control_commands as commands
from ctctsync.control.settings import ControlSettings
from ctctsync.sandbox import Sandbox
from ctctsync.tables import tables_for

from .conftest import PASSWORD, make_settings


@pytest.fixture
def cli_settings(tmp_path: Path) -> ControlSettings:
    return make_settings(tmp_path)


def _json(capsys: pytest.CaptureFixture[str]) -> object:
    return json.loads(capsys.readouterr().out)


def test_needs_an_admin_first(
    cli_settings: ControlSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert commands.integrations_list(cli_settings) == commands.EXIT_USAGE
    assert "users create EMAIL --admin" in capsys.readouterr().err
    assert commands.users_create_admin("ops@example.com", "short", cli_settings) == 2
    assert "password" in capsys.readouterr().err
    assert commands.users_create_admin("ops@example.com", PASSWORD, cli_settings) == 0


def test_integration_commands(
    cli_settings: ControlSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    commands.users_create_admin("ops@example.com", PASSWORD, cli_settings)
    capsys.readouterr()
    code = commands.integrations_add(
        "acme",
        frequency_hours=6,
        history_start="2024-01-01",
        tables=["contacts:first_name,last_name", "events"],
        settings=cli_settings,
        as_json=True,
    )
    assert code == 0
    created = _json(capsys)
    assert isinstance(created, dict) and created["tables"]["events"] is None
    assert commands.integrations_add("Bad Name", settings=cli_settings) == 2
    assert "name" in capsys.readouterr().err
    assert commands.integrations_list(cli_settings, as_json=True) == 0
    assert [i["name"] for i in _json(capsys)] == ["acme"]  # type: ignore[union-attr,index]
    assert commands.integrations_show("acme", cli_settings) == 0
    assert "first_name" in capsys.readouterr().out
    assert commands.integrations_show("nope", cli_settings) == 2
    assert "No integration named" in capsys.readouterr().err
    assert commands.integrations_pause("acme", cli_settings) == 0
    assert commands.integrations_resume("acme", cli_settings) == 0
    assert "pending" in capsys.readouterr().out
    # No credentials yet: a run cannot be queued.
    assert commands.integrations_run("acme", settings=cli_settings) == 2
    assert "Authorize" in capsys.readouterr().err
    assert commands.integrations_delete("acme", settings=cli_settings) == 2
    assert commands.integrations_delete("acme", yes=True, settings=cli_settings) == 0
    assert "Deleted acme." in capsys.readouterr().out
    assert commands.runs_list(settings=cli_settings, as_json=True) == 0
    assert _json(capsys) == []


def test_add_chooses_the_api_version(
    cli_settings: ControlSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    commands.users_create_admin("ops@example.com", PASSWORD, cli_settings)
    capsys.readouterr()
    assert commands.integrations_add("modern", settings=cli_settings, as_json=True) == 0
    modern = _json(capsys)
    assert isinstance(modern, dict)
    assert modern["api_version"] == "v3" and set(modern["tables"]) == set(tables_for("v3"))
    code = commands.integrations_add("legacy", api_version="v2", settings=cli_settings)
    assert code == 0
    assert "API v2" in capsys.readouterr().out
    assert commands.integrations_show("legacy", cli_settings, as_json=True) == 0
    legacy = _json(capsys)
    assert isinstance(legacy, dict)
    assert legacy["api_version"] == "v2" and set(legacy["tables"]) == set(tables_for("v2"))
    # a table the chosen version cannot read is refused, and nothing is created
    code = commands.integrations_add(
        "odd", api_version="v2", tables=["segments"], settings=cli_settings
    )
    assert code == 2 and "segments" in capsys.readouterr().err
    # a key and token are a v2 credential: the (default) v3 integration becomes v2
    code = commands.integrations_add(
        "keyed", api_key="k", access_token="t", settings=cli_settings, as_json=True
    )
    assert code == 0
    keyed = _json(capsys)
    assert isinstance(keyed, dict) and keyed["api_version"] == "v2"
    assert commands.integrations_list(cli_settings, as_json=True) == 0
    listed = _json(capsys)
    assert isinstance(listed, list)
    assert [i["name"] for i in listed] == ["keyed", "legacy", "modern"]


def test_add_api_version_option(cli_settings: ControlSettings) -> None:
    """``--api-version`` on the command line: v2 or v3 (the default), nothing else."""
    from typer.testing import CliRunner

    from ctctsync.cli.app import app

    commands.users_create_admin("ops@example.com", PASSWORD, cli_settings)
    # the CLI reads the store of CTCTSYNC_DATA_DIR; no credentials from the environment
    env = {
        "CTCTSYNC_DATA_DIR": str(cli_settings.data_dir),
        "CTCTSYNC_API_KEY": None,
        "CTCTSYNC_ACCESS_TOKEN": None,
    }
    runner = CliRunner()
    for args in (["legacy", "--api-version", "v2"], ["modern"]):
        result = runner.invoke(app, ["integrations", "add", *args], env=env)
        assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["integrations", "add", "odd", "--api-version", "v4"], env=env)
    assert result.exit_code == 2 and "v4" in result.output
    result = runner.invoke(app, ["integrations", "list", "--json"], env=env)
    versions = {i["name"]: i["api_version"] for i in json.loads(result.stdout)}
    assert versions == {"legacy": "v2", "modern": "v3"}


def test_serve_refuses_public_bind_without_secret(
    cli_settings: ControlSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert commands.serve(cli_settings, host="0.0.0.0") == commands.EXIT_USAGE
    assert "CTCTSYNC_SECRET_KEY" in capsys.readouterr().err


@pytest.mark.slow
def test_run_wait_show_and_logs(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(tmp_path, cc_base_url=sandbox.base_url, cc_qps_limit=None)
    creds = sandbox.credentials
    commands.users_create_admin("ops@example.com", PASSWORD, settings)
    assert (
        commands.integrations_add(
            "acme",
            history_start="2000-01-01",
            tables=["contact_lists", "account_info"],
            api_key=creds.api_key,
            access_token=creds.access_token,
            settings=settings,
        )
        == 0
    )
    capsys.readouterr()
    assert commands.integrations_run("acme", wait=True, settings=settings) == 0
    out = capsys.readouterr().out
    assert "succeeded" in out
    assert commands.runs_list("acme", settings=settings, as_json=True) == 0
    (run,) = _json(capsys)  # type: ignore[misc]
    assert run["status"] == "succeeded" and run["rows"]["contact_lists"] == len(
        sandbox.truth("contact_lists")
    )
    assert commands.runs_show(run["id"][:8], settings=settings) == 0
    assert "contact_lists" in capsys.readouterr().out
    assert commands.runs_logs(run["id"][:8], follow=True, settings=settings) == 0
    logs = capsys.readouterr().out
    assert "contact_lists" in logs and creds.access_token not in logs
    assert commands.integrations_resync("acme", "contact_lists", settings=settings) == 0
    assert commands.runs_show("zzzz", settings=settings) == 2


def test_migrate_brings_the_store_to_head_once(
    cli_settings: ControlSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    from ctctsync.control.database import create_store_engine, current_revisions, head_revisions

    assert commands.migrate(cli_settings) == 0
    # the console wraps a long store path (a pytest tmp dir): compare the words
    assert "migrated from empty to" in " ".join(capsys.readouterr().out.split())
    engine = create_store_engine(cli_settings.resolved_database_url)
    try:
        assert current_revisions(engine) == head_revisions()
    finally:
        engine.dispose()
    assert commands.migrate(cli_settings) == 0  # the next one finds it there
    assert "already at" in " ".join(capsys.readouterr().out.split())


@pytest.mark.postgres
def test_migrate_creates_the_fleets_queue_tables(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import psycopg

    from ctctsync.control.fleet import job_conninfo

    settings = make_settings(tmp_path, database_url=pg_url, queue="procrastinate")
    assert commands.migrate(settings) == 0
    assert "created procrastinate's tables" in capsys.readouterr().out
    with psycopg.connect(job_conninfo(pg_url)) as conn:
        row = conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").fetchone()
    assert row == (True,)
