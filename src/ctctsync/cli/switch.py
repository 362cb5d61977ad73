"""``ctctsync switch-api v3``: turn an integration loaded by API v2 into a v3 one, keeping its
warehouse continuous (docs/switching-to-v3.md, ``ctctsync.sync.switch``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table as RichTable

from ctctsync.cli.output import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, console, err_console

if TYPE_CHECKING:
    from ctctsync.config import SyncConfig
    from ctctsync.sync.switch import SwitchReport


def _load(config: Path | None) -> SyncConfig:
    from ctctsync.config import load_config
    from ctctsync.errors import ConfigError

    if config is None and Path("ctctsync.toml").exists():
        config = Path("ctctsync.toml")
    try:
        return load_config(config)
    except ConfigError as exc:
        err_console.print(f"[red]Configuration error:[/red] {escape(str(exc))}")
        raise typer.Exit(EXIT_CONFIG) from None


def report_json(report: SwitchReport) -> dict[str, Any]:
    """``switch-api --json``: per table what was done, and the calls used."""
    return {
        "switch_id": report.switch_id,
        "done": report.done,
        "api_calls": report.api_calls,
        "xref_calls": report.xref_calls,
        "read_calls": report.read_calls,
        "tables": {
            name: {"action": t.action, "rows_before": t.rows_before, "rows_after": t.rows_after,
                   "mapped": t.mapped, "unmapped": t.unmapped, "kept_v2_rows": t.kept_v2_rows,
                   "note": t.note}
            for name, t in report.tables.items()
        },
    }


def _print(report: SwitchReport) -> None:
    table = RichTable(title="Switch to API v3")
    for col in ("table", "done", "rows before", "rows after", "v2 ids mapped", "note"):
        table.add_column(col)
    for name, t in report.tables.items():
        table.add_row(name, t.action, _n(t.rows_before), _n(t.rows_after),
                      str(t.mapped) if t.action == "remapped" else "", escape(t.note))
    console.print(table)
    console.print(f"{report.api_calls} API calls: "
                  f"{sum(report.xref_calls.values())} id cross-references, "
                  f"{report.read_calls} for the v3 reads")


def _n(v: int | None) -> str:
    return "" if v is None else str(v)


def switch_api(
    version: Annotated[str, typer.Argument(help="The API to switch to: v3.")],
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="TOML config file, already set for v3.",
                     envvar="CTCTSYNC_CONFIG"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Switch an integration loaded by API v2 to v3, keeping its warehouse tables.

    Set source.api_version = "v3" and the v3 credentials in the config first, then run
    this once before the first v3 sync. Running it again completes a switch that failed.
    """
    from ctctsync.cli.auth import v3_run
    from ctctsync.errors import FAILURES, CtctError
    from ctctsync.sync.preflight import preflight
    from ctctsync.sync.switch import SwitchError, switch_to_v3
    from ctctsync.warehouse import WarehouseError

    if version != "v3":
        err_console.print("[red]Only a switch to v3 exists:[/red] ctctsync switch-api v3")
        raise typer.Exit(EXIT_CONFIG)
    cfg = _load(config)
    if cfg.source.api_version != "v3":
        err_console.print('[red]Set source.api_version = "v3"[/red] and the v3 credentials in '
                          "the config first (docs/switching-to-v3.md).")
        raise typer.Exit(EXIT_CONFIG)
    problem = preflight(cfg, source=False)  # the warehouse; the tokens come next, as for sync
    if problem is not None:
        err_console.print(f"[red]Cannot start:[/red] {escape(problem)}")
        raise typer.Exit(EXIT_CONFIG)
    again = " -- the tables switched so far are v3, the others v2; run it again to complete."
    try:
        # the v3 access token as ``ctctsync sync`` gets it (stored tokens, renewed on a 401)
        with v3_run(cfg) as (cfg3, renew):
            report = switch_to_v3(cfg3, renew_token=renew)
    except CtctError as exc:
        err_console.print(f"[red]Switch not completed:[/red] {escape(exc.user_message)}{again}")
        raise typer.Exit(FAILURES[exc.failure_type].exit_code) from None
    except (SwitchError, WarehouseError) as exc:
        err_console.print(f"[red]Switch not completed:[/red] {escape(str(exc))}{again}")
        raise typer.Exit(EXIT_FAILED) from None
    if as_json:
        console.print_json(json.dumps(report_json(report)))
    else:
        _print(report)
    raise typer.Exit(EXIT_OK)


def register(app: typer.Typer) -> None:
    """Add ``switch-api`` to the main ``ctctsync`` app."""
    app.command("switch-api")(switch_api)
