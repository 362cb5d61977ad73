"""``ctctsync demo``: a sandbox account, synced into a local DuckDB file, shown to the user.

Everything is local: the sandbox (a simulated Constant Contact account, API v2 and v3) is
started on a free loopback port, the sync runs against it with the rate limit off, and the
result is a DuckDB file the user can query. The demo reads API v3 (what every application
registered since 2024 gets); ``--api v2`` shows the legacy path. With ``--serve`` (the
default) the web control plane is started too, with the sandbox account connected as an
integration.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from rich.panel import Panel

from ctctsync.config import SourceConfig, SyncConfig, WarehouseConfig
from ctctsync.tables import ApiVersion, tables_for

DEMO_INTEGRATION = "demo"


def demo_config(
    base_url: str,
    api_key: str,
    access_token: str,
    path: Path,
    state_dir: Path,
    api_version: ApiVersion = "v3",
) -> SyncConfig:
    """The sync configuration the demo uses against a sandbox at ``base_url`` (v3: the
    application's client id and a v3 access token; v2: the API key and a v2 token)."""
    from pydantic import SecretStr

    return SyncConfig(
        integration=DEMO_INTEGRATION,
        source=SourceConfig(
            api_version=api_version,
            base_url=base_url,
            api_key=SecretStr(api_key),
            access_token=SecretStr(access_token),
            # The sandbox's limits are off for the demo, so the client need not pace itself.
            qps_limit=None,
            daily_limit=None,
        ),
        warehouse=WarehouseConfig(destination="duckdb", path=path),
        history_start=date(2000, 1, 1),
        state_url=f"sqlite:///{state_dir / 'state.db'}",
    )


def run_demo(
    *,
    contacts: int,
    path: Path,
    seed: int,
    serve: bool,
    port: int = 8000,
    api_version: ApiVersion = "v3",
) -> int:
    """Run the demo; returns the process exit code."""
    from ctctsync.cli.output import console, exit_code, print_result, run_with_progress
    from ctctsync.sandbox import AccountSpec, Sandbox

    path = path.resolve()
    state_dir = Path(".ctctsync") / "demo"
    spec = AccountSpec(
        seed=seed,
        contacts=contacts,
        lists=12,
        campaigns=20,
        # A sent campaign reaches a share of the contacts; opens, clicks... follow the sends.
        activities_per_campaign=max(50, contacts // 4),
        library_files=40,
        trash_files=6,
        events=5,
    )
    console.print(
        f"Starting a sandbox Constant Contact account (seed {seed}, {contacts:,} contacts)..."
    )
    with Sandbox(spec, qps_limit=None, daily_limit=None) as sb:
        creds = sb.credentials
        # v3: the token the sandbox's authorization server issued at start-up (every
        # scope, 24 h), as `ctctsync sandbox` prints it; the UI's Authorize runs PKCE
        token = creds.v3_access_token if api_version == "v3" else creds.access_token
        cfg = demo_config(sb.base_url, creds.api_key, token, path, state_dir, api_version)
        plane = settings = None
        if serve:
            from ctctsync.cli.demo_serve import demo_settings, prepare_control_plane

            settings = demo_settings(sb, path, port)
            plane = prepare_control_plane(settings)
            # One store for the command-line sync and the control plane: its first job then
            # continues from the bookmarks this sync writes.
            cfg = cfg.model_copy(update={"state_url": settings.resolved_database_url})
        console.print(
            f"Sandbox at {sb.base_url}; syncing all {len(tables_for(api_version))} tables of "
            f"API {api_version} into {path}"
        )
        # Each demo starts from scratch: the sandbox is new, so old bookmarks mean nothing,
        # and tables an earlier demo of the other API version loaded are typed apart (v3
        # ids are UUIDs): drop the demo's tables first
        if path.exists():
            from ctctsync.warehouse import drop_integration_tables

            drop_integration_tables(cfg.warehouse, DEMO_INTEGRATION)
        result = run_with_progress(cfg, full_refresh=True)
        print_result(result, cfg)
        if result.error:
            console.print(f"[red]{result.error}[/red]")
            return exit_code(result)
        example = cfg.table_name_in_warehouse("contacts")
        console.print(
            Panel(
                f"Your data is in [bold]{path}[/bold], schema "
                f"[bold]{cfg.warehouse.dataset}[/bold], tables "
                f"[bold]{DEMO_INTEGRATION}_<table>[/bold].\n"
                "Query it from Python (duckdb is installed in the venv), for example:",
                title="Done",
            )
        )
        query = f"select status, count(*) from {cfg.warehouse.dataset}.{example} group by 1"  # noqa: S608 - shown to the user, not run
        console.print(
            f"  .venv/bin/python -c \"import duckdb; duckdb.connect('{path}', read_only=True)"
            f".sql('{query}').show()\"",
            soft_wrap=True,
            highlight=False,
        )
        if plane is not None and settings is not None:
            from ctctsync.cli.demo_serve import serve_demo

            return serve_demo(sb, cfg, plane, settings)
    return exit_code(result)
