"""The end of ``ctctsync demo``: the web control plane with the sandbox account connected.

The demo's data directory (``.ctctsync/demo``) holds the control plane's store, its keys and
the administrator's generated password. The sandbox account becomes the integration
``demo``; its first job runs through the control plane (a quick incremental top-up of what the
command-line sync just loaded), so the UI opens on an Active integration with a job and its
process log.
"""

from __future__ import annotations

import logging
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

from ctctsync.db import make_private_dirs

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ctctsync.config import SyncConfig
    from ctctsync.control.models import Integration
    from ctctsync.control.plane import ControlPlane
    from ctctsync.control.settings import ControlSettings
    from ctctsync.sandbox import Sandbox

DEMO_DIR = Path(".ctctsync") / "demo"
DEMO_ADMIN = "admin@example.com"
FIRST_JOB_TIMEOUT_SECONDS = 300


def demo_settings(sb: Sandbox, warehouse: Path, port: int) -> ControlSettings:
    """Control-plane settings pointing at the sandbox and the demo's DuckDB file."""
    from ctctsync.control.settings import ControlSettings

    return ControlSettings(
        data_dir=DEMO_DIR,
        database_url=None,
        host="127.0.0.1",
        port=port,
        public_base_url=f"http://127.0.0.1:{port}",
        cc_base_url=sb.base_url,
        cc_auth_base_url=sb.base_url,
        api_key=SecretStr(sb.credentials.api_key),
        client_secret=SecretStr(sb.credentials.client_secret),
        # The demo sandbox runs without rate limits, so the client need not pace itself.
        cc_qps_limit=None,
        warehouse_path=warehouse,
    )


def admin_password(data_dir: Path) -> str:
    """The demo administrator's password: generated once, kept owner-only in the data dir."""
    from ctctsync.control.settings import read_or_create_key_file

    made = secrets.token_urlsafe(12).encode()
    return read_or_create_key_file(data_dir / "demo-admin-password", made).decode()


def prepare_control_plane(settings: ControlSettings) -> ControlPlane:
    """Create (and migrate) the demo's store before anything writes bookmarks into it."""
    from ctctsync.control.plane import ControlPlane

    make_private_dirs(settings.data_dir)
    return ControlPlane(settings)


def connect_and_run_first_job(
    plane: ControlPlane, sb: Sandbox, cfg: SyncConfig, password: str
) -> str:
    """Ensure the admin and the ``demo`` integration exist with the sandbox's credentials
    (for API ``cfg.source.api_version``), queue a run and return its id."""
    import sqlalchemy as sa

    from ctctsync.control import services as svc
    from ctctsync.control.models import Integration, User
    from ctctsync.control.schemas import IntegrationCreate
    from ctctsync.control.services import authorization as auth

    with plane.session() as db:
        svc.ensure_first_admin(db, DEMO_ADMIN, password)
        user = db.scalars(sa.select(User).where(User.email == DEMO_ADMIN)).one()
        by_name = sa.select(Integration).where(Integration.name == cfg.integration)
        integ = db.scalars(by_name).first()
        version = cfg.source.api_version
        if integ is not None and integ.api_version != version:
            # a demo of the other version ran before: its tables are named alike but typed
            # apart (v3 ids are UUIDs), so start that integration over
            svc.delete_integration(db, integ, drop_tables=False)
            integ = None
        if integ is None:
            integ = svc.create_integration(
                db,
                user,
                IntegrationCreate(
                    name=cfg.integration,
                    frequency_hours=24,
                    history_start=cfg.history_start,
                    api_version=version,
                ),
            )
            auth.settle_new_integration(db, integ, version, tables_given=False)
        if version == "v3":
            _connect_v3(db, integ, sb)
        else:
            svc.set_manual_credentials(
                db,
                integ,
                sb.credentials.api_key,
                sb.credentials.access_token,
                check_access=True,
            )
        if integ.state == "paused":
            svc.reactivate(db, integ)
        run = svc.run_now(db, integ, user)
        return run.id


def _connect_v3(db: Session, integ: Integration, sb: Sandbox) -> None:
    """Store a v3 token set the sandbox's authorization server issues (what the UI's
    Authorize button gets through the PKCE pages), encrypted like any authorization."""
    from ctctsync.api.v3 import oauth as v3oauth
    from ctctsync.control.context import context
    from ctctsync.control.services.tokens import encrypt_token_set

    grant = sb.v3_tokens.issue_tokens(v3oauth.SCOPES)
    tokens = v3oauth.token_set_from(grant.to_json(), requested=v3oauth.SCOPES)
    integ.credentials_encrypted = encrypt_token_set(context(db), tokens)
    integ.auth_method = "oauth"
    integ.access_problems = None
    db.commit()


def wait_for_run(plane: ControlPlane, run_id: str) -> str:
    """Block until the run finishes (the plane's workers execute it); returns its status."""
    from ctctsync.control.models import Run

    deadline = time.monotonic() + FIRST_JOB_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        with plane.session() as db:
            run = db.get(Run, run_id)
            if run is not None and run.status not in ("queued", "running"):
                return run.status
        # Polling the store is how any client (CLI, UI) follows a job; 0.5 s keeps it cheap.
        time.sleep(0.5)
    return "timeout"


def serve_demo(sb: Sandbox, cfg: SyncConfig, plane: ControlPlane, settings: ControlSettings) -> int:
    """Run the first job through the control plane, then serve the UI until Ctrl-C."""
    import uvicorn

    from ctctsync.cli.output import console
    from ctctsync.web.app import create_app

    # Jobs' process logs belong in the UI, not interleaved with the demo's own output.
    logging.getLogger("ctctsync.control.run").propagate = False
    password = admin_password(settings.data_dir)
    run_id = connect_and_run_first_job(plane, sb, cfg, password)
    app = create_app(settings, plane)
    plane.start()
    try:
        console.print("Running the integration's first job through the control plane...")
        status = wait_for_run(plane, run_id)
        console.print(f"First job {run_id[:8]}: {status}")
        console.print(
            f"\n[bold]Web UI:[/bold] {settings.public_base_url}   "
            f"sign in as [bold]{DEMO_ADMIN}[/bold] / [bold]{password}[/bold]\n"
            f"The sandbox keeps serving at {sb.base_url} "
            f"(sign-in page: {sb.credentials.email} / {sb.credentials.password}). "
            "Ctrl-C stops both."
        )
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
    finally:
        plane.close()
    return 0 if status == "succeeded" else 1
