"""The CLI command functions over a real store (and the sandbox for ``run --wait``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctctsync.cli import control_commands as commands
from ctctsync.control.settings import ControlSettings
from ctctsync.sandbox import Sandbox

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
    assert "create-admin" in capsys.readouterr().err
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
