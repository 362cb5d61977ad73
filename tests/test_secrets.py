"""No secret ever appears in a log line, an error, a page, the store or a warehouse table.

One audit over the paths where secrets travel: a debug-logged CLI sync through faults and a
revoked token, the control plane's stored runs, logs and credentials, and its REST answers.
"""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import duckdb

from ctctsync.api.ratelimit import clear_registry
from ctctsync.control import services as svc
from ctctsync.control.plane import ControlPlane
from ctctsync.control.schemas import IntegrationCreate
from ctctsync.control.settings import ControlSettings
from ctctsync.errors import PROCESS_SECRETS, Redactor
from ctctsync.errors.redaction import IN_USE
from ctctsync.sandbox import AccountSpec, Sandbox
from ctctsync.web.api import create_api_app

with warnings.catch_warnings():
    # Starlette prefers the httpx2 package; httpx still works and is what we have.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


def _secrets(sb: Sandbox) -> dict[str, str]:
    c = sb.credentials
    return {
        "api_key": c.api_key,
        "access_token": c.access_token,
        "client_secret": c.client_secret,
        "password": c.password,
    }


def _assert_clean(text: str, secrets: dict[str, str], where: str) -> None:
    for name, value in secrets.items():
        assert value not in text, f"{name} leaked into {where}"


def _warehouse_text(path: Path) -> str:
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables"
        ).fetchall()
        parts = []
        for schema, name in tables:
            rows = con.execute(f'select * from "{schema}"."{name}"').fetchall()
            parts.append(repr(rows))
        return "\n".join(parts)
    finally:
        con.close()


def test_cli_sync_with_debug_logs_faults_and_revoked_token_leaks_nothing(tmp_path: Path) -> None:
    spec = AccountSpec(seed=11, contacts=400, campaigns=4, activities_per_campaign=30)
    with Sandbox(spec, qps_limit=None, daily_limit=None) as sb:
        secrets = _secrets(sb)
        sb.faults.add("500", path="/v2/contacts*", count=2)
        sb.faults.add("truncate", path="/v2/lists*", count=1)
        sb.faults.add("drop", path="/v2/eventspot/*", count=1)
        cfg = tmp_path / "ctctsync.toml"
        cfg.write_text(
            f'integration = "audit"\nstate_url = "sqlite:///{tmp_path / "state.db"}"\n'
            f'[source]\nbase_url = "{sb.base_url}"\nqps_limit = 50.0\n'
            f'[warehouse]\npath = "{tmp_path / "wh.duckdb"}"\n',
            encoding="utf-8",
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("CTCTSYNC_")}
        env |= {
            "CTCTSYNC_API_KEY": secrets["api_key"],
            "CTCTSYNC_ACCESS_TOKEN": secrets["access_token"],
        }
        outputs = []
        for _ in range(2):
            res = subprocess.run(
                [sys.executable, "-m", "ctctsync", "-v", "sync", "-c", str(cfg)],
                check=False,
                env=env,
                capture_output=True,
                text=True,
                timeout=240,
            )
            outputs.append(res.stdout + res.stderr)
            if len(outputs) == 1:
                assert res.returncode == 0, res.stdout + res.stderr
                # Debug logging is on: the requests were logged, with the key redacted.
                assert "/v2/contacts" in res.stderr
                sb.revoke_token(secrets["access_token"])
            else:
                assert res.returncode == 4
        for i, out in enumerate(outputs):
            _assert_clean(out, secrets, f"CLI output of run {i + 1}")
        _assert_clean(_warehouse_text(tmp_path / "wh.duckdb"), secrets, "the warehouse")
        _assert_clean(
            (tmp_path / "state.db").read_bytes().decode("latin-1"), secrets, "the state store"
        )


