"""``ctctsync plan`` and ``ctctsync api-keys``: the day's API budget on the command line, over
a real control store (SQLite): the command functions and the typer app."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from ctctsync.api.ratelimit import fingerprint
from ctctsync.cli import control_commands as commands
from ctctsync.cli.app import app
from ctctsync.control import services as svc
from ctctsync.control.models import Integration, Run, User
from ctctsync.control.plane import ControlPlane
from ctctsync.control.schemas import IntegrationCreate
from ctctsync.control.settings import ControlSettings

SHARED_KEY = "shared-v2-api-key-0001"
KEY = fingerprint(SHARED_KEY)
LABEL = f"v2 key #{KEY[:6]}"
TABLES: dict[str, list[str] | None] = {"contacts": None, "contact_lists": None}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, cheap_password_hashing: None) -> None:
    for name in list(os.environ):
        if name.startswith("CTCTSYNC_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("COLUMNS", "250")  # rich wraps at the terminal's width


@pytest.fixture
def settings(tmp_path: Path) -> ControlSettings:
    return ControlSettings(data_dir=tmp_path / "data", cc_base_url="http://127.0.0.1:9")


def _integration(db: Session, user: User, name: str, contacts_calls: int) -> Integration:
    """An hourly v2 integration on the shared key whose incremental runs cost
    ``contacts_calls`` + 1 calls (three runs of history, days ago)."""
    integ = svc.create_integration(
        db, user, IntegrationCreate(name=name, tables=TABLES, api_version="v2", frequency_hours=1)
    )
    integ = svc.set_manual_credentials(db, integ, SHARED_KEY, "token", check_access=False)
    integ.activated_at = integ.created_at
    integ.state = "active"
    now = datetime.now(UTC)
    for i in range(3):
        finished = now - timedelta(days=3, hours=i)
        db.add(
            Run(
                integration_id=integ.id, trigger="schedule", status="succeeded",
                kind="incremental", key_fingerprint=KEY, full_refresh=[],
                created_at=finished, started_at=finished, finished_at=finished,
                api_calls=contacts_calls + 1,
                table_calls={"contacts": contacts_calls, "contact_lists": 1},
                rows={}, table_status={},
            )
        )
    db.commit()
    return integ


@pytest.fixture
def store(settings: ControlSettings) -> ControlSettings:
    """Two hourly integrations on one v2 key: ~400 and ~112 calls a run, 12,288 a day."""
    plane = ControlPlane(settings)
    try:
        with plane.session() as db:
            admin = svc.ensure_first_admin(db, "ops@example.com", "correct horse battery")
            assert admin is not None
            _integration(db, admin, "acme", 399)
            bravo = _integration(db, admin, "bravo", 111)
            now = datetime.now(UTC)
            db.add(  # calls spent today
                Run(
                    integration_id=bravo.id, trigger="manual", status="succeeded",
                    kind="incremental", key_fingerprint=KEY, full_refresh=[],
                    created_at=now, started_at=now, finished_at=now, api_calls=250,
                    table_calls={"contacts": 249, "contact_lists": 1}, rows={}, table_status={},
                )
            )
            db.commit()
    finally:
        plane.close()
    return settings


def test_plan_json(store: ControlSettings, capsys: pytest.CaptureFixture[str]) -> None:
    assert commands.plan(store, as_json=True) == 0
    plan = json.loads(capsys.readouterr().out)
    (key,) = plan["keys"]
    assert key["key"] == KEY and key["label"] == LABEL == "v2 key #cbc359"
    assert SHARED_KEY not in json.dumps(plan)
    assert (key["per_day"], key["per_day_is_default"], key["per_second"]) == (10000, True, 4.0)
    assert key["planned_per_day"] == 24 * 400 + 24 * 112 == 12_288
    assert key["used_today"] == 250 and not key["fits"]
    assert key["warning"].startswith("the hourly schedule needs ~12,288 calls a day of 10,000")
    acme, bravo = key["integrations"]
    assert (acme["name"], acme["estimate"]["calls"], acme["calls_per_day"]) == ("acme", 400, 9600)
    assert acme["estimate"]["basis"] == "median of the last 3 incremental runs"
    assert (bravo["estimate"]["calls"], bravo["used_today"]) == (112, 250)
    assert key["headroom"] == 10_000 - 250 - key["reserved_today"]
    assert key["reserved_runs"] == acme["runs_left_today"] + bravo["runs_left_today"]


def test_plan_text_warns_when_the_schedule_does_not_fit(
    store: ControlSettings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # wide enough that no cell wraps, whatever terminal (or none) the test runs under
    monkeypatch.setattr(commands, "console", Console(width=240))
    assert commands.plan(store) == 0
    out = capsys.readouterr().out
    assert f"Warning ({LABEL}): the hourly schedule needs ~12,288 calls a day of 10,000" in out
    for words in ("acme", "9,600", "2,688", "median of the last 3 incremental runs", "10,000"):
        assert words in out, words
    # a partner key's limits make it fit: no warning
    assert commands.api_keys_set_limits(KEY[:6], partner=True, settings=store) == 0
    assert "250,000" in capsys.readouterr().out
    assert commands.plan(store) == 0
    assert "Warning" not in capsys.readouterr().out


def test_api_keys_list_and_set_limits(
    store: ControlSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert commands.api_keys_list(store, as_json=True) == 0
    (key,) = json.loads(capsys.readouterr().out)
    assert key["key"] == KEY and key["per_second_is_default"]
    assert commands.api_keys_set_limits(KEY, per_day=20_000, settings=store) == 0
    capsys.readouterr()
    assert commands.api_keys_set_limits(KEY, per_second=2.5, settings=store) == 0
    capsys.readouterr()
    assert commands.api_keys_list(store, as_json=True) == 0
    (key,) = json.loads(capsys.readouterr().out)
    assert (key["per_second"], key["per_day"]) == (2.5, 20_000)  # the first one stayed
    assert commands.api_keys_set_limits(KEY, per_day=0, settings=store) == 2
    assert "per_day" in capsys.readouterr().err
    assert commands.api_keys_set_limits("ffff", per_day=5, settings=store) == 2
    assert "No API key" in capsys.readouterr().err
    assert commands.api_keys_set_limits(KEY, default=True, settings=store) == 0
    capsys.readouterr()
    assert commands.api_keys_list(store, as_json=True) == 0
    (key,) = json.loads(capsys.readouterr().out)
    assert (key["per_second"], key["per_day"], key["per_day_is_default"]) == (4.0, 10_000, True)


def test_plan_is_a_command_of_the_cli(
    store: ControlSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CTCTSYNC_DATA_DIR", str(store.data_dir))
    monkeypatch.setenv("CTCTSYNC_CC_BASE_URL", "http://127.0.0.1:9")
    done = CliRunner().invoke(app, ["plan", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["keys"][0]["planned_per_day"] == 12_288
    listed = CliRunner().invoke(app, ["api-keys", "list", "--json"])
    assert listed.exit_code == 0 and json.loads(listed.stdout)[0]["key"] == KEY


def test_integrations_run_says_when_the_quota_will_not_cover_it(
    store: ControlSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    # 12,288 planned a day on 10,000: nothing but the scheduled runs fits
    assert commands.integrations_run("acme", settings=store) == 3
    err = capsys.readouterr().err
    assert "Not started: next run at 00:00 UTC: the scheduled runs alone need ~12,288" in err
    assert "--when-quota-allows" in err
    assert commands.runs_list("acme", settings=store, as_json=True) == 0
    assert [r["trigger"] for r in json.loads(capsys.readouterr().out)] == ["schedule"] * 3
    # asked to, it queues the run; the guard defers it rather than starting it
    code = commands.integrations_run("acme", wait=True, when_quota_allows=True, settings=store)
    assert code == 3
    assert "deferred: next run at 00:00 UTC" in capsys.readouterr().err
