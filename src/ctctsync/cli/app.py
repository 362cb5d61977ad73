"""The ``ctctsync`` command line.

Verbs a data engineer expects: ``check``, ``discover``, ``sync``, ``state show|reset``,
``tap`` (a Singer tap), ``demo``, ``sandbox``, ``serve``, ``integrations ...``, ``runs ...``,
``users ...``.
Exit codes (:class:`ctctsync.errors.ExitCode`, the same for every command): 0 success,
1 the run failed, 2 bad usage or configuration, 3 the run stopped early but cleanly with its
progress saved (daily API quota spent, or cancelled), 4 re-authorization needed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table as RichTable

from ctctsync import __version__
from ctctsync.cli.auth import register as register_auth
from ctctsync.cli.control import register as register_control
from ctctsync.cli.extras import require_server_extra
from ctctsync.cli.output import (
    EXIT_CONFIG,
    console,
    err_console,
    exit_code,
    print_result,
    run_with_progress,
)
from ctctsync.cli.switch import register as register_switch
from ctctsync.cli.tap import register as register_tap
from ctctsync.tables import TABLES, tables_for

if TYPE_CHECKING:
    from ctctsync.config import SyncConfig
    from ctctsync.sync import SyncResult


app = typer.Typer(
    name="ctctsync",
    help="Replicate a Constant Contact account into a data warehouse.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
state_app = typer.Typer(help="Show or reset bookmarks (per integration and table).")
app.add_typer(state_app, name="state")

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="TOML config file (secrets come from CTCTSYNC_* environment variables).",
        envvar="CTCTSYNC_CONFIG",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _version(value: bool) -> None:
    if value:
        console.print(f"ctctsync {__version__}")
        raise typer.Exit


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _load(config: Path | None) -> SyncConfig:
    from ctctsync.config import load_config
    from ctctsync.errors import ConfigError

    if config is None and Path("ctctsync.toml").exists():
        config = Path("ctctsync.toml")
    try:
        return load_config(config)
    except ConfigError as exc:
        err_console.print(f"[red]Configuration error:[/red] {exc}")
        raise typer.Exit(EXIT_CONFIG) from None


@app.command()
def discover(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """List the tables as they are replicated: how each is read, its columns with the
    configured warehouse's types, and the new fields runs met that no column holds."""
    from ctctsync.destinations import capabilities_of

    cfg = _load(config)
    types = capabilities_of(cfg.warehouse.destination).column_types
    new_fields = _discovered_fields(cfg)
    version = cfg.source.api_version
    tables = tables_for(version)
    unavailable = {n: t.unavailable_reason(version) for n, t in TABLES.items()
                   if n not in tables}
    if as_json:
        out: dict[str, Any] = {
            name: {
                "available": True,
                "spec_name": t.spec_name,
                "purpose": t.purpose,
                "replication": t.replication,
                "replication_label": t.replication_label,
                "read_whole": t.read_whole,
                "replication_key": t.replication_key,
                "primary_key": list(t.primary_key),
                "columns": {
                    c.name: {
                        "type": c.type,
                        "warehouse_type": types.get(c.type, c.type),
                        "extra": c.extra,
                    }
                    for c in t.columns
                },
                "new_fields": new_fields.get(name, []),
            }
            for name, t in tables.items()
        }
        for name, reason in unavailable.items():
            out[name] = {"available": False, "spec_name": TABLES[name].spec_name,
                         "unavailable_reason": reason}
        console.print_json(json.dumps(out))
        return
    console.print(f"API: {version}. Warehouse: {cfg.warehouse.destination} "
                  "(column types as created there)")
    for t in tables.values():
        # a line of its own: a table's title would wrap to the (narrow) table's width
        console.print(f"\n{t.name}  ({t.spec_name}, {t.replication_label})",
                      highlight=False, markup=False)
        grid = RichTable()
        grid.add_column("column")
        grid.add_column("type")
        grid.add_column("note")
        for c in t.columns:
            note = "key" if c.name in t.primary_key else ""
            if c.extra:
                note = (note + " extra").strip()
            grid.add_row(c.name, types.get(c.type, c.type), note)
        for field_name in new_fields.get(t.name, []):
            grid.add_row(field_name, "-", "new field available (not in the registry)")
        console.print(grid)
    for name, reason in unavailable.items():
        console.print(f"\n{name}  ({TABLES[name].spec_name}): unavailable with API {version}. "
                      f"{reason}", highlight=False, markup=False)