def test_v3_cli_sync_with_debug_logs_refresh_and_revocation_leaks_no_token(
    tmp_path: Path,
) -> None:
    """API v3: the client id and secret, the refresh tokens (the one given and every rotated
    one), the access tokens and the JWTs never reach the output of a debug-logged run that
    refreshes, meets faults and ends refused; nor the warehouse. (The CLI's state store
    keeps the token set on purpose, in a 0600 file: not audited here.)"""
    spec = AccountSpec(seed=13, contacts=300, campaigns=3, activities_per_campaign=20)
    with Sandbox(spec, qps_limit=None, daily_limit=None) as sb:
        grant = sb.v3_tokens.issue_tokens(
            ("account_read", "contact_data", "campaign_data", "offline_access"))
        assert grant.refresh_token is not None
        secrets = {"client_id": sb.credentials.api_key,
                   "client_secret": sb.credentials.client_secret,
                   "refresh_token": grant.refresh_token, "access_token": grant.access_token,
                   "password": sb.credentials.password}
        sb.faults.add("500", path="/v3/contacts*", count=2)
        sb.faults.add("drop", path="/v3/events*", count=1)
        cfg = tmp_path / "ctctsync.toml"
        cfg.write_text(
            f'integration = "audit"\nstate_url = "sqlite:///{tmp_path / "state.db"}"\n'
            f'[source]\napi_version = "v3"\nbase_url = "{sb.base_url}"\nqps_limit = 50.0\n'
            f'[warehouse]\npath = "{tmp_path / "wh.duckdb"}"\n',
            encoding="utf-8",
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("CTCTSYNC_")}
        env |= {"CTCTSYNC_API_KEY": secrets["client_id"],
                "CTCTSYNC_CLIENT_SECRET": secrets["client_secret"],
                "CTCTSYNC_REFRESH_TOKEN": secrets["refresh_token"]}

        def run() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "ctctsync", "-v", "sync", "-c", str(cfg)],
                check=False, env=env, capture_output=True, text=True, timeout=240)

        first = run()  # refreshes (no access token yet): a rotated pair is stored
        assert first.returncode == 0, first.stdout + first.stderr
        assert "/v3/contacts" in first.stderr  # debug logging was on
        sb.advance(25 * 3600)  # the access token expires: the next run refreshes again
        second = run()
        assert second.returncode == 0, second.stdout + second.stderr
        for chain in list(sb.v3_tokens._chains.values()):  # every refresh token issued
            secrets[f"refresh {len(secrets)}"] = chain.current
        sb.v3_tokens.revoke(sb.v3_tokens._chains[grant.refresh_token].current)
        sb.advance(25 * 3600)
        refused = run()
        assert refused.returncode == 4, refused.stdout + refused.stderr
        assert "re-authoriz" in refused.stderr.lower()
        for i, res in enumerate((first, second, refused)):
            _assert_clean(res.stdout + res.stderr, secrets, f"CLI output of run {i + 1}")
            for line in (res.stdout + res.stderr).split():
                assert not line.startswith("eyJ"), f"a JWT in the output of run {i + 1}"
        _assert_clean(_warehouse_text(tmp_path / "wh.duckdb"), secrets, "the warehouse")


