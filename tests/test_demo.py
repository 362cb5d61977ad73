"""`ctctsync demo` (serve mode): the sandbox account ends as an Active integration with a job."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctctsync.cli.demo import demo_config
from ctctsync.cli.demo_serve import (
    admin_password,
    connect_and_run_first_job,
    demo_settings,
    prepare_control_plane,
)
from ctctsync.control import services as svc
from ctctsync.control.models import Integration, Run
from ctctsync.sandbox import AccountSpec, Sandbox
from ctctsync.sync import run_sync
from ctctsync.tables import ApiVersion, tables_for


@pytest.mark.parametrize("api_version", ["v3", "v2"])
def test_demo_connects_the_sandbox_as_an_active_integration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api_version: ApiVersion
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = AccountSpec(seed=5, contacts=150, campaigns=4, activities_per_campaign=20)
    with Sandbox(spec, qps_limit=None, daily_limit=None) as sb:
        wh = tmp_path / "demo.duckdb"
        settings = demo_settings(sb, wh, port=8765)
        plane = prepare_control_plane(settings)
        try:
            creds = sb.credentials
            token = creds.v3_access_token if api_version == "v3" else creds.access_token
            cfg = demo_config(
                sb.base_url, creds.api_key, token, wh, tmp_path, api_version
            ).model_copy(update={"state_url": settings.resolved_database_url})
            first = run_sync(cfg, full_refresh=True)
            assert first.status == "succeeded", first.error

            password = admin_password(settings.data_dir)
            assert (settings.data_dir / "demo-admin-password").stat().st_mode & 0o077 == 0
            run_id = connect_and_run_first_job(plane, sb, cfg, password)
            assert plane.work_once(run_id=run_id) == run_id

            with plane.session() as db:
                run = db.get(Run, run_id)
                assert run is not None
                assert run.status == "succeeded", run.error
                integ = db.get(Integration, run.integration_id)
                assert integ is not None
                assert integ.state == "active"
                assert integ.api_version == api_version
                assert set(run.rows) == set(tables_for(api_version))
                assert svc.authenticate(db, "admin@example.com", password) is not None
                # The job continued from the command-line sync's bookmarks: contacts unchanged.
                assert run.rows.get("contacts", 0) == 0

            # Running the demo again reuses the integration and the password.
            assert admin_password(settings.data_dir) == password
            again = connect_and_run_first_job(plane, sb, cfg, password)
            assert again != run_id
        finally:
            plane.close()