def _discovered_fields(cfg: SyncConfig) -> dict[str, list[str]]:
    """Table -> the fields runs of ``cfg.integration`` met that the registry does not know
    (from the state store; nothing when it was never created: discover creates no file)."""
    from ctctsync.db import sqlite_file
    from ctctsync.state import StateStore

    path = sqlite_file(cfg.state_url)
    if path is not None and not path.exists():
        return {}
    found: dict[str, list[str]] = {}
    for f in StateStore(cfg.state_url).discovered(cfg.integration):
        found.setdefault(f.table, []).append(f.field)
    return found


@app.command()
def check(config: ConfigOpt = None) -> None:
    """Check what a sync needs: the credentials are set, the warehouse can be loaded into,
    and the Constant Contact API accepts them. One line per problem; exit 2 (configuration)
    or the API failure's exit code."""
    from ctctsync.api.v2 import check as api_check
    from ctctsync.errors import FAILURES, CtctError
    from ctctsync.sync.engine import make_client
    from ctctsync.sync.preflight import check_credentials
    from ctctsync.warehouse import WarehouseError, check_warehouse

    cfg = _load(config)
    v3 = cfg.source.api_version == "v3"
    if v3:  # the v3 token comes from the state store (ctctsync auth login)
        from ctctsync.cli.auth import check_v3, v3_credentials_problem

        _exit_if(v3_credentials_problem(cfg))
    else:
        _exit_if(check_credentials(cfg.source))  # before any request: no empty key or token
    codes: list[int] = []
    try:
        console.print(f"[green]OK[/green] warehouse: {check_warehouse(cfg.warehouse)}",
                      soft_wrap=True)
    except WarehouseError as exc:
        _say_failed("Warehouse check failed", str(exc))
        codes.append(EXIT_CONFIG)
    if v3:
        codes.extend(code for code in [check_v3(cfg)] if code)
    else:
        client = make_client(cfg.source)
        try:
            info = api_check(client)
        except CtctError as exc:
            _say_failed("Check failed", exc.user_message)
            codes.append(FAILURES[exc.failure_type].exit_code)
        else:
            console.print(f"[green]OK[/green] {cfg.source.base_url} answers; account: {info}",
                          soft_wrap=True)
        finally:
            client.close()
    if codes:
        raise typer.Exit(codes[0])


def _say_failed(what: str, message: str) -> None:
    """One line on stderr, however long (``message`` is text, not rich markup: an install
    hint such as ``ctctsync[postgres]`` must print whole)."""
    err_console.print(f"[red]{what}:[/red] {escape(message)}", soft_wrap=True)


def _exit_if(problem: str | None) -> None:
    """Exit 2 with ``problem`` as one line, if there is one."""
    if problem is not None:
        _say_failed("Cannot start", problem)
        raise typer.Exit(EXIT_CONFIG)