def test_control_plane_stores_and_answers_no_secret(tmp_path: Path) -> None:
    clear_registry()
    spec = AccountSpec(seed=12, contacts=200, campaigns=3, activities_per_campaign=20)
    with Sandbox(spec, qps_limit=None, daily_limit=None) as sb:
        secrets = _secrets(sb)
        settings = ControlSettings(
            data_dir=tmp_path / "data",
            cc_base_url=sb.base_url,
            cc_auth_base_url=sb.base_url,
            cc_qps_limit=None,
            warehouse_path=tmp_path / "wh.duckdb",
        )
        plane = ControlPlane(settings)
        try:
            with plane.session() as db:
                admin = svc.create_user(db, "ops@example.com", "a long password 1", is_admin=True)
                integ = svc.create_integration(db, admin, IntegrationCreate(name="audit"))
                svc.set_manual_credentials(
                    db, integ, secrets["api_key"], secrets["access_token"]
                )
                run = svc.run_now(db, integ, admin)
                run_id = run.id
                _, api_token = svc.create_api_token(db, admin, "audit")
            assert plane.work_once(run_id=run_id) == run_id

            sb.revoke_token(secrets["access_token"])
            with plane.session() as db:
                integ = svc.get_integration(db, admin, integ.id)
                failed_id = svc.run_now(db, integ, admin).id
            assert plane.work_once(run_id=failed_id) == failed_id

            with plane.session() as db:
                failed = svc.get_run(db, admin, failed_id)
                assert failed.status == "failed"
                assert failed.error
                _assert_clean(failed.error, secrets, "the run's error")
                logs = "\n".join(
                    line.message
                    for rid in (run_id, failed_id)
                    for line in svc.run_logs(db, svc.get_run(db, admin, rid))
                )
                assert logs
                _assert_clean(logs, secrets, "the process logs")

            with TestClient(create_api_app(plane)) as http:
                headers = {"Authorization": f"Bearer {api_token}"}
                bodies = [
                    http.get("/api/v1/integrations", headers=headers).text,
                    http.get(f"/api/v1/integrations/{integ.id}", headers=headers).text,
                    http.get(f"/api/v1/runs/{failed_id}", headers=headers).text,
                    http.get(f"/api/v1/runs/{failed_id}/logs", headers=headers).text,
                ]
            for body in bodies:
                _assert_clean(body, secrets, "a REST answer")
        finally:
            plane.close()
        store = (tmp_path / "data" / "control.db").read_bytes().decode("latin-1")
        _assert_clean(store, secrets, "the control store (credentials must be encrypted)")
        _assert_clean(_warehouse_text(tmp_path / "wh.duckdb"), secrets, "the warehouse")


def test_worker_runs_scrub_their_own_token_and_keep_none(tmp_path: Path) -> None:
    """Issue 8 §2: each run has its own redactor. Two integrations with different tokens run
    on one worker; each run's log scrubs its own token (echoed by httpx's logger and by the
    run's own logger from inside the run), and afterwards no redactor holds either token."""
    clear_registry()
    with Sandbox(AccountSpec(seed=13, contacts=50), qps_limit=None, daily_limit=None) as sb:
        tokens = [sb.credentials.access_token, sb.issue_token()]
        settings = ControlSettings(
            data_dir=tmp_path / "data",
            cc_base_url=sb.base_url,
            cc_qps_limit=None,
            warehouse_path=tmp_path / "wh.duckdb",
            workers=0,
        )
        plane = ControlPlane(settings)
        current: list[str] = []

        def echo(_run_id: str, _event: object) -> None:
            logging.getLogger("httpx").warning("echo %s", current[0])
            logging.getLogger("ctctsync.control.run.w1").warning("echo %s", current[0])

        plane.add_progress_listener(echo)
        try:
            run_ids = []
            with plane.session() as db:
                admin = svc.create_user(db, "ops@example.com", "a long password 1", is_admin=True)
                for n, token in enumerate(tokens):
                    create = IntegrationCreate(name=f"acme{n}", tables={"contact_lists": None})
                    integ = svc.create_integration(db, admin, create)
                    svc.set_manual_credentials(db, integ, sb.credentials.api_key, token)
                    run_ids.append(svc.run_now(db, integ, admin).id)
            for token, run_id in zip(tokens, run_ids, strict=True):
                current[:] = [token]
                assert plane.work_once("w1", run_id=run_id) == run_id
            with plane.session() as db:
                for token, run_id in zip(tokens, run_ids, strict=True):
                    run = svc.get_run(db, admin, run_id)
                    assert run.status == "succeeded", run.error
                    text = "\n".join(line.message for line in svc.run_logs(db, run))
                    assert "echo ***" in text and token not in text
        finally:
            plane.close()
        gc.collect()
        held = set(PROCESS_SECRETS.values()) | IN_USE.values()
        for obj in gc.get_objects():
            if isinstance(obj, Redactor):
                held |= obj.secrets
        assert not held & set(tokens)