@app.command()
def sync(
    config: ConfigOpt = None,
    table: Annotated[
        list[str] | None,
        typer.Option("--table", "-t", help="Only this table (repeatable)."),
    ] = None,
    full_refresh: Annotated[
        bool,
        typer.Option(
            "--full-refresh",
            help="Forget the bookmarks of the tables being synced and read them from the "
            "history start.",
        ),
    ] = False,
    recheck_campaigns: Annotated[
        bool,
        typer.Option(
            "--recheck-campaigns",
            help="Check every sent campaign now and read all of its tracking again (stale "
            "rows removed), whatever the [tracking] tiers say.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run one sync: extract the selected tables and load them into the warehouse."""
    from ctctsync.sync.preflight import preflight

    cfg = _load(config)
    unknown = [t for t in table or [] if t not in TABLES]
    if unknown:
        err_console.print(f"[red]Unknown table(s):[/red] {', '.join(unknown)}")
        raise typer.Exit(EXIT_CONFIG)
    if cfg.source.api_version == "v3":
        _exit_if(preflight(cfg, source=False))  # the warehouse; the tokens come next
        _exit_if(_unswitched(cfg))
        with _v3_credentials(cfg) as (cfg3, renew):
            result = _sync_and_report(cfg3, table, full_refresh, as_json, renew,
                                      recheck_campaigns)
    else:
        # credentials and warehouse before any request or file: one line and exit 2
        _exit_if(preflight(cfg))
        result = _sync_and_report(cfg, table, full_refresh, as_json, None, recheck_campaigns)
    raise typer.Exit(exit_code(result))


def _unswitched(cfg: SyncConfig) -> str | None:
    """Why a v3 sync cannot start on this warehouse: tables loaded by v2 and not switched
    (their ids are numbers; v3's are UUIDs)."""
    from ctctsync.sync.switch import pending_tables

    pending = pending_tables(cfg)
    if not pending:
        return None
    return (f"the warehouse holds tables loaded by API v2 ({', '.join(pending)}): run "
            "`ctctsync switch-api v3` first (docs/switching-to-v3.md)")


@contextmanager
def _v3_credentials(
    cfg: SyncConfig,
) -> Iterator[tuple[SyncConfig, Callable[[str], str] | None]]:
    """A v3 run's fresh access token and renewer (``cli.auth.v3_run``); a refused or
    missing authorization is one line and exit 4, before any data call."""
    from ctctsync.cli.auth import v3_run
    from ctctsync.errors import FAILURES, CtctError

    try:
        with v3_run(cfg) as pair:
            yield pair
    except CtctError as exc:
        err_console.print(f"[red]{escape(exc.user_message)}[/red]")
        raise typer.Exit(FAILURES[exc.failure_type].exit_code) from None


def _sync_and_report(
    cfg: SyncConfig,
    table: list[str] | None,
    full_refresh: bool,
    as_json: bool,
    renew: Callable[[str], str] | None,
    recheck_campaigns: bool = False,
) -> SyncResult:
    from ctctsync.sync import run_sync

    kwargs: dict[str, Any] = {
        "only_tables": table or None,
        "full_refresh": full_refresh,
        "recheck_campaigns": recheck_campaigns,
        "check_first": False,  # just done
        "renew_token": renew,
    }
    if as_json:
        result = run_sync(cfg, **kwargs)
        console.print_json(json.dumps(_result_json(result)))
    else:
        result = run_with_progress(cfg, **kwargs)
        print_result(result, cfg)
        if result.error:
            err_console.print(f"[red]{result.error}[/red]")
    return result


def _result_json(result: SyncResult) -> dict[str, Any]:
    """``sync --json``: ``status`` is the stored status; ``warnings`` (each ``<table>:
    <warning>``) say what a ``succeeded`` run did not load, ``label`` says it in words."""
    return {
        "run_id": result.run_id,
        "status": result.status,
        "label": result.label,
        "api_calls": result.api_calls,
        "error": result.error,
        "warnings": result.warnings,
        "resume_at": result.resume_at.isoformat() if result.resume_at else None,
        "tables": {
            n: {"rows": t.rows, "api_calls": t.api_calls, "status": t.status, "error": t.error,
                "warnings": t.warnings, "bookmark_held": t.bookmark_held}
            for n, t in result.tables.items()
        },
    }


@state_app.command("show")
def state_show(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Show the bookmarks of the configured integration."""
    from ctctsync.state import StateStore

    cfg = _load(config)
    marks = StateStore(cfg.state_url).all(cfg.integration)
    if as_json:
        console.print_json(
            json.dumps(
                {b.table: {"last_run_date": b.last_run_date.isoformat(), "run_id": b.run_id}
                 for b in marks}
            )
        )
        return
    grid = RichTable(title=f"bookmarks of {cfg.integration}", title_justify="left")
    grid.add_column("table")
    grid.add_column("lastRunDate (UTC)")
    grid.add_column("run")
    for b in marks:
        grid.add_row(b.table, b.last_run_date.isoformat(), b.run_id or "")
    if not marks:
        console.print("No bookmarks yet: the next sync reads from the history start.")
    else:
        console.print(grid)


@state_app.command("reset")
def state_reset(
    config: ConfigOpt = None,
    table: Annotated[
        str | None, typer.Option("--table", "-t", help="Only this table (default: all).")
    ] = None,
) -> None:
    """Forget bookmarks: the next sync re-reads from the history start (a full re-sync)."""
    from ctctsync.state import StateStore

    cfg = _load(config)
    if table is not None and table not in TABLES:
        err_console.print(f"[red]Unknown table:[/red] {table}")
        raise typer.Exit(EXIT_CONFIG)
    n = StateStore(cfg.state_url).reset(cfg.integration, table)
    console.print(f"Removed {n} bookmark(s) of {cfg.integration}.")


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 = any free port).")] = 8911,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic account.")] = 1,
    contacts: Annotated[int, typer.Option(help="Number of contacts.")] = 5_000,
    lists: Annotated[int, typer.Option(help="Number of contact lists.")] = 12,
    campaigns: Annotated[int, typer.Option(help="Number of email campaigns.")] = 20,
    activities_per_campaign: Annotated[
        int, typer.Option(help="Tracking activities per sent campaign (approximate).")
    ] = 400,
    library_files: Annotated[int, typer.Option(help="MyLibrary files.")] = 40,
    trash_files: Annotated[int, typer.Option(help="Files in the trash.")] = 6,
    events: Annotated[int, typer.Option(help="EventSpot events.")] = 5,
    qps_limit: Annotated[int, typer.Option(help="Requests/s per API key (0 = off).")] = 4,
    daily_limit: Annotated[
        int, typer.Option(help="Requests/day per API key (0 = off).")
    ] = 10_000,
    fault: Annotated[
        list[str] | None,
        typer.Option("--fault", help="Fault rule, e.g. '500:/v2/contacts*:p=0.1' (repeatable)."),
    ] = None,
    token_qps_limit: Annotated[
        int, typer.Option(help="Requests/s per client id at the v3 token endpoint (0 = off).")
    ] = 1,
    frozen_at: Annotated[
        str | None,
        typer.Option(help="Freeze the sandbox clock at an ISO-8601 instant or 'anchor' "
                     "(it then moves only when advanced)."),
    ] = None,
    activity_model: Annotated[
        str,
        typer.Option(help="How campaign activity arrives: 'instant' (at the send) or "
                     "'decay' (over days after it, as CC's reports show)."),
    ] = "instant",
    app_limits: Annotated[
        str | None,
        typer.Option(help="The application's limits: 'default' (CC's 4 req/s, 10,000 a "
                     "day) or 'partner' (10 req/s, 250,000 a day)."),
    ] = None,
) -> None:
    """Serve a simulated Constant Contact account, API v2 and v3 with its OAuth2 server
    (see docs/sandbox.md)."""
    require_server_extra("sandbox")
    from ctctsync.sandbox.cli import run_sandbox_command

    run_sandbox_command(
        host=host,
        port=port,
        seed=seed,
        contacts=contacts,
        lists=lists,
        campaigns=campaigns,
        activities_per_campaign=activities_per_campaign,
        library_files=library_files,
        trash_files=trash_files,
        events=events,
        qps_limit=qps_limit or None,
        daily_limit=daily_limit or None,
        faults=fault or [],
        token_qps_limit=token_qps_limit or None,
        frozen_at=frozen_at,
        activity_model=activity_model,
        app_limits=app_limits,
    )


class ApiVersionChoice(StrEnum):
    """The Constant Contact API versions, as a command-line choice."""

    v2 = "v2"
    v3 = "v3"


@app.command()
def demo(
    contacts: Annotated[int, typer.Option(help="Contacts in the sample account.")] = 5_000,
    path: Annotated[Path, typer.Option(help="DuckDB file to write.")] = Path(
        "ctctsync-demo.duckdb"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the sample account.")] = 1,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve/--no-serve",
            help="End with the web UI running (--no-serve: sync, print, exit).",
        ),
    ] = True,
    port: Annotated[int, typer.Option(help="Port of the web UI.")] = 8000,
    api: Annotated[
        ApiVersionChoice,
        typer.Option(help="API version: v3 (OAuth2, every account since 2024) or legacy v2."),
    ] = ApiVersionChoice.v3,
) -> None:
    """Start a sandbox account, sync everything into a local DuckDB file, show the result."""
    require_server_extra("demo")
    from ctctsync.cli.demo import run_demo

    raise typer.Exit(
        run_demo(contacts=contacts, path=path, seed=seed, serve=serve, port=port,
                 api_version=api.value)
    )


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except ValidationError as exc:
        # CTCTSYNC_* settings are read as a command starts: a bad one is a configuration
        # failure, said in one line without its value (which may be a secret).
        if exc.title != "ControlSettings":
            raise
        first = exc.errors(include_input=False, include_url=False)[0]
        name = "CTCTSYNC_" + "_".join(str(p) for p in first["loc"]).upper()
        typer.echo(f"Refusing to start: {name.rstrip('_')}: {first['msg']}.", err=True)
        raise SystemExit(EXIT_CONFIG) from None


register_control(app)
register_auth(app)
register_switch(app)
register_tap(app)


if __name__ == "__main__":  # pragma: no cover
    main()
